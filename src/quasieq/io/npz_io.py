"""quasieq's own ``.npz`` format: ``W0, b0, W1, b1, …`` with ``W{i}`` of shape (out, in), float64.

A sparse layer is stored as its CSR arrays ``W{i}_data, W{i}_indices, W{i}_indptr, W{i}_shape``
instead of ``W{i}``. Files are read with ``allow_pickle=False``: an object array is refused, never
unpickled.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.net import ReluNet

_SPARSE_PARTS = ("data", "indices", "indptr", "shape")
_KEY = re.compile(r"^(W|b)(\d+)(?:_(data|indices|indptr|shape))?$")


def write_npz(net: ReluNet, file: BinaryIO) -> None:
    """Write ``net`` (float64; sparse layers as CSR arrays) to an open binary file."""
    arrays: dict[str, np.ndarray] = {}
    for i, (W, b) in enumerate(net.layers):
        if sp.issparse(W):
            arrays.update({f"W{i}_data": W.data, f"W{i}_indices": W.indices, f"W{i}_indptr": W.indptr,
                           f"W{i}_shape": np.array(W.shape, dtype=np.int64)})
        else:
            arrays[f"W{i}"] = np.asarray(W)
        arrays[f"b{i}"] = b
    np.savez(file, **arrays)


def read_npz(path: Path) -> ReluNet:
    """Read a ``.npz`` written by :func:`write_npz` (or by hand with keys W0, b0, W1, b1, …)."""
    if not zipfile.is_zipfile(path):  # np.load would otherwise try the file as a pickle
        raise QuasieqError(f"{path}: not a readable .npz archive (a zip of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError:  # object arrays need pickle, which we never allow
        raise QuasieqError(f"{path}: holds pickled (object) arrays, which quasieq never loads") from None
    except Exception as exc:
        raise QuasieqError(f"{path}: not a readable .npz archive ({type(exc).__name__})") from None
    bad = sorted(k for k in arrays if not _KEY.match(k))
    if bad:
        raise QuasieqError(f"{path}: unexpected keys {bad}; a quasieq .npz holds W0, b0, W1, b1, ...")
    layers = 1 + max((int(_KEY.match(k).group(2)) for k in arrays), default=-1)
    if layers == 0:
        raise QuasieqError(f"{path}: holds no arrays; a quasieq .npz holds W0, b0, W1, b1, ...")
    weights, biases = [], []
    for i in range(layers):
        if f"b{i}" not in arrays:
            raise QuasieqError(f"{path}: key b{i} is missing (layers 0..{layers - 1} need W{{i}} and b{{i}})")
        sparse_keys = [f"W{i}_{p}" for p in _SPARSE_PARTS]
        if f"W{i}" in arrays and not any(k in arrays for k in sparse_keys):
            weights.append(arrays[f"W{i}"])
        elif f"W{i}" not in arrays and all(k in arrays for k in sparse_keys):
            data, indices, indptr, shape = (arrays[k] for k in sparse_keys)
            try:
                weights.append(sp.csr_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape)))
            except (ValueError, TypeError) as exc:
                raise QuasieqError(f"{path}: layer {i}: inconsistent CSR arrays ({exc})") from None
        else:
            raise QuasieqError(f"{path}: layer {i} needs either W{i} or all of {', '.join(sparse_keys)}")
        biases.append(arrays[f"b{i}"])
    for i, arr in enumerate(weights):
        if not sp.issparse(arr) and not np.issubdtype(np.asarray(arr).dtype, np.number):
            raise QuasieqError(f"{path}: W{i} has dtype {arr.dtype}; numbers are needed")
    return ReluNet(weights, biases)
