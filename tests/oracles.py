"""Independent reference computations that the region engine is checked against.

Nothing here uses quasieq's region code: a net is just its affine layers ``[(W_0, b_0), …]`` (float64,
W of shape (out, in)) with ReLU after every layer but the last, and a box is ``(lo, hi)``.

* :func:`brute_force_regions` — a search over activation patterns with one linear program per child,
  the textbook definition of a linear region turned into an algorithm (no vertices, no splitting).
* :func:`line_arrangement_count` — Euler's formula for lines inside a 2-D box (degenerate ones too).
* :func:`general_position_count` — the same count in any dimension: flats of the arrangement that meet
  the open box, each counted once.
* :func:`grid_patterns` — the distinct activation patterns seen on a dense grid: a lower bound.
* :func:`pattern_maps` — the affine maps a fixed activation pattern induces (composed by hand).
* :func:`relu_chain_on_box` — a net with linear (pass-through) units rewritten as a plain ReLU chain
  equal to it on a box, with no extra region boundary inside the box.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, HalfspaceIntersection

# The seeded-net recipe lives in benchmarks/nets.py (one place for tests and benchmarks).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nets import GOLDEN_REGION_COUNTS, seeded_layers, seeded_relu_net  # noqa: E402,F401  (re-exported)

Layers = list[tuple[np.ndarray, np.ndarray]]

#: Regions whose Chebyshev radius (relative to the box's largest side) is at most this are
#: lower-dimensional: the brief's 1e-9, kept one order above the LP's feasibility tolerance below.
MIN_RADIUS = 1e-9
#: HiGHS primal/dual feasibility tolerance: HiGHS's smallest accepted value, an order below
#: MIN_RADIUS, so that an empty or flat cell is never reported as a region of radius ~1e-7 (HiGHS's
#: default tolerance).
LP_TOLERANCE = 1e-10
#: A pre-activation gradient g = (W M)_j with ‖g‖ ≤ FLAT · ‖|W_j| |M|‖ is treated as constant on the
#: cell: exact cancellation in the product leaves only rounding residues of a few ulps of the terms.
FLAT = 1e-12


def layers_of(net: Any) -> Layers:
    """``[(W, b), …]`` as dense float64 arrays from a ReluNet (``.layers``) or a list of pairs."""
    pairs = net.layers if hasattr(net, "layers") else net
    out = []
    for W, b in pairs:
        W = W.toarray() if hasattr(W, "toarray") else W
        out.append((np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64).reshape(-1)))
    return out


def pre_activations(layers: Layers, X: np.ndarray) -> list[np.ndarray]:
    """z_l = W_l a_{l-1} + b_l for every hidden layer l (a_0 = x, a_l = max(z_l, 0))."""
    Z = np.atleast_2d(np.asarray(X, dtype=np.float64))
    out = []
    for W, b in layers[:-1]:
        Z = Z @ W.T + b
        out.append(Z)
        Z = np.maximum(Z, 0.0)
    return out


def forward(layers: Layers, X: np.ndarray) -> np.ndarray:
    Z = np.atleast_2d(np.asarray(X, dtype=np.float64))
    for W, b in layers[:-1]:
        Z = np.maximum(Z @ W.T + b, 0.0)
    W, b = layers[-1]
    return Z @ W.T + b


def forward_patterns(layers: Layers, X: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """Bool (N, neurons): neuron active ⇔ pre-activation > 0, layers concatenated.

    With ``noise`` > 0, a neuron is active only when its pre-activation exceeds ``noise`` times the
    magnitude of the terms summed into it (Σ |W_ij a_j| + |b_i|): a pre-activation that is exactly zero
    on a whole cell (integer weights cancelling, a duplicated neuron subtracted) is evaluated in
    floating point as ± a few ulps of those terms, and must read as inactive."""
    Z = np.atleast_2d(np.asarray(X, dtype=np.float64))
    bits = []
    for W, b in layers[:-1]:
        z = Z @ W.T + b
        bits.append(z > noise * (np.abs(Z) @ np.abs(W).T + np.abs(b)))
        Z = np.maximum(z, 0.0)
    return np.concatenate(bits, axis=1) if bits else np.zeros((Z.shape[0], 0), dtype=bool)


def facet_source_codes(hyperplane_ids: np.ndarray, dim: int) -> np.ndarray:
    """The RegionComplex facet source codes of global hyperplane ids, written independently of the
    kernels' scalar rule: ReLU unit k (id 2D + k) is k, box face j (id j) is -(j + 1)."""
    return np.where(hyperplane_ids < 2 * dim, -(hyperplane_ids + 1), hyperplane_ids - 2 * dim)


