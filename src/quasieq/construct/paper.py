"""The paper's own construction (``method="paper"``): fan-shaped modules, Lemma 11 with the gate fix,
wide = modules side by side, deep = modules in series carrying the Ω state (paper_notes §2.3–2.5).

Fan-shaped block (JMLR Eq. 7), here with several inhibitors:

    F(x) = σ(h_1(x) − μ Σ_i σ(h_2,i(x)))      = h_1 where h_1 ≥ 0 and every h_2,i ≤ 0; 0 where h_1 ≤ μΣσ(h_2,i).

Per-simplex module (Lemma 11 for general D, paper_notes §2.5), in template coordinates
y = V^{-1}(x − v_0), V = [v_1 − v_0, …, v_D − v_0], which send the simplex S onto Δ = {y ≥ 0, 1ᵀy ≤ 1}:

    gate   G(y)   = σ(1 − μ Σ_{i=1}^D σ(−y_i))                      (a fan with h_1 = 1)
    fans   F_1(y) = σ(y_1 − μ Σ_{i≥2} σ(−y_i)),   F_k(y) = σ(y_1 − ν y_k − μ Σ_{i≥2} σ(−y_i))  (k = 2..D)
    basis  φ_0 = 1 − 1ᵀy,  φ_t = 1 − 1ᵀy − τ y_t (t ≥ 1);   write φ_t = 1 + Σ_i β_{t,i} y_i
           E_t(y) = σ(Σ_k γ_{t,k} F_k + G),   γ_{t,k} = −β_{t,k}/ν (k ≥ 2),  γ_{t,1} = β_{t,1} + Σ_{k≥2} β_{t,k}/ν
    output N(y) = Σ_t ρ_t E_t,   ρ_i = −(α_i + β_0)/τ (i ≥ 1),  ρ_0 = β_0 − Σ_{i≥1} ρ_i

for the target f = αᵀy + β_0 on Δ (α = A V, β_0 = A v_0 + b for f(x) = A x + b; K outputs share the E_t).
On the orthant with y_1 ≥ ν y_k, F_1 = y_1, F_k = y_1 − ν y_k, G = 1, so the E_t argument is
(Σ_k γ_{t,k}) y_1 − ν Σ_{k≥2} γ_{t,k} y_k + 1 = φ_t(y); then Σ_t ρ_t φ_t = αᵀy + β_0.
``gate=False`` replaces G by the constant γ_3 = 1 of the published Lemma 11 (JMLR Eq. 12–13): then every
E_t equals σ(1) = 1 wherever the fans vanish, i.e. on most of the complement of the orthant, and the
module equals Σ_t ρ_t = β_0 = f(v_0) there: wrong on a set of positive measure (paper_notes W6, oracle 5).

Analytic bound on the disagreement set (the published Eq. 14/17 wedge areas are wrong, paper_notes §2.3).
Let μ > ν > 0, 0 < τ, s = Σ_{i≥2} σ(−y_i), S = s + σ(−y_1). The gated module equals f·1_Δ outside

    W_τ = {y ∈ Δ : 1ᵀy > 1 − τ}                                  (φ_t < 0 inside Δ: the τ-strip)
    W_ν = {y ≥ 0 : y_1 < ν y_k for some k ≥ 2}                      (F_k clipped: the ν-wedges)
    W_G = {y ∉ orthant : S < 1/μ}       ⊂ ∪_i {−1/μ < y_i < 0}      (the gate's strips)
    W_μ = {y ∉ orthant : y_1 > (μ − ν) s} ⊂ ∪_{i≥2} {y_1 > 0, −y_1/(μ−ν) < y_i < 0}  (fan wedges)

Proof. (i) y ≥ 0, y ∉ W_ν: F and G take their orthant values, so E_t = σ(φ_t); inside Δ off W_τ every
φ_t ≥ 1 − 1ᵀy − τ ≥ 0 (y_t ≤ 1) and N = f; outside Δ, φ_t ≤ 1 − 1ᵀy < 0 and N = 0. (ii) y ∉ orthant,
y ∉ W_G ∪ W_μ: μS ≥ 1 gives G = 0; y_1 − ν y_k − μ s ≤ y_1 + (ν − μ) s ≤ 0 (as −y_k ≤ σ(−y_k) ≤ s) and
y_1 − μ s ≤ 0 give F = 0; so every E_t = σ(0) = 0 = N. (In W_μ, s > 0 because y_1 > 0 and y ∉ orthant.)
Measures: with Y = Π_i [ylo_i, yhi_i] ⊇ T(box) (exact interval bounds of the affine y_i on the box),
p_i = max(yhi_i, 0), q_i = max(−ylo_i, 0), w_i = yhi_i − ylo_i, and m_x(E ∩ box) ≤ |det V|·m_y(E ∩ Y):

    m(W_τ) ≤ vol(S)·(1 − (1 − τ)^D)                                              (Δ minus (1 − τ)Δ)
    m(W_ν) ≤ ν · |det V| Σ_{k≥2} (p_k²/2) Π_{i∉{1,k}} p_i                          =: ν·c_ν
    m(W_G) ≤ (1/μ) · |det V| Σ_{i: q_i>0} Π_{j≠i} w_j                            =: c_G/μ
    m(W_μ) ≤ 1/(μ − ν) · |det V| Σ_{i≥2: q_i>0} (p_1²/2) Π_{j∉{1,i}} w_j          =: c_μ/(μ − ν)

The wedges W_ν, W_μ reach across the whole box, so their measure scales with the box, not with S
(the paper's 2√2B(…) is the length of one wedge edge, not an area). Parameters per simplex, for a
budget β_m with Σ_m β_m = δ' (δ' = compact.DELTA_SHARE·δ − dropped sliver volume, as for ``compact``):
τ spends SHARE_TAU·β_m, ν spends SHARE_NU·β_m, and μ = ν + (c_G + c_μ)/(SHARE_MU·β_m) the rest, so
the bound Σ_m (…) + dropped ≤ δ' < δ is recorded as ``error_bound`` (analytic; tests check it by Monte
Carlo). ν and τ are capped at PARAMETER_MAX and μ − ν ≥ 1/PARAMETER_MAX. The split is not even:
β_m ∝ √(c_ν,m·vol_m) makes the rounding amplification 1/(ν_m τ_m) the same for every module
(``_budgets``), so that slivers, whose wedges reach far in template coordinates, do not dominate it.

Numerics (paper_notes §2.5): |γ| ~ 1/ν and |ρ| ~ 1/τ, and Σ_k γ_{t,k}F_k cancels terms of size y/ν, so
rounding is amplified by ~1/(ντ) ~ (M/δ)²: build and evaluate in float64 only.

Sizes. The D inhibitors σ(−y_i) of a module are shared by its fans and its gate, and the D fans by
its D+1 basis functions (E_t differ only in γ), so one module has D + (D+1) + (D+1) hidden units in
three layers. The paper counts the inhibitors once per fan and the fans once per E_t, which gives its
(D+1)D² (JMLR Lemma 11; Table 1 multiplies it by M).

* Wide (``paper_wide``): layer 1 = D shared pass-through units σ(x − lo) (= x − lo on the box, read
  by the fans) and the DM inhibitors; layer 2 = the fans and gate, (D+1)M; layer 3 = the (D+1)M basis
  functions; output Σ_m ρ^{(m)}ᵀE^{(m)}. Widths (D + DM, (D+1)M, (D+1)M): width max(D + DM, (D+1)M),
  3 hidden layers, depth 4 — Table 1: width D²(D+1)M, depth D+1.
* Deep (``paper_deep``): strictly feedforward (the IR has no shortcuts), three layers per simplex.
  Coordinates are shifted, z = x − lo + c with c ≥ 1 (§2.6 shift fix instead of the paper's
  "origin on the boundary" assumption), so z ≥ 1 on the box and the state Ω, the coordinates not yet
  claimed by a simplex, is ≥ 0 and passes the ReLUs exactly. Each module outputs both f^{(m)} and the
  claimed coordinates x̃ = z·1_{S_m} (the same E_t with output weights ξ for the target z = v_0 + V y,
  paper Eq. 27), and Ω ← Ω − x̃ (Eq. 26, 29). f^{(m)} is accumulated in P (K) and N (1) with
  non-negative weights ρ + n and n, n_t = max(0, −min_k ρ_{t,k}), so both stay ≥ 0. Block layers:

      a_m: [σ(−y^{(m)}(Ω)) (D) | ω = Ω (D) | P (K) | N]
      b_m: [F (D) | G | ω | P | N]
      c_m: [E (D+1) | ω | P | N]

  with Ω = ω − ξ^{(m−1)ᵀ}E, P += (ρ + n)ᵀE, N += nᵀE folded into the weights of a_m; output
  P − N + ρ^{(M)ᵀ}E. Width 2D + K + 2, 3M hidden layers, depth 3M + 1 — Table 1: (D+1)D², (D+1)M.
  After the block of the simplex containing x, Ω = 0; the null point Ω = 0, at template coordinates
  y⁰_m = V_m^{-1}(−v_0z,m), must be dead robustly for every later module: if y⁰ ≥ 0 we require
  y⁰_1 ≥ 2ν max_{k≥2} y⁰_k (then its φ_t ≤ 1 − 1ᵀy⁰ < 0, as 0 is outside every shifted simplex),
  otherwise μS(y⁰) ≥ 2 and (μ − ν)s(y⁰) ≥ 2y⁰_1, which only lowers ν or raises μ (and the bound). The
  shift c is the first of SHIFT_CANDIDATES generic vectors whose null point keeps every barycentric
  coordinate (y⁰_1 … y⁰_D and 1 − 1ᵀy⁰) above NULL_MARGIN·max_i|y⁰_i| in absolute value (else the best
  one): it is then off every orthant face and every far-facet hyperplane, where rounding in Ω could
  switch a module on.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from math import factorial

import numpy as np
import scipy.sparse as sp

from quasieq import tolerances
from quasieq.box import Box
from quasieq.construct import univariate
from quasieq.construct.compact import layers_from_pattern, sparse_from_triplets, strip_budget
from quasieq.construct.job import Job, provenance, table1_sizes
from quasieq.errors import QuasieqError
from quasieq.geometry.simplices import SimplexComplex
from quasieq.net import Provenance, ReluNet, provenance_of

#: Shares of each simplex's budget spent on the τ-strip, the ν-wedges and the μ-strips/wedges.
#: Rounding is amplified by ~1/(ντ) and not by μ (μ only multiplies inhibitors that are exactly 0 where
#: the module is live), so ν and τ get equal, large shares.
SHARE_TAU, SHARE_NU, SHARE_MU = 0.45, 0.45, 0.10

#: Upper cap on ν and τ (a large budget would otherwise allow ν, τ ≥ 1, where the wedges stop being thin
#: and the bounds above, though still valid, say nothing).
PARAMETER_MAX = 0.5

#: The deep form's null point must keep every template coordinate at least this fraction of the
#: largest one away from 0 (off the orthant faces), so that the ν/μ conditions it imposes stay mild.
#: Why 1e-3: it bounds the extra weight growth from the null point by ~10^3.
NULL_MARGIN = 1e-3

#: Candidate shifts c = 1 + frac(j·(1, 2, …, D)·φ), j = 0, 1, … (j = 0 is the §2.6 shift c = 1).
SHIFT_CANDIDATES = 16
_GOLDEN = 0.6180339887498949


def _relu(t: np.ndarray) -> np.ndarray:
    return np.maximum(t, 0.0)


# ----- the module in template coordinates (numpy) ------------------------------------------------
def fan(h1: np.ndarray, h2: np.ndarray, mu: float) -> np.ndarray:
    """Fan-shaped block, JMLR Eq. (7) with several inhibitors: σ(h1 − μ Σ_i σ(h2[..., i])).

    ``h1`` has shape (...), ``h2`` shape (..., r) (broadcast against ``h1``).
    """
    return _relu(h1 - mu * _relu(h2).sum(axis=-1))


def basis_coefficients(D: int, nu: float, tau: float) -> np.ndarray:
    """γ (D+1, D) with E_t = σ(Σ_k γ[t, k] F_k + G): γ_{t,k} = −β_{t,k}/ν (k ≥ 2),
    γ_{t,1} = β_{t,1} + Σ_{k≥2} β_{t,k}/ν, where φ_t = 1 + Σ_i β_{t,i} y_i."""
    beta = -np.ones((D + 1, D))
    beta[1:] -= tau * np.eye(D)
    gamma = np.empty_like(beta)
    gamma[:, 1:] = -beta[:, 1:] / nu
    gamma[:, 0] = beta[:, 0] + beta[:, 1:].sum(axis=1) / nu
    return gamma


def output_weights(alpha: np.ndarray, beta0: np.ndarray, tau: float) -> np.ndarray:
    """ρ (D+1, K) with Σ_t ρ_t φ_t = αᵀy + β_0 (JMLR Eq. 15–16 generalised): ρ_i = −(α_i + β_0)/τ,
    ρ_0 = β_0 − Σ_{i≥1} ρ_i. ``alpha`` is (K, D), ``beta0`` (K,)."""
    alpha = np.atleast_2d(np.asarray(alpha, dtype=np.float64))
    beta0 = np.atleast_1d(np.asarray(beta0, dtype=np.float64))
    rho = np.empty((alpha.shape[1] + 1, alpha.shape[0]))
    rho[1:] = -(alpha + beta0[:, None]).T / tau
    rho[0] = beta0 - rho[1:].sum(axis=0)
    return rho


def fan_basis(y: np.ndarray, nu: float, tau: float, mu: float, *, gate: bool = True) -> np.ndarray:
    """The basis E_0 … E_D (N, D+1) at template points y (N, D); ``gate=False`` is the published
    Lemma 11 (constant γ_3 = 1 instead of the gate G)."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    inhibit = -y[:, 1:]
    F = np.concatenate([fan(y[:, 0], inhibit, mu)[:, None],
                        fan(y[:, :1] - nu * y[:, 1:], inhibit[:, None, :], mu)], axis=1)
    G = fan(np.ones(len(y)), -y, mu) if gate else np.ones(len(y))
    return _relu(F @ basis_coefficients(y.shape[1], nu, tau).T + G[:, None])


