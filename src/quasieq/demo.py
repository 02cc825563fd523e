"""``quasieq demo``: the whole pipeline on a small example, in seconds, on a CPU.

Steps (each a function, so later issues add theirs — wide and deep forms, their comparison — beside
them and call them from :func:`run_demo`):

1. :func:`train` — a seeded 2-16-16-1 ReLU net fitted by full-batch Adam to :func:`target` on
   [-1, 1]^2;
2. :func:`analyse` — import it (``qe.from_torch``) and enumerate its exact linear regions on the box;
3. :func:`write_outputs` — regions.png, regions.json and model.onnx, all or nothing;
4. :func:`summary` — the rich table printed at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from quasieq.box import Box
from quasieq.cli import architecture, enumerate_regions, key_value_table, staged_outputs, write_json
from quasieq.net import ReluNet
from quasieq.regions import RegionComplex

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


@dataclass
class DemoResult:
    """Everything the demo produced (later steps add their fields)."""

    module: object  # the trained torch.nn.Sequential
    net: ReluNet
    mse: float
    train_seconds: float
    complex: RegionComplex
    region_seconds: float
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


def write_outputs(out_dir: Path, net: ReluNet, cx: RegionComplex) -> dict[str, Path]:
    """Write ``regions.png``, ``regions.json`` and ``model.onnx`` into ``out_dir`` (created if missing).

    Each file is written to a temporary name and renamed once all three are complete.
    """
    from quasieq.io import save
    from quasieq.viz import plot_regions

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"plot": out_dir / "regions.png", "json": out_dir / "regions.json", "model": out_dir / "model.onnx"}
    with staged_outputs() as stage:
        plot_regions(cx, stage(paths["plot"]))
        write_json(cx.to_json(), stage(paths["json"]))
        save(net, stage(paths["model"]))
    return paths


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


def run_demo(out_dir: Path, console: Console, setup: TrainingSetup = TrainingSetup()) -> DemoResult:
    """Run every demo step, print the summary and the paths written, and return what was produced."""
    module, mse, train_seconds = train(setup)
    net, cx, region_seconds = analyse(module, console)
    result = DemoResult(module, net, mse, train_seconds, cx, region_seconds)
    result.paths = write_outputs(Path(out_dir), net, cx)
    console.print(key_value_table("quasieq demo", summary(result, setup)))
    for label, path in result.paths.items():
        console.print(f"{label}: {path}")
    return result
