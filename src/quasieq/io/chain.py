"""The one import path of every frontend: a chain of affine maps and ReLUs folded into a :class:`ReluNet`.

Frontends (PyTorch, ONNX) walk their model and describe each tensor on the data path as a
:class:`Value`, an affine function of the current *source* (the network input, or the output of the
latest ReLU), per sample and flattened in C order:

    t = A s + c,        A: (size(t), size(s)),   c: (size(t),)

Every supported layer other than ReLU is affine in that sense -- Linear/Gemm/MatMul (t' = W t + b),
BatchNorm in eval mode (a diagonal map), Add/Mul by a constant, Flatten/Reshape (the identity on the
flattened vector), Gather/Concat (row selections), ReduceSum (a 0/1 summation matrix) -- so consecutive
ones compose into one affine map, and a BatchNorm folds into whichever Linear it touches without a
special case. :meth:`LayerStack.relu` closes the current affine map as one IR layer ``(A, c)`` and
starts a new source; :meth:`LayerStack.finish` closes the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.net import ReluNet

#: A layer is stored dense when its dense form holds at most this many entries, whatever its sparsity
#: (dense BLAS beats sparse kernels at this size; 2^16 float64 entries = 512 KiB).
DENSE_SMALL = 1 << 16


def prefer_dense(shape: tuple[int, int], nnz: int) -> bool:
    """Store an (out, in) matrix with ``nnz`` non-zeros dense: small, or at least a quarter full."""
    entries = int(shape[0]) * int(shape[1])
    return entries <= DENSE_SMALL or entries <= 4 * int(nnz)


def tidy(W: Any) -> np.ndarray | sp.csr_matrix:
    """The storage the IR should hold for ``W``: CSR without explicit zeros, or dense (:func:`prefer_dense`)."""
    if not sp.issparse(W):
        return np.asarray(W, dtype=np.float64)
    W = sp.csr_matrix(W, dtype=np.float64)
    W.eliminate_zeros()
    return W.toarray() if prefer_dense(W.shape, W.nnz) else W


def _check_finite(label: str, what: str, values: Any) -> None:
    vals = values.data if sp.issparse(values) else np.asarray(values)
    if not np.all(np.isfinite(vals)):
        raise QuasieqError(f"{label}: {what} holds non-finite values (nan or inf)")


@dataclass(frozen=True)
class Value:
    """A tensor on the data path: t = A s + c of the source s, per sample (see the module docstring).

    ``A is None`` means the identity, ``c is None`` means zero. ``shape`` is the per-sample shape
    (without the batch axis); ``None`` while unknown (a PyTorch chain before its first Linear).
    """

    source: int
    shape: tuple[int, ...] | None
    A: Any = None
    c: np.ndarray | None = None

    @property
    def size(self) -> int | None:
        return None if self.shape is None else int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_identity(self) -> bool:
        return self.A is None and self.c is None

    def need_shape(self, label: str) -> tuple[int, ...]:
        if self.shape is None:
            raise QuasieqError(f"{label}: needs the feature shape, unknown here; give the input fixed feature "
                               "dimensions or put a Linear first")
        return self.shape

    def reshape(self, shape: tuple[int, ...] | None, label: str) -> Value:
        """Flatten / Reshape keeping the batch axis: the flattened per-sample vector is unchanged."""
        if shape is not None and self.shape is not None and int(np.prod(shape)) != self.size:
            raise QuasieqError(f"{label}: cannot reshape {self.size} features to {shape}")
        return Value(self.source, None if shape is None else tuple(int(s) for s in shape), self.A, self.c)

    def affine(self, W: Any, b: Any, label: str, shape: tuple[int, ...] | None = None) -> Value:
        """t' = W t + b with W (m, size(t)) dense or sparse and b (m,) or None: A' = W A, c' = W c + b."""
        _check_finite(label, "weight", W)
        if b is not None:
            _check_finite(label, "bias", b)
        if self.size is not None and W.shape[1] != self.size:
            raise QuasieqError(f"{label}: expects {W.shape[1]} inputs but the previous layer gives {self.size}")
        if self.A is None:
            A = W
        elif sp.issparse(self.A) and not sp.issparse(W):
            A = np.asarray((self.A.T @ W.T).T)  # dense result without densifying A
        else:
            A = W @ self.A
        c = None if self.c is None else np.asarray(W @ self.c).reshape(-1)
        if b is not None:
            b = np.asarray(b, dtype=np.float64).reshape(-1)
            c = b if c is None else c + b
        return Value(self.source, (int(W.shape[0]),) if shape is None else shape, A, c)

    def scale(self, m: np.ndarray, label: str) -> Value:
        """Elementwise t' = m ⊙ t: the diagonal map diag(m)."""
        return self.affine(sp.diags(np.asarray(m, dtype=np.float64).reshape(-1), format="csr"), None, label, self.shape)

    def shift(self, k: np.ndarray, label: str) -> Value:
        """Elementwise t' = t + k."""
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        _check_finite(label, "constant", k)
        return Value(self.source, self.shape, self.A, k if self.c is None else self.c + k)

    def rows(self, index: np.ndarray, shape: tuple[int, ...]) -> Value:
        """t'[i] = t[index[i]] (Gather, Concat's reordering): A' = A[index], c' = c[index]."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if self.A is None:
            n = index.size
            A = sp.csr_matrix((np.ones(n), (np.arange(n), index)), shape=(n, self.size))
        else:
            A = self.A[index]
        return Value(self.source, tuple(shape), A, None if self.c is None else self.c[index])

    def materialised(self) -> tuple[Any, np.ndarray]:
        """(A, c) with the identity and zero made explicit (sparse identity: it may be large)."""
        A = sp.identity(self.size, format="csr") if self.A is None else self.A
        return A, (np.zeros(A.shape[0]) if self.c is None else self.c)


def concat(values: list[Value], axis: int, label: str) -> Value:
    """Concatenate values of one source along per-sample ``axis``: stack (A, c), then reorder rows."""
    if len({v.source for v in values}) != 1:
        raise QuasieqError(f"{label}: concatenates tensors from before and after a ReLU (a skip connection)")
    shapes = [v.need_shape(label) for v in values]
    if any(len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
           for s in shapes):
        raise QuasieqError(f"{label}: shapes {shapes} do not concatenate along axis {axis + 1}")
    mats = [v.materialised() for v in values]
    As = [A for A, _ in mats]
    A = sp.vstack([sp.csr_matrix(a) for a in As], format="csr") if any(sp.issparse(a) for a in As) else np.vstack(As)
    c = np.concatenate([c for _, c in mats])
    offsets = np.cumsum([0] + [v.size for v in values])
    blocks = [np.arange(v.size).reshape(s) + off for v, s, off in zip(values, shapes, offsets)]
    order = np.concatenate(blocks, axis=axis)
    stacked = Value(values[0].source, (int(offsets[-1]),), A, c)
    return stacked.rows(order.reshape(-1), order.shape)


class LayerStack:
    """Collects the IR layers while a frontend walks its chain; :meth:`finish` returns the ReluNet."""

    def __init__(self, input_shape: tuple[int, ...] | None) -> None:
        self._weights: list[Any] = []
        self._biases: list[np.ndarray] = []
        self._last_relu = ""
        self.input = Value(0, input_shape)

    @property
    def source(self) -> int:
        return len(self._weights)

    def _close(self, v: Value, label: str) -> None:
        if v.source != self.source:
            raise QuasieqError(f"{label}: uses a tensor from before the previous ReLU (a skip connection)")
        A, c = v.materialised()
        self._weights.append(tidy(A))
        self._biases.append(c)

    def relu(self, v: Value, label: str) -> Value:
        """σ(t): ends the current affine layer (two ReLUs in a row act as one)."""
        if v.is_identity and v.source == self.source:
            if v.source == 0:
                raise QuasieqError(f"{label}: a ReLU before the first affine layer; quasieq nets start with one")
            return v  # σ∘σ = σ
        self._close(v, label)
        self._last_relu = label
        return Value(self.source, (self._weights[-1].shape[0],))

    def finish(self, v: Value, label: str) -> ReluNet:
        """The output tensor ``v`` closes the last (affine) layer."""
        if v.is_identity and v.source == self.source:
            if v.source == 0:
                raise QuasieqError(f"{label}: the model holds no affine layer (Linear / Gemm / MatMul)")
            raise QuasieqError(
                f"{self._last_relu}: the model ends with a ReLU, but a quasieq net ends with an affine layer; "
                "remove the trailing ReLU"
            )
        self._close(v, label)
        return ReluNet(self._weights, self._biases)
