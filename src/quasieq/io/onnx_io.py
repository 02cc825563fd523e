"""ONNX frontend and backend: ``load_onnx(path) -> ReluNet`` and ``save_onnx(net, path, dtype)``.

Import walks the graph's nodes (ONNX orders them topologically) from the one graph input to the one
graph output, and describes every data tensor as an affine function of the latest source
(:class:`quasieq.io.chain.Value`). Supported ops, all affine on the flattened per-sample vector except
Relu:

* ``Gemm`` (transA = 0): Y = α·X·B' + β·C with B' = Bᵀ if transB else B, i.e. W = α·B'ᵀ, b = β·C.
* ``MatMul`` X·B and ``Add`` / ``Mul`` with a constant (broadcast over the features, not the batch).
* ``BatchNormalization`` (inference): per channel (axis 1) scale s = γ/sqrt(σ²+ε), shift β − s·μ.
* ``Flatten`` (axis 1), ``Reshape`` keeping the batch axis, ``Identity``, ``Dropout`` (inference).
* ``Gather`` (axis ≥ 1, constant indices), ``Concat`` (axis ≥ 1), ``ReduceSum`` (not over the batch):
  row selections and 0/1 summation matrices, which is how :func:`save_onnx` writes sparse layers.
* ``Relu``; ``Constant`` nodes and ``Identity`` of constants feed the constant operands.

Export writes opset 17: input ``input`` (N, D), output ``output`` (N, K), dynamic N. A dense layer is
one ``Gemm``, followed by ``Relu`` or, in a layer with linear units, by :func:`_activation`. A sparse layer W (CSR) is written in size linear in its non-zeros: its rows are grouped
by their non-zero count rounded up to a power of two, r; for a group of n rows, ``cols`` and ``vals``
(n, r) hold each row's column indices and values padded with (0, 0.0), and

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
from quasieq.io.chain import LayerStack, Value, concat, prefer_dense
from quasieq.net import ReluNet

OPSET = 17

#: Above this many bytes of weights the model is saved with its tensors as external data (protobuf
#: cannot serialise a message of 2 GiB or more; the margin covers the graph itself).
EXTERNAL_DATA_BYTES = 2**31 - 2**26

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Mul", "Relu", "Flatten", "Reshape", "Identity", "Dropout",
                 "BatchNormalization", "Gather", "Concat", "ReduceSum", "Constant")

_DTYPES = {"float32": (np.float32, TensorProto.FLOAT), "float64": (np.float64, TensorProto.DOUBLE)}


# ----- import -----------------------------------------------------------------------------------------
def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant(node: onnx.NodeProto, label: str) -> np.ndarray:
    attrs = _attrs(node)
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key in ("value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            return np.asarray(attrs[key])
    raise QuasieqError(f"{label}: Constant with attribute {sorted(attrs)} is not supported")


def _static_input_shape(graph: onnx.GraphProto, name: str) -> tuple[int, ...] | None:
    """Per-sample shape of the graph input (None when a feature dimension is symbolic or absent)."""
    for vi in graph.input:
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) < 2:
                raise QuasieqError(f"graph input '{name}' has rank {len(dims)}; quasieq needs (N, features...)")
            if all(d.HasField("dim_value") for d in dims[1:]):
                return tuple(int(d.dim_value) for d in dims[1:])
            return None
    return None


def _axis(axis: int, value: Value, label: str) -> int:
    """A per-sample axis from an ONNX axis of the batched tensor (the batch axis is refused)."""
    rank = len(value.need_shape(label)) + 1
    axis = axis + rank if axis < 0 else axis
    if not 1 <= axis < rank:
        raise QuasieqError(f"{label}: axis {axis} of a rank-{rank} tensor; quasieq never mixes the batch axis")
    return axis - 1


def _per_sample(k: np.ndarray, features: tuple[int, ...], label: str) -> np.ndarray:
    """A constant broadcast to the per-sample shape, flattened (it must not broadcast over the batch)."""
    shape = (1, *features)
    try:
        ok = np.broadcast_shapes(k.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise QuasieqError(f"{label}: constant of shape {k.shape} does not broadcast to the features {shape[1:]}")
    return np.broadcast_to(k.astype(np.float64), shape).reshape(-1)


def _reduce_matrix(shape: tuple[int, ...], axes: list[int], keepdims: bool) -> tuple[sp.csr_matrix, tuple]:
    """The 0/1 matrix R with (R t)[j] = Σ of t over ``axes`` (per-sample axes), and the result's shape."""
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    labels = np.broadcast_to(np.arange(int(np.prod(kept))).reshape(kept), shape).reshape(-1)
    size = labels.size
    R = sp.csr_matrix((np.ones(size), (labels, np.arange(size))), shape=(int(np.prod(kept)), size))
    return R, (kept if keepdims else tuple(s for i, s in enumerate(shape) if i not in axes))


