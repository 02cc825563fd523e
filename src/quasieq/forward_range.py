"""Does a net's forward pass stay inside float64 on a box? Refuse the net, naming the layer, if not.

A net whose values overflow on the box (weights of 1e200 composed over two layers give inf, and
inf − inf gives nan) makes every later answer meaningless — comparing such a net with itself reports
disagreement on most of the box. :func:`check_forward_range` decides in two steps:

1. **Proof of safety** by interval arithmetic over the box, in midpoint–radius form: z = W a + b has
   midpoint W m + b and radius |W| r; a ReLU clips both ends at 0. When every layer's bound stays
   within ``tolerances.FORWARD_RANGE_MAX`` the net is accepted.
2. Interval bounds grow with depth even when the values do not (deep constructions reach 1e307 as a
   bound with modest values), so a bound beyond the limit is not a refusal by itself. The net is then
   evaluated at the box's centre, up to 256 of its corners and 1,024 seeded uniform points; it is
   refused only when some layer *does* exceed the limit (or is non-finite) at one of them — the
   message names that layer, the value and the point.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from quasieq import tolerances
from quasieq.errors import QuasieqError

#: Points of step 2: the box's centre, at most CORNERS corners and SAMPLES uniform points (seed 0).
CORNERS = 256
SAMPLES = 1024

#: Values held at once while probing (points per chunk × widest layer): 2^22 floats = 32 MiB.
EVALUATION_FLOATS = 2**22


def interval_bound(net, box) -> tuple[int, float] | None:
    """(layer, bound) of the first layer whose interval bound max|z| exceeds FORWARD_RANGE_MAX (or is
    not finite), or None when every layer stays within it. A dense layer is bounded in one compiled
    call (:func:`_dense_interval`), a sparse one with scipy's products."""
    mid, rad = (box.lo + box.hi) / 2.0, (box.hi - box.lo) / 2.0
    last = len(net.layers) - 1
    for i, (W, b) in enumerate(net.layers):
        relu = net.relu_masks[i] if i < last else np.zeros(W.shape[0], dtype=bool)  # the last: no next layer
        if sp.issparse(W):
            bound, mid, rad = _sparse_interval(W, b, mid, rad, relu)
        else:
            bound, mid, rad = _dense_interval(W, b, mid, rad, relu)
        if not bound <= tolerances.FORWARD_RANGE_MAX:
            return i, bound
    return None


def _sparse_interval(W, b, mid, rad, relu) -> tuple[float, np.ndarray, np.ndarray]:
    """:func:`_dense_interval` for a scipy sparse W."""
    with np.errstate(over="ignore", invalid="ignore"):
        centre = W @ mid + b
        spread = abs(W) @ rad
        bound = float((np.abs(centre) + spread).max())  # max|z| = |centre| + spread (spread ≥ 0)
        lo, hi = centre - spread, centre + spread
        lo, hi = np.where(relu, np.maximum(lo, 0.0), lo), np.where(relu, np.maximum(hi, 0.0), hi)
        return bound, (lo + hi) / 2.0, (hi - lo) / 2.0


@njit(cache=True, nogil=True)
def _dense_interval(W, b, mid, rad, relu):
    """One layer z = W a + b on the box a ∈ [mid − rad, mid + rad], in midpoint–radius form: z has
    centre W·mid + b and spread |W|·rad, so max|z| = max_j |centre_j| + spread_j (returned first; NaN
    when a sum overflows to inf − inf); the layer's output interval is [lo, hi] = centre ∓ spread, both
    ends clipped at 0 on the ReLU units, returned as its midpoint and radius."""
    n = W.shape[0]
    bound = 0.0
    out_mid, out_rad = np.empty(n), np.empty(n)
    for j in range(n):
        centre, spread = b[j], 0.0
        for i in range(W.shape[1]):
            centre += W[j, i] * mid[i]
            spread += abs(W[j, i]) * rad[i]
        size = abs(centre) + spread
        if bound == bound and not size <= bound:  # a larger size, or the first NaN (which then stays)
            bound = size
        lo, hi = centre - spread, centre + spread
        if relu[j]:
            lo, hi = max(lo, 0.0), max(hi, 0.0)
        out_mid[j], out_rad[j] = (lo + hi) / 2.0, (hi - lo) / 2.0
    return bound, out_mid, out_rad


def _probe_points(box) -> np.ndarray:
    """The centre, every corner when there are at most CORNERS (else CORNERS random ones), and
    SAMPLES uniform points of the box."""
    rng = np.random.default_rng(0)
    D = box.dim
    bits = (np.arange(2**D)[:, None] >> np.arange(D)) & 1 if 2**D <= CORNERS else rng.integers(0, 2, (CORNERS, D))
    corners = np.where(bits == 1, box.hi, box.lo)
    return np.vstack([(box.lo + box.hi) / 2.0, corners, box.sample(SAMPLES, rng)])


def check_forward_range(net, box) -> None:
    """Raise QuasieqError when ``net``'s values on ``box`` exceed float64's safe range (module docstring)."""
    if interval_bound(net, box) is None:
        return
    X = _probe_points(box)
    rows = max(1, EVALUATION_FLOATS // max(net.width, net.out_dim))
    for start in range(0, len(X), rows):
        chunk = X[start : start + rows]
        with np.errstate(over="ignore", invalid="ignore"):
            values = [*net.pre_activations(chunk), net.forward(chunk)]
        for i, Z in enumerate(values):
            magnitude = np.where(np.isfinite(Z), np.abs(Z), np.inf).max(axis=1)
            worst = int(np.argmax(magnitude))
            if not magnitude[worst] <= tolerances.FORWARD_RANGE_MAX:
                kind = "output" if i == len(values) - 1 else "pre-activations"
                x = ", ".join(f"{v:.3g}" for v in chunk[worst][:4]) + (", ..." if box.dim > 4 else "")
                raise QuasieqError(
                    f"layer {i}: its {kind} reach {magnitude[worst]:.3g} on the box (at x = [{x}]), beyond "
                    f"the float64-safe range {tolerances.FORWARD_RANGE_MAX:.3g}: the forward pass overflows; "
                    "rescale the weights or shrink the box"
                )
