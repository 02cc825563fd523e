"""The lowering compiler: a :class:`~quasieq.frontend.graph.Graph` in, a :class:`~quasieq.net.ReluNet` out.

Nodes are visited in a topological order that runs every affine node as soon as its inputs exist and
a piecewise-linear one only when no affine node is ready (:func:`schedule`): a tensor that a later node
only selects from (a Gather of a few units, a Slice) is then selected *before* the next stage, so the
stage carries the selection rather than the whole tensor. A node whose inputs are all constants is folded
(:mod:`quasieq.frontend.fold`); any other node is lowered by its rule (:mod:`quasieq.frontend.rules`):
affine rules compose into the running affine map of each tensor (:mod:`quasieq.frontend.affine`),
piecewise-linear ones close a layer (:mod:`quasieq.frontend.emit`), carrying every tensor that a later
node still reads. The output tensor closes the last, affine layer.

A trailing ``Softmax`` / ``LogSoftmax`` over the class axis is dropped for ``task="classification"``
(both are strictly increasing per sample, so the label argmax is unchanged) and refused otherwise.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from quasieq.errors import QuasieqError
from quasieq.frontend import ops_affine, ops_index, ops_piecewise  # noqa: F401  (they register the rules)
from quasieq.frontend.affine import MatrixTooLarge, Value
from quasieq.frontend.census import Census, CensusTally
from quasieq.frontend.emit import IRBuilder, Stage
from quasieq.frontend.fold import Constants
from quasieq.frontend.graph import Graph, Node
from quasieq.frontend.rules import MOVED_BATCH_OPS, PIECEWISE_OPS, RULES, refusal
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES
from quasieq.net import ReluNet

TASKS = ("regression", "classification")
SOFTMAX_OPS = ("Softmax", "LogSoftmax")


@dataclass(frozen=True)
class Lowered:
    """A lowered model: the net (on the input flattened in C order), the source input's per-sample
    shape, the census of the lowering and the notes to show the user (e.g. a dropped Softmax)."""

    net: ReluNet
    input_shape: tuple[int, ...]
    census: Census | None
    notes: tuple[str, ...] = ()


def schedule(graph: Graph) -> list[Node]:
    """The nodes in topological order, affine ones first whenever one is ready (module docstring);
    nodes that read a tensor nobody produces come last (the walk then refuses them)."""
    producers = {t: node.index for node in graph.nodes for t in node.outputs if t}
    waiting = {node.index: {producers[t] for t in node.inputs if t in producers} for node in graph.nodes}
    readers: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for p in waiting[node.index]:
            readers.setdefault(p, []).append(node)
    ready: dict[bool, list[int]] = {False: [], True: []}  # heaps of node positions, by "is piecewise linear"
    by_index = {node.index: node for node in graph.nodes}
    for node in graph.nodes:
        if not waiting[node.index]:
            heapq.heappush(ready[node.op in PIECEWISE_OPS], node.index)
    order: list[Node] = []
    while ready[False] or ready[True]:
        node = by_index[heapq.heappop(ready[False] if ready[False] else ready[True])]
        order.append(node)
        for reader in readers.get(node.index, []):
            waiting[reader.index].discard(node.index)
            if not waiting[reader.index]:
                heapq.heappush(ready[reader.op in PIECEWISE_OPS], reader.index)
    done = {node.index for node in order}
    return order + [node for node in graph.nodes if node.index not in done]


class Compiler:
    """Walks one graph; implements the :class:`~quasieq.frontend.rules.Context` the rules use."""

    def __init__(self, graph: Graph, task: str, max_weight_bytes: int) -> None:
        if task not in TASKS:
            raise QuasieqError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        self.graph = graph
        self.task = task
        self.batch = graph.batch
        self.constants = Constants(graph.constants, graph.opset, max_weight_bytes)
        self.builder = IRBuilder(graph.feature_shape, max_weight_bytes)
        self.values: dict[str, Value] = {graph.input: self.builder.input_value(graph.feature_shape)}
        self.census = CensusTally()
        self.notes: list[str] = []
        self._position = -1
        self._nodes = schedule(graph)
        self._last_use: dict[str, int] = {}
        for position, node in enumerate(self._nodes):
            for t in node.inputs:
                if t:
                    self._last_use[t] = position
        self._last_use[graph.output] = len(self._nodes)

    # ----- Context ---------------------------------------------------------------------------------
    def is_data(self, name: str) -> bool:
        return name in self.values

    def data(self, name: str) -> Value:
        v = self.values[name]
        assert v.source == self.builder.source, "a rule used a tensor from before its own stage"
        return v

    def const(self, name: str, label: str) -> np.ndarray:
        if name not in self.constants:
            raise QuasieqError(f"{label}: operand '{name}' must be a constant")
        return self.constants.get(name, label)

    def optional_const(self, name: str, label: str) -> np.ndarray | None:
        return self.const(name, label) if name else None

    def shape_entries(self, name: str, label: str) -> list[int | str]:
        if name not in self.constants:
            raise QuasieqError(f"{label}: shape operand '{name}' is computed from data (a data-dependent shape)")
        return self.constants.shape_entries(name, label)

    def stage(self, stage: Stage) -> Value:
        node = self._nodes[self._position]
        live_names = [n for n, v in self.values.items() if self._last_use.get(n, -1) > self._position]
        out, moved, units = self.builder.emit(stage, [self.values[n] for n in live_names])
        self.values = {n: v for n, v in zip(live_names, moved, strict=False)}
        self.census.stage(node.label, node.op, units.relu_units, units.linear_units, units.carried_units)
        return out

    # ----- the walk --------------------------------------------------------------------------------
    def _trailing_softmax(self) -> int | None:
        """Position of a Softmax/LogSoftmax that produces the graph output, if any."""
        for position, node in enumerate(self._nodes):
            if node.op in SOFTMAX_OPS and self.graph.output in node.outputs:
                return position
        return None

    def _drop_softmax(self, node: Node) -> None:
        x = self.data(node.inputs[0])
        rank = len(x.shape) + 1
        axis = int(node.attrs.get("axis", -1 if self.graph.opset >= 13 else 1))
        axis = axis + rank if axis < 0 else axis
        if self.task != "classification":
            raise QuasieqError(f"{node.label}: {node.op} is not piecewise linear; a trailing {node.op} is dropped "
                               "only for --task classification (the labels are unchanged)")
        if rank != 2 or axis != 1:
            raise QuasieqError(f"{node.label}: {node.op} over axis {axis} of a rank-{rank} output; it can be dropped "
                               "only over the class axis of an (N, classes) output")
        self.values[node.outputs[0]] = x
        self.census.dropped.append(node.op)
        self.notes.append(f"dropped the trailing {node.op} ({node.label}): for --task classification the labels "
                          "(argmax) are unchanged")

    def _check_batch_axis(self, node: Node) -> None:
        """Refuse a tensor whose batch axis a Transpose moved in an op that assumes it is axis 0."""
        if node.op in MOVED_BATCH_OPS:
            return
        for t in node.inputs:
            if t in self.values and self.values[t].batch_axis:
                raise QuasieqError(f"{node.label}: its input '{t}' has its batch axis at axis "
                                   f"{self.values[t].batch_axis} (moved by a Transpose); quasieq lowers such a "
                                   f"tensor only in {', '.join(sorted(MOVED_BATCH_OPS))}, until a Transpose "
                                   "moves the batch axis back to axis 0")

    def run(self) -> Lowered:
        softmax = self._trailing_softmax()
        for position, node in enumerate(self._nodes):
            self._position = position
            if position == softmax:
                self._drop_softmax(node)
                continue
            missing = [t for t in node.inputs if t and t not in self.values and t not in self.constants]
            if missing:
                raise QuasieqError(f"{node.label}: reads '{missing[0]}', which no earlier node produces")
            self._check_batch_axis(node)
            if node.op == "Shape" and node.inputs[0] in self.values:
                self.constants.set_shape(node, (self.batch, *self.values[node.inputs[0]].shape))
                self.census.folded_nodes += 1
                continue
            if self.constants.fold(node):
                self.census.folded_nodes += 1
                continue
            fn = RULES.get(node.op)
            if fn is None:
                raise refusal(node)
            self.census.node(node.op)
            try:
                result = fn(node, self)
            except MatrixTooLarge as exc:
                raise QuasieqError(f"{node.label}: {exc}") from None
            outputs = result if isinstance(result, list) else [result]
            unsupported = [t for t in node.outputs[len(outputs):] if t in self._last_use]
            if unsupported:
                raise QuasieqError(f"{node.label}: its output '{unsupported[0]}' is used, but quasieq lowers only "
                                   f"the first {len(outputs)} output(s) of {node.op}")
            for name, value in zip(node.outputs, outputs, strict=False):
                if name:
                    self.values[name] = value
            for t in {t for t in node.inputs if t in self.values and self._last_use.get(t, -1) <= position}:
                del self.values[t]
        if self.graph.output not in self.values:
            raise QuasieqError(f"{self.graph.label}: the output '{self.graph.output}' does not depend on the input")
        if self.values[self.graph.output].batch_axis:
            raise QuasieqError(f"{self.graph.label}: the output '{self.graph.output}' has its batch axis at axis "
                               f"{self.values[self.graph.output].batch_axis}; quasieq lowers outputs (N, ...)")
        emitted = self.builder.finish(self.values[self.graph.output])
        masks = emitted.relu_masks if any(not m.all() for m in emitted.relu_masks) else None
        net = ReluNet(emitted.weights, emitted.biases, relu_masks=masks) if masks is not None \
            else ReluNet(emitted.weights, emitted.biases)
        return Lowered(net, self.graph.feature_shape, self.census.result(), tuple(self.notes))


def lower_graph(graph: Graph, task: str = "regression", max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Lowered:
    """Lower ``graph`` to a :class:`Lowered` (see the module docstring); every matrix the lowering
    builds is refused, naming its node, when it would exceed ``max_weight_bytes`` as float64."""
    return Compiler(graph, task, max_weight_bytes).run()
