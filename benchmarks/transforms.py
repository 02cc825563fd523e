"""Benchmark: wide and deep (quasi-)equivalents of seeded and trained ReLU nets, sizes against Table 1.

For each net (benchmarks/nets.py recipe for the seeded ones; ``trained-2d`` / ``trained-3d`` are those
recipes trained by :func:`trained_net`) on the box [-1, 1]^D, the exact region complex is computed once
(``qe.regions``), and for every δ, form (``wide``, ``deep``) and method (``compact``; ``paper`` where M ≤
``--paper-max-simplices``) it records

* M, the simplex count the construction used (D = 1: the linear pieces; the forms are exact, so δ and
  the method play no part and one row per form is built);
* width, hidden layers, depth = hidden layers + 1 (Definition 1), parameters; Table 1's width and depth
  for the same D and M (wide: D²(D+1)M and D+1; deep: (D+1)D² and (D+1)M). Table 1's depth is compared
  in both conventions (docs/paper_notes.md, "Depth conventions"): against our depth (Definition 1) and against our
  hidden-layer count (the reading under which Lemma 11's D = 2 module has "depth 3");
* the build time (``to_wide``/``to_deep`` given the region complex: triangulation and assembly), the
  largest |weight| and the analytic bound on the disagreement measure (``provenance.error_bound``);
* the measured disagreement measure m({|net − H| > tol}) by Monte Carlo (``qe.compare``, float64) and
  of H's float32 ONNX export run by ONNX Runtime (``float32_report``), each with its sample count and
  95% Clopper–Pearson interval. With N samples and no hit the interval is [0, ≈3.7·vol/N]: measures
  below that are not resolved.

Scaling check: a synthetic 2-D complex (an n × n grid of squares, each cut into two triangles, carrying
the piecewise-linear interpolant of seeded random values at the grid nodes), M = 2n² ≈ 2.5e3, 5e3, 1e4:
build time of both compact forms, parameters, bytes held by the net's arrays, peak traced memory of the
build (tracemalloc, a second build) and the float32 ONNX file size, with the per-simplex ratios showing
growth linear in M.

    .venv/bin/python benchmarks/transforms.py [--nets 2-16-16-1,trained-2d] [--deltas 1e-2,1e-4]
        [--full] [--samples 50000] [--paper-max-simplices 800] [--no-scaling]
        [--markdown docs/transforms-table.md] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

# Single-threaded BLAS, set before numpy loads it: the deep forms are thousands of tiny products, for
# which OpenBLAS's threads only add synchronisation (8x slower measured on a loaded 2-core machine).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nets import SEED, arch_name, seeded_net, seeded_relu_net  # noqa: E402

import quasieq as qe  # noqa: E402
from quasieq.construct.compact import compact_deep, compact_wide  # noqa: E402
from quasieq.verify.compare import float32_report  # noqa: E402

SEEDED = ["1-16-16-1", "2-16-16-1", "3-10-10-1", "4-6-6-1"]
DEFAULT_NETS = SEEDED + ["trained-2d", "trained-3d"]
ALL_DELTAS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
DEFAULT_DELTAS = [1e-2, 1e-4, 1e-6]
SCALING_M = [2500, 5000, 10000]
SCALING_DELTA = 1e-3


# ----- the nets ----------------------------------------------------------------------------------------


def _target_2d(X: np.ndarray) -> np.ndarray:
    """sin(πx₁)·cos(πx₂/2): smooth, one period across the square."""
    return np.sin(np.pi * X[:, 0]) * np.cos(np.pi * X[:, 1] / 2)


def _target_3d(X: np.ndarray) -> np.ndarray:
    """exp(−|x|²)·cos(πx₁) + x₂x₃/2."""
    return np.exp(-(X**2).sum(axis=1)) * np.cos(np.pi * X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]


#: name → (architecture, smooth target on [-1, 1]^D)
TRAINED = {"trained-2d": ("2-16-16-1", _target_2d), "trained-3d": ("3-8-8-1", _target_3d)}


def trained_net(name: str, steps: int = 1000, points: int = 2048) -> tuple[qe.ReluNet, float]:
    """The seeded net of ``TRAINED[name]``'s architecture fitted to its target: full-batch Adam
    (lr 1e-2, ``steps`` steps, MSE, one torch thread) on ``points`` uniform points of [-1, 1]^D drawn with seed SEED.
    Returns the net (via ``qe.from_torch``) and its RMSE on the training points."""
    import torch

    arch, target = TRAINED[name]
    torch.set_num_threads(1)  # tiny full-batch steps: more threads only contend on a shared machine
    model = seeded_net(arch).train()
    D = model[0].in_features
    X = np.random.default_rng(SEED).uniform(-1.0, 1.0, (points, D))
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(target(X)[:, None], dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((model(Xt) - yt) ** 2)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        rmse = float(torch.sqrt(torch.mean((model(Xt) - yt) ** 2)))
    return qe.from_torch(model), rmse


def make_net(name: str) -> tuple[qe.ReluNet, str]:
    """A net by name (an architecture such as ``2-16-16-1``, or a key of TRAINED) and its label."""
    if name in TRAINED:
        net, rmse = trained_net(name)
        return net, f"{name} ({TRAINED[name][0]}, rmse {rmse:.3f})"
    return seeded_relu_net(name), f"seeded {arch_name(name)}"


# ----- sizes -------------------------------------------------------------------------------------------


def table1(D: int, M: int, form: str) -> tuple[int, int]:
    """Table 1 (JMLR p.3, Theorem 10): (width, depth) of the wide or deep form for D and M simplices."""
    return (D * D * (D + 1) * M, D + 1) if form == "wide" else ((D + 1) * D * D, (D + 1) * M)


def net_bytes(net: qe.ReluNet) -> int:
    """Bytes held by the net's weight and bias arrays (CSR: data, indices, indptr)."""
    total = 0
    for W, b in net.layers:
        total += b.nbytes + (W.data.nbytes + W.indices.nbytes + W.indptr.nbytes if sp.issparse(W) else W.nbytes)
    return total


