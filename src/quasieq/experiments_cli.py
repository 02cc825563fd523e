"""``quasieq experiment demorgan|robustness``: the paper's two experiments (paper_notes §4.1, §4.2).

``experiment_app`` is a typer sub-application; the main CLI mounts it with
``app.add_typer(experiment_app, name="experiment")``, so bad input (a :class:`QuasieqError` raised here
or by the experiment) becomes the main CLI's one ``error: ...`` line and exit code 2. Each command writes
``<name>.json`` (every per-seed number) and ``<name>.md`` (the mean ± sd table) into ``--out``, all or
nothing, and prints the table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from quasieq.budget import check_time, time_limit
from quasieq.console import TimeLimitOpt, make_console
from quasieq.errors import QuasieqError
from quasieq.experiments import demorgan, robustness
from quasieq.io.outputs import staged_outputs, write_json

experiment_app = typer.Typer(
    name="experiment",
    help="Reproduce the paper's experiments: De Morgan-equivalent nets (demorgan), wide vs deep quadratic "
         "nets under attack (robustness).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

OutOpt = Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for the .json and .md results.")]


#: Without a terminal (a log file, a batch job), a task prints one line each time it passes another
#: LOG_EVERY of its total.
LOG_EVERY = 0.05


@contextmanager
def _progress(console: Console, totals: dict[str, int]) -> Iterator[Callable[[str, int], None]]:
    """Yield ``update(task, completed)``: a rich progress bar per task on a terminal, otherwise a plain
    ``task: k/total (elapsed)`` line on stderr every :data:`LOG_EVERY` of the task, so that long runs
    redirected to a file still show where they are. Each update checks ``--time-limit``."""
    if console.is_terminal:
        with Progress(console=console) as bar:
            ids = {name: bar.add_task(name, total=total) for name, total in totals.items()}

            def show(name: str, k: int) -> None:
                check_time(f"running {name}")
                bar.update(ids[name], completed=k)

            yield show
        return
    start = time.perf_counter()
    logged = dict.fromkeys(totals, 0)

    def update(name: str, k: int) -> None:
        check_time(f"running {name}")
        step = max(1, int(LOG_EVERY * totals[name]))
        if k >= logged[name] + step or k == totals[name]:
            logged[name] = k
            print(f"{name}: {k}/{totals[name]} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    yield update


def _out_folder(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise QuasieqError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write(out: Path, name: str, doc: dict, table: str, console: Console) -> None:
    with staged_outputs() as stage:
        write_json(doc, stage(out / f"{name}.json"))
        stage(out / f"{name}.md").write_text(table)
    console.print(table, soft_wrap=True, markup=False)
    console.print(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")


@experiment_app.command("demorgan")
def demorgan_command(
    seeds: Annotated[int, typer.Option("--seeds", metavar="N", help="Seeds per network.")] = demorgan.DEFAULT_SEEDS,
    steps: Annotated[int, typer.Option("--steps", metavar="S", help="Full-batch Adam steps (the authors': 100000).")]
    = demorgan.FAITHFUL_STEPS,
    protocol: Annotated[str, typer.Option("--protocol", metavar="P", help="all-data, held-out or both (two runs of one "
                                          "protocol each can go to two cores).")] = "both",
    out: OutOpt = Path("quasieq-experiments"),
    limit_s: TimeLimitOpt = None,
) -> None:
    """Train the eight De Morgan-equivalent networks (I–VIII) on breast cancer, all seeds as one batched
    model, under the authors' all-data protocol and a held-out split; table mean ± sd accuracy."""
    demorgan.check_options(seeds, steps)
    protocols = demorgan.PROTOCOLS if protocol == "both" else (protocol,)
    if protocol != "both" and protocol not in demorgan.PROTOCOLS:
        raise QuasieqError(f"--protocol {protocol}: choose all-data, held-out or both")
    out = _out_folder(out)
    console = make_console()
    with time_limit(limit_s), _progress(console, dict.fromkeys(protocols, steps)) as update:
        doc = demorgan.run_demorgan(seeds, steps, protocols, progress=update)
    _write(out, "demorgan", doc, demorgan.markdown_table(doc), console)


@experiment_app.command("robustness")
def robustness_command(
    seeds: Annotated[int, typer.Option("--seeds", metavar="N", help="Training seeds per model.")]
    = robustness.DEFAULT_SEEDS,
    epochs: Annotated[int, typer.Option(
        "--epochs", metavar="E", help="Training epochs, batches of 1000 (5500 ≈ the scripts' 11 000 Adam steps).")]
    = robustness.FAITHFUL_EPOCHS,
    samples: Annotated[int, typer.Option("--samples", metavar="N", help="Digit images used (100..1797).")]
    = robustness.DIGITS,
    steps: Annotated[int | None, typer.Option("--steps", metavar="S", help="Stop each training after S Adam steps.")]
    = None,
    out: OutOpt = Path("quasieq-experiments"),
    limit_s: TimeLimitOpt = None,
) -> None:
    """Train wide (factorised) and deep (continued-fraction) quadratic nets and the deep-ReLU baseline on
    t-SNE-embedded deskewed digits; attack them with FGSM, I-FGSM and DeepFool; table accuracy."""
    robustness.check_options(seeds, epochs, samples, steps)
    out = _out_folder(out)
    console = make_console()
    with time_limit(limit_s), _progress(console, dict.fromkeys(robustness.MODELS, seeds)) as update:
        doc = robustness.run_robustness(seeds, epochs, samples, steps, progress=update)
    _write(out, "robustness", doc, robustness.markdown_table(doc), console)
