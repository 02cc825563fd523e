"""The exact region engine ``qe.regions`` checked against independent computations (tests/oracles.py).

Every property is compared with something the engine does not compute itself: an LP brute force over
activation patterns, Euler's formula for line arrangements, a general-position flat count, forward
passes of the net, affine maps composed by hand from a pattern, dense grids (a lower bound), and
region counts published by other exact tools (benchmarks/nets.py, GOLDEN_REGION_COUNTS).
"""

from __future__ import annotations

import functools
import json
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracles as O
import quasieq as qe
from quasieq import tolerances as tol
from quasieq.regions.complex import RegionComplex

# ----------------------------------------------------------------------------------------------------
# helpers: nets, and the checks every complex must pass
# ----------------------------------------------------------------------------------------------------


def make_net(layers) -> qe.ReluNet:
    return qe.ReluNet([np.asarray(W, dtype=float) for W, _ in layers], [np.asarray(b, dtype=float) for _, b in layers])


def cube(D: int) -> tuple[np.ndarray, np.ndarray]:
    return -np.ones(D), np.ones(D)


@functools.cache
def seeded_complex(arch: str) -> tuple[qe.ReluNet, RegionComplex]:
    net = O.seeded_relu_net(arch)
    return net, qe.regions(net, qe.Box.cube(net.in_dim))


def random_layers(rng: np.random.Generator, D: int, widths: list[int], integer: bool) -> list:
    """Gaussian layers (generic position), or small-integer ones (parallel, equal, concurrent and zero
    hyperplanes, hyperplanes through box corners: every degeneracy at once)."""
    sizes = [D, *widths, 1]
    layers = []
    for fan_in, fan_out in pairwise(sizes):
        if integer:
            W = rng.integers(-2, 3, (fan_out, fan_in)).astype(float)
            layers.append((W, rng.integers(-1, 2, fan_out).astype(float)))
        else:
            layers.append((rng.normal(size=(fan_out, fan_in)), 0.5 * rng.normal(size=fan_out)))
    return layers


#: Relative size of the rounding residue of an exactly-zero pre-activation (see O.forward_patterns):
#: a few ulps of the summed terms, far below any pre-activation at a point 1e-7·s off a facet.
ROUNDING_NOISE = 1e-12


def affine_tolerance(A: np.ndarray, b: np.ndarray, scale: float) -> float:
    """tolerances.AFFINE_EQUAL's yardstick: AFFINE_EQUAL · (1 + max|A|·s + max|b|)."""
    return tol.AFFINE_EQUAL * (1.0 + np.abs(A).max() * scale + np.abs(b).max())


def check_volumes(cx: RegionComplex) -> None:
    """Region volumes are positive and add up to the box volume."""
    assert np.all(cx.volumes > 0)
    assert cx.volume_total == pytest.approx(cx.box.volume, rel=tol.VOLUME_SUM_RELATIVE)


def check_affine_maps(cx: RegionComplex, layers) -> None:
    """A_R x + b_R equals the forward pass at the interior point and at every vertex of R, and (A_R, b_R)
    equals the map composed by hand from R's pattern."""
    s = cx.box.scale
    for r in cx:
        pts = np.vstack([r.interior_point, r.vertices])
        _, A, b = O.pattern_maps(layers, r.pattern)
        t = affine_tolerance(A, b, s)
        np.testing.assert_allclose(pts @ r.A.T + r.b, O.forward(layers, pts), rtol=0, atol=t)
        np.testing.assert_allclose(r.A, A, rtol=0, atol=t / s)
        np.testing.assert_allclose(r.b, b, rtol=0, atol=t)


