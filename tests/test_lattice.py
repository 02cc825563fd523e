"""Exact lattice (max–min) forms: zero error everywhere on the box, sizes within the stated bounds.

Independent checks: the net's own forward pass at random points and at every region vertex (where the
pieces meet, so a wrong term set shows up), and hand-derivable sizes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import quasieq as qe
from quasieq.construct.lattice import lattice_deep, lattice_of, lattice_wide


def seeded(arch: tuple[int, ...], seed: int = 0) -> qe.ReluNet:
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    for i in range(len(arch) - 1):
        mods.append(torch.nn.Linear(arch[i], arch[i + 1]))
        if i < len(arch) - 2:
            mods.append(torch.nn.ReLU())
    return qe.from_torch(torch.nn.Sequential(*mods))


def _points(cx: qe.RegionComplex, n: int = 5000) -> np.ndarray:
    """Random points plus every region vertex."""
    return np.vstack([cx.box.sample(n, np.random.default_rng(7)), cx.vertices_flat])


@pytest.mark.parametrize("arch, lo, hi", [
    ((2, 5, 5, 1), -1.0, 1.0), ((2, 6, 4, 2), -2.0, 0.5), ((3, 5, 5, 1), -1.0, 1.0), ((1, 6, 6, 2), -3.0, 3.0),
])
def test_exact_forms_equal_the_net_everywhere(arch, lo, hi):
    net = seeded(arch)
    cx = qe.regions(net, qe.Box.cube(arch[0], lo, hi))
    X = _points(cx)
    f = net.forward(X)
    scale = max(1.0, float(np.abs(f).max()))
    for build in (lattice_wide, lattice_deep):
        H = build(cx)
        assert H.provenance.error_bound == 0.0
        assert np.abs(H.forward(X) - f).max() <= 1e-9 * scale


def test_wide_sizes_within_the_target():
    net = seeded((2, 8, 8, 1))
    cx = qe.regions(net, qe.Box.cube(2))
    H = lattice_wide(cx)
    lat = lattice_of(cx)
    k, q = len(lat.b), len(lat.terms)
    assert H.hidden_layers <= math.ceil(math.log2(max(len(S) for S in lat.terms))) + math.ceil(math.log2(q))
    assert H.hidden_layers <= math.ceil(math.log2(k)) + math.ceil(math.log2(q))
    sum_s = sum(len(S) for S in lat.terms)
    assert H.neurons <= 2 * sum_s + q * math.ceil(math.log2(k)) + 2 * q + math.ceil(math.log2(q))
    pieces = H.provenance.lattice.pieces
    assert pieces == lat.pieces <= len(cx)
    assert H.provenance.lattice.chen_garudadri_rao_neurons == 3 * pieces * k + 3 * pieces


def test_deep_width_is_D_plus_3_per_output():
    for arch in ((2, 6, 6, 1), (3, 5, 5, 1), (2, 5, 5, 2)):
        net = seeded(arch)
        H = lattice_deep(qe.regions(net, qe.Box.cube(arch[0])))
        assert H.width <= arch[0] + 3 + (arch[-1] - 1)


def test_dominated_terms_are_dropped():
    """f = relu(x − y) + relu(y) on [-1,1]^2 (with a dead-weight unit relu(−y)): no kept term's index set
    contains another's, and the lattice still reproduces f."""
    net = qe.ReluNet(
        [np.array([[1.0, -1.0], [0.0, 1.0], [0.0, -1.0]]), np.array([[1.0, 1.0, 0.0]])], [np.zeros(3), np.zeros(1)]
    )
    cx = qe.regions(net, qe.Box.cube(2))
    lat = lattice_of(cx)
    for S in lat.terms:
        assert not any(set(T) < set(S) for T in lat.terms)
    X = _points(cx)
    np.testing.assert_allclose(lat.evaluate(X), net.forward(X)[:, 0], atol=1e-12)


def test_nonconvex_merge_counterexample_is_handled_exactly():
    """The issue's counterexample f = x, 1, 2x−3, x on [0,1], [1,2], [2,3], [3,4]: pieces 1 and 4 share a
    map but are not neighbours, so they stay two pieces, and the lattice is exact."""
    # f = σ(x) − σ(x − 1) + 2σ(x − 2) − σ(x − 3)
    net = qe.ReluNet(
        [np.array([[1.0], [1.0], [1.0], [1.0]]), np.array([[1.0, -1.0, 2.0, -1.0]])],
        [np.array([0.0, -1.0, -2.0, -3.0]), np.zeros(1)],
    )
    cx = qe.regions(net, qe.Box([0.0], [4.0]))
    lat = lattice_of(cx)
    assert len(lat.b) == 3 and lat.pieces == 4  # x appears on two pieces
    X = np.linspace(0.0, 4.0, 4001)[:, None]
    f = net.forward(X)
    for build in (lattice_wide, lattice_deep):
        np.testing.assert_allclose(build(cx).forward(X), f, atol=1e-12)


