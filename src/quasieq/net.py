"""The IR: :class:`ReluNet`, a strictly feedforward stack of affine layers with ReLU between them.

    f(x) = T_L ∘ σ_{L-1} ∘ T_{L-1} ∘ … ∘ σ_1 ∘ T_1 (x),     T_l(z) = W_l z + b_l,
    σ_l(z)_j = max(0, z_j) if m_l[j] else z_j

The boolean *ReLU mask* m_l of hidden layer l marks its ReLU units; the others are *linear
(pass-through) units* that hand their pre-activation on unchanged (a leaky ReLU is relu(z) and a
pass-through z combined by the next layer; a residual block carries its skip path through linear
units). By default every hidden unit is a ReLU unit; the last layer is always linear. Linear units
never bend the function, so they never bound a linear region: activation patterns, facet sources and
neuron names cover the ReLU units only.

``W_l`` has shape (out, in) and is float64, either a dense numpy array or a ``scipy.sparse`` matrix
(constructions produce block-sparse layers whose dense form would not fit in memory). Sizes follow the
paper's Definition 1: ``hidden_layers = L - 1``, ``depth = hidden_layers + 1``, ``width`` is the largest
hidden width (the input width when there is no hidden layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.weights import as_bias, as_weight


@dataclass(frozen=True)
class Table1:
    """The paper's Table 1 width and depth for the same D and M (the sizes a construction is compared to)."""

    width: int
    depth: int


@dataclass(frozen=True)
class LatticeSizes:
    """The size facts of an exact max–min lattice form: pieces q, distinct affine functions k, the
    total size Σ|S_i| of its min terms, and Chen, Garudadri and Rao's neuron count 3qk + 3q."""

    pieces: int
    affine_functions: int
    sum_term_sizes: int
    chen_garudadri_rao_neurons: int


#: The size facts ``wide``/``deep`` print and write (JSON key → label), in that order.
SIZE_FACT_LABELS = {
    "simplices": "simplices M",
    "pieces": "pieces q",
    "affine_functions": "affine functions k",
    "sum_term_sizes": "Σ|S_i|",
    "chen_garudadri_rao_neurons": "Chen et al. neurons 3qk + 3q",
}


@dataclass(frozen=True)
class Provenance:
    """How a constructed net was built (set by the constructions; ``None`` on imported nets).

    The facts the library reads are typed fields: ``simplices`` (the M simplices, or 1-D linear pieces,
    the form was built from; None for the exact lattice forms), ``table1`` (Table 1's sizes for the
    same D and M, where the paper has them), ``lattice`` (the exact forms' sizes) and ``breakpoints``
    (a 1-D form's exact breakpoints t_1 < … < t_T, in the box's coordinate). ``details`` holds
    further method-specific facts for a reader (ε, κ, the paper's parameters ...); the library itself
    reads none of them.
    """

    method: str
    task: str = "regression"
    delta: float | None = None
    box_lo: tuple[float, ...] = ()
    box_hi: tuple[float, ...] = ()
    error_bound: float | None = None
    max_abs_weight: float = 0.0
    simplices: int | None = None
    table1: Table1 | None = None
    lattice: LatticeSizes | None = None
    breakpoints: tuple[float, ...] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def size_facts(self) -> dict[str, int]:
        """The recorded size facts by JSON key, in the order of :data:`SIZE_FACT_LABELS`."""
        facts = {} if self.simplices is None else {"simplices": self.simplices}
        if self.lattice is not None:
            facts.update(dataclasses.asdict(self.lattice))
        return facts


def provenance_of(built: ReluNet) -> Provenance:
    """The provenance of a constructed net (every construction records one)."""
    if built.provenance is None:
        raise QuasieqError("not a constructed net: it records no provenance")
    return built.provenance


def class_labels(Y: np.ndarray) -> np.ndarray:
    """The class labels of outputs ``Y`` (N, K): argmax of K ≥ 2 scores (lowest index on ties), [h > 0]
    for one logit h (the argmax of the scores (0, h) under the same tie rule)."""
    return (Y[:, 0] > 0).astype(np.int64) if Y.shape[1] == 1 else Y.argmax(axis=1)


def _as_mask(mask: Any, layer: int, width: int) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != np.bool_ or m.shape != (width,):
        raise QuasieqError(
            f"layer {layer}: ReLU mask must be a boolean vector of length {width} (the layer's width), "
            f"got dtype {m.dtype} and shape {m.shape}"
        )
    m = m.copy()
    m.setflags(write=False)
    return m