def lemma11_module(y: np.ndarray, alpha: np.ndarray, beta0: np.ndarray, nu: float, tau: float, mu: float,
                   *, gate: bool = True) -> np.ndarray:
    """N(y) = Σ_t ρ_t E_t(y) (N, K): ≈ (αᵀy + β_0)·1_Δ(y) (gate=True); Lemma 11 as printed (gate=False).

    >>> y = np.array([[0.2, 0.3], [-0.5, 0.5]])
    >>> lemma11_module(y, [[1.0, 2.0]], [3.0], 1e-4, 1e-4, 1e4).round(6).ravel().tolist()
    [3.8, 0.0]
    """
    return fan_basis(y, nu, tau, mu, gate=gate) @ output_weights(alpha, beta0, tau)


# ----- per-simplex geometry and the analytic bound --------------------------------------------------
@dataclass(frozen=True)
class _Templates:
    """Template maps of M simplices: y = Vinv (x − v0); alpha = A V, beta0 = A v0 + b; det = |det V|."""

    v0: np.ndarray  # (M, D)
    V: np.ndarray  # (M, D, D), columns v_j − v_0
    Vinv: np.ndarray
    det: np.ndarray  # (M,)
    alpha: np.ndarray  # (M, K, D)
    beta0: np.ndarray  # (M, K)

    @classmethod
    def of(cls, vertices: np.ndarray, A: np.ndarray, b: np.ndarray) -> _Templates:
        v0 = vertices[:, 0, :]
        V = np.swapaxes(vertices[:, 1:, :] - vertices[:, :1, :], 1, 2)
        return cls(v0, V, np.linalg.inv(V), np.abs(np.linalg.det(V)),
                   A @ V, np.einsum("mkd,md->mk", A, v0) + b)

    @property
    def D(self) -> int:
        return int(self.v0.shape[1])

    @property
    def volumes(self) -> np.ndarray:
        return self.det / factorial(self.D)


