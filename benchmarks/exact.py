"""Benchmark: exact (zero-error) wide and deep forms beside the compact quasi forms, and the exact checker.

For each seeded net (benchmarks/nets.py recipe) on [-1, 1]^D, D = 2…4, the exact regions are computed
once (``qe.regions``) and reused by every construction. Three tables:

1. **Lattice** (construct/lattice.py, one output): regions; q = pieces (the regions, with equal-map
   neighbours merged wherever the union stays convex); k = distinct
   affine functions; Σ|S_i| and the number of terms kept after dropping dominated ones; the targets
   ⌈log2 k⌉ + ⌈log2 q⌉ hidden layers and 2Σ|S_i| + q⌈log2 k⌉ + 2q + ⌈log2 q⌉ neurons (q read as the kept
   terms, ≤ the pieces, as in ``provenance.details``); Chen, Garudadri & Rao's ≈ 3qk + 3q neurons (q the
   pieces).
2. **Sizes**: hidden layers, width, neurons, parameters, largest |weight| and build time (given the
   regions) of ``lattice_wide`` / ``lattice_deep`` (exact), ``qe.to_wide`` / ``qe.to_deep`` (compact,
   δ = ``--delta``, including their triangulation), and for one-hidden-layer nets the direct exact
   deep form ``onelayer_deep`` (width D + 2, depth w + 1).
3. **Checker**: the original net against its exact wide form, by the exact checker
   (``qe.compare(exact=True)``: time, cells of the common refinement, measure, sup) and by Monte Carlo
   (``qe.compare``, ``--samples`` points: time, measure with its 95% interval, sup). Every gadget
   neuron of the lattice form (σ(ℓ_w − ℓ_u), …) puts a hyperplane across the whole box, so the common
   refinement has far more cells than the net has regions (about (neurons)^D / D! in the first layer
   alone); the exact check is skipped when the wide form has more than ``--check-max-neurons`` hidden
   neurons (default 600; 3-8-8-1's 3705-neuron form did not finish in 100 s).

    .venv/bin/python benchmarks/exact.py [--nets 2-8-8-1,3-8-8-1] [--delta 1e-3] [--samples 100000]
        [--check-max-neurons 600] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

# Single-threaded BLAS, set before numpy loads it (as in benchmarks/transforms.py: the deep forms are
# many tiny products, for which OpenBLAS's threads only add synchronisation).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nets import arch_name, cpu_model, seeded_relu_net  # noqa: E402

import quasieq as qe  # noqa: E402
from quasieq.construct.lattice import lattice_deep, lattice_wide  # noqa: E402
from quasieq.construct.onelayer import onelayer_deep  # noqa: E402

NETS = ["2-8-8-1", "2-16-16-1", "3-8-8-1", "4-6-6-1", "2-16-1", "3-12-1"]

LATTICE_HEADER = ["net", "regions", "regions s", "q (pieces)", "k", "Σ|S_i|", "terms", "target layers",
                  "target neurons", "Chen et al. 3qk+3q"]
SIZES_HEADER = ["net", "form", "hidden layers", "width", "neurons", "parameters", "max |w|", "build s"]
CHECK_HEADER = ["net", "exact s", "cells", "exact measure", "exact sup", "MC s", "MC measure [95% CI]", "MC sup"]


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def size_row(name: str, form: str, H: qe.ReluNet, seconds: float) -> list[str]:
    return [name, form, str(H.hidden_layers), str(H.width), str(H.neurons), str(H.parameters),
            f"{H.max_abs_weight():.3g}", f"{seconds:.3f}"]


def bench(
    arch: str, delta: float, samples: int, check_max_neurons: int
) -> tuple[list[str], list[list[str]], list[str]]:
    net = seeded_relu_net(arch)
    box = qe.Box.cube(net.in_dim)
    cx, cx_s = timed(qe.regions, net, box)
    wide, wide_s = timed(lattice_wide, cx)
    deep, deep_s = timed(lattice_deep, cx)
    d, sizes_q_k = wide.provenance.details, wide.provenance.lattice
    lattice = [arch, str(len(cx)), f"{cx_s:.3f}", str(sizes_q_k.pieces), str(sizes_q_k.affine_functions),
               str(sizes_q_k.sum_term_sizes), str(d["terms"]), str(d["target_hidden_layers"]),
               str(d["target_neurons"]), str(sizes_q_k.chen_garudadri_rao_neurons)]
    sizes = [size_row(arch, "exact wide", wide, wide_s), size_row(arch, "exact deep", deep, deep_s)]
    if net.hidden_layers == 1:
        sizes.append(size_row(arch, "exact one-layer deep", *timed(onelayer_deep, net, box)))
    for form, build in (("compact wide", qe.to_wide), ("compact deep", qe.to_deep)):
        sizes.append(size_row(arch, f"{form} δ={delta:g}", *timed(build, net, box, delta, cx=cx)))
    if wide.neurons <= check_max_neurons:
        exact, exact_s = timed(qe.compare, net, wide, box, exact=True)
        verdict = [f"{exact_s:.2f}", str(exact.cells), f"{exact.disagreement_measure:g}", f"{exact.sup_error:.2e}"]
        tol = exact.tolerance
    else:
        verdict = [f"skipped ({wide.neurons} neurons)", "—", "—", "—"]
        tol = None
    mc, mc_s = timed(qe.compare, net, wide, box, samples=samples, tol=tol)
    check = [arch, *verdict, f"{mc_s:.2f}", f"{mc.disagreement_measure:g} [{mc.ci95[0]:.2g}, {mc.ci95[1]:.2g}]",
             f"{mc.sup_error:.2e}"]
    return lattice, sizes, check


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def row(cells: list[str]) -> str:  # a literal | inside a cell (Σ|S_i|, max |w|) must be escaped
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([row(header), "|" + "---|" * len(header)] + [row(r) for r in rows])


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in rows])


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", type=lambda s: [arch_name(a) for a in s.split(",")], default=NETS)
    ap.add_argument("--delta", type=float, default=1e-3, help="δ of the compact quasi forms")
    ap.add_argument("--samples", type=int, default=100_000, help="Monte-Carlo samples of the checker")
    ap.add_argument("--check-max-neurons", type=int, default=600,
                    help="skip the exact checker when the exact wide form has more hidden neurons (see docstring)")
    ap.add_argument("--markdown", type=Path, help="write the three tables as Markdown to this file")
    args = ap.parse_args()

    qe.compare(seeded_relu_net("2-4-1"), seeded_relu_net("2-4-1"), qe.Box.cube(2), exact=True)  # load numba kernels
    tables: tuple[list, list, list] = ([], [], [])
    for arch in args.nets:
        started = time.perf_counter()
        lattice, sizes, check = bench(arch, args.delta, args.samples, args.check_max_neurons)
        print(f"{arch}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        tables[0].append(lattice)
        tables[1].extend(sizes)
        tables[2].append(check)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    headers = (LATTICE_HEADER, SIZES_HEADER, CHECK_HEADER)
    print(f"{stamp}  {machine()}")
    for header, rows in zip(headers, tables, strict=True):
        print()
        print(text_table(header, rows))
    if args.markdown:
        command = (f"python benchmarks/exact.py --nets {','.join(args.nets)} --delta {args.delta:g} "
                   f"--samples {args.samples} --check-max-neurons {args.check_max_neurons} --markdown {args.markdown}")
        body = "\n\n".join(markdown_table(h, rows) for h, rows in zip(headers, tables, strict=True))
        args.markdown.write_text(f"Run: {stamp} on {machine()}.\n\nCommand: `{command}`\n\n{body}\n")


if __name__ == "__main__":
    main()
