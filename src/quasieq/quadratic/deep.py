"""Polynomial → deep quadratic network: Euler's continued fraction (paper_notes §3.3).

**Split.** P(x) = E(x²) + x·O(x²) with E(y) = Σ_k p_{2k} y^k and O(y) = Σ_k p_{2k+1} y^k.

**Euler's form** of a chain polynomial c(y) = Σ_{i=0}^m c_i y^i (trailing zeros dropped) with
c_0 … c_{m−1} ≠ 0: a_0 = c_0, a_i = c_i / c_{i−1}, and

    c(y) = a_0 / (1 − a_1y / (1 + a_1y − a_2y / (1 + a_2y − ⋯ − a_my / (1 + a_my)))).

**Units**, bottom-up, each fed y = x² by a shortcut: L_m = a_m y/(1 + a_m y),
L_k = a_k y/(1 + a_k y − L_{k+1}) for k = m−1 … 1, out = a_0/(1 − L_1) (times x for the odd chain).

**Proof.** With the tails T_k(y) = Σ_{i=k}^m (c_i/c_k) y^{i−k} (T_m = 1, T_{k−1} = 1 + a_k y T_k),
induction gives 1 + a_k y − L_{k+1} = T_{k−1}/T_k and L_k = a_k y T_k / T_{k−1}, hence 1 − L_1 = 1/T_0
and out = c_0 T_0 = c(y).

**Sizes.** The even chain has m_e = ⌊n/2⌋ units, the odd one ⌊(n−1)/2⌋ ≤ m_e; run side by side (two
units per layer), then the two outputs, then their sum: **width 2, depth ⌊n/2⌋ + 2**. The units are
rational (a division), not pure quadratic neurons.

**Hazards** (paper_notes W11).

* *Zero coefficients.* c_i = 0 for some i < m makes a_{i+1} a division by zero. With
  ``on_pole="perturb"`` (or ``"allow"``) each such c_i becomes σε, σ the sign of the next non-zero
  coefficient above it (so the tail root this creates, near y = −ε/c_{i+1}, is negative and off the
  domain). P changes by ε·Σ_{perturbed i} x^i, so in exact arithmetic the uniform error on [lo, hi] is
  at most ε·Σ_{perturbed i} B^i, B = max(|lo|, |hi|) (``perturbation.bound``). In floats the units
  then carry ratios ~max|p|/ε and 1 − L_1 ~ ε cancels, adding rounding of order u·(max|p|/ε)·Σ|p_i|B^i
  (times a small factor per unit); the default ε = sqrt(u)·max|p| balances the two for an isolated
  zero, while a run of zeros compounds the cancellation (measured: 1 + 2x² + 3x⁶ + x⁷ + 2x⁸ on [−2, 2]
  reaches 3.6e-4 against a bound of 1.2e-6). The error actually reached is therefore measured on a
  dense grid and reported as ``perturbation.measured``.
* *Poles.* Unit L_k has a pole where T_{k−1}(y) = 0, k = 1 … m; a real root of some T_k (k < m) in
  the range of y = x² over the domain makes an intermediate unit unbounded there (±inf exactly at it).
  The pole is removable — the output is c(y) — and IEEE arithmetic carries it through (at the pole
  L_k = ±inf, so L_{k−1} = a y/(−inf) = 0, which is its true value), so the *output* stays accurate
  to ~1e-12 relative even on the poles (measured); but the intermediate activations, and gradients,
  are unbounded. A simple real root moves only by O(ε) under an ε-perturbation of the coefficients,
  so no small perturbation removes a pole: ``"refuse"`` and ``"perturb"`` refuse it, naming the tail
  and the pole's location; ``"allow"`` builds the net anyway (warning) and records the poles.

**How common are poles?** paper_notes §3.3 estimates one random polynomial in ten on [−1, 1]. Measured
here (tests/test_quadratic.py), for i.i.d. standard normal coefficients of degree 8–12 *about 95%* have a
real tail root with y ∈ [0, 1]: each of the ~10 tails T_k has a sizeable chance of a root in [0, 1],
so the estimate does not hold for that distribution. Polynomials whose even and odd coefficients each
have one sign have none (every T_k then has positive coefficients, so T_k(y) ≥ 1 for y ≥ 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from quasieq.errors import QuasieqError
from quasieq.quadratic.polynomial import as_coefficients, as_domain, max_errors, square_range
from quasieq.tolerances import QUADRATIC_PERTURB_RELATIVE, QUADRATIC_POLE_GUARD

ON_POLE = ("refuse", "perturb", "allow")
_PARTS = ("even", "odd")


@dataclass(frozen=True)
class Pole:
    """Tail T_k of the ``part`` chain ("even": E, "odd": O) vanishes at y = x², x = ±sqrt(y)."""

    part: str
    tail: int
    y: complex

    def describe(self) -> str:
        where = f"y = {self.y.real:.6g}" + (f"{self.y.imag:+.2g}i" if self.y.imag else "")
        x = np.sqrt(max(self.y.real, 0.0))
        return f"tail T_{self.tail} of the {self.part} part vanishes at {where} (x = ±{x:.6g})"


@dataclass(frozen=True)
class Perturbation:
    """Zero coefficients replaced by ±eps: ``indices`` into p, ``bound`` = eps·Σ_i B^i on the domain.

    ``measured`` is max |net − P| on a dense grid of the domain (float64, rounding included).
    """

    indices: tuple[int, ...]
    eps: float
    bound: float
    measured: float


def chain_coefficients(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E, O) coefficient arrays of P = E(x²) + x·O(x²), trailing zeros dropped ([0.0] if all zero)."""
    def trimmed(part: np.ndarray) -> np.ndarray:
        return np.trim_zeros(part, "b") if np.any(part) else np.zeros(1)

    return trimmed(p[0::2]), trimmed(p[1::2])


