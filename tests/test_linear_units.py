"""Linear (pass-through) units in the IR: ``ReluNet(..., relu_masks=...)``.

Checked against independent computations: the same function written as a plain ReLU chain on the box
(tests/oracles.py :func:`relu_chain_on_box`, no extra region boundary), regioncam's exact counts for
leaky-ReLU and residual nets, and ONNX Runtime / torch on the exported files far outside the box.
"""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
from benchmarks.linear_units import leaky_layers, leaky_net, regioncam_leaky, regioncam_residual, residual_blocks
from benchmarks.linear_units import residual_net as residual_chain

import quasieq as qe
from oracles import forward, relu_chain_on_box
from quasieq.io.onnx_io import build_model
from quasieq.verify.exact import exact_compare


def residual_net(rng: np.random.Generator, dim: int = 2, hidden: int = 8) -> qe.ReluNet:
    """f(x) = V (x + U relu(W x + b)) + c: the skip path x rides on linear units."""
    W, b = rng.normal(size=(hidden, dim)), rng.normal(size=hidden) * 0.5
    U, V = rng.normal(size=(dim, hidden)) / np.sqrt(hidden), rng.normal(size=(1, dim))
    first = np.vstack([W, np.eye(dim)])
    second = np.hstack([U, np.eye(dim)])  # x + U relu(...), all linear units
    masks = [np.r_[np.ones(hidden, bool), np.zeros(dim, bool)], np.zeros(dim, bool)]
    return qe.ReluNet([first, second, V], [np.r_[b, np.zeros(dim)], np.zeros(dim), [0.3]], relu_masks=masks)


# ----- the IR -----------------------------------------------------------------------------------------
def test_masks_default_counts_and_validation(rng):
    plain = qe.ReluNet([rng.normal(size=(3, 2)), rng.normal(size=(1, 3))], [np.zeros(3), np.zeros(1)])
    assert [m.tolist() for m in plain.relu_masks] == [[True, True, True]]
    assert (plain.relu_units, plain.linear_units, plain.has_linear_units) == (3, 0, False)
    net = residual_net(rng)
    assert (net.neurons, net.relu_units, net.linear_units, net.has_linear_units) == (12, 8, 4, True)
    assert net.relu_widths == (8, 0) and net.widths == (10, 2)
    with pytest.raises(ValueError):
        net.relu_masks[0][0] = False  # read-only
    with pytest.raises(qe.QuasieqError, match="layer 0: ReLU mask must be a boolean vector of length 3"):
        qe.ReluNet(plain.weights, plain.biases, relu_masks=[np.ones(2, bool)])
    with pytest.raises(qe.QuasieqError, match="dtype"):
        qe.ReluNet(plain.weights, plain.biases, relu_masks=[np.ones(3)])
    with pytest.raises(qe.QuasieqError, match="2 ReLU masks for 1 hidden layers"):
        qe.ReluNet(plain.weights, plain.biases, relu_masks=[np.ones(3, bool)] * 2)
    kept = net.with_provenance(qe.Provenance(method="x"))
    assert all(np.array_equal(a, b) for a, b in zip(kept.relu_masks, net.relu_masks, strict=True))


def test_forward_patterns_and_names(rng):
    net = residual_net(rng)
    box = qe.Box.cube(2, -2.0, 2.0)
    X = rng.uniform(-2, 2, size=(500, 2))
    chain = relu_chain_on_box(net, box.lo, box.hi)
    np.testing.assert_allclose(net.forward(X), forward(chain, X), rtol=1e-12, atol=1e-12)
    patterns = net.activation_pattern(X)
    assert patterns.shape == (500, 8)
    # the ReLU units' bits are those of the first 8 units of the chain; the shifted ones are always on
    z = X @ net.weights[0][:8].T + net.biases[0][:8]
    assert np.array_equal(patterns, z > 0)
    assert net.neuron_names() == [f"L1.N{j}" for j in range(8)]
    mixed = qe.ReluNet([np.eye(3), np.ones((1, 3))], [np.zeros(3), [0.0]], relu_masks=[np.array([False, True, False])])
    assert mixed.neuron_names() == ["L1.N1"]
    np.testing.assert_array_equal(mixed.forward([[-1.0, -2.0, -3.0]]), [[-4.0]])


