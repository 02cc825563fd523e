"""Benchmark: exact linear regions of seeded ReLU MLPs on [-1, 1]^D, quasieq beside its peers.

For each net (benchmarks/nets.py recipe) it times ``qe.regions`` (best of ``--repeats`` runs; the first
call in the process, which loads or compiles the numba kernels, is timed and reported separately) and
each peer tool, every tool in its own subprocess under a wall-clock cap (``--cap`` seconds for a peer,
``--quasieq-cap`` for quasieq, reported as "timeout" when exceeded):

* regioncam (Rust, float32, 2-D inputs only): ``Regioncam(size=1)`` then ``linear``/``relu`` per hidden
  layer; the count is ``num_faces``.
* affinitree (Rust): ``builder.from_layers`` with the box as precondition (``AffTree.from_poly``); the
  count is ``num_terminals``.
* Relucent (Gurobi LPs): ``Complex(model).bfs(cube_radius=1, cube_mode="clipped")``; the count is
  ``len(complex)``. It uses all cores (its default), quasieq and the others one.

Each tool's peak resident memory (its subprocess, imports included) is reported beside its time.
A peer that cannot be imported or run is reported as "skipped: <reason>". The table says whether each
peer's count agrees with quasieq's and quasieq's speed-up (peer seconds / quasieq seconds).

    .venv-bench/bin/python benchmarks/regions.py [--nets 2-16-16-1,3-16-16-1] [--cap 60]
        [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nets import GOLDEN_REGION_COUNTS, arch_name, cpu_model, parse_arch, seeded_layers, seeded_net  # noqa: E402

NETS = ["2-16-16-1", "2-32-32-1", "2-64-64-1", "2-128-128-1", "3-16-16-1", "3-32-32-1", "4-16-16-16-1", "6-24-24-1"]
PEERS = ["regioncam", "affinitree", "relucent"]


# ----- one enumeration per tool: returns the region count ------------------------------------------


def count_quasieq(arch: str) -> int:
    from benchmarks.nets import seeded_relu_net

    import quasieq as qe

    net = seeded_relu_net(arch)
    return len(qe.regions(net, qe.Box.cube(net.in_dim)))


def count_regioncam(arch: str) -> int:
    import numpy as np
    import regioncam

    rc = regioncam.Regioncam(size=1.0)  # the square [-1, 1]^2
    for W, b in seeded_layers(arch)[:-1]:
        rc.linear(W.T.astype(np.float32), b.astype(np.float32))  # x_out = x_in @ weight + bias
        rc.relu()
    return int(rc.num_faces)


def count_affinitree(arch: str) -> int:
    import affinitree as at
    from affinitree import builder

    layers = seeded_layers(arch)
    D = layers[0][0].shape[1]
    architecture = at.Architecture(D)
    for i, (W, b) in enumerate(layers):
        architecture.linear(at.AffFunc.from_mats(W, b))
        if i < len(layers) - 1:
            architecture.relu()
    box = at.AffTree.from_poly(at.Polytope.hyperrectangle(D, [(-1.0, 1.0)] * D), at.AffFunc.identity(D), None)
    return int(builder.from_layers(architecture, box, None).num_terminals())


def count_relucent(arch: str) -> int:
    import numpy as np
    import relucent

    model = seeded_net(arch)
    cplx = relucent.Complex(model)
    cplx.bfs(start=np.zeros(model[0].in_features), cube_radius=1.0, cube_mode="clipped", verbose=0)
    return len(cplx)


COUNTERS = {"quasieq": count_quasieq, "regioncam": count_regioncam, "affinitree": count_affinitree,
            "relucent": count_relucent}


def worker(tool: str, arch: str, repeats: int) -> None:
    """Subprocess body: time the enumerations, printing one ``RESULT {json}`` line after each (so that
    a run cut off by the cap still reports the ones that finished). quasieq first enumerates a tiny net
    of the same input dimension, which loads or compiles its numba kernels; that call is timed apart and
    reported as ``FIRST``."""
    if tool == "quasieq":
        t0 = time.perf_counter()
        COUNTERS[tool](f"{parse_arch(arch)[0]}-4-4-1")
        print("FIRST " + json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = COUNTERS[tool](arch)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB, the process so far
        print("RESULT " + json.dumps({"count": count, "seconds": seconds, "peak_gib": peak}), flush=True)


def run_tool(tool: str, arch: str, cap: float, repeats: int) -> dict:
    """Run one tool on one net in a subprocess under a wall-clock cap: best time of the runs that
    finished (quasieq's first call, timed apart, is not one of them)."""
    if tool == "regioncam" and parse_arch(arch)[0] != 2:
        return {"status": "skipped: 2-D inputs only"}
    try:
        metadata.version(tool)
    except metadata.PackageNotFoundError:
        return {"status": f"skipped: {tool} is not installed (pip install {tool})"}
    cmd = [sys.executable, __file__, "--worker", tool, arch, "--repeats", str(repeats)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap)
        out, err, timed_out = proc.stdout, proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, timed_out = "", True
    lines = out.splitlines()
    runs = [json.loads(line[len("RESULT "):]) for line in lines if line.startswith("RESULT ")]
    first = [json.loads(line[len("FIRST "):])["seconds"] for line in lines if line.startswith("FIRST ")]
    if not runs:
        if timed_out:
            return {"status": f"timeout (> {cap:g} s)"}
        last = (err.strip().splitlines() or ["no output"])[-1]
        return {"status": f"skipped: {last[:120]}"}
    best = min(runs, key=lambda r: r["seconds"])
    return {"status": "ok", "count": best["count"], "seconds": best["seconds"], "runs": len(runs),
            "first_call": first[0] if first else None, "peak_gib": max(r["peak_gib"] for r in runs)}


# ----- report ---------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = cpu_model()
    versions = {}
    for pkg in ["quasieq", "numpy", "numba", "torch", *PEERS]:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()), "versions": versions,
    }


