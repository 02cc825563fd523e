"""The paper's 1-D motivating example (JMLR §2.2, Fig. 2; paper_notes §2.1): wide and deep networks for
the indicator of a union of disjoint intervals [a_1, b_1] < … < [a_n, b_n].

Rule A_i ≡ [x ∈ [a_i, b_i]]. The De Morgan law A_1 ∨ … ∨ A_n = ¬(¬A_1 ∧ … ∧ ¬A_n) gives two networks,
built independently of each other:

* **Wide** (Fig. 2 right, right-hand side), block i (two layers, four neurons):

      L_i = σ((a_i − x)/δ),  R_i = σ((x − b_i)/δ),
      ¬A_i = 2 − [σ(1 − L_i) + σ(1 − R_i)],             output  n − Σ_i ¬A_i.

  The figure prints "2 − σ(…) + σ(…)", a sign typo (it would give 2 inside the interval). ¬A_i is 0 on
  [a_i, b_i], 1 off [a_i − δ, b_i + δ] and in (0, 1) on the two ramps of length δ beside it; for disjoint
  intervals at most one ¬A_i is 0 away from the ramps, so n − Σ ¬A_i = 1_{∪[a_i, b_i]} off the 2n ramps.
  Width 2n, 2 hidden layers.

* **Deep** (left-hand side, the union): the chain of ``construct.demorgan.rules_deep`` with the 1-D rules
  whose unit facet functions are x − a_i and b_i − x and κ = 1/δ, so that
  I_i = σ(1 − (σ(a_i − x) + σ(x − b_i))/δ) is 1 on [a_i, b_i], 0 off [a_i − δ, b_i + δ], and the chain
  outputs Σ_i I_i. The carried input is ω = σ(x − lo) with lo = a_1 − 2δ; for x < lo the chain sees lo,
  where every I_i is already 0, so the network is right on all of ℝ. Width 5, n + 1 hidden layers.

Both equal the indicator except on the 2n ramps [a_i − δ, a_i) and (b_i, b_i + δ]: measure ≤ 2nδ.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from quasieq.construct.demorgan import rules_deep
from quasieq.errors import QuasieqError
from quasieq.net import Provenance, ReluNet


def _check(intervals, delta: float) -> np.ndarray:
    """Intervals as an (n, 2) array sorted by a_i; raises unless a_i < b_i < a_{i+1} and δ > 0."""
    iv = np.asarray(intervals, dtype=np.float64)
    if iv.ndim != 2 or iv.shape[1] != 2 or len(iv) == 0:
        raise QuasieqError(f"intervals must be a non-empty list of (a, b) pairs, got shape {iv.shape}")
    if not np.all(np.isfinite(iv)):
        raise QuasieqError("intervals: bounds must be finite")
    if not (np.isfinite(delta) and delta > 0):
        raise QuasieqError(f"delta must be a positive finite length, got {delta!r}")
    iv = iv[np.argsort(iv[:, 0])]
    bad = np.flatnonzero(iv[:, 0] >= iv[:, 1])
    if bad.size:
        a, b = iv[bad[0]]
        raise QuasieqError(f"interval [{a:g}, {b:g}] needs a < b")
    overlap = np.flatnonzero(iv[1:, 0] <= iv[:-1, 1])
    if overlap.size:
        i = int(overlap[0])
        raise QuasieqError(
            f"intervals [{iv[i, 0]:g}, {iv[i, 1]:g}] and [{iv[i + 1, 0]:g}, {iv[i + 1, 1]:g}] are not disjoint"
        )
    return iv


def _provenance(iv: np.ndarray, delta: float, form: str, net: ReluNet) -> Provenance:
    return Provenance(
        method=f"intervals-{form}",
        task="classification",
        delta=float(delta),
        error_bound=2.0 * len(iv) * float(delta),
        max_abs_weight=net.max_abs_weight(),
        details={"intervals": iv.tolist()},
    )


def intervals_wide(intervals, delta: float) -> ReluNet:
    """n − Σ_i ¬A_i with the Fig. 2 (right) blocks, sign typo fixed: width 2n, 2 hidden layers.

    >>> net = intervals_wide([(0.0, 1.0), (2.0, 3.0)], 1e-3)
    >>> net.forward(np.array([[0.5], [1.5], [2.5]])).ravel().tolist()
    [1.0, 0.0, 1.0]
    """
    iv = _check(intervals, delta)
    n = len(iv)
    # layer 1: [L_1, R_1, L_2, R_2, …]; layer 2: σ(1 − ·) of each; output Σ(σ(1−L_i) + σ(1−R_i)) − n
    W1 = (np.tile([-1.0, 1.0], n) / delta)[:, None]
    b1 = np.column_stack([iv[:, 0], -iv[:, 1]]).reshape(-1) / delta
    W2 = -sp.identity(2 * n, format="csr")
    # n − Σ_i (2 − σ(1 − L_i) − σ(1 − R_i)) = Σ σ(1 − ·) + (n − 2n)
    net = ReluNet([W1, W2, np.ones((1, 2 * n))], [b1, np.ones(2 * n), [n - 2.0 * n]])
    return net.with_provenance(_provenance(iv, delta, "wide", net))


def intervals_deep(intervals, delta: float) -> ReluNet:
    """Σ_i I_i as the De Morgan chain (width 5, n + 1 hidden layers), right on all of ℝ.

    >>> net = intervals_deep([(0.0, 1.0), (2.0, 3.0)], 1e-3)
    >>> net.forward(np.array([[-5.0], [0.5], [1.5], [2.5]])).ravel().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    iv = _check(intervals, delta)
    n = len(iv)
    G = np.tile(np.array([[1.0], [-1.0]]), (n, 1, 1))  # ℓ̂_0 = x − a_i, ℓ̂_1 = b_i − x
    g0 = np.column_stack([-iv[:, 0], iv[:, 1]])
    net = rules_deep(G, g0, np.full(n, 1.0 / delta), np.zeros(n, dtype=np.int64), 1, np.array([iv[0, 0] - 2.0 * delta]))
    return net.with_provenance(_provenance(iv, delta, "deep", net))


__all__ = ["intervals_wide", "intervals_deep"]
