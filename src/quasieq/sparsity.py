"""Dense or sparse storage of a weight matrix: the one rule every producer of IR layers follows.

A layer is stored dense when that is cheap (small, or at least a quarter full); otherwise as CSR, so a
convolution on a 3×32×32 image (3072 × C·H·W, a few non-zeros per row) never becomes a dense matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

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
