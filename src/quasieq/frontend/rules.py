"""The op lowering rules registry: one function per ONNX op, ``rule(node, ctx) -> output Value``.

A rule reads its data inputs as :class:`~quasieq.frontend.affine.Value` (affine in the current source)
and its constant operands as numpy arrays through the :class:`Context`, and returns its output either
as an affine function of its inputs (the run merges) or through ``ctx.stage`` (a piecewise-linear stage,
:mod:`quasieq.frontend.emit`). The rules live in :mod:`~quasieq.frontend.ops_affine`,
:mod:`~quasieq.frontend.ops_index` and :mod:`~quasieq.frontend.ops_piecewise`; ops that are not
piecewise linear are listed in :data:`NOT_PIECEWISE_LINEAR` so their refusal says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from quasieq.errors import QuasieqError
from quasieq.frontend.affine import Value
from quasieq.frontend.emit import Stage
from quasieq.frontend.graph import Node


class Context(Protocol):
    """What a rule may ask the compiler (implemented by :class:`quasieq.frontend.compiler.Compiler`)."""

    batch: int | None

    def is_data(self, name: str) -> bool: ...

    def data(self, name: str) -> Value: ...

    def const(self, name: str, label: str) -> np.ndarray: ...

    def optional_const(self, name: str, label: str) -> np.ndarray | None: ...

    def shape_entries(self, name: str, label: str) -> list[int | str]: ...

    def stage(self, stage: Stage) -> Value: ...


Rule = Callable[[Node, "Context"], "Value | list[Value]"]

RULES: dict[str, Rule] = {}
#: The ops whose rules emit piecewise-linear stages (the others are affine and merge).
PIECEWISE_OPS: set[str] = set()
#: The ops whose rules take a tensor whose batch axis a Transpose moved (``Value.batch_axis`` > 0);
#: the compiler refuses such a tensor in any other op.
MOVED_BATCH_OPS: set[str] = set()

#: Ops that are not piecewise linear (or not functions of the input alone): refused with this reason.
NOT_PIECEWISE_LINEAR = frozenset({
    "Sigmoid", "Tanh", "Exp", "Log", "Softplus", "Softsign", "Elu", "Selu", "Celu", "Gelu", "Erf", "Mish",
    "HardSwish", "Sqrt", "Pow", "Reciprocal", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
    "Asinh", "Acosh", "Atanh", "Floor", "Ceil", "Round", "Sign", "ThresholdedRelu", "LRN",
    "LayerNormalization", "InstanceNormalization", "GroupNormalization", "LpNormalization",
    "MeanVarianceNormalization", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
    "ReduceSumSquare", "LogSoftmax", "Softmax", "Hardmax", "ArgMax", "ArgMin", "Einsum",
})
#: Ops whose output shape depends on the data (or that branch on it).
DATA_DEPENDENT = frozenset({"NonZero", "Unique", "Compress", "TopK", "If", "Loop", "Scan", "Where",
                            "NonMaxSuppression", "Resize", "Upsample", "RoiAlign", "ScatterND",
                            "ScatterElements", "GatherElements"})


def rule(*ops: str, piecewise: bool = False, moved_batch: bool = False) -> Callable[[Rule], Rule]:
    """Register the decorated function as the lowering of ``ops`` (``piecewise``: it emits stages;
    ``moved_batch``: it handles inputs whose batch axis is not axis 0)."""
    def register(fn: Rule) -> Rule:
        for op in ops:
            RULES[op] = fn
            if piecewise:
                PIECEWISE_OPS.add(op)
            if moved_batch:
                MOVED_BATCH_OPS.add(op)
        return fn
    return register


def refusal(node: Node) -> QuasieqError:
    """The one-line refusal of an op that has no rule."""
    if node.op in NOT_PIECEWISE_LINEAR:
        why = f"{node.op} is not piecewise linear, so the network has no exact linear regions"
    elif node.op in DATA_DEPENDENT:
        why = f"{node.op} has a data-dependent shape or control flow; quasieq lowers static graphs"
    else:
        why = f"unsupported op; quasieq lowers {', '.join(sorted(RULES))}"
    return QuasieqError(f"{node.label}: {why}")


def reduction_axes(node: Node, ctx: Context) -> list[int]:
    """The sorted per-sample axes a Reduce* node reduces (input 1 in newer opsets, the ``axes``
    attribute in older ones); [] when it names none."""
    rank = len(ctx.data(node.inputs[0]).shape) + 1
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(a) for a in ctx.const(node.inputs[1], node.label).reshape(-1)]
    else:
        axes = [int(a) for a in node.attrs.get("axes", [])]
    return sorted({feature_axis(a, rank, node.label) for a in axes})


def feature_axis(axis: int, rank: int, label: str, batch_axis: int = 0) -> int:
    """A per-sample axis from an ONNX axis of a rank-``rank`` batched tensor whose batch axis is
    ``batch_axis`` (the batch axis itself is refused)."""
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank or a == batch_axis:
        raise QuasieqError(f"{label}: axis {axis} of a rank-{rank} tensor is the batch axis or out of range; "
                           "quasieq never mixes samples")
    return a if a < batch_axis else a - 1
