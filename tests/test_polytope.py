"""The polytope kernels of regions/polytope.py: exact volumes against closed forms and qhull, and the
engine's regions in 3-D to 5-D (where these kernels give the volumes) against the LP brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial import ConvexHull, QhullError

import oracles as O
import quasieq as qe
from quasieq.regions.polytope import face_volume, new_face_table, polytope_volume, region_facts, set_bit
from test_regions import check_against_brute_force, check_all, make_net, random_layers


def _v_form(V: np.ndarray, normals: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Incidence bitsets of vertices V on the constraints n·x ≤ c (constraint c has id c)."""
    words = (normals.shape[0] + 63) // 64
    inc = np.zeros((V.shape[0], words), dtype=np.uint64)
    on = np.abs(V @ normals.T - rhs) <= 1e-12
    for v, c in zip(*np.nonzero(on), strict=True):
        set_bit(inc[v], int(c))
    return inc, np.arange(normals.shape[0], dtype=np.int64)


def _volume(V, normals, rhs) -> float:
    inc, ids = _v_form(V, normals, rhs)
    return polytope_volume(V, inc, ids, normals, rhs)


@pytest.mark.parametrize("D", [1, 2, 3, 4, 5, 6])
def test_cross_polytope_volume(D):
    """{x : Σ|x_i| ≤ 1}: 2D vertices ±e_i, 2^D simplex facets, every vertex on 2^(D−1) of them (far
    from simple); volume 2^D / D!."""
    V = np.vstack([np.eye(D), -np.eye(D)])
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=D)))
    normals = signs / np.sqrt(D)
    rhs = np.full(len(signs), 1.0 / np.sqrt(D))
    assert _volume(V, normals, rhs) == pytest.approx(2.0**D / math.factorial(D), rel=1e-12)


@pytest.mark.parametrize("D", [2, 3, 4, 5, 6])
def test_cube_cut_through_vertices(D):
    """The cube [0, 1]^D cut by x_1 + … + x_D ≤ 1 (through D of its vertices): the corner simplex,
    volume 1/D!, with the cube's facets through the origin kept and the others no longer facets."""
    V = np.vstack([np.zeros(D), np.eye(D)])
    normals = np.vstack([-np.eye(D), np.ones((1, D)) / np.sqrt(D)])
    rhs = np.r_[np.zeros(D), 1.0 / np.sqrt(D)]
    assert _volume(V, normals, rhs) == pytest.approx(1.0 / math.factorial(D), rel=1e-12)


@pytest.mark.parametrize("D", [2, 3, 4, 5])
def test_polygon_prism_volume(D):
    """A random convex heptagon (one vertex given twice, as coinciding vertices come out of a split)
    times [0, 1]^(D−2): its 2-faces are the heptagon's copies, whose areas the volume takes from the
    shoelace formula in their plane; the volume equals qhull's area of the heptagon."""
    rng = np.random.default_rng(D)
    angles = np.sort(rng.uniform(0.0, 2 * np.pi, 7))
    polygon = np.c_[np.cos(angles), 0.5 * np.sin(angles)] * rng.uniform(0.5, 2.0)
    polygon = np.vstack([polygon, polygon[3]])
    edges = np.roll(polygon[:7], -1, axis=0) - polygon[:7]
    outward = np.c_[edges[:, 1], -edges[:, 0]] / np.linalg.norm(edges, axis=1)[:, None]
    cube = np.array(list(itertools.product([0.0, 1.0], repeat=D - 2))).reshape(2 ** (D - 2), D - 2)
    V = np.array([np.r_[p, c] for p in polygon for c in cube])
    normals = np.vstack([np.c_[outward, np.zeros((7, D - 2))],
                         np.hstack([np.zeros((2 * (D - 2), 2)), np.kron(np.eye(D - 2), [[-1.0], [1.0]])])])
    rhs = np.r_[np.einsum("ij,ij->i", outward, polygon[:7]), np.tile([0.0, 1.0], D - 2)]
    assert _volume(V, normals, rhs) == pytest.approx(ConvexHull(polygon).volume, rel=1e-12)


def _hull_polytope(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, unit normals, offsets) of qhull's hull of ``points`` (n·x ≤ c per facet)."""
    hull = ConvexHull(points)
    scale = np.linalg.norm(hull.equations[:, :-1], axis=1)
    return points[hull.vertices], hull.equations[:, :-1] / scale[:, None], -hull.equations[:, -1] / scale


@pytest.mark.parametrize("D", [3, 4, 5, 6])
def test_hull_volumes_thin_and_many_vertices(D):
    """Hulls of random points, some squashed to a thousandth along one axis (facet normals nearly in a
    face's normal space: the lengths taken by Gram–Schmidt, tolerances.PROJECTION_CANCELLATION) and
    one of 70–100 points on a sphere (two-word bitsets): the volume equals qhull's; one face table
    shared by all of them in :func:`region_facts`, or a one-face table grown on the way
    (:func:`face_volume`), gives bitwise the volume of a table of its own."""
    rng = np.random.default_rng(D)
    shapes = [rng.normal(size=(3 * D, D)) for _ in range(4)]
    shapes += [rng.normal(size=(3 * D, D)) * np.r_[np.ones(D - 1), 1e-3] for _ in range(4)]
    sphere = rng.normal(size=(100 if D == 3 else 70, D))
    shapes.append(sphere / np.linalg.norm(sphere, axis=1)[:, None])
    polytopes = [_hull_polytope(points) for points in shapes]
    alone = []
    for V, normals, rhs in polytopes:
        inc, ids = _v_form(V, normals, rhs)
        volume = polytope_volume(V, inc, ids, normals, rhs)
        assert volume == pytest.approx(ConvexHull(V).volume, rel=1e-10, abs=0.0)
        assert face_volume(V, inc, ids, normals, rhs, new_face_table(D, 1, 1))[0] == volume
        alone.append(volume)
    assert max(V.shape[0] for V, _, _ in polytopes) > 64
    incs = [_v_form(V, normals, rhs)[0] for V, normals, rhs in polytopes]
    words = max(inc.shape[1] for inc in incs)
    inc = np.vstack([np.pad(i, ((0, 0), (0, words - i.shape[1]))) for i in incs])
    voff = np.cumsum([0] + [V.shape[0] for V, _, _ in polytopes])
    coff = np.cumsum([0] + [n.shape[0] for _, n, _ in polytopes])
    ids = np.concatenate([np.arange(n.shape[0]) for _, n, _ in polytopes])
    shared = region_facts(np.vstack([V for V, _, _ in polytopes]), inc, voff, ids,
                          np.vstack([n for _, n, _ in polytopes]), np.concatenate([c for _, _, c in polytopes]),
                          coff, True)[0]
    assert shared.tolist() == alone


