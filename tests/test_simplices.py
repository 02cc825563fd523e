"""Simplicial decomposition: cover without overlap, exact volumes, correct per-simplex geometry.

Oracles: qhull (scipy ConvexHull / Delaunay) for hull volumes and point-in-polytope, the net's own
forward pass for the affine maps, and closed-form simplex facts (r = D·vol / surface area).
"""

from __future__ import annotations

from math import factorial

import numpy as np
import pytest
from scipy.spatial import ConvexHull, Delaunay

import quasieq as qe
from oracles import seeded_relu_net
from quasieq import tolerances
from quasieq.geometry import SimplexComplex, triangulate, triangulate_polytope
from quasieq.regions.complex import RegionComplex


def _cover_counts(sc: SimplexComplex, X: np.ndarray) -> np.ndarray:
    """How many simplices contain each point (barycentric coordinates all ≥ 0)."""
    return (sc.barycentric(X).min(axis=2) >= 0.0).sum(axis=1)


def _complex_from_polytope(V: np.ndarray, idx: np.ndarray, box: qe.Box) -> SimplexComplex:
    M, D = len(idx), V.shape[1]
    return SimplexComplex(V[idx], np.zeros((M, 1, D)), np.zeros((M, 1)), np.zeros(M, dtype=int), box)


@pytest.mark.parametrize("D", [2, 3, 4])
def test_pulling_triangulation_of_random_polytopes(D):
    rng = np.random.default_rng(D)
    P = rng.normal(size=(25, D))
    hull = ConvexHull(P)
    V = P[hull.vertices]
    idx = triangulate_polytope(V, hull.equations[:, :-1], -hull.equations[:, -1], scale=1.0)
    sc = _complex_from_polytope(V, idx, qe.Box.cube(D, -10, 10))
    assert sc.volumes.sum() == pytest.approx(hull.volume, rel=tolerances.VOLUME_SUM_RELATIVE)
    X = rng.normal(size=(4000, D)) * 1.5
    inside = Delaunay(V).find_simplex(X) >= 0  # qhull's own point location
    counts = _cover_counts(sc, X)
    assert np.all(counts[inside] == 1) and np.all(counts[~inside] == 0)


def test_redundant_hyperplanes_are_harmless():
    """The unit cube with an extra constraint touching it only along an edge (x + y ≤ 2)."""
    V = qe.Box.cube(3, 0, 1).vertices()
    normals = np.vstack([-np.eye(3), np.eye(3), [[1 / np.sqrt(2), 1 / np.sqrt(2), 0]]])
    offsets = np.r_[np.zeros(3), np.ones(3), np.sqrt(2)]
    idx = triangulate_polytope(V, normals, offsets, scale=1.0)
    sc = _complex_from_polytope(V, idx, qe.Box.cube(3, 0, 1))
    assert sc.volumes.sum() == pytest.approx(1.0, rel=1e-12)
    X = np.random.default_rng(0).random((3000, 3))
    assert np.all(_cover_counts(sc, X) == 1)


def test_unit_facets_inradius_and_barycentric_against_closed_forms():
    rng = np.random.default_rng(3)
    D = 3
    V = rng.normal(size=(5, D + 1, D))
    sc = SimplexComplex(V, np.zeros((5, 1, D)), np.zeros((5, 1)), np.arange(5), qe.Box.cube(D, -5, 5))
    G, g0 = sc.unit_facets()
    assert np.allclose(np.linalg.norm(G, axis=2), 1.0)
    for m in range(5):
        for j in range(D + 1):
            others = np.delete(V[m], j, axis=0)
            # ℓ̂_j vanishes on the facet opposite v_j and equals the distance of v_j to it
            assert np.allclose(others @ G[m, j] + g0[m, j], 0.0, atol=1e-12)
            edges = others[1:] - others[0]
            normal = np.linalg.svd(edges)[2][-1]
            assert G[m, j] @ V[m, j] + g0[m, j] == pytest.approx(abs(normal @ (V[m, j] - others[0])), rel=1e-10)
        # r = D·vol / (sum of facet areas); facet area = sqrt(det Gram)/(D-1)!
        areas = []
        for j in range(D + 1):
            E = np.delete(V[m], j, axis=0)
            E = E[1:] - E[0]
            areas.append(np.sqrt(np.linalg.det(E @ E.T)) / factorial(D - 1))
        vol = abs(np.linalg.det(V[m, 1:] - V[m, 0])) / factorial(D)
        assert sc.volumes[m] == pytest.approx(vol, rel=1e-12)
        assert sc.inradii[m] == pytest.approx(D * vol / sum(areas), rel=1e-10)
    X = rng.normal(size=(50, D))
    lam = sc.barycentric(X)
    assert np.allclose(lam.sum(axis=2), 1.0)
    assert np.allclose(np.einsum("nmj,mjd->nmd", lam, V), X[:, None, :])  # x = Σ λ_j v_j


