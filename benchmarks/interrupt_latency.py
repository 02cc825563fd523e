"""Time from Ctrl-C (SIGINT) or SIGTERM to exit for ``quasieq regions`` on nets of growing size.

A signal is handled between Python bytecodes, so it waits for the numba kernel running when it
arrives; this script measures how long that is in practice. For each net it starts
``python -m quasieq regions NET --box -1 1``, waits ``--after`` seconds (past start-up, inside the
enumeration), sends the signal and records the seconds until the process exits, its exit code and its
one stderr line. Nets are seeded random (weights N(0, 1/fan-in)); the process is killed after
``--timeout`` seconds (then the latency is reported as "> timeout").

    python benchmarks/interrupt_latency.py --after 8 --arch 2-256-256-1 3-48-48-1 4-32-32-32-1
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import quasieq as qe

SRC = Path(__file__).resolve().parents[1] / "src"


def seeded_net(arch: list[int], seed: int = 0) -> qe.ReluNet:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(arch[:-1], arch[1:], strict=False)]
    return qe.ReluNet(weights, [rng.normal(size=o) * 0.1 for o in arch[1:]])


def latency(model: Path, signum: int, after: float, timeout: float) -> tuple[str, int | None, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "quasieq", "regions", str(model), "--box", "-1", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(after)
    if proc.poll() is not None:
        return "finished first", proc.returncode, ""
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"> {timeout:.0f} s", None, ""
    return f"{time.monotonic() - sent:.2f} s", proc.returncode, err.strip().replace("\n", " | ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["2-256-256-1", "3-48-48-1", "4-32-32-32-1"])
    parser.add_argument("--after", type=float, default=8.0, help="seconds between start and the signal")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    print(f"{'net':>16} {'signal':>7} {'latency':>12} {'exit':>5}  stderr")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            model = Path(tmp) / f"{arch}.npz"
            qe.save(seeded_net([int(n) for n in arch.split("-")]), model)
            for signum in (signal.SIGINT, signal.SIGTERM):
                took, code, err = latency(model, signum, args.after, args.timeout)
                print(f"{arch:>16} {signal.Signals(signum).name:>7} {took:>12} {code!s:>5}  {err}", flush=True)


if __name__ == "__main__":
    main()
