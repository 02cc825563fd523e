"""Benchmark: exact linear regions of seeded ReLU MLPs on a cube, quasieq beside its peers.

A net is written ``ARCH[:INIT][@H]``: the architecture (benchmarks/nets.py), the initialisation
(``torch``, PyTorch's default, or ``fanin``: W ~ N(0, 1/fan_in), b ~ N(0, 0.3²)) and the cube [-H, H]^D
(default H = 1). For each net it times ``qe.regions`` (best of ``--repeats`` runs, fewer once a net's
runs pass ``--repeat-budget`` seconds; the first call in the process, which loads or compiles the numba
kernels, is timed and reported separately) and each peer tool, every tool in its own subprocess under a
wall-clock cap (``--cap`` seconds for a peer, ``--quasieq-cap`` for quasieq, "timeout" when exceeded):

* regioncam (Rust, float32, 2-D inputs only): ``Regioncam(size=1)`` then ``linear``/``relu`` per hidden
  layer; the count is ``num_faces``.
* affinitree (Rust): ``builder.from_layers`` with the box as precondition (``AffTree.from_poly``); the
  count is ``num_terminals``.
* Relucent (Gurobi LPs): ``Complex(model).bfs(cube_radius=1, cube_mode="clipped")``; the count is
  ``len(complex)``. It uses all cores (its default), as quasieq does (threads in one process;
  ``--threads 1`` for one), the others one.

Each tool's peak resident memory (its subprocess, imports included) is reported beside its time, and
for quasieq also per region. A peer that cannot be imported or run is reported as "skipped: <reason>";
a peer is run only on the nets it can finish (:func:`peer_runs`). The table says whether each count
agrees with the golden counts (benchmarks/golden_counts.json) and with quasieq's, quasieq's speed-up
(peer seconds / quasieq seconds), and, per net, the goal it measures and whether it is met.

    python benchmarks/regions.py [--nets 2-16-16-1,3-16-16-1:fanin] [--cap 60] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import ast
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
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nets import GOLDEN_REGION_COUNTS, INITS, cpu_model, parse_arch, seeded_layers, seeded_net  # noqa: E402

TWO_D = ["2-16-16-1", "2-32-32-1", "2-64-64-1", "2-128-128-1", "2-256-256-1", "2-512-512-1"]
#: The collision-avoidance shape (5 inputs, six hidden layers of 50) on a small box: ±0.03, 3% of [-1, 1].
SMALL_BOX_5D = "5-50-50-50-50-50-50-1"
NETS = [f"{a}:{init}{suffix}" for init in INITS
        for a, suffix in [*((a, "") for a in TWO_D), ("3-32-32-1", ""), ("4-16-16-16-1", ""), ("5-16-16-16-1", ""),
                          (SMALL_BOX_5D, "@0.03"), ("6-24-24-1", "")]]
PEERS = ["regioncam", "affinitree", "relucent"]


class Spec(NamedTuple):
    """A benchmark net: architecture, initialisation, the cube [-half_width, half_width]^D."""

    arch: str
    init: str
    half_width: float

    @classmethod
    def parse(cls, text: str) -> Spec:
        rest, _, width = text.partition("@")
        arch, _, init = rest.partition(":")
        init = init or "torch"
        if init not in INITS:
            raise ValueError(f"net {text!r}: initialisation {init!r}, choose one of {', '.join(INITS)}")
        return cls("-".join(str(w) for w in parse_arch(arch)), init, float(width or 1.0))

    def __str__(self) -> str:
        return f"{self.arch}:{self.init}" + (f"@{self.half_width:g}" if self.half_width != 1.0 else "")

    @property
    def dim(self) -> int:
        return parse_arch(self.arch)[0]

    @property
    def golden(self) -> int | None:
        if self.init != "torch" or self.half_width != 1.0:
            return None
        return GOLDEN_REGION_COUNTS.get(self.arch)


def goal(spec: Spec) -> tuple[str, str, float] | None:
    """The issue's goal this net measures: (description, peer or "rate" or "seconds", target)."""
    widths = parse_arch(spec.arch)
    if spec.dim == 2 and spec.half_width == 1.0:
        return ("≥ 1× regioncam", "regioncam", 1.0)
    if spec.dim in (3, 4, 5) and spec.half_width == 1.0:
        return ("≥ 30× affinitree", "affinitree", 30.0)
    if spec.dim == 5 and len(widths) == 8:
        return ("≥ 20,000 regions/s", "rate", 20_000.0)
    if spec.dim == 6:
        return ("< 120 s", "seconds", 120.0)
    return None


