"""Region complexes on disk: a columnar ``.npz`` (fast, exact, for large complexes) and streamed JSON.

**Columnar .npz** (:func:`save_npz`, read back by :func:`read_npz` through ``qe.load_regions``): an
uncompressed NumPy zip archive, one array per column, no pickled objects. With R regions, D inputs,
K outputs, U ReLU units, V vertex rows and F facet rows in all:

====================  ==================  ========================================================
array                 dtype, shape        content
====================  ==================  ========================================================
``meta``              str, ()             JSON: ``schema_version`` (1), ``format``
                                          ("quasieq-regions"), ``layers``, ``count`` (R),
                                          ``volume_exact``, ``volume_samples``,
                                          ``dropped_lower_dim``, ``seconds``
``W{i}``, ``b{i}``    float64             the net's affine layers i = 0 … layers − 1 (W: out × in)
``relu{i}``           bool                ReLU masks per hidden layer (only for nets with linear units)
``box_lo, box_hi``    float64 (D,)        the box
``patterns``          bool (R, U)         activation pattern per region (ReLU units, layers in order)
``interior_points``   float64 (R, D)      the vertex centroid, inside the region
``radii``             float64 (R,)        distance from the interior point to the nearest facet
``volumes``           float64 (R,)        volume (exact when ``volume_exact``, else Monte Carlo)
``A``, ``b``          float64 (R, K, D),  the affine map f(x) = A x + b on the region
                      (R, K)
``vertex_offsets``    int64 (R + 1,)      region r's vertices are rows offsets[r]:offsets[r + 1] …
``vertices_flat``     float64 (V, D)      … of this array
``facet_offsets``     int64 (R + 1,)      region r's facets are rows offsets[r]:offsets[r + 1] of
``facet_normals_flat``  float64 (F, D)    unit outward normals n,
``facet_rhs_flat``    float64 (F,)        right-hand sides c (the facet is n·x ≤ c),
``facet_sources_flat``  int64 (F,)        source: ReLU unit k ≥ 0, box face −(2i+1) (x_i ≥ lo_i) or
                                          −(2i+2) (x_i ≤ hi_i),
``neighbours_flat``   int64 (F,)          the region across the facet, −1 across box faces
====================  ==================  ========================================================

The two row-pointer columns keep their file names; on a ``RegionComplex`` they are ``vertex_indptr``
and ``facet_indptr`` (:data:`ATTRIBUTE_OF`).

Loading never unpickles (``allow_pickle=False``), reads every array's header before any data and
checks each declared shape and dtype against the others and each declared size against the bytes the
archive holds, then checks the values (offsets from 0 to the row counts, indices in range, floats
finite); a file that fails names the array and the problem in one ``QuasieqError`` line.

**JSON** (:func:`write_json`): the ``regions --json`` document (schema_version 1, keys in
docs/cli.md), written region by region to the file so that memory stays flat and a progress callback
can report; the same document as ``RegionComplex.to_json()``. It is text, readable anywhere, and
about 1.7 kB per 2-D region of a 16-16 net: use it for small complexes and for other tools; use the
.npz for large ones (it is written and read an order of magnitude faster or more, and exact).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.io.npz_io import mask_arrays, masks_from_arrays
from quasieq.net import ReluNet

#: A RegionComplex (regions/complex.py, which imports this module): read here through its attributes.
Complex = Any

SCHEMA_VERSION = 1
FORMAT = "quasieq-regions"

#: Per-region columns: name → (dtype kind, shape in the symbols R, D, K, U, V, F).
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "patterns": ("b", ("R", "U")),
    "interior_points": ("f", ("R", "D")),
    "radii": ("f", ("R",)),
    "volumes": ("f", ("R",)),
    "A": ("f", ("R", "K", "D")),
    "b": ("f", ("R", "K")),
    "vertex_offsets": ("i", ("R+1",)),
    "vertices_flat": ("f", ("V", "D")),
    "facet_offsets": ("i", ("R+1",)),
    "facet_normals_flat": ("f", ("F", "D")),
    "facet_rhs_flat": ("f", ("F",)),
    "facet_sources_flat": ("i", ("F",)),
    "neighbours_flat": ("i", ("F",)),
}

#: The RegionComplex attribute behind each file column whose name differs (the file keeps the names
#: of schema_version 1; the attributes name CSR row pointers ``indptr``).
ATTRIBUTE_OF = {"vertex_offsets": "vertex_indptr", "facet_offsets": "facet_indptr"}

ProgressFn = Callable[[int, int], None]


def save_npz(cx: Complex, path: str | Path) -> None:
    """Write ``cx`` as a columnar .npz (module docstring); the file appears whole or not at all."""
    arrays = {name: getattr(cx, ATTRIBUTE_OF.get(name, name)) for name in COLUMNS}
    for i, (W, b) in enumerate(cx.net.layers):
        arrays[f"W{i}"] = W.toarray() if hasattr(W, "toarray") else np.asarray(W)
        arrays[f"b{i}"] = np.asarray(b)
    arrays.update(mask_arrays(cx.net))
    meta = {
        "schema_version": SCHEMA_VERSION, "format": FORMAT, "layers": len(cx.net.layers), "count": len(cx),
        "volume_exact": bool(cx.volume_exact), "volume_samples": int(cx.volume_samples),
        "dropped_lower_dim": int(cx.dropped_lower_dim), "seconds": float(cx.seconds),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(tmp, meta=np.array(json.dumps(meta)), box_lo=cx.box.lo, box_hi=cx.box.hi, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in the archive, read from the .npy headers alone; refuses object
    arrays and arrays declaring more bytes than their archive member holds."""
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise QuasieqError(f"{path}: member {info.filename!r} is not a .npy array")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                name = info.filename[: -len(".npy")]
                if dtype.hasobject:
                    raise QuasieqError(f"{path}: array {name!r} holds Python objects (refused: no pickles)")
                if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > info.file_size:
                    raise QuasieqError(f"{path}: array {name!r} declares shape {shape} ({dtype}), more bytes than "
                                       f"the file holds")
                out[name] = (tuple(shape), dtype)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise QuasieqError(f"{path}: not a saved region complex ({exc})") from None
    return out


