"""The graph form the compiler lowers: named tensors, nodes in topological order, constants.

An ONNX model (a file, or PyTorch's in-memory export) is read once into a :class:`Graph`: the one
data input with its shape (the batch dimension first, symbolic or fixed), the one output, the nodes the
output depends on (dead branches are dropped), and the initializers as float64/int64 numpy arrays.
This is the single place where initializer sizes are checked before a tensor is decoded, against the
same ``max_weight_bytes`` limit as the file loaders (io/limits.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from quasieq.errors import QuasieqError
from quasieq.io.limits import check_declared_values


@dataclass(frozen=True)
class Node:
    """One operation: ``op`` applied to the tensors named ``inputs`` ("" for an omitted optional one)."""

    index: int
    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    proto: onnx.NodeProto | None = None

    @property
    def label(self) -> str:
        return f"node {self.index} ({self.op} '{self.name}')"


@dataclass
class Graph:
    """A static-shape graph: ``input_shape`` is (batch, *features) with batch ``None`` when symbolic."""

    label: str
    input: str
    input_shape: tuple[int | None, ...]
    input_dtype: int
    output: str
    nodes: list[Node]
    constants: dict[str, np.ndarray]
    opset: int

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input_shape[1:])  # type: ignore[arg-type]

    @property
    def batch(self) -> int | None:
        """The fixed batch size of the input, or None when it is symbolic."""
        return self.input_shape[0]


def initializer_array(tensor: onnx.TensorProto, label: str, max_weight_bytes: int) -> np.ndarray:
    """Decode one initializer after checking its declared size against ``max_weight_bytes``."""
    check_declared_values(tensor.dims, f"{label}: tensor '{tensor.name}'", max_weight_bytes)
    try:
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # truncated raw data, missing external file ...
        raise QuasieqError(f"{label}: initializer '{tensor.name}' cannot be decoded ({type(exc).__name__})") from None


def attribute_values(node: onnx.NodeProto, label: str, max_weight_bytes: int) -> dict[str, Any]:
    """Attributes as Python values (tensors decoded through :func:`initializer_array`)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = initializer_array(a.t, label, max_weight_bytes)
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[a.name] = None  # control flow: refused by the compiler, never executed
        else:
            value = helper.get_attribute_value(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _needed(nodes: list[onnx.NodeProto], output: str) -> set[int]:
    """Indices of the nodes the output depends on."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    needed: set[int] = set()
    todo = [output]
    while todo:
        i = producer.get(todo.pop())
        if i is not None and i not in needed:
            needed.add(i)
            todo.extend(t for t in nodes[i].input if t)
    return needed


def _input_shape(vi: onnx.ValueInfoProto, label: str) -> tuple[int | None, ...]:
    dims = vi.type.tensor_type.shape.dim
    if len(dims) < 2:
        raise QuasieqError(f"{label}: graph input '{vi.name}' has rank {len(dims)}; quasieq needs (N, features...)")
    shape: list[int | None] = [int(dims[0].dim_value) if dims[0].HasField("dim_value") else None]
    for k, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value"):
            raise QuasieqError(f"{label}: graph input '{vi.name}' has a symbolic dimension {k} "
                               f"('{d.dim_param}'); only the batch dimension (0) may be symbolic")
        shape.append(int(d.dim_value))
    return tuple(shape)


def graph_from_onnx(model: onnx.ModelProto, label: str, max_weight_bytes: int) -> Graph:
    """Read ``model`` into a :class:`Graph` (one data input, one output, static feature shape), each
    tensor's declared size checked against ``max_weight_bytes`` before it is decoded."""
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    constants = {t.name: initializer_array(t, label, max_weight_bytes) for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in constants]
    if len(inputs) != 1 or len(g.output) != 1:
        raise QuasieqError(f"{label}: the graph has {len(inputs)} data inputs and {len(g.output)} outputs; "
                           "quasieq lowers one input and one output")
    nodes_proto = list(g.node)
    needed = _needed(nodes_proto, g.output[0].name)
    nodes = []
    for i, n in enumerate(nodes_proto):
        if i in needed:
            name = n.name or (n.output[0] if n.output else f"#{i}")
            node_label = f"node {i} ({n.op_type} '{name}')"
            if n.domain not in ("", "ai.onnx"):
                raise QuasieqError(f"{node_label}: op of domain '{n.domain}' is not a standard ONNX op")
            attrs = attribute_values(n, node_label, max_weight_bytes)
            nodes.append(Node(i, n.op_type, name, tuple(n.input), tuple(n.output), attrs, n))
    return Graph(label, inputs[0].name, _input_shape(inputs[0], label), inputs[0].type.tensor_type.elem_type,
                 g.output[0].name, nodes, constants, opset)