def peer_runs(peer: str, spec: Spec) -> str | None:
    """Why ``peer`` is not run on ``spec`` (None: it is): regioncam takes 2-D inputs on [-1, 1]^2 only;
    affinitree and Relucent are skipped on the nets where they are known to exceed any sensible cap
    (affinitree: 2-D nets wider than 64; Relucent: beyond 3 inputs or 64 neurons)."""
    widths = parse_arch(spec.arch)
    if peer == "regioncam" and (spec.dim != 2 or spec.half_width != 1.0):
        return "2-D inputs on [-1, 1]^2 only"
    if peer == "affinitree" and spec.dim == 2 and max(widths[1:-1]) > 64:
        return "not run: > 60 s on 2-128-128-1 already"
    if peer == "relucent" and (spec.dim > 3 or sum(widths[1:-1]) > 64):
        return "not run: beyond 3 inputs or 64 neurons"
    return None


# ----- one enumeration per tool: returns the region count ------------------------------------------


# Each tool: prepare(spec) builds its inputs (the net, outside the timing), count(inputs) enumerates.


def prepare_quasieq(spec: Spec):
    from benchmarks.nets import seeded_relu_net

    import quasieq as qe

    net = seeded_relu_net(spec.arch, init=spec.init)
    return net, qe.Box.cube(net.in_dim, -spec.half_width, spec.half_width)


#: quasieq's threads (``--threads``; None: its default, every core).
QUASIEQ_THREADS: int | None = None


def count_quasieq(inputs) -> int:
    import quasieq as qe

    net, box = inputs
    return len(qe.regions(net, box, threads=QUASIEQ_THREADS))


def prepare_regioncam(spec: Spec):
    import numpy as np

    return [(W.T.astype(np.float32), b.astype(np.float32)) for W, b in seeded_layers(spec.arch, init=spec.init)[:-1]]


def count_regioncam(layers) -> int:
    import regioncam

    rc = regioncam.Regioncam(size=1.0)  # the square [-1, 1]^2
    for weight, bias in layers:
        rc.linear(weight, bias)  # x_out = x_in @ weight + bias
        rc.relu()
    return int(rc.num_faces)


def prepare_affinitree(spec: Spec):
    return seeded_layers(spec.arch, init=spec.init), spec.half_width


def count_affinitree(inputs) -> int:
    import affinitree as at
    from affinitree import builder

    layers, h = inputs
    D = layers[0][0].shape[1]
    architecture = at.Architecture(D)
    for i, (W, b) in enumerate(layers):
        architecture.linear(at.AffFunc.from_mats(W, b))
        if i < len(layers) - 1:
            architecture.relu()
    box = at.AffTree.from_poly(at.Polytope.hyperrectangle(D, [(-h, h)] * D), at.AffFunc.identity(D), None)
    return int(builder.from_layers(architecture, box, None).num_terminals())


def prepare_relucent(spec: Spec):
    return seeded_net(spec.arch, init=spec.init), spec.half_width


def count_relucent(inputs) -> int:
    import numpy as np
    import relucent

    model, h = inputs
    cplx = relucent.Complex(model)
    cplx.bfs(start=np.zeros(model[0].in_features), cube_radius=h, cube_mode="clipped", verbose=0)
    return len(cplx)


