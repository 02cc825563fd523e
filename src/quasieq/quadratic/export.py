"""ONNX export of a quadratic network (float64, opset 17, input ``input`` (N, D), output ``output`` (N, 1)).

The nets are plain torch modules (products, sums, divisions), so torch's TorchScript exporter traces
them; the batch axis is dynamic. ONNX Runtime runs the file in float64 (tests compare it with torch).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17


def save_onnx(module: nn.Module, path: str | Path, in_dim: int = 1) -> None:
    """Write ``module`` ((N, in_dim) → (N, 1), float64) to ``path`` as ONNX."""
    example = torch.zeros(2, in_dim, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
