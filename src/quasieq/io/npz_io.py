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
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.io.limits import BYTES_PER_VALUE, DEFAULT_MAX_WEIGHT_BYTES, check_declared_bytes, declared_values
from quasieq.net import ReluNet
from quasieq.weights import csr_from_parts

_SPARSE_PARTS = ("data", "indices", "indptr", "shape")
_KEY = re.compile(r"^(W|b|relu)(\d+)(?:_(data|indices|indptr|shape))?$")


def _layer_index(key: str) -> int:
    """The layer number in an array name that :data:`_KEY` accepted (``W3_data`` → 3)."""
    match = _KEY.match(key)
    if match is None:  # read_npz_arrays admitted only names that match
        raise QuasieqError(f"unexpected array name {key!r}")
    return int(match.group(2))


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
    np.savez(file, allow_pickle=False, **arrays)


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a member's ``.npy`` header (read alone: a few hundred bytes)."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise QuasieqError(f"{what}: .npy format version {version} is not supported (1.0 and 2.0 are)")
    if dtype.hasobject:
        raise QuasieqError(f"{what}: holds pickled (object) arrays, which quasieq never loads")
    return shape, dtype


def read_npz_arrays(path: Path, wanted: Callable[[str], bool], expected: str, max_bytes: int,
                    text: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` whose every name ``wanted`` accepts, sizes checked before any is read.

    Refused before reading: a file that is not a zip, a member name ``wanted`` rejects (the message
    ends with ``expected``, e.g. "a quasieq .npz holds W0, b0, W1, b1, ..."), a zip member
    header or ``.npy`` header declaring more than ``max_bytes`` in all (io/limits.py), object arrays
    (``allow_pickle=False`` always), and non-numeric arrays other than the unicode strings named in
    ``text``. The ``.npy`` header bounds what numpy allocates; the zip member
    header bounds what the decompressor may produce (zipfile stops at the declared size).
    """
    if not zipfile.is_zipfile(path):  # np.load would otherwise try the file as a pickle
        raise QuasieqError(f"{path}: not a readable .npz archive (a zip of .npy arrays)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = {info.filename: info.filename.removesuffix(".npy") for info in infos}
            bad = sorted(name for member, name in names.items() if not (member.endswith(".npy") and wanted(name)))
            if bad:
                raise QuasieqError(f"{path}: unexpected keys {bad[:10]}; {expected}")
            check_declared_bytes(sum(info.file_size for info in infos), f"{path} (zip member headers)", max_bytes)
            declared = 0
            for info in infos:
                shape, dtype = _member_header(archive, info, f"{path}: {names[info.filename]}")
                numeric = np.issubdtype(dtype, np.number) or dtype == np.bool_
                if not numeric and not (names[info.filename] in text and dtype.kind == "U"):
                    raise QuasieqError(f"{path}: {names[info.filename]} has dtype {dtype}; numbers are needed")
                declared += BYTES_PER_VALUE * declared_values(shape, f"{path}: {names[info.filename]}")
            check_declared_bytes(declared, f"{path} (.npy headers)", max_bytes)
            arrays = {}
            for info in infos:
                with archive.open(info) as f:
                    arrays[names[info.filename]] = np.lib.format.read_array(f, allow_pickle=False)
    except QuasieqError:
        raise
    except Exception as exc:  # a corrupt member: bad CRC, truncated data, a malformed header
        raise QuasieqError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    return arrays


def read_npz(path: Path, max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> ReluNet:
    """Read a ``.npz`` written by :func:`write_npz` (or by hand with keys W0, b0, W1, b1, …).

    Sizes are checked before reading (:func:`read_npz_arrays`); the CSR parts of a sparse layer are
    validated in full by the IR (net.py) before any kernel sees them.
    """
    arrays = read_npz_arrays(path, lambda name: _KEY.match(name) is not None,
                             "a quasieq .npz holds W0, b0, W1, b1, ...", max_weight_bytes)
    layers = 1 + max((_layer_index(k) for k in arrays if not k.startswith("relu")), default=-1)
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
            weights.append(_csr_layer(data, indices, indptr, shape, f"{path}: layer {i}"))
        else:
            raise QuasieqError(f"{path}: layer {i} needs either W{i} or all of {', '.join(sparse_keys)}")
        biases.append(arrays[f"b{i}"])
    try:
        return ReluNet(weights, biases, relu_masks=masks_from_arrays(arrays, layers - 1, str(path)))
    except QuasieqError as exc:
        raise QuasieqError(f"{path}: {exc}") from None


def _csr_layer(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: np.ndarray,
               where: str) -> sp.csr_matrix:
    """A CSR matrix from its stored parts, without scipy's own checks or casts: index parts must be
    integer arrays and the shape two integers; the structure is validated in full by net.py."""
    for part, array in (("indices", indices), ("indptr", indptr), ("shape", shape)):
        if not np.issubdtype(array.dtype, np.integer) or array.ndim != 1:
            raise QuasieqError(f"{where}: CSR {part} must be a 1-D integer array, got dtype {array.dtype}, "
                               f"shape {array.shape}")
    if shape.shape != (2,):
        raise QuasieqError(f"{where}: CSR shape must hold 2 integers (rows, columns), got {shape.tolist()}")
    rows, cols = (int(s) for s in shape)
    return csr_from_parts(data, indices, indptr, (rows, cols), where)
