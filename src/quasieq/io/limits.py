"""Size limits checked on what a file *declares* before anything is read or allocated.

A hostile or broken model file can declare far more data than it holds (a zip bomb: a few MB that
inflate to GB; an ONNX input of 3·10^8 features that a ``Gather`` turns into a 3 GB index table).
Every reader counts the values a file declares — zip member headers and ``.npy`` array headers in an
``.npz``, tensor dims and the graph input's feature dims in an ``.onnx`` — and refuses the file when

    8 bytes × (values declared)  >  max_weight_bytes

before reading them: each declared value becomes one float64 (or int64 index) in memory, so the
product is what loading would cost. The lowering compiler holds every matrix it builds (a convolution
matrix, a composed affine map, a selection) to the same limit (:func:`check_built_values`). The
default, :data:`DEFAULT_MAX_WEIGHT_BYTES` = 1 GiB (2^27 values), is far above any net whose regions
can be enumerated and far below a machine's memory; the CLI option ``--max-weight-bytes N`` (every
command that reads a model or data file) raises it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx

from quasieq.errors import QuasieqError

#: Default limit on the float64 size of a model's declared weights (and of a data file's arrays).
DEFAULT_MAX_WEIGHT_BYTES = 2**30

#: Bytes one declared value costs once loaded (float64 weights, int64 indices).
BYTES_PER_VALUE = 8

#: The CLI option that raises the limit (named in every refusal).
FLAG = "--max-weight-bytes"


def _size(nbytes: int) -> str:
    """``3,221,225,472 bytes (3 GiB)``: exact, and readable at a glance."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes:,d} bytes ({nbytes / scale:.3g} {unit})"
    return f"{nbytes:,d} bytes"


def check_declared_bytes(nbytes: int, what: str, limit: int) -> None:
    """Raise QuasieqError when ``nbytes`` (declared, not yet read) exceed ``limit``."""
    if nbytes > limit:
        raise QuasieqError(
            f"{what} declares {_size(nbytes)}, above the limit of {_size(limit)}; "
            f"if the file is trusted, raise the limit with {FLAG} N"
        )


def check_built_values(values: int, what: str, limit: int, error: type[QuasieqError] = QuasieqError) -> None:
    """Raise ``error`` when a matrix about to be built with ``values`` stored entries (one float64
    each) would exceed ``limit`` bytes (the lowering compiler's matrices, held to the same limit)."""
    nbytes = BYTES_PER_VALUE * values
    if nbytes > limit:
        raise error(f"{what} would hold {values:,d} values, {_size(nbytes)} as float64, above the limit of "
                    f"{_size(limit)}; raise the limit with {FLAG} N")


def declared_values(dims: Iterable[int], what: str) -> int:
    """The number of values of a tensor of shape ``dims`` (exact integer product; negative dims refused)."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        raise QuasieqError(f"{what}: declares a negative dimension in shape {tuple(dims)}")
    return math.prod(dims)


def check_declared_values(dims: Iterable[int], what: str, limit: int) -> int:
    """:func:`check_declared_bytes` for a tensor of shape ``dims``; returns its value count."""
    values = declared_values(dims, what)
    check_declared_bytes(BYTES_PER_VALUE * values, what, limit)
    return values


def check_npy_header(path: Path, limit: int) -> None:
    """Refuse a ``.npy`` file whose header declares more than ``limit`` bytes as float64, from the
    header alone (a few hundred bytes) and before ``np.load`` allocates the array."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = read(f)
    except (OSError, ValueError) as exc:
        raise QuasieqError(f"{path}: not a readable .npy array ({exc})") from None
    check_declared_values(shape, f"{path} (.npy header)", limit)


def check_limit(limit: int) -> int:
    """A limit given by the user: a positive whole number of bytes."""
    if int(limit) < 1:
        raise QuasieqError(f"{FLAG} {limit}: the limit must be a positive number of bytes")
    return int(limit)


def check_file_size(path: Path, limit: int) -> None:
    """A file read whole into memory (an ONNX protobuf) must itself be within the limit."""
    check_declared_bytes(path.stat().st_size, f"{path} (file size)", limit)


def _external_bytes(tensor: onnx.TensorProto, base_dir: Path) -> int:
    """Bytes an external-data tensor will read: its ``length`` entry, else the rest of its file."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    if "length" in info:
        return int(info["length"])
    target = base_dir / info.get("location", "")
    return max(0, target.stat().st_size - int(info.get("offset", 0))) if target.is_file() else 0


def check_onnx_sizes(model: onnx.ModelProto, path: Path, limit: int) -> None:
    """Refuse an ONNX model (loaded with ``load_external_data=False``) that declares too much.

    Counted before any tensor is converted: every initializer's and Constant tensor's dims, the bytes
    each external-data tensor would read, and the graph inputs' fixed per-sample dims (an input of F
    features makes every index table and first-layer matrix built on it at least F values long).
    """
    graph = model.graph
    values = 0
    external = 0
    for tensor in graph.initializer:
        values += declared_values(tensor.dims, f"{path}: initializer '{tensor.name}'")
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            external += _external_bytes(tensor, path.parent)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                values += declared_values(attribute.t.dims, f"{path}: Constant '{node.name}'")
    check_declared_bytes(BYTES_PER_VALUE * values, f"{path} (tensor dims)", limit)
    check_declared_bytes(external, f"{path} (external data)", limit)
    for vi in graph.input:
        dims = vi.type.tensor_type.shape.dim
        fixed = [d.dim_value for d in dims[1:] if d.HasField("dim_value")]
        check_declared_values(fixed, f"{path}: graph input '{vi.name}' (per-sample dims {fixed})", limit)
