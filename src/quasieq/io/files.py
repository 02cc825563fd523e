"""``load(path)`` and ``save(net, path)``: pick the format from the file extension, write atomically.

=========================  ============================================================
``.onnx``                  load: the compiler (:mod:`quasieq.frontend`); save: :mod:`quasieq.io.onnx_io`
``.npz``                   :mod:`quasieq.io.npz_io` (load and save; float64)
``.qtorch``                :mod:`quasieq.io.torch_state` (load and save; float64 or float32): the
                           state dict of ``qe.to_torch(net)`` without pickle
``.pt .pth .pkl .ckpt …``  refused without being opened: unpickling runs arbitrary code
=========================  ============================================================

Writes go to a fresh temporary folder beside the target and are moved into place only once complete,
so an error never leaves a partial model file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from quasieq.errors import QuasieqError
from quasieq.frontend.compiler import Lowered
from quasieq.frontend.onnx_source import lower_onnx_file
from quasieq.interrupts import scratch
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES, check_limit
from quasieq.io.npz_io import read_npz, write_npz
from quasieq.io.onnx_io import save_onnx
from quasieq.io.torch_state import read_torch_state, write_torch_state
from quasieq.net import ReluNet

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
FORMATS = (".onnx", ".npz", ".qtorch")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise QuasieqError(
            f"{path}: quasieq never unpickles files ({suffix} can run arbitrary code when loaded); export the "
            'model with torch.onnx.export(model, torch.zeros(1, D), "model.onnx") and load that, '
            "or pass the module in Python with qe.from_torch(module)"
        )
    if suffix not in FORMATS:
        raise QuasieqError(f"{path}: unknown model format '{suffix}'; quasieq reads and writes .onnx, .npz and .qtorch")
    return suffix


def load_lowered(path: str | os.PathLike, task: str = "regression",
                 max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Lowered:
    """Read a model with what its lowering found: ``.onnx`` through the compiler (census, input shape,
    notes), ``.npz`` and ``.qtorch`` as stored (no census). Files declaring more than
    ``max_weight_bytes`` of float64 values are refused before they are read (io/limits.py)."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise QuasieqError(f"{path}: no such file")
    max_weight_bytes = check_limit(max_weight_bytes)
    if suffix == ".onnx":
        return lower_onnx_file(path, task, max_weight_bytes=max_weight_bytes)
    net = (read_npz if suffix == ".npz" else read_torch_state)(path, max_weight_bytes)
    return Lowered(net, (net.in_dim,), None)


def load(path: str | os.PathLike, task: str = "regression",
         max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> ReluNet:
    """Read a ReluNet from ``.onnx`` (lowered by the compiler; ``task="classification"`` drops a
    trailing Softmax), ``.npz`` or ``.qtorch``, refusing files that declare more than
    ``max_weight_bytes`` of float64 values before reading them (io/limits.py).

    >>> import quasieq as qe
    >>> net = qe.load("model.onnx")          # doctest: +SKIP
    """
    return load_lowered(path, task, max_weight_bytes).net


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp/<name>)`` in a temporary folder beside ``path``, then move every file it made
    into place, the named file last (so a reader never sees it before its external data)."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise QuasieqError(f"{path}: folder {directory} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=".quasieq-", dir=directory))
    try:
        with scratch(tmp):
            write(tmp / path.name)
            for extra in sorted(tmp.iterdir()):
                if extra.name != path.name:
                    os.replace(extra, directory / extra.name)
            os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save(net: ReluNet, path: str | os.PathLike, dtype: str | None = None) -> None:
    """Write ``net`` to ``.onnx`` (``dtype`` "float32", the default, or "float64"), ``.npz`` (float64) or
    ``.qtorch`` (``dtype`` "float64", the default, or "float32").

    >>> import numpy as np, quasieq as qe
    >>> qe.save(qe.ReluNet([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)]), "net.onnx")  # doctest: +SKIP
    """
    if not isinstance(net, ReluNet):
        raise QuasieqError(f"save expects a ReluNet, got {type(net).__name__}")
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".npz":
        if dtype not in (None, "float64"):
            raise QuasieqError(f"{path}: .npz files hold float64; dtype={dtype!r} applies to .onnx only")

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                write_npz(net, f)
    elif suffix == ".qtorch":
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                write_torch_state(net, f, dtype or "float64")
    else:
        def write(tmp: Path) -> None:
            save_onnx(net, tmp, dtype or "float32")
    _write_atomically(path, write)
