"""Thin and extreme boxes: region enumeration and the constructions on the unit box (unit_box.py).

The oracle for a box lo ≤ x ≤ hi is the same net with the box's affine map x = lo + s·u folded into
its first layer *by hand here* (W·diag(s), b + W·lo), enumerated on [0, 1]^D — where no change of
variables happens. The box's complex must have the same regions (count and patterns) and the same
volumes times the Jacobian J = Π s, and its own geometry must hold in x: interior points inside their
regions by a forward pass of the original net, vertices in the box, volumes adding up to the box's.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import oracles as O
import quasieq as qe
from quasieq import tolerances as tol
from quasieq.box import Box


def folded_by_hand(net: qe.ReluNet, lo: np.ndarray, hi: np.ndarray) -> qe.ReluNet:
    """First layer W·diag(hi − lo) and b + W·lo, the bias summed in exact rationals and rounded once
    (a stretched net's bias cancels large terms, which plain float64 sums would round differently)."""
    W, b = net.layers[0]
    exact = [Fraction(b_i) + sum(Fraction(w) * Fraction(x) for w, x in zip(row, lo, strict=True))
             for row, b_i in zip(W, b, strict=True)]
    bias = [float(value) for value in exact]
    return qe.ReluNet([W * (hi - lo), *net.weights[1:]], [np.array(bias), *net.biases[1:]])


def stretched(net: qe.ReluNet, lo: np.ndarray, hi: np.ndarray) -> qe.ReluNet:
    """The net that computes on [lo, hi] what ``net`` computes on [-1, 1]^D (x = lo + (hi-lo)(v+1)/2)."""
    W, b = net.layers[0]
    scale = 2.0 / (hi - lo)
    return qe.ReluNet([W * scale, *net.weights[1:]], [b - (W * scale) @ lo - W.sum(axis=1), *net.biases[1:]])


def by_pattern(cx) -> dict[bytes, int]:
    return {np.packbits(p).tobytes(): i for i, p in enumerate(cx.patterns)}


def check_against_unit_oracle(net: qe.ReluNet, lo, hi) -> qe.RegionComplex:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    box = Box(lo, hi)
    cx = qe.regions(net, box)
    oracle = qe.regions(folded_by_hand(net, lo, hi), Box.cube(len(lo), 0.0, 1.0))
    J = float(np.prod(hi - lo))
    assert len(cx) == len(oracle) > 1
    mine, theirs = by_pattern(cx), by_pattern(oracle)
    assert mine.keys() == theirs.keys()
    order = [theirs[k] for k in mine]
    np.testing.assert_allclose(cx.volumes[list(mine.values())], oracle.volumes[order] * J, rtol=1e-9, atol=1e-12 * J)
    # the geometry in x
    assert cx.volume_total == pytest.approx(box.volume, rel=tol.VOLUME_SUM_RELATIVE)
    np.testing.assert_array_equal(O.forward_patterns(O.layers_of(net), cx.interior_points), cx.patterns)
    assert np.all(cx.locate(cx.interior_points) == np.arange(len(cx)))
    side = hi - lo
    assert np.all((cx.vertices_flat >= lo - 1e-9 * side) & (cx.vertices_flat <= hi + 1e-9 * side))
    for r in list(cx)[:50]:  # every vertex on or inside every facet of its region, in x, to 1e-9 of the
        # facet's reach across the box plus the rounding of evaluating n·x − c at |x|
        slack = r.facet_rhs[None, :] - r.vertices @ r.facet_normals.T
        rounding = 8 * np.finfo(float).eps * (np.abs(r.vertices) @ np.abs(r.facet_normals).T + np.abs(r.facet_rhs))
        assert np.all(slack >= -1e-9 * (np.abs(r.facet_normals) @ side) - rounding)
    return cx


@pytest.mark.parametrize(
    "lo,hi",
    [
        ([-1.0, -5e-10], [1.0, 5e-10]),  # 2 × 1e-9 about 0
        ([1.0, 0.0], [1.0 + 1e-9, 2.0]),  # thin and away from 0
        ([-1e200, 3e-110], [1e200, 5e-110]),  # huge beside tiny, volume 4e90
        ([-3e-150, 1e-150], [-1e-150, 2e-150]),  # tiny sides, volume 2e-300
    ],
)
def test_thin_and_huge_boxes_match_the_unit_box_oracle(lo, hi):
    """The seeded 2-16-16-1 net stretched onto the box (so that it has its 127 regions there)."""
    net = O.seeded_relu_net("2-16-16-1")
    cx = check_against_unit_oracle(stretched(net, np.array(lo), np.array(hi)), lo, hi)
    assert len(cx) == O.GOLDEN_REGION_COUNTS["2-16-16-1"]


def test_thin_box_in_3d():
    net = O.seeded_relu_net("3-8-8-1")
    lo, hi = np.array([-1.0, 0.25, -1e3]), np.array([1.0, 0.25 + 1e-9, 1e3])
    check_against_unit_oracle(stretched(net, lo, hi), lo, hi)


def test_counts_and_relative_volumes_do_not_depend_on_scaling_or_shifting_the_box():
    """The same net on a box and on a per-axis scaled and shifted copy of it (the net stretched with
    it) has the same regions with the same volume fractions."""
    net = O.seeded_relu_net("3-8-8-1")
    base = qe.regions(net, Box.cube(3))
    fractions = base.volumes / base.box.volume
    for lo, hi in (([0.0, -1e-6, 1e6], [1e-3, 1e-6, 1e6 + 7.0]), ([-5e5, 2.0, -1e-12], [5e5, 2.5, 1e-12])):
        lo, hi = np.array(lo), np.array(hi)
        cx = qe.regions(stretched(net, lo, hi), Box(lo, hi))
        assert len(cx) == len(base)
        mine = by_pattern(cx)
        assert mine.keys() == by_pattern(base).keys()
        theirs = by_pattern(base)
        np.testing.assert_allclose(
            cx.volumes[list(mine.values())] / cx.box.volume, fractions[[theirs[k] for k in mine]], rtol=1e-8, atol=1e-14
        )


def test_huge_box_in_1d_and_tiny_box_in_1d():
    net = O.seeded_relu_net("1-8-8-1")
    for lo, hi in (([-1e200], [1e200]), ([-1e-170], [1e-170])):
        check_against_unit_oracle(stretched(net, np.array(lo), np.array(hi)), lo, hi)


@pytest.mark.parametrize(
    "lo,hi,message",
    [
        ([-1e200, -1e200], [1e200, 1e200], r"volume .* 1e401 is outside float64's normal range"),
        ([-1e308, -1.0], [1e308, 1.0], r"coordinate 0 from -1e\+308 to 1e\+308 is wider than the largest float64"),
        ([-1e-170, -1e-170], [1e-170, 1e-170], r"volume .* 1e-339 is outside float64's normal range"),
        ([1.0, 0.0], [1.0 + 2**-45, 1.0], r"coordinate 0 has width 2.84e-14 at 1, fewer than 1024 float64 steps"),
    ],
)
def test_boxes_float64_cannot_represent_are_refused_in_one_line(lo, hi, message):
    net = O.seeded_relu_net("2-8-8-1")
    with pytest.raises(qe.QuasieqError, match=message) as info:
        qe.regions(net, Box(lo, hi))
    assert "\n" not in str(info.value)


def test_twenty_inputs_are_refused_before_the_box_vertices_exist(monkeypatch):
    def never(self):
        raise AssertionError("the 2^D box vertices must not be allocated")

    monkeypatch.setattr(Box, "vertices", never)
    net = qe.ReluNet([np.ones((3, 20)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    with pytest.raises(qe.QuasieqError, match=r"20 inputs: the box alone has 2\^20 = 1,048,576 vertices.*--plane"):
        qe.regions(net, Box.cube(20))


def test_constructions_on_a_thin_box_agree_with_the_net():
    """The compact wide and deep forms built on a 2 × 1e-9 box (on the unit box, mapped back) meet the
    net outside a set whose measured upper 95% limit is below δ."""
    lo, hi = np.array([-1.0, 0.5]), np.array([1.0, 0.5 + 1e-9])
    box = Box(lo, hi)
    net = stretched(O.seeded_relu_net("2-8-8-1"), lo, hi)
    cx = qe.regions(net, box)
    delta = 1e-2 * box.volume
    for build in (qe.to_wide, qe.to_deep):
        built = build(net, box, delta, cx=cx)
        p = built.provenance
        assert p.box_lo == tuple(lo) and p.box_hi == tuple(hi) and p.delta == delta
        assert 0 < p.error_bound < delta
        report = qe.compare(net, built, box, samples=20_000, seed=1)
        assert report.ci95[1] <= delta
