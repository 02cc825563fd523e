"""Where the cluster comes from: a local cluster of worker processes, or a running scheduler.

``cluster_client(workers=N)`` starts a ``distributed.LocalCluster`` of N worker processes (one thread
each, so N tasks run at once) on 127.0.0.1 and closes it on exit; ``cluster_client(scheduler=ADDR)``
connects to a cluster started by ``dask scheduler`` and ``dask worker ADDR``. The dashboard (Dask's
web page of tasks, workers and memory) needs the ``bokeh`` package; without it Dask runs with the
dashboard off.

The local workers keep glibc's own malloc tuning: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_`` in each
worker's environment (to hand freed memory back to the system at once), which also fixes glibc's mmap
threshold at 128 KiB, so every numpy temporary above it is a fresh ``mmap`` whose pages fault in again.
The region kernels make many such temporaries: measured on 2-512-512-1, a worker spent 5.1 s of system
time against the single process's 0.8 s for the same regions (1.6 s without the variable).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dask

from distributed import Client, LocalCluster
from quasieq.errors import QuasieqError

#: Seconds to wait for a scheduler to answer and for a worker to join it.
CONNECT_TIMEOUT_S = 30

#: Dask's periodic housekeeping on a local cluster, less often than its defaults. Measured on an idle
#: 2-worker cluster over 10 s: the client process (which also runs the scheduler) used 0.63 CPU s and
#: each worker 0.43 s with the defaults, 0.11-0.15 s and 0.04-0.06 s with these (three runs, ``os.times``
#: in steps of 0.01 s), CPU the enumeration gets instead.
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,  # the workers' stack sampling every 10 ms (dashboard's profile page)
    "distributed.admin.tick.interval": "1s",  # the check that the event loop is not blocked (20 ms)
    "distributed.admin.system-monitor.interval": "2s",  # CPU and memory samples for the dashboard (500 ms)
    "distributed.scheduler.work-stealing-interval": "500ms",  # rebalancing queued tasks (100 ms; tasks take seconds)
    "distributed.worker.memory.monitor-interval": "1s",  # a worker's memory check against its limit (100 ms)
}


def dashboard_note(client: Client) -> str:
    """The dashboard's address, or why there is none."""
    if importlib.util.find_spec("bokeh") is None:
        return "dashboard off (install bokeh to get it)"
    link = client.dashboard_link
    return f"dashboard {link}" if link else "dashboard off"


@contextmanager
def cluster_client(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    echo: Callable[[str], None] | None = None,
) -> Iterator[Client | None]:
    """A Dask client on a new local cluster (``workers``) or on ``scheduler``; None when neither.

    ``echo`` receives one line saying where the cluster is (and its dashboard)."""
    if workers is not None and scheduler is not None:
        raise QuasieqError("--workers and --scheduler exclude each other: start a local cluster or connect to one")
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None:
        if int(workers) < 1:
            raise QuasieqError(f"--workers must be ≥ 1, got {workers}")
        # every server on the loopback interface, on ports the system picks (the scheduler's HTTP
        # server serves the dashboard; the workers serve none, so they start without importing bokeh);
        # the workers' malloc as in the module docstring, the housekeeping as in QUIET_CLUSTER
        environ = {name: value for name, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()
                   if name != "MALLOC_TRIM_THRESHOLD_"}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ, **QUIET_CLUSTER}), LocalCluster(
            n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
        ) as cluster, Client(cluster) as client:
            if echo is not None:
                processes = counted(int(workers), "worker process", "worker processes")
                echo(f"local Dask cluster: {processes}, scheduler {cluster.scheduler_address}, "
                     f"{dashboard_note(client)}")
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise QuasieqError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise QuasieqError(f"--scheduler {scheduler}: no worker joined within {CONNECT_TIMEOUT_S} s") from None
        if echo is not None:
            n = len(client.scheduler_info()["workers"])
            echo(f"Dask cluster at {scheduler}: {counted(n, 'worker', 'workers')}, {dashboard_note(client)}")
        yield client


def counted(n: int, one: str, many: str) -> str:
    """``n`` and the noun in the right number: "1 worker", "2 workers"."""
    return f"{n} {one if n == 1 else many}"
