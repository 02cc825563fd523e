"""Box: validation, volume and vertices against direct computation, sampling stays inside."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import quasieq as qe
from conftest import random_net
from quasieq.forward_range import _dense_interval, _sparse_interval, interval_bound

bounds = st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(1e-3, 1e3)), min_size=1, max_size=5)


@settings(max_examples=50, deadline=None)
@given(bounds)
def test_volume_vertices_and_sampling(pairs):
    lo = [a for a, _ in pairs]
    hi = [a + w for a, w in pairs]
    box = qe.Box(lo, hi)
    assert box.dim == len(pairs)
    assert math.isclose(box.volume, math.prod(b - a for a, b in zip(lo, hi, strict=True)), rel_tol=1e-12)
    corners = {tuple(c) for c in itertools.product(*zip(lo, hi, strict=True))}
    assert {tuple(v) for v in box.vertices()} == corners
    X = box.sample(500, np.random.default_rng(0))
    assert X.shape == (500, box.dim) and box.contains(X).all()
    assert box.contains(box.vertices()).all()
    assert not box.contains(box.hi + 1.0).any()


def test_sampling_is_uniform():
    box = qe.Box([0.0, -2.0], [1.0, 6.0])
    X = box.sample(40_000, np.random.default_rng(1))
    # each coordinate's mean is the centre within 5 standard errors (σ = side/√12)
    se = (box.hi - box.lo) / np.sqrt(12 * X.shape[0])
    assert np.all(np.abs(X.mean(axis=0) - (box.lo + box.hi) / 2) < 5 * se)


def test_cube():
    box = qe.Box.cube(3, -2, 5)
    assert np.array_equal(box.lo, [-2, -2, -2]) and np.array_equal(box.hi, [5, 5, 5])
    assert box.volume == 7.0**3 and box.scale == 7.0
    assert box.to_dict() == {"lo": [-2.0] * 3, "hi": [5.0] * 3}


@pytest.mark.parametrize("lo, hi, pattern", [
    ([0, 0], [1], "lo has 2 coordinates but hi has 1"),
    ([], [], "at least one coordinate"),
    ([0, np.nan], [1, 1], "finite"),
    ([0, 0], [1, np.inf], "finite"),
    ([0, 2], [1, 2], "coordinate 1 needs lo < hi, got lo=2, hi=2"),
    ([3], [1], "coordinate 0 needs lo < hi"),
])
def test_bad_boxes_refused(lo, hi, pattern):
    with pytest.raises(qe.QuasieqError, match=pattern):
        qe.Box(lo, hi)


def test_bad_cube_refused():
    with pytest.raises(qe.QuasieqError, match="dimension must be ≥ 1"):
        qe.Box.cube(0)


def test_check_net(rng):
    net = random_net((3, 4, 1), rng)
    qe.Box.cube(3).check_net(net)
    with pytest.raises(qe.QuasieqError, match="box has dimension 2 but the net takes 3 inputs"):
        qe.Box.cube(2).check_net(net)


def test_box_is_immutable():
    box = qe.Box.cube(2)
    with pytest.raises(ValueError):
        box.lo[0] = 5.0


def _exact_interval(W, b, mid, rad, relu):
    """forward_range._dense_interval in exact rationals: (max_j |centre_j| + spread_j, out mid, out rad)."""
    centre = [Fraction(b[j]) + sum(Fraction(W[j, i]) * mid[i] for i in range(W.shape[1])) for j in range(W.shape[0])]
    spread = [sum(abs(Fraction(W[j, i])) * rad[i] for i in range(W.shape[1])) for j in range(W.shape[0])]
    lo = [max(c - s, Fraction(0)) if relu[j] else c - s for j, (c, s) in enumerate(zip(centre, spread, strict=True))]
    hi = [max(c + s, Fraction(0)) if relu[j] else c + s for j, (c, s) in enumerate(zip(centre, spread, strict=True))]
    bound = max(abs(c) + s for c, s in zip(centre, spread, strict=True))
    return bound, [(x + y) / 2 for x, y in zip(lo, hi, strict=True)], [(y - x) / 2 for x, y in zip(lo, hi, strict=True)]


def test_interval_bound_layer_kernel_matches_exact_interval_arithmetic_and_bounds_the_values(rng):
    """The compiled layer bound of forward_range (midpoint–radius intervals, ReLU clipping, a linear
    unit unclipped) against the same arithmetic in exact rationals, layer after layer, and the bound
    against the pre-activations at sampled points of the box."""
    net = qe.ReluNet([rng.normal(size=(5, 3)) * 3, rng.normal(size=(4, 5)), rng.normal(size=(1, 4))],
                     [rng.normal(size=5), rng.normal(size=4), rng.normal(size=1)],
                     relu_masks=[np.array([1, 1, 0, 1, 1], dtype=bool), np.ones(4, dtype=bool)])
    box = qe.Box(np.array([-1.0, 0.5, -3.0]), np.array([2.0, 0.75, -1.0]))
    mid, rad = (box.lo + box.hi) / 2.0, (box.hi - box.lo) / 2.0
    exact_mid, exact_rad = [Fraction(m) for m in mid], [Fraction(r) for r in rad]
    values = [*net.pre_activations(box.sample(2000, rng)), net.forward(box.sample(2000, rng))]
    for layer, (W, b) in enumerate(net.layers):
        relu = net.relu_masks[layer] if layer < len(net.relu_masks) else np.zeros(W.shape[0], dtype=bool)
        sparse = _sparse_interval(sp.csr_matrix(W), b, mid, rad, relu)  # scipy's products, the same intervals
        bound, mid, rad = _dense_interval(W, b, mid, rad, relu)
        assert sparse[0] == pytest.approx(bound, rel=1e-14)
        np.testing.assert_allclose(sparse[1], mid, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(sparse[2], rad, rtol=1e-14, atol=1e-14)
        exact, exact_mid, exact_rad = _exact_interval(W, b, exact_mid, exact_rad, relu)
        assert bound == pytest.approx(float(exact), rel=1e-13)
        np.testing.assert_allclose(mid, [float(m) for m in exact_mid], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(rad, [float(r) for r in exact_rad], rtol=1e-13, atol=1e-13)
        assert np.abs(values[layer]).max() <= bound
    overflowing = qe.ReluNet([np.array([[1e308, -1e308], [1.0, 1.0]]), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    assert interval_bound(overflowing, qe.Box.cube(2, -1, 1))[0] == 0  # inf − inf: NaN, refused at layer 0
    assert interval_bound(net, box) is None