COUNTERS = {"quasieq": (prepare_quasieq, count_quasieq), "regioncam": (prepare_regioncam, count_regioncam),
            "affinitree": (prepare_affinitree, count_affinitree), "relucent": (prepare_relucent, count_relucent)}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(tool: str, spec: Spec, repeats: int, budget: float) -> None:
    """Subprocess body: time the enumerations, printing one ``RESULT {json}`` line after each (so that
    a run cut off by the cap still reports the ones that finished), and no further run once the runs
    took ``budget`` seconds. quasieq first enumerates a tiny net of the same input dimension, which
    loads or compiles its numba kernels; that call is timed apart and reported as ``FIRST``."""
    prepare, count_regions = COUNTERS[tool]
    if tool == "quasieq":
        tiny = prepare(spec._replace(arch=f"{spec.dim}-4-4-1"))
        t0 = time.perf_counter()
        count_regions(tiny)
        print("FIRST " + json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
    inputs = prepare(spec)
    spent = 0.0
    for _ in range(repeats):
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        count = count_regions(inputs)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB, the process so far
        print("RESULT " + json.dumps({"count": count, "seconds": seconds, "cpu": cpu, "peak_gib": peak}), flush=True)
        spent += seconds
        if spent > budget:
            break


def run_tool(tool: str, spec: Spec, cap: float, repeats: int, budget: float) -> dict:
    """Run one tool on one net in a subprocess under a wall-clock cap: best time of the runs that
    finished (quasieq's first call, timed apart, is not one of them)."""
    if tool != "quasieq" and (why := peer_runs(tool, spec)) is not None:
        return {"status": f"skipped: {why}"}
    try:
        metadata.version(tool)
    except metadata.PackageNotFoundError:
        return {"status": f"skipped: {tool} is not installed (pip install {tool})"}
    cmd = [sys.executable, __file__, "--worker", tool, str(spec), "--repeats", str(repeats),
           "--repeat-budget", str(budget), *(["--threads", str(QUASIEQ_THREADS)] if QUASIEQ_THREADS else [])]
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
            "cpu": min(r["cpu"] for r in runs),
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


def goal_cell(spec: Spec, tools: dict) -> str:
    """The net's goal, the measured figure and whether it is met."""
    target = goal(spec)
    q = tools["quasieq"]
    if target is None:
        return "—"
    text, against, value = target
    if q["status"] != "ok":
        return f"{text}: not met (quasieq {q['status']})"
    if against == "rate":
        measured, met = q["count"] / q["seconds"], q["count"] / q["seconds"] >= value
        return f"{text}: {measured:,.0f}/s, {'met' if met else 'not met'}"
    if against == "seconds":
        return f"{text}: {q['seconds']:.1f} s, {'met' if q['seconds'] < value else 'not met'}"
    p = tools.get(against, {"status": "not run"})
    if p["status"] == "ok":
        r, r_cpu = p["seconds"] / q["seconds"], p["cpu"] / q["cpu"]
        return f"{text}: {ratio(r)} ({ratio(r_cpu)} in CPU s), {'met' if r >= value else 'not met'}"
    if p["status"].startswith("timeout"):
        cap = float(p["status"].split("> ")[1].split(" ")[0])
        return f"{text}: > {ratio(cap / q['seconds'])} ({against} timed out)"
    return f"{text}: {against} {p['status']}"


def rows(results: dict[Spec, dict]) -> list[list[str]]:
    out = []
    for spec, tools in results.items():
        q = tools["quasieq"]
        golden = spec.golden
        if q["status"] == "ok":
            agree = [] if golden is None else ["golden" if golden == q["count"] else f"NOT golden ({golden})"]
            for peer in PEERS:
                p = tools.get(peer, {})
                if p.get("status") == "ok":
                    agree.append(peer if p["count"] == q["count"] else f"NOT {peer} ({p['count'] - q['count']:+d})")
            out.append([str(spec), "quasieq", f"{q['count']:,}", f"{q['seconds']:.4f}", f"{q['cpu']:.4f}",
                        f"{q['count'] / q['seconds']:,.0f}", f"{q['peak_gib']:.2f}",
                        f"{q['peak_gib'] * 2**20 / max(q['count'], 1):,.1f}", ", ".join(agree) or "—",
                        f"first call {q['first_call']:.2f} s", "", goal_cell(spec, tools)])
        else:
            out.append([str(spec), "quasieq", "—", q["status"], "—", "—", "—", "—", "—", "—", "—",
                        goal_cell(spec, tools)])
        for peer in PEERS:
            p = tools.get(peer)
            if p is None or p["status"].startswith("skipped: 2-D"):
                continue
            if p["status"] != "ok":
                out.append([str(spec), peer, "—", p["status"], "—", "—", "—", "—", "—", "—", "—", ""])
                continue
            agree = speedup = cpu_speedup = "—"
            if q["status"] == "ok":
                agree = "yes" if p["count"] == q["count"] else f"NO ({p['count'] - q['count']:+d})"
                speedup = ratio(p["seconds"] / q["seconds"])
                cpu_speedup = ratio(p["cpu"] / q["cpu"])
            elif golden is not None:
                agree = "golden" if p["count"] == golden else f"NOT golden ({golden})"
            out.append([str(spec), peer, f"{p['count']:,}", f"{p['seconds']:.4f}", f"{p['cpu']:.4f}",
                        f"{p['count'] / p['seconds']:,.0f}", f"{p['peak_gib']:.2f}",
                        f"{p['peak_gib'] * 2**20 / max(p['count'], 1):,.1f}", agree, speedup, cpu_speedup, ""])
    return out


HEADER = ["net", "tool", "regions", "seconds (best)", "CPU s (best)", "regions/s", "peak RSS GiB", "KiB/region",
          "count agrees with", "quasieq speed-up", "speed-up in CPU s", "goal"]


def markdown_table(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    return "\n".join(lines)


def text_table(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *table]) for i in range(len(HEADER))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*HEADER), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in table])