def check_geometry(cx: RegionComplex, layers) -> None:
    """Interior point, radius, vertices, facets of every region against forward passes and geometry:

    * the interior point is ≥ radius (> 0) from every facet, and its forward pattern is R's pattern;
    * facet normals are unit; every vertex satisfies every facet inequality;
    * every facet is non-redundant: its vertices span a (D−1)-dimensional affine subspace;
    * a box facet is that face of the box; a neuron facet lies on that neuron's zero set (forward
      pre-activation ≈ 0 at its vertices) and, where the neuron is not constant on R, equals the
      half-space the pattern bit asks for (z ≥ 0 if active, z ≤ 0 if not), composed by hand.
    """
    D, s = cx.dim, cx.box.scale
    on = tol.ON_HYPERPLANE * s
    for r in cx:
        assert r.radius > 0
        assert np.all(r.facet_rhs - r.facet_normals @ r.interior_point >= r.radius - on)
        np.testing.assert_array_equal(O.forward_patterns(layers, r.interior_point, ROUNDING_NOISE)[0], r.pattern)
        np.testing.assert_allclose(np.linalg.norm(r.facet_normals, axis=1), 1.0, rtol=0, atol=1e-12)
        assert np.all(r.vertices @ r.facet_normals.T <= r.facet_rhs + on)
        pre, _, _ = O.pattern_maps(layers, r.pattern)
        Z = np.vstack([z for z, _ in pre])
        z0 = np.concatenate([z for _, z in pre])
        z_vertices = np.concatenate(O.pre_activations(layers, r.vertices), axis=1)
        for n, c, src in zip(r.facet_normals, r.facet_rhs, r.facet_sources, strict=True):
            on_facet = r.vertices[np.abs(r.vertices @ n - c) <= on]
            centred = on_facet - on_facet.mean(axis=0)
            rank = int(np.sum(np.linalg.svd(centred, compute_uv=False) > tol.FACE_RANK * s)) if D > 1 else 0
            assert len(on_facet) >= D and rank == D - 1, f"region {r.index}: redundant facet (source {src})"
            if src < 0:
                face = -src - 1
                axis, upper = face // 2, face % 2 == 1
                expected = np.eye(D)[axis] * (1.0 if upper else -1.0)
                np.testing.assert_allclose(n, expected, atol=1e-12)
                assert c == pytest.approx(cx.box.hi[axis] if upper else -cx.box.lo[axis], abs=on)
                continue
            z_here = z_vertices[np.abs(r.vertices @ n - c) <= on, src]
            assert np.all(np.abs(z_here) <= 1e-8 * max(np.abs(z_vertices[:, src]).max(), 1e-300))
            g, g0 = Z[src], z0[src]
            if np.linalg.norm(g) > 1e-9 * np.abs(Z).max():
                sign = -1.0 if r.pattern[src] else 1.0
                np.testing.assert_allclose(n, sign * g / np.linalg.norm(g), atol=1e-9)
                assert c == pytest.approx(-sign * g0 / np.linalg.norm(g), abs=on)


def check_neighbours(cx: RegionComplex, layers, generic: bool) -> None:
    """Across a neuron facet of R lies R' ≠ R whose pattern differs in that neuron (only in that neuron
    for nets in general position); R' has the same facet, oppositely oriented, with R as its neighbour;
    and a point just across the facet's centroid falls in R' by the forward pass."""
    s = cx.box.scale
    on = tol.ON_HYPERPLANE * s
    for r in cx:
        for n, c, src, j in zip(r.facet_normals, r.facet_rhs, r.facet_sources, r.neighbours, strict=True):
            if src < 0:
                assert j == -1
                continue
            on_facet = r.vertices[np.abs(r.vertices @ n - c) <= on]
            if j == -1:  # only a neuron hyperplane lying on the box boundary has nothing across it
                on_lo = np.all(np.isclose(on_facet, cx.box.lo, atol=on), axis=0)
                on_hi = np.all(np.isclose(on_facet, cx.box.hi, atol=on), axis=0)
                assert np.any(on_lo | on_hi), f"region {r.index}: no neighbour across neuron facet {src}"
                continue
            other = cx[int(j)]
            assert j != r.index and other.pattern[src] != r.pattern[src]
            if generic:
                assert np.count_nonzero(other.pattern != r.pattern) == 1
            back = np.flatnonzero(
                np.all(np.abs(other.facet_normals + n) <= 1e-9, axis=1) & (np.abs(other.facet_rhs + c) <= on)
            )
            assert back.size == 1 and other.neighbours[back[0]] == r.index
            across = on_facet.mean(axis=0) + 10 * tol.NEIGHBOUR_STEP * s * n
            np.testing.assert_array_equal(O.forward_patterns(layers, across, ROUNDING_NOISE)[0], other.pattern)


