"""Box: validation, volume and vertices against direct computation, sampling stays inside."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quasieq as qe
from conftest import random_net

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
