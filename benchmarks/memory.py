"""Peak memory of ``quasieq wide`` stage by stage, beside the size of the construction it builds.

For each seeded net (benchmarks/nets.py) a fresh child process runs the stages of ``quasieq wide``
(regions → compact wide form → float64 check → float32 ONNX check in ONNX Runtime) while a thread
samples the process's resident set size (VmRSS, every 20 ms); each stage reports the largest RSS seen
while it ran. The check stages evaluate the form in chunks sized from quasieq.budget.EVAL_BUDGET_BYTES,
so their peak must stay under CHECK_BUDGET_BYTES (2 GiB) whatever the size of the form: the script
says so per net and exits 1 if not.

    python benchmarks/memory.py                          # 3-32-32-1 and 3-48-48-1, 2,000 samples
    python benchmarks/memory.py --archs 3-16-16-1 --samples 500
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The fixed budget the check stage must stay under, whatever the size of the form.
CHECK_BUDGET_BYTES = 2 * 2**30
DEFAULT_ARCHS = ("3-32-32-1", "3-48-48-1")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakRss:
    """``with PeakRss() as peak: ...`` then ``peak.bytes``: the largest RSS sampled during the block."""

    def __enter__(self) -> PeakRss:
        self.bytes = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.bytes = max(self.bytes, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.bytes = max(self.bytes, rss_bytes())


def child(arch: str, samples: int) -> dict:
    """Run the stages in this process and return their peaks, times and sizes."""
    from benchmarks.nets import seeded_relu_net

    import quasieq as qe
    from quasieq.construct.sizes import estimate
    from quasieq.geometry import triangulate
    from quasieq.verify import float32_report

    net = seeded_relu_net(arch)
    box = qe.Box.cube(net.in_dim, -1.0, 1.0)
    qe.regions(seeded_relu_net(f"{net.in_dim}-4-1"), box)  # compile the kernels outside the measurement
    stages: dict[str, dict] = {}

    def stage(name: str, work):
        start = time.perf_counter()
        with PeakRss() as peak:
            result = work()
        stages[name] = {"peak_rss_bytes": peak.bytes, "seconds": time.perf_counter() - start}
        return result

    cx = stage("regions", lambda: qe.regions(net, box))
    M = triangulate(cx.unit, merge=True).M
    built = stage("build", lambda: qe.to_wide(net, box, 1e-3, cx=cx))
    report = stage("check float64", lambda: qe.compare(net, built, box, samples=samples, seed=0))
    stage("check float32 (ONNX Runtime)",
          lambda: float32_report(net, built, box, samples=samples, tol=report.tolerance, seed=0))
    size = estimate("wide", "compact", M, net.in_dim, net.out_dim)
    return {
        "arch": arch,
        "regions": len(cx),
        "simplices": M,
        "form": "-".join(str(n) for n in (built.in_dim, *built.widths, built.out_dim)),
        "neurons": built.neurons,
        "parameters": built.parameters,
        "estimated_bytes": size.bytes,
        "samples": samples,
        "stages": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.samples)))
        return

    within = True
    print(f"check-stage budget: {CHECK_BUDGET_BYTES / 2**30:.0f} GiB; samples per check: {args.samples:,d}")
    for arch in args.archs:
        out = subprocess.run([sys.executable, __file__, "--child", arch, "--samples", str(args.samples)],
                             capture_output=True, text=True, check=True)
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\n{arch}: {doc['regions']:,d} regions, M = {doc['simplices']:,d} simplices → form {doc['form']}, "
              f"{doc['neurons']:,d} neurons, {doc['parameters']:,d} parameters, "
              f"~{doc['estimated_bytes'] / 2**20:,.0f} MiB")
        print(f"  {'stage':<30} {'peak RSS MiB':>12} {'seconds':>9}")
        for name, s in doc["stages"].items():
            print(f"  {name:<30} {s['peak_rss_bytes'] / 2**20:>12,.0f} {s['seconds']:>9.1f}")
        check_peak = max(s["peak_rss_bytes"] for name, s in doc["stages"].items() if name.startswith("check"))
        ok = check_peak <= CHECK_BUDGET_BYTES
        within &= ok
        print(f"  check stage peak {check_peak / 2**20:,.0f} MiB {'≤' if ok else '>'} budget "
              f"{CHECK_BUDGET_BYTES / 2**20:,.0f} MiB: {'within' if ok else 'OVER'}")
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()
