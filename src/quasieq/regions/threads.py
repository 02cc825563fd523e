"""One enumeration's work cut into parts run on the process's worker threads.

The region kernels release the GIL (``njit(nogil=True)``) and so do numpy's copies between arrays of
plain dtypes, so the parts of one computation run on several cores at once. Each caller cuts its
work so that a part computes, for its rows, exactly what the whole would compute for them (a
region's children depend on the region alone, a copied row is the row), and puts the parts' results
back in order: the result is bitwise the same for any number of threads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from quasieq.regions.memory import trim_before

#: Parts per thread (parts differ in cost, so a few parts each even out the threads' work).
PARTS_PER_THREAD = 2

Part = TypeVar("Part")


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``threads`` worker threads (started on first use, kept for later calls)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="quasieq-regions")


def in_threads(fn: Callable[[tuple[int, int]], Part], parts: Sequence[tuple[int, int]], threads: int) -> list[Part]:
    """``[fn(p) for p in parts]``, on ``threads`` threads when there are several parts."""
    if len(parts) == 1:
        return [fn(parts[0])]
    return list(_pool(threads).map(fn, parts))


def even_parts(n: int, threads: int, min_items: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting n items of equal cost into PARTS_PER_THREAD · threads
    consecutive parts of sizes differing by at most one; one part with one thread or fewer than
    ``min_items`` items."""
    if threads <= 1 or n < max(min_items, 2):
        return [(0, n)]
    bounds = (n * np.arange(min(n, PARTS_PER_THREAD * threads) + 1)) // min(n, PARTS_PER_THREAD * threads)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def weighted_parts(indptr: np.ndarray, threads: int, min_weight: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting the n = ``len(indptr) - 1`` items of a CSR row pointer (item i
    weighs ``indptr[i + 1] - indptr[i]``: its rows, its bytes) into PARTS_PER_THREAD · threads
    consecutive nonempty parts of about equal weight (each within one item of an equal share); one
    part with one thread, fewer than two items, or less than ``min_weight`` in all."""
    n = indptr.shape[0] - 1
    total = indptr[-1] - indptr[0]
    if threads <= 1 or total < min_weight or n < 2:
        return [(0, n)]
    wanted = min(n, PARTS_PER_THREAD * threads)
    cuts = np.searchsorted(indptr, indptr[0] + total * np.arange(1, wanted) / wanted)
    bounds = np.unique(np.concatenate(([0], np.clip(cuts, 1, n - 1), [n])))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


#: Bytes below which arrays are concatenated on the calling thread (a hand-over to the pool costs
#: about as much as copying a few hundred KiB).
COPY_PARTS_MIN_BYTES = 1 << 22


def concatenate_in_threads(columns: Sequence[Sequence[np.ndarray]], threads: int) -> list[np.ndarray]:
    """``[np.concatenate(column) for column in columns]``, the pieces copied into the results on
    ``threads`` threads, each thread a run of consecutive pieces of every column (balanced by bytes):
    the same arrays, each row copied once. Every column has one piece per part (the same number). A large
    result is preceded by handing the process's freed memory back (:func:`memory.trim_before`)."""
    pieces = len(columns[0])
    outputs, starts = [], []
    for column in columns:
        rows = np.concatenate(([0], np.cumsum([a.shape[0] for a in column])))
        outputs.append(np.empty((int(rows[-1]), *column[0].shape[1:]), dtype=np.result_type(*column)))
        starts.append(rows)
    weights = np.concatenate(([0], np.cumsum([sum(column[i].nbytes for column in columns) for i in range(pieces)])))
    trim_before(int(weights[-1]))  # before the outputs' pages are touched (regions/memory.py)

    def copy_pieces(bounds: tuple[int, int]) -> None:
        for column, out, rows in zip(columns, outputs, starts, strict=True):
            for i in range(*bounds):
                out[rows[i]:rows[i + 1]] = column[i]

    in_threads(copy_pieces, weighted_parts(weights, threads, COPY_PARTS_MIN_BYTES), threads)
    return outputs
