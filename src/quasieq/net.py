"""The IR: :class:`ReluNet`, a strictly feedforward stack of affine layers with ReLU between them.

    f(x) = T_L ∘ σ ∘ T_{L-1} ∘ … ∘ σ ∘ T_1 (x),     T_l(z) = W_l z + b_l,     σ(t) = max(0, t)

``W_l`` has shape (out, in) and is float64, either a dense numpy array or a ``scipy.sparse`` matrix
(constructions produce block-sparse layers whose dense form would not fit in memory). Sizes follow the
paper's Definition 1: ``hidden_layers = L - 1``, ``depth = hidden_layers + 1``, ``width`` is the largest
hidden width (the input width when there is no hidden layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError


@dataclass(frozen=True)
class Provenance:
    """How a constructed net was built (set by the transforms; ``None`` on imported nets).

    ``details`` holds method-specific facts (simplex count M, pieces q/k, per-term sizes ...).
    """

    method: str
    task: str = "regression"
    delta: float | None = None
    box_lo: tuple[float, ...] = ()
    box_hi: tuple[float, ...] = ()
    error_bound: float | None = None
    max_abs_weight: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def _as_weight(W: Any, layer: int) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(W):
        if not (W.format == "csr" and W.dtype == np.float64):
            W = sp.csr_matrix(W, dtype=np.float64)
        values = W.data
    else:
        W = np.array(W, dtype=np.float64)  # a private copy: the IR is immutable
        if W.ndim != 2:
            raise QuasieqError(f"layer {layer}: weight must be a 2-D (out, in) matrix, got shape {W.shape}")
        W.setflags(write=False)
        values = W
    if not np.all(np.isfinite(values)):
        raise QuasieqError(f"layer {layer}: weight holds non-finite values (nan or inf)")
    return W


class ReluNet:
    """An immutable ReLU network: affine layers ``(W, b)`` with ReLU after every layer but the last.

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
    ) -> None:
        if len(weights) == 0:
            raise QuasieqError("a ReluNet needs at least one affine layer")
        if len(weights) != len(biases):
            raise QuasieqError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
        Ws, bs = [], []
        for i, (W, b) in enumerate(zip(weights, biases)):
            W = _as_weight(W, i)
            b = np.array(b, dtype=np.float64).reshape(-1)
            if b.shape[0] != W.shape[0]:
                raise QuasieqError(f"layer {i}: bias has {b.shape[0]} entries but the weight has {W.shape[0]} rows")
            if not np.all(np.isfinite(b)):
                raise QuasieqError(f"layer {i}: bias holds non-finite values (nan or inf)")
            if i > 0 and W.shape[1] != Ws[-1].shape[0]:
                raise QuasieqError(
                    f"layer {i}: weight expects {W.shape[1]} inputs but layer {i - 1} gives {Ws[-1].shape[0]}"
                )
            b.setflags(write=False)
            Ws.append(W)
            bs.append(b)
        self._weights = tuple(Ws)
        self._biases = tuple(bs)
        self.provenance = provenance

    # ----- structure ---------------------------------------------------------------------------
    @property
    def weights(self) -> tuple:
        """The weight matrices W_0 … W_{L-1}, each (out, in), dense or scipy.sparse CSR."""
        return self._weights

    @property
    def biases(self) -> tuple[np.ndarray, ...]:
        return self._biases

    @property
    def layers(self) -> tuple[tuple[Any, np.ndarray], ...]:
        return tuple(zip(self._weights, self._biases))

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
        """Number of hidden (ReLU) neurons."""
        return sum(self.widths)

    @property
    def parameters(self) -> int:
        """Stored non-zero weights plus all biases (equals the dense count for dense layers)."""
        nnz = sum(int(W.nnz) if sp.issparse(W) else int(np.count_nonzero(W)) for W in self._weights)
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
        """Names ``L{layer}.N{index}`` (layer counted from 1) of every hidden neuron, in order."""
        return [f"L{l + 1}.N{j}" for l, w in enumerate(self.widths) for j in range(w)]

    def __repr__(self) -> str:
        arch = "-".join(str(n) for n in (self.in_dim, *self.widths, self.out_dim))
        return f"ReluNet({arch}, depth={self.depth}, parameters={self.parameters})"

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
            return (W @ Z.T).T + b
        return Z @ W.T + b

    def pre_activations(self, X: Any) -> list[np.ndarray]:
        """Pre-activations z_l = W_l a_{l-1} + b_l of every hidden layer, each (N, width_l)."""
        Z = self._check_input(X)
        out = []
        for W, b in self.layers[:-1]:
            Z = self._affine(W, b, Z)
            out.append(Z)
            Z = np.maximum(Z, 0.0)
        return out

    def forward(self, X: Any) -> np.ndarray:
        """Batched evaluation: (N, D) → (N, K) in float64 (a single point (D,) gives (1, K))."""
        Z = self._check_input(X)
        for W, b in self.layers[:-1]:
            Z = np.maximum(self._affine(W, b, Z), 0.0)
        W, b = self.layers[-1]
        return self._affine(W, b, Z)

    __call__ = forward

    def activation_pattern(self, X: Any, rounding_guard: float = 0.0) -> np.ndarray:
        """Boolean (N, neurons): neuron active at each point, layers concatenated.

        Active means z > 0; with ``rounding_guard`` = g > 0 it means z > g·(Σ_j |W_ij a_j| + |b_i|),
        so that a pre-activation that is exactly zero on a whole cell (weights cancelling) but comes
        out of float64 as ± a few ulps of the summed terms reads as inactive.
        """
        Z = self._check_input(X)
        bits = []
        for W, b in self.layers[:-1]:
            z = self._affine(W, b, Z)
            if rounding_guard > 0.0:
                magnitude = self._affine(abs(W), np.abs(b), np.abs(Z))
                bits.append(z > rounding_guard * magnitude)
            else:
                bits.append(z > 0)
            Z = np.maximum(z, 0.0)
        return np.concatenate(bits, axis=1) if bits else np.zeros((Z.shape[0], 0), dtype=bool)

    def with_provenance(self, provenance: Provenance) -> ReluNet:
        return ReluNet(self._weights, self._biases, provenance)