class ReluNet:
    """An immutable ReLU network: affine layers ``(W, b)`` with ReLU after every layer but the last.

    ``relu_masks`` (keyword) holds one boolean vector per hidden layer, True for a ReLU unit and False
    for a linear (pass-through) unit; ``None`` means every hidden unit is a ReLU unit.

    Example
    -------
    >>> import numpy as np, quasieq as qe
    >>> net = qe.ReluNet([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    >>> net.widths, net.depth, net.forward(np.array([[1.0, -2.0]]))
    ((2,), 2, array([[1.]]))
    """

    def __init__(
        self,
        weights: Sequence[Any],
        biases: Sequence[Any],
        provenance: Provenance | None = None,
        *,
        relu_masks: Sequence[Any] | None = None,
    ) -> None:
        if len(weights) == 0:
            raise QuasieqError("a ReluNet needs at least one affine layer")
        if len(weights) != len(biases):
            raise QuasieqError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
        Ws: list[np.ndarray | sp.csr_matrix] = []
        bs: list[np.ndarray] = []
        for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
            W, b = as_weight(W, i), as_bias(b, i)
            if b.shape[0] != W.shape[0]:
                raise QuasieqError(f"layer {i}: bias has {b.shape[0]} entries but the weight has {W.shape[0]} rows")
            if i > 0 and W.shape[1] != Ws[-1].shape[0]:
                raise QuasieqError(
                    f"layer {i}: weight expects {W.shape[1]} inputs but layer {i - 1} gives {Ws[-1].shape[0]}"
                )
            Ws.append(W)
            bs.append(b)
        self._weights = tuple(Ws)
        self._biases = tuple(bs)
        widths = [int(W.shape[0]) for W in Ws[:-1]]
        if relu_masks is None:
            masks = [np.ones(w, dtype=bool) for w in widths]
            for m in masks:
                m.setflags(write=False)
        else:
            if len(relu_masks) != len(widths):
                raise QuasieqError(f"got {len(relu_masks)} ReLU masks for {len(widths)} hidden layers")
            masks = [_as_mask(m, i, w) for i, (m, w) in enumerate(zip(relu_masks, widths, strict=True))]
        self._relu_masks = tuple(masks)
        self._all_relu = tuple(bool(m.all()) for m in masks)
        self._provenance = provenance

    # ----- structure ---------------------------------------------------------------------------
    @property
    def provenance(self) -> Provenance | None:
        """How the net was built (None for imported nets); read-only: :meth:`with_provenance` makes a
        copy with another."""
        return self._provenance

    @property
    def weights(self) -> tuple:
        """The weight matrices W_0 … W_{L-1}, each (out, in), dense or scipy.sparse CSR."""
        return self._weights

    @property
    def biases(self) -> tuple[np.ndarray, ...]:
        return self._biases

    @property
    def layers(self) -> tuple[tuple[Any, np.ndarray], ...]:
        return tuple(zip(self._weights, self._biases, strict=True))

    @property
    def in_dim(self) -> int:
        return int(self._weights[0].shape[1])

    @property
    def out_dim(self) -> int:
        return int(self._weights[-1].shape[0])

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden-layer widths (empty for an affine map)."""
        return tuple(int(W.shape[0]) for W in self._weights[:-1])

    @property
    def width(self) -> int:
        return max(self.widths) if self.widths else self.in_dim

    @property
    def hidden_layers(self) -> int:
        return len(self._weights) - 1

    @property
    def depth(self) -> int:
        """Definition 1 of the paper: hidden layers + 1."""
        return self.hidden_layers + 1

    @property
    def neurons(self) -> int:
        """Number of hidden units, ReLU and linear (:attr:`relu_units` + :attr:`linear_units`)."""
        return sum(self.widths)

    @property
    def relu_masks(self) -> tuple[np.ndarray, ...]:
        """Per hidden layer, a read-only boolean vector: True for a ReLU unit, False for a linear one."""
        return self._relu_masks

    @property
    def relu_widths(self) -> tuple[int, ...]:
        """ReLU units per hidden layer."""
        return tuple(int(np.count_nonzero(m)) for m in self._relu_masks)

    @property
    def relu_units(self) -> int:
        """Number of hidden ReLU units (the length of an activation pattern)."""
        return sum(self.relu_widths)

    @property
    def linear_units(self) -> int:
        """Number of hidden linear (pass-through) units."""
        return self.neurons - self.relu_units

    @property
    def has_linear_units(self) -> bool:
        return self.linear_units > 0

    @property
    def parameters(self) -> int:
        """Stored non-zero weights plus all biases (equals the dense count for dense layers)."""
        nnz = sum(int(np.count_nonzero(W)) if isinstance(W, np.ndarray) else int(W.nnz) for W in self._weights)
        return nnz + sum(b.size for b in self._biases)

    @property
    def is_sparse(self) -> bool:
        return any(sp.issparse(W) for W in self._weights)

    def max_abs_weight(self) -> float:
        """Largest |entry| over all weights and biases."""
        m = 0.0
        for W, b in self.layers:
            vals = W.data if sp.issparse(W) else W
            if vals.size:
                m = max(m, float(np.abs(vals).max()))
            if b.size:
                m = max(m, float(np.abs(b).max()))
        return m

    def neuron_names(self) -> list[str]:
        """Names ``L{layer}.N{index}`` (layer counted from 1, index within the layer counting all its
        units) of every hidden ReLU unit, in order; linear units have no name (they bound no region)."""
        return [f"L{layer + 1}.N{j}" for layer, m in enumerate(self._relu_masks) for j in np.flatnonzero(m)]

    @property
    def architecture(self) -> str:
        """``D-w_1-...-w_L-K``, e.g. ``2-16-16-1``."""
        return "-".join(str(n) for n in (self.in_dim, *self.widths, self.out_dim))

    def __repr__(self) -> str:
        linear = f", linear_units={self.linear_units}" if self.has_linear_units else ""
        return f"ReluNet({self.architecture}, depth={self.depth}, parameters={self.parameters}{linear})"

    # ----- evaluation --------------------------------------------------------------------------
    def _check_input(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.in_dim:
            raise QuasieqError(f"input must have shape (N, {self.in_dim}), got {X.shape}")
        return X

    #: Sparse layers with at most this many entries are multiplied densely: scipy's sparse product
    #: has a large per-call cost that dominates for the many tiny layers of deep constructions.
    _DENSE_PRODUCT_MAX_ENTRIES = 4096

    @classmethod
    def _affine(cls, W: Any, b: np.ndarray, Z: np.ndarray) -> np.ndarray:
        if sp.issparse(W):
            if W.shape[0] * W.shape[1] <= cls._DENSE_PRODUCT_MAX_ENTRIES:
                return Z @ W.toarray().T + b
            return (W @ np.ascontiguousarray(Z.T)).T + b  # scipy is ~8× slower on the strided Zᵀ
        return Z @ W.T + b

    def _activate(self, layer: int, Z: np.ndarray) -> np.ndarray:
        """σ_l: ReLU on the layer's ReLU units, identity on its linear units."""
        if self._all_relu[layer]:
            return np.maximum(Z, 0.0)
        return np.where(self._relu_masks[layer], np.maximum(Z, 0.0), Z)

    def pre_activations(self, X: Any) -> list[np.ndarray]:
        """Pre-activations z_l = W_l a_{l-1} + b_l of every hidden layer, each (N, width_l), all units
        (a linear unit's pre-activation is also its output)."""
        Z = self._check_input(X)
        out = []
        for layer, (W, b) in enumerate(self.layers[:-1]):
            Z = self._affine(W, b, Z)
            out.append(Z)
            Z = self._activate(layer, Z)
        return out

    def forward(self, X: Any) -> np.ndarray:
        """Batched evaluation: (N, D) → (N, K) in float64 (a single point (D,) gives (1, K))."""
        Z = self._check_input(X)
        for layer, (W, b) in enumerate(self.layers[:-1]):
            Z = self._activate(layer, self._affine(W, b, Z))
        W, b = self.layers[-1]
        return self._affine(W, b, Z)

    __call__ = forward

    def labels(self, X: Any) -> np.ndarray:
        """The class label of each row of ``X`` (:func:`class_labels` of :meth:`forward`)."""
        return class_labels(self.forward(X))

    def activation_pattern(self, X: Any, rounding_guard: float = 0.0) -> np.ndarray:
        """Boolean (N, relu_units): ReLU unit active at each point, layers concatenated (linear units
        carry no bit).

        Active means z > 0; with ``rounding_guard`` = g > 0 it means z > g·(Σ_j |W_ij a_j| + |b_i|),
        so that a pre-activation that is exactly zero on a whole cell (weights cancelling) but comes
        out of float64 as ± a few ulps of the summed terms reads as inactive.
        """
        Z = self._check_input(X)
        bits = []
        for layer, (W, b) in enumerate(self.layers[:-1]):
            z = self._affine(W, b, Z)
            if rounding_guard > 0.0:
                magnitude = self._affine(abs(W), np.abs(b), np.abs(Z))
                active = z > rounding_guard * magnitude
            else:
                active = z > 0
            bits.append(active if self._all_relu[layer] else active[:, self._relu_masks[layer]])
            Z = self._activate(layer, z)
        return np.concatenate(bits, axis=1) if bits else np.zeros((Z.shape[0], 0), dtype=bool)

    def with_provenance(self, provenance: Provenance) -> ReluNet:
        return ReluNet(self._weights, self._biases, provenance, relu_masks=self._relu_masks)

    def with_first_layer(self, weight: Any, bias: Any) -> ReluNet:
        """This net with layer 0 replaced by ``(weight, bias)``, checked as the constructor checks a
        layer, with as many rows as before (the later layers and the ReLU masks stay). The later layers,
        checked and read-only already, are shared instead of being checked and copied again (the
        unit-box fold of every enumeration replaces only the first layer)."""
        W, b = as_weight(weight, 0), as_bias(bias, 0)
        rows = self._weights[0].shape[0]
        if W.shape[0] != rows or b.shape[0] != rows:
            raise QuasieqError(f"layer 0: the new weight and bias must have {rows} rows, "
                               f"got {W.shape[0]} and {b.shape[0]}")
        net = object.__new__(ReluNet)
        net._weights = (W, *self._weights[1:])
        net._biases = (b, *self._biases[1:])
        net._relu_masks, net._all_relu, net._provenance = self._relu_masks, self._all_relu, self._provenance
        return net
