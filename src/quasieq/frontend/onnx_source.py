"""ONNX models into the compiler: ``lower_onnx_file(path)`` and ``lower_onnx_model(model)``.

The model is read into the graph form, lowered, and checked against ONNX Runtime running the same
model (:mod:`quasieq.frontend.check`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx.external_data_helper import load_external_data_for_model

from quasieq.errors import QuasieqError
from quasieq.frontend.check import check_lowering
from quasieq.frontend.compiler import Lowered, lower_graph
from quasieq.frontend.graph import graph_from_onnx
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES, check_file_size, check_onnx_sizes

_NUMPY_TYPES: dict[int, type] = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
                                 TensorProto.FLOAT16: np.float16}


def _runtime_reference(model: onnx.ModelProto, path: Path | None, label: str):
    import onnxruntime as ort  # heavy optional dependency: loaded on first use

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        source = str(path) if path is not None else model.SerializeToString()
        session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuasieqError(f"{label}: ONNX Runtime cannot load the model to check the lowering "
                           f"({first[:200]})") from None
    name = session.get_inputs()[0].name

    def run(X: np.ndarray) -> np.ndarray:
        try:
            return session.run(None, {name: X})[0]
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise QuasieqError(f"{label}: ONNX Runtime cannot run the model to check the lowering ({first[:200]})") \
                from None
    return run


def lower_onnx_model(model: onnx.ModelProto, label: str, task: str = "regression", check: bool = True,
                     path: Path | None = None, max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Lowered:
    """Lower an in-memory ONNX model; with ``check``, compare it with ONNX Runtime on random inputs.
    Every tensor read and every matrix built is held to ``max_weight_bytes`` (io/limits.py)."""
    graph = graph_from_onnx(model, label, max_weight_bytes)
    lowered = lower_graph(graph, task, max_weight_bytes)
    if check:
        dtype = _NUMPY_TYPES.get(graph.input_dtype)
        if dtype is None:
            raise QuasieqError(f"{label}: input '{graph.input}' has element type "
                               f"{TensorProto.DataType.Name(graph.input_dtype)}; quasieq lowers float inputs")
        notes = check_lowering(lowered.net, lowered.input_shape, _runtime_reference(model, path, label), dtype,
                               graph.batch, label, "ONNX Runtime",
                               "this is a quasieq bug, please report it with the model",
                               lowered.census.dropped if lowered.census else ())
        lowered = dataclasses.replace(lowered, notes=lowered.notes + notes)
    return lowered


def lower_onnx_file(path: str | Path, task: str = "regression", check: bool = True,
                    max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Lowered:
    """Read and lower the ONNX file ``path`` (see :func:`lower_onnx_model`). Sizes are checked before
    any tensor is read (io/limits.py): the file, every tensor's declared dims, external data and the
    input's per-sample dims, against ``max_weight_bytes``; the lowering's matrices against the same."""
    path = Path(path)
    check_file_size(path, max_weight_bytes)
    try:
        model = onnx.load(str(path), load_external_data=False)
        check_onnx_sizes(model, path, max_weight_bytes)
        load_external_data_for_model(model, str(path.parent))
    except QuasieqError:
        raise
    except Exception as exc:  # protobuf decode errors, missing external data ...
        raise QuasieqError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    return lower_onnx_model(model, str(path), task, check, path, max_weight_bytes)
