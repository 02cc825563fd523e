"""Seeded random ReLU MLPs: the one recipe behind the golden region counts, the tests and the benchmarks.

Recipe (the one the golden counts below were made with): ``torch==2.13.0``; ``torch.manual_seed(0)``; then
``nn.Sequential(Linear(w0, w1), ReLU(), Linear(w1, w2), ReLU(), …, Linear(w_{L-1}, w_L))`` with PyTorch's
default initialisation, the layers created in order. An architecture is written ``"2-16-16-1"`` (input,
hidden widths, output) or given as a tuple of ints.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

import quasieq as qe

SEED = 0


def parse_arch(arch: str | tuple[int, ...]) -> tuple[int, ...]:
    """``"2-16-16-1"`` or ``(2, 16, 16, 1)`` → ``(2, 16, 16, 1)`` (at least input and output)."""
    widths = tuple(int(w) for w in arch.split("-")) if isinstance(arch, str) else tuple(int(w) for w in arch)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"architecture {arch!r}: need at least two positive widths, e.g. '2-16-16-1'")
    return widths


def arch_name(arch: str | tuple[int, ...]) -> str:
    return "-".join(str(w) for w in parse_arch(arch))


def seeded_net(arch: str | tuple[int, ...], seed: int = SEED) -> nn.Sequential:
    """The golden-recipe torch model: seed, then Linear/ReLU layers created in order (default init)."""
    widths = parse_arch(arch)
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        modules.append(nn.Linear(fan_in, fan_out))
        if i < len(widths) - 2:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()


def seeded_layers(arch: str | tuple[int, ...], seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """The seeded net's affine layers ``(W, b)`` as float64 numpy arrays (W of shape (out, in))."""
    linears = [m for m in seeded_net(arch, seed) if isinstance(m, nn.Linear)]
    return [(m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy()) for m in linears]


def seeded_relu_net(arch: str | tuple[int, ...], seed: int = SEED) -> qe.ReluNet:
    """The seeded net as a :class:`quasieq.ReluNet`, built straight from the Linear weights in float64
    (so that region tests do not depend on the torch importer they are not testing)."""
    layers = seeded_layers(arch, seed)
    return qe.ReluNet([W for W, _ in layers], [b for _, b in layers])


#: Full-dimensional region counts on [-1, 1]^D of the seeded nets, computed outside this project and
#: agreed by independent exact tools where each finished (regioncam 0.5.2, affinitree 0.23.0,
#: Relucent 1.0.0, parx 0.1.3); copied from the golden region counts computed with those tools. They are
#: external reference values for tests and benchmarks, not outputs of quasieq.
GOLDEN_REGION_COUNTS = {
    "2-8-8-1": 22,
    "2-16-16-1": 127,
    "2-32-32-1": 795,
    "2-64-64-1": 2943,
    "2-64-64-64-1": 6668,
    "2-128-128-1": 10266,
    "3-16-16-1": 1276,
    "3-32-32-1": 11512,
    "4-16-16-16-1": 12836,
}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() where that is unavailable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
