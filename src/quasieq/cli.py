"""The ``quasieq`` command line (typer + rich): ``info``, ``regions``, ``wide``, ``deep``, ``convert``, ``compare``,
``demo``.

Conventions every subcommand follows (each reuses the helpers below rather than repeating them):

* Exit codes: :data:`EXIT_OK` (0) success, :data:`EXIT_CHECK_FAILED` (1) a check failed,
  :data:`EXIT_BAD_INPUT` (2) bad input, 130 stopped by Ctrl-C and 143 by SIGTERM (one line
  ``interrupted``; see :mod:`quasieq.interrupts`).
* Bad input of any kind (missing or unreadable model, bad box or bounds file, dimension mismatch, an
  unsupported option combination, a usage error) prints exactly one line ``error: ...`` on stderr and
  exits 2, without a traceback. Commands only *raise* :class:`~quasieq.errors.QuasieqError`; the
  application's group (:class:`_QuasieqGroup`) turns it into that line, in one place.
* Options are validated before any work; output files are written to temporary names beside their
  targets and renamed only once every output is complete (:func:`~quasieq.io.outputs.staged_outputs`), so a failed run
  leaves no partial file behind.
* Long work shows a rich progress bar (or a spinner for steps without a known length) only when
  stdout is a terminal; on a pipe nothing but the summary is printed.
* ``wide``/``deep`` exit 1 when the built form's measured disagreement measure (float64, Monte Carlo)
  exceeds δ — for ``--task classification`` the measure where the labels differ; ``compare`` exits 1
  when the upper 95% limit of the measure (the exact measure with ``--exact``) exceeds ``--max-measure``.
  Outputs are still written in that case: they are the evidence.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import typer.main
from rich.console import Console
from rich.table import Table
from typer._click import Command, Context
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from quasieq.box import Box
from quasieq.budget import TimeLimitReached, memory_stage, time_limit
from quasieq.console import (
    Steps,
    TimeLimitOpt,
    bound_text,
    cluster,
    counting_progress,
    enumerate_regions,
    key_value_table,
    make_console,
    measure_text,
    numbers,
    one_line,
    write_region_json,
)
from quasieq.construct.registry import METHODS, TASKS, check_delta, check_method
from quasieq.construct.sizes import DEFAULT_MAX_FORM_BYTES
from quasieq.errors import QuasieqError
from quasieq.frontend.census import Census
from quasieq.frontend.compiler import Lowered
from quasieq.interrupts import MESSAGE as INTERRUPTED
from quasieq.interrupts import exit_code, handled_signals, interrupt_cause
from quasieq.io import load_lowered, save
from quasieq.io.convert import convert
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES, check_file_size
from quasieq.io.outputs import check_distinct, check_output, staged_outputs, write_json
from quasieq.net import SIZE_FACT_LABELS, ReluNet, provenance_of
from quasieq.regions import RegionComplex
from quasieq.regions.limits import RegionLimit, within_limits
from quasieq.slices import Slice, default_slice_box, requested_slice

if TYPE_CHECKING:
    from distributed import Client
    from quasieq.pipeline import Certificate
    from quasieq.verify import EquivalenceReport
    from quasieq.verify.data import DataAgreement

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIME_LIMIT = 3

#: Formats ``--plot`` can write (matplotlib's Agg canvas infers the format from the suffix).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``error: message`` as one line on stderr and exit with ``code`` (:data:`EXIT_BAD_INPUT`)."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()
    sys.exit(code)


#: Command groups whose modules load torch, by name: ``(module, typer app attribute)``, imported only when
#: the group is named on the command line or listed by ``--help``.
LAZY_GROUPS = {
    "quadratic": ("quasieq.quadratic_cli", "quadratic_app"),
    "experiment": ("quasieq.experiments_cli", "experiment_app"),
}

class _Stopped(Exception):
    """A signal stopped the command; carries the exit status (raised past typer, which would turn a
    KeyboardInterrupt into a silent exit 130 and cannot tell SIGTERM apart)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _QuasieqGroup(TyperGroup):
    """The app's click group: maps every bad-input error to one stderr line and exit code 2.

    Usage errors (missing argument, unknown option, a non-number where a number is expected),
    :class:`QuasieqError` raised by a command, operating-system errors on user-given paths and
    running out of memory all end here, so no command needs its own ``try``; so do Ctrl-C and
    SIGTERM (one line ``interrupted``, exit 130 or 143), after the stack has unwound and every staged
    output and temporary folder has been removed. The groups of :data:`LAZY_GROUPS` are imported on
    demand.
    """

    def invoke(self, ctx):  # noqa: D102
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Stopped(exit_code(exc)) from None
        except Exception as exc:
            # a signal handled while a numba kernel boxed its result surfaces as a SystemError whose
            # cause is the KeyboardInterrupt: it is an interrupt all the same
            cause = interrupt_cause(exc)
            if cause is None:
                raise
            raise _Stopped(exit_code(cause)) from None

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *LAZY_GROUPS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in LAZY_GROUPS:
            return super().get_command(ctx, cmd_name)
        module, attribute = LAZY_GROUPS[cmd_name]
        group = typer.main.get_group(getattr(importlib.import_module(module), attribute))
        group.name = cmd_name
        return group

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        with handled_signals():
            self._main_reporting_errors(args, prog_name, complete_var, **extra)

    def _main_reporting_errors(self, args, prog_name, complete_var, **extra) -> None:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _Stopped as stop:
            sys.stderr.write(f"{INTERRUPTED}\n")
            sys.stderr.flush()
            sys.exit(stop.status)
        except MemoryError as exc:
            fail(f"out of memory ({exc or 'MemoryError'}); use a smaller box, net or sample count, or the "
                 "size options (--max-regions, --samples)")
        except click_exceptions.NoArgsIsHelpError:
            sys.exit(EXIT_BAD_INPUT)  # typer has already printed the help
        except click_exceptions.ClickException as exc:
            fail(exc.format_message())
        except typer.Abort:
            fail("aborted")
        except TimeLimitReached as exc:
            fail(str(exc), EXIT_TIME_LIMIT)
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
    tuple[float, float] | None,
    typer.Option("--box", metavar="LO HI", help="The same bounds LO < HI on every input coordinate."),
]
BoundsOpt = Annotated[
    Path | None,
    typer.Option("--bounds", metavar="FILE.json", help='Per-coordinate bounds: {"lo": [...], "hi": [...]}.'),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", metavar="FILE", help="Write the result as JSON.")]
SaveRegionsOpt = Annotated[
    Path | None,
    typer.Option("--save", metavar="FILE.npz",
                 help="Write the regions as columnar .npz (fast; read back with qe.load_regions)."),
]
PlotOpt = Annotated[
    Path | None, typer.Option("--plot", metavar="FILE.png", help="Draw the result (inputs of dimension 1 or 2).")
]
#: Largest --samples: 10^9 points are drawn in bounded chunks in minutes; beyond that a run would not end
#: in any reasonable time, so the option is refused up front (one line) instead of looping for hours.
MAX_SAMPLES = 10**9
SamplesOpt = Annotated[
    int,
    typer.Option("--samples", metavar="N", min=1, max=MAX_SAMPLES,
                 help="Monte-Carlo sample points for the disagreement measure (at most 10^9)."),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", metavar="S", min=0, help="Seed of the Monte-Carlo sample points (≥ 0).")
]
TolOpt = Annotated[
    float | None,
    typer.Option("--tol", metavar="T", min=0.0,
                 help="Disagree means |a - b| > T (default 1e-6·max(1, output range of the first net)).")
]
PlaneOpt = Annotated[
    Path | None,
    typer.Option("--plane", metavar="POINTS.npy",
                 help="Work on the plane x = p0 + s(p1 - p0) + t(p2 - p0) through three model inputs (an array of "
                      "shape (3, *input_shape)); (s, t) in [0, 1]^2 unless --box/--bounds say otherwise."),
]
LineOpt = Annotated[
    Path | None,
    typer.Option("--line", metavar="POINTS.npy",
                 help="Work on the line x = p0 + s(p1 - p0) through two model inputs (shape (2, *input_shape)); "
                      "s in [0, 1] unless --box/--bounds say otherwise."),
]
MaxWeightBytesOpt = Annotated[
    int,
    typer.Option("--max-weight-bytes", metavar="N", min=1,
                 help="Refuse model and data files declaring more than N bytes of float64 values (default 1 GiB), "
                      "checked before reading, and ONNX lowerings that would build a larger matrix."),
]
MaxRegionsOpt = Annotated[
    int | None,
    typer.Option("--max-regions", metavar="N", min=1, help="Stop with exit code 2 when more than N regions exist."),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", metavar="N", min=1,
                 help="Run on a local Dask cluster of N worker processes (127.0.0.1); the result is the same."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", metavar="ADDRESS",
                 help="Run on the running Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786."),
]



