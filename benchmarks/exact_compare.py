"""Benchmark: the exact equivalence checker (``compare(..., exact=True)``) beside Monte Carlo.

Two pairs of 2-D nets on [-1, 1]^2 (benchmarks/nets.py recipe), each with a common refinement of about
10^4 cells:

* ``independent``: the seeded 2-64-64-1 nets of seeds 0 and 1, default tolerance (they disagree
  almost everywhere);
* ``perturbed``: the seed-0 net against a copy whose weights carry seeded Gaussian noise of size
  ``--noise`` (relative), with tol = ``--tol``: a disagreement set of intermediate measure.

For each pair it prints the exact checker's time (best of ``--repeats``; the first call in the
process, which loads the numba kernels, is timed separately), the cells of the common refinement and
every cell visited, the exact sup / measure, and Monte Carlo with ``--samples`` points (time, estimate,
95% interval) — the exact measure should lie in it. Target (issue 5): under 10 s for ~10^4 cells.

    .venv/bin/python benchmarks/exact_compare.py [--samples 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nets import seeded_relu_net  # noqa: E402

import quasieq as qe  # noqa: E402
from quasieq.verify import exact_compare  # noqa: E402

ARCH = "2-64-64-1"


def perturbed(net: qe.ReluNet, noise: float, seed: int) -> qe.ReluNet:
    """``net`` with every weight and bias multiplied by (1 + noise·N(0, 1)) (seeded)."""
    rng = np.random.default_rng(seed)
    weights = [W * (1.0 + noise * rng.normal(size=W.shape)) for W in net.weights]
    biases = [b * (1.0 + noise * rng.normal(size=b.shape)) for b in net.biases]
    return qe.ReluNet(weights, biases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--tol", type=float, default=2e-3)
    args = parser.parse_args()

    box = qe.Box.cube(2)
    base = seeded_relu_net(ARCH, 0)
    pairs = [
        ("independent", base, seeded_relu_net(ARCH, 1), None),
        ("perturbed", base, perturbed(base, args.noise, 7), args.tol),
    ]
    started = time.perf_counter()
    exact_compare(base, base, box, tol=0.0)
    print(f"first call (loads the numba kernels): {time.perf_counter() - started:.2f} s")
    header = (f"{'pair':<12} {'cells':>7} {'visited':>8} {'exact s':>8} {'MC s':>7} {'tol':>9} {'sup':>9} "
              f"{'exact measure':>14} {'MC measure [95% CI]':>34} {'in CI':>5}")
    print(header)
    print("-" * len(header))
    for name, a, b, tol in pairs:
        runs = [exact_compare(a, b, box, tol=tol) for _ in range(max(1, args.repeats))]
        found = min(runs, key=lambda r: r.seconds)
        started = time.perf_counter()
        mc = qe.compare(a, b, box, samples=args.samples, tol=found.tolerance, seed=0)
        mc_seconds = time.perf_counter() - started
        inside = mc.ci95[0] <= found.disagreement_measure <= mc.ci95[1]
        ci = f"{mc.disagreement_measure:.5f} [{mc.ci95[0]:.5f}, {mc.ci95[1]:.5f}]"
        print(f"{name:<12} {found.cells:>7d} {found.cells_visited:>8d} {found.seconds:>8.2f} {mc_seconds:>7.2f} "
              f"{found.tolerance:>9.2e} {found.sup_error:>9.4f} {found.disagreement_measure:>14.6f} {ci:>34} "
              f"{'yes' if inside else 'NO':>5}")


if __name__ == "__main__":
    main()
