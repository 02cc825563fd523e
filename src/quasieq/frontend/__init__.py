"""The frontend: one lowering compiler from ONNX graphs and PyTorch modules to the IR.

    source model ─► graph form (graph) ─► constant folding (fold) ─► op rules (rules; ops_affine,
    ops_index, ops_piecewise) ─► affine runs merged (affine) ─► IR emission (emit) ─► ReluNet,
    checked against the source on random inputs (check)

``onnx_source`` and ``torch_source`` are the two entry points; both go through the same compiler.
"""

from quasieq.frontend.census import Census, OpCensus
from quasieq.frontend.compiler import Lowered, lower_graph
from quasieq.frontend.onnx_source import lower_onnx_file, lower_onnx_model
from quasieq.frontend.torch_source import from_torch, lower_torch

__all__ = ["Census", "OpCensus", "Lowered", "lower_graph", "lower_onnx_file", "lower_onnx_model", "from_torch",
           "lower_torch"]
