"""The compact R-wide / R-deep constructions (paper_notes §2.6), oracles 2 and 3 of paper_notes §6.

Oracles: barycentric coordinates and facet distances recomputed here by a plain linear solve; the
original net's forward pass; Monte-Carlo counts against the analytic bound with a 3σ binomial margin;
the size formulas of §2.6.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import quasieq as qe
from oracles import seeded_relu_net
from quasieq.construct import to_deep, to_wide
from quasieq.construct.compact import DELTA_SHARE, compact_deep, compact_wide
from quasieq.geometry import SimplexComplex, triangulate
from quasieq.net import Table1


def _facet_distances(V: np.ndarray, X: np.ndarray) -> np.ndarray:
    """ℓ̂_j(x) for one simplex V (D+1, D): barycentric λ by solving [V^T; 1] λ = [x; 1], divided by
    the gradient norm of λ_j (the inverse of the height of v_j over its facet)."""
    D = V.shape[1]
    T = np.vstack([V.T, np.ones(D + 1)])
    lam = np.linalg.solve(T, np.vstack([X.T, np.ones(len(X))])).T
    grad = np.linalg.inv(T)[:, :D]
    return lam / np.linalg.norm(grad, axis=1)


def _single_simplex(D: int, K: int, seed: int) -> SimplexComplex:
    rng = np.random.default_rng(seed)
    V = rng.uniform(-0.8, 0.8, size=(1, D + 1, D))
    A, b = rng.normal(size=(1, K, D)) * 3, rng.normal(size=(1, K)) * 2
    return SimplexComplex(V, A, b, np.zeros(1, dtype=int), qe.Box.cube(D, -1, 1))


def _binomial_margin(p: float, n: int) -> float:
    return 3.0 * np.sqrt(max(p, 1.0 / n) * (1 - p) / n)


@pytest.mark.parametrize("build", [compact_wide, compact_deep])
@pytest.mark.parametrize("D,K", [(2, 1), (3, 2)])
def test_per_simplex_module(build, D, K):
    """Exact inside (barycentric ≥ 1e-6), zero beyond ε, mismatch measure ≤ ((1+ε/r)^D − 1)vol(S)."""
    sc = _single_simplex(D, K, seed=D + K)
    box = sc.box
    delta = 0.02 * box.volume
    H = build(sc, delta)
    eps = H.provenance.details["epsilon_min"]
    V = sc.vertices[0]
    f = lambda X: X @ sc.A[0].T + sc.b[0]  # noqa: E731

    rng = np.random.default_rng(0)
    lam = rng.dirichlet(np.ones(D + 1), size=20000)
    lam = lam[lam.min(axis=1) >= 1e-6]
    inside = lam @ V
    assert np.abs(H(inside) - f(inside)).max() <= 1e-9 * (1 + np.abs(f(inside)).max())

    X = box.sample(200000, rng)
    dist = _facet_distances(V, X)
    far = (-dist).max(axis=1) > eps
    assert np.all(H(X[far]) == 0.0)

    r, vol = sc.inradii[0], sc.volumes[0]
    bound = ((1 + eps / r) ** D - 1) * vol
    assert H.provenance.error_bound == pytest.approx(bound, rel=1e-9) and bound < delta
    truth = np.where(dist.min(axis=1)[:, None] >= 0, f(X), 0.0)
    p = np.mean(np.abs(H(X) - truth).max(axis=1) > 1e-9)
    assert p <= bound / box.volume + _binomial_margin(bound / box.volume, len(X))


@pytest.mark.parametrize(
    "arch,lo,hi", [("2-16-16-2", [-1.0, -0.5], [1.0, 2.0]), ("3-8-8-1", [0.5, -2.0, -1.0], [2.0, -0.5, 1.0])]
)
def test_wide_and_deep_match_the_net_outside_a_set_below_the_bound(arch, lo, hi):
    net = seeded_relu_net(arch)
    box = qe.Box(lo, hi)
    D, K = net.in_dim, net.out_dim
    cx = qe.regions(net, box)
    sc = triangulate(cx.unit, merge=True)  # constructions run on the unit box u = (x - lo)/(hi - lo)
    M = sc.M
    delta = 0.02 * box.volume  # large enough that the strips are seen by sampling
    wide = to_wide(net, box, delta, cx=cx)
    deep = to_deep(net, box, delta, cx=cx)

    # sizes: §2.6 formulas
    assert wide.widths == (D + (D + 1) * M, (K + 1) * M) and wide.depth == 3
    assert wide.neurons == D + (D + 2 + K) * M
    assert deep.width == 2 * D + 2 * K + 2 and deep.hidden_layers == 2 * M + 1
    assert deep.widths == (2 * D + K + 2, 2 * D + 2 * K + 2) * M + (K + 1,)
    tables = ({"width": D * D * (D + 1) * M, "depth": D + 1}, {"width": (D + 1) * D * D, "depth": (D + 1) * M})
    for H, table1 in zip((wide, deep), tables, strict=True):
        p = H.provenance
        assert p.method == "compact" and p.simplices == M and p.table1 == Table1(**table1)
        assert p.error_bound < delta and p.max_abs_weight == H.max_abs_weight()
        assert all(sp.isspmatrix_csr(W) for W in H.weights)
        # non-zeros linear in M (block sparsity): at most a constant number per simplex
        assert H.parameters <= (4 * (D + K + 2) ** 2) * M

        X = box.sample(50000, np.random.default_rng(5))
        err = np.abs(H(X) - net(X)).max(axis=1)
        frac = np.mean(err > 1e-6)
        q = p.error_bound / box.volume
        assert frac <= q + _binomial_margin(q, len(X))

        # exact (to rounding) at points inside one simplex (facet distances ≥ 1e-6) and outside every
        # other simplex's expanded copy S^ε (max_j −ℓ̂_j > ε): the points off all strips, in the unit
        # box where the simplices and ε live
        G, g0 = sc.unit_facets()
        eps = p.details["epsilon_max"]
        U = (X - box.lo) / (box.hi - box.lo)
        core = np.zeros(len(X), dtype=bool)
        for start in range(0, len(X), 2000):
            dist = np.einsum("mjd,nd->nmj", G, U[start : start + 2000]) + g0
            near = (-dist).max(axis=2) <= eps
            inside = dist.min(axis=2) >= 1e-6
            core[start : start + 2000] = (near.sum(axis=1) == 1) & inside.any(axis=1)
        assert core.mean() > 0.5
        assert err[core].max() <= 1e-9 * max(1.0, np.abs(net(X)).max())


def test_small_delta_bound_and_weight_growth():
    """The bound is DELTA_SHARE·δ and the largest weight grows like 1/δ."""
    net = seeded_relu_net("2-8-8-1")
    box = qe.Box.cube(2, -1, 1)
    cx = qe.regions(net, box)
    w = [to_wide(net, box, d, cx=cx) for d in (1e-3, 1e-5)]
    for H, d in zip(w, (1e-3, 1e-5), strict=True):
        assert H.provenance.error_bound == pytest.approx(DELTA_SHARE * d, rel=1e-6)
        X = box.sample(100000, np.random.default_rng(7))
        assert np.mean(np.abs(H(X) - net(X)).max(axis=1) > 1e-6) * box.volume <= d
    ratio = w[1].provenance.max_abs_weight / w[0].provenance.max_abs_weight
    assert 50 < ratio < 200


def test_bad_input_is_refused():
    net = seeded_relu_net("2-4-1")
    box = qe.Box.cube(2, -1, 1)
    with pytest.raises(qe.QuasieqError, match="delta"):
        to_wide(net, box, 0.0)
    with pytest.raises(qe.QuasieqError, match="delta"):
        to_deep(net, box, float("nan"))
    with pytest.raises(qe.QuasieqError, match="dimension"):
        to_wide(net, qe.Box.cube(3, -1, 1), 1e-3)
    with pytest.raises(qe.QuasieqError, match="method"):
        to_wide(net, box, 1e-3, method="lattice")
    with pytest.raises(qe.QuasieqError, match="max_simplices"):
        to_deep(net, box, 1e-3, max_simplices=1)


def test_dispatch_records_method_and_task():
    net = seeded_relu_net("2-4-4-1")
    box = qe.Box.cube(2, -1, 1)
    cx = qe.regions(net, box)
    for method in ("compact", "paper"):
        H = to_wide(net, box, 0.05, method=method, task="classification", cx=cx)
        assert H.provenance.method == method and H.provenance.task == "classification"
        assert H.provenance.simplices == triangulate(cx, merge=True).M
