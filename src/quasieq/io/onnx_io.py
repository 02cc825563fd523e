"""ONNX backend: ``save_onnx(net, path, dtype)`` (import is the compiler in :mod:`quasieq.frontend`).

Export writes opset 17: input ``input`` (N, D), output ``output`` (N, K), dynamic N. A dense layer is
one ``Gemm``, followed by ``Relu`` or, in a layer with linear units, by :func:`_activation`. A sparse
layer W (CSR) is written in size linear in its non-zeros: its rows are grouped by their non-zero
count rounded up to a power of two, r; for a group of n rows, ``cols`` and ``vals`` (n, r) hold each
row's column indices and values padded with (0, 0.0), and

    y_group = ReduceSum(Gather(x, cols, axis=1) ⊙ vals, axis=2)          (N, n)

i.e. y[i] = Σ_k vals[i, k]·x[cols[i, k]] = (W x)[i]; the groups are concatenated and put back in row
order by one Gather. Padding at most doubles the stored entries (plus one per empty row).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import scipy.sparse as sp
from onnx import TensorProto, helper, numpy_helper

from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.sparsity import prefer_dense

OPSET = 17

#: Above this many bytes of weights the model is saved with its tensors as external data (protobuf
#: cannot serialise a message of 2 GiB or more; the margin covers the graph itself).
EXTERNAL_DATA_BYTES = 2**31 - 2**26

_DTYPES: dict[str, tuple[type[np.floating], int]] = {
    "float32": (np.float32, TensorProto.FLOAT), "float64": (np.float64, TensorProto.DOUBLE),
}


# ----- export -----------------------------------------------------------------------------------------
class _GraphBuilder:
    """Accumulates nodes and initializers with fresh names."""

    def __init__(self, np_dtype: type[np.floating]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.np_dtype = np_dtype
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, array: np.ndarray, float_type: bool = True) -> str:
        name = self.name(stem)
        arr = np.asarray(array, dtype=self.np_dtype if float_type else np.int64)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _sparse_layer(g: _GraphBuilder, x: str, W: sp.csr_matrix, b: np.ndarray, i: int) -> str:
    """y = W x + b for CSR W in nodes and initializers linear in nnz (module docstring)."""
    W = sp.csr_matrix(W, copy=True)
    W.sum_duplicates()
    counts = np.diff(W.indptr)
    row_of = np.repeat(np.arange(W.shape[0]), counts)  # row of each stored entry
    slot = np.arange(W.nnz) - W.indptr[row_of]  # its position within the row
    widths = 1 << np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    parts, order = [], []
    for r in np.unique(widths):
        rows = np.flatnonzero(widths == r)
        group_pos = np.full(W.shape[0], -1)
        group_pos[rows] = np.arange(rows.size)
        mask = widths[row_of] == r
        cols = np.zeros((rows.size, r), dtype=np.int64)
        vals = np.zeros((rows.size, r))
        cols[group_pos[row_of[mask]], slot[mask]] = W.indices[mask]
        vals[group_pos[row_of[mask]], slot[mask]] = W.data[mask]
        gathered = g.node("Gather", [x, g.const(f"W{i}_cols", cols, float_type=False)], f"l{i}_gather", axis=1)
        scaled = g.node("Mul", [gathered, g.const(f"W{i}_vals", vals)], f"l{i}_mul")
        axes = g.const(f"l{i}_axes", np.array([2]), float_type=False)
        parts.append(g.node("ReduceSum", [scaled, axes], f"l{i}_sum", keepdims=0))
        order.append(rows)
    y = parts[0] if len(parts) == 1 else g.node("Concat", parts, f"l{i}_concat", axis=1)
    stacked_rows = np.concatenate(order)
    if not np.array_equal(stacked_rows, np.arange(W.shape[0])):
        inverse = np.empty_like(stacked_rows)
        inverse[stacked_rows] = np.arange(stacked_rows.size)
        y = g.node("Gather", [y, g.const(f"l{i}_order", inverse, float_type=False)], f"l{i}_reorder", axis=1)
    return g.node("Add", [y, g.const(f"b{i}", b)], f"l{i}_bias")


def _activation(g: _GraphBuilder, x: str, relu: np.ndarray, i: int) -> str:
    """σ_i on x: ``Relu`` when every unit is a ReLU unit; else the ReLU units and the linear units are
    gathered apart, the first through ``Relu``, concatenated and put back in unit order by one
    ``Gather``: exact for every input, the linear units are copied bit for bit."""
    if relu.all():
        return g.node("Relu", [x], f"l{i}_relu")
    relu_idx, lin_idx = np.flatnonzero(relu), np.flatnonzero(~relu)
    parts = [g.node("Gather", [x, g.const(f"l{i}_linear_units", lin_idx, float_type=False)], f"l{i}_linear", axis=1)]
    if relu_idx.size:
        gathered = g.node("Gather", [x, g.const(f"l{i}_relu_units", relu_idx, float_type=False)], f"l{i}_pick", axis=1)
        parts.insert(0, g.node("Relu", [gathered], f"l{i}_relu"))
    joined = parts[0] if len(parts) == 1 else g.node("Concat", parts, f"l{i}_join", axis=1)
    order = np.argsort(np.concatenate((relu_idx, lin_idx)), kind="stable")
    return g.node("Gather", [joined, g.const(f"l{i}_unit_order", order, float_type=False)], f"l{i}_units", axis=1)


def build_model(net: ReluNet, dtype: str = "float32") -> onnx.ModelProto:
    """The ONNX model of ``net`` (opset 17) in ``dtype`` ("float32" or "float64")."""
    if dtype not in _DTYPES:
        raise QuasieqError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    np_dtype, onnx_type = _DTYPES[dtype]
    largest = net.max_abs_weight()
    if largest > float(np.finfo(np_dtype).max):  # never write a model whose weights round to ±inf
        raise QuasieqError(
            f"the net has a weight of magnitude {largest:.3g}, beyond the largest {dtype} "
            f"({np.finfo(np_dtype).max:.3g}): "
            "it cannot be written in that precision; choose a larger δ or --dtype float64"
        )
    g = _GraphBuilder(np_dtype)
    x = "input"
    for i, (W, b) in enumerate(net.layers):
        if sp.issparse(W) and not prefer_dense(W.shape, W.nnz):
            x = _sparse_layer(g, x, sp.csr_matrix(W), b, i)
        else:
            dense = W.toarray() if sp.issparse(W) else W
            x = g.node("Gemm", [x, g.const(f"W{i}", dense), g.const(f"b{i}", b)], f"l{i}_gemm", transB=1)
        if i < net.hidden_layers:
            x = _activation(g, x, net.relu_masks[i], i)
    g.nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        g.nodes, "quasieq",
        [helper.make_tensor_value_info("input", onnx_type, ["N", net.in_dim])],
        [helper.make_tensor_value_info("output", onnx_type, ["N", net.out_dim])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="quasieq")
    model.ir_version = 8  # the IR version of opset 17 (ONNX 1.12): readable by older runtimes too
    return model


def save_onnx(net: ReluNet, path: Path, dtype: str = "float32") -> None:
    """Write ``net`` to ``path`` (tensors as external data ``<name>.data`` beside it above 2 GB) and check it."""
    model = build_model(net, dtype)
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    if weight_bytes > EXTERNAL_DATA_BYTES:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{Path(path).name}.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    onnx.checker.check_model(os.fspath(path))
