"""Quadratic networks (paper_notes §3): a polynomial as a wide net (factorisation) or a deep net (continued fraction).

    import quasieq.quadratic as qq
    w = qq.wide([1, -2, 0.5, 3])                     # ascending p0 … pn; (N, 1) → (N, 1), float64
    d = qq.deep([1, -2, 0.5, 3], domain=(-1, 1))      # refuses zero coefficients and poles (see deep.py)
    w.width, w.depth, d.width, d.depth                # ⌈n/2⌉, 1 + ⌈log₂⌈n/2⌉⌉; 2, ⌊n/2⌋ + 2
    qq.max_relative_error(d, d.coeffs, d.domain)      # dense-grid check against numpy's Horner
"""

from quasieq.quadratic.deep import DeepQuadraticNet, Perturbation, Pole, deep, deep_sizes
from quasieq.quadratic.export import save_onnx
from quasieq.quadratic.layers import QuadraticLayer, product_tree
from quasieq.quadratic.polynomial import max_relative_error
from quasieq.quadratic.separable import SeparableQuadraticNet, separable_deep, separable_sizes, separable_wide
from quasieq.quadratic.wide import Factorisation, WideQuadraticNet, factorise, wide, wide_sizes

__all__ = [
    "QuadraticLayer", "product_tree", "wide", "deep", "separable_wide", "separable_deep",
    "WideQuadraticNet", "DeepQuadraticNet", "SeparableQuadraticNet", "Factorisation", "factorise",
    "Pole", "Perturbation", "wide_sizes", "deep_sizes", "separable_sizes", "max_relative_error", "save_onnx",
]
