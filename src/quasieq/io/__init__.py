"""Frontends and backends: PyTorch modules, ONNX files and our own ``.npz`` format."""

from quasieq.io.files import load, save
from quasieq.io.torch_io import from_torch, to_torch

__all__ = ["load", "save", "from_torch", "to_torch"]
