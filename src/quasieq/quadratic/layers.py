"""The quadratic neuron (paper_notes §3.1) and the product tree built from it.

A quadratic layer with n inputs and k outputs computes

    y = σ((W_r x + b_r) ⊙ (W_g x + b_g) + W_b (x ⊙ x) + c),

W_r, W_g, W_b ∈ R^{k×n}, b_r, b_g, c ∈ R^k, σ optional (identity when ``activation`` is None). Setting
W_r = e_a, W_g = e_b and everything else 0 gives the product y_a·y_b of two inputs; a product tree of
such neurons multiplies N values in ⌈log₂ N⌉ layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quasieq.errors import QuasieqError

_NAMES = ("W_r", "b_r", "W_g", "b_g", "W_b", "c")


def ceil_log2(n: int) -> int:
    """⌈log₂ n⌉ for n ≥ 1 (the number of pairwise-product layers that reduce n values to one)."""
    return math.ceil(math.log2(n)) if n > 1 else 0


class QuadraticLayer(nn.Module):
    """σ((W_r x + b_r) ⊙ (W_g x + b_g) + W_b (x ⊙ x) + c) in float64, on inputs of shape (N, in_features).

    The parameters start like ``nn.Linear``'s (uniform in ±1/sqrt(in_features)) so the layer can be
    trained; :meth:`from_weights` sets them exactly.
    """

    # registered by name in __init__ (one loop over _NAMES); declared here for readers and type checkers
    W_r: nn.Parameter
    b_r: nn.Parameter
    W_g: nn.Parameter
    b_g: nn.Parameter
    W_b: nn.Parameter
    c: nn.Parameter

    def __init__(self, in_features: int, out_features: int,
                 activation: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise QuasieqError(f"QuadraticLayer needs in_features, out_features ≥ 1, got {in_features}, {out_features}")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        bound = 1.0 / math.sqrt(in_features)
        for name in _NAMES:
            shape = (out_features, in_features) if name.startswith("W") else (out_features,)
            value = torch.empty(shape, dtype=torch.float64).uniform_(-bound, bound)
            self.register_parameter(name, nn.Parameter(value))

    @classmethod
    def from_weights(cls, W_r, b_r, W_g, b_g, W_b, c,
                     activation: Callable[[torch.Tensor], torch.Tensor] | None = None) -> QuadraticLayer:
        """A layer with the given weights (array-likes; W_* of shape (k, n), b_*, c of shape (k,))."""
        arrays = [np.asarray(a, dtype=np.float64) for a in (W_r, b_r, W_g, b_g, W_b, c)]
        if arrays[0].ndim != 2:
            raise QuasieqError(f"QuadraticLayer: W_r must be 2-D (out, in), got shape {arrays[0].shape}")
        k, n = arrays[0].shape
        for name, a in zip(_NAMES, arrays, strict=True):
            want = (k, n) if name.startswith("W") else (k,)
            if a.shape != want:
                raise QuasieqError(f"QuadraticLayer: {name} has shape {a.shape}, expected {want}")
        layer = cls(n, k, activation)
        with torch.no_grad():
            for name, a in zip(_NAMES, arrays, strict=True):
                getattr(layer, name).copy_(torch.from_numpy(a))
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise QuasieqError(f"QuadraticLayer expects input (N, {self.in_features}), got {tuple(x.shape)}")
        z = F.linear(x, self.W_r, self.b_r) * F.linear(x, self.W_g, self.b_g) + F.linear(x * x, self.W_b) + self.c
        return z if self.activation is None else self.activation(z)


def product_layer(width: int) -> QuadraticLayer:
    """Multiply neighbours: output j = y_{2j}·y_{2j+1}; an odd last input passes through as y·1."""
    k = (width + 1) // 2
    W_r, W_g, b_g, zeros_w, zeros_b = (np.zeros((k, width)), np.zeros((k, width)), np.zeros(k),
                                       np.zeros((k, width)), np.zeros(k))
    for j in range(k):
        W_r[j, 2 * j] = 1.0
        if 2 * j + 1 < width:
            W_g[j, 2 * j + 1] = 1.0
        else:
            b_g[j] = 1.0
    return QuadraticLayer.from_weights(W_r, zeros_b, W_g, b_g, zeros_w, zeros_b)


def product_tree(width: int) -> list[QuadraticLayer]:
    """The ⌈log₂ width⌉ product layers that reduce (N, width) to the product of the columns (N, 1)."""
    layers = []
    while width > 1:
        layers.append(product_layer(width))
        width = layers[-1].out_features
    return layers
