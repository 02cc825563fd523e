"""PyTorch backend: ``to_torch(net) -> nn.Sequential`` (import is :func:`quasieq.frontend.from_torch`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from quasieq.errors import QuasieqError
from quasieq.net import ReluNet

#: Largest dense layer ``to_torch`` builds (2·10^8 float64 entries = 1.6 GB); beyond it save to ONNX.
TO_TORCH_MAX_ENTRIES = 200_000_000


class PartialReLU(nn.Module):
    """ReLU on the units where ``mask`` is True, identity on the others (a layer with linear units)."""

    mask: torch.Tensor

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mask", torch.tensor(np.asarray(mask, dtype=bool)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, torch.relu(x), x)


def to_torch(net: ReluNet, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """Export a :class:`ReluNet` as ``nn.Sequential(Linear, ReLU, …, Linear)`` in eval mode
    (``PartialReLU`` instead of ``ReLU`` after a layer with linear units).

    Sparse layers are densified; a layer whose dense form exceeds ``TO_TORCH_MAX_ENTRIES`` entries is
    refused (save it to ONNX instead, which keeps sparse layers sparse).

    >>> import numpy as np, quasieq as qe
    >>> qe.to_torch(qe.ReluNet([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)]))[1]
    ReLU()
    """
    if dtype not in (torch.float32, torch.float64):
        raise QuasieqError(f"to_torch: dtype must be torch.float32 or torch.float64, got {dtype}")
    modules: list[nn.Module] = []
    for i, (W, b) in enumerate(net.layers):
        out_dim, in_dim = W.shape
        if out_dim * in_dim > TO_TORCH_MAX_ENTRIES:
            raise QuasieqError(
                f"layer {i}: dense form would hold {out_dim * in_dim:.3g} entries (> {TO_TORCH_MAX_ENTRIES:.0e}); "
                "export it with qe.save(net, 'model.onnx') instead, which keeps sparse layers sparse"
            )
        linear = nn.Linear(in_dim, out_dim, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(W.toarray() if sp.issparse(W) else np.asarray(W)))
            linear.bias.copy_(torch.tensor(np.asarray(b)))
        modules.append(linear)
        if i < net.hidden_layers:
            mask = net.relu_masks[i]
            modules.append(nn.ReLU() if mask.all() else PartialReLU(mask))
    return nn.Sequential(*modules).eval()