def euler_coefficients(c: np.ndarray) -> np.ndarray:
    """a_0 = c_0, a_i = c_i / c_{i−1}; requires c_0 … c_{m−1} ≠ 0."""
    return np.concatenate([c[:1], c[1:] / c[:-1]])


def tail_poles(c: np.ndarray, y_range: tuple[float, float], part: str) -> list[Pole]:
    """Roots z of T_0 … T_{m−1} with Re z in y_range and |Im z| ≤ QUADRATIC_POLE_GUARD·max(1, |z|)."""
    y_lo, y_hi = y_range
    poles = []
    for k in range(c.size - 1):
        roots = np.roots((c[k:] / c[k])[::-1])
        real = np.abs(roots.imag) <= QUADRATIC_POLE_GUARD * np.maximum(1.0, np.abs(roots))
        poles += [Pole(part, k, complex(z)) for z in roots[real & (roots.real >= y_lo) & (roots.real <= y_hi)]]
    return poles


def _perturb_zeros(p: np.ndarray, eps: float) -> tuple[np.ndarray, list[int]]:
    """Replace each c_i = 0 below a chain's top by σ·eps (σ: sign of the next non-zero c_j, j > i)."""
    q, changed = p.copy(), []
    for offset in (0, 1):
        chain = q[offset::2]
        top = np.flatnonzero(chain)
        if top.size == 0:
            continue
        for i in range(top[-1] - 1, -1, -1):
            if chain[i] == 0.0:
                chain[i] = np.sign(chain[i + 1]) * eps
                changed.append(2 * i + offset)
        q[offset::2] = chain
    return q, sorted(changed)


class ContinuedFraction(nn.Module):
    """One Euler chain: out = a_0/(1 − L_1), L_k = a_k y/(1 + a_k y − L_{k+1}), L_{m+1} = 0; times x if odd."""

    def __init__(self, a: np.ndarray, odd: bool) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(a, dtype=torch.float64))
        self.odd = odd

    @property
    def units(self) -> int:
        return self.a.numel() - 1

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        unit = torch.zeros_like(y)
        for k in range(self.units, 0, -1):
            unit = self.a[k] * y / (1.0 + self.a[k] * y - unit)
        out = self.a[0] / (1.0 - unit)
        return x * out if self.odd else out


