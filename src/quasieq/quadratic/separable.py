"""Partially separable multivariate polynomials f(x) = Σ_{l=1}^L ∏_{i=1}^n φ_li(x_i) (paper_notes §3.4).

Each univariate φ_li of degree ≥ 1 becomes a wide (:func:`~quasieq.quadratic.wide.wide`) or deep
(:func:`~quasieq.quadratic.deep.deep`) quadratic net on the coordinate x_i; the φ_l1 … φ_ln of one term
are multiplied by a product tree of quadratic neurons (⌈log₂ n⌉ layers) and the terms are summed by the
linear output. A constant φ_li (degree 0) is multiplied into the first non-constant factor of its term
(or, if the whole term is constant, into the output bias); a zero φ_li drops its term.

Sizes (the branches run side by side, the final sum is the output layer and not counted, as in §3.4),
for L terms of n non-constant factors of degree d each:

* wide: width L·n·⌈d/2⌉ (the factor layers), depth 1 + ⌈log₂⌈d/2⌉⌉ + ⌈log₂ n⌉;
* deep: width 2·L·n (two chains per factor), depth ⌊d/2⌋ + 2 + ⌈log₂ n⌉.

With mixed degrees the width is Σ_l Σ_i (width of φ_li's net) and the depth the longest branch.
The representation is exact: only the polynomial surrogate φ_li ≈ (true factor) carries an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import cast

import numpy as np
import torch
from torch import nn

from quasieq.errors import QuasieqError
from quasieq.quadratic.deep import DeepQuadraticNet, deep
from quasieq.quadratic.layers import ceil_log2, product_tree
from quasieq.quadratic.wide import WideQuadraticNet, wide

#: a one-variable factor net (both kinds carry integer ``width`` and ``depth``)
FactorNet = WideQuadraticNet | DeepQuadraticNet
Builder = Callable[..., FactorNet]


def _factor(coeffs, t: int, i: int) -> np.ndarray:
    try:
        c = np.asarray(coeffs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QuasieqError(f"term {t}, variable {i}: coefficients must be numbers, got {coeffs!r}") from exc
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)):
        raise QuasieqError(f"term {t}, variable {i}: coefficients must be a non-empty finite 1-D list, got {coeffs!r}")
    return np.trim_zeros(c, "b")


def _bounds(domain, n: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        lo, hi = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for v in domain)
    except (TypeError, ValueError) as exc:
        raise QuasieqError(f"domain must be (lo, hi) with scalars or length-{n} lists, got {domain!r}") from exc
    return lo, hi


class SeparableQuadraticNet(nn.Module):
    """x ↦ bias + Σ_l tree_l(φ̂_l1(x_{i_1}), …): (N, n) → (N, 1) in float64."""

    def __init__(self, n_inputs: int, terms: list[list[tuple[int, FactorNet]]], bias: float) -> None:
        super().__init__()
        self.n_inputs, self.bias = n_inputs, bias
        self.variables = [[i for i, _ in term] for term in terms]
        self.factors = nn.ModuleList(nn.ModuleList(net for _, net in term) for term in terms)
        self.trees = nn.ModuleList(nn.Sequential(*product_tree(len(term))) for term in terms)
        self.width = sum(net.width for term in terms for _, net in term)
        self.depth = max((max(net.depth for _, net in term) + ceil_log2(len(term)) for term in terms), default=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.n_inputs:
            raise QuasieqError(f"the separable net expects input (N, {self.n_inputs}), got {tuple(x.shape)}")
        out = torch.full((x.shape[0], 1), self.bias, dtype=torch.float64)
        for variables, factors, tree in zip(self.variables, self.factors, self.trees, strict=True):
            term_factors = cast(nn.ModuleList, factors)  # the inner ModuleLists built in __init__
            columns = [net(x[:, i:i + 1]) for i, net in zip(variables, term_factors, strict=True)]
            out = out + tree(torch.cat(columns, dim=1))
        return out


def _separable(terms: Sequence[Sequence], domain, build: Builder) -> SeparableQuadraticNet:
    if not terms or any(not isinstance(term, (list, tuple)) for term in terms):
        raise QuasieqError("terms must be a non-empty list (over l) of lists (over i) of coefficient lists")
    n = len(terms[0])
    if n == 0 or any(len(term) != n for term in terms):
        raise QuasieqError(f"every term needs one coefficient list per variable; lengths are {[len(t) for t in terms]}")
    lo, hi = _bounds(domain, n)
    built, bias = [], 0.0
    for t, term in enumerate(terms):
        factors = [_factor(c, t, i) for i, c in enumerate(term)]
        if any(c.size == 0 for c in factors):
            continue
        scale = float(np.prod([c[0] for c in factors if c.size == 1]))
        varying = [(i, c) for i, c in enumerate(factors) if c.size > 1]
        if not varying:
            bias += scale
            continue
        nets = []
        for k, (i, c) in enumerate(varying):
            try:
                nets.append((i, build(c * scale if k == 0 else c, domain=(lo[i], hi[i]))))
            except QuasieqError as exc:
                raise QuasieqError(f"term {t}, variable {i}: {exc}") from exc
        built.append(nets)
    return SeparableQuadraticNet(n, built, bias)


def separable_wide(terms: Sequence[Sequence], *, domain=(-1.0, 1.0),
                   on_ill_conditioned: str = "refuse") -> SeparableQuadraticNet:
    """Σ_l ∏_i φ_li(x_i) with each φ_li a wide (factorised) quadratic net; (N, n) → (N, 1).

    ``terms[l][i]`` holds φ_li's ascending coefficients; ``domain`` is (lo, hi), each a scalar or one
    bound per variable.
    """
    return _separable(terms, domain, partial(wide, on_ill_conditioned=on_ill_conditioned))


def separable_deep(terms: Sequence[Sequence], *, domain=(-1.0, 1.0), on_pole: str = "refuse",
                   eps: float | None = None) -> SeparableQuadraticNet:
    """Σ_l ∏_i φ_li(x_i) with each φ_li a deep (continued-fraction) quadratic net; (N, n) → (N, 1)."""
    return _separable(terms, domain, partial(deep, on_pole=on_pole, eps=eps))


def separable_sizes(kind: str, n_terms: int, n_inputs: int, degree: int) -> tuple[int, int]:
    """§3.4's (width, depth) for L terms of n non-constant factors of degree d; kind "wide" or "deep"."""
    tree = ceil_log2(n_inputs)
    if kind == "wide":
        half = (degree + 1) // 2
        return n_terms * n_inputs * half, 1 + ceil_log2(half) + tree
    return 2 * n_terms * n_inputs, degree // 2 + 2 + tree
