"""``quasieq convert`` and the census in ``quasieq info``: the written file, run by the tool that reads it,
is the lowered net; a writer that loses structure is caught, and nothing is left behind."""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

import quasieq as qe
from quasieq.cli import app
from quasieq.io.torch_state import load_torch_state


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A torch CNN with max-pool straight on a convolution (pass-through units of either sign), exported by
    the legacy exporter, and the module."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(12, 2),
    ).eval()
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 4, 4), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    return path, model


def _inputs(n=64):
    return np.random.default_rng(3).normal(size=(n, 1, 4, 4))


@pytest.mark.parametrize("suffix", [".onnx", ".npz", ".qtorch"])
def test_convert_writes_the_lowered_net(cnn, tmp_path, suffix):
    source, model = cnn
    out = tmp_path / f"cnn{suffix}"
    result = _cli("convert", source, out, *(["--dtype", "float64"] if suffix == ".onnx" else []))
    assert result.exit_code == 0, result.output
    X = _inputs()
    with torch.no_grad():
        expected = model(torch.tensor(X, dtype=torch.float32)).double().numpy()
    flat = X.reshape(len(X), -1)
    if suffix == ".onnx":  # ONNX Runtime on the written file, fed the flattened input
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": flat})[0]
    elif suffix == ".qtorch":  # torch's own load_state_dict on the state file
        with torch.no_grad():
            got = load_torch_state(out)(torch.tensor(flat)).numpy()
    else:
        got = qe.load(out).forward(flat)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)  # the source ran in float32
    back, lowered = qe.load(out), qe.load(source)
    # the same ReLU units; reading an ONNX file back, the compiler may merge pass-through copies
    assert back.relu_units == lowered.relu_units and back.linear_units <= lowered.linear_units
    if suffix != ".onnx":
        assert all(np.array_equal(a, b) for a, b in zip(back.relu_masks, lowered.relu_masks, strict=True))
    assert "check of the written file" in result.stdout and "passed" in result.stdout


def test_info_prints_the_census(cnn):
    source, _ = cnn
    result = _cli("info", source)
    assert result.exit_code == 0, result.output
    lowered = qe.io.load_lowered(source)
    out = result.stdout
    for row in lowered.census.rows():
        assert re.search(r"\s+│\s+".join(re.escape(c) for c in row), out), row
    # the census accounts for every unit of the IR: ReLU units by op, pass-through units by op plus carried
    relu = sum(o.relu_units for o in lowered.census.ops)
    linear = sum(o.linear_units for o in lowered.census.ops) + lowered.census.carried_units
    assert (relu, linear) == (lowered.net.relu_units, lowered.net.linear_units), lowered.census
    assert re.search(r"input shape\s+│\s+1×4×4", out) and "MaxPool" in out


def test_a_writer_that_loses_the_masks_is_caught(cnn, tmp_path, monkeypatch):
    import quasieq.io.onnx_io as onnx_io

    source, _ = cnn
    monkeypatch.setattr(onnx_io, "_activation", lambda g, x, relu, i: g.node("Relu", [x], f"l{i}_relu"))
    out = tmp_path / "broken.onnx"
    result = _cli("convert", source, out)
    assert result.exit_code == 2
    assert "differs from ONNX Runtime on the written file" in result.output
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "target, extra, message",
    [("m.pt", [], "the file name must end in .onnx or .npz or .qtorch"),
     ("m.npz", ["--dtype", "float32"], ".npz files hold float64")],
)
def test_bad_targets(cnn, tmp_path, target, extra, message):
    source, _ = cnn
    result = _cli("convert", source, tmp_path / target, *extra)
    assert result.exit_code == 2 and message in result.output
    assert not list(tmp_path.iterdir())
