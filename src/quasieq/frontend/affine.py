"""Affine-run merging: every data tensor is an affine function of the current *source*.

Between two piecewise-linear stages the compiler never emits anything: each data tensor t is held as

    t = A s + c,        A: (size(t), dim(s)) dense or scipy.sparse,   c: (size(t),)

of the current source s (the flattened network input, or the units of the latest stage), per sample,
with t flattened in C order. An affine op t' = W t + b composes into (W A, W c + b), so a whole run of
Gemm / Conv / BatchNormalization / Add-a-constant / Reshape / Transpose / Pad … ends up as one matrix:
the run is merged by construction. Index maps (Transpose, Slice, Gather, Concat, Pad, Expand) select
rows, convolutions and pools are sparse matrices, and a product stays sparse unless the dense form is
cheap (:func:`quasieq.sparsity.prefer_dense`) — a convolution on a 3×32×32 image is never densified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.sparsity import prefer_dense

#: Largest dense matrix the compiler allocates while composing affine maps (2^27 float64 entries =
#: 1 GiB); a product that would be larger is kept sparse, a sparse one larger than
#: :data:`SPARSE_ENTRY_LIMIT` is refused before it is built.
DENSE_ENTRY_LIMIT = 1 << 27
#: Largest number of stored entries of one sparse matrix the compiler builds (2^28 ≈ 2.7e8, about
#: 3 GiB as CSR); a convolution matrix above it is refused, naming the node, before allocation.
SPARSE_ENTRY_LIMIT = 1 << 28


def check_entries(entries: int, label: str, what: str, limit: int = SPARSE_ENTRY_LIMIT) -> None:
    """Refuse, before allocating, a matrix of more than ``limit`` stored entries."""
    if entries > limit:
        raise QuasieqError(f"{label}: {what} would hold {entries:.3g} entries (> {limit:.3g}); the model is too "
                           "large to lower")


def _check_finite(label: str, what: str, values: Any) -> None:
    vals = values.data if sp.issparse(values) else np.asarray(values)
    if not np.all(np.isfinite(vals)):
        raise QuasieqError(f"{label}: {what} holds non-finite values (nan or inf)")


def _store(M: Any) -> np.ndarray | sp.csr_matrix:
    """Dense when cheap (:func:`prefer_dense`), CSR otherwise."""
    if sp.issparse(M):
        M = sp.csr_matrix(M)
        return M.toarray() if prefer_dense(M.shape, M.nnz) else M
    return np.asarray(M, dtype=np.float64)


def compose(W: Any, A: Any, label: str) -> np.ndarray | sp.csr_matrix:
    """The product W A: sparse when both factors are (stored dense if cheap), dense when one is dense
    unless the dense result would exceed :data:`DENSE_ENTRY_LIMIT` entries (then it is kept sparse)."""
    if not sp.issparse(W) and not sp.issparse(A):
        return np.asarray(W @ A)
    if sp.issparse(W) and sp.issparse(A) or int(W.shape[0]) * int(A.shape[1]) > DENSE_ENTRY_LIMIT:
        product = sp.csr_matrix(W) @ sp.csr_matrix(A)
        check_entries(int(product.nnz), label, "the composed affine map")
        return _store(product)
    if sp.issparse(W):  # sparse times dense, without densifying the sparse factor
        return np.asarray(W @ A)
    return np.asarray((A.T @ np.asarray(W).T).T)


def selection(index: np.ndarray, columns: int) -> sp.csr_matrix:
    """The 0/1 matrix S with (S t)[i] = t[index[i]]; an index of −1 gives a zero row."""
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    rows = np.flatnonzero(index >= 0)
    return sp.csr_matrix((np.ones(rows.size), (rows, index[rows])), shape=(index.size, columns))


@dataclass(frozen=True)
class Value:
    """A data tensor t = A s + c of source ``source`` (module docstring); ``shape`` is per sample.

    ``batch_axis`` is where the batch axis sits in the full ONNX tensor: 0, except between a Transpose
    that moves it (an exporter's fancy indexing: Transpose → GatherND → Transpose) and the Transpose that
    moves it back. The full tensor has shape ``shape[:batch_axis] + (N,) + shape[batch_axis:]``; the
    per-sample entries are ``shape`` in C order either way.
    """

    source: int
    shape: tuple[int, ...]
    A: Any
    c: np.ndarray
    batch_axis: int = 0

    @staticmethod
    def identity(source: int, shape: tuple[int, ...]) -> Value:
        n = int(np.prod(shape, dtype=np.int64))
        return Value(source, tuple(shape), sp.identity(n, format="csr"), np.zeros(n))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def reshape(self, shape: Sequence[int], batch_axis: int = 0) -> Value:
        """The same flattened vector read with another per-sample shape (and batch axis position)."""
        return Value(self.source, tuple(int(s) for s in shape), self.A, self.c, batch_axis)

    def linear(self, W: Any, shape: Sequence[int], label: str, bias: Any = None) -> Value:
        """t' = W t + b: (W A, W c + b)."""
        _check_finite(label, "weight", W)
        if W.shape[1] != self.size:
            raise QuasieqError(f"{label}: expects {W.shape[1]} inputs per sample but gets {self.size}")
        c = np.asarray(W @ self.c, dtype=np.float64).reshape(-1)
        if bias is not None:
            bias = np.broadcast_to(np.asarray(bias, dtype=np.float64).reshape(-1), c.shape)
            _check_finite(label, "bias", bias)
            c = c + bias
        return Value(self.source, tuple(int(s) for s in shape), compose(W, self.A, label), c)

    def scale(self, m: Any, label: str) -> Value:
        """Elementwise t' = m ⊙ t (m broadcast to the flattened tensor): the diagonal map diag(m)."""
        m = np.broadcast_to(np.asarray(m, dtype=np.float64).reshape(-1), (self.size,))
        _check_finite(label, "constant", m)
        A = sp.diags(m, format="csr") @ self.A if sp.issparse(self.A) else m[:, None] * self.A
        return Value(self.source, self.shape, A, m * self.c)

    def shift(self, k: Any, label: str) -> Value:
        """Elementwise t' = t + k."""
        k = np.broadcast_to(np.asarray(k, dtype=np.float64).reshape(-1), (self.size,))
        _check_finite(label, "constant", k)
        return Value(self.source, self.shape, self.A, self.c + k)

    def rows(self, index: np.ndarray, fill: Any = None, batch_axis: int = 0) -> Value:
        """t'[i] = t[index[i]] with shape ``index.shape`` (and the batch axis at ``batch_axis``); where
        index is −1, t'[i] = fill[i] (Pad)."""
        index = np.asarray(index, dtype=np.int64)
        flat = index.reshape(-1)
        valid = flat >= 0
        if valid.all():
            A = self.A[flat]
            c = self.c[flat]
        else:
            A = compose(selection(flat, self.size), self.A, "rows")
            c = np.where(valid, self.c[np.maximum(flat, 0)], 0.0)
            if fill is not None:
                c = c + np.where(valid, 0.0, np.broadcast_to(np.asarray(fill, dtype=np.float64).reshape(-1), c.shape))
        return Value(self.source, tuple(int(s) for s in index.shape), _store(A) if sp.issparse(A) else A, c,
                     batch_axis)

    def __add__(self, other: Value) -> Value:
        if other.source != self.source or other.shape != self.shape:
            raise AssertionError("adding tensors of different sources or shapes")
        A = self.A + other.A
        return Value(self.source, self.shape, _store(A) if sp.issparse(A) else np.asarray(A), self.c + other.c)

    def __neg__(self) -> Value:
        return Value(self.source, self.shape, -self.A, -self.c)

    def __sub__(self, other: Value) -> Value:
        return self + (-other)


def stack(values: Sequence[Value], shape: Sequence[int] | None = None) -> Value:
    """The flattened tensors one after another (a vertical stack of their maps)."""
    if len({v.source for v in values}) != 1:
        raise AssertionError("stacking tensors of different sources")
    As = [v.A for v in values]
    A = sp.vstack([sp.csr_matrix(a) for a in As], format="csr") if any(sp.issparse(a) for a in As) else np.vstack(As)
    size = sum(v.size for v in values)
    return Value(values[0].source, (size,) if shape is None else tuple(shape), _store(A) if sp.issparse(A) else A,
                 np.concatenate([v.c for v in values]))


def constant(source: int, source_dim: int, array: Any) -> Value:
    """A constant tensor as a Value (zero map): how a constant joins data in Concat or Add."""
    array = np.asarray(array, dtype=np.float64)
    return Value(source, tuple(array.shape), sp.csr_matrix((array.size, source_dim)), array.reshape(-1).copy())
