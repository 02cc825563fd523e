"""A composed model zoo through the command line: a small CNN with BatchNorm and max-pool (sliced through
three images), a residual MLP with LeakyReLU (on a box) and a 1-D conv net on 4 inputs (regions on its
4-D box, rebuilds on a plane through three inputs).

Each model is a torch module exported to ONNX; it goes through ``info``, ``regions``, ``wide``, ``deep``
and ``compare``. The rebuilt nets must meet δ by the commands' own checks (exit 0) and, independently,
against ONNX Runtime running the *source* model on random points of the box or plane.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import quasieq as qe
from quasieq.verify.compare import clopper_pearson
from test_cli import invoke, table_int


class ResidualMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(2, 4), nn.Linear(4, 2), nn.Linear(2, 1)

    def forward(self, x):
        return self.head(F.leaky_relu(x + self.b(F.relu(self.a(x))), 0.2))


def cnn() -> nn.Module:
    module = nn.Sequential(nn.Conv2d(1, 2, 2), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(2, 1))
    with torch.no_grad():
        bn = module[1]
        bn.running_mean.copy_(torch.tensor([0.1, -0.2]))
        bn.running_var.copy_(torch.tensor([0.5, 2.0]))
    return module


def conv1d() -> nn.Module:
    return nn.Sequential(nn.Unflatten(1, (1, 4)), nn.Conv1d(1, 2, 2), nn.ReLU(), nn.AvgPool1d(2), nn.Flatten(),
                         nn.Linear(2, 1))


#: name -> (module factory, per-sample input shape, slice (True: a plane through three inputs))
ZOO = {
    "cnn": (cnn, (1, 3, 3), True),
    "residual-mlp": (ResidualMLP, (2,), False),
    "conv1d": (conv1d, (4,), True),
}
DELTA = 0.02


def export(module: nn.Module, shape: tuple[int, ...], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, *shape),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})


def source_on(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0].astype(np.float64)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_through_the_cli(tmp_path, name):
    factory, shape, on_plane = ZOO[name]
    torch.manual_seed(4)
    module = factory().eval()
    model = tmp_path / f"{name}.onnx"
    export(module, shape, model)
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(3, *shape)).astype(np.float32)
    np.save(tmp_path / "plane.npy", points)
    where = ["--plane", tmp_path / "plane.npy"] if on_plane else ["--box", -1, 1]

    info = invoke("info", model)
    assert info.exit_code == 0, info.output
    net = qe.load(model)
    assert table_int(info.stdout, "ReLU units") == net.relu_units
    assert table_int(info.stdout, "linear units") == net.linear_units

    converted = tmp_path / f"{name}.npz"
    result = invoke("convert", model, converted)
    assert result.exit_code == 0, result.output
    X = rng.uniform(-1, 1, size=(64, *shape))
    # the converted file, read back on its own, computes the source model (ONNX Runtime, float32 rounding)
    np.testing.assert_allclose(qe.load(converted).forward(X.reshape(64, -1)), source_on(model, X),
                               rtol=1e-4, atol=1e-4)

    regions = invoke("regions", model, *(["--box", -1, 1] if name == "conv1d" else where), "--json",
                     tmp_path / "regions.json")
    assert regions.exit_code == 0, regions.output
    doc = json.loads((tmp_path / "regions.json").read_text())
    assert doc["count"] == table_int(regions.stdout, "regions") > 1
    assert doc["volume_total"] == pytest.approx(2.0 ** (4 if name == "conv1d" else 2) if not on_plane or
                                                name == "conv1d" else 1.0, rel=1e-9)

    built = {}
    for form in ("wide", "deep"):
        out = tmp_path / f"{form}.onnx"
        result = invoke(form, model, *where, "--delta", DELTA, "--samples", 4000, "--out", out)
        assert result.exit_code == 0, result.output  # the command's own δ check passed
        built[form] = out
        # independently: the rebuilt net against ONNX Runtime on the source model, on the same domain
        st = rng.uniform(0, 1, size=(4000, 2)) if on_plane else rng.uniform(-1, 1, size=(4000, 2))
        P = points.reshape(3, -1).astype(np.float64)
        X = (P[0] + st[:, :1] * (P[1] - P[0]) + st[:, 1:] * (P[2] - P[0])).reshape(len(st), *shape) if on_plane \
            else st
        source = source_on(model, X)
        rebuilt = source_on(out, st)
        disagree = np.abs(source - rebuilt).max(axis=1) > 1e-4 * max(1.0, float(np.abs(source).max()))
        area = 1.0 if on_plane else 4.0
        assert clopper_pearson(int(disagree.sum()), len(st))[1] * area <= DELTA  # on the 95% upper limit
    compared = invoke("compare", built["wide"], built["deep"], "--box", *((0, 1) if on_plane else (-1, 1)),
                      "--samples", 4000, "--max-measure", 2 * DELTA)
    assert compared.exit_code == 0, compared.output


def test_trailing_softmax_in_the_cli(tmp_path):
    """Dropped with a printed note for --task classification; refused in one line otherwise."""
    torch.manual_seed(1)  # a net with two labels on the box
    module = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.Softmax(dim=1)).eval()
    model = tmp_path / "clf.onnx"
    export(module, (2,), model)
    refused = invoke("regions", model, "--box", -1, 1)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "Softmax is not piecewise linear" in refused.stderr
    built = invoke("wide", model, "--box", -1, 1, "--task", "classification", "--delta", 0.05, "--samples", 2000)
    assert built.exit_code == 0, built.output
    assert "note: dropped the trailing Softmax" in built.stderr