def _reshape_target(target: list[int], x: Value, allowzero: bool, label: str) -> tuple[int, ...]:
    """Per-sample shape of Reshape(x, target) when it keeps the batch axis: target[0] is 0 (copy N), or
    -1 with the remaining dimensions fixed; a 0 elsewhere copies that axis, one -1 takes the rest."""
    shape = x.need_shape(label)
    keeps_batch = len(target) >= 2 and not allowzero and (
        target[0] == 0 and target[1:].count(-1) <= 1 or target[0] == -1 and -1 not in target[1:])
    if not keeps_batch:
        raise QuasieqError(f"{label}: Reshape to {target} may move the batch axis; only (N, ...) -> (N, ...) is supported")
    rest = [shape[i] if t == 0 and i < len(shape) else t for i, t in enumerate(target[1:])]
    if -1 in rest:
        known = int(np.prod([r for r in rest if r != -1]))
        rest[rest.index(-1)] = x.size // known if known else 0
    if int(np.prod(rest)) != x.size:
        raise QuasieqError(f"{label}: Reshape to {target} does not keep the {x.size} features of each sample")
    return tuple(rest)


def _apply(op: str, node: onnx.NodeProto, data: list[Value], consts: list[np.ndarray | None],
           stack: LayerStack, label: str) -> Value:
    """The Value of a node's output, given its data inputs and constant operands (in input order)."""
    attrs = _attrs(node)
    x = data[0]
    if op == "Relu":
        return stack.relu(x, label)
    if op in ("Identity", "Dropout"):
        if op == "Dropout" and len(node.input) > 2 and node.input[2]:
            raise QuasieqError(f"{label}: Dropout with a training_mode input is not an inference graph")
        return x
    if op == "Flatten":
        if attrs.get("axis", 1) != 1:
            raise QuasieqError(f"{label}: Flatten axis {attrs.get('axis')}; only axis=1 keeps the batch axis")
        return x.reshape(None if x.shape is None else (x.size,), label)
    if op == "Reshape":
        return x.reshape(_reshape_target([int(t) for t in consts[1]], x, bool(attrs.get("allowzero", 0)), label), label)
    if op in ("Gemm", "MatMul"):
        if x.shape is not None and len(x.shape) != 1:
            raise QuasieqError(f"{label}: {op} on a rank-{len(x.shape) + 1} tensor; flatten to (N, features) first")
        if consts[0] is not None:
            raise QuasieqError(f"{label}: {op} with the data as its second operand is not supported")
        B = np.asarray(consts[1], dtype=np.float64)
        if B.ndim != 2:
            raise QuasieqError(f"{label}: {op} weight of shape {B.shape}; a 2-D matrix is needed")
        if op == "MatMul":
            return x.affine(B.T, None, label)
        if attrs.get("transA", 0):
            raise QuasieqError(f"{label}: Gemm with transA=1 transposes the batch; only transA=0 is supported")
        W = float(attrs.get("alpha", 1.0)) * (B if attrs.get("transB", 0) else B.T)
        bias = None
        if len(consts) > 2 and consts[2] is not None:
            bias = _per_sample(float(attrs.get("beta", 1.0)) * np.asarray(consts[2]), (W.shape[0],), label)
        return x.affine(W, bias, label)
    if op in ("Add", "Mul"):
        k = _per_sample(consts[1] if consts[0] is None else consts[0], x.need_shape(label), label)
        return x.shift(k, label) if op == "Add" else x.scale(k, label)
    if op == "BatchNormalization":
        if attrs.get("training_mode", 0) or len(node.output) > 1 and any(node.output[1:]):
            raise QuasieqError(f"{label}: BatchNormalization in training mode; export the model in eval mode")
        gamma, beta, mean, var = (np.asarray(c, dtype=np.float64) for c in consts[1:5])
        s = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        shape = x.need_shape(label)
        if s.size != shape[0]:
            raise QuasieqError(f"{label}: normalises {s.size} channels but its input has {shape[0]}")
        per = x.size // shape[0]
        return x.scale(np.repeat(s, per), label).shift(np.repeat(beta - s * mean, per), label)
    if op == "Gather":
        axis = _axis(int(attrs.get("axis", 0)), x, label)
        shape = x.need_shape(label)
        idx = np.asarray(consts[1], dtype=np.int64)
        if idx.size and (idx.min() < -shape[axis] or idx.max() >= shape[axis]):
            raise QuasieqError(f"{label}: Gather index out of range for {shape[axis]} entries")
        order = np.take(np.arange(x.size).reshape(shape), idx, axis=axis)
        return x.rows(order.reshape(-1), order.shape)
    if op == "ReduceSum":
        shape = x.need_shape(label)
        axes = [int(a) for a in consts[1]] if len(consts) > 1 and consts[1] is not None else attrs.get("axes", [])
        if not axes and not attrs.get("noop_with_empty_axes", 0):
            raise QuasieqError(f"{label}: ReduceSum over all axes would sum over the batch")
        R, out_shape = _reduce_matrix(shape, [_axis(a, x, label) for a in axes], bool(attrs.get("keepdims", 1)))
        return x.affine(R, None, label, out_shape)
    if op == "Concat":
        if any(c is not None for c in consts):
            raise QuasieqError(f"{label}: Concat of data with a constant is not supported")
        return concat(data, _axis(int(attrs["axis"]), x, label), label)
    raise AssertionError(op)  # load_onnx dispatches only SUPPORTED_OPS here