def _template_ranges(t: _Templates, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ylo, yhi) (M, D): exact range of each affine y_i = Vinv_i·(x − v0) over the box."""
    a = t.Vinv * (lo - t.v0)[:, None, :]
    c = t.Vinv * (hi - t.v0)[:, None, :]
    return np.minimum(a, c).sum(axis=2), np.maximum(a, c).sum(axis=2)


def _prod_except(arr: np.ndarray, *skip: int) -> np.ndarray:
    """Π_{j ∉ skip} arr[:, j] (M,)."""
    keep = np.ones(arr.shape[1], dtype=bool)
    keep[list(skip)] = False
    return arr[:, keep].prod(axis=1)


def _bound_coefficients(t: _Templates, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c_ν, c_G, c_μ) (M,) of the module docstring: m(W_ν) ≤ ν c_ν, m(W_G) ≤ c_G/μ, m(W_μ) ≤ c_μ/(μ − ν)."""
    ylo, yhi = _template_ranges(t, lo, hi)
    p, q, w = np.maximum(yhi, 0.0), np.maximum(-ylo, 0.0), yhi - ylo
    D = t.D
    c_nu = sum(p[:, k] ** 2 / 2 * _prod_except(p, 0, k) for k in range(1, D))
    c_gate = sum((q[:, i] > 0) * _prod_except(w, i) for i in range(D))
    c_mu = sum((q[:, i] > 0) * p[:, 0] ** 2 / 2 * _prod_except(w, 0, i) for i in range(1, D))
    return t.det * c_nu, t.det * c_gate, t.det * c_mu