@pytest.mark.parametrize("arch,merge", [("2-16-16-2", False), ("2-16-16-2", True), ("3-10-10-1", True)])
def test_triangulated_regions_cover_the_box(arch, merge):
    net = seeded_relu_net(arch)
    box = qe.Box(np.linspace(-1.0, -0.5, net.in_dim), np.linspace(0.7, 1.3, net.in_dim))
    cx = qe.regions(net, box)
    sc = triangulate(cx, merge=merge)
    assert sc.dropped == 0
    assert sc.volumes.sum() == pytest.approx(box.volume, rel=tolerances.VOLUME_SUM_RELATIVE)
    if not merge:  # each region's simplices add up to the region's hull volume (qhull)
        per_region = np.bincount(sc.region, weights=sc.volumes, minlength=len(cx))
        hulls = np.array([ConvexHull(r.vertices).volume for r in cx])
        assert np.allclose(per_region, hulls, rtol=1e-9, atol=0)
    X = box.sample(3000, np.random.default_rng(1))
    assert np.all(_cover_counts(sc, X) == 1)  # no overlap, no gap (boundaries have measure 0)
    assert np.allclose(sc.evaluate(X), net(X), atol=1e-12)  # every simplex carries the net's map


def test_merge_joins_equal_maps_into_convex_unions():
    """Neurons with zero output weight cut regions without changing the map: merging removes them."""
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
    b1 = np.array([0.0, 0.0, -0.5, -0.3, 0.2])
    net = qe.ReluNet([W1, np.array([[1.0, 1.0, 0.0, 0.0, 0.0]])], [b1, np.zeros(1)])
    box = qe.Box.cube(2, -1, 1)
    cx = qe.regions(net, box)
    plain, merged = triangulate(cx), triangulate(cx, merge=True)
    assert merged.merged_regions > 0 and merged.M < plain.M
    # f = relu(x) + relu(y) has exactly four pieces (the quadrants); the fan of a quadrant is 2 triangles
    assert len(cx) - merged.merged_regions == 4 and merged.M == 8
    assert merged.volumes.sum() == pytest.approx(box.volume, rel=1e-12)
    X = box.sample(3000, np.random.default_rng(2))
    assert np.all(_cover_counts(merged, X) == 1)
    assert np.allclose(merged.evaluate(X), net(X), atol=1e-12)


def test_merge_refuses_non_convex_unions():
    """f = min(relu(x), relu(y)) is 0 on the L-shaped complement of the first quadrant (three quadrant
    regions): two of them may merge into a half-plane, never all three."""
    net = qe.ReluNet(
        [np.eye(2), np.array([[1.0, 0.0], [1.0, -1.0]]), np.array([[1.0, -1.0]])],
        [np.zeros(2), np.zeros(2), np.zeros(1)],
    )
    box = qe.Box.cube(2, -1, 1)
    cx = qe.regions(net, box)
    merged = triangulate(cx, merge=True)
    zero = [i for i in range(len(cx)) if np.all(cx.A[i] == 0) and np.all(cx.b[i] == 0)]
    assert len(zero) == 3 and merged.merged_regions == 1
    X = box.sample(4000, np.random.default_rng(3))
    assert np.all(_cover_counts(merged, X) == 1)
    assert np.allclose(merged.evaluate(X), net(X), atol=1e-12)
    assert merged.volumes.sum() == pytest.approx(box.volume, rel=1e-12)


def _polygon_complex(V: np.ndarray, box: qe.Box) -> RegionComplex:
    """A one-region complex for the convex polygon with counter-clockwise vertices V (f = 2x − y + 0.5)."""
    edges = np.roll(V, -1, axis=0) - V
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    n = len(V)
    net = qe.ReluNet([np.array([[2.0, -1.0]])], [np.array([0.5])])
    return RegionComplex(
        net, box, patterns=np.zeros((1, 0), dtype=bool), vertices=V, vertex_indptr=np.array([0, n]),
        facet_normals=normals, facet_rhs=np.einsum("fd,fd->f", normals, V), facet_sources=-np.ones(n, dtype=int),
        facet_indptr=np.array([0, n]), neighbours=-np.ones(n, dtype=int),
        interior_points=V.mean(axis=0, keepdims=True), radii=np.array([0.1]), A=np.array([[[2.0, -1.0]]]),
        b=np.array([[0.5]]), volumes=np.array([ConvexHull(V).volume]),
    )


def test_slivers_are_dropped_and_counted():
    """A vertex 3e-9 below the segment joining its neighbours: the fan's triangle over it is a sliver."""
    box = qe.Box.cube(2, -1, 1)
    V = np.array([[-1.0, -0.5], [0.0, -0.5 - 3e-9], [1.0, -0.5], [1.0, 1.0], [-1.0, 1.0]])
    cx = _polygon_complex(V, box)
    sc = triangulate(cx)
    assert sc.dropped == 1
    assert np.all(sc.inradii > tolerances.SIMPLEX_MIN_INRADIUS * box.scale)
    assert sc.volumes.sum() + sc.dropped_volume == pytest.approx(ConvexHull(V).volume, rel=1e-12)
    assert sc.dropped_volume == pytest.approx(3e-9, rel=1e-3)


def test_near_duplicate_vertices_collapse():
    """Two copies of a corner closer than the vertex tolerance give no gap and no sliver."""
    box = qe.Box.cube(2, -1, 1)
    V = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0 - 1e-13], [1.0, 1.0], [-1.0, 1.0]])
    cx = _polygon_complex(V[[0, 1, 3, 4]], box)
    cx.vertices_flat = V  # the corner listed twice
    cx.vertex_indptr = np.array([0, 5])
    sc = triangulate(cx)
    assert sc.dropped == 0 and sc.volumes.sum() == pytest.approx(4.0, rel=1e-12)
    X = box.sample(2000, np.random.default_rng(4))
    assert np.all(_cover_counts(sc, X) == 1)
