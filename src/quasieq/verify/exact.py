"""Exact equivalence check of two ReLU nets on a box, from their common refinement (issue 5, item 1).

**Common refinement.** For nets a, b : D → K on a box, the cells on which *both* are affine are the
activation regions of the stacked net h = [a; b] : D → 2K, whose hidden layers are the block-diagonal
stacks of a's and b's hidden layers. When the depths differ, the shallower net n is padded after its
output layer with *shifted carries*: its output v = n(x) enters a ReLU as relu(v + C) with

    C = −lo + max(1, hi − lo)   (lo, hi: interval-arithmetic bounds of v on the box, per output),

so v + C ≥ max(1, hi − lo) > 0 on the whole box; the ReLU is the identity there, its hyperplane
v + C = 0 misses the box and cuts no cell, and the value is carried unchanged (identity weights, no
bias) through the remaining layers and read out as (v + C) − C. (We carry relu(v + C) − C rather than
relu(v) − relu(−v): one neuron per value instead of two, and no hyperplane at all inside the box.)
``qe.regions(h, box)`` then gives every cell R with h(x) = A_R x + b_R, so on R

    d(x) = a(x) − b(x) = (A_a − A_b) x + (b_a − b_b)   (affine).

**Sup.** |d_k| is convex on the polytope R, so its maximum over R is attained at a vertex:
sup_box max_k |d_k| = max over cells, outputs and vertices of |d_k(v)|, with the maximising vertex as
the witness. The exact output range of a (for the default tolerance) is read the same way at the
vertices of a's own regions.

**Measure of {max_k |d_k| > τ}.** τ = 0: the total volume of the cells whose two affine maps differ,
max|A_a − A_b|·s + max|b_a − b_b| > AFFINE_EQUAL·(1 + max(|A_a|, |A_b|)·s + max(|b_a|, |b_b|)) with s the
box scale (tolerances.AFFINE_EQUAL). τ > 0: the stacked net is extended by one hidden layer holding
relu of the shifted carries of a and b and the 2K *cut* neurons d_k − τ and −d_k − τ (affine in the
last stacked layer). Its regions split every cell exactly along |d_k| = τ, so on each region the
predicate max_k |d_k| > τ is constant; it is read at the region's interior point and the measure is
the sum of the volumes of the regions where it holds. The extended regions refine the common
refinement without changing the maps, so the sup is read off them as well, and the common
refinement's cells are their distinct activation patterns on the stacked (uncut) neurons.

**Label disagreement** (task="classification"). Cut neurons a_i − a_j and b_i − b_j (i < j) for K ≥ 2
scores, a_0 and b_0 for a single logit (label [h > 0]), make both labels constant on every region of
the extended net (ties lie on cut hyperplanes: measure zero); the measure is the volume of the regions
whose two labels, read at the interior point, differ.

Volumes are exact only up to EXACT_VOLUME_MAX_DIM (the region engine samples above it), so the exact
check refuses D > 6.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from quasieq import tolerances
from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet, class_labels
from quasieq.regions import RegionComplex, regions
from quasieq.regions.limits import RegionLimit, within_limits
from quasieq.regions.schedule import RegionProgressFn

if TYPE_CHECKING:  # distributed is imported only when a cluster is used (cluster/executor.py)
    from distributed import Client


@dataclass(frozen=True)
class ExactComparison:
    """What the exact check found (``compare(..., exact=True)`` turns it into an EquivalenceReport).

    ``cells`` counts the cells of the common refinement; ``cells_visited`` counts every region
    enumerated: those of the extended net (the cells cut along |d| = τ and the label boundaries), plus
    a's own regions when the default tolerance needed a's exact output range.
    """

    sup_error: float
    witness: np.ndarray
    disagreement_measure: float
    label_disagreement_measure: float | None
    tolerance: float
    cells: int
    cells_visited: int
    seconds: float


def output_bounds(net: ReluNet, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Interval-arithmetic bounds lo ≤ net(x) ≤ hi on the box (per output), in midpoint–radius form:
    z = W a + b has midpoint W m + b and radius |W| r; a ReLU unit clips both ends at 0, a linear unit
    keeps them."""
    mid, rad = (box.lo + box.hi) / 2.0, (box.hi - box.lo) / 2.0
    for i, (W, b) in enumerate(net.layers):
        centre = W @ mid + b
        spread = abs(W) @ rad
        lo, hi = centre - spread, centre + spread
        if i < len(net.layers) - 1:
            relu = net.relu_masks[i]
            lo, hi = np.where(relu, np.maximum(lo, 0.0), lo), np.where(relu, np.maximum(hi, 0.0), hi)
            mid, rad = (lo + hi) / 2.0, (hi - lo) / 2.0
    return lo, hi


