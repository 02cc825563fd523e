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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.io.limits import BYTES_PER_VALUE, check_built_values
from quasieq.sparsity import prefer_dense


class MatrixTooLarge(QuasieqError):
    """A matrix the compiler was about to build exceeds the size limit; the compiler names the node."""


def check_entries(entries: int, what: str, max_weight_bytes: int) -> None:
    """Refuse, before allocating, a matrix of more than ``max_weight_bytes`` / 8 stored entries: the
    compiler's matrices are held to the same limit as the weights a file may declare (io/limits.py,
    ``--max-weight-bytes``), one float64 per stored entry."""
    check_built_values(entries, what, max_weight_bytes, MatrixTooLarge)


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


def compose(W: Any, A: Any, max_weight_bytes: int) -> np.ndarray | sp.csr_matrix:
    """The product W A: sparse when both factors are (stored dense if cheap), dense when one is dense
    unless the dense result would exceed the ``max_weight_bytes`` limit (then it is kept sparse, and
    refused if even its stored entries exceed the limit); two dense factors whose product exceeds the
    limit are refused before it is computed."""
    dense_entries = int(W.shape[0]) * int(A.shape[1])
    dense_fits = BYTES_PER_VALUE * dense_entries <= max_weight_bytes
    if not sp.issparse(W) and not sp.issparse(A):
        check_entries(dense_entries, "the composed affine map", max_weight_bytes)
        return np.asarray(W @ A)
    if sp.issparse(W) and sp.issparse(A) or not dense_fits:
        product = sp.csr_matrix(W) @ sp.csr_matrix(A)
        check_entries(int(product.nnz), "the composed affine map", max_weight_bytes)
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

    ``max_weight_bytes`` is the compilation's size limit (``--max-weight-bytes``): every matrix built
    from this tensor is checked against it (:func:`check_entries`); derived tensors inherit it.
    """

    source: int
    shape: tuple[int, ...]
    A: Any
    c: np.ndarray
    max_weight_bytes: int
    batch_axis: int = 0

    @staticmethod
    def identity(source: int, shape: tuple[int, ...], max_weight_bytes: int) -> Value:
        n = int(np.prod(shape, dtype=np.int64))
        return Value(source, tuple(shape), sp.identity(n, format="csr"), np.zeros(n), max_weight_bytes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def stored_entries(self, rows: np.ndarray | None = None) -> int:
        """Stored entries of A (of its ``rows`` only, repeats counted), read before anything is built."""
        if sp.issparse(self.A):
            per_row = np.diff(sp.csr_matrix(self.A).indptr)
            return int(per_row.sum() if rows is None else per_row[rows].sum())
        return (self.A.shape[0] if rows is None else int(rows.size)) * int(self.A.shape[1])

    def reshape(self, shape: Sequence[int], batch_axis: int = 0) -> Value:
        """The same flattened vector read with another per-sample shape (and batch axis position)."""
        return replace(self, shape=tuple(int(s) for s in shape), batch_axis=batch_axis)

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
        return replace(self, shape=tuple(int(s) for s in shape), A=compose(W, self.A, self.max_weight_bytes),
                       c=c, batch_axis=0)

    def scale(self, m: Any, label: str) -> Value:
        """Elementwise t' = m ⊙ t (m broadcast to the flattened tensor): the diagonal map diag(m)."""
        m = np.broadcast_to(np.asarray(m, dtype=np.float64).reshape(-1), (self.size,))
        _check_finite(label, "constant", m)
        A = sp.diags(m, format="csr") @ self.A if sp.issparse(self.A) else m[:, None] * self.A
        return replace(self, A=A, c=m * self.c)

    def shift(self, k: Any, label: str) -> Value:
        """Elementwise t' = t + k."""
        k = np.broadcast_to(np.asarray(k, dtype=np.float64).reshape(-1), (self.size,))
        _check_finite(label, "constant", k)
        return replace(self, c=self.c + k)

    def rows(self, index: np.ndarray, fill: Any = None, batch_axis: int = 0) -> Value:
        """t'[i] = t[index[i]] with shape ``index.shape`` (and the batch axis at ``batch_axis``); where
        index is −1, t'[i] = fill[i] (Pad)."""
        index = np.asarray(index, dtype=np.int64)
        flat = index.reshape(-1)
        valid = flat >= 0
        check_entries(self.stored_entries(flat[valid]), "the selected tensor", self.max_weight_bytes)
        if valid.all():
            A = self.A[flat]
            c = self.c[flat]
        else:
            A = compose(selection(flat, self.size), self.A, self.max_weight_bytes)
            c = np.where(valid, self.c[np.maximum(flat, 0)], 0.0)
            if fill is not None:
                c = c + np.where(valid, 0.0, np.broadcast_to(np.asarray(fill, dtype=np.float64).reshape(-1), c.shape))
        return replace(self, shape=tuple(int(s) for s in index.shape), A=_store(A) if sp.issparse(A) else A, c=c,
                       batch_axis=batch_axis)

    def __add__(self, other: Value) -> Value:
        if other.source != self.source or other.shape != self.shape:
            raise AssertionError("adding tensors of different sources or shapes")
        A = self.A + other.A
        return replace(self, A=_store(A) if sp.issparse(A) else np.asarray(A), c=self.c + other.c)

    def __neg__(self) -> Value:
        return replace(self, A=-self.A, c=-self.c)

    def __sub__(self, other: Value) -> Value:
        return self + (-other)


def stack(values: Sequence[Value], shape: Sequence[int] | None = None) -> Value:
    """The flattened tensors one after another (a vertical stack of their maps)."""
    if len({v.source for v in values}) != 1:
        raise AssertionError("stacking tensors of different sources")
    check_entries(sum(v.stored_entries() for v in values), "the concatenated tensor", values[0].max_weight_bytes)
    As = [v.A for v in values]
    A = sp.vstack([sp.csr_matrix(a) for a in As], format="csr") if any(sp.issparse(a) for a in As) else np.vstack(As)
    size = sum(v.size for v in values)
    return Value(values[0].source, (size,) if shape is None else tuple(shape), _store(A) if sp.issparse(A) else A,
                 np.concatenate([v.c for v in values]), values[0].max_weight_bytes)


def constant(like: Value, array: Any) -> Value:
    """A constant tensor as a Value of ``like``'s source (zero map): how a constant joins data in
    Concat or Add."""
    array = np.asarray(array, dtype=np.float64)
    return Value(like.source, tuple(array.shape), sp.csr_matrix((array.size, like.A.shape[1])),
                 array.reshape(-1).copy(), like.max_weight_bytes)
