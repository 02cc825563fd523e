"""Checked weight matrices and bias vectors: what the IR (:class:`quasieq.net.ReluNet`) accepts.

Every layer entering the IR passes through :func:`as_weight` / :func:`as_bias`, whatever its source
(``.npz``, ``.onnx``, a torch module, Python code), so no kernel ever sees a malformed matrix:

* real numbers only: a complex weight is refused (casting would silently drop its imaginary part),
  as is any non-numeric dtype;
* a 2-D (out, in) shape with out ≥ 1 and in ≥ 1 (a layer without units has nothing to compute);
* a sparse matrix is validated *in full* before scipy converts it — compiled code (scipy's format
  conversions, numba kernels) indexes memory with these arrays unchecked, so a bad CSR crashes the
  process or writes out of bounds. For a compressed matrix (CSR; CSC and BSR likewise along their
  own axes) with ``rows`` major slices and ``cols`` minor ones:

      len(indptr) = rows + 1,   indptr[0] = 0,   indptr[rows] = nnz = len(indices) = len(data),
      indptr[r] ≤ indptr[r + 1] for every r,     0 ≤ indices[k] < cols for every k;

  COO needs equal lengths and every (row, col) inside the shape;
* finite values (no nan or inf).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError


def _real(values: np.ndarray, where: str) -> None:
    if values.dtype.kind == "c":
        raise QuasieqError(f"{where} holds complex values (dtype {values.dtype}); quasieq needs real weights")
    if values.dtype.kind not in "biuf":
        raise QuasieqError(f"{where} has dtype {values.dtype}; real numbers are needed")


def _integers(array: Any, part: str, where: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise QuasieqError(f"{where}: {part} must be a 1-D integer array, got dtype {array.dtype}, shape {array.shape}")
    return array


def check_compressed(data: Any, indices: Any, indptr: Any, major: int, minor: int, where: str,
                     value_ndim: int = 1) -> None:
    """Raise QuasieqError unless (data, indices, indptr) is a valid compressed sparse structure with
    ``major`` slices (rows of a CSR) over ``minor`` positions (its columns); see the module docstring.
    ``value_ndim`` is 1 (one value per index) or 3 (BSR: one block per index)."""
    indices, indptr = _integers(indices, "indices", where), _integers(indptr, "indptr", where)
    data = np.asarray(data)
    if data.ndim != value_ndim:
        raise QuasieqError(f"{where}: values must be a {value_ndim}-D array, got shape {data.shape}")
    if major < 0 or minor < 0:
        raise QuasieqError(f"{where}: sparse shape ({major}, {minor}) has a negative dimension")
    if indptr.size != major + 1:
        raise QuasieqError(f"{where}: indptr has {indptr.size} entries but {major} rows need {major + 1}")
    if data.shape[:1] != indices.shape:
        raise QuasieqError(f"{where}: {indices.size} column indices but {data.shape[:1]} values")
    if indptr[0] != 0 or indptr[-1] != indices.size:
        raise QuasieqError(f"{where}: indptr must run from 0 to nnz = {indices.size}, "
                           f"got {int(indptr[0])} … {int(indptr[-1])}")
    falls = np.flatnonzero(np.diff(indptr) < 0)
    if falls.size:
        r = int(falls[0])
        raise QuasieqError(f"{where}: indptr decreases at row {r} ({int(indptr[r])} → {int(indptr[r + 1])})")
    outside = np.flatnonzero((indices < 0) | (indices >= minor))
    if outside.size:
        k = int(outside[0])
        raise QuasieqError(f"{where}: column index {int(indices[k])} (entry {k}) outside [0, {minor})")


def _check_sparse(W: Any, where: str) -> None:
    """Full structural check of a scipy sparse matrix in its own format, before any conversion."""
    rows, cols = (int(s) for s in W.shape)
    fmt = W.format
    if fmt == "csr":
        check_compressed(W.data, W.indices, W.indptr, rows, cols, where)
    elif fmt == "csc":
        check_compressed(W.data, W.indices, W.indptr, cols, rows, f"{where} (CSC)")
    elif fmt == "bsr":
        br, bc = W.blocksize
        check_compressed(W.data, W.indices, W.indptr, rows // br, cols // bc, f"{where} (BSR blocks)", 3)
    elif fmt == "coo":
        r, c = (np.asarray(a) for a in W.coords) if hasattr(W, "coords") else (W.row, W.col)
        if not (r.shape == c.shape == np.asarray(W.data).shape[:1]):
            raise QuasieqError(f"{where}: COO rows, columns and values differ in length")
        if r.size and (r.min() < 0 or r.max() >= rows or c.min() < 0 or c.max() >= cols):
            raise QuasieqError(f"{where}: a COO entry lies outside the shape ({rows}, {cols})")
    # dia, lil and dok matrices are converted by Python-level code that checks its indices itself


def as_weight(W: Any, layer: int) -> np.ndarray | sp.csr_matrix:
    """Layer ``layer``'s weight as a read-only float64 array or a validated float64 CSR matrix."""
    where = f"layer {layer}: weight"
    if sp.issparse(W):
        if W.ndim != 2:
            raise QuasieqError(f"{where} must be a 2-D (out, in) matrix, got shape {W.shape}")
        _real(np.asarray(W.data), where)
        _check_sparse(W, where)
        if not (W.format == "csr" and W.dtype == np.float64):
            W = sp.csr_matrix(W, dtype=np.float64)
        values = W.data
    else:
        try:
            raw = np.asarray(W)
        except ValueError as exc:  # ragged nested lists
            raise QuasieqError(f"{where} is not a matrix ({exc})") from None
        _real(raw, where)
        W = np.array(raw, dtype=np.float64)  # a private copy: the IR is immutable
        if W.ndim != 2:
            raise QuasieqError(f"{where} must be a 2-D (out, in) matrix, got shape {W.shape}")
        W.setflags(write=False)
        values = W
    if W.shape[0] == 0 or W.shape[1] == 0:
        raise QuasieqError(f"{where} has shape {W.shape}: a layer needs at least one input and one output")
    if not np.all(np.isfinite(values)):
        raise QuasieqError(f"{where} holds non-finite values (nan or inf)")
    return W


def as_bias(b: Any, layer: int) -> np.ndarray:
    """Layer ``layer``'s bias as a read-only float64 vector (real and finite)."""
    where = f"layer {layer}: bias"
    try:
        raw = np.asarray(b)
    except ValueError as exc:
        raise QuasieqError(f"{where} is not a vector ({exc})") from None
    _real(raw, where)
    b = np.array(raw, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(b)):
        raise QuasieqError(f"{where} holds non-finite values (nan or inf)")
    b.setflags(write=False)
    return b


def csr_from_parts(data: Any, indices: Any, indptr: Any, shape: tuple[int, int], where: str) -> sp.csr_matrix:
    """A CSR matrix from stored parts (a file's arrays), validated before scipy sees them."""
    data = np.asarray(data)
    _real(data, where)
    check_compressed(data, indices, indptr, shape[0], shape[1], where)
    return sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=shape)