def ratio(r: float) -> str:
    """A speed ratio: two significant digits below 10, whole numbers above."""
    return f"{r:.2g}×" if r < 10 else f"{r:,.0f}×"


def rows(results: dict) -> list[list[str]]:
    out = []
    for arch, tools in results.items():
        q = tools["quasieq"]
        golden = GOLDEN_REGION_COUNTS.get(arch)
        if q["status"] == "ok":
            out.append([arch, "quasieq", str(q["count"]), f"{q['seconds']:.4f}", f"{q['count'] / q['seconds']:,.0f}",
                        f"{q['peak_gib']:.2f}",
                        "—" if golden is None else ("yes (golden)" if golden == q["count"] else f"NO (golden {golden})"),
                        f"first call {q['first_call']:.2f} s"])
        else:
            out.append([arch, "quasieq", "—", q["status"], "—", "—", "—", "—"])
        for peer in PEERS:
            p = tools.get(peer)
            if p is None:
                continue
            if p["status"] != "ok":
                out.append([arch, peer, "—", p["status"], "—", "—", "—", "—"])
                continue
            agree = speedup = "—"
            if q["status"] == "ok":
                agree = "yes" if p["count"] == q["count"] else f"NO ({p['count'] - q['count']:+d})"
                speedup = ratio(p["seconds"] / q["seconds"])
            elif golden is not None:
                agree = "yes (golden)" if p["count"] == golden else f"NO (golden {golden})"
            out.append([arch, peer, str(p["count"]), f"{p['seconds']:.4f}", f"{p['count'] / p['seconds']:,.0f}",
                        f"{p['peak_gib']:.2f}", agree, speedup])
    return out


HEADER = ["net", "tool", "regions", "seconds (best)", "regions/s", "peak RSS GiB", "count agrees", "quasieq speed-up"]


def markdown_table(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    return "\n".join(lines)


def text_table(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *table]) for i in range(len(HEADER))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*HEADER), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in table])


def write_markdown(path: Path, info: dict, table: list[list[str]], args: argparse.Namespace) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    path.write_text(f"""# Benchmarks: exact linear regions

`benchmarks/regions.py` enumerates the full-dimensional linear regions of seeded random ReLU MLPs on
the box [-1, 1]^D with quasieq and with the peer tools, on the same nets in the same run.

* Nets: `torch.manual_seed(0)`, then `nn.Sequential(Linear, ReLU, …, Linear)` with PyTorch's default
  initialisation (benchmarks/nets.py); "2-16-16-1" is 2 inputs, two hidden layers of 16, one output.
* Seconds: best of {args.repeats} runs. quasieq's first call in its process (a tiny net of the same input
  dimension: the numba kernels loaded from the cache or compiled) is not in that time; it is reported
  in the last column. Every tool runs in
  its own subprocess per net, under a cap that includes imports ({args.cap:g} s for each peer,
  {args.quasieq_cap:g} s for quasieq); "timeout" means no timed run finished within it.
* "count agrees": quasieq's count against the golden counts of independent exact tools
  (benchmarks/nets.py) and each peer's count against quasieq's. "quasieq speed-up" is peer seconds /
  quasieq seconds (above 1: quasieq is faster).
* Peers: regioncam (Rust, float32, 2-D inputs only), affinitree (Rust), Relucent (Gurobi LPs; it
  uses every core, the others one).
* Peak RSS: the tool's subprocess (imports included, so ~0.3–0.5 GiB is Python, numpy, torch).

Run: `{info['date']}` on {info['cpu']}, {info['cores']} cores, Python {info['python']},
load average at the end {info['load']} (the machine was shared with other jobs: timings are noisy).
Versions: {versions}.

Command: `python benchmarks/regions.py --nets {','.join(args.nets)} --peers {','.join(args.peers)} --cap {args.cap:g} --quasieq-cap {args.quasieq_cap:g} --repeats {args.repeats} --markdown {args.markdown}`

{markdown_table(table)}
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", type=lambda s: [arch_name(a) for a in s.split(",")], default=NETS,
                    help="comma-separated architectures, e.g. 2-16-16-1,3-16-16-1")
    ap.add_argument("--peers", type=lambda s: [p for p in s.split(",") if p], default=PEERS,
                    help=f"comma-separated subset of {','.join(PEERS)} (empty: none)")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds allowed to each peer on each net")
    ap.add_argument("--quasieq-cap", type=float, default=600.0,
                    help="seconds allowed to quasieq on each net (first call and repeats together)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per tool and net (best is reported)")
    ap.add_argument("--markdown", type=Path, help="write the report as Markdown to this file")
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "NET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeats)
        return
    bad = [p for p in args.peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer {bad[0]!r}; choose from {', '.join(PEERS)}")
    results: dict[str, dict] = {}
    for arch in args.nets:
        results[arch] = {}
        for tool in ["quasieq", *args.peers]:
            cap = args.quasieq_cap if tool == "quasieq" else args.cap
            results[arch][tool] = run_tool(tool, arch, cap, args.repeats)
            print(f"{arch}: {tool} {results[arch][tool]}", file=sys.stderr, flush=True)
    info = machine()
    table = rows(results)
    print(f"{info['date']}  {info['cpu']}  {info['cores']} cores  load {info['load']}")
    print(text_table(table))
    if args.markdown:
        write_markdown(args.markdown, info, table, args)


if __name__ == "__main__":
    main()
