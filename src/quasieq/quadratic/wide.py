"""Polynomial → wide quadratic network: the factorisation (paper_notes §3.2).

P(x) = p_n ∏_z (x − z) over its n roots. Grouped into N = ⌈n/2⌉ real factors q_j(x) = r_j x² + s_j x + t_j:

* a conjugate pair z, z̄ gives x² − 2 Re(z) x + |z|²;
* the real roots, sorted, are paired: (x − α)(x − β) = x² − (α + β) x + αβ;
* for odd n one real root is left: the linear factor x − α (r = 0);
* p_n is multiplied into q_1.

Layer 1 holds the N quadratic neurons q_j(x) = (s_j x + 0)(0·x + 1) + r_j x² + t_j (identity
activation: factors can be negative); then a product tree of quadratic neurons multiplies them. Sizes:
**width N = ⌈n/2⌉, depth 1 + ⌈log₂ N⌉** layers of quadratic neurons (the last one is the output).
The identity is exact up to the rounding of the roots.

Conditioning (paper_notes W11, Wilkinson). Two different things are measured:

* *Backward error of the factors.* The factors are multiplied back (``polymul``) into p̃ and
  max_i |p̃_i − p_i| / max_i |p_i| is measured: the net computes p̃ exactly up to rounding, so the
  uniform error on the domain is at most max_i|p̃_i − p_i| · Σ_i B^i, B = max(|lo|, |hi|). The balanced
  companion matrix keeps it at ~n·u for nearly every input (Wilkinson's polynomial, (x − 1)^30 alike);
  it fails when the coefficients span many orders of magnitude (e.g. 1e17 + 1e-13x + 1e17x² + 1e-9x³,
  whose computed roots are real although P > 0 on R). Above
  :data:`~quasieq.tolerances.QUADRATIC_FACTOR_RELATIVE` the construction refuses (or warns with
  ``on_ill_conditioned="warn"``).
* *Root condition.* κ(z) = Σ_i |p_i||z|^i / (|z|·|P'(z)|) is the relative sensitivity of a root to
  relative coefficient changes; multiple and clustered roots have huge κ and come out with relative
  errors ~κ·u. Such roots are reported (``root_condition``, and a warning when κ·u exceeds
  QUADRATIC_FACTOR_RELATIVE) but not refused: the factors are then individually inaccurate, yet their
  product still reproduces P to the backward error above.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from quasieq.errors import QuasieqError
from quasieq.quadratic.layers import QuadraticLayer, ceil_log2, product_tree
from quasieq.quadratic.polynomial import as_coefficients, as_domain
from quasieq.tolerances import QUADRATIC_FACTOR_RELATIVE


@dataclass(frozen=True)
class Factorisation:
    """P = ∏_j (r_j x² + s_j x + t_j): ``factors`` is (N, 3) with rows (r_j, s_j, t_j)."""

    factors: np.ndarray
    roots: np.ndarray
    #: max_i |p̃_i − p_i| / max_i |p_i|, p̃ the coefficients of the product of the factors.
    coefficient_error: float
    #: max over the roots of κ(z) = Σ_i |p_i||z|^i / (|z|·|P'(z)|) (inf at a numerically multiple root).
    root_condition: float


def factorise(coeffs: Sequence[float] | np.ndarray) -> Factorisation:
    """Real quadratic factors of P (ascending coefficients) from ``numpy.roots``' companion eigenvalues.

    The eigenvalues of a real matrix come in exactly conjugate pairs, so the roots with Im z > 0 are the
    pair representatives and those with Im z = 0 are the real roots.
    """
    p = as_coefficients(coeffs)
    roots = np.roots(p[::-1])
    pairs = roots[roots.imag > 0.0]
    real = np.sort(roots[roots.imag == 0.0].real)
    rows = [(1.0, -2.0 * z.real, abs(z) ** 2) for z in pairs]
    # an odd count leaves the largest real root unpaired: it becomes the linear factor below
    rows += [(1.0, -(a + b), a * b) for a, b in zip(real[0::2], real[1::2], strict=False)]
    if real.size % 2:
        rows.append((0.0, 1.0, -real[-1]))
    factors = np.array(rows, dtype=np.float64)
    factors[0] *= p[-1]
    rebuilt = np.array([1.0])
    for r, s, t in factors:
        rebuilt = np.polynomial.polynomial.polymul(rebuilt, [t, s, r])
    rebuilt = np.pad(rebuilt, (0, max(0, p.size - rebuilt.size)))[: p.size]
    error = float(np.max(np.abs(rebuilt - p)) / np.max(np.abs(p)))
    return Factorisation(factors=factors, roots=roots, coefficient_error=error, root_condition=root_condition(p, roots))


def root_condition(p: np.ndarray, roots: np.ndarray) -> float:
    """max_z Σ_i |p_i||z|^i / (|z|·|P'(z)|), the relative condition number of the worst root."""
    P = np.polynomial.polynomial
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = P.polyval(np.abs(roots), np.abs(p)) / np.abs(roots * P.polyval(roots, P.polyder(p)))
    return float(np.max(np.nan_to_num(kappa, nan=0.0, posinf=np.inf)))


class WideQuadraticNet(nn.Module):
    """x ↦ ∏_j q_j(x): one layer of N factor neurons, then a product tree; (N, 1) → (N, 1), float64."""

    def __init__(self, coeffs: np.ndarray, domain: tuple[float, float], factorisation: Factorisation) -> None:
        super().__init__()
        r, s, t = factorisation.factors.T
        n_factors = r.size
        zeros = np.zeros(n_factors)
        first = QuadraticLayer.from_weights(s[:, None], zeros, np.zeros((n_factors, 1)), np.ones(n_factors),
                                            r[:, None], t)
        layers = [first, *product_tree(n_factors)]
        self.layers = nn.Sequential(*layers)
        self.coeffs, self.domain, self.factorisation = coeffs, domain, factorisation
        self.degree = coeffs.size - 1
        self.width = max(layer.out_features for layer in layers)
        self.depth = len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def wide_sizes(degree: int) -> tuple[int, int]:
    """(width, depth) of the wide net for a degree-n polynomial: (⌈n/2⌉, 1 + ⌈log₂⌈n/2⌉⌉)."""
    n_factors = (degree + 1) // 2
    return n_factors, 1 + ceil_log2(n_factors)


def wide(coeffs: Sequence[float] | np.ndarray, *, domain: Sequence[float] = (-1.0, 1.0),
         on_ill_conditioned: str = "refuse") -> WideQuadraticNet:
    """The wide quadratic network of P(x) = Σ p_i x^i (ascending ``coeffs``), mapping (N, 1) → (N, 1).

    ``on_ill_conditioned``: ``"refuse"`` raises :class:`QuasieqError` when the factors rebuild the
    coefficients worse than QUADRATIC_FACTOR_RELATIVE (relative); ``"warn"`` builds the net anyway and
    issues a warning with the measured error and its uniform bound on the domain. The result carries
    ``width``, ``depth``, ``degree``, ``domain`` and ``factorisation`` (factors, roots, coefficient error).
    """
    if on_ill_conditioned not in ("refuse", "warn"):
        raise QuasieqError(f"on_ill_conditioned must be 'refuse' or 'warn', got {on_ill_conditioned!r}")
    p = as_coefficients(coeffs)
    dom = as_domain(domain)
    fac = factorise(p)
    if fac.coefficient_error > QUADRATIC_FACTOR_RELATIVE:
        bound = fac.coefficient_error * np.max(np.abs(p)) * np.sum(max(abs(dom[0]), abs(dom[1])) ** np.arange(p.size))
        message = (f"ill-conditioned roots: the factors rebuild the coefficients with relative error "
                   f"{fac.coefficient_error:.3g} > {QUADRATIC_FACTOR_RELATIVE:g} (uniform error up to {bound:.3g} "
                   f"on [{dom[0]:g}, {dom[1]:g}])")
        if on_ill_conditioned == "refuse":
            raise QuasieqError(message + "; pass on_ill_conditioned='warn' to build it anyway")
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    if fac.root_condition * np.finfo(np.float64).eps > QUADRATIC_FACTOR_RELATIVE:
        warnings.warn(f"ill-conditioned roots (condition number {fac.root_condition:.3g}): the individual factors "
                      f"are inaccurate, their product still rebuilds P to {fac.coefficient_error:.3g}",
                      RuntimeWarning, stacklevel=2)
    return WideQuadraticNet(p, dom, fac)