# ----- one construction --------------------------------------------------------------------------------


def measure_row(net: qe.ReluNet, box: qe.Box, cx: qe.RegionComplex, delta: float, form: str, method: str,
                samples: int, seed: int) -> dict:
    """Build one form, time it, and measure its disagreement with ``net`` in float64 and float32."""
    build = qe.to_wide if form == "wide" else qe.to_deep
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        H = build(net, box, delta, method=method, cx=cx)
        seconds = time.perf_counter() - start
    prov = H.provenance
    M = int(prov.simplices)
    t1_width, t1_depth = table1(box.dim, M, form)
    r64 = qe.compare(net, H, box, samples=samples, seed=seed)
    r32 = float32_report(net, H, box, samples=samples, seed=seed)
    return {
        "D": box.dim, "M": M, "delta": delta, "form": form, "method": prov.method,
        "width": H.width, "hidden_layers": H.hidden_layers, "depth": H.depth, "parameters": H.parameters,
        "table1_width": t1_width, "table1_depth": t1_depth,
        "build_s": seconds, "max_abs_weight": prov.max_abs_weight, "error_bound": prov.error_bound,
        "measure64": r64.disagreement_measure, "ci64": list(r64.ci95), "sup_error64": r64.sup_error,
        "measure32": r32.disagreement_measure, "ci32": list(r32.ci95), "sup_error32": r32.sup_error,
        "samples": samples, "tolerance": r64.tolerance, "volume": box.volume,
        "warnings": sorted({str(w.message).split(":")[0] for w in caught}),
    }


def bench_net(name: str, deltas: list[float], samples: int, paper_max: int, seed: int, log) -> dict:
    net, label = make_net(name)
    box = qe.Box.cube(net.in_dim)
    start = time.perf_counter()
    cx = qe.regions(net, box)
    regions_s = time.perf_counter() - start
    M = len(qe.triangulate(cx, merge=True)) if net.in_dim > 1 else None
    log(f"{label}: D={net.in_dim}, {len(cx)} regions ({regions_s:.2f} s), M={M}")
    rows = []
    exact = net.in_dim == 1
    methods = ["compact"] + (["paper"] if not exact and paper_max >= M else [])
    for delta in deltas[:1] if exact else deltas:
        for method in methods:
            for form in ("wide", "deep"):
                row = measure_row(net, box, cx, delta, form, method, samples, seed)
                row.update(net=name, label=label, regions=len(cx), regions_s=regions_s)
                rows.append(row)
                log(f"  δ={delta:g} {form:4s} {row['method']:7s} width {row['width']} hidden {row['hidden_layers']} "
                    f"params {row['parameters']} build {row['build_s']:.2f} s max|w| {row['max_abs_weight']:.2e} "
                    f"bound {row['error_bound']} f64 {row['measure64']:.3g} f32 {row['measure32']:.3g}")
    return {"net": name, "label": label, "regions": len(cx), "regions_s": regions_s, "M": M,
            "paper_skipped": not exact and paper_max < M, "rows": rows}