def chebyshev(G: np.ndarray, h: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Chebyshev ball of {x : G x ≤ h} (rows of G unit): max r s.t. G x + r ≤ h, r ≥ 0.

    Returns the *certified* radius min_i (h_i − G_i x*) at the LP's centre x* (so a positive answer
    is a witness, independent of the solver's tolerances), or (-inf, None) when infeasible.
    """
    D = G.shape[1]
    c = np.zeros(D + 1)
    c[-1] = -1.0
    res = linprog(
        c, A_ub=np.hstack([G, np.ones((G.shape[0], 1))]), b_ub=h,
        bounds=[(None, None)] * D + [(0, None)], method="highs",
        options={"primal_feasibility_tolerance": LP_TOLERANCE, "dual_feasibility_tolerance": LP_TOLERANCE},
    )
    if res.status != 0:
        return -np.inf, None
    x = res.x[:D]
    return float(np.min(h - G @ x)), x


def polytope_volume(G: np.ndarray, h: np.ndarray, interior: np.ndarray) -> float:
    """Volume of {x : G x ≤ h} from an interior point: an interval's length in 1-D, otherwise
    qhull's halfspace intersection followed by the convex hull of its vertices."""
    if G.shape[1] == 1:
        g = G[:, 0]
        upper = np.min(h[g > 0] / g[g > 0])
        lower = np.max(h[g < 0] / g[g < 0])
        return float(upper - lower)
    hs = HalfspaceIntersection(np.hstack([G, -h[:, None]]), interior)
    return float(ConvexHull(hs.intersections).volume)


@dataclass
class BruteRegion:
    """One full-dimensional activation region found by :func:`brute_force_regions`."""

    pattern: np.ndarray  # bool (neurons,)
    G: np.ndarray  # unit rows: pattern constraints of every hidden neuron that is not constant, then box
    h: np.ndarray
    center: np.ndarray  # Chebyshev centre
    radius: float  # certified Chebyshev radius
    A: np.ndarray  # (K, D) affine map of the output on the region
    b: np.ndarray  # (K,)
    volume: float | None


def brute_force_regions(
    net: Any, lo: Sequence[float], hi: Sequence[float], *, volumes: bool = True
) -> list[BruteRegion]:
    """Every full-dimensional activation region of the net inside the box, by LP tree search.

    The search fixes neurons one at a time, layer by layer. A node is a pattern prefix with its
    polytope P = box ∩ {constraints of the fixed neurons}; on P the input of the current layer is
    affine, a(x) = M x + c, so neuron j's pre-activation is z_j(x) = g·x + g0 with g = (W M)_j and
    g0 = (W c + b)_j. Its two children add z_j ≥ 0 (active) or z_j ≤ 0 (inactive); a child is kept
    iff its Chebyshev radius exceeds MIN_RADIUS · scale, which one LP decides. A neuron whose g
    vanishes (up to FLAT) is constant on P: one child, active iff g0 > 0 beyond its rounding residue.
    After a layer, M ← diag(bits) W M and c ← bits ⊙ (W c + b). The regions are the leaves.
    """
    layers = layers_of(net)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    D = lo.size
    scale = float(np.max(hi - lo))
    min_radius = MIN_RADIUS * scale
    G0 = np.vstack([-np.eye(D), np.eye(D)])
    h0 = np.concatenate([-lo, hi])
    r0, x0 = chebyshev(G0, h0)
    # node: (bits so far, G, h, M, c, a point x of the cell, radius r > 0 of a ball around x in it)
    nodes = [([], G0, h0, np.eye(D), np.zeros(D), x0, r0)]
    for W, b in layers[:-1]:
        grown = []
        for bits, G, h, M, c, x, r in nodes:
            Z, z0 = W @ M, W @ c + b
            children = [(bits, G, h, x, r)]
            for j in range(W.shape[0]):
                g, g0 = Z[j], z0[j]
                norm = float(np.linalg.norm(g))
                flat = norm <= FLAT * float(np.linalg.norm(np.abs(W[j]) @ np.abs(M)))
                nxt = []
                for cb, cG, ch, cx, cr in children:
                    if flat:
                        nxt.append((cb + [bool(g0 > FLAT * (np.abs(W[j]) @ np.abs(c) + abs(b[j])))], cG, ch, cx, cr))
                        continue
                    dist = (g @ cx + g0) / norm  # signed distance of the cell's point to z_j = 0
                    for active in (True, False):
                        row = (-g if active else g) / norm
                        rhs = (g0 if active else -g0) / norm
                        nG, nh = np.vstack([cG, row]), np.append(ch, rhs)
                        if (dist if active else -dist) > min_radius:
                            # the ball of radius min(r, |dist|) around the point lies in this child
                            nxt.append((cb + [active], nG, nh, cx, min(cr, abs(dist))))
                            continue
                        nr, nx = chebyshev(nG, nh)
                        if nr > min_radius:
                            nxt.append((cb + [active], nG, nh, nx, nr))
                children = nxt
            for cb, cG, ch, cx, cr in children:
                mask = np.asarray(cb[len(bits):], dtype=np.float64)
                grown.append((cb, cG, ch, mask[:, None] * Z, mask * z0, cx, cr))
        nodes = grown
    W_out, b_out = layers[-1]
    out = []
    for bits, G, h, M, c, _, _ in nodes:
        radius, center = chebyshev(G, h)
        if radius <= min_radius:  # only possible for a net without hidden neurons and a tiny box
            continue
        out.append(BruteRegion(
            pattern=np.asarray(bits, dtype=bool), G=G, h=h, center=center, radius=radius,
            A=W_out @ M, b=W_out @ c + b_out,
            volume=polytope_volume(G, h, center) if volumes else None,
        ))
    return out


def _crosses_open_box(w: np.ndarray, c: float, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Does {w·x + c = 0} meet the open box? ⇔ w·x + c takes both strict signs on the box's corners."""
    vmin = c + np.sum(np.minimum(w * lo, w * hi))
    vmax = c + np.sum(np.maximum(w * lo, w * hi))
    return bool(vmin < 0 < vmax)


def line_arrangement_count(W: np.ndarray, b: np.ndarray, lo: Sequence[float], hi: Sequence[float]) -> int:
    """Regions cut out of a 2-D box by the lines W_j·x + b_j = 0, by Euler's formula.

    Zero rows are no lines; equal lines (rows proportional with their bias) count once. Adding the
    lines that cross the open box one at a time, a line met inside the box by earlier lines at n
    distinct points is cut into n + 1 segments and adds n + 1 regions, so

        regions = 1 + L + Σ_p (m_p − 1)

    over the crossing points p strictly inside the box, m_p the number of lines through p. For lines
    in general position (every m_p = 2) this is 1 + L + (number of crossings inside the box)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    lines: list[np.ndarray] = []
    for w, c in zip(W, b, strict=True):
        if np.linalg.norm(w) == 0 or not _crosses_open_box(w, c, lo, hi):
            continue
        line = np.append(w, c) / np.linalg.norm(w)
        line *= np.sign(line[np.flatnonzero(np.abs(line[:2]) > 1e-12)[0]])  # fix the sign: same line, same key
        if not any(np.allclose(line, other, rtol=0, atol=1e-12) for other in lines):
            lines.append(line)
    points: list[tuple[np.ndarray, set[int]]] = []  # distinct crossing points and the lines through them
    for i, j in itertools.combinations(range(len(lines)), 2):
        M = np.array([lines[i][:2], lines[j][:2]])
        if abs(np.linalg.det(M)) < 1e-12:
            continue  # parallel
        x = np.linalg.solve(M, -np.array([lines[i][2], lines[j][2]]))
        if not np.all((lo < x) & (x < hi)):
            continue
        for p, through in points:
            if np.allclose(p, x, rtol=0, atol=1e-9 * float(np.max(hi - lo))):
                through.update((i, j))
                break
        else:
            points.append((x, {i, j}))
    return 1 + len(lines) + sum(len(through) - 1 for _, through in points)


def pattern_maps(net: Any, pattern: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Affine maps that a fixed activation pattern induces: every hidden layer's pre-activation
    z_l(x) = Z_l x + z0_l (as a list of (Z_l, z0_l)) and the output f(x) = A x + b, composed exactly as
    a(x) = x, z_l = W_l a + b_l, a ← bits_l ⊙ z_l."""
    layers = layers_of(net)
    D = layers[0][0].shape[1]
    M, c = np.eye(D), np.zeros(D)
    pre, start = [], 0
    for W, b in layers[:-1]:
        Z, z0 = W @ M, W @ c + b
        pre.append((Z, z0))
        bits = np.asarray(pattern[start : start + W.shape[0]], dtype=np.float64)
        start += W.shape[0]
        M, c = bits[:, None] * Z, bits * z0
    W, b = layers[-1]
    return pre, W @ M, W @ c + b


def _flat_meets_open_box(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Does {x : W x + b = 0} meet the open box? max t s.t. W x = −b, lo + t ≤ x ≤ hi − t; t > 0."""
    D = lo.size
    if W.shape[0] == D:
        x = np.linalg.solve(W, -b)
        return bool(np.all((lo < x) & (x < hi)))
    c = np.zeros(D + 1)
    c[-1] = -1.0
    A_ub = np.vstack([np.hstack([-np.eye(D), np.ones((D, 1))]), np.hstack([np.eye(D), np.ones((D, 1))])])
    res = linprog(
        c, A_ub=A_ub, b_ub=np.concatenate([-lo, hi]), A_eq=np.hstack([W, np.zeros((W.shape[0], 1))]),
        b_eq=-b, bounds=[(None, None)] * D + [(None, None)], method="highs",
        options={"primal_feasibility_tolerance": LP_TOLERANCE, "dual_feasibility_tolerance": LP_TOLERANCE},
    )
    return bool(res.status == 0 and -res.fun > MIN_RADIUS * float(np.max(hi - lo)))


def general_position_count(W: np.ndarray, b: np.ndarray, lo: Sequence[float], hi: Sequence[float]) -> int:
    """Regions of the hyperplane arrangement {W_j·x + b_j = 0} inside the open box, hyperplanes in
    general position: Σ_{k=0..D} #{k-subsets whose intersection flat meets the open box}.

    (Zaslavsky's theorem restricted to a convex open set: every flat X of the intersection lattice
    that meets the set contributes |μ(X)|, which is 1 for every flat in general position.)"""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    total = 1
    for k in range(1, lo.size + 1):
        for S in itertools.combinations(range(W.shape[0]), k):
            total += _flat_meets_open_box(W[list(S)], b[list(S)], lo, hi)
    return total


def grid_patterns(net: Any, lo: Sequence[float], hi: Sequence[float], per_axis: int) -> np.ndarray:
    """Distinct activation patterns (bool rows) at the points of a per_axis^D grid in the box.

    The grid is cell-centred and shifted by an irrational fraction of a cell so that it avoids the
    rational hyperplanes of hand-built nets; every pattern seen is a full-dimensional region's almost
    surely, so its size is a lower bound on the region count."""
    layers = layers_of(net)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    t = (np.arange(per_axis) + 0.5 + (np.sqrt(2.0) - 1.0) / 7.0) / per_axis
    axes = [a + (b - a) * t for a, b in zip(lo, hi, strict=True)]
    X = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, lo.size)
    return unique_rows(np.vstack([unique_rows(forward_patterns(layers, chunk))
                                  for chunk in np.array_split(X, max(1, X.shape[0] // 100_000))]))


def unique_rows(P: np.ndarray) -> np.ndarray:
    """Distinct rows of a bool matrix (bits packed into uint64 words, lexicographic sort, run ends)."""
    n, bits = P.shape
    packed = np.packbits(P, axis=1)
    words = np.zeros((n, -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    words[:, : packed.shape[1]] = packed
    words = words.view(np.uint64)
    order = np.lexsort(words.T[::-1])
    sorted_words = words[order]
    first = np.ones(n, dtype=bool)
    first[1:] = np.any(sorted_words[1:] != sorted_words[:-1], axis=1)
    return P[order[first]]


def relu_chain_on_box(net: Any, lo: Sequence[float], hi: Sequence[float]) -> Layers:
    """A plain ReLU chain equal to ``net`` (a ReluNet with ``relu_masks``) on the box [lo, hi].

    A linear unit z of layer l is bounded on the box by interval arithmetic, z ≥ m; it becomes the ReLU
    unit relu(z − m + 1) (positive on the whole box, so it never bounds a region there), and the next
    layer's bias takes back W_{l+1}[:, j]·(m − 1). So on the box the chain equals the net and its
    regions are exactly the net's: the linear-unit version must match it in count, volumes and maps.
    """
    layers = layers_of(net)
    low, high = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    out: Layers = []
    carry = np.zeros(layers[0][0].shape[1])  # the constant to add back to this layer's input
    for index, (W, b) in enumerate(layers):
        b = b + W @ carry
        if index == len(layers) - 1:
            out.append((W, b))
            break
        relu = np.asarray(net.relu_masks[index])
        centre, spread = W @ ((low + high) / 2) + b, np.abs(W) @ ((high - low) / 2)
        z_lo, z_hi = centre - spread, centre + spread
        shift = np.where(relu, 0.0, 1.0 - z_lo)  # linear unit: relu(z + shift) with z + shift ≥ 1
        out.append((W, b + shift))
        carry = -shift
        low = np.where(relu, np.maximum(z_lo, 0.0), z_lo + shift)
        high = np.where(relu, np.maximum(z_hi, 0.0), z_hi + shift)
    return out
