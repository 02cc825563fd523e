"""Exact deep-narrow form of a one-hidden-layer net: one hidden unit per layer, a running sum.

The input is f(x) = c + Σ_{i=1}^{w} a_i σ(w_i·x + b_i) (a ReluNet with one hidden layer of width w,
K outputs: a_i ∈ R^K, c ∈ R^K) on a box lo ≤ x ≤ hi with scale s. The construction has w hidden
layers (depth w + 1), each of width D + 1 + K (D + 2 for a single output), strictly feedforward:

* **Carried input** (D units): t = σ(x − lo + s). On the box x − lo + s ≥ s > 0, so the ReLU is the
  identity, t = x − lo + s, and its hyperplane misses the closed box (it cuts no region). Later layers
  carry t through σ(t) = t, and read x = t + lo − s.
* **New hidden unit** (1 unit): layer l holds h_l = σ(w_l·x + b_l) = σ(w_l·t + w_l·(lo − s) + b_l),
  the l-th hidden unit of the input net, computed from the carried input of layer l − 1 (layer 1
  reads x itself).
* **Running sum** (K units): layer l holds r_l = σ(S_{l−1} + B) with the partial sum
  S_{l−1} = Σ_{i<l} a_i h_i, computed as r_l = σ(r_{l−1} + a_{l−1} h_{l−1}) (r_1 = σ(B)). The shift
  B = 1 − min(0, min_l lb(S_l)) per output, with lb(S_l) = Σ_{i≤l} min(a_i·h̲_i, a_i·h̄_i) the
  interval-arithmetic lower bound of S_l on the box (h̲_i, h̄_i: the clipped interval bounds of the
  pre-activation w_i·x + b_i), makes S_l + B ≥ 1 > 0 on the box, so every r_l = S_{l−1} + B exactly.
* **Output**: f(x) = r_w + a_w h_w − B + c, affine in the last hidden layer.

Hence the net equals f everywhere on the box (error bound 0, up to float64 rounding). In the last
layer the carried input is no longer read (its output weights are zero); it is kept so that every
layer has the same width D + 1 + K.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from quasieq.box import Box
from quasieq.construct.job import provenance
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet


def _dense(W) -> np.ndarray:
    return W.toarray() if sp.issparse(W) else np.asarray(W, dtype=np.float64)


def sum_shift(W: np.ndarray, b: np.ndarray, A: np.ndarray, box: Box) -> np.ndarray:
    """B (K,) with Σ_{i≤l} a_i σ(w_i·x + b_i) + B ≥ 1 on the box for every l = 0..w (interval
    arithmetic: pre-activation bounds b ± |W|·radius around the box centre, clipped at 0)."""
    mid, rad = (box.lo + box.hi) / 2.0, (box.hi - box.lo) / 2.0
    centre, spread = W @ mid + b, np.abs(W) @ rad
    h_lo, h_hi = np.maximum(centre - spread, 0.0), np.maximum(centre + spread, 0.0)  # (w,)
    term_lo = np.minimum(A * h_lo, A * h_hi)  # (K, w): lower bound of a_{k,i} h_i
    partial = np.cumsum(term_lo, axis=1)
    lowest = np.minimum(0.0, partial.min(axis=1, initial=0.0))
    return 1.0 - lowest


def onelayer_deep(net: ReluNet, box: Box) -> ReluNet:
    """The exact deep-narrow form of a one-hidden-layer ``net`` on ``box`` (module docstring):
    ``net.widths[0]`` hidden layers of width D + 1 + K, equal to ``net`` everywhere on the box."""
    box.check_net(net)
    if net.hidden_layers != 1:
        raise QuasieqError(
            f"onelayer_deep needs a net with exactly 1 hidden layer, got {net.hidden_layers} ({net!r})"
        )
    if net.has_linear_units:
        raise QuasieqError(f"onelayer_deep needs every hidden unit to be a ReLU unit; {net!r} has linear units")
    (W1, b1), (W2, c) = net.layers
    W, A = _dense(W1), _dense(W2)  # (w, D), (K, w)
    w, D = W.shape
    K = A.shape[0]
    lo, s = box.lo, box.scale
    B = sum_shift(W, b1, A, box)
    n = D + 1 + K  # units per layer: carried input t, new unit h, running sums r
    h, r = D, slice(D + 1, n)
    weights, biases = [], []
    for j in range(w):  # deep layer j computes hidden unit j of the one-layer net
        M = np.zeros((n, D if j == 0 else n))
        bias = np.zeros(n)
        if j == 0:  # read x: t = σ(x − lo + s), h_1 = σ(w_1·x + b_1), r_1 = σ(B)
            M[:D, :D] = np.eye(D)
            bias[:D] = s - lo
            M[h, :] = W[0]
            bias[h] = b1[0]
            bias[r] = B
        else:  # read the previous layer's (t, h_{j}, r_{j})
            M[:D, :D] = np.eye(D)
            M[h, :D] = W[j]
            bias[h] = W[j] @ (lo - s) + b1[j]
            M[r, D + 1 :] = np.eye(K)
            M[r, h] = A[:, j - 1]
        weights.append(M)
        biases.append(bias)
    out = np.zeros((K, n))
    out[:, h] = A[:, w - 1]
    out[:, r] = np.eye(K)
    weights.append(out)
    biases.append(c - B)
    built = ReluNet(weights, biases)
    return built.with_provenance(provenance(
        "exact", box, error_bound=0.0, max_abs_weight=built.max_abs_weight(),
        details={
            "form": "deep",
            "construction": "one-hidden-layer",
            "hidden_units": w,
            "sum_shift": B.tolist(),
            "target_width": D + 1 + K,
            "target_hidden_layers": w,
        },
    ))


__all__ = ["onelayer_deep", "sum_shift"]