# ----- scaling -----------------------------------------------------------------------------------------


def grid_complex(n: int, seed: int = SEED) -> qe.SimplexComplex:
    """The n × n grid on [-1, 1]² cut into 2n² triangles, carrying the linear interpolant of seeded
    N(0, 1) values at the (n+1)² nodes: a continuous piecewise-linear function with M = 2n² pieces."""
    t = np.linspace(-1.0, 1.0, n + 1)
    values = np.random.default_rng(seed).standard_normal((n + 1, n + 1))
    i, j = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]
    tris = [(corners[0], corners[1], corners[2]), (corners[0], corners[2], corners[3])]
    V = np.concatenate([np.stack([np.stack([t[a], t[b]], axis=1) for a, b in tri], axis=1) for tri in tris])
    F = np.concatenate([np.stack([values[a, b] for a, b in tri], axis=1) for tri in tris])  # (M, 3)
    # f = A x + b through the three (vertex, value) pairs: [x 1]·[A b]ᵀ = f
    coeffs = np.linalg.solve(np.concatenate([V, np.ones(V.shape[:2] + (1,))], axis=2), F[:, :, None])[:, :, 0]  # (M, 3)
    M = len(V)
    return qe.SimplexComplex(V, coeffs[:, None, :2], coeffs[:, 2:], np.arange(M), qe.Box.cube(2))


def scaling_row(M_target: int, form: str, log) -> dict:
    n = int(round(np.sqrt(M_target / 2)))
    sc = grid_complex(n)
    build = compact_wide if form == "wide" else compact_deep
    start = time.perf_counter()
    H = build(sc, SCALING_DELTA)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    build(sc, SCALING_DELTA)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    with tempfile.TemporaryDirectory(prefix="quasieq-bench-") as tmp:
        path = os.path.join(tmp, "H.onnx")
        start = time.perf_counter()
        qe.save(H, path, dtype="float32")
        export_s = time.perf_counter() - start
        onnx_bytes = os.path.getsize(path)
    row = {"M": sc.M, "form": form, "width": H.width, "hidden_layers": H.hidden_layers, "parameters": H.parameters,
           "build_s": seconds, "net_bytes": net_bytes(H), "peak_bytes": peak, "export_s": export_s,
           "onnx_bytes": onnx_bytes, "max_abs_weight": H.provenance.max_abs_weight}
    log(f"scaling {form:4s} M={sc.M}: build {seconds:.2f} s, params {H.parameters}, "
        f"net {row['net_bytes'] / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB, "
        f"onnx {onnx_bytes / 2**20:.1f} MiB ({export_s:.1f} s)")
    return row


# ----- report ------------------------------------------------------------------------------------------


def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:.2g}, {ci[1]:.2g}]"


def main_table(results: list[dict]) -> list[list[str]]:
    head = ["net", "D", "regions", "M", "δ", "form", "method", "width", "T1 width", "hidden", "depth",
            "T1 depth", "params", "build s", "max abs w", "bound", "measure f64 [95% CI]", "measure f32 [95% CI]"]
    table = [head]
    for res in results:
        for r in res["rows"]:
            table.append([
                res["net"], str(r["D"]), str(r["regions"]), str(r["M"]),
                "any" if r["method"] == "exact" else f"{r['delta']:g}", r["form"],
                r["method"] + ("*" if r["warnings"] else ""),
                str(r["width"]), str(r["table1_width"]), str(r["hidden_layers"]), str(r["depth"]),
                str(r["table1_depth"]), str(r["parameters"]), f"{r['build_s']:.2f}", f"{r['max_abs_weight']:.2e}",
                "n/a" if r["error_bound"] is None else f"{r['error_bound']:.2g}",
                f"{r['measure64']:.2g} {_ci(r['ci64'])}", f"{r['measure32']:.2g} {_ci(r['ci32'])}",
            ])
    return table


