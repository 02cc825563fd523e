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


# ----- the CLI ------------------------------------------------------------------------------------------
def _cli(*args):
    from typer.testing import CliRunner

    from quasieq.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def five_d(tmp_path, rng):
    net = random_net((5, 10, 6, 1), rng)
    qe.save(net, tmp_path / "net.npz")
    np.save(tmp_path / "plane.npy", rng.normal(size=(3, 5)))
    np.save(tmp_path / "line.npy", rng.normal(size=(2, 5)))
    return net, tmp_path


def test_cli_regions_on_a_plane(five_d):
    import json

    net, tmp = five_d
    result = _cli("regions", tmp / "net.npz", "--plane", tmp / "plane.npy", "--json", tmp / "r.json",
                  "--plot", tmp / "r.png")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp / "r.json").read_text())
    plane = read_slice_points(tmp / "plane.npy", "plane")
    assert doc["count"] == len(qe.regions(plane.apply(net), qe.Box.cube(2, 0.0, 1.0)))
    assert doc["box"]["lo"] == [0.0, 0.0] and doc["box"]["hi"] == [1.0, 1.0]
    assert doc["slice"]["kind"] == "plane" and doc["slice"]["source"] == "plane.npy"
    np.testing.assert_allclose(doc["slice"]["points"], np.load(tmp / "plane.npy"))
    # every region's map in (s, t) is the original net at x = p0 + s d1 + t d2
    region = doc["regions"][0]
    st = np.array(region["interior_point"])
    expected = net.forward(plane.inputs(st))[0]
    np.testing.assert_allclose(np.array(region["affine"]["A"]) @ st + region["affine"]["b"], expected, rtol=1e-9)
    assert "plane through the 3 inputs of plane.npy" in " ".join(result.stdout.split())


def test_cli_wide_on_a_line_and_compare_on_a_plane(five_d):
    import json

    net, tmp = five_d
    result = _cli("wide", tmp / "net.npz", "--line", tmp / "line.npy", "--box", "-1", "2", "--json", tmp / "w.json",
                  "--out", tmp / "w.npz", "--samples", "20000")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp / "w.json").read_text())
    assert doc["slice"]["kind"] == "line" and doc["report"]["disagreement_measure"] <= 1e-3
    built = qe.load(tmp / "w.npz")
    line = read_slice_points(tmp / "line.npy", "line")
    s = np.linspace(-1, 2, 301)[:, None]
    assert built.in_dim == 1
    assert np.mean(np.abs(built.forward(s) - net.forward(line.inputs(s))) > 1e-6) < 0.01
    other = qe.ReluNet(net.weights, [*net.biases[:-1], net.biases[-1] + 1.0])
    qe.save(other, tmp / "other.npz")
    result = _cli("compare", tmp / "net.npz", tmp / "other.npz", "--plane", tmp / "plane.npy", "--exact",
                  "--json", tmp / "c.json")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp / "c.json").read_text())
    assert doc["slice"]["kind"] == "plane" and doc["disagreement_measure"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--plane", "plane.npy", "--line", "line.npy"], "give at most one of --plane and --line"),
        (["--plane", "line.npy"], "a plane needs an array of 3 inputs"),
        (["--line", "missing.npy"], "no such points file"),
    ],
)
def test_cli_bad_slices(five_d, extra, message):
    _, tmp = five_d
    result = _cli("regions", tmp / "net.npz", *[tmp / e if e.endswith(".npy") else e for e in extra],
                  "--json", tmp / "out.json")
    assert result.exit_code == 2
    assert message in result.output and not (tmp / "out.json").exists()


def test_region_maps_on_a_plane_through_a_conv_nets_inputs_match_onnx_runtime(tmp_path):
    """A small CNN (convolutions, max-pool) built in torch, exported with torch.onnx.export(dynamo=False)
    and loaded by the compiler; on the plane through three of its inputs, every region's affine map in (s, t) equals
    ONNX Runtime on the file at random points of that region (to float32 rounding)."""
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 2, 2),
        torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2),
    ).eval()
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 6, 6), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    net = qe.load(path)
    assert net.has_linear_units  # max(a, b) = b + relu(a − b) carries b on a linear unit
    rng = np.random.default_rng(5)
    images = rng.normal(size=(3, 1, 6, 6))
    plane = Slice.through(images)
    box = qe.Box.cube(2, 0.0, 1.0)
    cx = qe.regions(plane.apply(net), box)
    assert len(cx) > 5
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # random points of each region: convex combinations of its vertices pulled towards its interior point
    owner, points = [], []
    for r in cx:
        w = rng.dirichlet(np.ones(len(r.vertices)), size=4)
        points.append(0.5 * (w @ r.vertices) + 0.5 * r.interior_point)
        owner += [r.index] * 4
    T, owner = np.vstack(points), np.array(owner)
    X = plane.inputs(T).reshape(-1, 1, 6, 6).astype(np.float32)
    theirs = session.run(None, {"x": X})[0].astype(np.float64)
    ours = np.einsum("nkd,nd->nk", cx.A[owner], T) + cx.b[owner]
    scale = 1.0 + np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= 1e-5 * scale
