"""Terminal output shared by the commands and the demo: the rich console, spinners, progress bars,
summary tables and the formatting of measures. Nothing here computes a result."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from quasieq.box import Box
from quasieq.net import ReluNet
from quasieq.regions import RegionComplex, regions
from quasieq.regions.schedule import RegionProgress, RegionProgressFn

if TYPE_CHECKING:  # the checker and Dask are imported by the commands that use them, not by every command
    from distributed import Client
    from quasieq.verify import EquivalenceReport

#: ``--time-limit SECONDS``: the option regions, wide, deep, compare and experiment share (quasieq.budget).
TimeLimitOpt = Annotated[
    float | None,
    typer.Option("--time-limit", metavar="SECONDS", min=0.0,
                 help="Stop with exit code 3 once SECONDS of wall-clock time have passed (checked between chunks)."),
]

#: Width of the tables printed to a file or pipe (a log, CI): rich's default there is 80 columns, which
#: truncates the wide tables of ``demo`` and ``experiment`` into unreadable "…" cells.
PLAIN_OUTPUT_WIDTH = 160


def make_console() -> Console:
    """A console on the current stdout (created per call, so redirected streams are honoured); off a
    terminal, PLAIN_OUTPUT_WIDTH columns wide."""
    return Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else PLAIN_OUTPUT_WIDTH)


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(message).split())


class Steps:
    """The step hook of :mod:`quasieq.pipeline` on a console: ``steps(text)`` shows a rich spinner with
    ``text`` while the step runs (only on a terminal) and prints each warning the step raises (e.g. the
    paper method's rounding amplification) as one ``warning: ...`` line on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def __call__(self, text: str) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.console.is_terminal:
                with self.console.status(text):
                    yield
            else:
                yield
        for warning in caught:
            sys.stderr.write(f"warning: {one_line(str(warning.message))}\n")


@contextmanager
def counting_progress(console: Console, what: str, *, plain_lines: bool = False,
                      subtrees: bool = False) -> Iterator[RegionProgressFn | None]:
    """Yield a progress callback for ``regions(progress=...)`` driving a bar (``what`` found, per
    second, elapsed and the estimated time left; subtrees left when ``subtrees``) when stdout is a
    terminal. Off a terminal it yields :func:`progress_lines` when ``plain_lines``, else None."""
    start = time.perf_counter()
    if not console.is_terminal:
        yield progress_lines(start, what) if plain_lines else None
        return
    columns = [
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[found]:>9,d} found"),
        TextColumn("{task.fields[rate]:>10,.0f}/s"),
    ]
    if subtrees:
        columns.append(TextColumn("{task.fields[left]:>4d} subtrees left"))
    columns += [TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=1.0, found=0, rate=0.0, left=1)

        def update(p: RegionProgress) -> None:
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=p.fraction, found=int(p.found), rate=p.found / elapsed, left=p.subtrees_left)

        yield update


def enumerate_regions(net: ReluNet, box: Box, console: Console, max_regions: int | None = None, *,
                      client: Client | None = None, checkpoint: Path | None = None,
                      resume: bool = False) -> tuple[RegionComplex, float]:
    """``qe.regions`` with a progress bar (:func:`counting_progress`) when stdout is a terminal. Off a
    terminal a run on a cluster or with a checkpoint prints plain progress lines on stderr (at most one
    per PROGRESS_EVERY_S seconds); a plain run prints nothing.

    Returns ``(complex, seconds)`` with the wall-clock seconds of the enumeration itself.
    """
    plain = client is not None or checkpoint is not None
    with counting_progress(console, "regions", plain_lines=plain, subtrees=client is not None) as progress:
        start = time.perf_counter()
        cx = regions(net, box, max_regions=max_regions, progress=progress, client=client, checkpoint=checkpoint,
                     resume=resume)
        return cx, time.perf_counter() - start


#: Seconds between two plain progress lines off a terminal.
PROGRESS_EVERY_S = 5.0


def progress_lines(start: float, what: str = "regions") -> RegionProgressFn:
    """A progress callback writing ``regions: N found, F% of the tree, S subtrees left, R/s`` lines on
    stderr (``what`` in place of "regions"), at most one per PROGRESS_EVERY_S seconds."""
    last = [start]

    def update(p: RegionProgress) -> None:
        now = time.perf_counter()
        if now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        rate = p.found / max(now - start, 1e-9)
        sys.stderr.write(f"{what}: {p.found:,d} found, {100 * p.fraction:.1f}% of the tree, "
                         f"{p.subtrees_left} subtrees left, {rate:,.0f}/s\n")
        sys.stderr.flush()

    return update


@contextmanager
def cluster(workers: int | None, scheduler: str | None, console: Console) -> Iterator[Client | None]:
    """The Dask client of --workers / --scheduler (None without either), its address line printed."""
    if workers is None and scheduler is None:  # no cluster asked for: Dask (1 s to import) stays unloaded
        yield None
        return
    from quasieq.cluster.session import cluster_client  # Dask is heavy to import: only when asked for

    with cluster_client(workers, scheduler, echo=console.print) as client:
        yield client


def write_region_json(cx: RegionComplex, path: Path, console: Console, extra: dict | None = None) -> None:
    """Stream the complex's JSON document (with the keys of ``extra`` added) to ``path``, with a
    progress bar on a terminal."""
    if not console.is_terminal:
        cx.write_json(path, extra=extra)
        return
    columns = (TextColumn("[bold]json"), BarColumn(), TextColumn("{task.completed:>9,.0f} / {task.total:,.0f} regions"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("json", total=max(len(cx), 1))
        cx.write_json(path, progress=lambda written, total: bar.update(task, completed=written), extra=extra)


def key_value_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    """A two-column rich table (the summary format every command prints)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    return table


def numbers(values: Sequence[float] | np.ndarray, shown: int = 6) -> str:
    """``[v_1, ..., v_shown, ...]`` in ``%g``."""
    text = ", ".join(f"{v:g}" for v in values[:shown])
    return f"[{text}{', ...' if len(values) > shown else ''}]"


def measure_text(report: EquivalenceReport) -> str:
    """``m [lo, hi]`` (Monte Carlo, 95% Clopper–Pearson) or ``m (exact)``."""
    if report.ci95 is None:
        return f"{report.disagreement_measure:.3g} (exact)"
    lo, hi = report.ci95
    return f"{report.disagreement_measure:.3g} [{lo:.3g}, {hi:.3g}]"


def bound_text(built: ReluNet) -> str:
    """The analytic error bound its construction recorded, or ``none``."""
    bound = None if built.provenance is None else built.provenance.error_bound
    return "none" if bound is None else f"{bound:.3g}"
