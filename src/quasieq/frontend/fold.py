"""Constant folding: every node whose inputs are all constants is evaluated once, at load time.

This covers ``Constant``, ``Cast`` / ``Transpose`` / ``DequantizeLinear`` of weights, and the shape
subgraphs exporters emit (``Shape → Gather → Unsqueeze → Concat → Reshape``, ``ConstantOfShape`` …).
Nodes are evaluated by ONNX's own reference implementation at the graph's opset, so folding follows
the standard exactly.

``Shape`` of a data tensor is a constant too, except for its batch entry when the batch is symbolic.
That entry is carried *symbolically* by evaluating the subgraph twice, with the batch set to two
different probe values: an entry equal in both evaluations does not depend on the batch; an entry equal
to the probe in each is the batch size itself (a Reshape target ``[N, -1]``); anything else that varies
(``N·C``, ``N / 2``) depends on the batch in a way the per-sample IR cannot express and is refused.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

from quasieq.errors import QuasieqError
from quasieq.frontend.graph import Node
from quasieq.io.limits import check_built_values

#: The two batch sizes a symbolic batch takes in the two evaluations (primes, so that they never equal
#: a product of feature dimensions by accident).
BATCH_PROBES = (7919, 7927)

#: A folded entry that equals the batch size itself.
BATCH = "N"

RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                        "Bernoulli"})


def _ints(value: np.ndarray | None) -> list[int]:
    return [] if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


def _broadcast_values(a: list[int], b: list[int]) -> int:
    """Entries of the broadcast of shapes ``a`` and ``b`` (numpy's rule; a 1 stretches)."""
    n = max(len(a), len(b))
    a, b = [1] * (n - len(a)) + a, [1] * (n - len(b)) + b
    return math.prod(max(x, y) for x, y in zip(a, b, strict=True))


def output_values(node: Node, inputs: list[np.ndarray | None]) -> int | None:
    """Entries of the largest output of ``node`` when its size is set by the *values* of its
    constant inputs (a ConstantOfShape of shape [1e12] is 12 bytes of file and 8 TB of output);
    None for the ops whose output is no larger than what their inputs already hold in memory."""
    first = None if not inputs else inputs[0]
    shape = [] if first is None else list(np.shape(first))
    if node.op == "ConstantOfShape":
        return math.prod(max(d, 0) for d in _ints(first))
    if node.op == "Expand":
        return _broadcast_values(shape, _ints(inputs[1]))
    if node.op == "Tile":
        return math.prod(d * max(r, 0) for d, r in zip(shape, _ints(inputs[1]), strict=False))
    if node.op == "Range":
        start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in inputs[:3])
        return max(0, math.ceil((limit - start) / delta)) if delta and math.isfinite((limit - start) / delta) else 0
    if node.op == "Pad" and len(inputs) > 1 and inputs[1] is not None:
        pads = _ints(inputs[1])
        half = len(pads) // 2
        return math.prod(max(0, d + pads[i] + pads[i + half]) for i, d in enumerate(shape[:half]))
    if node.op == "OneHot":
        return math.prod(shape) * max(0, int(np.asarray(inputs[1]).reshape(-1)[0]))
    return None


def _evaluate(node: Node, opset: int, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run ``node`` alone through ONNX's reference evaluator at ``opset``."""
    from onnx.reference import ReferenceEvaluator  # 0.1 s to import: only for a graph with an op to fold

    assert node.proto is not None
    names = [f"in{k}" if t else "" for k, t in enumerate(node.inputs)]
    proto = helper.make_node(node.op, names, [f"out{k}" for k in range(len(node.outputs))], name=node.name)
    proto.attribute.extend(node.proto.attribute)
    graph = helper.make_graph(
        [proto], "fold",
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in names if n],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in proto.output],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = {n: v for n, v in zip(names, inputs, strict=False) if n}
    try:
        return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, feeds)]
    except Exception as exc:  # the op refuses its constant operands
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuasieqError(f"{node.label}: cannot evaluate it on its constant inputs ({first[:160]})") from None


class Constants:
    """The graph's known constants: batch-independent ones, and batch-dependent ones as the pair of
    their values at the two probe batch sizes (module docstring)."""

    def __init__(self, initial: dict[str, np.ndarray], opset: int, max_weight_bytes: int) -> None:
        self._fixed: dict[str, np.ndarray] = dict(initial)
        self._batched: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._opset = opset
        self._max_weight_bytes = max_weight_bytes  # a folded tensor is held to the weights' limit

    def __contains__(self, name: str) -> bool:
        return name in self._fixed or name in self._batched

    def get(self, name: str, label: str) -> np.ndarray:
        """A batch-independent constant (a batch-dependent one is refused: the IR is per sample)."""
        if name in self._batched:
            raise QuasieqError(f"{label}: operand '{name}' depends on the batch size; the lowered net is per sample")
        return self._fixed[name]

    def shape_entries(self, name: str, label: str) -> list[int | str]:
        """A 1-D integer constant (a Reshape / Expand target) with :data:`BATCH` where it is the batch size."""
        if name in self._fixed:
            return [int(v) for v in np.asarray(self._fixed[name]).reshape(-1)]
        a, b = (np.asarray(v).reshape(-1) for v in self._batched[name])
        out: list[int | str] = []
        for x, y in zip(a, b, strict=False):
            if x == y:
                out.append(int(x))
            elif (x, y) == BATCH_PROBES:
                out.append(BATCH)
            else:
                raise QuasieqError(f"{label}: shape operand '{name}' depends on the batch size other than as the "
                                   "batch dimension itself")
        return out

    def set_shape(self, node: Node, full_shape: tuple[int | None, ...]) -> None:
        """``Shape`` (opset ≥ 15: with ``start``/``end``) of a data tensor of shape (batch, *features)."""
        def entries(batch: int) -> np.ndarray:
            dims = np.array([batch if d is None else d for d in full_shape], dtype=np.int64)
            start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
            return dims[start:end]
        if full_shape[0] is None and node.attrs.get("start", 0) == 0:
            self._batched[node.outputs[0]] = (entries(BATCH_PROBES[0]), entries(BATCH_PROBES[1]))
        else:
            self._fixed[node.outputs[0]] = entries(1 if full_shape[0] is None else int(full_shape[0]))

    def fold(self, node: Node) -> bool:
        """Evaluate ``node`` if all its inputs are constants; True when it was folded."""
        if not all(t in self for t in node.inputs if t):
            return False
        if node.op in RANDOM_OPS:
            raise QuasieqError(f"{node.label}: {node.op} draws random numbers; a lowered net is a fixed function")
        batched = any(t in self._batched for t in node.inputs if t)
        runs = []
        for probe in range(2 if batched else 1):
            feeds = [None if not t else self._batched[t][probe] if t in self._batched else self._fixed[t]
                     for t in node.inputs]
            values = output_values(node, feeds)
            if values is not None:  # refused before the evaluator allocates it
                check_built_values(values, f"{node.label}: its folded output", self._max_weight_bytes)
            runs.append(_evaluate(node, self._opset, feeds))
        for k, name in enumerate(node.outputs):
            if not name:
                continue
            if batched and not np.array_equal(runs[0][k], runs[1][k]):
                self._batched[name] = (runs[0][k], runs[1][k])
            else:
                self._fixed[name] = runs[0][k]
        return True