def carry_shift(net: ReluNet, box: Box) -> np.ndarray:
    """C = −lo + max(1, hi − lo) per output: net(x) + C ≥ max(1, hi − lo) > 0 on the box."""
    lo, hi = output_bounds(net, box)
    return -lo + np.maximum(1.0, hi - lo)


def _padded(net: ReluNet, depth: int, shift: np.ndarray) -> tuple[list, list, tuple]:
    """``net``'s hidden layers padded to ``depth`` hidden layers, their ReLU masks, and its readout
    (R, r) from the last: net(x) = R·a_depth + r. Padding: the output layer shifted by C, then identity
    carries (ReLU units, positive on the box, so they never cut it); r = −C."""
    hidden, (W_out, b_out) = list(net.layers[:-1]), net.layers[-1]
    masks = list(net.relu_masks)
    if len(hidden) == depth:
        return hidden, masks, (sp.csr_matrix(W_out), b_out)
    K = net.out_dim
    carry = (sp.identity(K, format="csr"), np.zeros(K))
    padded = hidden + [(W_out, b_out + shift)] + [carry] * (depth - len(hidden) - 1)
    masks += [np.ones(K, dtype=bool)] * (depth - len(hidden))
    return padded, masks, (sp.identity(K, format="csr"), -shift)


def stacked_net(a: ReluNet, b: ReluNet, box: Box, cuts: tuple | None = None) -> ReluNet:
    """The net h = [a; b] (2K outputs) whose regions are the common refinement of a and b on the box.

    ``cuts = (P, Q, c)`` (m × K, m × K, m) adds one last hidden layer: the shifted carries of a and b
    (relu(a + C_a), relu(b + C_b), never cutting the box) and m cut neurons relu(P a(x) + Q b(x) + c),
    whose hyperplanes P a + Q b + c = 0 then split the cells; the output is still [a; b].
    """
    depth = max(a.hidden_layers, b.hidden_layers)
    shift_a, shift_b = carry_shift(a, box), carry_shift(b, box)
    layers_a, masks_a, (R_a, r_a) = _padded(a, depth, shift_a)
    layers_b, masks_b, (R_b, r_b) = _padded(b, depth, shift_b)
    weights, biases = [], []
    masks = [np.concatenate(pair) for pair in zip(masks_a, masks_b, strict=True)]
    for i, ((W_a, b_a), (W_b, b_b)) in enumerate(zip(layers_a, layers_b, strict=True)):
        stack = sp.vstack if i == 0 else sp.block_diag  # layer 1 reads the shared input x
        weights.append(sp.csr_matrix(stack((sp.csr_matrix(W_a), sp.csr_matrix(W_b)))))
        biases.append(np.concatenate((b_a, b_b)))
    if depth > 0:  # the readouts act on the stacked last layer [a-block | b-block]
        R_a = sp.hstack((R_a, sp.csr_matrix((R_a.shape[0], R_b.shape[1])))).tocsr()
        R_b = sp.hstack((sp.csr_matrix((R_b.shape[0], R_a.shape[1] - R_b.shape[1])), R_b)).tocsr()
    if cuts is None:
        weights.append(sp.vstack((R_a, R_b)).tocsr())
        biases.append(np.concatenate((r_a, r_b)))
        return ReluNet(weights, biases, relu_masks=masks)
    P, Q, c = (np.asarray(t, dtype=np.float64) for t in cuts)
    cut_W = sp.csr_matrix(P) @ R_a + sp.csr_matrix(Q) @ R_b
    weights.append(sp.vstack((R_a, R_b, cut_W)).tocsr())
    biases.append(np.concatenate((r_a + shift_a, r_b + shift_b, P @ r_a + Q @ r_b + c)))
    K = a.out_dim
    weights.append(sp.hstack((sp.identity(2 * K), sp.csr_matrix((2 * K, P.shape[0])))).tocsr())
    biases.append(-np.concatenate((shift_a, shift_b)))
    return ReluNet(weights, biases, relu_masks=[*masks, np.ones(weights[-2].shape[0], dtype=bool)])