# ----- shared helpers -------------------------------------------------------------------------------
def load_lowered_model(path: Path, task: str = "regression",
                       max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Lowered:
    """Read a model file with what its lowering found (``qe.io.load_lowered``: the net, the source's
    input shape, the op census, notes), refusing files that declare more than ``max_weight_bytes`` of
    weights before reading them; every failure becomes a one-line QuasieqError, and the lowering's
    notes (a dropped Softmax, an inconclusive load-time check) are printed as ``note: ...`` lines on
    stderr. ``task="classification"`` lets a trailing Softmax be dropped.

    The check for a missing file comes first so the message names the path; anything the reader raises
    on a corrupt file (protobuf, zip or numpy errors) is reported as "cannot read" with its reason.
    """
    if not path.exists():
        raise QuasieqError(f"{path}: no such model file")
    if not path.is_file():
        raise QuasieqError(f"{path}: not a file")
    try:
        lowered = load_lowered(path, task, max_weight_bytes)
    except QuasieqError:
        raise
    except Exception as exc:  # a reader library's own error on a corrupt file: report, never trace back
        raise QuasieqError(f"{path}: cannot read model ({type(exc).__name__}: {exc})") from None
    for note in lowered.notes:
        sys.stderr.write(f"note: {one_line(note)}\n")
    return lowered


def load_model(path: Path, task: str = "regression", max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> ReluNet:
    """Read a model file into a :class:`ReluNet` (:func:`load_lowered_model`)."""
    return load_lowered_model(path, task, max_weight_bytes).net


def read_bounds(path: Path) -> Box:
    """The box of a bounds file ``{"lo": [l_1, ..., l_D], "hi": [h_1, ..., h_D]}`` (at most 1 GiB long;
    numbers must fit a float64 and the JSON must not nest deeper than Python's recursion limit)."""
    if not path.is_file():
        raise QuasieqError(f"{path}: no such bounds file")
    check_file_size(path, DEFAULT_MAX_WEIGHT_BYTES)
    try:
        doc = json.loads(path.read_text())
    except RecursionError:
        raise QuasieqError(f"{path}: not a bounds file (JSON nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or an integer of > 4300 digits
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
    except OverflowError:
        raise QuasieqError(f"{path}: a bound is too large for a float64 (beyond ±1.8e308)") from None
    except QuasieqError as exc:
        raise QuasieqError(f"{path}: {exc}") from None


def resolve_box(net: ReluNet, cube: tuple[float, float] | None, bounds: Path | None,
                default: Box | None = None) -> Box:
    """The box given by exactly one of ``--box LO HI`` (``cube``) and ``--bounds FILE`` (or ``default``
    when neither is given and there is one), checked against the net."""
    if cube is None and bounds is None and default is not None:
        return default
    if cube is not None and bounds is None:
        result = Box.cube(net.in_dim, *cube)
    elif bounds is not None and cube is None:
        result = read_bounds(bounds)
    else:
        raise QuasieqError("give exactly one of --box LO HI and --bounds FILE.json")
    result.check_net(net)
    return result


def sliced(net: ReluNet, plane: Path | None, line: Path | None, cube: tuple[float, float] | None,
           bounds: Path | None, max_weight_bytes: int) -> tuple[ReluNet, Box, Slice | None]:
    """``(net, box, cut)``: MODEL on the ``--plane``/``--line`` slice ``cut`` (the sliced net and the box of
    slice coordinates, [0, 1]^k by default) or, without one, the net itself on its box and ``cut = None``."""
    cut = requested_slice(plane, line, max_weight_bytes)
    if cut is None:
        return net, resolve_box(net, cube, bounds), None
    net = cut.apply(net)
    return net, resolve_box(net, cube, bounds, default_slice_box(cut)), cut


def on_slice(title: str, cut: Slice | None) -> str:
    """A summary title naming the slice in use."""
    return title if cut is None else f"{title} on the {cut.describe()}"


def with_slice(doc: dict, cut: Slice | None) -> dict:
    """A JSON document with the key ``slice`` (kind, source, points, origin, directions) when one is in use."""
    return doc if cut is None else {**doc, "slice": cut.to_json()}


def output_path(path: Path | None, option: str, suffixes: tuple[str, ...] | None = None) -> Path | None:
    """Validate an output path before any work (:func:`quasieq.io.outputs.check_output`: suffix, kind of
    target, folder exists and is writable)."""
    return None if path is None else check_output(path, option, suffixes)


def plottable(net: ReluNet, option: str = "--plot") -> None:
    """Refuse (before any work) to plot nets whose input dimension is not 1 or 2."""
    if net.in_dim not in (1, 2):
        raise QuasieqError(f"{option}: only inputs of dimension 1 or 2 can be drawn, this net takes {net.in_dim}")


def region_rows(cx: RegionComplex, seconds: float) -> list[tuple[str, str]]:
    """Summary rows of a region complex: count, dropped cells, radius, volumes, time, rate."""
    box_volume = cx.box.volume
    volume_note = "" if cx.volume_exact else f" (Monte Carlo, {cx.volume_samples} samples)"
    return [
        ("box lo", numbers(cx.box.lo)),
        ("box hi", numbers(cx.box.hi)),
        ("regions", f"{len(cx):,d}"),
        ("dropped lower-dim cells", f"{cx.dropped_lower_dim:,d}"),
        ("min radius", f"{cx.min_radius:.3g}"),
        ("total volume", f"{cx.volume_total:.12g}{volume_note}"),
        ("box volume", f"{box_volume:.12g}"),
        ("volume check |Σ-box|/box", f"{abs(cx.volume_total - box_volume) / box_volume:.2e}"),
        ("seconds", f"{seconds:.3f}"),
        ("regions/s", f"{len(cx) / max(seconds, 1e-9):,.0f}"),
    ]


def choice(value: str, allowed: Collection[str], option: str) -> str:
    if value not in allowed:
        raise QuasieqError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
    return value


# ----- wide / deep: build, certify, describe ---------------------------------------------------------
#: Model formats ``--out`` writes (``qe.save`` picks the format from the suffix).
MODEL_SUFFIXES = (".onnx", ".npz", ".qtorch")
DTYPES = ("float32", "float64")


def transform_rows(net: ReluNet, built: ReluNet, certificate: Certificate, seconds: float) -> list[tuple[str, str]]:
    """Summary rows of a built form: sizes beside Table 1's, the bound, the measured measures."""
    from quasieq.pipeline import table1_sizes  # constructions: lazy

    p = provenance_of(built)
    report, report32 = certificate
    table1 = table1_sizes(built)
    rows = [
        ("original", net.architecture),
        ("method", p.method),
        ("task", p.task),
        ("delta", f"{p.delta:g}"),
        *[(SIZE_FACT_LABELS[key], f"{value:,d}") for key, value in p.size_facts().items()],
        ("width", f"{built.width:,d}"),
        ("hidden layers", f"{built.hidden_layers:,d}"),
        ("depth", f"{built.depth:,d}"),
        ("neurons", f"{built.neurons:,d}"),
        ("parameters", f"{built.parameters:,d}"),
        ("max |weight|", f"{built.max_abs_weight():.3g}"),
        *([] if table1 is None else [("Table 1 width", f"{table1['width']:,d}"),
                                     ("Table 1 depth", f"{table1['depth']:,d}")]),
        ("error bound", bound_text(built)),
        ("measured measure [95% CI]", measure_text(report)),
        ("float32 ONNX measure [95% CI]", measure_text(report32)),
    ]
    if p.task == "classification":
        rows += [
            ("label disagreement measure", f"{report.label_disagreement_measure:.3g}"),
            ("float32 label disagreement measure", f"{report32.label_disagreement_measure:.3g}"),
        ]
    rows += [
        ("samples", f"{report.samples:,d}"),
        ("tolerance", f"{report.tolerance:.3g}"),
        ("sup error", f"{report.sup_error:.3g}"),
        ("seconds (regions + build)", f"{seconds:.3f}"),
    ]
    return rows


def draw_form(form: str, net: ReluNet, built: ReluNet, cx: RegionComplex, tol: float, path: Path, steps: Steps,
              method: str, max_simplices: int | None, caption: str | None = None) -> None:
    """The ``wide|deep --plot`` picture. D = 1: the original and both exact forms on one axis (the other
    form is built from the same regions by ``method``). D = 2: the simplices the form was built on, over
    the regions, beside the built form's error set (|a − b| > ``tol``, or different labels for
    classification)."""
    from quasieq.pipeline import build_form, form_simplices  # constructions: lazy

    provenance = provenance_of(built)
    if net.in_dim == 1:
        other = "deep" if form == "wide" else "wide"
        forms = {form: built, other: build_form(other, net, cx.box, float(provenance.delta or 0.0), cx=cx,
                                                method=method, task=provenance.task,
                                                max_simplices=max_simplices, step=steps)}
        viz().plot_univariate(net, {name: forms[name] for name in ("wide", "deep")}, cx.box, path, caption=caption)
        return
    with steps("drawing the simplices and the error set"):
        simplices = form_simplices(net, built, cx)
        viz().plot_transform(cx, simplices, net, built, path, tol, task=provenance.task, caption=caption)


def viz():
    """The plotting module, imported on first use: matplotlib is only loaded by commands that draw."""
    import quasieq.viz  # heavy (matplotlib): lazy

    return quasieq.viz


# ----- commands -------------------------------------------------------------------------------------
def layer_table(title: str, net: ReluNet, census: Census | None) -> Table:
    """One row per IR layer: its kind (ReLU and linear units), W's shape, its parameters and, for a
    lowered model, the source node whose piecewise-linear stage ended it."""
    layers = Table(title=title, title_justify="left")
    columns = ["layer", "kind", "W shape (out, in)", "parameters"] + (["from"] if census is not None else [])
    for column in columns:
        layers.add_column(column, justify="left" if column in ("kind", "from") else "right")
    last = len(net.layers) - 1
    for i, (W, b) in enumerate(net.layers):
        nnz = W.nnz if hasattr(W, "nnz") else int((W != 0).sum())
        if i == last:
            kind = "affine (output)"
        elif net.relu_masks[i].all():
            kind = "affine + ReLU"
        else:
            kind = f"affine + ReLU on {net.relu_widths[i]}, {W.shape[0] - net.relu_widths[i]} linear"
        row = [str(i), kind, f"({W.shape[0]}, {W.shape[1]})", f"{nnz + b.size:,d}"]
        if census is not None:
            row.append(census.layer_nodes[i] if i < len(census.layer_nodes) else "output" if i == last else "")
        layers.add_row(*row)
    return layers


def census_table(census: Census) -> Table:
    """The op census of a lowering: per source op, its nodes, the IR layers its stages made and their
    ReLU and pass-through units."""
    table = Table(title=f"lowering census ({census.source})", title_justify="left")
    for column in ("source op", "nodes", "IR layers", "ReLU units", "pass-through units"):
        table.add_column(column, justify="left" if column == "source op" else "right")
    for row in census.rows():
        table.add_row(*row)
    return table


@app.command()
def info(model: ModelArg, max_weight_bytes: MaxWeightBytesOpt = DEFAULT_MAX_WEIGHT_BYTES) -> None:
    """Layers, widths, depth, neurons (ReLU and linear units apart) and parameters of MODEL; for an ONNX
    model also the op census of its lowering (which source ops became how many layers and units)."""
    lowered = load_lowered_model(model, max_weight_bytes=max_weight_bytes)
    net = lowered.net
    console = make_console()
    console.print(layer_table(f"{model.name}: {net.architecture}", net, lowered.census))
    if lowered.census is not None:
        console.print(census_table(lowered.census))
    console.print(
        key_value_table(
            "sizes",
            [
                ("input shape", "×".join(map(str, lowered.input_shape))),
                ("input dimension", str(net.in_dim)),
                ("output dimension", str(net.out_dim)),
                ("widths", ", ".join(map(str, net.widths)) or "-"),
                ("width", str(net.width)),
                ("hidden layers", str(net.hidden_layers)),
                ("depth", str(net.depth)),
                ("neurons", f"{net.neurons:,d}"),
                ("ReLU units", f"{net.relu_units:,d}"),
                ("linear units", f"{net.linear_units:,d}"),
                ("parameters", f"{net.parameters:,d}"),
            ],
        )
    )


def print_paths(console: Console, paths: dict[str, Path | None]) -> None:
    """``label: path`` for every output written."""
    for label, path in paths.items():
        if path is not None:
            console.print(f"{label}: {path}")


@app.command("regions")
def regions_command(
    model: ModelArg,
    cube: BoxOpt = None,
    bounds: BoundsOpt = None,
    json_path: JsonOpt = None,
    save_path: SaveRegionsOpt = None,
    plot: PlotOpt = None,
    max_regions: MaxRegionsOpt = None,
    plane: PlaneOpt = None,
    line: LineOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", metavar="DIR",
                     help="Write each finished subtree of the region tree to DIR, so that --resume can continue."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --checkpoint DIR: finished subtrees are read back.")
    ] = False,
    max_weight_bytes: MaxWeightBytesOpt = DEFAULT_MAX_WEIGHT_BYTES,
    limit_s: TimeLimitOpt = None,
) -> None:
    """Enumerate the exact linear regions of MODEL on a box (--box LO HI or --bounds FILE.json), or on a
    plane or line through given inputs (--plane / --line POINTS.npy)."""
    net, box, cut = sliced(load_model(model, max_weight_bytes=max_weight_bytes), plane, line, cube, bounds,
                           max_weight_bytes)
    json_path = output_path(json_path, "--json")
    save_path = output_path(save_path, "--save", (".npz",))
    plot = output_path(plot, "--plot", PLOT_SUFFIXES)
    check_distinct({"--json": json_path, "--plot": plot})
    if plot is not None:
        plottable(net)
    if resume and checkpoint is None:
        raise QuasieqError("--resume continues a checkpointed run: give its --checkpoint DIR")

    console = make_console()
    with cluster(workers, scheduler, console) as client, time_limit(limit_s), \
            memory_stage("enumerating regions", REGIONS_ADVICE):
        cx, seconds = within_limits(
            lambda cap: enumerate_regions(net, box, console, cap, client=client, checkpoint=checkpoint, resume=resume),
            RegionLimit(max_regions, "--max-regions"))
    with staged_outputs() as stage:
        if save_path is not None:
            cx.save(stage(save_path))
        if json_path is not None:
            extra = None if cut is None else {"slice": cut.to_json()}
            write_region_json(cx, stage(json_path), console, extra)
        if plot is not None:
            viz().plot_regions(cx, stage(plot), caption=None if cut is None else cut.describe())
    console.print(key_value_table(on_slice(f"{model.name}: {net.architecture}", cut), region_rows(cx, seconds)))
    print_paths(console, {"npz": save_path, "json": json_path, "plot": plot})


DeltaOpt = Annotated[
    float, typer.Option("--delta", metavar="D", help="Allowed disagreement: an absolute Lebesgue measure on the box.")
]
MethodOpt = Annotated[
    str | None,
    typer.Option("--method", metavar="|".join(METHODS),
                 help="Construction for inputs of dimension ≥ 2 (default: compact; demorgan for classification): "
                      + "; ".join(f"{name}: {summary}" for name, summary in METHODS.items()) + "."),
]
TaskOpt = Annotated[
    str, typer.Option("--task", metavar="|".join(TASKS), help="What must agree: outputs or labels.")
]
ModelOutOpt = Annotated[
    Path | None, typer.Option("--out", metavar="FILE.onnx", help="Write the built network (.onnx, .npz or .qtorch).")
]
DtypeOpt = Annotated[
    str | None, typer.Option("--dtype", metavar="|".join(DTYPES), help="ONNX weight precision (default float32).")
]
MaxSimplicesOpt = Annotated[
    int | None,
    typer.Option("--max-simplices", metavar="N", min=1,
                 help="Stop with exit code 2 when more than N simplices are needed (the enumeration stops at N "
                      "regions)."),
]
MaxFormBytesOpt = Annotated[
    int | None,
    typer.Option("--max-form-bytes", metavar="N", min=1,
                 help="Refuse, before building, a compact or paper form whose build needs more than N bytes "
                      "(default 2 GiB)."),
]

#: What bounds each stage, named by the one-line errors of memory_stage.
REGIONS_ADVICE = "bound it with --max-regions N or shrink the box"
BUILD_ADVICE = "bound it with --max-simplices N or --max-form-bytes N, or shrink the box"
CHECK_ADVICE = "use fewer --samples"
EXACT_ADVICE = "bound it with --max-cells N, or compare by sampling"


def transform_regions(net: ReluNet, box: Box, console: Console, max_regions: int | None,
                      max_simplices: int | None, client: Client | None) -> tuple[RegionComplex, float]:
    """The enumeration of ``wide``/``deep`` (on ``client``'s cluster when there is one): stopped at
    ``--max-regions``, and at ``--max-simplices`` regions (each region is at least one simplex), the
    message naming the flag that stopped it."""
    return within_limits(lambda cap: enumerate_regions(net, box, console, cap, client=client),
                         RegionLimit(max_regions, "--max-regions"),
                         RegionLimit(max_simplices, "--max-simplices", ", each at least one simplex"))


def model_output(out: Path | None, dtype: str | None) -> Path | None:
    """``--out`` and ``--dtype`` checked together: a dtype needs an output, and .npz files hold float64."""
    out = output_path(out, "--out", MODEL_SUFFIXES)
    if dtype is not None:
        choice(dtype, DTYPES, "--dtype")
        if out is None or (out.suffix.lower() == ".npz" and dtype != "float64"):
            raise QuasieqError(f"--dtype {dtype} applies to an --out FILE.onnx or .qtorch (.npz files hold float64)")
    return out


def print_delta_check(console: Console, report: EquivalenceReport, delta: float, box: Box, task: str) -> bool:
    """Print the δ check's verdict line, judged on the upper 95% limit (verify/certificate.py): passed,
    FAILED, or inconclusive with the sample count that could decide; True when it passed."""
    from quasieq.verify.certificate import judge  # the checker loads on use: lazy

    labels = task == "classification"
    verdict = judge(report, delta, box.volume, labels=labels)
    console.print(verdict.sentence("label disagreement measure" if labels else "disagreement measure"))
    return verdict.passed


# Long by its options (one typer parameter per flag, 24 of them); the body is four phases in order:
# validate every option before any work, build and certify under the limits, write all outputs at once, print.
def transform_command(
    ctx: typer.Context,
    model: ModelArg,
    cube: BoxOpt = None,
    bounds: BoundsOpt = None,
    delta: DeltaOpt = 1e-3,
    method: MethodOpt = None,
    task: TaskOpt = "regression",
    out: ModelOutOpt = None,
    dtype: DtypeOpt = None,
    json_path: JsonOpt = None,
    plot: PlotOpt = None,
    samples: SamplesOpt = 100_000,
    seed: SeedOpt = 0,
    tol: TolOpt = None,
    max_simplices: MaxSimplicesOpt = None,
    plane: PlaneOpt = None,
    line: LineOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    max_weight_bytes: MaxWeightBytesOpt = DEFAULT_MAX_WEIGHT_BYTES,
    max_regions: MaxRegionsOpt = None,
    max_form_bytes: MaxFormBytesOpt = None,
    limit_s: TimeLimitOpt = None,
) -> None:
    """Rebuild MODEL wide (``quasieq wide``) or deep (``quasieq deep``) on a box, and certify the result.

    Prints the built form's sizes beside Table 1's for the same D and M, the analytic bound and the
    measured disagreement measure (float64 and float32 ONNX export); exits 1 when the upper 95% limit
    of the measured measure exceeds δ (or too few samples were drawn to show it below δ).
    """
    from quasieq.pipeline import build_form, certify, transform_json  # constructions: lazy

    form = str(ctx.info_name)  # the command's name: wide or deep
    net, box, cut = sliced(load_model(model, task, max_weight_bytes), plane, line, cube, bounds, max_weight_bytes)
    check_delta(delta, "--delta")
    method = check_method(method, task, option="--method", task_option="--task")
    out = model_output(out, dtype)
    json_path = output_path(json_path, "--json")
    plot = output_path(plot, "--plot", PLOT_SUFFIXES)
    check_distinct({"--out": out, "--json": json_path, "--plot": plot})
    if plot is not None:
        plottable(net)

    console = make_console()
    steps = Steps(console)
    if task == "classification" and net.out_dim == 1:
        console.print(f"note: {model.name} has one output h: its classes are read by the one-logit rule "
                      "[h > 0], and the rebuilt classifier outputs the two scores (0, h)", markup=False)
    max_bytes = DEFAULT_MAX_FORM_BYTES if max_form_bytes is None else max_form_bytes
    with cluster(workers, scheduler, console) as client, time_limit(limit_s):  # regions and float64 check there
        with memory_stage("enumerating regions", REGIONS_ADVICE):
            cx, region_seconds = transform_regions(net, box, console, max_regions, max_simplices, client)
        start = time.perf_counter()
        with memory_stage(f"building the {form} form", BUILD_ADVICE):
            built = build_form(form, net, box, delta, cx=cx, step=steps, method=method, task=task,
                               max_simplices=max_simplices, max_bytes=max_bytes)
        seconds = region_seconds + time.perf_counter() - start
        with memory_stage("checking the built form", CHECK_ADVICE):
            certificate = certify(net, built, box, samples=samples, tol=tol, seed=seed, task=task, step=steps,
                                  client=client)
    with staged_outputs() as stage:
        if out is not None:
            save(built, stage(out), dtype=dtype)
        if json_path is not None:
            write_json(with_slice(transform_json(form, built, certificate), cut), stage(json_path))
        if plot is not None:
            draw_form(form, net, built, cx, certificate.report.tolerance, stage(plot), steps, method, max_simplices,
                      caption=None if cut is None else cut.describe())
    console.print(key_value_table(on_slice(f"{model.name} → {form}", cut), transform_rows(net, built, certificate,
                                                                                          seconds)))
    passed = print_delta_check(console, certificate.report, delta, box, task)
    print_paths(console, {"model": out, "json": json_path, "plot": plot})
    if not passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


app.command("wide", help="Rebuild MODEL wide and shallow on a box (--box LO HI or --bounds FILE.json), with a "
            "certificate; exit 1 when the upper 95% limit of the measured disagreement exceeds --delta.")(
    transform_command)
app.command("deep", help="Rebuild MODEL deep and narrow on a box (--box LO HI or --bounds FILE.json), with a "
            "certificate; exit 1 when the upper 95% limit of the measured disagreement exceeds --delta.")(
    transform_command)


@app.command("convert")
def convert_command(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Model file: .onnx, .npz or .qtorch.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Where to write it: .onnx, .npz or .qtorch.")],
    dtype: Annotated[
        str | None, typer.Option("--dtype", metavar="|".join(DTYPES),
                                 help="Precision of OUT (default float32 for .onnx, float64 otherwise).")
    ] = None,
    task: TaskOpt = "regression",
    max_weight_bytes: MaxWeightBytesOpt = DEFAULT_MAX_WEIGHT_BYTES,
) -> None:
    """Lower IN and write the lowered network as OUT (.onnx, .npz, or .qtorch: quasieq's PyTorch state
    file, no pickle), then check OUT, run by the tool that reads it, against the lowered net."""
    choice(task, TASKS, "--task")
    output_path(target, "OUT", MODEL_SUFFIXES)  # checked before any work
    if dtype is not None:
        choice(dtype, DTYPES, "--dtype")
    lowered = load_lowered_model(source, task, max_weight_bytes)
    console = make_console()
    with staged_outputs() as stage:
        conversion = convert(lowered, target, dtype=dtype, written=stage(target))
    net = lowered.net
    console.print(key_value_table(f"{source.name} → {target.name}", [
        ("lowered", net.architecture),
        ("ReLU units", f"{net.relu_units:,d}"),
        ("linear units", f"{net.linear_units:,d}"),
        ("written as", f"{target.suffix.lower()[1:]} ({conversion.dtype})"),
        ("check of the written file", "passed"),
    ]))
    if lowered.census is not None:
        console.print(census_table(lowered.census))
    for note in conversion.notes:
        sys.stderr.write(f"note: {one_line(note)}\n")
    print_paths(console, {"model": target})


# ----- compare --------------------------------------------------------------------------------------
def same_shape(a: Path, net_a: ReluNet, b: Path, net_b: ReluNet) -> None:
    """Refuse to compare nets with different input or output dimensions."""
    if (net_a.in_dim, net_a.out_dim) != (net_b.in_dim, net_b.out_dim):
        raise QuasieqError(
            f"{a.name} maps {net_a.in_dim} → {net_a.out_dim} but {b.name} maps {net_b.in_dim} → {net_b.out_dim}: "
            "only nets with the same input and output dimensions can be compared"
        )


def compare_rows(a: Path, net_a: ReluNet, b: Path, net_b: ReluNet, box: Box, report: EquivalenceReport,
                 agreement: DataAgreement | None, data: Path | None, seconds: float) -> list[tuple[str, str]]:
    """Summary rows of ``compare``: the nets, the measure with its interval, the data agreement."""
    exact = report.ci95 is None
    rows = [
        ("A", f"{a.name}: {net_a.architecture}"),
        ("B", f"{b.name}: {net_b.architecture}"),
        ("method", report.method),
        ("disagreement measure [95% CI]", measure_text(report)),
        ("disagreement fraction", f"{report.disagreement_fraction:.3g}"),
        ("box volume", f"{box.volume:.6g}"),
        ("sup error", f"{report.sup_error:.3g}"),
        ("tolerance", f"{report.tolerance:.3g}"),
        ("cells" if exact else "samples", f"{report.cells if exact else report.samples:,d}"),
        ("witness", numbers(report.witness)),
        ("seconds", f"{seconds:.3f}"),
    ]
    if agreement is not None and data is not None:
        rows.append((f"label agreement on {data.name} [95% CI of disagreement]",
                     f"{agreement.agreement:.4f} ({agreement.disagreements} of {agreement.samples}) "
                     f"[{agreement.ci95[0]:.3g}, {agreement.ci95[1]:.3g}]"))
    return rows


def print_measure_check(console: Console, report: EquivalenceReport, max_measure: float) -> bool:
    """Print the ``--max-measure`` verdict on the measure's upper 95% limit (the exact measure when
    exact); True when it passed."""
    upper = report.disagreement_measure if report.ci95 is None else report.ci95[1]
    passed = upper <= max_measure
    console.print(f"check: measure upper limit {upper:.3g} {'≤' if passed else '>'} --max-measure {max_measure:g}: "
                  f"{'passed' if passed else 'FAILED'}")
    return passed


@app.command("compare")
# Long by its options (one typer parameter per flag); the body is validate, then one of the exact or the
# Monte-Carlo comparison, then the data agreement, write and print, each a few lines calling the library.
def compare_command(
    a: Annotated[Path, typer.Argument(metavar="A", help="First model file (.onnx or .npz).")],
    b: Annotated[Path, typer.Argument(metavar="B", help="Second model file (.onnx or .npz).")],
    cube: BoxOpt = None,
    bounds: BoundsOpt = None,
    samples: SamplesOpt = 100_000,
    tol: TolOpt = None,
    seed: SeedOpt = 0,
    json_path: JsonOpt = None,
    max_measure: Annotated[
        float | None,
        typer.Option("--max-measure", metavar="M", min=0.0,
                     help="Exit 1 when the disagreement measure's upper 95% limit exceeds M."),
    ] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Exact measure from both nets' regions instead of sampling.")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", metavar="FILE",
                     help="Also the label agreement on a data set (.npz with X[, y] or .csv, label last)."),
    ] = None,
    plane: PlaneOpt = None,
    line: LineOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    max_weight_bytes: MaxWeightBytesOpt = DEFAULT_MAX_WEIGHT_BYTES,
    max_regions: Annotated[
        int | None,
        typer.Option("--max-regions", metavar="N", min=1,
                     help="With --exact: stop with exit code 2 when an enumeration has more than N regions."),
    ] = None,
    max_cells: Annotated[
        int | None,
        typer.Option("--max-cells", metavar="N", min=1,
                     help="With --exact: stop with exit code 2 when the common refinement has more than N cells."),
    ] = None,
    limit_s: TimeLimitOpt = None,
) -> None:
    """Measure where A and B disagree (|A - B| > tol) on a box: Monte Carlo with a 95% interval, or exact;
    with --data, also how often their labels (argmax; h > 0 for one logit) agree on the data."""
    # the checker (scipy.stats, onnxruntime) loads on use: lazy
    from quasieq.verify import compare
    from quasieq.verify.compare import exact_report
    from quasieq.verify.data import data_agreement, load_dataset

    if not exact and (max_regions is not None or max_cells is not None):
        raise QuasieqError("--max-regions and --max-cells bound the exact check: add --exact")
    net_a, net_b = (load_model(m, max_weight_bytes=max_weight_bytes) for m in (a, b))
    same_shape(a, net_a, b, net_b)
    net_a, box, cut = sliced(net_a, plane, line, cube, bounds, max_weight_bytes)
    if cut is not None:
        if data is not None:
            raise QuasieqError("--data measures label agreement on the data's own inputs: drop --plane/--line")
        net_b = cut.apply(net_b)
    json_path = output_path(json_path, "--json")
    dataset = None if data is None else load_dataset(data, max_weight_bytes)

    console = make_console()
    with cluster(workers, scheduler, console) as client, time_limit(limit_s):
        start = time.perf_counter()
        if exact:
            with memory_stage("comparing exactly", EXACT_ADVICE), counting_progress(
                console, "cells", plain_lines=client is not None, subtrees=client is not None
            ) as progress:
                report = exact_report(net_a, net_b, box, tol=tol, max_regions=max_regions, max_cells=max_cells,
                                      progress=progress, client=client)
        else:
            with memory_stage("comparing", CHECK_ADVICE), Steps(console)(f"comparing on {samples:,d} points"):
                report = compare(net_a, net_b, box, samples=samples, tol=tol, seed=seed, client=client)
        agreement = None if dataset is None else data_agreement(net_a, net_b, dataset[0], dataset[1], box=box)
        seconds = time.perf_counter() - start
    document = report.to_json() if agreement is None else {**report.to_json(), "data": agreement.to_json()}
    document = with_slice(document, cut)
    with staged_outputs() as stage:
        if json_path is not None:
            write_json(document, stage(json_path))
    console.print(key_value_table(on_slice("compare", cut),
                                  compare_rows(a, net_a, b, net_b, box, report, agreement, data, seconds)))
    print_paths(console, {"json": json_path})
    if max_measure is not None and not print_measure_check(console, report, max_measure):
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder for the plots, JSON and ONNX models.")
    ] = Path("quasieq-demo"),
    samples: Annotated[
        int | None,
        typer.Option("--samples", metavar="N", min=1, max=MAX_SAMPLES,
                     help="Monte-Carlo points per comparison (default 100,000 compact, 20,000 paper)."),
    ] = None,
) -> None:
    """Train a small ReLU net on a 2-D target, enumerate its regions, rebuild it wide and deep (compact
    and paper methods), certify each form, and write plots, JSON and ONNX models."""
    from quasieq.demo import RebuildSetup, run_demo  # heavy (torch, matplotlib, scikit-learn): lazy

    if out.exists() and not out.is_dir():
        raise QuasieqError(f"--out {out}: exists and is not a folder")
    setup = RebuildSetup() if samples is None else RebuildSetup(samples_compact=samples, samples_paper=samples)
    run_demo(out, make_console(), rebuild_setup=setup)




def main() -> None:
    """Entry point for ``python -m quasieq.cli``."""
    app()


if __name__ == "__main__":
    main()
