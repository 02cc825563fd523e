"""Files and backends: ``load``/``save`` (.onnx, .npz) and ``to_torch``; ``from_torch`` is the frontend's."""

from quasieq.frontend.torch_source import from_torch
from quasieq.io.files import load, load_lowered, save
from quasieq.io.torch_io import to_torch

__all__ = ["load", "load_lowered", "save", "from_torch", "to_torch"]