def threshold_cuts(K: int, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2K cuts d_k − τ and −d_k − τ (d = a − b) as (P, Q, c)."""
    eye = np.eye(K)
    return np.vstack((eye, -eye)), np.vstack((-eye, eye)), np.full(2 * K, -float(tau))


def label_cuts(K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cuts on which both labels are constant: a_i − a_j and b_i − b_j for i < j (K ≥ 2), or a_0 and
    b_0 for a single logit, as (P, Q, c)."""
    if K == 1:
        return np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]]), np.zeros(2)
    i, j = np.triu_indices(K, k=1)
    pairs = np.zeros((i.size, K))
    pairs[np.arange(i.size), i] = 1.0
    pairs[np.arange(i.size), j] = -1.0
    zero = np.zeros_like(pairs)
    return np.vstack((pairs, zero)), np.vstack((zero, pairs)), np.zeros(2 * i.size)


def _check(a: ReluNet, b: ReluNet, box: Box) -> None:
    for name, net in (("a", a), ("b", b)):
        if not isinstance(net, ReluNet):
            raise QuasieqError(f"compare(exact=True): {name} must be a ReluNet, got {type(net).__name__}; "
                               "use the Monte-Carlo compare for other callables")
        if net.in_dim != box.dim:
            raise QuasieqError(f"compare: {name} takes {net.in_dim} inputs but the box has dimension {box.dim}")
    if a.out_dim != b.out_dim:
        raise QuasieqError(f"compare: a gives {a.out_dim} outputs but b gives {b.out_dim}")
    if box.dim > tolerances.EXACT_VOLUME_MAX_DIM:
        raise QuasieqError(
            f"compare(exact=True) is limited to D ≤ {tolerances.EXACT_VOLUME_MAX_DIM} (exact volumes), "
            f"got D = {box.dim}; use the Monte-Carlo compare (exact=False)"
        )


