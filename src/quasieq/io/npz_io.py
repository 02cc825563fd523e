"""quasieq's own ``.npz`` format: ``W0, b0, W1, b1, …`` with ``W{i}`` of shape (out, in), float64.

A sparse layer is stored as its CSR arrays ``W{i}_data, W{i}_indices, W{i}_indptr, W{i}_shape``
instead of ``W{i}``. A net with linear (pass-through) units also holds ``relu0, relu1, …``: one
boolean vector per hidden layer, True for a ReLU unit and False for a linear unit (without them every
hidden unit is a ReLU unit). Files are read with ``allow_pickle=False``: an object array is refused, never
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
_KEY = re.compile(r"^(W|b|relu)(\d+)(?:_(data|indices|indptr|shape))?$")


def mask_arrays(net: ReluNet) -> dict[str, np.ndarray]:
    """The ``relu{i}`` arrays of ``net`` (none when every hidden unit is a ReLU unit)."""
    if not net.has_linear_units:
        return {}
    return {f"relu{i}": np.asarray(m) for i, m in enumerate(net.relu_masks)}


def masks_from_arrays(arrays: dict[str, np.ndarray], hidden_layers: int, label: str) -> list[np.ndarray] | None:
    """The ReLU masks stored as ``relu{i}`` in ``arrays`` (``None`` when there are none); every hidden
    layer needs one, each a boolean vector (the shapes are checked against the layers by ``ReluNet``)."""
    present = sorted(k for k in arrays if k.startswith("relu"))
    if not present:
        return None
    expected = [f"relu{i}" for i in range(hidden_layers)]
    if sorted(present) != sorted(expected):
        raise QuasieqError(f"{label}: ReLU masks {present} do not match the {hidden_layers} hidden layers "
                           f"(need exactly {', '.join(expected) or 'none'})")
    masks = []
    for key in expected:
        m = arrays[key]
        if m.dtype != np.bool_ or m.ndim != 1:
            raise QuasieqError(f"{label}: {key} must be a 1-D boolean array, got dtype {m.dtype} shape {m.shape}")
        masks.append(m)
    return masks


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
    arrays.update(mask_arrays(net))
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
    layers = 1 + max((int(_KEY.match(k).group(2)) for k in arrays if not k.startswith("relu")), default=-1)
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
    return ReluNet(weights, biases, relu_masks=masks_from_arrays(arrays, layers - 1, str(path)))