class DeepQuadraticNet(nn.Module):
    """x ↦ E-chain(x²) + x·O-chain(x²); (N, 1) → (N, 1) in float64. Width 2, depth ⌊n/2⌋ + 2."""

    def __init__(self, coeffs: np.ndarray, domain: tuple[float, float], used: np.ndarray, poles: list[Pole]) -> None:
        super().__init__()
        even, odd = chain_coefficients(used)
        self.even = ContinuedFraction(euler_coefficients(even), False)
        self.odd = ContinuedFraction(euler_coefficients(odd), True)
        self.coeffs, self.domain, self.poles = coeffs, domain, poles
        #: None, or the zero-coefficient :class:`Perturbation` (set by :func:`deep`).
        self.perturbation: Perturbation | None = None
        self.degree = coeffs.size - 1
        self.width, self.depth = deep_sizes(self.degree)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != 1:
            raise QuasieqError(f"the deep quadratic net expects input (N, 1), got {tuple(x.shape)}")
        y = x * x
        return self.even(x, y) + self.odd(x, y)


def deep_sizes(degree: int) -> tuple[int, int]:
    """(width, depth) of the deep net for a degree-n polynomial: (2, ⌊n/2⌋ + 2)."""
    return 2, degree // 2 + 2


def zero_coefficients(p: np.ndarray) -> list[int]:
    """Indices i into p of the zero coefficients below the top of their chain (they break Euler's form)."""
    return sorted(2 * int(i) + offset for offset, chain in zip((0, 1), chain_coefficients(p), strict=True)
                  for i in np.flatnonzero(chain[:-1] == 0.0))


def find_poles(p: np.ndarray, domain: tuple[float, float]) -> list[Pole]:
    """The tail poles of both chains on the domain (p must have no :func:`zero_coefficients`)."""
    y_range = square_range(*domain)
    chains = zip(_PARTS, chain_coefficients(p), strict=True)
    return [pole for part, chain in chains for pole in tail_poles(chain, y_range, part)]


def deep(coeffs: Sequence[float] | np.ndarray, *, domain: Sequence[float] = (-1.0, 1.0),
         on_pole: str = "refuse", eps: float | None = None) -> DeepQuadraticNet:
    """The deep (continued-fraction) quadratic network of P(x) = Σ p_i x^i, mapping (N, 1) → (N, 1).

    ``on_pole``: ``"refuse"`` raises :class:`QuasieqError` on a zero coefficient (naming p_i) or a real
    tail pole on the domain (naming the tail and the location); ``"perturb"`` replaces zero
    coefficients by ±``eps`` (default QUADRATIC_PERTURB_RELATIVE·max|p_i|) and refuses poles;
    ``"allow"`` perturbs and also accepts poles, with a warning (see the module docstring). The result
    carries ``width``, ``depth``, ``degree``, ``domain``, ``poles`` and ``perturbation`` (None, or the
    indices, ε, the exact-arithmetic bound ε·Σ B^i and the error measured on a dense grid).
    """
    if on_pole not in ON_POLE:
        raise QuasieqError(f"on_pole must be one of {', '.join(ON_POLE)}, got {on_pole!r}")
    if eps is not None and not (np.isfinite(eps) and eps > 0.0):
        raise QuasieqError(f"eps must be a positive finite number, got {eps}")
    p = as_coefficients(coeffs)
    dom = as_domain(domain)
    zeros = zero_coefficients(p)
    used = p
    if zeros:
        if on_pole == "refuse":
            raise QuasieqError(f"zero coefficient(s) {', '.join(f'p{i}' for i in zeros)} break Euler's continued "
                               f"fraction (a_i = c_i/c_(i-1)); pass on_pole='perturb' to replace them by ±eps")
        eps_used = QUADRATIC_PERTURB_RELATIVE * float(np.max(np.abs(p))) if eps is None else float(eps)
        used, changed = _perturb_zeros(p, eps_used)
    poles = find_poles(used, dom)
    if poles and on_pole != "allow":
        raise QuasieqError(f"pole on [{dom[0]:g}, {dom[1]:g}]: {poles[0].describe()}"
                           + (f" (+{len(poles) - 1} more)" if len(poles) > 1 else "")
                           + "; an eps-perturbation cannot remove a real pole, pass on_pole='allow' to build it anyway")
    if poles:
        warnings.warn(f"{len(poles)} intermediate pole(s) on the domain, first: {poles[0].describe()}; "
                      "intermediate units are unbounded there", RuntimeWarning, stacklevel=2)
    net = DeepQuadraticNet(p, dom, used, poles)
    if zeros:
        radius = max(abs(dom[0]), abs(dom[1]))
        net.perturbation = Perturbation(tuple(changed), eps_used, eps_used * float(sum(radius ** i for i in changed)),
                                        max_errors(net, p, dom)[0])
    return net