def check_all(cx: RegionComplex, layers, generic: bool) -> None:
    check_volumes(cx)
    check_affine_maps(cx, layers)
    check_geometry(cx, layers)
    check_neighbours(cx, layers, generic)


def check_against_brute_force(cx: RegionComplex, layers, lo, hi) -> None:
    """Same set of patterns as the LP brute force; for each, the same volume (qhull, or an interval in
    1-D) and a radius no larger than the LP's Chebyshev radius."""
    brute = O.brute_force_regions(layers, lo, hi)
    key = lambda p: np.packbits(p).tobytes()  # noqa: E731
    found = {key(r.pattern): r for r in brute}
    mine = {key(r.pattern): r for r in cx}
    assert len(mine) == len(cx), "two regions with the same pattern"
    assert mine.keys() == found.keys(), f"engine {len(cx)} regions, brute force {len(brute)}"
    box_volume = float(np.prod(np.asarray(hi) - np.asarray(lo)))
    for k, r in mine.items():
        assert r.volume == pytest.approx(found[k].volume, abs=tol.VOLUME_SUM_RELATIVE * box_volume)
        assert r.radius <= found[k].radius + tol.ON_HYPERPLANE * cx.box.scale


# ----------------------------------------------------------------------------------------------------
# the oracles agree with each other (so that a disagreement with the engine is the engine's)
# ----------------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), D=st.integers(2, 3), n=st.integers(1, 6))
def test_oracles_agree_on_hyperplane_arrangements(seed, D, n):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n, D)), 0.5 * rng.normal(size=n)
    lo, hi = -1 - rng.random(D), 1 + rng.random(D)
    layers = [(W, b), (np.ones((1, n)), np.zeros(1))]
    brute = O.brute_force_regions(layers, lo, hi)
    assert len(brute) == O.general_position_count(W, b, lo, hi)
    if D == 2:
        assert len(brute) == O.line_arrangement_count(W, b, lo, hi)
    assert sum(r.volume for r in brute) == pytest.approx(np.prod(hi - lo), rel=1e-9)


# ----------------------------------------------------------------------------------------------------
# seeded nets: golden counts, grid lower bound, every structural property
# ----------------------------------------------------------------------------------------------------

FAST_GOLDEN = [
    "2-8-8-1", "2-16-16-1", "2-32-32-1", "2-64-64-1", "2-64-64-64-1", "2-128-128-1", "3-16-16-1", "3-32-32-1",
]


@pytest.mark.parametrize("arch", FAST_GOLDEN)
def test_golden_counts(arch):
    net, cx = seeded_complex(arch)
    assert len(cx) == O.GOLDEN_REGION_COUNTS[arch]
    assert cx.dropped_lower_dim == 0
    check_volumes(cx)


@pytest.mark.parametrize("arch", ["2-8-8-1", "2-16-16-1", "3-8-8-1"])
def test_seeded_complex_properties(arch):
    net, cx = seeded_complex(arch)
    check_all(cx, O.layers_of(net), generic=True)


def test_seeded_small_net_matches_brute_force():
    net, cx = seeded_complex("2-8-8-1")
    check_against_brute_force(cx, O.layers_of(net), *cube(2))


def test_count_at_least_grid_patterns():
    """Every pattern seen on a 500×500 grid is a region, and there are more regions than that."""
    net, cx = seeded_complex("2-64-64-1")
    seen = O.grid_patterns(net, *cube(2), per_axis=500)
    regions = {np.packbits(p).tobytes() for p in cx.patterns}
    assert all(np.packbits(p).tobytes() in regions for p in seen)
    assert len(cx) >= len(seen)


