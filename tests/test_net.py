"""ReluNet: sizes against counts taken from the layer shapes, forward against PyTorch, sparse = dense."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

import quasieq as qe
from conftest import random_net


@pytest.mark.parametrize("arch", [(2, 1), (3, 8, 1), (2, 16, 16, 1), (5, 3, 9, 4, 2), (1, 7, 7, 7, 7, 3)])
def test_sizes_follow_definition_1(arch, rng):
    net = random_net(arch, rng)
    hidden = arch[1:-1]
    assert (net.in_dim, net.out_dim, net.widths) == (arch[0], arch[-1], hidden)
    assert net.width == (max(hidden) if hidden else arch[0])
    assert net.hidden_layers == len(arch) - 2
    assert net.depth == len(arch) - 1  # hidden layers + 1
    assert net.neurons == sum(hidden)
    assert net.parameters == sum(a * b + b for a, b in pairwise(arch))  # Gaussian: no zeros
    assert net.neuron_names() == [f"L{k}.N{j}" for k, w in enumerate(hidden, start=1) for j in range(w)]
    assert repr(net).startswith(f"ReluNet({'-'.join(map(str, arch))}, depth={len(arch) - 1}")


def test_sparse_parameters_count_non_zeros(rng):
    W = sp.random(50, 10, density=0.1, random_state=0, format="csr")
    net = qe.ReluNet([W, rng.normal(size=(1, 50))], [np.zeros(50), np.zeros(1)])
    assert net.parameters == W.nnz + 50 + 50 + 1
    assert net.is_sparse


def test_forward_matches_torch(rng):
    net = random_net((4, 12, 9, 3), rng)
    module = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 3)).double()
    with torch.no_grad():
        for linear, (W, b) in zip(module[::2], net.layers, strict=True):
            linear.weight.copy_(torch.tensor(W))
            linear.bias.copy_(torch.tensor(b))
        X = rng.normal(size=(200, 4))
        expected = module(torch.tensor(X)).numpy()
    assert np.abs(net.forward(X) - expected).max() < 1e-13
    assert net.forward(X[0]).shape == (1, 3)
    pre = net.pre_activations(X)
    assert np.array_equal(net.activation_pattern(X), np.concatenate([z > 0 for z in pre], axis=1))


def test_sparse_and_dense_forward_agree(rng):
    dense = [rng.normal(size=(30, 5)) * (rng.random((30, 5)) < 0.3), rng.normal(size=(2, 30))]
    biases = [rng.normal(size=30), rng.normal(size=2)]
    a = qe.ReluNet(dense, biases)
    b = qe.ReluNet([sp.csr_matrix(W) for W in dense], biases)
    X = rng.normal(size=(100, 5))
    assert np.abs(a.forward(X) - b.forward(X)).max() < 1e-13
    assert a.parameters == b.parameters


def test_net_is_immutable(rng):
    net = random_net((2, 3, 1), rng)
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 1.0
    with pytest.raises(ValueError):
        net.biases[0][0] = 1.0


@pytest.mark.parametrize("weights, biases, pattern", [
    ([], [], "at least one affine layer"),
    ([np.ones((2, 2))], [np.ones(2), np.ones(1)], "1 weight matrices but 2 bias vectors"),
    ([np.ones((2, 2))], [np.ones(3)], "layer 0: bias has 3 entries but the weight has 2 rows"),
    (
        [np.ones((2, 2)), np.ones((1, 3))], [np.ones(2), np.ones(1)],
        "layer 1: weight expects 3 inputs but layer 0 gives 2",
    ),
    ([np.ones(3)], [np.ones(3)], r"layer 0: weight must be a 2-D \(out, in\) matrix"),
    ([np.array([[np.inf]])], [np.ones(1)], "layer 0: weight holds non-finite"),
    ([np.ones((1, 1))], [np.array([np.nan])], "layer 0: bias holds non-finite"),
])
def test_bad_construction_refused(weights, biases, pattern):
    with pytest.raises(qe.QuasieqError, match=pattern):
        qe.ReluNet(weights, biases)


def test_bad_forward_input_refused(rng):
    net = random_net((3, 4, 1), rng)
    with pytest.raises(qe.QuasieqError, match=r"input must have shape \(N, 3\), got \(5, 2\)"):
        net.forward(np.zeros((5, 2)))


def test_with_first_layer_is_the_net_built_with_that_layer():
    """The unit-box fold's shortcut (later layers shared, not checked again) gives the net the
    constructor builds from the same layers, and checks the new layer as the constructor does."""
    rng = np.random.default_rng(3)
    W = [rng.normal(size=(5, 3)), rng.normal(size=(4, 5)), rng.normal(size=(2, 4))]
    b = [rng.normal(size=5), rng.normal(size=4), rng.normal(size=2)]
    masks = [np.array([True, False, True, True, True]), np.ones(4, dtype=bool)]
    net = qe.ReluNet(W, b, relu_masks=masks)
    W0, b0 = rng.normal(size=(5, 3)), rng.normal(size=5)
    fast, slow = net.with_first_layer(W0, b0), qe.ReluNet([W0, *W[1:]], [b0, *b[1:]], relu_masks=masks)
    X = rng.normal(size=(50, 3))
    np.testing.assert_array_equal(fast.forward(X), slow.forward(X))
    for mine, theirs in zip([*fast.weights, *fast.biases, *fast.relu_masks],
                            [*slow.weights, *slow.biases, *slow.relu_masks], strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert fast.relu_units == slow.relu_units == 8
    with pytest.raises(qe.QuasieqError, match="6 rows|5 rows"):
        net.with_first_layer(np.ones((6, 3)), np.ones(6))
    with pytest.raises(qe.QuasieqError, match="non-finite"):
        net.with_first_layer(np.full((5, 3), np.inf), b0)