def _split_maps(cx: RegionComplex, K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(A_a, b_a, A_b, b_b) per cell from the stacked output map [a; b]."""
    return cx.A[:, :K], cx.b[:, :K], cx.A[:, K:], cx.b[:, K:]


def _affine_maps_differ(cx: RegionComplex, K: int) -> np.ndarray:
    """Cells whose two affine maps differ beyond tolerances.AFFINE_EQUAL (see the module docstring)."""
    A_a, b_a, A_b, b_b = _split_maps(cx, K)
    s = cx.box.scale
    gap = np.abs(A_a - A_b).max(axis=(1, 2)) * s + np.abs(b_a - b_b).max(axis=1)
    size = (np.maximum(np.abs(A_a), np.abs(A_b)).max(axis=(1, 2)) * s
            + np.maximum(np.abs(b_a), np.abs(b_b)).max(axis=1))
    return gap > tolerances.AFFINE_EQUAL * (1.0 + size)


def _certify_maps(net: ReluNet, cx: RegionComplex) -> None:
    """Check each cell's affine map against a forward pass of the stacked net at its interior point:
    the maps must agree within AFFINE_EQUAL·(1 + max|A|·s + max|b|) (the verify package certifies the
    region engine's output instead of trusting it)."""
    p = cx.interior_points
    gap = np.abs(np.einsum("nkd,nd->nk", cx.A, p) + cx.b - net.forward(p)).max(axis=1)
    size = np.abs(cx.A).max(axis=(1, 2)) * cx.box.scale + np.abs(cx.b).max(axis=1)
    bad = np.flatnonzero(gap > tolerances.AFFINE_EQUAL * (1.0 + size))
    if bad.size:
        i = int(bad[0])
        raise RuntimeError(
            f"exact compare: the region engine's map of cell {i} (of {len(cx)}; {bad.size} such cells) is off "
            f"the forward pass by {gap[i]:.3g} at its interior point {p[i].tolist()}; the result would be wrong"
        )


def _vertex_values(cx: RegionComplex, A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-cell affine maps (A, b) evaluated at every vertex of their cell: (vertices, K)."""
    owner = np.repeat(np.arange(len(cx)), np.diff(cx.vertex_indptr))
    return np.einsum("nkd,nd->nk", A[owner], cx.vertices_flat) + b[owner]


def output_range(net: ReluNet, box: Box, *, max_regions: int | None = None,
                 client: Client | None = None) -> tuple[float, int]:
    """Exact max_k (max_box net_k − min_box net_k), read at the vertices of the net's regions (an
    affine function on a polytope is extreme at a vertex), and the number of regions visited."""
    cx = regions(net, box, max_regions=max_regions, client=client)
    values = _vertex_values(cx, cx.A, cx.b)
    return float((values.max(axis=0) - values.min(axis=0)).max()), len(cx)


# Long by its validation and the bookkeeping of one pass over the pair cells (measure, sup, labels,
# witness, progress); the geometry is in stacked_net and the cuts, the cells are the regions() of it.
def exact_compare(
    a: ReluNet,
    b: ReluNet,
    box: Box,
    *,
    tol: float | None = None,
    task: str = "regression",
    max_regions: int | None = None,
    client: Client | None = None,
    max_cells: int | None = None,
    progress: RegionProgressFn | None = None,
) -> ExactComparison:
    """Exact sup |a − b|, measure of {max_k |a_k − b_k| > tol} and label-disagreement measure on the box.

    ``tol=None`` takes DISAGREE_RELATIVE·max(1, output range of a on the box) — the Monte-Carlo rule
    of ``compare`` with the exact range (:func:`output_range`, one enumeration of a alone). Then one
    enumeration of the stacked net, extended by the cuts that the measures need (|d_k| = tol when
    tol > 0, the label boundaries for classifiers), settles everything: its regions refine the common
    refinement without changing any cell's maps, so the sup and the tol = 0 test read the same off
    them, and the common refinement's cells are its distinct patterns on the stacked neurons.
    ``max_regions`` bounds each enumeration (QuasieqError beyond), ``max_cells`` the cells of the
    stacked net's enumeration (the refinement the check visits), which reports to ``progress`` as
    ``regions`` does. D ≤ 6 only. With a Dask ``client`` the enumerations run on its workers
    (``regions(client=...)``: the same cells, bitwise).

    Example
    -------
    >>> res = exact_compare(net, qe.to_wide(net, box, 1e-3), box)            # doctest: +SKIP
    >>> res.disagreement_measure <= 1e-3, res.cells                          # doctest: +SKIP
    (True, 812)
    """
    _check(a, b, box)
    started = time.perf_counter()
    K = a.out_dim
    visited = 0
    if tol is None:
        spread, visited = output_range(a, box, max_regions=max_regions, client=client)
        tol = tolerances.DISAGREE_RELATIVE * max(1.0, spread)
    tol = float(tol)
    cuts = ([threshold_cuts(K, tol)] if tol > 0.0 else []) + ([label_cuts(K)] if task == "classification" else [])
    P_Q_c = tuple(np.concatenate(parts) for parts in zip(*cuts, strict=True)) if cuts else None
    stacked = stacked_net(a, b, box, P_Q_c)
    cx = within_limits(lambda cap: regions(stacked, box, max_regions=cap, progress=progress, client=client),
                       RegionLimit(max_regions, "max_regions= (--max-regions)"),
                       RegionLimit(max_cells, "max_cells= (--max-cells)", unit="cells",
                                   otherwise="compare by sampling"))
    _certify_maps(stacked, cx)
    visited += len(cx)
    refinement_units = stacked.relu_units - (stacked.relu_widths[-1] if cuts else 0)
    cells = len(np.unique(cx.patterns[:, :refinement_units], axis=0))

    A_a, b_a, A_b, b_b = _split_maps(cx, K)
    err = np.abs(_vertex_values(cx, A_a - A_b, b_a - b_b)).max(axis=1)
    top = int(np.argmax(err))
    sup, witness = float(err[top]), cx.vertices_flat[top].copy()
    p = cx.interior_points
    if tol == 0.0:
        measure = float(cx.volumes[_affine_maps_differ(cx, K)].sum())
    else:
        gap = np.abs(np.einsum("nkd,nd->nk", A_a - A_b, p) + (b_a - b_b)).max(axis=1)
        measure = float(cx.volumes[gap > tol].sum())
    label_measure = None
    if task == "classification":
        y_a = np.einsum("nkd,nd->nk", A_a, p) + b_a
        y_b = np.einsum("nkd,nd->nk", A_b, p) + b_b
        label_measure = float(cx.volumes[class_labels(y_a) != class_labels(y_b)].sum())
    return ExactComparison(
        sup_error=sup,
        witness=witness,
        disagreement_measure=measure,
        label_disagreement_measure=label_measure,
        tolerance=tol,
        cells=cells,
        cells_visited=visited,
        seconds=time.perf_counter() - started,
    )
