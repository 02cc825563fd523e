"""PyTorch modules into the same compiler: ``from_torch(module, example_input)``.

There is no second lowering: the module is exported in memory to ONNX (``torch.onnx.export`` with
``dynamo=False``, eval mode, dynamic batch axis), and that graph is lowered like a file; the lowered net
is then checked against the module itself, run by torch, on random inputs. A module in train mode is
lowered in eval mode (BatchNorm with its running statistics, Dropout off) with a warning. The module's
weights are read, never a file: quasieq never unpickles (``torch.load``) anything.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from quasieq.errors import QuasieqError
from quasieq.frontend.check import check_lowering
from quasieq.frontend.compiler import Lowered
from quasieq.frontend.onnx_source import lower_onnx_model
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES

OPSET = 17
#: Layers whose output depends on train/eval mode (a module in train mode holding one gets a warning).
_TRAIN_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def _example(module: nn.Module, example_input: Any) -> torch.Tensor:
    """The example input, or (old behaviour) a zero sample when the module starts with a Linear."""
    if example_input is not None:
        x = example_input if isinstance(example_input, torch.Tensor) else torch.as_tensor(np.asarray(example_input))
        if x.ndim < 2:
            raise QuasieqError(f"from_torch: example_input of shape {tuple(x.shape)}; it needs a batch axis "
                               "(N, features...)")
        return x
    first = next((m for m in module.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise QuasieqError(f"from_torch: pass example_input (a batch of one input) for {type(module).__name__}; "
                           "the input shape can be inferred only when the module starts with an nn.Linear")
    return torch.zeros(1, first.in_features, dtype=first.weight.dtype)


def _export(module: nn.Module, x: torch.Tensor, label: str) -> onnx.ModelProto:
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the legacy exporter writes to a file object too (its annotation says paths only)
            torch.onnx.export(module, (x,), buffer, dynamo=False,  # type: ignore[arg-type]
                              opset_version=OPSET, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                              do_constant_folding=False)  # we fold in float64, torch would in float32
    except Exception as exc:  # export runs user code: any failure is "cannot be exported"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QuasieqError(f"{label}: torch.onnx.export cannot export it ({first[:200]})") from None
    return onnx.load_from_string(buffer.getvalue())


def lower_torch(module: nn.Module, example_input: Any = None, task: str = "regression", check: bool = True,
                max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Lowered:
    """Lower ``module`` (eval semantics) through its in-memory ONNX export; check it against torch.
    The export's tensors and the lowering's matrices are held to ``max_weight_bytes`` (io/limits.py)."""
    if not isinstance(module, nn.Module):
        raise QuasieqError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    label = type(module).__name__
    if module.training and any(isinstance(m, _TRAIN_DEPENDENT) for m in module.modules()):
        warnings.warn(f"{label} is in train mode; quasieq lowers it in eval mode (BatchNorm running statistics, "
                      "Dropout off); call module.eval() first to silence this", stacklevel=3)
    was_training = module.training
    module.eval()
    try:
        x = _example(module, example_input)
        lowered = lower_onnx_model(_export(module, x, label), label, task, check=False,
                                   max_weight_bytes=max_weight_bytes)
        if lowered.census is not None:
            lowered = dataclasses.replace(lowered, census=dataclasses.replace(lowered.census, source="torch"))
        if check:
            def reference(X: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    return module(torch.as_tensor(X, dtype=x.dtype)).double().numpy()
            hint = ("the exported graph does not compute the module's function (Python control flow on the data "
                    "is traced for the example input only?)")
            notes = check_lowering(lowered.net, lowered.input_shape, reference, x.numpy().dtype.type, None, label,
                                   "torch", hint, lowered.census.dropped if lowered.census else ())
            lowered = dataclasses.replace(lowered, notes=lowered.notes + notes)
    finally:
        module.train(was_training)
    return lowered


def from_torch(module: nn.Module, example_input: Any = None, task: str = "regression") -> Any:
    """Import a PyTorch module as a :class:`~quasieq.net.ReluNet` (float64, eval semantics).

    Any module whose graph lowers is accepted: custom ``forward``, residual blocks, Conv1d/2d,
    BatchNorm1d/2d, MaxPool/AvgPool/AdaptiveAvgPool with static sizes, (Leaky)ReLU, ReLU6, Hardtanh,
    Flatten, torch.cat, view/reshape. ``example_input`` is one batch of inputs (its shape fixes the
    per-sample input shape); it may be omitted when the module starts with an ``nn.Linear``.

    >>> import torch.nn as nn, quasieq as qe
    >>> qe.from_torch(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)))
    ReluNet(2-8-1, depth=2, parameters=33)
    """
    return lower_torch(module, example_input, task).net
