"""Simplicial decomposition of a RegionComplex: every linear region cut into D-simplices.

The constructions of paper_notes §2.6 build one small module per simplex, so the first step is

    h(x) = Σ_m f^{(m)}(x) · 1_{S_m}(x)     almost everywhere on the box,           (JMLR Eq. 20–21)

where the simplices S_m cover every region R without overlap and f^{(m)} = A_R x + b_R is R's affine
map. Each region (a convex polytope given by its vertices and facet hyperplanes) is split by the
*pulling* triangulation: pick the lowest-numbered vertex v of a face F and cone v over a triangulation of
every facet of F not containing v. Recursing down to simplices is exact (no Delaunay, no co-spherical
slivers) and needs only the incidence of vertices with the region's facet hyperplanes, because every
(k−1)-face of a k-face F is F ∩ h for some facet hyperplane h of the region. In 1-D and 2-D it is the fan
from one vertex.

Per-simplex geometry (paper_notes §2.0 step 5): with edge matrix E = [v_1 − v_0, …, v_D − v_0],

    λ_j(x) = (E^{-1}(x − v_0))_j  (j = 1..D),   λ_0(x) = 1 − Σ_{j≥1} λ_j(x)      (barycentric, λ_j = g_j·x + g_j0)
    ℓ̂_j(x) = λ_j(x) / ‖g_j‖      (signed distance to facet j, positive inside)
    r = 1 / Σ_j ‖g_j‖             (inradius),      vol(S) = |det E| / D!
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import factorial

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from quasieq import tolerances
from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.regions.complex import RegionComplex

#: Barycentric coordinates held at once by :meth:`SimplexComplex.evaluate` (2^22 floats = 32 MB).
_BARYCENTRIC_FLOATS = 1 << 22


@dataclass(frozen=True, eq=False)
class SimplexComplex:
    """M simplices with the affine map of the region each came from.

    Attributes
    ----------
    vertices : (M, D+1, D) vertices v_0 … v_D of each simplex.
    A, b : (M, K, D) and (M, K): the affine map f^{(m)}(x) = A[m] x + b[m] on simplex m.
    region : (M,) index (in the source RegionComplex) of the region simplex m lies in; for merged
        regions, the lowest index of the merged group.
    box : the box the complex covers.
    dropped : simplices dropped as slivers (inradius ≤ SIMPLEX_MIN_INRADIUS · box.scale).
    dropped_volume : their total volume (h is not represented there; constructions add it to their
        error bound).
    merged_regions : how many regions were absorbed into a neighbour by ``triangulate(merge=True)``.

    Example
    -------
    >>> sc = SimplexComplex(np.array([[[0., 0.], [1., 0.], [0., 1.]]]), np.zeros((1, 1, 2)),
    ...                     np.ones((1, 1)), np.array([0]), Box.cube(2, 0, 1))
    >>> sc.M, sc.D, sc.K, float(sc.volumes[0])
    (1, 2, 1, 0.5)
    """

    vertices: np.ndarray
    A: np.ndarray
    b: np.ndarray
    region: np.ndarray
    box: Box
    dropped: int = 0
    dropped_volume: float = 0.0
    merged_regions: int = 0

    def __post_init__(self) -> None:
        V = np.array(self.vertices, dtype=np.float64)
        if V.ndim != 3 or V.shape[1] != V.shape[2] + 1:
            raise QuasieqError(f"simplex vertices must have shape (M, D+1, D), got {V.shape}")
        M, _, D = V.shape
        if self.box.dim != D:
            raise QuasieqError(f"simplices live in dimension {D} but the box has dimension {self.box.dim}")
        A = np.array(self.A, dtype=np.float64)
        b = np.array(self.b, dtype=np.float64)
        if A.ndim != 3 or A.shape[0] != M or A.shape[2] != D or b.shape != A.shape[:2]:
            raise QuasieqError(
                f"affine maps must have shapes (M, K, D), (M, K) with M={M}, D={D}; got A {A.shape}, b {b.shape}"
            )
        region = np.array(self.region, dtype=np.int64).reshape(-1)
        if region.shape != (M,):
            raise QuasieqError(f"region must hold one index per simplex ({M}), got shape {region.shape}")
        for name, arr in (("vertices", V), ("A", A), ("b", b), ("region", region)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    # ----- sizes ---------------------------------------------------------------------------------
    @property
    def M(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def D(self) -> int:
        return int(self.vertices.shape[2])

    @property
    def K(self) -> int:
        return int(self.A.shape[1])

    def __len__(self) -> int:
        return self.M

    def __repr__(self) -> str:
        return (
            f"SimplexComplex(M={self.M}, D={self.D}, K={self.K}, dropped={self.dropped}, "
            f"merged_regions={self.merged_regions})"
        )

    # ----- geometry ------------------------------------------------------------------------------
    @cached_property
    def _barycentric_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(g (M, D+1, D), g0 (M, D+1)) with λ_j(x) = g[m, j]·x + g0[m, j].

        Rows 1..D are E^{-1} (translation by v_0 first, for conditioning); row 0 is minus their sum.
        """
        V = self.vertices
        E = np.swapaxes(V[:, 1:, :] - V[:, :1, :], 1, 2)  # (M, D, D), columns v_j - v_0
        Einv = np.linalg.inv(E) if self.M else np.zeros((0, self.D, self.D))
        g = np.concatenate([-Einv.sum(axis=1, keepdims=True), Einv], axis=1)
        g0 = -np.einsum("mjd,md->mj", g, V[:, 0, :])
        g0[:, 0] += 1.0
        return g, g0

    def barycentric(self, X: np.ndarray) -> np.ndarray:
        """Barycentric coordinates λ (N, M, D+1) of points X (N, D) in every simplex.

        x ∈ S_m ⇔ λ[n, m, :] ≥ 0 (they always sum to 1). Memory N·M·(D+1): call on chunks.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        g, g0 = self._barycentric_rows
        return np.einsum("mjd,nd->nmj", g, X) + g0[None]

    def unit_facets(self) -> tuple[np.ndarray, np.ndarray]:
        """(G (M, D+1, D), g0 (M, D+1)): ℓ̂_j(x) = G[m, j]·x + g0[m, j], the signed distance from x to
        the facet of S_m opposite v_j (positive inside); ‖G[m, j]‖ = 1."""
        g, g0 = self._barycentric_rows
        norms = np.linalg.norm(g, axis=2)
        return g / norms[:, :, None], g0 / norms

    @cached_property
    def inradii(self) -> np.ndarray:
        """r_m = 1 / Σ_j ‖g_j‖ (the incentre is at distance r from every facet)."""
        g, _ = self._barycentric_rows
        return 1.0 / np.linalg.norm(g, axis=2).sum(axis=1)

    @cached_property
    def volumes(self) -> np.ndarray:
        """vol(S_m) = |det[v_1 − v_0, …, v_D − v_0]| / D!."""
        V = self.vertices
        E = V[:, 1:, :] - V[:, :1, :]
        return np.abs(np.linalg.det(E)) / factorial(self.D) if self.M else np.zeros(0)

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """h through the simplices (N, K): the map of the first simplex containing x; NaN if none."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        out = np.full((len(X), self.K), np.nan)
        chunk = max(1, _BARYCENTRIC_FLOATS // max(1, self.M * (self.D + 1)))
        for start in range(0, len(X), chunk):
            lam = self.barycentric(X[start : start + chunk]).min(axis=2)  # (n, M)
            inside = lam >= 0.0
            hit = inside.any(axis=1)
            m = inside.argmax(axis=1)[hit]
            rows = np.flatnonzero(hit) + start
            out[rows] = np.einsum("nkd,nd->nk", self.A[m], X[rows]) + self.b[m]
        return out


# ----- triangulation ---------------------------------------------------------------------------
def _affine_dim(points: np.ndarray, tol: float) -> int:
    """Dimension of the affine hull of ``points`` (rows): singular values of the centred set > tol."""
    if len(points) <= 1:
        return 0
    s = np.linalg.svd(points[1:] - points[0], compute_uv=False)
    return int(np.count_nonzero(s > tol))


def _pull(face: np.ndarray, k: int, V: np.ndarray, incidence: np.ndarray, tol: float) -> list[tuple[int, ...]]:
    """Pulling triangulation of the k-face spanned by vertex indices ``face`` (sorted).

    Cone the apex v = face[0] over the triangulation of every facet of the face that misses v; the
    facets are the sets face ∩ h (h a facet hyperplane of the polytope) of affine dimension k − 1.
    """
    if len(face) == k + 1:
        return [tuple(int(i) for i in face)]
    if k == 0:  # copies of one point (vertices closer than the tolerance): keep the first
        return [(int(face[0]),)]
    apex = face[0]
    seen: set[bytes] = set()
    out: list[tuple[int, ...]] = []
    for row in incidence:
        if row[apex]:
            continue
        sub = face[row[face]]
        if len(sub) < k:
            continue
        key = sub.tobytes()
        if key in seen:
            continue
        seen.add(key)
        if _affine_dim(V[sub], tol) != k - 1:
            continue
        out.extend((int(apex), *s) for s in _pull(sub, k - 1, V, incidence, tol))
    return out


def triangulate_polytope(vertices: np.ndarray, normals: np.ndarray, rhs: np.ndarray, scale: float) -> np.ndarray:
    """Split the full-dimensional polytope {x : normals·x ≤ rhs} with the given vertices into
    D-simplices (pulling triangulation); returns vertex-index tuples (n_simplices, D+1).

    ``normals`` must be unit rows; a vertex lies on hyperplane i when |normals_i·v − rhs_i| ≤
    ON_HYPERPLANE·scale. Redundant hyperplanes are harmless (they meet the polytope in lower-dimensional
    faces, which are skipped).
    """
    V = np.asarray(vertices, dtype=np.float64)
    D = V.shape[1]
    if len(V) < D + 1 or _affine_dim(V, tolerances.FACE_RANK * scale) != D:
        raise QuasieqError(f"polytope with {len(V)} vertices does not span dimension {D}: cannot triangulate")
    incidence = np.abs(normals @ V.T - rhs[:, None]) <= tolerances.ON_HYPERPLANE * scale
    simplices = _pull(np.arange(len(V)), D, V, incidence, tolerances.FACE_RANK * scale)
    return np.array(simplices, dtype=np.int64).reshape(-1, D + 1)


def _hull(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Convex hull of points: (vertices, unit normals, rhs with normals·x ≤ rhs, volume)."""
    if points.shape[1] == 1:
        lo, hi = float(points.min()), float(points.max())
        return np.array([[lo], [hi]]), np.array([[-1.0], [1.0]]), np.array([-lo, hi]), hi - lo
    hull = ConvexHull(points)
    return points[hull.vertices], hull.equations[:, :-1], -hull.equations[:, -1], float(hull.volume)


def affine_equal(A1: np.ndarray, b1: np.ndarray, A2: np.ndarray, b2: np.ndarray, s: float) -> bool:
    """tolerances.AFFINE_EQUAL test between two affine maps (A, b)."""
    diff = np.abs(A1 - A2).max(initial=0.0) * s + np.abs(b1 - b2).max(initial=0.0)
    return diff <= tolerances.AFFINE_EQUAL * (1.0 + np.abs(A1).max(initial=0.0) * s + np.abs(b1).max(initial=0.0))


def merge_convex_groups(cx: RegionComplex, A: np.ndarray | None = None, b: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Greedily merge neighbouring regions with equal affine maps while the union stays convex.

    ``A`` (R, ...) and ``b`` (R, ...) are the maps compared (tolerances.AFFINE_EQUAL); by default all
    outputs' maps ``cx.A``, ``cx.b``; one output's ``cx.A[:, k]``, ``cx.b[:, k]`` merges more.
    Returns the group root of every region and, for each merged root, its polytope (vertices,
    normals, rhs) from the convex hull. The union of two convex groups is convex iff the hull of
    their vertices has the volume of the union (MERGE_CONVEX_RELATIVE). Non-convex unions are never
    formed: the lattice form (construct/lattice.py) needs convex pieces.
    """
    A = cx.A if A is None else A
    b = cx.b if b is None else b
    s = cx.box.scale
    n = len(cx)
    root = np.arange(n)
    volume = np.array(cx.volumes, dtype=np.float64)
    points = {i: cx[i].vertices for i in range(n)}
    merged: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = int(root[i])
        return i

    for i in range(n):
        for j in cx[i].neighbours:
            j = int(j)
            if j <= i or not affine_equal(A[i], b[i], A[j], b[j], s):
                continue
            ri, rj = find(i), find(j)
            if ri == rj:
                continue
            union = np.concatenate([points[ri], points[rj]])
            try:
                hv, hn, ho, hvol = _hull(union)
            except QhullError:  # qhull cannot decide a nearly degenerate union: do not merge it
                continue
            total = volume[ri] + volume[rj]
            if abs(hvol - total) > tolerances.MERGE_CONVEX_RELATIVE * total:
                continue
            keep, gone = min(ri, rj), max(ri, rj)
            root[gone] = keep
            volume[keep] = total
            points[keep] = hv
            merged[keep] = (hv, hn, ho)
            merged.pop(gone, None)
    return np.array([find(i) for i in range(n)]), merged


def triangulate(cx: RegionComplex, *, merge: bool = False) -> SimplexComplex:
    """Split every region of ``cx`` into D-simplices that cover it without overlap.

    With ``merge=True``, neighbouring regions with equal affine maps (tolerances.AFFINE_EQUAL) are first
    merged wherever their union stays convex, and the merged polytopes (vertices = vertices of the
    convex hull) are triangulated instead: fewer simplices, same function. Simplices thinner than
    SIMPLEX_MIN_INRADIUS·scale are dropped and counted (``dropped``, ``dropped_volume``). The number of
    simplices used, M_used = ``len(result)``, is any valid triangulation's size (the minimum, the
    paper's M, is NP-hard to find), so M_used ≥ M.

    Example
    -------
    >>> sc = triangulate(qe.regions(net, box), merge=True)        # doctest: +SKIP
    >>> sc.M, sc.volumes.sum(), box.volume                         # doctest: +SKIP
    """
    D, s = cx.dim, cx.box.scale
    if len(cx) and len(cx[0].vertices) == 0:
        raise QuasieqError(
            f"regions carry no vertices in dimension {D} (above EXACT_VOLUME_MAX_DIM="
            f"{tolerances.EXACT_VOLUME_MAX_DIM}): simplicial decomposition is not available"
        )
    if merge:
        roots, merged = merge_convex_groups(cx)
    else:
        roots, merged = np.arange(len(cx)), {}
    all_vertices, all_region = [], []
    for root in np.flatnonzero(roots == np.arange(len(cx))):
        i = int(root)
        if i in merged:
            V, normals, rhs = merged[i]
        else:
            r = cx[i]
            V, normals, rhs = r.vertices, r.facet_normals, r.facet_rhs
        idx = triangulate_polytope(V, normals, rhs, s)
        all_vertices.append(V[idx])
        all_region.append(np.full(len(idx), i, dtype=np.int64))
    vertices = np.concatenate(all_vertices) if all_vertices else np.zeros((0, D + 1, D))
    region = np.concatenate(all_region) if all_region else np.zeros(0, dtype=np.int64)
    full = SimplexComplex(vertices, cx.A[region], cx.b[region], region, cx.box)
    keep = full.inradii > tolerances.SIMPLEX_MIN_INRADIUS * s
    n_merged = int(len(cx) - np.count_nonzero(roots == np.arange(len(cx))))
    return SimplexComplex(
        vertices[keep], cx.A[region[keep]], cx.b[region[keep]], region[keep], cx.box,
        dropped=int(np.count_nonzero(~keep)),
        dropped_volume=float(full.volumes[~keep].sum()),
        merged_regions=n_merged,
    )