def _check_columns(path: Path, headers: dict, sizes: dict[str, int]) -> None:
    """Every region column present with its dtype kind and a shape consistent with the others."""
    for name, (kind, symbols) in COLUMNS.items():
        if name not in headers:
            raise QuasieqError(f"{path}: array {name!r} is missing")
        shape, dtype = headers[name]
        if dtype.kind != kind or (kind == "f" and dtype != np.float64) or (kind == "i" and dtype.itemsize != 8):
            want = {"b": "bool", "f": "float64", "i": "int64"}[kind]
            raise QuasieqError(f"{path}: array {name!r} has dtype {dtype}, expected {want}")
        if len(shape) != len(symbols):
            raise QuasieqError(f"{path}: array {name!r} has shape {shape}, expected {len(symbols)} dimensions")
        for axis, (size, symbol) in enumerate(zip(shape, symbols, strict=True)):
            extra = 1 if symbol.endswith("+1") else 0  # an offsets array: one more entry than regions
            expected = sizes.setdefault(symbol[0], size - extra) + extra  # the first array fixes a size
            if size != expected:
                raise QuasieqError(f"{path}: array {name!r} has {size} entries along axis {axis}, "
                                   f"expected {expected} ({symbol})")


def _check_offsets(path: Path, name: str, offsets: np.ndarray, rows: int, least: int) -> None:
    steps = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != rows or (steps.size and steps.min() < least):
        raise QuasieqError(f"{path}: array {name!r} must rise from 0 to {rows} by at least {least} per region")


