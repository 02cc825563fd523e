"""The ``.qtorch`` PyTorch state file: round trips through torch's own ``load_state_dict``, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import quasieq as qe
from conftest import random_net
from quasieq.io.torch_state import FORMAT, load_torch_state


def _masked(rng) -> qe.ReluNet:
    net = random_net((3, 7, 5, 2), rng)
    return qe.ReluNet(net.weights, net.biases, relu_masks=[rng.random(7) < 0.5, np.ones(5, bool)])


@pytest.mark.parametrize("dtype, tol, far", [("float64", 1e-12, 3.0), ("float32", 1e-5, 0.0)])
def test_round_trip_through_torch(rng, tmp_path, dtype, tol, far):
    """float64 exact to rounding on points up to 10^3 outside the unit box; float32 to its rounding."""
    net = _masked(rng)
    path = tmp_path / "net.qtorch"
    qe.save(net, path, dtype=dtype)
    X = rng.normal(size=(300, 3)) * 10.0 ** rng.uniform(-1, far, size=(300, 1))
    expected = net.forward(X)
    module = load_torch_state(path)
    assert module[0].weight.dtype == getattr(torch, dtype)
    with torch.no_grad():
        got = module(torch.tensor(X, dtype=getattr(torch, dtype))).double().numpy()
    assert np.all(np.abs(got - expected) <= tol * (1.0 + np.abs(expected)))
    back = qe.load(path)
    assert all(np.array_equal(a, b) for a, b in zip(back.relu_masks, net.relu_masks, strict=True))
    if dtype == "float64":
        np.testing.assert_array_equal(back.forward(X), expected)
    with np.load(path, allow_pickle=False) as f:  # the documented layout
        assert str(f["format"]) == FORMAT
        assert [m["type"] for m in json.loads(str(f["modules"]))] == ["Linear", "PartialReLU", "Linear", "ReLU",
                                                                       "Linear"]
        assert f["1.mask"].dtype == np.bool_


def _write(path, modules, **arrays):
    with open(path, "wb") as f:  # np.savez would append .npz to a path
        np.savez(f, format=np.array(FORMAT), modules=np.array(json.dumps(modules)), **arrays)


@pytest.mark.parametrize(
    "modules, arrays, message",
    [
        ([{"type": "Linear", "in_features": 2, "out_features": 1}],
         {"0.weight": np.zeros((1, 3)), "0.bias": np.zeros(1)}, "0.weight has shape"),
        ([{"type": "Linear", "in_features": 2, "out_features": 1}], {"0.weight": np.zeros((1, 2))},
         "do not match the modules' state"),
        ([{"type": "Conv2d"}], {}, "module 0 has type 'Conv2d'"),
        ([{"type": "Linear", "in_features": "2", "out_features": 1}], {}, "non-negative integer 'in_features'"),
        ([{"type": "ReLU"}], {}, "are not Linear"),
    ],
)
def test_bad_files_are_refused(tmp_path, modules, arrays, message):
    _write(tmp_path / "bad.qtorch", modules, **arrays)
    with pytest.raises(qe.QuasieqError, match=message):
        qe.load(tmp_path / "bad.qtorch")


def test_pickles_and_foreign_archives_are_refused(tmp_path):
    with open(tmp_path / "obj.qtorch", "wb") as f:
        np.savez(f, format=np.array(FORMAT), modules=np.array([{"a": 1}], dtype=object))
    with pytest.raises(qe.QuasieqError, match="pickled"):
        qe.load(tmp_path / "obj.qtorch")
    with open(tmp_path / "plain.qtorch", "wb") as f:
        np.savez(f, W0=np.zeros((1, 2)), b0=np.zeros(1))
    with pytest.raises(qe.QuasieqError, match="format"):
        qe.load(tmp_path / "plain.qtorch")
    (tmp_path / "text.qtorch").write_text("not a zip")
    with pytest.raises(qe.QuasieqError, match="not a quasieq .qtorch file"):
        load_torch_state(tmp_path / "text.qtorch")
