"""Theorem 9 (D = 1): exact wide and deep equivalents of a univariate ReLU net (paper_notes §2.2).

On [lo, hi] the net is continuous piecewise linear with breakpoints lo < t_1 < … < t_T < hi, slopes
s_0, …, s_T (K-vectors, one per output) and slope jumps c_k = s_k − s_{k−1}. Exactly on [lo, hi]:

    f(x) = f(lo) + s_0·σ(x − lo) + Σ_{k=1}^T c_k·σ(x − t_k).                             (*)

The breakpoints are exact: they are the region boundaries of the 1-D RegionComplex (each region is an
interval, its two vertices are its ends), after merging neighbours with equal affine maps
(tolerances.AFFINE_EQUAL) so that no breakpoint carries a zero jump.

* Wide form: one hidden layer [σ(x − lo), σ(x − t_1), …, σ(x − t_T)], output weights
  (s_0, c_1, …, c_T), output bias f(lo). Width T + 1, 1 hidden layer, depth 2.
* Deep form (strictly feedforward chain, the paper's width-1 chain with shortcuts made feedforward by
  carrying non-negative accumulators through the ReLUs): with Δ_k = t_k − t_{k−1}, t_0 = lo,

      z_0 = σ(x − lo),   z_k = σ(z_{k−1} − Δ_k) = σ(x − t_k)   (the t_k increase),

  and, writing c_0 = s_0 and n_k = max(0, −min_i c_{k,i}) (one shared negative part for all K outputs),

      P_i ← σ(P_i + (c_{k−1,i} + n_{k−1}) z_{k−1}),   N ← σ(N + n_{k−1} z_{k−1}),

  both non-negative, so the ReLUs pass them exactly; output f(lo) + P − N + c_T z_T.
  Layer 1 is [z_0]; layers 2..T+1 are [z_k, P (K), N]: width K + 2 (3 for one output, the paper's
  width-3 chain; for K = 1 the update is exactly P += c⁺z, N += c⁻z), T + 1 hidden layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quasieq import tolerances
from quasieq.construct.job import Job, provenance
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.complex import RegionComplex


@dataclass(frozen=True)
class Breakpoints:
    """The piecewise-linear data of a univariate net on [lo, hi].

    t : (T,) increasing breakpoints strictly inside (lo, hi).
    slopes : (T+1, K) slope of each piece, s_0 … s_T.
    f_lo : (K,) value at lo.
    lo, hi : the interval.
    """

    t: np.ndarray
    slopes: np.ndarray
    f_lo: np.ndarray
    lo: float
    hi: float

    @property
    def jumps(self) -> np.ndarray:
        """(T+1, K): c_0 = s_0, c_k = s_k − s_{k−1}."""
        return np.diff(self.slopes, axis=0, prepend=0.0)


def breakpoints(cx: RegionComplex) -> Breakpoints:
    """Exact breakpoints of a 1-D complex: sort the intervals, merge equal-map neighbours.

    The intervals must tile [lo, hi] (a gap means a dropped cell, which cannot happen in 1-D).
    """
    if cx.dim != 1:
        raise QuasieqError(f"univariate construction needs a 1-D input, the complex has dimension {cx.dim}")
    if len(cx) == 0:
        raise QuasieqError("the region complex is empty: nothing to rebuild")
    ends = np.array([[r.vertices.min(), r.vertices.max()] for r in cx])
    order = np.argsort(ends[:, 0])
    ends, A, b = ends[order], cx.A[order][:, :, 0], cx.b[order]
    s = cx.box.scale
    lo, hi = float(cx.box.lo[0]), float(cx.box.hi[0])
    gaps = np.abs(ends[1:, 0] - ends[:-1, 1])
    slack = tolerances.ON_HYPERPLANE * s
    if abs(ends[0, 0] - lo) > slack or abs(ends[-1, 1] - hi) > slack or np.any(gaps > slack):
        raise QuasieqError("the 1-D regions do not tile the interval: the region complex is incomplete")
    scale_A = np.abs(A).max(axis=1) * s + np.abs(b).max(axis=1)
    diff = np.abs(A[1:] - A[:-1]).max(axis=1) * s + np.abs(b[1:] - b[:-1]).max(axis=1)
    new_piece = diff > tolerances.AFFINE_EQUAL * (1.0 + scale_A[:-1])
    starts = np.concatenate([[0], np.flatnonzero(new_piece) + 1])
    return Breakpoints(
        t=ends[starts[1:], 0].copy(),
        slopes=A[starts].copy(),
        f_lo=A[0] * lo + b[0],
        lo=lo,
        hi=hi,
    )


def univariate_wide(bp: Breakpoints) -> ReluNet:
    """One hidden layer on the exact breakpoints, equation (*): width T + 1, depth 2."""
    knots = np.concatenate([[bp.lo], bp.t])
    W1 = np.ones((len(knots), 1))
    return ReluNet([W1, bp.jumps.T], [-knots, bp.f_lo])


def univariate_deep(bp: Breakpoints) -> ReluNet:
    """Feedforward chain of width K + 2 and T + 1 hidden layers (module docstring)."""
    c = bp.jumps  # (T+1, K)
    K = c.shape[1]
    T = len(bp.t)
    n = np.maximum(0.0, -c.min(axis=1))  # shared negative part per knot
    delta = np.diff(np.concatenate([[bp.lo], bp.t]))
    weights, biases = [np.ones((1, 1))], [np.array([-bp.lo])]
    for k in range(1, T + 1):
        # previous layer: [z_{k-1}] (k = 1) or [z_{k-1}, P, N]
        W = np.zeros((K + 2, 1 if k == 1 else K + 2))
        W[0, 0] = 1.0
        W[1 : K + 1, 0] = c[k - 1] + n[k - 1]
        W[K + 1, 0] = n[k - 1]
        if k > 1:
            W[1:, 1:] += np.eye(K + 1)
        weights.append(W)
        biases.append(np.concatenate([[-delta[k - 1]], np.zeros(K + 1)]))
    out_W = c[0][:, None] if T == 0 else np.hstack([c[T][:, None], np.eye(K), -np.ones((K, 1))])
    weights.append(out_W)
    biases.append(bp.f_lo)
    return ReluNet(weights, biases)


def build(form: str, job: Job) -> ReluNet:
    """The Theorem 9 ``form`` of a 1-D net (every method but the classifiers' builds this in 1-D), with
    its provenance: error bound 0, exact. Table 1 is read with D = 1 and M = pieces (a 1-simplex is an
    interval)."""
    cx = job.regions()
    bp = breakpoints(cx)
    pieces = len(bp.t) + 1
    job.too_many(pieces, "linear pieces")
    net = univariate_wide(bp) if form == "wide" else univariate_deep(bp)
    return net.with_provenance(provenance(
        "exact", cx.box, task=job.task, delta=job.delta, error_bound=0.0, max_abs_weight=net.max_abs_weight(),
        simplices=pieces, table1=(2 * pieces, 2) if form == "wide" else (2, 2 * pieces),
        breakpoints=tuple(bp.t.tolist()), details={"theorem": 9},
    ))
