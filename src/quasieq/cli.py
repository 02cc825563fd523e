"""The ``quasieq`` command line (typer + rich): ``info``, ``regions``, ``demo``.

Conventions every subcommand follows (later ones — ``wide``, ``deep``, ``compare`` — reuse the helpers
below rather than repeating them):

* Exit codes: :data:`EXIT_OK` (0) success, :data:`EXIT_CHECK_FAILED` (1) a check failed,
  :data:`EXIT_BAD_INPUT` (2) bad input.
* Bad input of any kind (missing or unreadable model, bad box or bounds file, dimension mismatch, an
  unsupported option combination, a usage error) prints exactly one line ``error: ...`` on stderr and
  exits 2, without a traceback. Commands only *raise* :class:`~quasieq.errors.QuasieqError`; the
  application's group (:class:`_QuasieqGroup`) turns it into that line, in one place.
* Options are validated before any work; output files are written to temporary names beside their
  targets and renamed only once every output is complete (:func:`staged_outputs`), so a failed run
  leaves no partial file behind.
* Long work shows a rich progress bar only when stdout is a terminal; on a pipe nothing but the
  summary is printed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2

#: Formats ``--plot`` can write (matplotlib's Agg canvas infers the format from the suffix).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def fail(message: str) -> None:
    """Print ``error: message`` as one line on stderr and exit with :data:`EXIT_BAD_INPUT`."""
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()
    sys.exit(EXIT_BAD_INPUT)


class _QuasieqGroup(TyperGroup):
    """The app's click group: maps every bad-input error to one stderr line and exit code 2.

    Usage errors (missing argument, unknown option, a non-number where a number is expected),
    :class:`QuasieqError` raised by a command and operating-system errors on user-given paths all end
    here, so no command needs its own ``try``.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError:
            sys.exit(EXIT_BAD_INPUT)  # typer has already printed the help
        except click_exceptions.ClickException as exc:
            fail(exc.format_message())
        except typer.Abort:
            fail("aborted")
        except QuasieqError as exc:
            fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}")
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


