"""Quadratic networks (paper_notes §3, §6 oracle 6): every check against an independent computation.

References: numpy's Horner evaluation (``np.polynomial.Polynomial``) for P, explicit numpy formulas
for the quadratic layer, sign changes of the tail polynomials on a dense grid for poles, ONNX Runtime
for the exported files.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

import quasieq.quadratic as qq
from quasieq.errors import QuasieqError
from quasieq.quadratic_cli import quadratic_app

EXACT = 1e-12


def run(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float64)).numpy()


def rel_error(net, p, lo=-1.0, hi=1.0, samples=4001) -> float:
    """max |net − P| / max |P| on a dense grid, P by numpy's Horner."""
    x = np.linspace(lo, hi, samples)
    ref = np.polynomial.Polynomial(p)(x)
    return float(np.max(np.abs(run(net, x[:, None])[:, 0] - ref)) / np.max(np.abs(ref)))


def same_sign_parts(rng, degree: int) -> np.ndarray:
    """Random P whose even and odd coefficients each share one sign: every tail T_k > 0 on y ≥ 0."""
    p = rng.uniform(0.1, 2.0, degree + 1)
    p[0::2] *= rng.choice([-1, 1])
    p[1::2] *= rng.choice([-1, 1])
    return p


def tails(chain: np.ndarray) -> list[np.ndarray]:
    """T_k(y) = Σ_{i≥k} (c_i/c_k) y^{i−k}, k = 0 … m−1, straight from the definition."""
    return [chain[k:] / chain[k] for k in range(chain.size - 1)]


def has_tail_root(p: np.ndarray, y_hi: float = 1.0, samples: int = 20001) -> bool:
    """Independent pole test: some tail of the even or odd part changes sign on [0, y_hi] (Horner on a grid)."""
    y = np.linspace(0.0, y_hi, samples)
    for chain in (p[0::2], p[1::2]):
        for t in tails(np.trim_zeros(chain, "b")):
            v = np.polynomial.polynomial.polyval(y, t)
            if np.any(np.signbit(v[:-1]) != np.signbit(v[1:])):
                return True
    return False


# ----- the quadratic layer -----------------------------------------------------------------------------
@pytest.mark.parametrize("activation", [None, torch.relu])
def test_quadratic_layer_computes_its_formula(activation):
    rng = np.random.default_rng(0)
    n, k = 4, 3
    W_r, W_g, W_b = (rng.standard_normal((k, n)) for _ in range(3))
    b_r, b_g, c = (rng.standard_normal(k) for _ in range(3))
    x = rng.standard_normal((50, n))
    layer = qq.QuadraticLayer.from_weights(W_r, b_r, W_g, b_g, W_b, c, activation=activation)
    z = (x @ W_r.T + b_r) * (x @ W_g.T + b_g) + (x * x) @ W_b.T + c
    want = z if activation is None else np.maximum(z, 0.0)
    np.testing.assert_allclose(run(layer, x), want, rtol=1e-14, atol=1e-14)


def test_quadratic_layer_rejects_bad_shapes():
    with pytest.raises(QuasieqError, match="W_g has shape"):
        qq.QuadraticLayer.from_weights(
            np.ones((2, 3)), np.ones(2), np.ones((3, 3)), np.ones(2), np.ones((2, 3)), np.ones(2)
        )
    with pytest.raises(QuasieqError, match=r"expects input \(N, 3\)"):
        qq.QuadraticLayer(3, 2)(torch.zeros(4, 2, dtype=torch.float64))


@pytest.mark.parametrize("width", range(1, 10))
def test_product_tree_multiplies_its_inputs(width):
    x = np.random.default_rng(width).uniform(-2, 2, (20, width))
    out = x
    layers = qq.product_tree(width)
    for layer in layers:
        out = run(layer, out)
    np.testing.assert_allclose(out[:, 0], np.prod(x, axis=1), rtol=1e-14, atol=0)
    assert len(layers) == (math.ceil(math.log2(width)) if width > 1 else 0)


