"""Executors: submit tasks, get their results back as they finish.

Both executors have the same face, so one scheduling loop drives a Dask cluster and the single
process alike:

* ``share(obj)`` ships a read-only object (the net) to every worker once (Dask: the result of a task
  that returns it, fetched once by each worker that needs it, rebuilt if its worker dies) and returns
  the handle to pass to tasks;
* ``keep(fn, *args)`` runs ``fn(*args)`` where the work runs and keeps the result there, returning a
  handle that later tasks take as an argument (Dask: a future, whose value moves only to the workers
  whose tasks read it; in this process: the value itself, computed at once);
* ``submit(fn, *args, ahead=False)`` queues ``fn(*args)`` (arguments may be handles; ``ahead``: before
  the tasks queued without it, for small tasks whose result decides what is handed out next);
* ``results()`` yields each finished task's result once, in completion order; tasks may be submitted
  while iterating. A task that raises re-raises here.

Dask reruns the tasks of a worker that dies on another worker (the scheduler's lineage); a task
that keeps killing workers ends in ``distributed.KilledWorker``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from distributed import Client, Future


class Executor(Protocol):
    """What a scheduling loop needs from where the work runs."""

    @property
    def workers(self) -> int: ...

    def share(self, obj: Any) -> Any: ...

    def keep(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def submit(self, fn: Callable[..., Any], *args: Any, ahead: bool = False) -> None: ...

    def results(self) -> Iterator[Any]: ...


class InlineExecutor:
    """Runs each task in this process when its result is asked for (first in, first out; ``ahead``
    tasks first); ``keep`` runs at once."""

    workers = 1

    def __init__(self) -> None:
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()

    def share(self, obj: Any) -> Any:
        return obj

    def keep(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def submit(self, fn: Callable[..., Any], *args: Any, ahead: bool = False) -> None:
        if ahead:
            self._queue.appendleft((fn, args))
        else:
            self._queue.append((fn, args))

    def results(self) -> Iterator[Any]:
        while self._queue:
            fn, args = self._queue.popleft()
            yield fn(*args)


class DaskExecutor:
    """Tasks on a Dask cluster through ``client``; results streamed back with ``as_completed``.

    Each result is released on the cluster as soon as it has been read, so the workers hold only the
    results not yet collected."""

    def __init__(self, client: Client) -> None:
        # distributed takes ~0.5 s to import: only runs that use a cluster pay for it
        from distributed import as_completed

        self.client = client
        self._done = as_completed()
        self._in_flight: set[Future] = set()

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info()["workers"]))

    def share(self, obj: Any) -> Any:
        # a task that returns obj, not scattered data: Dask's active memory manager keeps one replica of
        # a key, and scattered data lost with its worker cannot be rebuilt (its dependents are
        # cancelled); a task's result is recomputed from the graph. Each worker fetches it once.
        return self.client.submit(_same, obj, pure=False)

    def keep(self, fn: Callable[..., Any], *args: Any) -> Any:
        # ahead of the tasks already queued: what is kept feeds the tasks handed out next
        return self.client.submit(fn, *args, pure=False, priority=1)

    def submit(self, fn: Callable[..., Any], *args: Any, ahead: bool = False) -> None:
        future = self.client.submit(fn, *args, pure=False, priority=int(ahead))
        self._in_flight.add(future)
        self._done.add(future)

    def results(self) -> Iterator[Any]:
        try:
            for future in self._done:
                result = future.result()
                self._in_flight.discard(future)
                future.release()
                yield result
        finally:  # stopped early (an error, Ctrl-C, enough found): drop the work still queued
            if self._in_flight:
                self.client.cancel(list(self._in_flight))
                self._in_flight.clear()


def _same(obj: Any) -> Any:
    """``obj`` itself (the task behind :meth:`DaskExecutor.share`)."""
    return obj


def executor_for(client: Client | None) -> Executor:
    """A DaskExecutor on ``client``, or the InlineExecutor when there is none."""
    return InlineExecutor() if client is None else DaskExecutor(client)