app = typer.Typer(
    cls=_QuasieqGroup,
    name="quasieq",
    help="Exact linear regions of trained ReLU networks, and their wide/deep rebuilds with a certificate.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


# ----- shared options (reused by every command that takes them) -------------------------------------
ModelArg = Annotated[Path, typer.Argument(metavar="MODEL", help="Model file: .onnx or .npz (W0, b0, W1, b1, ...).")]
BoxOpt = Annotated[
    Optional[tuple[float, float]],
    typer.Option("--box", metavar="LO HI", help="The same bounds LO < HI on every input coordinate."),
]
BoundsOpt = Annotated[
    Optional[Path],
    typer.Option("--bounds", metavar="FILE.json", help='Per-coordinate bounds: {"lo": [...], "hi": [...]}.'),
]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", metavar="FILE", help="Write the result as JSON.")]
PlotOpt = Annotated[
    Optional[Path], typer.Option("--plot", metavar="FILE.png", help="Draw the result (inputs of dimension 1 or 2).")
]
MaxRegionsOpt = Annotated[
    Optional[int],
    typer.Option("--max-regions", metavar="N", min=1, help="Stop with exit code 2 when more than N regions exist."),
]


# ----- shared helpers -------------------------------------------------------------------------------
def load_model(path: Path) -> ReluNet:
    """Read a model file into a :class:`ReluNet`; every failure becomes a one-line QuasieqError.

    The check for a missing file comes first so the message names the path; anything the reader raises
    on a corrupt file (protobuf, zip or numpy errors) is reported as "cannot read" with its reason.
    """
    from quasieq.io import load

    if not path.exists():
        raise QuasieqError(f"{path}: no such model file")
    if not path.is_file():
        raise QuasieqError(f"{path}: not a file")
    try:
        return load(path)
    except QuasieqError:
        raise
    except Exception as exc:  # a reader library's own error on a corrupt file: report, never trace back
        raise QuasieqError(f"{path}: cannot read model ({type(exc).__name__}: {exc})") from None


def read_bounds(path: Path) -> Box:
    """The box of a bounds file ``{"lo": [l_1, ..., l_D], "hi": [h_1, ..., h_D]}``."""
    if not path.is_file():
        raise QuasieqError(f"{path}: no such bounds file")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QuasieqError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or set(doc) != {"lo", "hi"}:
        raise QuasieqError(f'{path}: bounds must be a JSON object with exactly the keys "lo" and "hi"')
    for key in ("lo", "hi"):
        values = doc[key]
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise QuasieqError(f'{path}: "{key}" must be a list of numbers, got {json.dumps(values)[:60]}')
    try:
        return Box(doc["lo"], doc["hi"])
    except QuasieqError as exc:
        raise QuasieqError(f"{path}: {exc}") from None


def resolve_box(net: ReluNet, box: tuple[float, float] | None, bounds: Path | None) -> Box:
    """The box given by exactly one of ``--box LO HI`` and ``--bounds FILE``, checked against the net."""
    if (box is None) == (bounds is None):
        raise QuasieqError("give exactly one of --box LO HI and --bounds FILE.json")
    result = read_bounds(bounds) if bounds is not None else Box.cube(net.in_dim, *box)
    result.check_net(net)
    return result


def output_path(path: Path | None, option: str, suffixes: tuple[str, ...] | None = None) -> Path | None:
    """Validate an output path before any work: its folder exists and its suffix is one we can write."""
    if path is None:
        return None
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise QuasieqError(f"{option} {path}: the file name must end in {' or '.join(suffixes)}")
    if path.exists() and path.is_dir():
        raise QuasieqError(f"{option} {path}: is a folder, give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise QuasieqError(f"{option} {path}: folder {parent} does not exist")
    return path


@contextmanager
def staged_outputs() -> Iterator[Callable[[Path], Path]]:
    """All-or-nothing file output.

    Yields ``stage(path) -> temporary path``: write each output to the temporary path it returns (same
    folder and suffix as ``path``, so writers that infer the format from the suffix still work). When
    the block ends normally every temporary file is renamed onto its target (an atomic rename within a
    folder); when it raises, every temporary file is removed and no target is touched.
    """
    staged: list[tuple[Path, Path]] = []
    umask = os.umask(0)
    os.umask(umask)

    def stage(path: Path) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; give the target the usual permissions
        os.close(fd)
        staged.append((Path(tmp), path))
        return Path(tmp)

    try:
        yield stage
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)


def plottable(net: ReluNet, option: str = "--plot") -> None:
    """Refuse (before any work) to plot nets whose input dimension is not 1 or 2."""
    if net.in_dim not in (1, 2):
        raise QuasieqError(f"{option}: only inputs of dimension 1 or 2 can be drawn, this net takes {net.in_dim}")


def make_console() -> Console:
    """A console on the current stdout (created per call, so redirected streams are honoured)."""
    return Console(file=sys.stdout, highlight=False)


def enumerate_regions(net: ReluNet, box: Box, console: Console, max_regions: int | None = None):
    """``qe.regions`` with a progress bar (regions found, rate, elapsed) when stdout is a terminal.

    Returns ``(complex, seconds)`` with the wall-clock seconds of the enumeration itself.
    """
    from quasieq.regions import regions

    if not console.is_terminal:
        start = time.perf_counter()
        cx = regions(net, box, max_regions=max_regions)
        return cx, time.perf_counter() - start

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]regions"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[found]:>9,d} found"),
        TextColumn("{task.fields[rate]:>10,.0f}/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("regions", total=1.0, found=0, rate=0.0)
        start = time.perf_counter()

        def progress(found: int, fraction: float) -> None:
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=fraction, found=int(found), rate=found / elapsed)

        cx = regions(net, box, max_regions=max_regions, progress=progress)
        return cx, time.perf_counter() - start


def key_value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column rich table (the summary format every command prints)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    return table


def architecture(net: ReluNet) -> str:
    """``D-w_1-...-w_L-K``, e.g. ``2-16-16-1``."""
    return "-".join(str(n) for n in (net.in_dim, *net.widths, net.out_dim))


def _numbers(values, shown: int = 6) -> str:
    text = ", ".join(f"{v:g}" for v in values[:shown])
    return f"[{text}{', ...' if len(values) > shown else ''}]"


