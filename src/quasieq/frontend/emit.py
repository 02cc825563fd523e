"""IR emission: piecewise-linear stages become layers with ReLU and pass-through units.

A rule for a piecewise-linear op (Relu, LeakyRelu, Clip, Abs, MaxPool …) describes its output as a
:class:`Stage`: ReLU units r = relu(z) on pre-activations z, pass-through units p (their pre-activation
handed on unchanged), and the output y = R r + P p + d. Emitting the stage closes one IR layer

    units = [ z ; p ; k ]        mask = [ ReLU … ; pass-through … ; pass-through … ]

whose weight rows are the affine maps of z, p and k over the current source, and makes those units
the new source. k *carries* the tensors that are still needed later (a residual branch's skip x, the
other input of a Concat): each is re-expressed as a selection of the new units, so a skip connection
travels through pass-through units of the intermediate layers. When the live tensors together hold
more entries than the source, the source itself is carried instead (fewer units, same function).

A stage whose pre-activations are positive multiples of ReLU units of the current source (ReLU after
ReLU, possibly through a Reshape, a Transpose or a positive scale) is the identity and is not emitted;
any other layer is kept as written, so a net exported by quasieq reads back with its own layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.frontend.affine import Value, compose, selection, stack
from quasieq.sparsity import tidy


@dataclass(frozen=True)
class Stage:
    """y = out_relu · relu(relu) + out_linear · linear + out_const, reshaped to ``shape``."""

    relu: Value
    linear: Value | None
    out_relu: sp.csr_matrix
    out_linear: sp.csr_matrix | None
    out_const: np.ndarray | None
    shape: tuple[int, ...]


@dataclass(frozen=True)
class StageUnits:
    """What one emitted stage cost: its own ReLU and pass-through units and the carried ones."""

    relu_units: int
    linear_units: int
    carried_units: int


@dataclass(frozen=True)
class EmittedIR:
    weights: list[Any]
    biases: list[np.ndarray]
    relu_masks: list[np.ndarray]


def _rescaled_relu_units(v: Value, relu_columns: np.ndarray | None) -> bool:
    """Every entry of v is c·r with c > 0 and r a ReLU unit of the source (so relu(v) = v)."""
    if relu_columns is None or np.any(v.c != 0):
        return False
    A = sp.csr_matrix(v.A)
    A.eliminate_zeros()
    return bool(np.all(np.diff(A.indptr) == 1) and np.all(A.data > 0) and np.all(relu_columns[A.indices]))


class IRBuilder:
    """Collects the IR layers; the current source is the input or the units of the latest stage."""

    def __init__(self, input_shape: tuple[int, ...], max_weight_bytes: int) -> None:
        self.max_weight_bytes = max_weight_bytes
        self.source = 0
        self.source_dim = int(np.prod(input_shape, dtype=np.int64))
        self._relu_columns: np.ndarray | None = None  # which source units are ReLU units (None: the input)
        self._weights: list[Any] = []
        self._biases: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []

    def input_value(self, shape: tuple[int, ...]) -> Value:
        return Value.identity(0, shape, self.max_weight_bytes)

    def emit(self, stage: Stage, live: Sequence[Value]) -> tuple[Value, list[Value], StageUnits]:
        """Close one layer for ``stage`` carrying ``live``; the stage output and the live tensors
        re-expressed in the new source (``live`` in order), and the units it cost."""
        if stage.linear is None and _rescaled_relu_units(stage.relu, self._relu_columns):
            out = stage.relu.linear(stage.out_relu, stage.shape, "stage", stage.out_const)
            return out, list(live), StageUnits(0, 0, 0)
        parts = [stage.relu] + ([stage.linear] if stage.linear is not None else [])
        distinct: list[Value] = []
        for v in live:
            if not any(v is d for d in distinct):
                distinct.append(v)
        carried = sum(v.size for v in distinct)
        carry_source = carried > self.source_dim
        if carry_source:
            parts.append(Value.identity(self.source, (self.source_dim,), self.max_weight_bytes))
        else:
            parts.extend(distinct)
        rows = stack(parts)
        m = stage.relu.size
        p = 0 if stage.linear is None else stage.linear.size
        width = rows.size
        mask = np.zeros(width, dtype=bool)
        mask[:m] = True
        self._weights.append(tidy(rows.A))
        self._biases.append(rows.c)
        self._masks.append(mask)
        self.source += 1
        self.source_dim = width
        self._relu_columns = mask
        out_map = sp.hstack([stage.out_relu] + ([stage.out_linear] if stage.out_linear is not None else [])
                            + [sp.csr_matrix((stage.out_relu.shape[0], width - m - p))], format="csr")
        const = np.zeros(out_map.shape[0]) if stage.out_const is None else np.asarray(stage.out_const, dtype=np.float64)
        out = Value(self.source, stage.shape, tidy(out_map), const, self.max_weight_bytes)
        block = np.arange(m + p, width)
        moved: list[Value] = []
        offset = 0
        for v in distinct:
            if carry_source:
                moved.append(replace(v, source=self.source,
                                     A=compose(v.A, selection(block, width), self.max_weight_bytes)))
            else:
                rows_of_v = selection(block[offset:offset + v.size], width)
                moved.append(replace(v, source=self.source, A=rows_of_v, c=np.zeros(v.size)))
                offset += v.size
        renamed = [next(n for d, n in zip(distinct, moved, strict=False) if d is v) for v in live]
        return out, renamed, StageUnits(m, p, width - m - p)

    def finish(self, out: Value) -> EmittedIR:
        """The output tensor closes the last (affine) layer."""
        return EmittedIR(self._weights + [tidy(out.A)], self._biases + [out.c], self._masks)
