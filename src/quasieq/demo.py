"""``quasieq demo``: the whole pipeline on a small example, in well under a minute, on a CPU.

Steps (each a function; :func:`run_demo` calls them in order):

1. :func:`train` — a seeded 2-16-16-1 ReLU net fitted by full-batch Adam to :func:`target` on
   [-1, 1]^2;
2. :func:`analyse` — import it (``qe.from_torch``) and enumerate its exact linear regions on the box;
3. :func:`rebuild` — its wide and deep forms by ``method="compact"`` and ``method="paper"`` (δ = 1e-3),
   each compared with the original by Monte Carlo in float64 and through its float32 ONNX export;
4. :func:`write_outputs` — regions.png, regions.json, model.onnx, the four rebuilt models
   (wide_compact.onnx, deep_compact.onnx, wide_paper.onnx, deep_paper.onnx), transforms.json and
   transforms.png (simplices + the compact wide form's error set), all or nothing;
5. :func:`summary` / :func:`forms_tables` — the rich tables printed at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from rich.table import Table

from quasieq.box import Box
from quasieq.cli import (
    architecture,
    bound_text,
    build_form,
    certify,
    enumerate_regions,
    key_value_table,
    staged_outputs,
    transform_json,
    write_json,
)
from quasieq.net import ReluNet
from quasieq.regions import RegionComplex
from quasieq.verify import EquivalenceReport

#: The demo's domain: every guarantee and plot is on this box.
DEMO_BOX = Box.cube(2, -1.0, 1.0)


@dataclass(frozen=True)
class TrainingSetup:
    """What :func:`train` does; the defaults train in about a second on one CPU core."""

    seed: int = 0
    hidden: tuple[int, ...] = (16, 16)
    samples: int = 2048
    steps: int = 1500
    learning_rate: float = 1e-2


@dataclass(frozen=True)
class RebuildSetup:
    """What :func:`rebuild` does. Monte-Carlo samples per comparison: the paper forms are larger and
    slower to evaluate, so they get fewer points (their 95% intervals are correspondingly wider)."""

    delta: float = 1e-3
    forms: tuple[str, ...] = ("wide", "deep")
    methods: tuple[str, ...] = ("compact", "paper")
    samples_compact: int = 100_000
    samples_paper: int = 20_000
    seed: int = 0

    def samples(self, method: str) -> int:
        return self.samples_paper if method == "paper" else self.samples_compact


@dataclass(frozen=True)
class Rebuilt:
    """One rebuilt form with its float64 and float32-export reports."""

    form: str
    method: str
    net: ReluNet
    report: EquivalenceReport
    report_float32: EquivalenceReport
    seconds: float

    @property
    def name(self) -> str:
        return f"{self.form}_{self.method}"


@dataclass
class DemoResult:
    """Everything the demo produced."""

    module: object  # the trained torch.nn.Sequential
    net: ReluNet
    mse: float
    train_seconds: float
    complex: RegionComplex
    region_seconds: float
    rebuilt: list[Rebuilt] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)


def target(X: np.ndarray) -> np.ndarray:
    """The regression target on [-1, 1]^2: a bump plus a saddle, f(x) = exp(-3‖x‖²) + x₀x₁/2."""
    X = np.asarray(X, dtype=np.float64)
    return np.exp(-3.0 * (X**2).sum(axis=1)) + 0.5 * X[:, 0] * X[:, 1]


def train(setup: TrainingSetup = TrainingSetup()):
    """Fit a ReLU MLP 2-h_1-…-1 to :func:`target` on ``setup.samples`` uniform points of the box.

    Full-batch Adam on the mean squared error; ``torch.manual_seed(setup.seed)`` fixes the initial
    weights and a numpy generator with the same seed fixes the points, so the result is reproducible.
    Returns ``(module, training MSE, seconds)``.
    """
    import torch
    from torch import nn

    torch.manual_seed(setup.seed)
    X = DEMO_BOX.sample(setup.samples, np.random.default_rng(setup.seed))
    x = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(target(X), dtype=torch.float32)[:, None]
    sizes = (DEMO_BOX.dim, *setup.hidden, 1)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    module = nn.Sequential(*layers)
    optimiser = torch.optim.Adam(module.parameters(), lr=setup.learning_rate)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only add synchronisation (10× slower on a busy machine)
    start = time.perf_counter()
    try:
        for _ in range(setup.steps):
            optimiser.zero_grad()
            loss = torch.mean((module(x) - y) ** 2)
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    module.eval()
    with torch.no_grad():
        mse = float(torch.mean((module(x) - y) ** 2))
    return module, mse, seconds


def analyse(module, console: Console) -> tuple[ReluNet, RegionComplex, float]:
    """Import the trained module into the IR and enumerate its linear regions on :data:`DEMO_BOX`."""
    from quasieq.io import from_torch

    net = from_torch(module)
    cx, seconds = enumerate_regions(net, DEMO_BOX, console)
    return net, cx, seconds


def rebuild(net: ReluNet, cx: RegionComplex, console: Console, setup: RebuildSetup = RebuildSetup()) -> list[Rebuilt]:
    """Every (form, method) of ``setup``, built from the regions ``cx`` and certified against ``net``."""
    out = []
    for method in setup.methods:
        for form in setup.forms:
            start = time.perf_counter()
            built = build_form(form, net, cx.box, setup.delta, console, method=method, cx=cx)
            seconds = time.perf_counter() - start
            report, report32 = certify(net, built, cx.box, console, samples=setup.samples(method), tol=None,
                                       seed=setup.seed, task="regression")
            out.append(Rebuilt(form, method, built, report, report32, seconds))
    return out


def write_outputs(out_dir: Path, result: DemoResult) -> dict[str, Path]:
    """Write every demo file into ``out_dir`` (created if missing): ``regions.png``, ``regions.json``,
    ``model.onnx``, ``<form>_<method>.onnx`` per rebuilt form, ``transforms.json`` (the ``wide|deep
    --json`` document of each form) and ``transforms.png`` (simplices + error set of the first form).

    Each file is written to a temporary name and renamed once all are complete.
    """
    from quasieq.geometry import triangulate
    from quasieq.io import save
    from quasieq.viz import plot_regions, plot_transform

    out_dir.mkdir(parents=True, exist_ok=True)
    cx = result.complex
    paths = {"plot": out_dir / "regions.png", "json": out_dir / "regions.json", "model": out_dir / "model.onnx"}
    with staged_outputs() as stage:
        plot_regions(cx, stage(paths["plot"]))
        write_json(cx.to_json(), stage(paths["json"]))
        save(result.net, stage(paths["model"]))
        for r in result.rebuilt:
            paths[r.name] = out_dir / f"{r.name}.onnx"
            save(r.net, stage(paths[r.name]))
        if result.rebuilt:
            paths["transforms json"] = out_dir / "transforms.json"
            doc = {"schema_version": 1, "box": cx.box.to_dict(),
                   "forms": [transform_json(r.form, r.net, r.report, r.report_float32) for r in result.rebuilt]}
            write_json(doc, stage(paths["transforms json"]))
            first = result.rebuilt[0]
            paths["transforms plot"] = out_dir / "transforms.png"
            plot_transform(cx, triangulate(cx, merge=True), result.net, first.net, stage(paths["transforms plot"]),
                           first.report.tolerance)
    return paths


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("form", "method") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def forms_tables(result: DemoResult) -> tuple[Table, Table]:
    """Two tables with one row per rebuilt form (one would not fit 80 columns): sizes (width, hidden
    layers, depth, parameters, simplices M, largest |weight|), then certificates (analytic bound,
    measured measure with its 95% interval, the float32 ONNX export's measured measure)."""
    sizes, certificates = [], []
    for r in result.rebuilt:
        net, p = r.net, r.net.provenance
        sizes.append((r.form, r.method, f"{net.width:,d}", f"{net.hidden_layers:,d}", f"{net.depth:,d}",
                      f"{net.parameters:,d}", f"{int(p.details['simplices']):,d}", f"{net.max_abs_weight():.2g}"))
        lo, hi = r.report.ci95
        certificates.append((r.form, r.method, bound_text(net), f"{r.report.disagreement_measure:.3g}",
                             f"[{lo:.2g}, {hi:.2g}]", f"{r.report_float32.disagreement_measure:.3g}"))
    arch = architecture(result.net)
    return (
        _table(f"wide and deep forms of the {arch} net: sizes",
               ("form", "method", "width", "hidden layers", "depth", "parameters", "M", "max |w|"), sizes),
        _table(f"wide and deep forms of the {arch} net: disagreement measures",
               ("form", "method", "bound", "measured", "95% CI", "float32 export"), certificates),
    )


def summary(result: DemoResult, setup: TrainingSetup) -> list[tuple[str, str]]:
    """Rows of the demo's summary table."""
    cx = result.complex
    box_volume = cx.box.volume
    return [
        ("architecture", architecture(result.net)),
        ("target", "exp(-3|x|^2) + x0*x1/2 on [-1, 1]^2"),
        ("training", f"{setup.samples} points, {setup.steps} full-batch Adam steps, seed {setup.seed}"),
        ("training MSE", f"{result.mse:.3e}"),
        ("training seconds", f"{result.train_seconds:.2f}"),
        ("linear regions", f"{len(cx):,d}"),
        ("dropped lower-dim cells", f"{cx.dropped_lower_dim:,d}"),
        ("volume check |Σ-box|/box", f"{abs(cx.volume_total - box_volume) / box_volume:.2e}"),
        ("region seconds", f"{result.region_seconds:.3f}"),
    ]


def run_demo(out_dir: Path, console: Console, setup: TrainingSetup = TrainingSetup(),
             rebuild_setup: RebuildSetup = RebuildSetup()) -> DemoResult:
    """Run every demo step, print the summary and the paths written, and return what was produced."""
    module, mse, train_seconds = train(setup)
    net, cx, region_seconds = analyse(module, console)
    result = DemoResult(module, net, mse, train_seconds, cx, region_seconds)
    result.rebuilt = rebuild(net, cx, console, rebuild_setup)
    result.paths = write_outputs(Path(out_dir), result)
    console.print(key_value_table("quasieq demo", summary(result, setup)))
    for table in forms_tables(result):
        console.print(table)
    console.print(f"δ = {rebuild_setup.delta:g} (absolute measure on the box, volume {cx.box.volume:g}); measures are "
                  "Monte Carlo with a 95% Clopper–Pearson interval; the float32 measure is the ONNX export's")
    for label, path in result.paths.items():
        console.print(f"{label}: {path}")
    return result