def region_rows(cx, seconds: float) -> list[tuple[str, str]]:
    """Summary rows of a region complex: count, dropped cells, radius, volumes, time, rate."""
    box_volume = cx.box.volume
    volume_note = "" if cx.volume_exact else f" (Monte Carlo, {cx.volume_samples} samples)"
    return [
        ("box lo", _numbers(cx.box.lo)),
        ("box hi", _numbers(cx.box.hi)),
        ("regions", f"{len(cx):,d}"),
        ("dropped lower-dim cells", f"{cx.dropped_lower_dim:,d}"),
        ("min radius", f"{cx.min_radius:.3g}"),
        ("total volume", f"{cx.volume_total:.12g}{volume_note}"),
        ("box volume", f"{box_volume:.12g}"),
        ("volume check |Σ-box|/box", f"{abs(cx.volume_total - box_volume) / box_volume:.2e}"),
        ("seconds", f"{seconds:.3f}"),
        ("regions/s", f"{len(cx) / max(seconds, 1e-9):,.0f}"),
    ]


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc))


# ----- commands -------------------------------------------------------------------------------------
@app.command()
def info(model: ModelArg) -> None:
    """Layers, widths, depth, neurons and parameters of MODEL."""
    net = load_model(model)
    console = make_console()
    layers = Table(title=f"{model.name}: {architecture(net)}", title_justify="left")
    for column in ("layer", "kind", "W shape (out, in)", "parameters"):
        layers.add_column(column, justify="left" if column == "kind" else "right")
    last = len(net.layers) - 1
    for i, (W, b) in enumerate(net.layers):
        nnz = W.nnz if hasattr(W, "nnz") else int((W != 0).sum())
        kind = "affine (output)" if i == last else "affine + ReLU"
        layers.add_row(str(i), kind, f"({W.shape[0]}, {W.shape[1]})", f"{nnz + b.size:,d}")
    console.print(layers)
    console.print(
        key_value_table(
            "sizes",
            [
                ("input dimension", str(net.in_dim)),
                ("output dimension", str(net.out_dim)),
                ("widths", ", ".join(map(str, net.widths)) or "-"),
                ("width", str(net.width)),
                ("hidden layers", str(net.hidden_layers)),
                ("depth", str(net.depth)),
                ("neurons", f"{net.neurons:,d}"),
                ("parameters", f"{net.parameters:,d}"),
            ],
        )
    )


@app.command("regions")
def regions_command(
    model: ModelArg,
    box: BoxOpt = None,
    bounds: BoundsOpt = None,
    json_path: JsonOpt = None,
    plot: PlotOpt = None,
    max_regions: MaxRegionsOpt = None,
) -> None:
    """Enumerate the exact linear regions of MODEL on a box (--box LO HI or --bounds FILE.json)."""
    net = load_model(model)
    domain = resolve_box(net, box, bounds)
    json_path = output_path(json_path, "--json")
    plot = output_path(plot, "--plot", PLOT_SUFFIXES)
    if plot is not None:
        plottable(net)

    console = make_console()
    cx, seconds = enumerate_regions(net, domain, console, max_regions)
    with staged_outputs() as stage:
        if json_path is not None:
            write_json(cx.to_json(), stage(json_path))
        if plot is not None:
            from quasieq.viz import plot_regions

            plot_regions(cx, stage(plot))
    console.print(key_value_table(f"{model.name}: {architecture(net)}", region_rows(cx, seconds)))
    for label, path in (("json", json_path), ("plot", plot)):
        if path is not None:
            console.print(f"{label}: {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for regions.png, regions.json, model.onnx.")] = Path(
        "quasieq-demo"
    ),
) -> None:
    """Train a small ReLU net on a 2-D target, enumerate its regions, write a plot, JSON and ONNX."""
    from quasieq.demo import run_demo

    if out.exists() and not out.is_dir():
        raise QuasieqError(f"--out {out}: exists and is not a folder")
    run_demo(out, make_console())


def main() -> None:
    """Entry point for ``python -m quasieq.cli``."""
    app()


if __name__ == "__main__":
    main()
