"""Terminal output shared by the commands and the demo: the rich console, spinners, progress bars,
summary tables and the formatting of measures. Nothing here computes a result."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from quasieq.box import Box
from quasieq.net import ReluNet
from quasieq.regions import RegionComplex, regions

if TYPE_CHECKING:  # the checker is imported by the commands that compare, not by every command
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
def counting_progress(console: Console, what: str) -> Iterator[Callable[[int, float], None] | None]:
    """Yield ``progress(count, fraction_done)`` driving a bar (``what`` found, per second, elapsed and
    the estimated time left) when stdout is a terminal; None off a terminal (nothing is shown)."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[found]:>9,d} found"),
        TextColumn("{task.fields[rate]:>10,.0f}/s"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=1.0, found=0, rate=0.0)
        start = time.perf_counter()

        def progress(found: int, fraction: float) -> None:
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=fraction, found=int(found), rate=found / elapsed)

        yield progress


def enumerate_regions(net: ReluNet, box: Box, console: Console,
                      max_regions: int | None = None) -> tuple[RegionComplex, float]:
    """``qe.regions`` with a progress bar (regions found, rate, elapsed, time left) when stdout is a
    terminal. Returns ``(complex, seconds)`` with the wall-clock seconds of the enumeration itself."""
    with counting_progress(console, "regions") as progress:
        start = time.perf_counter()
        cx = regions(net, box, max_regions=max_regions, progress=progress)
        return cx, time.perf_counter() - start


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