@pytest.mark.parametrize("arch", ["2-16-16-1", "3-8-8-1"])
def test_locate_agrees_with_forward_patterns(arch):
    net, cx = seeded_complex(arch)
    rng = np.random.default_rng(7)
    X = cx.box.sample(2000, rng)
    idx = cx.locate(X)
    assert np.all(idx >= 0)
    np.testing.assert_array_equal(cx.patterns[idx], O.forward_patterns(O.layers_of(net), X))
    for x, i in zip(X[:200], idx[:200], strict=True):
        assert cx[int(i)].contains(x, tol=tol.ON_HYPERPLANE * cx.box.scale)[0]
    np.testing.assert_allclose(cx.evaluate(X), O.forward(O.layers_of(net), X), rtol=0, atol=1e-9)
    outside = np.vstack([X[:50] + 2.5, X[50:100] - 2.5, np.c_[X[100:150, :-1], np.full(50, 1.0 + 1e-6)]])
    assert np.all(cx.locate(outside) == -1)


# ----------------------------------------------------------------------------------------------------
# random small nets against the LP brute force and the arrangement formulas
# ----------------------------------------------------------------------------------------------------

small_nets = st.tuples(
    st.integers(0, 2**32 - 1),  # rng seed: a failing example prints it, so it reproduces
    st.integers(1, 3),  # D
    st.lists(st.integers(1, 6), min_size=1, max_size=2),  # hidden widths
    st.booleans(),  # small-integer weights (degenerate) instead of Gaussian ones
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_nets)
def test_random_nets_match_brute_force(spec):
    seed, D, widths, integer = spec
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, D, widths, integer)
    lo = np.round(-0.5 - 1.5 * rng.random(D), 0 if integer else 6)
    hi = lo + np.round(0.5 + 2.5 * rng.random(D), 0 if integer else 6) + (1.0 if integer else 0.0)
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    check_against_brute_force(cx, layers, lo, hi)
    check_all(cx, layers, generic=not integer)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12))
def test_one_hidden_layer_2d_matches_euler_formula(seed, n):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n, 2)), 0.7 * rng.normal(size=n)
    lo = -0.5 - rng.random(2)
    hi = lo + 0.5 + 2 * rng.random(2)
    cx = qe.regions(make_net([(W, b), (rng.normal(size=(2, n)), np.zeros(2))]), qe.Box(lo, hi))
    assert len(cx) == O.line_arrangement_count(W, b, lo, hi)
    check_volumes(cx)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 7))
def test_one_hidden_layer_3d_matches_flat_count(seed, n):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n, 3)), 0.5 * rng.normal(size=n)
    lo, hi = -np.ones(3), np.ones(3)
    cx = qe.regions(make_net([(W, b), (np.ones((1, n)), np.zeros(1))]), qe.Box(lo, hi))
    assert len(cx) == O.general_position_count(W, b, lo, hi)
    check_volumes(cx)


# ----------------------------------------------------------------------------------------------------
# degenerate nets, each against the brute force and a count derived in the test
# ----------------------------------------------------------------------------------------------------

GENERIC_LINES = np.array([[1.0, 0.3], [-0.4, 1.0], [0.7, 0.8]]), np.array([0.1, -0.2, 0.25])


def one_layer(W, b, out_weights=None):
    W, b = np.asarray(W, dtype=float), np.asarray(b, dtype=float)
    v = np.arange(1, W.shape[0] + 1, dtype=float)[None, :] if out_weights is None else np.asarray(out_weights, float)
    return [(W, b), (v, np.zeros(v.shape[0]))]


