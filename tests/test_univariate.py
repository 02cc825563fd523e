"""Theorem 9 (D = 1): the wide and deep forms equal the net to 1e-9 everywhere on the interval.

Oracles: the original net's forward pass (random points, the breakpoints themselves and points a hair
either side), and kinks located independently by second differences on a dense grid.
"""

from __future__ import annotations

import numpy as np
import pytest

import quasieq as qe
from oracles import seeded_relu_net
from quasieq.construct import to_deep, to_wide
from quasieq.construct.univariate import breakpoints


def _scale(net, box) -> float:
    X = np.linspace(box.lo[0], box.hi[0], 2001)[:, None]
    return max(1.0, float(np.abs(net(X)).max()))


@pytest.mark.parametrize("arch,lo,hi", [("1-16-16-1", -2.0, 1.5), ("1-8-8-3", -1.0, 3.0), ("1-12-12-12-2", 0.25, 2.0)])
def test_wide_and_deep_are_exact(arch, lo, hi):
    net = seeded_relu_net(arch)
    box = qe.Box([lo], [hi])
    cx = qe.regions(net, box)
    wide, deep = to_wide(net, box, 1e-3, cx=cx), to_deep(net, box, 1e-3, cx=cx)
    t = np.array(wide.provenance.breakpoints)
    eps = 1e-12 * (hi - lo)
    X = np.concatenate([
        box.sample(20000, np.random.default_rng(0)),
        np.array([[lo], [hi]]),
        t[:, None], t[:, None] - eps, t[:, None] + eps,
    ])
    ref = net(X)
    tol = 1e-9 * _scale(net, box)
    assert np.abs(wide(X) - ref).max() <= tol
    assert np.abs(deep(X) - ref).max() <= tol
    # sizes: wide = one hidden layer on lo and the T breakpoints; deep = chain of width K + 2
    T, K = len(t), net.out_dim
    assert wide.widths == (T + 1,)
    assert deep.hidden_layers == T + 1 and deep.width == (K + 2 if T else 1)
    assert wide.provenance.method == deep.provenance.method == "exact"
    assert wide.provenance.error_bound == 0.0
    # the recorded breakpoints are in the box's coordinate, each a kink of the original net: its slopes just
    # left and right of t differ (one-sided differences over a step well inside the neighbouring pieces)
    assert np.all((lo < t) & (t < hi)) and np.all(np.diff(t) > 0)
    h = 1e-7 * (hi - lo)
    left = (net(t[:, None]) - net(t[:, None] - h)) / h
    right = (net(t[:, None] + h) - net(t[:, None])) / h
    assert np.all(np.abs(right - left).max(axis=1) > 1e-6)


def test_breakpoints_match_kinks_found_by_sampling():
    net = seeded_relu_net("1-16-16-1")
    box = qe.Box([-2.0], [2.0])
    bp = breakpoints(qe.regions(net, box))
    h = 1e-4
    x = np.arange(-2.0 + h, 2.0 - h / 2, h)
    f = net(x[:, None])[:, 0]
    second = np.abs(f[2:] - 2 * f[1:-1] + f[:-2]) / h  # ≈ |slope jump| at a kink, ≈ 0 elsewhere
    kinks = x[1:-1][second > 1e-6]
    jumps = np.abs(np.diff(bp.slopes[:, 0]))
    assert np.all(jumps > 1e-9)  # equal-slope neighbours were merged
    # every sampled kink lies within one grid step of a breakpoint, and every breakpoint is seen
    assert np.all(np.min(np.abs(kinks[:, None] - bp.t[None, :]), axis=1) <= 1.01 * h)
    assert np.all(np.min(np.abs(bp.t[:, None] - kinks[None, :]), axis=1) <= 1.01 * h)
    # slopes: one finite difference inside each piece
    edges = np.concatenate([[-2.0], bp.t, [2.0]])
    mids = (edges[:-1] + edges[1:]) / 2
    fd = (net((mids + 1e-7)[:, None]) - net((mids - 1e-7)[:, None]))[:, 0] / 2e-7
    assert np.allclose(fd, bp.slopes[:, 0], atol=1e-6)


def test_affine_net_has_no_breakpoints():
    net = qe.ReluNet([np.array([[1.0]]), np.array([[2.0]])], [np.array([5.0]), np.array([-1.0])])
    box = qe.Box([-1.0], [1.0])  # the hidden unit x + 5 never switches off on the box
    wide, deep = to_wide(net, box, 1e-3), to_deep(net, box, 1e-3)
    assert wide.provenance.breakpoints == ()
    assert deep.hidden_layers == 1 and wide.widths == (1,)
    X = box.sample(100, np.random.default_rng(1))
    assert np.allclose(wide(X), net(X), atol=1e-12) and np.allclose(deep(X), net(X), atol=1e-12)
