"""The load-time check: a lowered net is evaluated against its source on random inputs, never trusted.

The source is ONNX Runtime on the ONNX model, or torch on the module. Inputs are seeded standard normal
samples of the source's input shape, rounded to the source's dtype, in two batches whose sizes differ
from any traced one (for a graph with a fixed batch size, batches of that size). A difference beyond
float32 rounding (:data:`quasieq.tolerances.LOWERING_MATCH_RELATIVE`) is an error naming the largest
difference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.tolerances import LOWERING_MATCH_RELATIVE

#: Seed of the check's random inputs (fixed: loading the same model always runs the same check).
CHECK_SEED = 20261201
#: Batch sizes of the check when the source accepts any batch (neither is a typical traced size 1 or 2).
CHECK_BATCHES = (3, 5)


def rounding_scale(net: ReluNet, X: np.ndarray) -> np.ndarray:
    """The scale that rounding errors of the outputs are relative to, by forward error analysis.

    Each layer z = W a + b rounds relative to its terms, |W| |a| + |b|, and passes the errors of its
    input on through |W| (ReLU and pass-through are 1-Lipschitz):

        s_0 = 0,    s_l = |W_l| s_{l-1} + |W_l| |a_{l-1}| + |b_l|,

    so the outputs of any evaluation order in a precision of unit roundoff u are within ~ c·u·s_L.
    """
    A = np.asarray(X, dtype=np.float64)
    S = np.zeros_like(A)
    pre = net.pre_activations(A)
    for layer, (W, b) in enumerate(net.layers):
        absW = abs(W) if sp.issparse(W) else np.abs(W)
        S = np.asarray(absW @ (S + np.abs(A)).T).T + np.abs(b)
        if layer < len(pre):
            A = np.where(net.relu_masks[layer], np.maximum(pre[layer], 0.0), pre[layer])
    return S


def _softmax(Y: np.ndarray) -> np.ndarray:
    E = np.exp(Y - Y.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


#: A dropped trailing op, applied to our outputs before they are compared with the source's.
DROPPED_OUTPUT_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Softmax": _softmax,
    "LogSoftmax": lambda Y: np.log(_softmax(Y)),
}


def check_lowering(net: ReluNet, input_shape: tuple[int, ...], reference: Callable[[np.ndarray], np.ndarray],
                   dtype: type, fixed_batch: int | None, label: str, source: str, hint: str,
                   dropped: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Raise unless ``net`` (followed by the ``dropped`` trailing ops) matches ``reference``, a batched
    (N, *input_shape) → (N, K) function; ``hint`` ends the error message (what a mismatch suggests).

    Returns the notes for the user: the check is inconclusive when the rounding scale overflows
    float64 (a net whose float32 evaluation can be off by any amount)."""
    rng = np.random.default_rng(CHECK_SEED)
    batches = CHECK_BATCHES if fixed_batch is None else (fixed_batch, fixed_batch)
    for n in batches:
        X: np.ndarray = rng.standard_normal((n, *input_shape)).astype(dtype)
        theirs = np.asarray(reference(X), dtype=np.float64)
        flat = X.astype(np.float64).reshape(n, -1)
        ours = net.forward(flat)
        for op in dropped:
            ours = DROPPED_OUTPUT_OPS[op](ours)
        if theirs.size != ours.size:
            raise QuasieqError(f"{label}: {source} gives {theirs.size // n} outputs per sample, the lowered net "
                               f"{ours.size // n}")
        theirs = theirs.reshape(ours.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            largest = float(np.max(rounding_scale(net, flat)))  # nan once inf meets a zero weight
        if not np.isfinite(largest):
            return (f"{label}: the load-time check against {source} is inconclusive: the float32 rounding "
                    f"error bound of this net overflows (weights up to {net.max_abs_weight():.3g} over "
                    f"{len(net.layers)} layers)",)
        scale = max(1.0, largest)
        diff = np.abs(ours - theirs)
        if not np.all(np.isfinite(theirs)) or diff.max() > LOWERING_MATCH_RELATIVE * scale:
            i, j = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(diff), diff, np.inf))), diff.shape)
            raise QuasieqError(
                f"{label}: the lowered net differs from {source} by {diff[i, j]:.3g} at output {j} of a random "
                f"input (tolerance {LOWERING_MATCH_RELATIVE:g} x scale {scale:.3g}); {hint}")
    return ()
