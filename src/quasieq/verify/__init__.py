"""Certification: check a constructed net against the original instead of trusting it."""

from quasieq.verify.compare import EquivalenceReport, clopper_pearson, compare, float32_report, onnx_function
from quasieq.verify.exact import ExactComparison, exact_compare, stacked_net

__all__ = [
    "EquivalenceReport", "compare", "clopper_pearson", "float32_report", "onnx_function",
    "ExactComparison", "exact_compare", "stacked_net",
]