def _tau_term(t: _Templates, tau: np.ndarray) -> np.ndarray:
    """m(W_τ) ≤ vol(S)·(1 − (1 − τ)^D)."""
    return t.volumes * -np.expm1(t.D * np.log1p(-tau))


def _module_bounds(
    t: _Templates, lo: np.ndarray, hi: np.ndarray, nu: np.ndarray, tau: np.ndarray, mu: np.ndarray
) -> np.ndarray:
    c_nu, c_gate, c_mu = _bound_coefficients(t, lo, hi)
    return _tau_term(t, tau) + nu * c_nu + c_gate / mu + c_mu / (mu - nu)


def _choose_parameters(
    t: _Templates, lo: np.ndarray, hi: np.ndarray, budgets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ν, τ, μ) (M,) meeting each module's budget with the shares SHARE_TAU/NU/MU (module docstring)."""
    c_nu, c_gate, c_mu = _bound_coefficients(t, lo, hi)
    x = np.minimum(SHARE_TAU * budgets / t.volumes, -np.expm1(t.D * np.log1p(-PARAMETER_MAX)))
    tau = -np.expm1(np.log1p(-x) / t.D)  # solves vol·(1 − (1 − τ)^D) = SHARE_TAU·β, capped at PARAMETER_MAX
    with np.errstate(divide="ignore"):
        nu = np.minimum(PARAMETER_MAX, SHARE_NU * budgets / c_nu)
    mu = nu + np.maximum((c_gate + c_mu) / (SHARE_MU * budgets), 1.0 / PARAMETER_MAX)
    return nu, tau, mu


def _budgets(t: _Templates, lo: np.ndarray, hi: np.ndarray, budget: float) -> np.ndarray:
    """Split the budget δ' over the modules as β_m ∝ √(c_ν,m·vol_m) (M,), summing to δ'.

    With ν = s_ν β/c_ν and τ ≈ s_τ β/(D·vol) the rounding amplification of module m is
    1/(ν_m τ_m) ≈ D c_ν,m vol_m/(s_ν s_τ β_m²): this split makes it the same for every module (slivers,
    whose wedges reach far in template coordinates, would otherwise dominate it).
    """
    weight = np.sqrt(_bound_coefficients(t, lo, hi)[0] * t.volumes) + (t.D == 1) * t.volumes
    return budget * weight / weight.sum()


def disagreement_bound(vertices: np.ndarray, box: Box, nu: float, tau: float, mu: float) -> float:
    """Analytic bound on m({x ∈ box : gated module ≠ f·1_S}) for one simplex (D+1, D) (independent of
    the target f); see the module docstring for the derivation. Needs μ > ν > 0 and 0 < τ < 1.

    >>> V = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> round(disagreement_bound(V, Box.cube(2, -1, 2), 1e-3, 1e-3, 1e3), 6)
    0.011
    """
    if not (0 < nu < mu and 0 < tau < 1):
        raise QuasieqError(f"fan parameters need 0 < ν < μ and 0 < τ < 1, got ν={nu:g}, τ={tau:g}, μ={mu:g}")
    V = np.asarray(vertices, dtype=np.float64)[None]
    t = _Templates.of(V, np.zeros((1, 1, V.shape[2])), np.zeros((1, 1)))
    return float(_module_bounds(t, box.lo, box.hi, np.array([nu]), np.array([tau]), np.array([mu]))[0])


