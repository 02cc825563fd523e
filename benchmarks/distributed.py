"""Benchmark: region enumeration in one process beside a local Dask cluster of 1 and 2 workers.

For each net (benchmarks/nets.py recipe, on [-1, 1]^D) and each mode — ``serial`` (one process, no
Dask, one thread: ``threads=1``, as each worker runs its tasks), ``1 worker`` and ``2 workers`` (a
``LocalCluster`` of worker processes, one thread each) — a fresh subprocess loads the kernels on a tiny
net of the same input dimension (and, on a cluster, on every
worker), then times one ``qe.regions`` call. It prints the seconds, the speed-up over serial, the tasks,
the array bytes per region shipped between client and workers (what passes through the client) beside
the bytes the workers sent (Dask's own count: to the client and to one another, where a worker fetches a
subtree another one split), the client process's peak RSS (``ru_maxrss``: the workers are other
processes), a SHA-256 of every array of the complex, which must be the same in all three modes, and
the CPU seconds (user + system) the run took in the client process and in the workers, and the tasks'
compute seconds from Dask's task stream: their sum and the longest task (the tree's cut into tasks
allows at most sum / max(longest, sum / N) with N workers, whatever the load). On a machine
shared with other jobs the wall time follows the load, while the CPU seconds show what the
distribution itself costs ("CPU vs serial": client + workers over the serial run's CPU seconds; on idle
cores 2 workers can be at most 2 / that faster than serial). The load average (``os.getloadavg``) is
printed beside each run: on a shared machine the times mean little without it.

With ``--repeats N`` the three modes run N times, interleaved (serial, 1, 2, serial, 1, 2, …), and each
row shows the median of the N times (the other columns from the run of median time).

    python benchmarks/distributed.py [--nets 2-512-512-1,3-72-72-1] [--repeats 3] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# the repository root instead of this script's folder, where this file would shadow the distributed package
sys.path[0] = str(Path(__file__).resolve().parents[1])

NETS = ["2-512-512-1", "3-72-72-1", "4-28-28-28-1"]
MODES = {"serial": None, "1 worker": 1, "2 workers": 2}
ARRAYS = ("patterns", "vertices_flat", "vertex_indptr", "facet_normals_flat", "facet_rhs_flat", "facet_sources_flat",
          "facet_indptr", "neighbours_flat", "interior_points", "radii", "A", "b", "volumes")


def child(arch: str, workers: int | None) -> dict:
    """One timed enumeration in this process (run as ``--child``)."""
    import numpy as np
    from benchmarks.nets import seeded_relu_net

    import quasieq as qe
    from distributed import get_task_stream
    from quasieq.cluster.session import cluster_client

    net = seeded_relu_net(arch)
    box = qe.Box.cube(net.in_dim)
    warm = seeded_relu_net(f"{net.in_dim}-4-4-1")
    with cluster_client(workers) as client:
        qe.regions(warm, box, client=client)  # the client's kernels too (it splits the root, links the boundaries)
        if client is not None:
            client.run(lambda: len(qe.regions(warm, box)))  # load the kernels on every worker
        load = os.getloadavg()[0]
        workers_before = client.run(cpu_seconds) if client is not None else {}
        sent_before = client.run(bytes_sent) if client is not None else {}
        client_before = cpu_seconds()
        start = time.perf_counter()
        with get_task_stream(client) if client is not None else contextlib.nullcontext() as stream:
            cx = qe.regions(net, box, client=client, threads=1 if client is None else None)
        seconds = time.perf_counter() - start
        client_cpu = cpu_seconds() - client_before
        workers_after = client.run(cpu_seconds) if client is not None else {}
        sent_after = client.run(bytes_sent) if client is not None else {}
    durations = [sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
                 for task in (stream.data if client is not None else [])]
    digest = hashlib.sha256()
    for name in ARRAYS:
        digest.update(np.ascontiguousarray(getattr(cx, name)).tobytes())
    return {
        "regions": len(cx), "seconds": seconds, "tasks": cx.run.tasks, "bytes_shipped": cx.run.bytes_shipped,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "sha256": digest.hexdigest(),
        "load_before": load, "load_after": os.getloadavg()[0], "client_cpu": client_cpu,
        "workers_cpu": sum(workers_after[w] - workers_before[w] for w in workers_before),
        "workers_sent": sum(sent_after[w] - sent_before[w] for w in sent_before),
        "task_seconds": sum(durations), "longest_task": max(durations, default=0.0),
    }


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    times = os.times()
    return times.user + times.system


def bytes_sent(dask_worker) -> int:
    """Bytes this Dask worker has sent so far, to the client and to other workers (Dask's count)."""
    return int(dask_worker.transfer_outgoing_bytes_total)


def run_child(arch: str, workers: int | None) -> dict:
    command = [sys.executable, __file__, "--child", arch, "--workers", str(workers or 0)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--repeats", type=int, default=1, help="Runs of each mode, interleaved; medians shown.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write the table as Markdown to FILE.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.workers or None)))
        return
    header = ("| net | mode | regions | seconds | vs serial | tasks | bytes / region: client, workers sent | "
              "client peak RSS | CPU s client + workers | CPU vs serial | task s: sum, longest | load (1 min) | "
              "same complex |")
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    print(f"cpus: {os.cpu_count()}, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print("\n".join(lines), flush=True)
    for arch in args.nets.split(","):
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):
            for mode, workers in MODES.items():
                runs[mode].append(run_child(arch, workers))
        results = {mode: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for mode, rs in runs.items()}
        serial = results["serial"]
        for mode, r in results.items():
            per_region = r["bytes_shipped"] / max(1, r["regions"])
            sent = r["workers_sent"] / max(1, r["regions"])
            cpu = r["client_cpu"] + r["workers_cpu"]
            row = (f"| {arch} | {mode} | {r['regions']:,d} | {r['seconds']:.2f} | "
                   f"{serial['seconds'] / r['seconds']:.2f}× | {r['tasks']} | {per_region:,.0f}, {sent:,.0f} | "
                   f"{r['peak_rss_bytes'] / 2**30:.2f} GiB | {r['client_cpu']:.1f} + {r['workers_cpu']:.1f} | "
                   f"{cpu / serial['client_cpu']:.2f}× | {r['task_seconds']:.1f}, {r['longest_task']:.2f} | "
                   f"{r['load_before']:.1f} → {r['load_after']:.1f} | "
                   f"{'yes' if all(x['sha256'] == serial['sha256'] for x in runs[mode]) else 'NO'} |")
            lines.append(row)
            print(row, flush=True)
    if args.markdown is not None:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
