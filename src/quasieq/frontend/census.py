"""The census of a lowering: which source ops became how many IR layers, ReLU and pass-through units."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpCensus:
    """One source op type: its node count and what its piecewise-linear stages cost in the IR
    (affine ops make no stage: they are merged into the neighbouring layer)."""

    op: str
    nodes: int
    layers: int
    relu_units: int
    linear_units: int


@dataclass(frozen=True)
class Census:
    """``ops`` in first-seen order; ``carried_units`` are the pass-through units that carry live tensors
    (skip connections) across stages; ``folded_nodes`` were evaluated as constants at load time;
    ``layer_nodes[l]`` names the node whose stage became hidden layer l of the IR; ``dropped`` lists
    trailing ops dropped for classification; ``source`` is "onnx" or "torch"."""

    ops: tuple[OpCensus, ...]
    folded_nodes: int
    carried_units: int
    layer_nodes: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    source: str = "onnx"

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """Table rows (op, nodes, layers, ReLU units, pass-through units), carried units last."""
        rows = [(o.op, str(o.nodes), str(o.layers), f"{o.relu_units:,d}", f"{o.linear_units:,d}") for o in self.ops]
        if self.folded_nodes:
            rows.append(("(folded constants)", str(self.folded_nodes), "0", "0", "0"))
        if self.carried_units:
            rows.append(("(carried skips)", "-", "-", "0", f"{self.carried_units:,d}"))
        rows.extend((f"{op} (dropped)", "1", "0", "0", "0") for op in self.dropped)
        return rows


class CensusTally:
    """Accumulates the census while the compiler walks the graph."""

    def __init__(self) -> None:
        self._ops: dict[str, list[int]] = {}
        self.folded_nodes = 0
        self.carried_units = 0
        self.layer_nodes: list[str] = []
        self.dropped: list[str] = []

    def node(self, op: str) -> None:
        self._ops.setdefault(op, [0, 0, 0, 0])[0] += 1

    def stage(self, node_label: str, op: str, relu_units: int, linear_units: int, carried_units: int) -> None:
        counts = self._ops.setdefault(op, [0, 0, 0, 0])
        if relu_units + linear_units + carried_units:
            counts[1] += 1
            self.layer_nodes.append(node_label)
        counts[2] += relu_units
        counts[3] += linear_units
        self.carried_units += carried_units

    def result(self) -> Census:
        return Census(tuple(OpCensus(op, *c) for op, c in self._ops.items()), self.folded_nodes, self.carried_units,
                      tuple(self.layer_nodes), tuple(self.dropped))
