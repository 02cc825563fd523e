"""Monte-Carlo equivalence check of two networks on a box, with a confidence interval on the measure.

For N uniform samples x_n in the box, let e_n = max_k |a_k(x_n) − b_k(x_n)| and X = #{n : e_n > tol}.
X is Binomial(N, p) with p = m({|a − b| > tol}) / vol(box), so

    disagreement_measure = (X / N)·vol(box),
    ci95 = vol(box)·[B(0.025; X, N − X + 1), B(0.975; X + 1, N − X)]      (Clopper–Pearson, exact)

with B(q; α, β) the q-quantile of the Beta(α, β) law (lower limit 0 when X = 0, upper 1 when X = N).
The default tolerance is DISAGREE_RELATIVE·max(1, output range of a on the samples) (tolerances.py
gives the reason). A NaN or inf output counts as a disagreement of infinite size.

The sample is drawn in chunks, each from its own stream (``SeedSequence(seed).spawn``), so the chunks
are independent tasks: on a Dask cluster (``client=``) they run on the workers and the report is the
same as in one process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from quasieq import tolerances
from quasieq.box import Box
from quasieq.budget import check_time, forward_bytes_per_row, onnx_bytes_per_row, rows_per_chunk
from quasieq.cluster import executor_for
from quasieq.errors import QuasieqError
from quasieq.interrupts import scratch
from quasieq.io import save
from quasieq.net import ReluNet, class_labels
from quasieq.verify.exact import exact_compare

if TYPE_CHECKING:  # distributed is imported only when a cluster is used (cluster/executor.py)
    from distributed import Client

SCHEMA_VERSION = 1

@dataclass(frozen=True)
class EquivalenceReport:
    """Result of :func:`compare` (the ``compare --json`` keys, README.md)."""

    method: str
    sup_error: float
    disagreement_measure: float
    disagreement_fraction: float
    ci95: tuple[float, float] | None
    samples: int
    tolerance: float
    witness: tuple[float, ...]
    label_disagreement_measure: float | None = None
    cells: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "method": self.method,
            "sup_error": self.sup_error,
            "disagreement_measure": self.disagreement_measure,
            "disagreement_fraction": self.disagreement_fraction,
            "ci95": list(self.ci95) if self.ci95 is not None else None,
            "samples": self.samples,
            "tolerance": self.tolerance,
            "label_disagreement_measure": self.label_disagreement_measure,
            "cells": self.cells,
            "witness": list(self.witness),
        }


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) confidence interval for a binomial proportion."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise QuasieqError(f"clopper_pearson: need 0 ≤ successes ≤ trials, trials > 0; got {successes}/{trials}")
    from scipy.stats import beta as beta_law  # heavy (scipy.stats, ~0.5 s): lazy, only when sampling

    tail = (1.0 - level) / 2.0
    lo = 0.0 if successes == 0 else float(beta_law.ppf(tail, successes, trials - successes + 1))
    hi = 1.0 if successes == trials else float(beta_law.ppf(1.0 - tail, successes + 1, trials - successes))
    return lo, hi


def _as_function(f: Any, dim: int, name: str) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(f, ReluNet):
        if f.in_dim != dim:
            raise QuasieqError(f"compare: {name} takes {f.in_dim} inputs but the box has dimension {dim}")
        return f.forward
    if not callable(f):
        raise QuasieqError(f"compare: {name} must be a ReluNet or a callable (N, D) -> (N, K), got {type(f).__name__}")
    return f


def _outputs(f: Callable[[np.ndarray], np.ndarray], X: np.ndarray, name: str) -> np.ndarray:
    Y = np.asarray(f(X), dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != len(X):
        raise QuasieqError(f"compare: {name} returned shape {Y.shape} for {len(X)} points; expected (N, K)")
    return Y


def chunk_size(*nets, rows: int | None = None) -> int:
    """Points per chunk: what the costliest ReluNet compared allows within budget.EVAL_BUDGET_BYTES
    (``rows``: a cap given by the caller for a callable, e.g. an ONNX Runtime session)."""
    per_row = max([forward_bytes_per_row(n) for n in nets if isinstance(n, ReluNet)], default=1)
    allowed = rows_per_chunk(per_row)
    return allowed if rows is None else min(allowed, int(rows))


# Long by its argument checks (each refused in one line before any sampling) and its two paths (exact
# or chunked Monte Carlo); the sampling itself is sample_chunks, the interval clopper_pearson.
def compare(
    a: Any,
    b: Any,
    box: Box,
    *,
    samples: int = 100_000,
    tol: float | None = None,
    seed: int = 0,
    exact: bool = False,
    task: str = "regression",
    client: Client | None = None,
    chunk_rows: int | None = None,
) -> EquivalenceReport:
    """Monte-Carlo measure of {x in box : max_k |a_k(x) − b_k(x)| > tol} with a 95% interval.

    ``a`` and ``b`` are ReluNets or callables (N, D) → (N, K) (an ONNX Runtime session wrapped in a
    function, a torch module behind numpy...). Evaluated in chunks of ``chunk_size(a, b, rows=chunk_rows)``
    points (a memory budget per chunk, budget.py; ``chunk_rows`` caps it for callables), the time limit
    (budget.time_limit) checked between chunks. With ``task="classification"`` the report also holds
    the measure where the labels differ. Chunk i draws its points from its own stream
    (``SeedSequence(seed).spawn``), so with a Dask ``client`` the chunks run on its workers and the
    report is the same as without.

    ``exact=True`` (two ReluNets, D ≤ 6) replaces sampling by the common refinement of both nets'
    regions (verify/exact.py): exact sup with a vertex witness, exact measures, ``method="exact"``,
    ``ci95=None``, ``samples=0`` and ``cells`` = the number of cells of the common refinement.

    Example
    -------
    >>> rep = qe.compare(net, qe.to_wide(net, box, 1e-3), box)          # doctest: +SKIP
    >>> rep.ci95[1] < 1e-2                                                 # doctest: +SKIP
    True
    """
    samples = int(samples)
    if samples < 1:
        raise QuasieqError(f"compare: samples must be ≥ 1, got {samples}")
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise QuasieqError(f"compare: tol must be a finite number ≥ 0, got {tol!r}")
    if task not in ("regression", "classification"):
        raise QuasieqError(f"compare: unknown task {task!r}: choose regression or classification")
    if exact:
        return exact_report(a, b, box, tol=tol, task=task, client=client)
    # tol, when not given, is DISAGREE_RELATIVE·max(1, range) ≥ DISAGREE_RELATIVE: no error at or
    # below that can ever count, so the chunks keep only the errors above it
    floor = tolerances.DISAGREE_RELATIVE if tol is None else float(tol)
    parts = sample_chunks(a, b, box, samples=samples, seed=seed, task=task, client=client,
                          chunk_rows=chunk_rows, floor=floor)
    errors = np.concatenate([p.errors for p in parts])
    best = max(parts, key=lambda p: p.best_error)  # the first chunk holding the largest error
    a_min = np.min([p.a_min for p in parts], axis=0)
    a_max = np.max([p.a_max for p in parts], axis=0)
    label_diff = sum(p.label_diff for p in parts)
    if tol is None:
        spread = a_max - a_min
        output_range = float(spread[np.isfinite(spread)].max(initial=0.0))
        tol = tolerances.DISAGREE_RELATIVE * max(1.0, output_range)
    count = int(np.count_nonzero(errors > tol))
    volume = box.volume
    lo, hi = clopper_pearson(count, samples)
    return EquivalenceReport(
        method="monte-carlo",
        sup_error=best.best_error,
        disagreement_measure=count / samples * volume,
        disagreement_fraction=count / samples,
        ci95=(lo * volume, hi * volume),
        samples=samples,
        tolerance=float(tol),
        witness=tuple(float(v) for v in best.best_point),
        label_disagreement_measure=label_diff / samples * volume if task == "classification" else None,
    )


class SampleChunk(NamedTuple):
    """What one chunk of the Monte-Carlo sample contributes (computed where the chunk runs)."""

    position: int  # index of the chunk in the sample
    errors: np.ndarray  # max_k |a_k(x) − b_k(x)| (inf where an output is not finite) at the points above `floor`
    best_error: float  # the largest error and its point (the first one on ties)
    best_point: np.ndarray
    a_min: np.ndarray  # per output of a, the least and largest finite value (±inf when none)
    a_max: np.ndarray
    label_diff: int  # points whose class labels differ (task="classification")


def sample_chunk(a: Any, b: Any, box: Box, index: int, stream: np.random.SeedSequence, n: int,
                 task: str, floor: float = 0.0) -> SampleChunk:
    """Chunk ``index`` of the sample: ``n`` uniform points drawn from its own seeded stream, both
    functions evaluated on them (one task on a cluster). Only the errors above ``floor`` are kept:
    :func:`compare` passes the least tolerance it can end up with, so memory and the bytes sent back
    grow with the disagreeing points, not with the sample."""
    X = box.sample(n, np.random.default_rng(stream))
    Ya, Yb = _outputs(_as_function(a, box.dim, "a"), X, "a"), _outputs(_as_function(b, box.dim, "b"), X, "b")
    if Ya.shape != Yb.shape:
        raise QuasieqError(f"compare: a gives {Ya.shape[1]} outputs but b gives {Yb.shape[1]}")
    e = np.abs(Ya - Yb).max(axis=1)
    e[~np.isfinite(e)] = np.inf
    i = int(np.argmax(e))
    finite = np.where(np.isfinite(Ya), Ya, np.nan)
    labels = int(np.count_nonzero(class_labels(Ya) != class_labels(Yb))) if task == "classification" else 0
    return SampleChunk(
        position=index, errors=e[e > floor], best_error=float(e[i]), best_point=X[i].copy(),
        a_min=np.nanmin(finite, axis=0, initial=np.inf), a_max=np.nanmax(finite, axis=0, initial=-np.inf),
        label_diff=labels,
    )


def sample_chunks(a: Any, b: Any, box: Box, *, samples: int, seed: int, task: str,
                  client: Client | None, chunk_rows: int | None = None, floor: float = 0.0) -> list[SampleChunk]:
    """The sample in chunks of ``chunk_size(a, b, rows=chunk_rows)`` points, chunk i drawn from the i-th child of
    ``SeedSequence(seed)`` (``spawn``): independent streams, so the chunks can run anywhere and the
    result does not depend on where or in what order. Chunks in sample order."""
    _as_function(a, box.dim, "a"), _as_function(b, box.dim, "b")  # refuse bad input before any work
    if client is not None and not (isinstance(a, ReluNet) and isinstance(b, ReluNet)):
        raise QuasieqError("compare(client=...): a and b must be ReluNets (functions cannot be shipped to workers)")
    chunk = chunk_size(a, b, rows=chunk_rows)
    starts = range(0, samples, chunk)
    streams = np.random.SeedSequence(seed).spawn(len(starts))
    executor = executor_for(client)
    shared_a, shared_b = executor.share(a), executor.share(b)
    for i, start in enumerate(starts):
        executor.submit(sample_chunk, shared_a, shared_b, box, i, streams[i], min(chunk, samples - start), task,
                        floor)
    parts = []
    for part in executor.results():  # the time limit checked as each chunk comes in
        check_time("comparing on sample points")
        parts.append(part)
    return sorted(parts, key=lambda part: part.position)


def exact_report(a: Any, b: Any, box: Box, *, tol: float | None = None, task: str = "regression",
                 **limits: Any) -> EquivalenceReport:
    """``compare(..., exact=True)``: the exact check's findings as an EquivalenceReport; ``limits``
    (max_regions, max_cells, progress, client) go to :func:`~quasieq.verify.exact.exact_compare`."""

    found = exact_compare(a, b, box, tol=tol, task=task, **limits)
    volume = box.volume
    return EquivalenceReport(
        method="exact",
        sup_error=found.sup_error,
        disagreement_measure=found.disagreement_measure,
        disagreement_fraction=found.disagreement_measure / volume,
        ci95=None,
        samples=0,
        tolerance=found.tolerance,
        witness=tuple(float(v) for v in found.witness),
        label_disagreement_measure=found.label_disagreement_measure,
        cells=found.cells,
    )


def onnx_function(path: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap an ONNX model (input ``input`` (N, D), output ``output`` (N, K)) as a numpy function run by
    ONNX Runtime on the CPU, feeding the model's own input precision."""
    import onnxruntime as ort  # heavy optional dependency: loaded on first use

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    dtype = np.float64 if feed.type == "tensor(double)" else np.float32

    def run(X: np.ndarray) -> np.ndarray:
        return session.run(None, {feed.name: np.ascontiguousarray(X, dtype=dtype)})[0].astype(np.float64)

    return run


def float32_report(net: Any, constructed: ReluNet, box: Box, **options: Any) -> EquivalenceReport:
    """Compare ``net`` with the float32 ONNX export of ``constructed`` run in ONNX Runtime.

    The export goes through ``quasieq.save(constructed, path, dtype="float32")`` to a temporary file;
    ``options`` are passed to :func:`compare` (samples, tol, seed, task). ONNX Runtime is fed chunks
    sized from the export's own layers (budget.onnx_bytes_per_row), so the check stays within the
    evaluation budget however large the form.
    """
    rows = rows_per_chunk(onnx_bytes_per_row(constructed, itemsize=4))
    with tempfile.TemporaryDirectory(prefix="quasieq-") as tmp, scratch(tmp):
        path = os.path.join(tmp, "constructed.onnx")
        save(constructed, path, dtype="float32")
        return compare(net, onnx_function(path), box, chunk_rows=rows, **options)