@pytest.mark.parametrize("arch", ["3-12-12-1", "4-8-8-8-1", "5-8-8-1", "6-6-6-1"])
def test_region_volumes_match_qhull(arch):
    """Every region of a seeded fan-in net: the engine's volume equals qhull's hull of its vertices
    (to 1e-10). Qhull gives up with a precision error on a few very degenerate regions (6-6-6-1 has
    one with 147 vertices and 17 facets); those are checked against its joggled hull ('QJ', which
    moves every point by ~1e-11 of the width, so to 1e-6), and they must stay few."""
    net = O.seeded_relu_net(arch, init="fanin")
    cx = qe.regions(net, qe.Box.cube(net.in_dim))
    joggled = []
    for r in range(len(cx)):
        try:
            hull = ConvexHull(cx[r].vertices).volume
        except QhullError:
            joggled.append(r)
            assert cx.volumes[r] == pytest.approx(ConvexHull(cx[r].vertices, qhull_options="QJ").volume, rel=1e-6)
        else:
            assert cx.volumes[r] == pytest.approx(hull, rel=1e-10, abs=0.0)
    assert len(joggled) <= max(1, len(cx) // 100)


@pytest.mark.parametrize(("D", "integer", "seed"), [(3, False, 0), (3, True, 1), (4, False, 2), (4, True, 3),
                                                    (5, False, 4), (5, True, 5)])
def test_random_nets_3d_to_5d_match_brute_force(D, integer, seed):
    """Random two-layer nets, Gaussian (generic) or small-integer (parallel, equal, zero and concurrent
    hyperplanes, hyperplanes through vertices), against the LP brute force and qhull's volumes."""
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, D, [5, 4], integer)
    lo, hi = -np.ones(D), np.ones(D)
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    check_against_brute_force(cx, layers, lo, hi)
    check_all(cx, layers, generic=not integer)


def _edges_by_definition(inc: np.ndarray) -> set[tuple[int, int]]:
    """Vertex pairs (u, v) whose smallest common face {w : I[w] ⊇ I[u] ∩ I[v]} is {u, v}: the edges,
    straight from the definition (numpy, every vertex against every pair)."""
    edges = set()
    for u, v in itertools.combinations(range(inc.shape[0]), 2):
        common = inc[u] & inc[v]
        if ((inc & common) == common).all(axis=1).sum() == 2:
            edges.add((u, v))
    return edges


def _region_polytopes(arch_layers, D):
    """(V, inc) of every region of a net on [-1, 1]^D, incidence on the region's facets."""
    cx = qe.regions(make_net(arch_layers), qe.Box.cube(D))
    for r in range(len(cx)):
        region = cx[r]
        inc, _ = _v_form(region.vertices, region.facet_normals, region.facet_rhs)
        yield region.vertices, inc


@pytest.mark.parametrize(("D", "integer", "seed"), [(1, True, 7), (3, False, 0), (3, True, 1), (4, True, 3),
                                                    (5, True, 5), (5, False, 6)])
def test_crossing_edges_match_the_definition(D, integer, seed):
    """The splitter's crossing edges (splitting._crossings: AND of the hyperplanes' vertex sets) are
    exactly the edges by definition that join a vertex beyond +tol to one beyond −tol, on every region
    of random nets (small-integer ones: many vertices on more than D facets) cut by a generic
    hyperplane and by one through a vertex; the plan interpolates each at the hyperplane."""
    from quasieq.regions.splitting import _crossings

    rng = np.random.default_rng(seed)
    layers = random_layers(rng, D, [5, 4], integer)
    checked = 0
    for V, inc in _region_polytopes(layers, D):
        edges = _edges_by_definition(inc)
        normal = rng.normal(size=D)
        for offset in (float(normal @ V.mean(axis=0)), float(normal @ V[0])):  # generic; through vertex 0
            d = V @ normal - offset
            us, vs, ts, side = _crossings(V, inc, d, 1e-12)
            plan = {(int(u), int(v)) for u, v in zip(us, vs, strict=True) if v >= 0}
            crossing = [(u, v) for u, v in edges if d[u] * d[v] < 0 and min(abs(d[u]), abs(d[v])) > 1e-12]
            want = {(u, v) if d[u] > 0 else (v, u) for u, v in crossing}
            assert plan == want
            assert (us[vs < 0] == np.arange(V.shape[0])).all() and (side[vs >= 0] == 0).all()
            for u, v, t in zip(us[vs >= 0], vs[vs >= 0], ts[vs >= 0], strict=True):
                assert abs((V[u] + t * (V[v] - V[u])) @ normal - offset) <= 1e-12 * (1 + abs(offset))
            checked += len(want)
    assert checked > (3 if D == 1 else 20)  # 1-D: a few segments
