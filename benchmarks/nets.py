"""Seeded random ReLU MLPs: the one recipe behind the golden region counts, the tests and the benchmarks.

Recipe (the one benchmarks/golden_counts.json records): ``torch==2.13.0``; ``torch.manual_seed(0)``; then
``nn.Sequential(Linear(w0, w1), ReLU(), Linear(w1, w2), ReLU(), …, Linear(w_{L-1}, w_L))`` with PyTorch's
default initialisation, the layers created in order. An architecture is written ``"2-16-16-1"`` (input,
hidden widths, output) or given as a tuple of ints.

A second initialisation, ``init="fanin"``, draws W ~ N(0, 1/fan_in) and b ~ N(0, 0.3²) per layer in order
from ``numpy.random.default_rng(seed)``: larger biases than PyTorch's, so more hyperplanes cross the box
and a net has more regions per neuron.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

import quasieq as qe

SEED = 0
INITS = ("torch", "fanin")


def parse_arch(arch: str | tuple[int, ...]) -> tuple[int, ...]:
    """``"2-16-16-1"`` or ``(2, 16, 16, 1)`` → ``(2, 16, 16, 1)`` (at least input and output)."""
    widths = tuple(int(w) for w in arch.split("-")) if isinstance(arch, str) else tuple(int(w) for w in arch)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"architecture {arch!r}: need at least two positive widths, e.g. '2-16-16-1'")
    return widths


def arch_name(arch: str | tuple[int, ...]) -> str:
    return "-".join(str(w) for w in parse_arch(arch))


def seeded_net(arch: str | tuple[int, ...], seed: int = SEED, init: str = "torch") -> nn.Sequential:
    """The seeded torch model: Linear/ReLU layers created in order, PyTorch's default initialisation
    after ``torch.manual_seed(seed)`` (``init="torch"``) or the module docstring's ``"fanin"`` one."""
    widths = parse_arch(arch)
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        modules.append(nn.Linear(fan_in, fan_out))
        if i < len(widths) - 2:
            modules.append(nn.ReLU())
    model = nn.Sequential(*modules).eval()
    if init == "fanin":
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for m in model:
                if isinstance(m, nn.Linear):
                    m.weight.copy_(torch.from_numpy(rng.normal(0.0, 1.0 / np.sqrt(m.in_features), m.weight.shape)))
                    m.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.3, m.bias.shape)))
    elif init != "torch":
        raise ValueError(f"init {init!r}: choose one of {', '.join(INITS)}")
    return model


def seeded_layers(
    arch: str | tuple[int, ...], seed: int = SEED, init: str = "torch"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The seeded net's affine layers ``(W, b)`` as float64 numpy arrays (W of shape (out, in))."""
    linears = [m for m in seeded_net(arch, seed, init) if isinstance(m, nn.Linear)]
    return [(m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy()) for m in linears]


def seeded_relu_net(arch: str | tuple[int, ...], seed: int = SEED, init: str = "torch") -> qe.ReluNet:
    """The seeded net as a :class:`quasieq.ReluNet`, built straight from the Linear weights in float64
    (so that region tests do not depend on the torch importer they are not testing)."""
    layers = seeded_layers(arch, seed, init)
    return qe.ReluNet([W for W, _ in layers], [b for _, b in layers])


#: Full-dimensional region counts on [-1, 1]^D of the seeded nets (``init="torch"``): counts on which
#: regioncam, affinitree and quasieq agree, computed by those independent exact tools where each
#: finished (benchmarks/golden_counts.json says which agreed on each). External reference values for
#: tests and benchmarks, not outputs of quasieq.
GOLDEN_REGION_COUNTS = {
    arch: entry["regions"]
    for arch, entry in json.loads((Path(__file__).with_name("golden_counts.json")).read_text())["counts"].items()
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