def scaling_table(rows: list[dict]) -> list[list[str]]:
    head = ["form", "M", "width", "hidden", "params", "params/M", "build s", "build ms/M", "net MiB",
            "peak MiB", "peak KiB/M", "ONNX f32 MiB", "export s"]
    table = [head]
    for r in rows:
        table.append([
            r["form"], str(r["M"]), str(r["width"]), str(r["hidden_layers"]), str(r["parameters"]),
            f"{r['parameters'] / r['M']:.1f}", f"{r['build_s']:.2f}", f"{1e3 * r['build_s'] / r['M']:.3f}",
            f"{r['net_bytes'] / 2**20:.2f}", f"{r['peak_bytes'] / 2**20:.1f}",
            f"{r['peak_bytes'] / 2**10 / r['M']:.2f}",
            f"{r['onnx_bytes'] / 2**20:.2f}", f"{r['export_s']:.2f}",
        ])
    return table


def plain(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in table)


def markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} logical CPUs, load average at the end {load}"


def write_markdown(path: Path, command: str, samples: int, results: list[dict], scaling: list[dict]) -> None:
    text = [
        f"Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}. Machine: {machine()}. "
        f"Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        f"Command: `{command}`",
        "",
        f"Box [-1, 1]^D (volume 2^D); measures are absolute (Lebesgue). Monte Carlo: {samples} uniform points "
        "per measure, seed 0, tolerance 1e-6·max(1, output range); a measure below ≈ 3.7·vol/N is not "
        "resolved (the 95% interval of 0 hits). `*` after the method: the construction warned that rounding "
        "may exceed the comparison tolerance. T1 = Table 1 for the same D and M.",
        "",
        markdown(main_table(results)),
    ]
    skipped = [r["net"] for r in results if r["paper_skipped"]]
    if skipped:
        text += ["", f"method=paper not run for {', '.join(skipped)} (M above --paper-max-simplices)."]
    if scaling:
        text += ["", f"Scaling: synthetic 2-D grid complexes, compact forms, δ = {SCALING_DELTA:g}.", "",
                 markdown(scaling_table(scaling))]
    path.write_text("\n".join(text) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--nets", help=f"comma-separated architectures or {', '.join(TRAINED)} (default {','.join(DEFAULT_NETS)})"
    )
    ap.add_argument("--deltas", help=f"comma-separated δ values (default {','.join(f'{d:g}' for d in DEFAULT_DELTAS)})")
    ap.add_argument("--full", action="store_true", help=f"all δ in {', '.join(f'{d:g}' for d in ALL_DELTAS)}")
    ap.add_argument("--samples", type=int, default=50_000, help="Monte-Carlo points per measure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paper-max-simplices", type=int, default=800, help="run method=paper only for M up to this")
    ap.add_argument("--no-scaling", action="store_true", help="skip the M ≈ 2.5e3…1e4 scaling check")
    ap.add_argument("--scaling-only", action="store_true", help="run only the scaling check")
    ap.add_argument("--markdown", type=Path, help="write the tables as Markdown to this file")
    ap.add_argument("--json", type=Path, help="write every measured row as JSON to this file")
    args = ap.parse_args(argv)
    nets = args.nets.split(",") if args.nets else DEFAULT_NETS
    deltas = ALL_DELTAS if args.full else [float(d) for d in args.deltas.split(",")] if args.deltas else DEFAULT_DELTAS

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    results = [] if args.scaling_only else [
        bench_net(n, deltas, args.samples, args.paper_max_simplices, args.seed, log) for n in nets
    ]
    scaling = [] if args.no_scaling else [scaling_row(M, form, log) for M in SCALING_M for form in ("wide", "deep")]
    log(f"total {time.perf_counter() - start:.0f} s")
    if results:
        print(plain(main_table(results)))
    if scaling:
        print(plain(scaling_table(scaling)))
    command = "python benchmarks/transforms.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.markdown:
        write_markdown(args.markdown, command.strip(), args.samples, results, scaling)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "scaling": scaling}, indent=1))


if __name__ == "__main__":
    main()
