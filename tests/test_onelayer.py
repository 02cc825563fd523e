"""Exact deep-narrow form of one-hidden-layer nets (construct.onelayer).

Independent checks: the input net's own forward pass at random points and at every box corner, the
exact common-refinement checker (qe.compare(exact=True)), and the sizes of the module docstring
(width D + 1 + K, w hidden layers) counted from the built layers.
"""

from __future__ import annotations

import numpy as np
import pytest

import quasieq as qe
from conftest import random_net
from quasieq.construct.onelayer import onelayer_deep


def _box(D: int, rng: np.random.Generator) -> qe.Box:
    """A box off the origin with unequal sides, so the shifts lo and s both matter."""
    lo = rng.uniform(-2.0, 0.5, size=D)
    return qe.Box(lo, lo + rng.uniform(0.5, 3.0, size=D))


@pytest.mark.parametrize("D", [1, 2, 3, 4])
@pytest.mark.parametrize("K", [1, 2])
def test_equals_the_net_at_random_points_and_corners(D, K, rng):
    w = 9
    net = random_net((D, w, K), rng)
    # output weights of mixed sign and size: partial sums dip well below zero, so the shift B is needed
    net = qe.ReluNet([net.weights[0], 5.0 * net.weights[1]], [net.biases[0], net.biases[1] - 3.0])
    box = _box(D, rng)
    H = onelayer_deep(net, box)
    X = np.vstack([box.sample(4000, rng), box.vertices()])
    f = net.forward(X)
    scale = max(1.0, float(np.abs(f).max()))
    assert np.abs(H.forward(X) - f).max() <= 1e-9 * scale
    assert H.width == D + 1 + K and set(H.widths) == {D + 1 + K}
    assert H.hidden_layers == w and H.depth == w + 1
    assert not H.is_sparse
    assert H.provenance.method == "exact" and H.provenance.error_bound == 0.0


def test_running_sum_stays_active_on_the_box(rng):
    """Every ReLU of the carried input and of the running sum is strictly active on the box (they act
    as the identity, module docstring), checked on the built net's pre-activations at samples and corners."""
    D, K, w = 3, 2, 12
    net = random_net((D, w, K), rng)
    net = qe.ReluNet([net.weights[0], -4.0 * np.abs(net.weights[1])], list(net.biases))  # sums only decrease
    box = _box(D, rng)
    H = onelayer_deep(net, box)
    X = np.vstack([box.sample(2000, rng), box.vertices()])
    for Z in H.pre_activations(X):
        assert Z[:, :D].min() > 0.0  # carried input
        assert Z[:, D + 1 :].min() >= 1.0 - 1e-9  # running sums: S + B ≥ 1


@pytest.mark.parametrize("arch", [(2, 1), (2, 4, 4, 1), (3, 5, 2, 3, 1)])
def test_refuses_nets_without_exactly_one_hidden_layer(arch, rng):
    net = random_net(arch, rng)
    with pytest.raises(qe.QuasieqError, match="exactly 1 hidden layer"):
        onelayer_deep(net, qe.Box.cube(arch[0]))


def test_refuses_a_box_of_the_wrong_dimension(rng):
    with pytest.raises(qe.QuasieqError, match="dimension"):
        onelayer_deep(random_net((2, 4, 1), rng), qe.Box.cube(3))


@pytest.mark.parametrize("D, K", [(2, 1), (2, 2), (3, 1)])
def test_exact_checker_certifies_zero_error(D, K, rng):
    """The exact checker (common refinement of both nets' regions) finds disagreement measure 0 and a
    sup error at rounding level."""
    net = random_net((D, 7, K), rng)
    box = _box(D, rng)
    H = onelayer_deep(net, box)
    report = qe.compare(net, H, box, exact=True)
    scale = max(1.0, float(np.abs(net.forward(box.vertices())).max()))
    assert report.method == "exact"
    assert report.disagreement_measure == 0.0
    assert report.sup_error <= 1e-9 * scale
