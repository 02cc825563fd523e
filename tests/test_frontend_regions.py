"""Regions of lowered nets with max-pool, clip and abs: the engine against the LP brute force.

The lowered net's pass-through units are rewritten as a plain ReLU chain equal to it on the box with no
extra boundary (tests/oracles.py ``relu_chain_on_box``), whose regions ``brute_force_regions`` finds by
LP tree search; counts and volumes must agree, and every region's affine map must match ONNX Runtime
on the exported source model at random points of that region.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import quasieq as qe
from oracles import brute_force_regions, relu_chain_on_box


class MaxPoolNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 6), nn.Linear(3, 1)

    def forward(self, x):
        return self.b(F.max_pool1d(self.a(x).view(-1, 1, 6), 2).flatten(1))


class AbsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(2, 4), nn.Linear(4, 3), nn.Linear(3, 1)

    def forward(self, x):
        return self.c(F.relu(self.b(self.a(x).abs())))


NETS = {
    "maxpool": MaxPoolNet,
    "clip": lambda: nn.Sequential(nn.Linear(2, 5), nn.Hardtanh(-0.5, 0.5), nn.Linear(5, 1)),
    "abs": AbsNet,
}


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("seed", [0, 1])
def test_region_counts_match_lp_brute_force(tmp_path, name, seed):
    torch.manual_seed(seed)
    module = NETS[name]().eval()
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 2),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})
    net = qe.load(path)
    assert net.has_linear_units == (name == "maxpool")  # max(a, b) = b + relu(a − b) passes b through
    box = qe.Box.cube(2, -1.5, 1.5)
    cx = qe.regions(net, box)
    brute = brute_force_regions(relu_chain_on_box(net, box.lo, box.hi), box.lo, box.hi)
    assert len(cx) == len(brute) > 1
    assert sorted(r.volume for r in cx) == pytest.approx(sorted(r.volume for r in brute), rel=1e-9, abs=1e-12)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    for region in cx:
        # points of the region: convex combinations of its vertices, pulled towards the interior point
        weights = rng.dirichlet(np.ones(len(region.vertices)), size=5)
        X = 0.5 * (weights @ region.vertices) + 0.5 * region.interior_point
        A, b = region.affine
        ort_y = session.run(None, {"x": X.astype(np.float32)})[0]
        assert np.abs(X @ A.T + b - ort_y).max() <= 1e-5 * max(1.0, float(np.abs(ort_y).max()))
