"""Benchmark: regions of leaky-ReLU and residual nets (linear units in the IR), quasieq beside regioncam.

Both net families are seeded and 2-D, on the square [-1, 1]^2 (regioncam's ``Regioncam(size=1)``):

* leaky: LeakyReLU(z) = (1 − α) relu(z) + α z per hidden layer. quasieq holds each z twice, as a ReLU
  unit and as a linear unit, combined by the next layer; regioncam applies ``leaky_relu(α)``.
* residual: blocks x ← x + U relu(W x + b) then a linear readout. quasieq carries x on linear units;
  regioncam runs ``Residual(Sequential(Linear, ReLU, Linear))`` per block.

The counts must agree (a linear unit never bounds a region); the table gives both counts and times
(best of ``--repeats``, quasieq's first call, which compiles its kernels, excluded by a warm-up).

    .venv/bin/python benchmarks/linear_units.py [--repeats 3] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quasieq as qe  # noqa: E402


class ResidualBlock(NamedTuple):
    """x ← x + U relu(W x + b)."""

    W: np.ndarray  # (width, D)
    b: np.ndarray  # (width,)
    U: np.ndarray  # (D, width)


def leaky_layers(arch: tuple[int, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded (W, b) per layer: W ~ N(0, 1/fan_in), b ~ N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    sizes = zip(arch[:-1], arch[1:], strict=True)
    return [(rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(size=o) * 0.3) for i, o in sizes]


def leaky_net(layers: list[tuple[np.ndarray, np.ndarray]], slope: float) -> qe.ReluNet:
    """The leaky-ReLU chain of ``layers`` as a ReluNet: hidden layer l holds [z; z] (ReLU units, then
    linear units) and the next layer reads leaky(z) = [(1 − α) I, α I] [relu(z); z]."""
    weights, biases, masks = [], [], []
    combine = None
    for W, b in layers[:-1]:
        W = W if combine is None else W @ combine
        weights.append(np.vstack([W, W]))
        biases.append(np.r_[b, b])
        masks.append(np.r_[np.ones(b.size, bool), np.zeros(b.size, bool)])
        combine = np.hstack([(1 - slope) * np.eye(b.size), slope * np.eye(b.size)])
    W, b = layers[-1]
    weights.append(W if combine is None else W @ combine)
    biases.append(b)
    return qe.ReluNet(weights, biases, relu_masks=masks)


def residual_blocks(dim: int, width: int, blocks: int, seed: int) -> tuple[list[ResidualBlock], np.ndarray]:
    """Seeded residual blocks and a (1, D) readout."""
    rng = np.random.default_rng(seed)
    out = [ResidualBlock(rng.normal(size=(width, dim)), rng.normal(size=width) * 0.5,
                         rng.normal(size=(dim, width)) / np.sqrt(width)) for _ in range(blocks)]
    return out, rng.normal(size=(1, dim))


def residual_net(blocks: list[ResidualBlock], readout: np.ndarray) -> qe.ReluNet:
    """Block l is one hidden layer [W_l x_l + b_l (ReLU units); x_l (linear units)] with
    x_l = x_{l-1} + U_{l-1} h_{l-1} = [U_{l-1} I] [h_{l-1}; x_{l-1}] read off the previous layer."""
    dim = readout.shape[1]
    weights, biases, masks = [], [], []
    carry = np.eye(dim)  # x_l as a linear map of the previous layer's units (the input at l = 0)
    for block in blocks:
        weights.append(np.vstack([block.W @ carry, carry]))
        biases.append(np.r_[block.b, np.zeros(dim)])
        masks.append(np.r_[np.ones(block.b.size, bool), np.zeros(dim, bool)])
        carry = np.hstack([block.U, np.eye(dim)])
    weights.append(readout @ carry)
    biases.append(np.zeros(1))
    return qe.ReluNet(weights, biases, relu_masks=masks)


def regioncam_leaky(layers: list[tuple[np.ndarray, np.ndarray]], slope: float) -> int:
    import regioncam

    rc = regioncam.Regioncam(size=1.0)
    for W, b in layers[:-1]:
        rc.linear(W.T.astype(np.float32), b.astype(np.float32))  # x_out = x_in @ weight + bias
        rc.leaky_relu(slope)
    return int(rc.num_faces)


def regioncam_residual(blocks: list[ResidualBlock]) -> int:
    import regioncam

    rc = regioncam.Regioncam(size=1.0)
    for block in blocks:
        dim = block.U.shape[0]
        rc.add(regioncam.Residual(regioncam.Sequential(
            regioncam.Linear(block.W.T.astype(np.float32), block.b.astype(np.float32)), regioncam.ReLU(),
            regioncam.Linear(block.U.T.astype(np.float32), np.zeros(dim, np.float32)))))
    return int(rc.num_faces)


def _best(fn, repeats: int) -> tuple[int, float]:
    best, count = np.inf, 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    return count, best


CASES = [("leaky", (2, 16, 16, 1)), ("leaky", (2, 32, 32, 1)), ("leaky", (2, 64, 64, 1)),
         ("residual", (16, 2)), ("residual", (32, 3)), ("residual", (64, 2))]
SLOPE = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args()
    box = qe.Box.cube(2)
    qe.regions(residual_net(*residual_blocks(2, 4, 1, 0)), box)  # warm-up: numba kernels
    rows = ["| net | quasieq regions | s | regioncam regions | s | agree |", "|---|---:|---:|---:|---:|---|"]
    for kind, spec in CASES:
        if kind == "leaky":
            layers = leaky_layers(spec, seed=0)
            name = f"leaky α={SLOPE} " + "-".join(map(str, spec))
            net, peer = leaky_net(layers, SLOPE), lambda layers=layers: regioncam_leaky(layers, SLOPE)
        else:
            blocks, readout = residual_blocks(2, spec[0], spec[1], seed=0)
            name = f"residual 2, {spec[1]}×(width {spec[0]}), 1"
            net, peer = residual_net(blocks, readout), lambda blocks=blocks: regioncam_residual(blocks)
        ours, t_ours = _best(lambda net=net: len(qe.regions(net, box)), args.repeats)
        theirs, t_theirs = _best(peer, args.repeats)
        rows.append(f"| {name} | {ours:,d} | {t_ours:.3f} | {theirs:,d} | {t_theirs:.3f} | "
                    f"{'yes' if ours == theirs else 'NO'} |")
        print(rows[-1], flush=True)
    if args.markdown is not None:
        args.markdown.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
