"""Slices: ``qe.slice`` and ``Slice.through`` against a hand-composed net and the original's forward pass."""

from __future__ import annotations

import numpy as np
import pytest

import quasieq as qe
from conftest import random_net
from quasieq.slices import Slice, read_slice_points


def test_slice_of_a_4d_net_equals_the_hand_composed_2d_net(rng):
    net = random_net((4, 10, 8, 2), rng)
    masks = [rng.random(10) < 0.7, np.ones(8, bool)]
    net = qe.ReluNet(net.weights, net.biases, relu_masks=masks)
    p0, d = rng.normal(size=4), rng.normal(size=(2, 4))
    sliced = qe.slice(net, p0, d)
    assert (sliced.in_dim, sliced.widths, sliced.out_dim) == (2, net.widths, 2)
    # by hand: a first layer of 4 linear units computing x = p0 + dᵀ t, then the net itself
    composed = qe.ReluNet([d.T, *net.weights], [p0, *net.biases], relu_masks=[np.zeros(4, bool), *masks])
    box = qe.Box.cube(2, -1.5, 1.5)
    T = box.sample(500, rng)
    np.testing.assert_allclose(sliced.forward(T), net.forward(p0 + T @ d), rtol=1e-12, atol=1e-12)
    a, b = qe.regions(sliced, box), qe.regions(composed, box)
    assert len(a) == len(b)
    np.testing.assert_allclose(np.sort(a.volumes), np.sort(b.volumes), rtol=1e-9, atol=1e-12)
    j = b.locate(a.interior_points)
    assert len(np.unique(j)) == len(a)
    np.testing.assert_allclose(a.A, b.A[j], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.b, b.b[j], rtol=1e-9, atol=1e-9)


def test_plane_through_three_points(rng, tmp_path):
    net = random_net((3, 6, 1), rng)
    P = rng.normal(size=(3, 3))
    plane = Slice.through(P, source="p.npy")
    assert plane.kind == "plane" and plane.dim == 2
    np.testing.assert_allclose(plane.inputs([[0, 0], [1, 0], [0, 1]]), P, atol=1e-15)
    sliced = plane.apply(net)
    np.testing.assert_allclose(sliced.forward([[1.0, 0.0]]), net.forward(P[1:2]), rtol=1e-12)
    doc = plane.to_json()
    assert doc["kind"] == "plane" and doc["source"] == "p.npy" and np.allclose(doc["points"], P)
    # a model input shape (3, 1, 3) is read in C order
    np.save(tmp_path / "pts.npy", P.reshape(3, 1, 3))
    assert np.array_equal(read_slice_points(tmp_path / "pts.npy", "plane").points, P)
    line = read_slice_points(_saved(tmp_path, P[:2]), "line")
    assert line.kind == "line" and line.apply(net).in_dim == 1


def _saved(tmp_path, array):
    path = tmp_path / "line.npy"
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    "points, message",
    [
        (np.zeros((3, 3)), "linearly dependent"),
        (np.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]]), "linearly dependent"),
        (np.ones((4, 3)), "give 2 \\(a line\\) or 3"),
        (np.array([[0.0, 0, np.nan], [1, 0, 0], [0, 1, 0]]), "finite"),
    ],
)
def test_degenerate_slices_are_refused(points, message):
    with pytest.raises(qe.QuasieqError, match=message):
        Slice.through(points)


def test_bad_points_files(tmp_path, rng):
    net = random_net((3, 4, 1), rng)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(qe.QuasieqError, match="pickled"):
        read_slice_points(tmp_path / "obj.npy", "plane")
    np.save(tmp_path / "two.npy", rng.normal(size=(2, 3)))
    with pytest.raises(qe.QuasieqError, match="a plane needs an array of 3 inputs"):
        read_slice_points(tmp_path / "two.npy", "plane")
    np.save(tmp_path / "wide.npy", rng.normal(size=(3, 5)))
    with pytest.raises(qe.QuasieqError, match="the points have 5 entries each but the net takes 3"):
        read_slice_points(tmp_path / "wide.npy", "plane").apply(net)
    with pytest.raises(qe.QuasieqError, match="origin has 2 entries"):
        qe.slice(net, [0.0, 0.0], [[1.0, 0.0, 0.0]])
