"""``convert(lowered, target)``: write a lowered model in a format of its own, checked against the file written.

The source is read through the lowering compiler (``qe.io.load_lowered``: ONNX files are checked against
ONNX Runtime on load); ``convert`` writes its net with ``qe.save`` by the target's suffix: ``.onnx`` (float32 or
float64), ``.npz`` (float64) or ``.qtorch`` (quasieq's PyTorch state file, float64 or float32). The
written file is then run by the tool that reads it -- ONNX Runtime for ``.onnx``, torch
(``load_torch_state``) for ``.qtorch``, ``qe.load`` for ``.npz`` -- and compared with the lowered net on
random inputs by the load-time check (:func:`quasieq.frontend.check.check_lowering`): a difference beyond
float32 rounding (relative to the rounding scale of the net, ``tolerances.LOWERING_MATCH_RELATIVE``) is
an error, so a conversion never writes a silently different network. The same bound is used for
float64 files: it is loose for them, and meant to catch a lost unit, sign or mask, not rounding.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quasieq.errors import QuasieqError
from quasieq.frontend.check import check_lowering
from quasieq.frontend.compiler import Lowered
from quasieq.io.files import load, save


@dataclass(frozen=True)
class Conversion:
    """What ``convert`` did: the lowered model (net, input shape, census, notes), the file written, its
    precision, and the check's own notes (an inconclusive check of the written file)."""

    lowered: Lowered
    target: Path
    dtype: str
    notes: tuple[str, ...]


#: Precision each format is written in when ``dtype`` is not given.
DEFAULT_DTYPE = {".onnx": "float32", ".npz": "float64", ".qtorch": "float64"}


def _runner(path: Path, suffix: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The written file run by the tool that reads it, as a batched (N, D) → (N, K) function."""
    if suffix == ".onnx":
        import onnxruntime as ort  # heavy optional dependency: loaded on first use

        session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return (lambda X: session.run(None, {name: X})[0]), "ONNX Runtime on the written file"
    if suffix == ".qtorch":
        import torch  # heavy optional dependency: loaded on first use

        from quasieq.io.torch_state import load_torch_state  # imports torch

        module = load_torch_state(path)

        def run(X: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(X)).numpy()

        return run, "torch on the written state file"
    net = load(path)
    return net.forward, "the written .npz"


def convert(lowered: Lowered, target: str | os.PathLike, *, dtype: str | None = None,
            written: Path | None = None) -> Conversion:
    """Write ``lowered.net`` to ``target`` (``written``: the path actually written, e.g. a staged
    temporary file with the same suffix) in ``dtype`` (default: the format's own, :data:`DEFAULT_DTYPE`),
    then check the written file (module docstring)."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in DEFAULT_DTYPE:
        raise QuasieqError(f"{target}: convert writes .onnx, .npz or .qtorch")
    dtype = dtype or DEFAULT_DTYPE[suffix]
    if suffix == ".npz" and dtype != "float64":
        raise QuasieqError(f"{target}: .npz files hold float64; --dtype {dtype} applies to .onnx and .qtorch")
    path = written or target
    save(lowered.net, path, dtype=dtype)
    run, what = _runner(path, suffix)
    np_dtype = np.float32 if dtype == "float32" else np.float64
    notes = check_lowering(lowered.net, (lowered.net.in_dim,), lambda X: run(X.reshape(len(X), -1)), np_dtype, None,
                           str(target), what, "the writer of this format lost precision or structure")
    return Conversion(lowered, target, dtype, notes)