# ----- assembly ------------------------------------------------------------------------------------
def _coo(blocks: np.ndarray, row0: np.ndarray, col0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries of M dense blocks (M, r, c) placed with top-left corners (row0[m], col0[m])."""
    M, r, c = blocks.shape
    rows = np.broadcast_to(row0[:, None, None] + np.arange(r)[None, :, None], blocks.shape)
    cols = np.broadcast_to(col0[:, None, None] + np.arange(c)[None, None, :], blocks.shape)
    return rows.reshape(-1), cols.reshape(-1), blocks.reshape(-1)


def _fan_rows(
    t: _Templates, origin: np.ndarray, nu: np.ndarray, mu: np.ndarray, gate: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fan/gate layer of every module reading u (with y = Vinv(u − origin)) and the inhibitors n:
    (weights on u (M, nF, D), weights on n (M, nF, D), biases (M, nF)), nF = D + gate.

    F_1 = y_1 − μΣ_{i≥2} n_i, F_k = y_1 − ν y_k − μΣ_{i≥2} n_i, G = 1 − μΣ_i n_i.
    """
    M, D = t.v0.shape
    yc = -np.einsum("mij,mj->mi", t.Vinv, origin)  # y = Vinv u + yc
    sel = np.zeros((M, D, D))  # row k of the fan: e_1 − ν e_k (k ≥ 2)
    sel[:, :, 0] = 1.0
    sel[:, np.arange(1, D), np.arange(1, D)] = -nu[:, None]
    on_u = sel @ t.Vinv
    bias = np.einsum("mki,mi->mk", sel, yc)
    on_n = np.zeros((M, D, D))
    on_n[:, :, 1:] = -mu[:, None, None]
    if gate:
        on_u = np.concatenate([on_u, np.zeros((M, 1, D))], axis=1)
        on_n = np.concatenate([on_n, np.broadcast_to(-mu[:, None, None], (M, 1, D))], axis=1)
        bias = np.concatenate([bias, np.ones((M, 1))], axis=1)
    return on_u, on_n, bias


def _gammas(D: int, nu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    return np.stack([basis_coefficients(D, n, s) for n, s in zip(nu, tau, strict=True)])


def _rhos(alpha: np.ndarray, beta0: np.ndarray, tau: np.ndarray) -> np.ndarray:
    return np.stack([output_weights(a, b, s) for a, b, s in zip(alpha, beta0, tau, strict=True)])


def _wide_layers(
    t: _Templates, lo: np.ndarray, nu: np.ndarray, tau: np.ndarray, mu: np.ndarray, gate: bool
) -> tuple[list, list]:
    """(weights, biases) of the modules side by side (module docstring, "Wide"), CSR layers, output
    summed over modules."""
    M, D = t.v0.shape
    K = t.alpha.shape[1]
    nF = D + int(gate)
    m = np.arange(M)
    # layer 1: [s = x − lo (D) | n^{(m)} = σ(−Vinv_m (x − v0_m)) (DM)]
    r1, c1, v1 = _coo(-t.Vinv, D + D * m, np.zeros(M, dtype=int))
    W1 = sparse_from_triplets(np.concatenate([np.arange(D), r1]), np.concatenate([np.arange(D), c1]),
              np.concatenate([np.ones(D), v1]), (D + D * M, D))
    b1 = np.concatenate([-lo, np.einsum("mij,mj->mi", t.Vinv, t.v0).reshape(-1)])
    # layer 2: fans (and gate), reading s with y = Vinv(s − (v0 − lo))
    on_u, on_n, b2 = _fan_rows(t, t.v0 - lo, nu, mu, gate)
    ru, cu, vu = _coo(on_u, nF * m, np.zeros(M, dtype=int))
    rn, cn, vn = _coo(on_n, nF * m, D + D * m)
    W2 = sparse_from_triplets(
        np.concatenate([ru, rn]), np.concatenate([cu, cn]), np.concatenate([vu, vn]), (nF * M, D + D * M)
    )
    # layer 3: E_t = γ_t·F + G (or + 1)
    blocks3 = _gammas(D, nu, tau)
    if gate:
        blocks3 = np.concatenate([blocks3, np.ones((M, D + 1, 1))], axis=2)
    W3 = sparse_from_triplets(*_coo(blocks3, (D + 1) * m, nF * m), ((D + 1) * M, nF * M))
    b3 = np.zeros((D + 1) * M) if gate else np.ones((D + 1) * M)
    # output Σ_m ρ^{(m)ᵀ} E^{(m)}
    rho = _rhos(t.alpha, t.beta0, tau)
    W4 = sparse_from_triplets(*_coo(np.swapaxes(rho, 1, 2), np.zeros(M, dtype=int), (D + 1) * m), (K, (D + 1) * M))
    return [W1, W2, W3, W4], [b1, b2.reshape(-1), b3, np.zeros(K)]


def _largest(weights: list, biases: list) -> float:
    """max |entry| over weights (dense or sparse) and biases, before the ReluNet is built (once)."""
    return max(float(np.abs(W.data if sp.issparse(W) else W).max(initial=0.0)) for W in [*weights, *biases])


def _as_single(vertices: np.ndarray, A: np.ndarray, b: np.ndarray) -> _Templates:
    V = np.asarray(vertices, dtype=np.float64)
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if V.ndim != 2 or V.shape[0] != V.shape[1] + 1:
        raise QuasieqError(f"a simplex needs vertices of shape (D+1, D), got {V.shape}")
    if A.shape[1] != V.shape[1] or b.shape != (A.shape[0],):
        raise QuasieqError(f"target must be A (K, {V.shape[1]}), b (K,); got A {A.shape}, b {b.shape}")
    return _Templates.of(V[None], A[None], b[None])


def simplex_module(X: np.ndarray, vertices: np.ndarray, A: np.ndarray, b: np.ndarray, nu: float, tau: float, mu: float,
                   *, gate: bool = True) -> np.ndarray:
    """The per-simplex module at points X (N, D) in x coordinates (numpy): Lemma 11 at y = V^{-1}(x − v_0)
    for the target f(x) = A x + b on the simplex ``vertices`` (D+1, D)."""
    t = _as_single(vertices, A, b)
    Y = (np.atleast_2d(np.asarray(X, dtype=np.float64)) - t.v0) @ t.Vinv[0].T
    return lemma11_module(Y, t.alpha[0], t.beta0[0], nu, tau, mu, gate=gate)


def module_net(vertices: np.ndarray, A: np.ndarray, b: np.ndarray, box: Box, nu: float, tau: float, mu: float,
               *, gate: bool = True) -> ReluNet:
    """The per-simplex module as a ReluNet (the wide form with M = 1): widths (2D, D + gate, D + 1).

    The pass-through units σ(x − box.lo) are exact for x ≥ box.lo only.
    """
    t = _as_single(vertices, A, b)
    if box.dim != t.D:
        raise QuasieqError(f"box has dimension {box.dim} but the simplex lives in dimension {t.D}")
    return ReluNet(*_wide_layers(t, box.lo, np.array([nu], float), np.array([tau], float), np.array([mu], float), gate))


def _labelled(simplices: SimplexComplex, box: Box) -> _Templates:
    """Template maps with, for every simplex, the vertex order (v_0, v_1 first) that minimises c_ν.

    The module computes f·1_S whatever the order, but its ν-wedges hug the face y_1 = 0 seen from v_0,
    and their bound c_ν (hence the largest admissible ν, and the rounding amplification ~1/(ντ)) varies
    by up to ~10× between orders. c_ν is symmetric in v_2 … v_D, so D(D+1) orders are tried.
    """
    M, D = simplices.M, simplices.D
    orders = np.array([[a, b, *(j for j in range(D + 1) if j not in (a, b))]
                       for a in range(D + 1) for b in range(D + 1) if a != b])
    trial = simplices.vertices[:, orders].reshape(M * len(orders), D + 1, D)
    t = _Templates.of(trial, np.zeros((len(trial), 1, D)), np.zeros((len(trial), 1)))
    c_nu = _bound_coefficients(t, box.lo, box.hi)[0].reshape(M, len(orders))
    best = orders[np.argmin(c_nu, axis=1)]
    return _Templates.of(np.take_along_axis(simplices.vertices, best[:, :, None], axis=1), simplices.A, simplices.b)


def _prepare(simplices: SimplexComplex, box: Box, delta: float) -> tuple[_Templates, float]:
    if box.dim != simplices.D:
        raise QuasieqError(f"box has dimension {box.dim} but the simplices live in dimension {simplices.D}")
    budget = strip_budget(simplices, delta)
    return _labelled(simplices, box), budget


def _warn_rounding(nu: np.ndarray, tau: np.ndarray) -> float:
    """The rounding amplification max 1/(ν τ); warns when float64 rounding times it exceeds the
    disagreement tolerance (tolerances.DISAGREE_RELATIVE), i.e. when the measured disagreement is
    expected to exceed the analytic bound because of rounding, not geometry."""
    amplification = float((1.0 / (nu * tau)).max())
    if amplification * np.finfo(np.float64).eps > tolerances.DISAGREE_RELATIVE:
        warnings.warn(
            f"paper construction: rounding amplification 1/(ντ) = {amplification:.2g}; float64 errors may exceed "
            f"the comparison tolerance inside the simplices: use a larger delta or method='compact'",
            RuntimeWarning,
            stacklevel=3,
        )
    return amplification


def _provenance(form: str, simplices: SimplexComplex, box: Box, delta: float, bound: float, weights_max: float,
                nu: np.ndarray, tau: np.ndarray, mu: np.ndarray, sizes: dict, extra: dict) -> Provenance:
    table1 = table1_sizes(form, simplices.D, simplices.M)
    return provenance(
        "paper", box, delta=delta, error_bound=bound, max_abs_weight=weights_max, simplices=simplices.M,
        table1=table1,
        details={
            "dropped_simplices": simplices.dropped,
            "merged_regions": simplices.merged_regions,
            "gate": True,
            "bound": "analytic (construct/paper.py: τ-strip + ν-wedges + μ-strips and wedges)",
            "parameters": {
                name: [float(v.min()), float(v.max())] for name, v in (("nu", nu), ("tau", tau), ("mu", mu))
            },
            "rounding_amplification": _warn_rounding(nu, tau),
            "sizes": sizes,
            # Table 1's depth read as Definition 1 (hidden layers + 1) and as the paper's own Lemma 11 count
            "table1_hidden_layers": {"def1": table1[1] - 1, "lemma11": table1[1]},
            **extra,
        },
    )


def paper_wide(simplices: SimplexComplex, box: Box, delta: float) -> ReluNet:
    """The paper's wide net (JMLR Eq. 22–24): gated fan modules side by side, outputs summed.

    Widths (D + DM, (D+1)M, (D+1)M), 3 hidden layers (depth 4); m({H ≠ h}) ≤ error_bound < δ, the
    analytic bound of the module docstring (plus the dropped slivers' volume).

    Example
    -------
    >>> wide = paper_wide(triangulate(qe.regions(net, box)), box, 1e-3)   # doctest: +SKIP
    >>> wide.hidden_layers, wide.provenance.error_bound < 1e-3             # doctest: +SKIP
    (3, True)
    """
    t, budget = _prepare(simplices, box, delta)
    M, D = simplices.M, simplices.D
    nu, tau, mu = _choose_parameters(t, box.lo, box.hi, _budgets(t, box.lo, box.hi, budget))
    bound = float(_module_bounds(t, box.lo, box.hi, nu, tau, mu).sum() + simplices.dropped_volume)
    weights, biases = _wide_layers(t, box.lo, nu, tau, mu, gate=True)
    sizes = {"width": max(D + D * M, (D + 1) * M), "hidden_layers": 3, "depth": 4}
    prov = _provenance("wide", simplices, box, delta, bound, _largest(weights, biases), nu, tau, mu, sizes, {})
    return ReluNet(weights, biases, prov)


def _null_margin(y0: np.ndarray) -> float:
    """min over modules of min_j |λ_j(y⁰)| / max_i |y⁰_i|, λ = (1 − 1ᵀy⁰, y⁰) the barycentric coordinates."""
    lam = np.abs(np.concatenate([1.0 - y0.sum(axis=1, keepdims=True), y0], axis=1))
    return float((lam.min(axis=1) / np.abs(y0).max(axis=1)).min())


def _null_point(t: _Templates, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Choose the shift c (D,) and return (c, y⁰ (M, D), margin), y⁰ the template coordinates of Ω = 0,
    i.e. of x = lo − c (module docstring, "Deep")."""
    D = t.D
    best: tuple[float, np.ndarray, np.ndarray] = (-1.0, np.ones(D), np.zeros((0, D)))
    for j in range(SHIFT_CANDIDATES):
        c = 1.0 + (j * _GOLDEN * np.arange(1, D + 1)) % 1.0
        y0 = np.einsum("mij,mj->mi", t.Vinv, lo - c - t.v0)
        margin = _null_margin(y0)
        if margin > best[0]:
            best = (margin, c, y0)
        if margin >= NULL_MARGIN:
            break
    if best[0] <= 0.0:
        raise QuasieqError(
            "deep paper form: the null point Ω = 0 lies on a facet hyperplane of a simplex for every candidate shift"
        )
    return best[1], best[2], best[0]


def _null_point_parameters(y0: np.ndarray, nu: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower ν / raise μ so that every module is robustly dead at y⁰ (module docstring, "Deep")."""
    nu, mu = nu.copy(), mu.copy()
    orthant = (y0 > 0).all(axis=1)
    if y0.shape[1] > 1:
        cap = y0[:, 0] / (2.0 * y0[:, 1:].max(axis=1))
        nu[orthant] = np.minimum(nu[orthant], cap[orthant])
    S = _relu(-y0).sum(axis=1)
    s = _relu(-y0[:, 1:]).sum(axis=1)
    out = ~orthant
    need = np.full(len(y0), -np.inf)
    need[out] = 2.0 / S[out]
    wedge = out & (y0[:, 0] > 0)
    need[wedge] = np.maximum(need[wedge], nu[wedge] + 2.0 * y0[wedge, 0] / s[wedge])
    return nu, np.maximum(mu, need)


def _block_layers(stack: np.ndarray) -> list[sp.csr_matrix]:
    """One CSR matrix per dense block of ``stack`` (M, r, c), exact zeros left out."""
    M, r, c = stack.shape
    return layers_from_pattern(stack.reshape(M, r * c), np.repeat(np.arange(r), c), np.tile(np.arange(c), r), (r, c))


# One function on purpose: every block below indexes the same unit layout (a, b, c: index arrays named
# once) and the same stacked (M, ·, ·) weight arrays; split, each piece would need the whole layout again.
def paper_deep(simplices: SimplexComplex, box: Box, delta: float) -> ReluNet:
    """The paper's deep net (JMLR Eq. 25–30), built strictly feedforward: gated fan modules in series
    carrying the Ω state (the unclaimed shifted coordinates) and two accumulators through the ReLUs.

    Width 2D + K + 2, 3M hidden layers (depth 3M + 1); m({H ≠ h}) ≤ error_bound < δ (the same analytic
    bound as the wide form: module m sees Ω = z exactly until x is claimed, and Ω = 0 after).

    Example
    -------
    >>> deep = paper_deep(triangulate(qe.regions(net, box)), box, 1e-3)    # doctest: +SKIP
    >>> deep.width, deep.hidden_layers                                       # doctest: +SKIP
    (7, 108)
    """
    t, budget = _prepare(simplices, box, delta)
    M, D, K = simplices.M, simplices.D, simplices.K
    lo = box.lo
    nu, tau, mu = _choose_parameters(t, lo, box.hi, _budgets(t, box.lo, box.hi, budget))
    c, y0, margin = _null_point(t, lo)
    nu, mu = _null_point_parameters(y0, nu, mu)
    bound = float(_module_bounds(t, lo, box.hi, nu, tau, mu).sum() + simplices.dropped_volume)

    v0z = t.v0 - lo + c  # simplex origins in z = x − lo + c
    gamma = _gammas(D, nu, tau)
    rho = _rhos(t.alpha, t.beta0, tau)  # (M, D+1, K)
    xi = _rhos(t.V, v0z, tau)  # (M, D+1, D): z = v0z + V y on Δ
    neg = _relu(-rho.min(axis=2))  # (M, D+1) shared negative part
    # unit layout: a = [n (D) | ω (D) | P (K) | N]; b = [F (D) | G | ω | P | N]; c = [E (D+1) | ω | P | N]
    wa, wb = 2 * D + K + 1, 2 * D + K + 2
    a_n, a_w, a_P, a_N = np.arange(D), D + np.arange(D), 2 * D + np.arange(K), 2 * D + K
    f_w, f_P, f_N = D + 1 + np.arange(D), 2 * D + 1 + np.arange(K), 2 * D + 1 + K
    carry_a, carry_b = np.concatenate([a_w, a_P, [a_N]]), np.concatenate([f_w, f_P, [f_N]])

    # b_m from a_m: fans/gate read ω (u = Ω, origin v0z) and n; ω, P, N carried
    on_u, on_n, fb = _fan_rows(t, v0z, nu, mu, gate=True)
    Wb = np.zeros((M, wb, wa))
    Wb[:, :D + 1, a_w] = on_u
    Wb[:, :D + 1, a_n] = on_n
    Wb[:, carry_b, carry_a] = 1.0
    bb = np.zeros((M, wb))
    bb[:, :D + 1] = fb
    # c_m from b_m: E_t = γ_t·F + G; ω, P, N carried
    Wc = np.zeros((M, wb, wb))
    Wc[:, :D + 1, :D] = gamma
    Wc[:, :D + 1, D] = 1.0
    Wc[:, carry_b, carry_b] = 1.0
    # a_{m+1} from c_m: Ω = ω − ξ_mᵀE; n = −Vinv_{m+1}(Ω − v0z_{m+1}); P += (ρ + n)ᵀE; N += nᵀE
    # (Wa[0] is not used: a_1 reads x, ``first`` below)
    Wa = np.zeros((M, wa, wb))
    Wa[:, a_n[:, None], f_w] = -t.Vinv
    Wa[1:, :D, :D + 1] = t.Vinv[1:] @ np.swapaxes(xi[:-1], 1, 2)
    Wa[:, a_w, f_w] = 1.0
    Wa[1:, D:2 * D, :D + 1] = -np.swapaxes(xi[:-1], 1, 2)
    Wa[:, a_P, f_P] = 1.0
    Wa[1:, 2 * D:2 * D + K, :D + 1] = np.swapaxes(rho[:-1] + neg[:-1, :, None], 1, 2)
    Wa[:, a_N, f_N] = 1.0
    Wa[1:, a_N, :D + 1] = neg[:-1]
    ba = np.zeros((M, wa))
    ba[:, :D] = np.einsum("mij,mj->mi", t.Vinv, v0z)
    # a_1 from x: n = −Vinv_1(x − v0_1); ω = x − lo + c; P = N = 0
    first = np.zeros((wa, D))
    first[:D] = -t.Vinv[0]
    first[a_w, np.arange(D)] = 1.0
    ba[0, :D] = t.Vinv[0] @ t.v0[0]
    ba[0, a_w] = c - lo
    # output from c_M: P − N + ρ_Mᵀ E
    out = np.zeros((K, wb))
    out[:, :D + 1] = rho[-1].T
    out[:, f_P] = np.eye(K)
    out[:, f_N] = -1.0

    La, Lb, Lc = (_block_layers(stack) for stack in (Wa, Wb, Wc))
    weights = [W for m in range(M) for W in (La[m] if m else sp.csr_matrix(first), Lb[m], Lc[m])]
    weights.append(sp.csr_matrix(out))
    biases = [v for m in range(M) for v in (ba[m], bb[m], np.zeros(wb))] + [np.zeros(K)]
    sizes = {"width": wb, "hidden_layers": 3 * M, "depth": 3 * M + 1}
    extra = {"feedforward": True, "shift": c.tolist(), "null_point_margin": margin}
    prov = _provenance("deep", simplices, box, delta, bound, _largest(weights, biases), nu, tau, mu, sizes, extra)
    return ReluNet(weights, biases, prov)


def build(form: str, job: Job) -> ReluNet:
    """``method="paper"`` (registry): the regions triangulated, then the paper's wide or deep net; exact in
    1-D (Theorem 9)."""
    if job.net.in_dim == 1:
        return univariate.build(form, job)
    delta = job.measure("paper")
    sc = job.simplices(form, "paper")
    built = (paper_wide if form == "wide" else paper_deep)(sc, job.box, delta)
    return built.with_provenance(dataclasses.replace(provenance_of(built), task=job.task))


__all__ = [
    "fan", "basis_coefficients", "output_weights", "fan_basis", "lemma11_module", "disagreement_bound",
    "simplex_module", "module_net", "paper_wide", "paper_deep",
]