# ----- wide: the factorisation ------------------------------------------------------------------------
def test_wide_reproduces_random_polynomials_with_formula_sizes():
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(1, 13))
        p = rng.standard_normal(n + 1)
        lo, hi = sorted(rng.uniform(-2, 2, 2))
        net = qq.wide(p, domain=(lo, hi))
        assert rel_error(net, p, lo, hi) <= EXACT
        half = math.ceil(n / 2)
        assert (net.width, net.depth) == (half, 1 + (math.ceil(math.log2(half)) if half > 1 else 0))
        assert net.depth == len(net.layers) and net.width == max(layer.out_features for layer in net.layers)
        # the factors are real: their product's roots are P's roots
        np.testing.assert_allclose(np.sort_complex(np.roots(p[::-1])), np.sort_complex(net.factorisation.roots))


def test_wide_refuses_coefficients_it_cannot_factor():
    # P = 1e17(1 + x²) + 1e-13x + 1e-9x³ is > 0 on [-1, 1], but the companion eigenvalues come out real.
    p = [1e17, 1e-13, 1e17, 1e-9]
    with pytest.raises(QuasieqError, match="ill-conditioned roots.*relative error"):
        qq.wide(p)
    with pytest.warns(RuntimeWarning, match="ill-conditioned"):
        net = qq.wide(p, on_ill_conditioned="warn")
    assert rel_error(net, p) > 1e-8  # the refusal was warranted: the net is far from P


def test_wide_reports_ill_conditioned_roots_yet_reproduces_p():
    p = np.polynomial.polynomial.polyfromroots([0.5] * 12)  # a 12-fold root
    with pytest.warns(RuntimeWarning, match="ill-conditioned roots \\(condition number"):
        net = qq.wide(p)
    assert abs(np.roots(p[::-1]) - 0.5).max() > 1e-3  # the roots really are inaccurate
    assert rel_error(net, p) <= EXACT