def angles_lines(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct lines through the origin."""
    t = np.pi * (np.arange(n) + 0.3) / n
    return np.c_[np.cos(t), np.sin(t)], np.zeros(n)


DEGENERATE_2D = {
    # zero weight rows: b = 0 (always inactive), b > 0 (always active), b < 0 (always inactive)
    "zero_rows": (
        np.vstack([GENERIC_LINES[0], np.zeros((3, 2))]),
        np.r_[GENERIC_LINES[1], 0.0, 0.5, -0.5],
    ),
    # each line twice, once negated (same line, opposite orientation)
    "duplicated_neurons": (
        np.vstack([GENERIC_LINES[0]] * 2 + [-GENERIC_LINES[0]]),
        np.r_[GENERIC_LINES[1], GENERIC_LINES[1], -GENERIC_LINES[1]],
    ),
    # lines missing the box, touching it at a corner, lying on an edge, crossing it
    "missing_and_touching": (
        np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.3, 1.0]]),
        np.array([-3.0, -2.0, -1.0, 1.0, 0.1]),
    ),
    # diagonals through the box corners, and lines through their crossing and through corners
    "through_corners_and_vertices": (
        np.array([[1.0, -1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 2.0], [2.0, -1.0]]),
        np.array([0.0, 0.0, 0.0, 0.0, -1.0, -1.0]),
    ),
    # six lines through one point: 12 regions
    "six_concurrent": angles_lines(6),
    # dead and always-active neurons next to generic ones
    "dead_and_always_active": (
        np.vstack([GENERIC_LINES[0], [[1.0, 1.0], [0.5, -0.5]]]),
        np.r_[GENERIC_LINES[1], -5.0, 4.0],
    ),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE_2D))
def test_degenerate_one_layer_2d(name):
    W, b = DEGENERATE_2D[name]
    layers = one_layer(W, b)
    lo, hi = cube(2)
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    assert len(cx) == O.line_arrangement_count(W, b, lo, hi)
    check_against_brute_force(cx, layers, lo, hi)
    check_all(cx, layers, generic=False)


def test_six_lines_through_a_point_give_twelve_regions():
    W, b = angles_lines(6)
    cx = qe.regions(make_net(one_layer(W, b)), qe.Box.cube(2))
    assert len(cx) == 2 * len(W)  # n distinct lines through an interior point make 2n sectors
    assert O.line_arrangement_count(W, b, *cube(2)) == 2 * len(W)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_planes_through_a_common_line_3d(n):
    """n distinct planes containing the x3-axis cut the cube into 2n wedges (the 2-D picture × [-1, 1])."""
    W2, _ = angles_lines(n)
    W = np.c_[W2, np.zeros(n)]
    layers = one_layer(W, np.zeros(n))
    cx = qe.regions(make_net(layers), qe.Box.cube(3))
    assert len(cx) == 2 * n
    check_against_brute_force(cx, layers, *cube(3))
    check_all(cx, layers, generic=False)


def test_planes_through_a_common_point_3d():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(5, 3))
    layers = one_layer(W, np.zeros(5))
    cx = qe.regions(make_net(layers), qe.Box.cube(3))
    # a central arrangement of n planes in general position has n² − n + 2 regions near its centre
    assert len(cx) == 5**2 - 5 + 2
    check_against_brute_force(cx, layers, *cube(3))
    check_all(cx, layers, generic=False)


def test_second_layer_degeneracies():
    """Layer-2 neurons equal to a layer-1 neuron passed through (relu(z) coincides with z's hyperplane
    on one side and is dead on the other), a dead layer-2 neuron, a zero layer-2 row, a duplicated one,
    and one through the crossing of two layer-1 lines."""
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b1 = np.array([0.0, 0.0, -0.5])
    W2 = np.array([
        [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [-1.0, -1.0, -1.0],
    ])
    b2 = np.array([0.0, 0.0, 1.0, -0.1, -0.1, -10.0])
    layers = [(W1, b1), (W2, b2), (np.ones((1, 6)), np.zeros(1))]
    cx = qe.regions(make_net(layers), qe.Box.cube(2))
    check_against_brute_force(cx, layers, *cube(2))
    check_all(cx, layers, generic=False)


def test_dead_first_layer_gives_one_region():
    layers = [(np.array([[1.0, 1.0], [-1.0, 0.5]]), np.array([-3.0, -2.0])), (np.array([[2.0, 3.0]]), np.array([0.5]))]
    cx = qe.regions(make_net(layers), qe.Box.cube(2))
    assert len(cx) == 1
    np.testing.assert_allclose(cx[0].A, 0.0)
    np.testing.assert_allclose(cx[0].b, [0.5])
    check_all(cx, layers, generic=False)


@pytest.mark.parametrize("D", [2, 3])
def test_constant_neuron_fed_by_a_dead_unit_with_a_large_constant(D):
    """A layer-2 neuron whose only input is a layer-1 unit dead on the whole box (pre-activation
    x_0 - 1e6) is the constant 0.5 on every region: flat and active. The rounding guard of its constant
    (tolerances.PATTERN_ROUNDING) must be measured on the layer input the region sees, where the dead
    unit contributes 0, not on the unit's pre-activation constant -1e6 (weighted by 1e6 it would make a
    guard of ~1 > 0.5, the neuron read as inactive and every output map 0.5 off)."""
    W1 = np.vstack([np.eye(D), np.eye(1, D)])
    b1 = np.concatenate([np.zeros(D), [-1e6]])
    W2 = np.zeros((2, D + 1))
    W2[0, :D] = 1.0  # a cut: relu(x_0 + … + x_{D-1}) of the active parts
    W2[1, D] = 1e6  # the constant neuron
    b2 = np.array([-0.25, 0.5])
    layers = [(W1, b1), (W2, b2), (np.ones((1, 2)), np.zeros(1))]
    cx = qe.regions(make_net(layers), qe.Box.cube(D))
    assert all(r.pattern[-1] == 1 for r in cx)
    check_against_brute_force(cx, layers, *cube(D))
    check_all(cx, layers, generic=False)


def test_one_dimensional_net():
    """In 1-D the regions are the maximal intervals of constant pattern, which a fine grid resolves:
    count the pattern changes along it (activation regions are convex, so no pattern recurs)."""
    rng = np.random.default_rng(11)
    layers = random_layers(rng, 1, [6, 5], integer=False)
    lo, hi = np.array([-2.0]), np.array([1.5])
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    x = np.linspace(lo[0], hi[0], 200_001)[:, None]
    pats = O.forward_patterns(layers, x)
    runs = 1 + int(np.count_nonzero(np.any(pats[1:] != pats[:-1], axis=1)))
    assert len(cx) == runs
    check_against_brute_force(cx, layers, lo, hi)
    check_all(cx, layers, generic=True)


def test_integer_net_with_coinciding_hyperplanes_3d():
    """A 3-8-4-8-1 net with small-integer weights (found by a randomised search): many layer-2/3
    hyperplanes pass through existing vertices and coincide with earlier ones on parts of the box."""
    W1 = [[-1, -2, -2], [2, 0, 0], [2, 2, 0], [0, 0, 1], [0, -1, 0], [0, -1, -1], [-2, -2, -2], [0, -2, 0]]
    W2 = [
        [0, -2, 0, 2, 1, 1, -1, 1], [2, 1, 0, -1, -1, 1, 0, 2], [1, 1, 0, 2, -1, 1, 0, 2], [1, 0, 0, 2, -2, -2, -2, -2],
    ]
    W3 = [
        [0, 1, 2, 0], [1, 0, -1, -2], [0, -2, -1, 1], [2, 0, 0, 1], [1, 1, -1, -2], [2, 2, 2, -1], [-2, 0, 0, -1],
        [-1, -2, 1, -2],
    ]
    layers = [
        (np.array(W1, float), np.array([-1, -1, 0, 1, 0, -1, -1, 0], float)),
        (np.array(W2, float), np.array([0, 1, -1, 1], float)),
        (np.array(W3, float), np.array([-1, -1, -1, 0, -1, -1, -1, 1], float)),
        (np.array([[-1, 1, 2, 0, -1, 2, 0, -1]], float), np.array([1.0])),
    ]
    lo, hi = np.array([-1.0, -1.0, -2.0]), np.array([2.0, 1.0, 2.0])
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    check_all(cx, layers, generic=False)


def test_locate_inside_the_box_when_a_pre_activation_cancels_to_rounding_noise():
    """z = 3·relu(0.1·x₁) − relu(0.3·x₁) is exactly 0 for x₁ > 0 but evaluates to ± an ulp there: every
    point of the box still lies in a region (the one whose facets contain it), and locate must find it."""
    layers = [
        (np.array([[0.1, 0.0], [0.3, 0.0], [0.0, 1.0]]), np.zeros(3)),
        (np.array([[3.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), np.zeros(2)),
        (np.ones((1, 2)), np.zeros(1)),
    ]
    cx = qe.regions(make_net(layers), qe.Box.cube(2))
    check_against_brute_force(cx, layers, *cube(2))
    X = cx.box.sample(2000, np.random.default_rng(0))
    idx = cx.locate(X)
    assert np.all(idx >= 0), f"{np.count_nonzero(idx < 0)} of {len(X)} points in the box not located"
    for x, i in zip(X, idx, strict=True):
        assert cx[int(i)].contains(x, tol=tol.ON_HYPERPLANE * cx.box.scale)[0]


# ----------------------------------------------------------------------------------------------------
# bad input, limits, serialisation
# ----------------------------------------------------------------------------------------------------


def test_max_regions_exceeded_raises():
    net, cx = seeded_complex("2-16-16-1")
    with pytest.raises(qe.QuasieqError, match="regions"):
        qe.regions(net, qe.Box.cube(2), max_regions=len(cx) - 1)
    assert len(qe.regions(net, qe.Box.cube(2), max_regions=len(cx))) == len(cx)


def test_box_dimension_mismatch_raises():
    net, _ = seeded_complex("2-8-8-1")
    with pytest.raises(qe.QuasieqError, match="dimension"):
        qe.regions(net, qe.Box.cube(3))


def test_save_load_round_trip(tmp_path):
    net, cx = seeded_complex("2-16-16-1")
    path = tmp_path / "complex.npz"
    cx.save(path)
    back = RegionComplex.load(path)
    assert len(back) == len(cx) and back.dropped_lower_dim == cx.dropped_lower_dim
    for name in RegionComplex._ARRAYS.values():
        np.testing.assert_array_equal(getattr(back, name), getattr(cx, name))
    np.testing.assert_array_equal(back.box.lo, cx.box.lo)
    np.testing.assert_array_equal(back.box.hi, cx.box.hi)
    X = cx.box.sample(500, np.random.default_rng(0))
    np.testing.assert_array_equal(back.net.forward(X), net.forward(X))
    np.testing.assert_array_equal(back.locate(X), cx.locate(X))


def test_to_json_keys_and_values():
    """The `regions --json` document (README.md): stable keys, patterns as 0/1 strings split by layer, facet sources
    named after neurons (L<layer>.N<index>, layers from 1) or box faces, consistent with the complex."""
    net, cx = seeded_complex("2-8-8-1")
    doc = json.loads(json.dumps(cx.to_json()))
    assert doc["schema_version"] == 1
    assert {"count", "dropped_lower_dim", "min_radius", "box", "volume_total", "seconds", "regions"} <= doc.keys()
    assert doc["count"] == len(doc["regions"]) == len(cx)
    assert doc["box"] == {"lo": [-1.0, -1.0], "hi": [1.0, 1.0]}
    assert doc["volume_total"] == pytest.approx(4.0, rel=tol.VOLUME_SUM_RELATIVE)
    offsets = np.cumsum([0, *net.widths])
    for r, d in zip(cx, doc["regions"], strict=True):
        assert {"pattern", "volume", "interior_point", "radius", "affine", "facets", "vertices"} <= d.keys()
        layers_bits = d["pattern"].split("|")
        assert [len(p) for p in layers_bits] == list(net.widths)
        assert [c == "1" for c in "".join(layers_bits)] == r.pattern.tolist()
        assert np.shape(d["affine"]["A"]) == (net.out_dim, net.in_dim) and len(d["affine"]["b"]) == net.out_dim
        facets = d["facets"]
        assert {"normals", "offsets", "sources"} <= facets.keys()
        assert len(facets["normals"]) == len(facets["offsets"]) == len(facets["sources"])
        for name, normal, offset in zip(facets["sources"], facets["normals"], facets["offsets"], strict=True):
            if name.startswith("box."):
                _, side, axis = name.split(".")
                expected = np.eye(2)[int(axis)] * (1.0 if side == "hi" else -1.0)
                np.testing.assert_allclose(normal, expected, atol=1e-12)
            else:
                layer, neuron = name.split(".")
                k = offsets[int(layer[1:]) - 1] + int(neuron[1:])
                v = np.asarray(d["vertices"])
                on = v[np.abs(v @ np.asarray(normal) - offset) <= 1e-9]
                z = np.concatenate(O.pre_activations(O.layers_of(net), on), axis=1)[:, k]
                np.testing.assert_allclose(z, 0.0, atol=1e-9)


def test_neighbours_across_duplicated_neurons_fall_back_to_the_probe(monkeypatch):
    """Two copies of the neuron relu(x): crossing x = 0 flips both bits, so the one-bit-flipped
    pattern the fast neighbour lookup tries does not exist, and those facets must be resolved by
    locating the probe point. The neighbours must still be the regions on the other side."""
    located = []
    locate = RegionComplex.locate
    monkeypatch.setattr(RegionComplex, "locate", lambda self, X: located.append(len(X)) or locate(self, X))
    layers = [
        (np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0.0, 0.0, 0.3])),
        (np.ones((1, 3)), np.zeros(1)),
    ]
    cx = qe.regions(make_net(layers), qe.Box.cube(2))
    assert len(cx) == 4 and located == [4]  # the four facets on x = 0 (sources 0 and 1 coincide there)
    for r in cx:
        for src, j in zip(r.facet_sources, r.neighbours, strict=True):
            if src >= 0:
                flipped = r.pattern.copy()
                flipped[[0, 1] if src in (0, 1) else [src]] ^= True
                assert np.array_equal(cx[j].pattern, flipped)
    check_all(cx, layers, generic=False)


@pytest.mark.parametrize("bits", [0, 1, 7, 8, 63, 64, 65, 130])
def test_packed_patterns_hold_bit_k_in_word_k_over_64(bits):
    """pack_patterns against a bit-by-bit reading, and the flipped-pattern lookup against a direct
    search of the table."""
    from quasieq.regions.lookup import PatternIndex, pack_patterns

    rng = np.random.default_rng(bits)
    P = rng.random((40, bits)) < 0.5
    words = pack_patterns(P)
    assert words.shape == (40, max(1, (bits + 63) // 64))
    for r in range(40):
        assert [(int(words[r, k // 64]) >> (k % 64)) & 1 for k in range(bits)] == P[r].astype(int).tolist()
    if bits:
        P = np.unique(P, axis=0)
        rows = rng.integers(0, len(P), 50)
        flip = rng.integers(0, bits, 50)
        want = []
        for r, k in zip(rows, flip, strict=True):
            q = P[r].copy()
            q[k] ^= True
            hit = np.flatnonzero((q == P).all(axis=1))
            want.append(int(hit[0]) if hit.size else -1)
        assert PatternIndex(P).find_flipped(rows, flip).tolist() == want


@pytest.mark.parametrize("D,widths,seed", [(4, (6, 5), 4), (5, (5, 4), 5)])
def test_volumes_in_four_and_five_dimensions_match_qhull(D, widths, seed):
    """Every region's exact volume (the engine's face recursion) equals the volume qhull gives for the
    convex hull of its vertices, and the volumes add up to the box's, in D = 4 and 5."""
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(seed)
    layers = random_layers(rng, D, list(widths), integer=False)
    lo, hi = -1.0 - rng.random(D), 1.0 + rng.random(D)
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    assert len(cx) > 50 and cx.volume_exact
    hull = np.array([ConvexHull(r.vertices).volume for r in cx])
    box_volume = float(np.prod(hi - lo))
    np.testing.assert_allclose(cx.volumes, hull, rtol=1e-9, atol=tol.VOLUME_SUM_RELATIVE * box_volume)
    assert cx.volume_total == pytest.approx(box_volume, rel=tol.VOLUME_SUM_RELATIVE)
