"""The paper's construction (``method="paper"``, construct/paper.py): Lemma 11's module with and without
the gate fix (paper_notes §6 oracle 5), its analytic bound, the wide and deep assemblies.

Oracles: the piecewise-linear target Σ_m f^{(m)}·1_{S_m} from barycentric coordinates obtained by a
plain linear solve per simplex; Monte-Carlo measures with Clopper–Pearson intervals (verify.compare);
the numpy module against the assembled ReluNet (two implementations); the original net's forward pass;
the size formulas of the module docstring and Table 1.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import quasieq as qe
from oracles import seeded_relu_net
from quasieq.construct import to_deep, to_wide
from quasieq.construct.paper import (
    NULL_MARGIN,
    disagreement_bound,
    module_net,
    paper_deep,
    paper_wide,
    simplex_module,
)
from quasieq.geometry import SimplexComplex
from quasieq.net import Table1
from quasieq.verify import compare


def _barycentric(V: np.ndarray, X: np.ndarray) -> np.ndarray:
    """λ (N, D+1) of points X in the simplex V (D+1, D): solve [Vᵀ; 1ᵀ] λ = [x; 1]."""
    T = np.vstack([V.T, np.ones(len(V))])
    return np.linalg.solve(T, np.vstack([X.T, np.ones(len(X))])).T


def _piecewise_target(vertices: np.ndarray, A: np.ndarray, b: np.ndarray):
    """x ↦ Σ_m f^{(m)}(x)·1_{S_m}(x), the first simplex containing x (shared faces have measure 0)."""

    def target(X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), A.shape[1]))
        done = np.zeros(len(X), dtype=bool)
        for V, Am, bm in zip(vertices, A, b, strict=True):
            hit = ~done & (_barycentric(V, X).min(axis=1) >= 0)
            out[hit] = X[hit] @ Am.T + bm
            done |= hit
        return out

    return target


def _kuhn(D: int, n: int, lo: float, hi: float) -> np.ndarray:
    """The Kuhn triangulation of the cube [lo, hi]^D with n cells per side: n^D·D! simplices (each cell
    split along the paths that raise one coordinate at a time)."""
    h = (hi - lo) / n
    out = []
    for cell in itertools.product(range(n), repeat=D):
        base = lo + h * np.array(cell, dtype=float)
        for perm in itertools.permutations(range(D)):
            path = [base]
            for i in perm:
                path.append(path[-1] + h * np.eye(D)[i])
            out.append(path)
    return np.array(out)


def _kuhn_complex(D: int, K: int, n: int, seed: int) -> SimplexComplex:
    rng = np.random.default_rng(seed)
    V = _kuhn(D, n, -1.0, 1.0)
    M = len(V)
    return SimplexComplex(V, rng.normal(size=(M, K, D)), rng.normal(size=(M, K)), np.arange(M), qe.Box.cube(D, -1, 1))


# a generic triangle inside [-1, 2]^2 with f(v_0) ≠ 0 (the published module fails by f(v_0) off the quadrant)
TRIANGLE = np.array([[0.1, -0.2], [0.9, 0.1], [0.2, 0.8]])
TRI_A, TRI_B = np.array([[1.5, -2.0]]), np.array([0.7])
TRI_BOX = qe.Box.cube(2, -1.0, 2.0)


def _template(V: np.ndarray, X: np.ndarray) -> np.ndarray:
    """y = (λ_1, …, λ_D): the template coordinates are the barycentric coordinates of v_1 … v_D."""
    return _barycentric(V, X)[:, 1:]


def test_published_lemma11_is_wrong_on_positive_measure_and_the_gate_fixes_it():
    """Oracle 5: with γ_3 = 1 the module equals f(v_0) on (almost) all of the box outside the quadrant
    y ≥ 0; with the gate its disagreement measure is below the analytic bound."""
    p = 1e-3
    truth = _piecewise_target(TRIANGLE[None], TRI_A[None], TRI_B[None])
    f_v0 = float(TRI_A[0] @ TRIANGLE[0] + TRI_B[0])
    X = TRI_BOX.sample(20000, np.random.default_rng(1))
    for gate in (False, True):
        # the ReluNet module and the numpy module are the same function
        net = module_net(TRIANGLE, TRI_A, TRI_B, TRI_BOX, p, p, 1 / p, gate=gate)
        numpy_values = simplex_module(X, TRIANGLE, TRI_A, TRI_B, p, p, 1 / p, gate=gate)
        assert np.abs(net(X) - numpy_values).max() <= 1e-9 * np.abs(numpy_values).max()

    published = lambda Z: simplex_module(Z, TRIANGLE, TRI_A, TRI_B, p, p, 1 / p, gate=False)  # noqa: E731
    fixed = lambda Z: simplex_module(Z, TRIANGLE, TRI_A, TRI_B, p, p, 1 / p, gate=True)  # noqa: E731
    bad = compare(truth, published, TRI_BOX, samples=100_000, seed=2)
    y = _template(TRIANGLE, X)
    off_quadrant = (y < 0).any(axis=1)
    expected = off_quadrant.mean()
    assert bad.ci95[0] / TRI_BOX.volume > 0.9 * expected > 0.3
    # off the quadrant by more than the fans' wedges reach (some y_i ≤ −0.05, while μ·0.05 > max|y|)
    # it is the constant f(v_0) ≠ 0
    deep_off = (y <= -0.05).any(axis=1)
    assert deep_off.mean() > 0.3 and 0.05 / p > np.abs(y).max()
    assert np.allclose(published(X[deep_off]), f_v0, rtol=1e-9) and abs(f_v0) > 1.0

    good = compare(truth, fixed, TRI_BOX, samples=200_000, seed=3)
    bound = disagreement_bound(TRIANGLE, TRI_BOX, p, p, 1 / p)
    assert good.ci95[1] < bound < 0.01 * bad.ci95[0]


@pytest.mark.parametrize("D,K", [(2, 1), (2, 2), (3, 1), (3, 2)])
def test_fixed_module_exact_inside_and_zero_far_outside(D, K):
    """Exact (1e-9 relative) where every barycentric coordinate is ≥ 1e-2 (the τ-strip and ν-wedges
    inside S are thinner, ν = τ = 1e-3); exactly 0 outside S where every template coordinate is farther
    from 0 than the fans' wedges and the gate's strips reach (1/μ, ν·max|y|, max|y|/(μ − ν))."""
    rng = np.random.default_rng(10 * D + K)
    V = rng.uniform(-0.8, 0.8, size=(D + 1, D))
    A, b = rng.normal(size=(K, D)) * 2, rng.normal(size=K) * 2
    box = qe.Box.cube(D, -1, 1)
    nu = tau = 1e-3
    mu = 1e3
    net = module_net(V, A, b, box, nu, tau, mu)

    lam = rng.dirichlet(np.ones(D + 1), size=20000)
    lam = lam[lam.min(axis=1) >= 1e-2]
    inside = lam @ V
    f = inside @ A.T + b
    for values in (net(inside), simplex_module(inside, V, A, b, nu, tau, mu)):
        assert np.abs(values - f).max() <= 1e-9 * max(1.0, np.abs(f).max())

    X = box.sample(100_000, rng)
    y = _template(V, X)
    reach = np.abs(y).max()
    margin = 2 * max(1 / mu, nu * reach, reach / (mu - nu))
    far = (np.abs(y) >= margin).all(axis=1) & ((y.sum(axis=1) >= 1 + margin) | (y < 0).any(axis=1))
    assert far.mean() > 0.2
    assert np.all(net(X[far]) == 0.0)
    assert np.all(simplex_module(X[far], V, A, b, nu, tau, mu) == 0.0)


def test_mismatch_scales_linearly_in_the_parameter_and_stays_below_the_bound():
    """D = 2, ν = τ = 1/μ = p for p = 1e-2, 1e-3, 1e-4: the measure drops ~10× per step (paper_notes §2.5
    reports 0.044, 0.0047, 0.00038) and never exceeds the analytic bound, which is within 5× of it."""
    truth = _piecewise_target(TRIANGLE[None], TRI_A[None], TRI_B[None])
    measures = []
    for p in (1e-2, 1e-3, 1e-4):
        rep = compare(truth, lambda Z, p=p: simplex_module(Z, TRIANGLE, TRI_A, TRI_B, p, p, 1 / p), TRI_BOX,
                      samples=1_200_000, seed=4)
        bound = disagreement_bound(TRIANGLE, TRI_BOX, p, p, 1 / p)
        assert rep.ci95[0] <= bound <= 5 * rep.ci95[1]  # at p = 1e-4 only ~90 of the points disagree
        measures.append(rep.disagreement_measure)
    ratios = np.array(measures[:-1]) / np.array(measures[1:])
    assert np.all((ratios > 6) & (ratios < 16))


@pytest.mark.parametrize("D,K,n,delta", [(2, 1, 2, 1e-2), (2, 2, 2, 1e-2), (3, 1, 1, 1e-2), (3, 2, 1, 2e-2)])
def test_wide_and_deep_agree_with_the_piecewise_target_outside_a_set_below_delta(D, K, n, delta):
    sc = _kuhn_complex(D, K, n, seed=D + K)
    M, box = sc.M, sc.box
    truth = _piecewise_target(sc.vertices, sc.A, sc.b)
    wide, deep = paper_wide(sc, box, delta), paper_deep(sc, box, delta)

    assert wide.widths == (D + D * M, (D + 1) * M, (D + 1) * M) and wide.hidden_layers == 3
    assert deep.widths == (2 * D + K + 1, 2 * D + K + 2, 2 * D + K + 2) * M and deep.width == 2 * D + K + 2
    assert deep.hidden_layers == 3 * M
    tables = ({"width": D * D * (D + 1) * M, "depth": D + 1}, {"width": (D + 1) * D * D, "depth": (D + 1) * M})
    for H, table1 in zip((wide, deep), tables, strict=True):
        p = H.provenance
        assert p.method == "paper" and p.simplices == M
        assert p.table1 == Table1(**table1)
        assert p.details["sizes"] == {"width": H.width, "hidden_layers": H.hidden_layers, "depth": H.depth}
        assert p.max_abs_weight == H.max_abs_weight()
        assert all(sp.isspmatrix_csr(W) for W in H.weights)
        assert H.parameters <= 4 * (2 * D + K + 2) ** 2 * M  # block-sparse: non-zeros linear in M

        rep = compare(truth, H, box, samples=200_000, seed=5)
        assert rep.ci95[0] <= p.error_bound < delta  # the analytic bound holds ...
        assert rep.ci95[1] < delta  # ... and the measured disagreement is below δ with 95% confidence


def test_deep_shift_moves_the_null_point_off_the_facet_hyperplanes():
    """In the Kuhn triangulation of [-1, 1]^2, the diagonal edge from (−1, −1) to (0, 0) is on the line
    through the §2.6 null point lo − 1 = (−2, −2): with the shift c = 1 that point would sit on a facet
    hyperplane (an orthant face or the far facet) of a module, where rounding in Ω can switch it on.
    The construction picks another shift with a margin (agreement: the test above, same complex)."""
    sc = _kuhn_complex(2, 1, 2, seed=0)
    edge = np.array([[-1.0, -1.0], [0.0, 0.0]])
    assert any((np.abs(V[:, None, :] - edge[None]).sum(axis=2).min(axis=0) == 0).all() for V in sc.vertices)
    assert np.linalg.det(np.array([edge[1] - edge[0], [-2.0, -2.0] - edge[0]])) == 0.0
    deep = paper_deep(sc, sc.box, 1e-2)
    assert deep.provenance.details["shift"] != [1.0, 1.0]
    assert deep.provenance.details["null_point_margin"] >= NULL_MARGIN
    assert deep.provenance.details["feedforward"] is True


@pytest.mark.parametrize("form", [to_wide, to_deep])
def test_transforms_with_method_paper_match_a_trained_net(form):
    net = seeded_relu_net("2-8-8-1")
    box = qe.Box.cube(2, -1, 1)
    delta = 1e-2
    H = form(net, box, delta, method="paper")
    assert H.provenance.method == "paper" and H.provenance.error_bound < delta
    rep = compare(net, H, box, samples=100_000, seed=6)
    assert rep.ci95[0] <= H.provenance.error_bound and rep.ci95[1] < delta


def test_rounding_amplification_warning():
    """Small δ makes 1/(ντ) ~ 1/δ² large enough for float64 rounding to exceed the comparison tolerance:
    the construction warns (paper_notes §2.5); a moderate δ does not."""
    sc = _kuhn_complex(3, 1, 1, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paper_wide(sc, sc.box, 1e-2)
    with pytest.warns(RuntimeWarning, match="amplification"):
        paper_wide(sc, sc.box, 1e-4)


def test_bad_input_is_refused():
    sc = _kuhn_complex(2, 1, 1, seed=0)
    with pytest.raises(qe.QuasieqError, match="delta"):
        paper_wide(sc, sc.box, 0.0)
    with pytest.raises(qe.QuasieqError, match="dimension"):
        paper_deep(sc, qe.Box.cube(3, -1, 1), 1e-2)
    with pytest.raises(qe.QuasieqError, match="ν"):
        disagreement_bound(TRIANGLE, TRI_BOX, 1e-3, 1e-3, 1e-4)
    with pytest.raises(qe.QuasieqError, match="shape"):
        simplex_module(np.zeros((1, 2)), TRIANGLE[:2], TRI_A, TRI_B, 1e-3, 1e-3, 1e3)