def _check_values(path: Path, arrays: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    """Offsets, indices and floats: every region a full-dimensional polytope (≥ D + 1 vertices and
    facets), sources naming a ReLU unit or a box face, neighbours naming a region, floats finite."""
    D, R = sizes["D"], sizes["R"]
    _check_offsets(path, "vertex_offsets", arrays["vertex_offsets"], sizes["V"], D + 1)
    _check_offsets(path, "facet_offsets", arrays["facet_offsets"], sizes["F"], D + 1)
    sources = arrays["facet_sources_flat"]
    if sources.size and (sources.min() < -2 * D or sources.max() >= sizes["U"]):
        raise QuasieqError(f"{path}: array 'facet_sources_flat' holds codes outside [{-2 * D}, {sizes['U']})")
    neighbours = arrays["neighbours_flat"]
    if neighbours.size and (neighbours.min() < -1 or neighbours.max() >= R):
        raise QuasieqError(f"{path}: array 'neighbours_flat' holds region indices outside [-1, {R})")
    for name, (kind, _) in COLUMNS.items():
        if kind == "f" and not np.isfinite(arrays[name]).all():
            raise QuasieqError(f"{path}: array {name!r} holds non-finite values")


class Stored(NamedTuple):
    """What :func:`read_npz` reads: the net, the box, the region columns (by RegionComplex attribute)
    and the complex's flags."""

    net: ReluNet
    box: Box
    columns: dict[str, np.ndarray]
    volume_exact: bool
    volume_samples: int
    dropped_lower_dim: int
    seconds: float


def read_npz(path: str | Path) -> Stored:
    """Read a complex written by :func:`save_npz`, checking it first (module docstring)."""
    path = Path(path)
    headers = _headers(path)
    if "meta" not in headers or headers["meta"][1].kind != "U" or headers["meta"][0] != ():
        raise QuasieqError(f"{path}: no 'meta' string: not a saved region complex")
    with np.load(path, allow_pickle=False) as data:
        try:
            meta = json.loads(str(data["meta"]))
            layers = int(meta["layers"])
            flags = (bool(meta["volume_exact"]), int(meta["volume_samples"]), int(meta["dropped_lower_dim"]),
                     float(meta["seconds"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuasieqError(f"{path}: unreadable 'meta' ({exc})") from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise QuasieqError(f"{path}: schema_version {meta.get('schema_version')!r}, this quasieq reads "
                               f"{SCHEMA_VERSION}")
        names = [f"W{i}" for i in range(layers)] + [f"b{i}" for i in range(layers)] + ["box_lo", "box_hi"]
        missing = [n for n in names if n not in headers]
        if missing or layers < 1:
            raise QuasieqError(f"{path}: the net's arrays {missing or ['W0']} are missing")
        masks = masks_from_arrays({k: data[k] for k in headers if k.startswith("relu")}, layers - 1, str(path))
        net = ReluNet([data[f"W{i}"] for i in range(layers)], [data[f"b{i}"] for i in range(layers)],
                      relu_masks=masks)
        box = Box(data["box_lo"], data["box_hi"])
        box.check_net(net)
        sizes = {"D": net.in_dim, "K": net.out_dim, "U": net.relu_units}
        _check_columns(path, headers, sizes)
        arrays = {name: data[name] for name in COLUMNS}
    _check_values(path, arrays, sizes)
    return Stored(net, box, {ATTRIBUTE_OF.get(name, name): array for name, array in arrays.items()}, *flags)


def write_json(cx: Complex, out: IO[str], progress: ProgressFn | None = None, every: int = 10_000,
               extra: dict | None = None) -> None:
    """Write ``cx.to_json()``'s document, with the keys of ``extra`` added, to ``out`` region by region
    (the same document as ``json.dumps`` of it), calling ``progress(written, total)`` every ``every``
    regions and at the end."""
    head = {**cx.summary_json(), **(extra or {})}
    out.write(json.dumps(head)[:-1] + (", " if head else "") + '"regions": [')
    total = len(cx)
    for i in range(total):
        out.write((", " if i else "") + json.dumps(cx.region_json(i)))
        if progress is not None and (i + 1) % every == 0:
            progress(i + 1, total)
    out.write("]}")
    if progress is not None:
        progress(total, total)
