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
        # the workers' malloc as in the module docstring
        environ = {name: value for name, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()
                   if name != "MALLOC_TRIM_THRESHOLD_"}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), LocalCluster(
            n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
        ) as cluster, Client(cluster) as client:
            if echo is not None:
                processes = "1 worker process" if int(workers) == 1 else f"{workers} worker processes"
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
            echo(f"Dask cluster at {scheduler}: {n} workers, {dashboard_note(client)}")
        yield client