# ----- regions ----------------------------------------------------------------------------------------
def _regions_agree(cx_a: qe.RegionComplex, cx_b: qe.RegionComplex, rng: np.random.Generator) -> None:
    """Same count, same volumes, and at random points the two regions holding it have the same map
    (so the partitions and maps coincide)."""
    assert len(cx_a) == len(cx_b)
    np.testing.assert_allclose(np.sort(cx_a.volumes), np.sort(cx_b.volumes), rtol=1e-9, atol=1e-12)
    X = cx_a.box.sample(2000, rng)
    ia, ib = cx_a.locate(X), cx_b.locate(X)
    keep = (ia >= 0) & (ib >= 0)
    assert keep.mean() > 0.99
    np.testing.assert_allclose(cx_a.A[ia[keep]], cx_b.A[ib[keep]], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cx_a.b[ia[keep]], cx_b.b[ib[keep]], rtol=1e-9, atol=1e-9)
    # a region of a matches the region of b at its interior point, volume for volume
    jb = cx_b.locate(cx_a.interior_points)
    assert len(np.unique(jb)) == len(cx_a) and (jb >= 0).all()
    np.testing.assert_allclose(cx_a.volumes, cx_b.volumes[jb], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_residual_regions_equal_the_plain_chain(seed):
    rng = np.random.default_rng(seed)
    net = residual_net(rng, dim=2, hidden=10)
    box = qe.Box.cube(2, -1.5, 1.5)
    cx = qe.regions(net, box)
    chain = qe.ReluNet(*zip(*relu_chain_on_box(net, box.lo, box.hi), strict=True))
    _regions_agree(cx, qe.regions(chain, box), rng)
    np.testing.assert_allclose(cx.evaluate(cx.interior_points), net.forward(cx.interior_points), rtol=1e-10, atol=1e-10)
    # the ±identity chain relu(x) − relu(−x) adds the breakpoints x_i = 0: never fewer regions
    W1, W2, W3 = (np.asarray(W) for W in net.weights)
    b1, b2, b3 = net.biases
    eye = np.eye(2)
    second = np.hstack([W2[:, :10], eye, -eye])  # x + U relu(...) read off relu(x) − relu(−x)
    pm = qe.ReluNet(
        [np.vstack([W1[:10], eye, -eye]), np.vstack([second, -second]), np.hstack([W3, -W3])],
        [np.r_[b1[:10], np.zeros(4)], np.r_[b2, -b2], b3],
    )
    X = box.sample(500, rng)
    np.testing.assert_allclose(pm.forward(X), net.forward(X), rtol=1e-10, atol=1e-10)
    assert len(qe.regions(pm, box)) >= len(cx)


@pytest.mark.parametrize("seed", range(3))
def test_region_counts_equal_regioncam(seed):
    pytest.importorskip("regioncam")
    rng = np.random.default_rng(100 + seed)
    slope = 0.1
    layers = leaky_layers((2, 12, 12, 1), seed)
    net = leaky_net(layers, slope)
    box = qe.Box.cube(2)
    X = box.sample(300, rng)
    Z = X  # LeakyReLU by hand
    for W, b in layers[:-1]:
        z = Z @ W.T + b
        Z = np.where(z > 0, z, slope * z)
    np.testing.assert_allclose(net.forward(X), Z @ layers[-1][0].T + layers[-1][1], rtol=1e-10, atol=1e-10)
    assert len(qe.regions(net, box)) == regioncam_leaky(layers, slope)

    blocks, readout = residual_blocks(2, 10, 2, seed)
    res = residual_chain(blocks, readout)
    Y = X  # the blocks by hand
    for block in blocks:
        Y = Y + np.maximum(Y @ block.W.T + block.b, 0.0) @ block.U.T
    np.testing.assert_allclose(res.forward(X), Y @ readout.T, rtol=1e-10, atol=1e-10)
    assert len(qe.regions(res, box)) == regioncam_residual(blocks)


# ----- exports ----------------------------------------------------------------------------------------
def _far_points(rng: np.random.Generator, dim: int) -> np.ndarray:
    """Points on every scale from the box to 10^4 outside it (an export must be exact everywhere)."""
    return rng.normal(size=(400, dim)) * 10.0 ** rng.uniform(-1, 4, size=(400, 1))


def test_exports_are_exact_everywhere(rng):
    net = residual_net(rng, dim=3, hidden=6)
    # interleave ReLU and linear units, so that a wrong unit order in an export shows
    perm = rng.permutation(net.weights[0].shape[0])
    weights = [net.weights[0][perm], net.weights[1][:, perm], net.weights[2]]
    net = qe.ReluNet(weights, [net.biases[0][perm], *net.biases[1:]],
                     relu_masks=[net.relu_masks[0][perm], net.relu_masks[1]])
    X = _far_points(rng, 3)
    expected = net.forward(X)
    scale = 1e-12 * (1.0 + np.abs(expected))
    session = ort.InferenceSession(build_model(net, "float64").SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.all(np.abs(session.run(None, {"input": X})[0] - expected) <= scale)
    module = qe.to_torch(net)
    with torch.no_grad():
        assert np.all(np.abs(module(torch.tensor(X)).numpy() - expected) <= scale)


def test_npz_and_complex_round_trip(rng, tmp_path):
    net = residual_net(rng)
    qe.save(net, tmp_path / "net.npz")
    back = qe.load(tmp_path / "net.npz")
    assert all(np.array_equal(a, b) for a, b in zip(back.relu_masks, net.relu_masks, strict=True))
    X = _far_points(rng, 2)
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    with np.load(tmp_path / "net.npz", allow_pickle=False) as f:
        assert sorted(k for k in f.files if k.startswith("relu")) == ["relu0", "relu1"]
    box = qe.Box.cube(2)
    cx = qe.regions(net, box)
    cx.save(tmp_path / "cx.npz")
    again = qe.RegionComplex.load(tmp_path / "cx.npz")
    assert again.net.linear_units == net.linear_units and len(again) == len(cx)
    np.testing.assert_array_equal(again.locate(cx.interior_points), np.arange(len(cx)))


@pytest.mark.parametrize(
    "masks, message",
    [
        ({"relu0": np.ones(10, bool)}, "do not match the 2 hidden layers"),
        ({"relu0": np.ones(10, bool), "relu1": np.ones(3, bool)}, "layer 1: ReLU mask"),
        ({"relu0": np.ones(10), "relu1": np.ones(2, bool)}, "relu0 must be a 1-D boolean array"),
    ],
)
def test_npz_bad_masks_are_refused(rng, tmp_path, masks, message):
    net = residual_net(rng)
    arrays = {f"{k}{i}": np.asarray(v) for i, (W, b) in enumerate(net.layers) for k, v in (("W", W), ("b", b))}
    np.savez(tmp_path / "bad.npz", **arrays, **masks)
    with pytest.raises(qe.QuasieqError, match=message):
        qe.load(tmp_path / "bad.npz")


# ----- consumers ----------------------------------------------------------------------------------------
def test_exact_compare_stacks_masks(rng):
    net = residual_net(rng)
    box = qe.Box.cube(2)
    chain = qe.ReluNet(*zip(*relu_chain_on_box(net, box.lo, box.hi), strict=True))
    same = exact_compare(net, chain, box, tol=0.0)
    assert same.disagreement_measure == 0.0 and same.sup_error < 1e-9
    shifted = qe.ReluNet(net.weights, [*net.biases[:-1], net.biases[-1] + 0.5], relu_masks=net.relu_masks)
    other = exact_compare(net, shifted, box, tol=0.0)
    assert other.disagreement_measure == pytest.approx(box.volume) and other.sup_error == pytest.approx(0.5)


@pytest.mark.parametrize(
    "form, method", [("wide", "compact"), ("deep", "compact"), ("wide", "exact"), ("deep", "exact")]
)
def test_constructions_of_a_net_with_linear_units_meet_delta(form, method):
    net = residual_net(np.random.default_rng(7), dim=2, hidden=6)
    box = qe.Box.cube(2)
    build = qe.to_wide if form == "wide" else qe.to_deep
    built = build(net, box, delta=1e-3, method=method)
    res = exact_compare(net, built, box)
    assert res.disagreement_measure < 1e-3
    if method == "exact":
        assert res.sup_error < 1e-9


def test_one_hidden_layer_with_linear_units_and_univariate():
    rng = np.random.default_rng(8)
    # one hidden layer whose last unit passes x through: the direct one-layer chain does not apply
    net = qe.ReluNet([np.vstack([rng.normal(size=(5, 2)), [[1.0, -1.0]]]), rng.normal(size=(1, 6))],
                     [np.r_[rng.normal(size=5), 0.0], [0.0]], relu_masks=[np.r_[np.ones(5, bool), False]])
    box = qe.Box.cube(2)
    deep = qe.to_deep(net, box, delta=1e-3, method="exact")
    assert exact_compare(net, deep, box).sup_error < 1e-9
    line = qe.ReluNet([np.vstack([rng.normal(size=(5, 1)), [[1.0]]]), rng.normal(size=(1, 6))],
                      [np.r_[rng.normal(size=5), 0.0], [0.0]], relu_masks=[np.r_[np.ones(5, bool), False]])
    interval = qe.Box.cube(1)
    for build in (qe.to_wide, qe.to_deep):
        assert exact_compare(line, build(line, interval, delta=1e-3), interval).disagreement_measure < 1e-3


def test_demorgan_classifier_with_linear_units():
    net = leaky_net(leaky_layers((2, 6, 3), 9), 0.2)
    box = qe.Box.cube(2)
    wide = qe.to_wide(net, box, delta=1e-2, task="classification", method="demorgan")
    res = exact_compare(net, wide, box, task="classification")
    assert res.label_disagreement_measure < 1e-2


def test_info_counts_relu_and_linear_units(rng, tmp_path):
    from typer.testing import CliRunner

    from quasieq.cli import app

    net = residual_net(rng)
    qe.save(net, tmp_path / "res.npz")
    result = CliRunner().invoke(app, ["info", str(tmp_path / "res.npz")])
    assert result.exit_code == 0, result.output
    assert re.search(r"ReLU units\s+│\s+8 ", result.stdout) and re.search(r"linear units\s+│\s+4 ", result.stdout)
    assert "affine + ReLU on 8, 2 linear" in result.stdout
    regions = CliRunner().invoke(app, ["regions", str(tmp_path / "res.npz"), "--box", "-1", "1",
                                       "--json", str(tmp_path / "r.json")])
    assert regions.exit_code == 0, regions.output
    doc = json.loads((tmp_path / "r.json").read_text())
    cx = qe.regions(net, qe.Box.cube(2))
    assert doc["count"] == len(cx)
    assert {len(r["pattern"]) for r in doc["regions"]} == {len("0" * 8 + "|")}  # 8 ReLU bits, empty 2nd layer
