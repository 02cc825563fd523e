"""Univariate polynomials as the quadratic constructions take them: validation, domain, reference.

A polynomial is given by its *ascending* coefficients p_0 … p_n, P(x) = Σ_{i=0}^n p_i x^i, with
p_n ≠ 0 and n ≥ 1. The domain is an interval [lo, hi]; every guarantee (exactness, pole freedom, the
perturbation bound) is stated on it. The reference value of P is numpy's Horner evaluation
(``numpy.polynomial.polynomial.polyval``), an algorithm independent of both constructions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from quasieq.errors import QuasieqError

#: Points of the dense grid on which :func:`max_relative_error` compares a network with P.
GRID_SAMPLES = 20001


def as_coefficients(coeffs: Sequence[float] | np.ndarray, *, name: str = "polynomial") -> np.ndarray:
    """Validate ascending coefficients p_0 … p_n: a finite 1-D float64 array, n ≥ 1, p_n ≠ 0."""
    try:
        p = np.asarray(coeffs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QuasieqError(f"{name}: coefficients must be numbers, got {coeffs!r}") from exc
    if p.ndim != 1:
        raise QuasieqError(f"{name}: coefficients must be a 1-D list p0 ... pn, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise QuasieqError(f"{name}: coefficients must be finite, got {p.tolist()}")
    if p.size < 2:
        raise QuasieqError(f"{name}: degree must be at least 1 (give p0 p1 ...), got {p.size} coefficient(s)")
    if p[-1] == 0.0:
        raise QuasieqError(f"{name}: the leading coefficient p{p.size - 1} is 0; drop trailing zeros")
    return p


def as_domain(domain: Sequence[float]) -> tuple[float, float]:
    """Validate an interval (lo, hi) with finite lo < hi."""
    try:
        lo, hi = (float(v) for v in domain)
    except (TypeError, ValueError) as exc:
        raise QuasieqError(f"domain must be two numbers (lo, hi), got {domain!r}") from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise QuasieqError(f"domain must satisfy finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def square_range(lo: float, hi: float) -> tuple[float, float]:
    """The interval swept by y = x² for x in [lo, hi]."""
    top = max(lo * lo, hi * hi)
    return (0.0, top) if lo <= 0.0 <= hi else (min(lo * lo, hi * hi), top)


def grid(lo: float, hi: float, samples: int = GRID_SAMPLES) -> np.ndarray:
    """Evenly spaced points of [lo, hi], endpoints included."""
    return np.linspace(lo, hi, samples)


def evaluate(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Run a univariate quadratic network (N, 1) → (N, 1) on float64 points; returns shape (N,)."""
    with torch.no_grad():
        out = module(torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1))
    return out.reshape(-1).numpy()


def max_errors(module: torch.nn.Module, coeffs: np.ndarray, domain: tuple[float, float],
               samples: int = GRID_SAMPLES) -> tuple[float, float]:
    """(max_x |net(x) − P(x)|, max_x |P(x)|) over a dense grid of the domain, numpy's Horner as reference.

    Non-finite network outputs give an ``inf`` error.
    """
    x = grid(*domain, samples)
    ref = np.polynomial.polynomial.polyval(x, coeffs)
    with np.errstate(invalid="ignore"):
        out = evaluate(module, x)
    error = float(np.max(np.abs(out - ref))) if np.all(np.isfinite(out)) else float("inf")
    return error, float(np.max(np.abs(ref)))


def max_relative_error(module: torch.nn.Module, coeffs: np.ndarray, domain: tuple[float, float],
                       samples: int = GRID_SAMPLES) -> float:
    """max_x |net(x) − P(x)| / max_x |P(x)| over a dense grid of the domain (see :func:`max_errors`)."""
    error, scale = max_errors(module, coeffs, domain, samples)
    return error / (scale if scale > 0.0 else 1.0)