def command_line(args: argparse.Namespace) -> str:
    return (f"python benchmarks/regions.py --nets {','.join(map(str, args.nets))} --peers {','.join(args.peers)} "
            f"--cap {args.cap:g} --quasieq-cap {args.quasieq_cap:g} --repeats {args.repeats} "
            f"--repeat-budget {args.repeat_budget:g}" + (f" --threads {args.threads}" if args.threads else "")
            + f" --markdown {args.markdown}")


def write_markdown(path: Path, info: dict, table: list[list[str]], args: argparse.Namespace) -> None:
    """Write the run as the first section of ``path``, keeping the sections after it (from the first
    ``### `` heading on)."""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    kept = ""
    if path.exists():
        text = path.read_text()
        at = text.find("\n### ")
        kept = text[at + 1 :] if at >= 0 else ""
    path.write_text(f"""# Benchmarks: exact linear regions

`benchmarks/regions.py` enumerates the full-dimensional linear regions of seeded random ReLU MLPs on a
cube with quasieq and with the peer tools, on the same nets in the same run.

* Nets (benchmarks/nets.py): `ARCH:torch` is `torch.manual_seed(0)`, then `nn.Sequential(Linear, ReLU,
  …, Linear)` with PyTorch's default initialisation; `ARCH:fanin` draws W ~ N(0, 1/fan_in), b ~ N(0, 0.3²)
  (more regions per neuron). "2-16-16-1" is 2 inputs, two hidden layers of 16, one output. The cube is
  [-1, 1]^D, or [-H, H]^D for a net written `…@H`.
* Seconds: wall clock, best of up to {args.repeats} runs; "CPU s" is the best run's user + system CPU time
  of the tool's process (all its threads: a multi-threaded peer's CPU time exceeds its wall time), which
  a loaded machine distorts less than the wall clock. No further run once a net's runs took
  {args.repeat_budget:g} s. quasieq's first call in its process (a tiny net of the same input dimension:
  the numba kernels loaded from their cache) is not in that time; it is reported in the speed-up column.
  Every tool runs in its own subprocess per net, under a cap that includes imports ({args.cap:g} s for
  each peer, {args.quasieq_cap:g} s for quasieq); "timeout" means no timed run finished within it.
* "count agrees with": quasieq's count against the golden counts (benchmarks/golden_counts.json: counts
  on which regioncam, affinitree and quasieq agree) and against every peer that finished; each peer's
  count against quasieq's. "quasieq speed-up" is peer seconds / quasieq seconds (above 1: quasieq is
  faster). "goal" is the target this net measures, with the measured figure.
* Peers: regioncam (Rust, float32, 2-D inputs only), affinitree (Rust), Relucent (Gurobi LPs; it uses
  every core). A peer is not run where it cannot finish within its cap (see `peer_runs`).
* Peak RSS: the tool's subprocess (imports included, so ~0.3–0.5 GiB is Python, numpy, torch);
  KiB/region divides it by the region count (so it overstates small nets).

Run: `{info['date']}` on {info['cpu']}, {info['cores']} cores, Python {info['python']}; load average
(`uptime`) at the start {info['load_start']}, at the end {info['load']}: the machine was shared with other
jobs, so every time is noisy, and the ratios between tools in the same run are the figures to read.
Versions: {versions}.

Command: `{command_line(args)}`

{markdown_table(table)}

""" + kept)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", type=lambda s: [Spec.parse(a) for a in s.split(",")],
                    default=[Spec.parse(n) for n in NETS],
                    help="comma-separated nets ARCH[:INIT][@H], e.g. 2-16-16-1,3-16-16-1:fanin")
    ap.add_argument("--peers", type=lambda s: [p for p in s.split(",") if p], default=PEERS,
                    help=f"comma-separated subset of {','.join(PEERS)} (empty: none)")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds allowed to each peer on each net")
    ap.add_argument("--quasieq-cap", type=float, default=300.0,
                    help="seconds allowed to quasieq on each net (first call and repeats together)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per tool and net (best is reported)")
    ap.add_argument("--repeat-budget", type=float, default=20.0, help="no further run once the runs took this long")
    ap.add_argument("--threads", type=int, help="quasieq's threads (default: every core)")
    ap.add_argument("--markdown", type=Path, help="write the report as the first section of this Markdown file")
    ap.add_argument("--from-log", type=Path, metavar="LOG",
                    help="build the report from the per-net lines a run wrote to stderr (a run cut short)")
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "NET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    global QUASIEQ_THREADS
    QUASIEQ_THREADS = args.threads
    if args.worker:
        worker(args.worker[0], Spec.parse(args.worker[1]), args.repeats, args.repeat_budget)
        return
    bad = [p for p in args.peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer {bad[0]!r}; choose from {', '.join(PEERS)}")
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results: dict[Spec, dict] = {}
    if args.from_log is not None:
        for line in args.from_log.read_text().splitlines():
            net, _, rest = line.partition(": ")
            tool, _, result = rest.partition(" ")
            results.setdefault(Spec.parse(net), {})[tool] = ast.literal_eval(result)
        args.nets = list(results)
    for spec in [] if args.from_log is not None else args.nets:
        results[spec] = {}
        for tool in ["quasieq", *args.peers]:
            cap = args.quasieq_cap if tool == "quasieq" else args.cap
            results[spec][tool] = run_tool(tool, spec, cap, args.repeats, args.repeat_budget)
            print(f"{spec}: {tool} {results[spec][tool]}", file=sys.stderr, flush=True)
    info = machine() | {"load_start": load_start}
    table = rows(results)
    print(f"{info['date']}  {info['cpu']}  {info['cores']} cores  load {load_start} → {info['load']}")
    print(text_table(table))
    if args.markdown:
        write_markdown(args.markdown, info, table, args)


if __name__ == "__main__":
    main()