def _min_xy_net() -> qe.ReluNet:
    """f = σ(min(x, y)) = σ(x − σ(x − y)) on [-1,1]² (x + 2 > 0 carries x), plus a unit σ(0.5x + y − 0.3)
    with output weight 0 that cuts regions without changing f. f = 0 on the L-shaped set
    {min(x, y) < 0}, whose two halves {x < y, x < 0} and {y < x, y < 0} meet along x = y but whose union is
    not convex; f = x on {0 < x < y} and y on {0 < y < x}."""
    W1 = np.array([[1.0, -1.0], [1.0, 0.0], [0.5, 1.0]])
    b1 = np.array([0.0, 2.0, -0.3])
    W2 = np.array([[-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    b2 = np.array([-2.0, 0.0])
    return qe.ReluNet([W1, W2, np.array([[1.0, 0.0]])], [b1, b2, np.zeros(1)])


def test_pieces_merge_equal_maps_only_into_convex_unions():
    """The dummy cut is merged away, the L-shaped zero set is not: exactly 4 convex pieces (two L halves,
    {0 < x < y}, {0 < y < x}) from more regions, and the lattice equals f on a dense grid and at every
    region vertex."""
    net = _min_xy_net()
    cx = qe.regions(net, qe.Box.cube(2))
    lat = lattice_of(cx)
    assert len(cx) > 4 and lat.pieces == 4 and lat.regions == len(cx)
    assert len(lat.b) == 3  # 0, x and y
    g = np.linspace(-1.0, 1.0, 201)
    X = np.vstack([np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), cx.vertices_flat])
    np.testing.assert_allclose(lat.evaluate(X), net.forward(X)[:, 0], atol=1e-12)
    for build in (lattice_wide, lattice_deep):
        np.testing.assert_allclose(build(cx).forward(X), net.forward(X), atol=1e-12)


@pytest.mark.parametrize("arch", [(2, 6, 6, 1), (3, 5, 5, 2)])
def test_exact_checker_certifies_zero_error(arch):
    """The exact checker (common refinement, an independent computation over both nets' regions)
    finds measure 0 and a sup error at rounding level for both exact forms."""
    net = seeded(arch, seed=3)
    box = qe.Box.cube(arch[0])
    cx = qe.regions(net, box)
    scale = max(1.0, float(np.abs(cx.b).max()))
    for build in (lattice_wide, lattice_deep):
        report = qe.compare(net, build(cx), box, exact=True)
        assert report.disagreement_measure == 0.0
        assert report.sup_error <= 1e-9 * scale


def test_to_wide_and_cli_expose_the_exact_method(tmp_path):
    """``method="exact"`` through the public API and the CLI: zero measured disagreement, and the JSON
    carries the lattice sizes (pieces, affine functions) instead of simplices."""
    import json

    from typer.testing import CliRunner

    from quasieq.cli import app

    net = seeded((2, 5, 5, 1), seed=5)
    box = qe.Box.cube(2)
    wide = qe.to_wide(net, box, delta=1e-3, method="exact")
    lat = lattice_of(qe.regions(net, box))
    assert wide.provenance.lattice.pieces == lat.pieces
    qe.save(net, tmp_path / "m.onnx", dtype="float64")
    result = CliRunner().invoke(
        app,
        ["deep", str(tmp_path / "m.onnx"), "--box", "-1", "1", "--method", "exact", "--samples", "15000",
         "--json", str(tmp_path / "d.json")],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["method"] == "exact" and doc["error_bound"] == 0.0 and doc["table1"] is None
    assert doc["pieces"] == lat.pieces and doc["affine_functions"] == len(lat.b)
    assert doc["report"]["disagreement_measure"] == 0.0


@pytest.mark.parametrize("arch", [(2, 5, 5, 1), (1, 6, 6, 2)])
def test_exact_method_needs_no_delta(arch):
    """``to_wide/to_deep(net, box, method="exact")`` build without δ (the lattice and Theorem 9 forms have
    no error budget): the forms equal the net at random points and region vertices (float64, exact up to
    rounding), and record no δ; every other method still asks for one."""
    net = seeded(arch)
    box = qe.Box.cube(arch[0])
    cx = qe.regions(net, box)
    X = _points(cx)
    f = net.forward(X)
    for build in (qe.to_wide, qe.to_deep):
        H = build(net, box, method="exact")
        assert H.provenance.delta is None and H.provenance.error_bound == 0.0
        assert np.abs(H.forward(X) - f).max() <= 1e-9 * max(1.0, float(np.abs(f).max()))
    with pytest.raises(qe.QuasieqError, match="needs delta"):
        qe.to_wide(net, box, method="compact")