def _needed(graph: onnx.GraphProto, output: str) -> set[int]:
    """Indices of the nodes the output depends on (dead branches are ignored, not imported)."""
    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    needed, todo = set(), [output]
    while todo:
        i = producer.get(todo.pop())
        if i is not None and i not in needed:
            needed.add(i)
            todo.extend(t for t in graph.node[i].input if t)
    return needed


def load_onnx(path: Path) -> ReluNet:
    """Import an ONNX model as a :class:`ReluNet` (see the module docstring for the supported ops)."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf decode errors, missing external data ...
        raise QuasieqError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [vi.name for vi in graph.input if vi.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise QuasieqError(f"{path}: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                           "quasieq imports one input and one output")
    stack = LayerStack(_static_input_shape(graph, inputs[0]))
    values: dict[str, Value] = {inputs[0]: stack.input}
    needed = _needed(graph, graph.output[0].name)
    for position, node in enumerate(graph.node):
        if position not in needed:
            continue
        label = f"node {position} ({node.op_type} '{node.name}')"
        if node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx"):
            raise QuasieqError(f"{label}: unsupported ONNX op; quasieq imports {', '.join(SUPPORTED_OPS)}")
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant(node, label)
            continue
        data = [values[t] for t in node.input if t in values]
        if not data:
            if node.op_type != "Identity":
                raise QuasieqError(f"{label}: computes on constants only; quasieq folds only Identity of constants")
            consts[node.output[0]] = consts[node.input[0]]
            continue
        if len(data) > 1 and node.op_type != "Concat":
            raise QuasieqError(f"{label}: combines two data tensors; quasieq imports chains without skip connections")
        operands = [None if t in values else consts.get(t) for t in node.input]
        values[node.output[0]] = _apply(node.op_type, node, data, operands, stack, label)
    out = graph.output[0].name
    if out not in values:
        raise QuasieqError(f"{path}: the output '{out}' does not depend on the input")
    return stack.finish(values[out], f"output '{out}'")


# ----- export -----------------------------------------------------------------------------------------
class _GraphBuilder:
    """Accumulates nodes and initializers with fresh names."""

    def __init__(self, np_dtype: type) -> None:
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
