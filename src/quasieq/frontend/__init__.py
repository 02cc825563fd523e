"""The frontend: one lowering compiler from ONNX graphs and PyTorch modules to the IR.

    source model ─► graph form (graph) ─► constant folding (fold) ─► op rules (rules; ops_affine,
    ops_index, ops_piecewise) ─► affine runs merged (affine) ─► IR emission (emit) ─► ReluNet,
    checked against the source on random inputs (check)

``onnx_source`` and ``torch_source`` are the two entry points; both go through the same compiler.
``from_torch`` / ``lower_torch`` are imported on first use (torch is slow to load).
"""

from quasieq.frontend.census import Census, OpCensus
from quasieq.frontend.compiler import Lowered, lower_graph
from quasieq.frontend.onnx_source import lower_onnx_file, lower_onnx_model
from quasieq.lazy import lazy_attributes

_LAZY = {"from_torch": "quasieq.frontend.torch_source", "lower_torch": "quasieq.frontend.torch_source"}

__all__ = ["Census", "OpCensus", "Lowered", "lower_graph", "lower_onnx_file", "lower_onnx_model", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