# ----- deep: the continued fraction -------------------------------------------------------------------
def test_deep_reproduces_pole_free_polynomials_with_formula_sizes():
    rng = np.random.default_rng(2)
    built = 0
    for _ in range(200):
        n = int(rng.integers(1, 13))
        p = same_sign_parts(rng, n) if rng.random() < 0.5 else rng.standard_normal(n + 1)
        lo, hi = sorted(rng.uniform(-1.5, 1.5, 2))
        try:
            net = qq.deep(p, domain=(lo, hi))
        except QuasieqError:
            continue
        built += 1
        assert rel_error(net, p, lo, hi) <= EXACT
        assert (net.width, net.depth) == (2, n // 2 + 2)
        assert net.poles == [] and net.perturbation is None
    assert built >= 100


def test_deep_refuses_a_pole_and_names_it():
    p = np.array([1.0, -2.0, 0.5, 3.0])  # odd part O(y) = -2 + 3y vanishes at y = 2/3
    with pytest.raises(QuasieqError, match=r"tail T_0 of the odd part vanishes at y = 0\.666667 \(x = ±0\.816497\)"):
        qq.deep(p)
    with pytest.raises(QuasieqError, match="cannot remove a real pole"):
        qq.deep(p, on_pole="perturb")
    qq.deep(p, domain=(-0.8, 0.8))  # x² ≤ 0.64 < 2/3: no pole on this domain


def test_deep_refusals_match_an_independent_pole_search():
    """500 seeded polynomials of degree 8-12, coefficients i.i.d. N(0, 1), domain [-1, 1].

    paper_notes §3.3 expects about one in ten to have a pole; for this distribution nearly all do (each of
    the ~10 tails has a sizeable chance of a root in y ∈ [0, 1]). The refusals coincide with the
    polynomials where some tail changes sign on a dense grid of [0, 1].
    """
    rng = np.random.default_rng(3)
    refused = []
    for _ in range(500):
        p = rng.standard_normal(int(rng.integers(8, 13)) + 1)
        try:
            qq.deep(p)
            refused.append(False)
        except QuasieqError as exc:
            assert "vanishes at y =" in str(exc)
            refused.append(True)
        assert refused[-1] == has_tail_root(p)
    assert np.mean(refused) > 0.5  # far above the paper's "one in ten" (measured: 0.95)


def test_deep_allow_keeps_the_output_exact_through_poles():
    rng = np.random.default_rng(4)
    for _ in range(20):
        p = rng.standard_normal(11)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            net = qq.deep(p, on_pole="allow")
        for pole in net.poles:  # each reported pole is a root of its tail, by Horner
            chain = np.trim_zeros(p[0::2] if pole.part == "even" else p[1::2], "b")
            t = tails(chain)[pole.tail]
            assert abs(np.polynomial.Polynomial(t)(pole.y)) <= 1e-9 * np.polynomial.Polynomial(np.abs(t))(abs(pole.y))
        # evaluated on and right next to the poles too
        x = np.concatenate([np.linspace(-1, 1, 2001)] + [np.sqrt(q.y.real) + np.arange(-50, 51) * 1e-16
                                                           for q in net.poles if q.y.imag == 0 and q.y.real > 0])
        ref = np.polynomial.Polynomial(p)(x)
        out = run(net, x[:, None])[:, 0]
        scale = np.max(np.abs(np.polynomial.Polynomial(p)(np.linspace(-1, 1, 2001))))
        assert np.max(np.abs(out - ref)) <= 1e-11 * scale


@pytest.mark.parametrize(
    "p", [[0.0, 1.0, 2.0, 1.0, 0.5], [1.0, 2.0, 0.0, 3.0, 1.0, 1.0], [1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 1.0, 2.0]]
)
def test_zero_coefficients_refused_or_perturbed_within_the_stated_bound(p):
    p = np.array(p)
    zero = [i for i in range(p.size) if p[i] == 0 and np.any(p[i + 2::2] != 0)]
    with pytest.raises(QuasieqError, match="zero coefficient.*p" + str(zero[0])):
        qq.deep(p, domain=(-2, 2))
    x = np.linspace(-2, 2, 8001)
    ref = np.polynomial.Polynomial(p)(x)
    for eps in (1e-4, None):
        net = qq.deep(p, domain=(-2, 2), on_pole="perturb", eps=eps)
        pert = net.perturbation
        assert list(pert.indices) == zero and net.poles == []
        if eps is None:
            assert pert.eps == pytest.approx(1e-8 * np.max(np.abs(p)))
        assert pert.bound == pytest.approx(pert.eps * sum(2.0 ** i for i in zero), rel=1e-12)
        err = np.max(np.abs(run(net, x[:, None])[:, 0] - ref))
        assert 0.5 * err <= pert.measured <= 2.0 * err  # the reported error is the real one (another grid)
        # rounding adds ~u·(max|p|/ε)·Σ|p_i|B^i per unit on top of the exact-arithmetic bound
        rounding = 100 * np.finfo(float).eps * np.max(np.abs(p)) / pert.eps * np.polynomial.Polynomial(np.abs(p))(2.0)
        assert err <= pert.bound + rounding
        assert err >= 0.01 * pert.bound  # the perturbation really acts (the bound is not vacuous)


@pytest.mark.parametrize("bad, message", [
    ([1.0], "degree must be at least 1"), ([1.0, 0.0], "leading coefficient p1 is 0"), ([1.0, np.nan], "finite"),
    ([[1.0, 2.0]], "1-D"),
])
def test_bad_polynomials_are_refused(bad, message):
    for build in (qq.wide, qq.deep):
        with pytest.raises(QuasieqError, match=message):
            build(bad)
    with pytest.raises(QuasieqError, match="lo < hi"):
        qq.wide([1.0, 2.0], domain=(1, -1))
    with pytest.raises(QuasieqError, match="on_pole must be"):
        qq.deep([1.0, 2.0], on_pole="ignore")
    with pytest.raises(QuasieqError, match="eps must be a positive"):
        qq.deep([1.0, 2.0], on_pole="perturb", eps=-1.0)


# ----- multivariate, partially separable --------------------------------------------------------------
def separable_reference(terms, x):
    return sum(np.prod([np.polynomial.Polynomial(c)(x[:, i]) for i, c in enumerate(term)], axis=0) for term in terms)


def test_separable_forms_reproduce_sum_of_products():
    rng = np.random.default_rng(5)
    n_terms, n_inputs = 3, 3
    terms = [[same_sign_parts(rng, int(rng.integers(1, 8))) for _ in range(n_inputs)] for _ in range(n_terms)]
    terms[0][1] = np.array([2.5])          # a constant factor, folded into the term
    terms[1] = [np.array([-1.5])] * 3      # a constant term, the output bias
    terms.append([np.array([0.0]), *terms[2][1:]])  # a zero factor drops the term
    x = rng.uniform(-1, 1, (500, n_inputs))
    ref = separable_reference(terms, x)
    for build in (qq.separable_wide, qq.separable_deep):
        net = build(terms)
        assert np.max(np.abs(run(net, x)[:, 0] - ref)) <= EXACT * np.max(np.abs(ref))


@pytest.mark.parametrize("n_terms, n_inputs, degree", [(1, 1, 1), (2, 3, 4), (3, 4, 7), (2, 5, 12)])
def test_separable_sizes_match_the_formulas(n_terms, n_inputs, degree):
    rng = np.random.default_rng(degree)
    terms = [[same_sign_parts(rng, degree) for _ in range(n_inputs)] for _ in range(n_terms)]
    half, tree = math.ceil(degree / 2), (math.ceil(math.log2(n_inputs)) if n_inputs > 1 else 0)
    wide = qq.separable_wide(terms)
    deep = qq.separable_deep(terms)
    factor_depth = 1 + (math.ceil(math.log2(half)) if half > 1 else 0)
    assert (wide.width, wide.depth) == (n_terms * n_inputs * half, factor_depth + tree)
    assert (deep.width, deep.depth) == (2 * n_terms * n_inputs, degree // 2 + 2 + tree)
    x = rng.uniform(-1, 1, (200, n_inputs))
    ref = separable_reference(terms, x)
    for net in (wide, deep):
        assert np.max(np.abs(run(net, x)[:, 0] - ref)) <= EXACT * np.max(np.abs(ref))


def test_separable_errors_name_the_factor():
    with pytest.raises(QuasieqError, match="term 1, variable 0: .*vanishes"):
        qq.separable_deep([[[1.0, 2.0], [1.0, 1.0]], [[1.0, -2.0, 0.5, 3.0], [2.0]]])
    with pytest.raises(QuasieqError, match="one coefficient list per variable"):
        qq.separable_wide([[[1.0, 2.0]], [[1.0], [2.0]]])


# ----- ONNX export ------------------------------------------------------------------------------------
def test_onnx_export_matches_onnxruntime(tmp_path):
    rng = np.random.default_rng(6)
    p = same_sign_parts(rng, 9)
    terms = [[same_sign_parts(rng, 4), same_sign_parts(rng, 3)] for _ in range(2)]
    cases = [(qq.wide(p), 1), (qq.deep(p), 1), (qq.separable_deep(terms), 2)]
    for k, (net, dim) in enumerate(cases):
        path = tmp_path / f"net{k}.onnx"
        qq.save_onnx(net, path, in_dim=dim)
        x = rng.uniform(-1, 1, (300, dim))
        got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
        np.testing.assert_allclose(got, run(net, x), rtol=1e-12, atol=1e-12)


# ----- CLI --------------------------------------------------------------------------------------------
def test_cli_builds_checks_and_refuses(tmp_path):
    runner = CliRunner()
    p = ["1", "-0.5", "0.25", "-0.125", "2"]  # even part 1 + 0.25y + 2y², odd part -0.5 - 0.125y: no poles
    out = tmp_path / "deep.onnx"
    res = runner.invoke(quadratic_app, ["deep", *p, "--domain", "-2", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2, 4" in res.output and "none" in res.output
    x = np.linspace(-2, 2, 101)[:, None]
    got = ort.InferenceSession(str(out)).run(None, {"input": x})[0][:, 0]
    np.testing.assert_allclose(got, np.polynomial.Polynomial([float(v) for v in p])(x[:, 0]), rtol=1e-12, atol=1e-12)
    res = runner.invoke(quadratic_app, ["wide", *p])
    assert res.exit_code == 0 and "2, 2" in res.output
    assert runner.invoke(quadratic_app, ["check", *p]).exit_code == 0
    res = runner.invoke(quadratic_app, ["check", "1", "-2", "0.5", "3"])
    assert res.exit_code == 1 and "tail T_0 of the odd part" in res.output
    for bad in (["deep", "1", "-2", "0.5", "3"], ["wide", "1", "0"], ["deep", "1", "0", "2", "1"],
                ["wide", "1", "2", "--out", str(tmp_path / "x.txt")]):
        res = runner.invoke(quadratic_app, bad)
        assert isinstance(res.exception, QuasieqError), (bad, res.output)
