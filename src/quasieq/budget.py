"""Resource budgets of long work: memory per evaluation chunk, and a wall-clock time limit.

Memory. Evaluating a constructed net on N points holds, per layer, its input and output activations
(N × width floats) and, for ONNX Runtime's sparse layers (io/onnx_io.py: Gather → Mul → ReduceSum), the
gathered operands (N × padded non-zeros). A check never evaluates more rows at once than fit in
EVAL_BUDGET_BYTES, so checking a form of any size needs that budget plus the form itself, whatever N.

Time. ``with time_limit(seconds):`` sets a deadline that long loops test between chunks with
``check_time(stage)`` (region enumeration, Monte-Carlo and exact comparison, experiment runs); past it
they raise :class:`TimeLimitReached`, which the CLI reports as one line and exit code 3
(``EXIT_TIME_LIMIT``). Numba kernels and one construction step run to their end, so the limit is
honoured to within one chunk's time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError

#: Bytes of intermediate activations one evaluation chunk may hold: 256 MiB. With the form itself and
#: ONNX Runtime's copy of its weights this keeps the check stage of a 3-304695-152346-1 form near 1 GB.
EVAL_BUDGET_BYTES = 2**28
#: At most this many points per chunk (larger chunks stop paying off: the per-call cost is amortised).
MAX_CHUNK_ROWS = 8192


def forward_bytes_per_row(net) -> int:
    """Bytes one point costs in ``ReluNet.forward`` at its costliest layer, all float64: the input and
    two outputs (the product and the product plus bias) and, for a sparse layer, the contiguous copy
    of the transposed input scipy multiplies ((W @ Zᵀ)ᵀ)."""
    widest = max(2 * int(W.shape[0]) + int(W.shape[1]) * (2 if sp.issparse(W) else 1) for W in net.weights)
    return 8 * widest


def onnx_bytes_per_row(net, itemsize: int = 4) -> int:
    """Bytes one point costs in ONNX Runtime on the export of ``net``: per layer the gathered operands
    and their products (2 × padded non-zeros, rows padded to a power of two) beside its input and
    output; the largest layer counts."""
    worst = 0
    for W in net.weights:
        if sp.issparse(W):
            counts = np.diff(sp.csr_matrix(W).indptr)
            padded = int((1 << np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)).sum())
        else:
            padded = 0
        worst = max(worst, 2 * padded + int(W.shape[0]) + int(W.shape[1]))
    return itemsize * worst


def rows_per_chunk(bytes_per_row: int, budget: int = EVAL_BUDGET_BYTES) -> int:
    """Points per chunk: as many as fit in ``budget`` at ``bytes_per_row``, between 1 and MAX_CHUNK_ROWS."""
    return int(max(1, min(MAX_CHUNK_ROWS, budget // max(1, int(bytes_per_row)))))


class TimeLimitReached(QuasieqError):
    """The wall-clock limit set by :func:`time_limit` passed; the message names the stage."""


_deadline: list[tuple[float, float]] = []  # (deadline, seconds) of the innermost time_limit


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Within the block, :func:`check_time` raises once ``seconds`` of wall-clock time have passed
    (None: no limit)."""
    if seconds is None:
        yield
        return
    if not (np.isfinite(seconds) and seconds > 0):
        raise QuasieqError(f"--time-limit {seconds:g}: the time limit must be a positive number of seconds")
    _deadline.append((time.monotonic() + float(seconds), float(seconds)))
    try:
        yield
    finally:
        _deadline.pop()


def check_time(stage: str) -> None:
    """Raise :class:`TimeLimitReached` when the innermost time limit has passed."""
    if _deadline and time.monotonic() > _deadline[-1][0]:
        raise TimeLimitReached(
            f"time limit of {_deadline[-1][1]:g} s reached while {stage}; raise --time-limit or shrink the work "
            "(a smaller box, fewer samples)"
        )


@contextmanager
def memory_stage(stage: str, advice: str) -> Iterator[None]:
    """Turn a MemoryError inside the block into one line naming the stage and what bounds it, e.g.
    ``memory_stage("enumerating regions", "bound it with --max-regions N or shrink the box")``."""
    try:
        yield
    except MemoryError:
        raise QuasieqError(f"out of memory while {stage}; {advice}") from None
