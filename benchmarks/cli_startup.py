"""Benchmark: how long the command line takes end to end on a small ONNX file, beside the import baseline.

Times, in fresh processes, best of ``--repeats`` (wall clock, and the child's user + system CPU seconds,
which a loaded machine distorts less):

* the baseline ``python -c "import numpy, scipy.sparse, onnx"`` (what reading an ONNX file needs at least);
* ``quasieq info m.onnx`` and ``quasieq regions m.onnx --box -1 1`` on a seeded 2-16-16-1 net written to
  ONNX (float32), the numba kernels loaded from their cache and the package's bytecode compiled (as
  ``make`` and a regular pip install leave it: with PYTHONDONTWRITEBYTECODE set, Python would otherwise
  compile every module from source on every start);
* with ``--cold``, one ``quasieq regions`` run on an empty numba cache (``NUMBA_CACHE_DIR`` set to a new
  folder): what the first run after an install or a change of the kernels' source costs (compiling).

The goal (issue 12) is each command within 4× of the baseline. The load average is printed beside the
figures: on a shared machine wall times follow the load.

    python benchmarks/cli_startup.py [--repeats 5] [--cold]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_RATIO = 4.0


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``cmd``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best_of(cmd: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    runs = [timed(cmd, env) for _ in range(repeats)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs per command (best is reported)")
    ap.add_argument("--cold", action="store_true", help="also time one regions run on an empty numba cache")
    args = ap.parse_args()

    from benchmarks.nets import seeded_relu_net

    import quasieq as qe

    compileall.compile_dir(str(ROOT / "src"), quiet=1)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        model = str(Path(tmp) / "m.onnx")
        qe.save(seeded_relu_net("2-16-16-1"), model)
        cli = [sys.executable, "-m", "quasieq"]
        commands = {
            'python -c "import numpy, scipy.sparse, onnx"': [sys.executable, "-c", "import numpy, scipy.sparse, onnx"],
            "quasieq info m.onnx": [*cli, "info", model],
            "quasieq regions m.onnx --box -1 1": [*cli, "regions", model, "--box", "-1", "1"],
        }
        timed(commands["quasieq regions m.onnx --box -1 1"], env)  # fills the kernel cache if it is empty
        load_start = os.getloadavg()
        results = {name: best_of(cmd, env, args.repeats) for name, cmd in commands.items()}
        cold = None
        if args.cold:
            empty_cache = {**env, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cache")}
            cold = timed(commands["quasieq regions m.onnx --box -1 1"], empty_cache)
        load_end = os.getloadavg()

    base_wall, base_cpu = results['python -c "import numpy, scipy.sparse, onnx"']
    print(f"load average at the start {load_start[0]:.1f} {load_start[1]:.1f} {load_start[2]:.1f}, "
          f"at the end {load_end[0]:.1f} {load_end[1]:.1f} {load_end[2]:.1f}; best of {args.repeats}")
    print(f"{'command':<45} {'wall s':>7} {'CPU s':>7} {'× baseline (wall, CPU)':>24}  goal ≤ {GOAL_RATIO:g}×")
    for name, (wall, cpu) in results.items():
        ratios = f"{wall / base_wall:.2f}×, {cpu / base_cpu:.2f}×"
        verdict = "" if name.startswith("python") else ("met" if wall <= GOAL_RATIO * base_wall else "not met")
        print(f"{name:<45} {wall:>7.2f} {cpu:>7.2f} {ratios:>24}  {verdict}")
    if cold is not None:
        print(f"{'quasieq regions, empty numba cache (compiles)':<45} {cold[0]:>7.2f} {cold[1]:>7.2f}")


if __name__ == "__main__":
    main()
