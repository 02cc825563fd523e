"""Construction sizes known before building (construct/sizes.py) against the built nets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from tests.oracles import seeded_relu_net

import quasieq as qe
from quasieq.construct import compact, job
from quasieq.construct.sizes import estimate
from quasieq.geometry import triangulate


def stored_bytes(net: qe.ReluNet) -> int:
    """Bytes of the arrays a built net holds (CSR data, indices, indptr; dense weights; biases)."""
    total = 0
    for W, b in net.layers:
        total += W.data.nbytes + W.indices.nbytes + W.indptr.nbytes if sp.issparse(W) else W.nbytes
        total += b.nbytes
    return total


@pytest.mark.parametrize("arch", ["2-8-8-1", "3-4-4-2"])
@pytest.mark.parametrize("form", ["wide", "deep"])
@pytest.mark.parametrize("method", ["compact", "paper"])
def test_estimate_matches_the_built_net(arch, form, method):
    net = seeded_relu_net(arch)
    box = qe.Box.cube(net.in_dim, -1.0, 1.0)
    cx = qe.regions(net, box)
    M = triangulate(cx.unit, merge=True).M
    built = (qe.to_wide if form == "wide" else qe.to_deep)(net, box, 1e-2, method=method, cx=cx)
    size = estimate(form, method, M, net.in_dim, net.out_dim)
    assert built.provenance.simplices == M
    assert (size.hidden_layers, size.width, size.neurons) == (built.hidden_layers, built.width, built.neurons)
    nonzeros = built.parameters - sum(b.size for b in built.biases)
    assert nonzeros <= size.max_nonzeros
    assert stored_bytes(built) <= size.bytes


def test_too_large_a_form_is_refused_before_it_is_built(monkeypatch):
    net = seeded_relu_net("2-8-8-1")
    box = qe.Box.cube(2)

    def never(*args, **kwargs):
        raise AssertionError("the construction must not start")

    monkeypatch.setattr(compact, "compact_wide", never)
    with pytest.raises(qe.QuasieqError, match=r"--max-form-bytes") as info:
        qe.to_wide(net, box, 1e-3, max_bytes=10_000)
    M = triangulate(qe.regions(net, box).unit, merge=True).M
    assert f"M = {M:,d} simplices" in str(info.value)
    assert f"{estimate('wide', 'compact', M, 2, 1).neurons:,d} neurons" in str(info.value)


def test_max_simplices_stops_the_enumeration(monkeypatch):
    """With no complex given, --max-simplices N stops enumerating at N regions instead of enumerating
    all of them first (each region is at least one simplex)."""
    net = seeded_relu_net("2-16-16-1")  # 127 regions
    seen = []
    real = job.regions

    def spy(*args, **kwargs):
        seen.append(kwargs.get("max_regions"))
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "regions", spy)
    with pytest.raises(qe.QuasieqError, match=r"more than 10 regions .* raise max_simplices="):
        qe.to_wide(net, qe.Box.cube(2), 1e-3, max_simplices=10)
    assert seen == [10]
    assert np.isfinite(qe.to_wide(net, qe.Box.cube(2), 1e-3, max_simplices=10_000).provenance.error_bound)


def test_a_delta_whose_weights_overflow_float32_is_refused_before_building(monkeypatch, tmp_path):
    """δ = 1e-40 needs weights ≥ 1/ε ~ 1e40 > float32's 3.4e38: refused before the form is built, and a
    net with such a weight is never written as float32 ONNX (float64 is fine)."""
    net = seeded_relu_net("2-8-8-1")

    def never(*args, **kwargs):
        raise AssertionError("the construction must not start")

    monkeypatch.setattr(compact, "compact_wide", never)
    refusal = r"a delta of 2.5e-41 of the box.s volume needs weights of at least .*e\+\d\d, beyond the largest float32"
    with pytest.raises(qe.QuasieqError, match=refusal):
        qe.to_wide(net, qe.Box.cube(2), 1e-40)
    monkeypatch.undo()
    huge = qe.ReluNet([np.array([[1e39, 0.0]]), np.ones((1, 1))], [np.zeros(1), np.zeros(1)])
    with pytest.raises(qe.QuasieqError, match=r"weight of magnitude 1e\+39, beyond the largest float32"):
        qe.save(huge, tmp_path / "huge.onnx", dtype="float32")
    assert not (tmp_path / "huge.onnx").exists()
    qe.save(huge, tmp_path / "huge64.onnx", dtype="float64")
    assert qe.load(tmp_path / "huge64.onnx").max_abs_weight() == 1e39
