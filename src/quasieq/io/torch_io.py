"""PyTorch frontend and backend: ``from_torch(module) -> ReluNet`` and ``to_torch(net) -> nn.Sequential``.

Import walks the module as a chain of leaf layers -- an ``nn.Sequential`` (nested allowed) is read
child by child, any other user module through its ``torch.fx`` trace -- and hands each layer to
:class:`quasieq.io.chain.LayerStack` as an affine map or a ReLU:

* ``Linear``: t' = W t + b.
* ``BatchNorm1d`` (eval semantics, running statistics): t' = γ ⊙ (t − μ) / sqrt(σ² + ε) + β, the
  diagonal map with scale s = γ / sqrt(σ² + ε) and shift β − s μ; composing it with the neighbouring
  affine map folds it into the adjacent Linear.
* ``Flatten`` (start_dim=1), ``Identity``, ``Dropout`` (any p; eval semantics): the identity.
* ``ReLU``, ``torch.relu``, ``F.relu``, ``Tensor.relu``: σ.

Weights are read in float64 whatever the module's dtype; the module is never run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import fx, nn

from quasieq.errors import QuasieqError
from quasieq.io.chain import LayerStack, Value
from quasieq.net import ReluNet

SUPPORTED = "quasieq imports Linear, ReLU, Flatten, Identity, Dropout, BatchNorm1d"

#: Largest dense layer ``to_torch`` builds (2·10^8 float64 entries = 1.6 GB); beyond it save to ONNX.
TO_TORCH_MAX_ENTRIES = 200_000_000


def _tensor(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def _plain(module: nn.Module, cls: type) -> bool:
    """``module`` is a ``cls`` whose forward is ``cls``'s own (a subclass may compute something else)."""
    return isinstance(module, cls) and type(module).forward is cls.forward


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _leaves(module: nn.Module, name: str) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(kind, name, payload)`` for each step of the chain, in order.

    kind is "module" (payload: a leaf nn.Module), "relu", "flatten", or "refused" (payload: what the
    step is and why it is refused).
    """
    if _plain(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _leaves(child, _join(name, child_name))
    elif type(module).__module__.startswith("torch."):
        yield "module", name, module
    else:
        yield from _traced(module, name)


def _flatten_args_ok(args: tuple, kwargs: dict) -> bool:
    """torch.flatten(x, 1) / x.flatten(1): flattening everything but the batch axis."""
    start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
    end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
    return start == 1 and end == -1


def _traced(module: nn.Module, name: str) -> Iterator[tuple[str, str, Any]]:
    """The chain of a user module, read from its torch.fx graph; refuses anything that is not a chain."""
    label = f"{type(module).__name__} '{name}'" if name else type(module).__name__
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception as exc:  # tracing runs user code: any failure means "not a static chain"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuasieqError(f"{label}: torch.fx cannot trace it ({first}); write the model as nn.Sequential") from None
    prev = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if prev is not None:
                raise QuasieqError(f"{label}: forward takes more than one input; quasieq imports x -> f(x)")
            prev = node
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                raise QuasieqError(f"{label}: forward must return the one tensor its chain computes")
            return
        target = node.target
        what = f"{node.op} {target if isinstance(target, str) else getattr(target, '__name__', repr(target))}"
        step = _join(name, target) if node.op == "call_module" else _join(name, node.name)
        others = [a for a in (*node.args[1:], *node.kwargs.values()) if isinstance(a, fx.Node)]
        if not node.args or node.args[0] is not prev or others:
            yield "refused", step, (what, "not a chain: it reads a tensor other than the previous step's")
            return
        if node.op == "call_module":
            yield from _leaves(module.get_submodule(target), step)
        elif (node.op, target) in (("call_function", torch.relu), ("call_function", F.relu), ("call_method", "relu")):
            yield "relu", step, None
        elif (node.op, target) in (("call_function", torch.flatten), ("call_method", "flatten")) and \
                _flatten_args_ok(node.args, node.kwargs):
            yield "flatten", step, None
        else:
            yield "refused", step, (what, f"unsupported; {SUPPORTED}")
            return
        prev = node


def _batchnorm(bn: nn.BatchNorm1d, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Scale s = γ/sqrt(σ²+ε) and shift β − s μ of a BatchNorm in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise QuasieqError(f"{label}: BatchNorm1d without running statistics (track_running_stats=False) "
                           "normalises each batch by itself, which is not a fixed affine map")
    mean, var = _tensor(bn.running_mean), _tensor(bn.running_var)
    gamma = _tensor(bn.weight) if bn.weight is not None else np.ones_like(mean)
    beta = _tensor(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    for what, arr in (("running_mean", mean), ("running_var", var), ("weight", gamma), ("bias", beta)):
        if not np.all(np.isfinite(arr)):
            raise QuasieqError(f"{label}: {what} holds non-finite values (nan or inf)")
    s = gamma / np.sqrt(var + float(bn.eps))
    return s, beta - s * mean


def from_torch(module: nn.Module) -> ReluNet:
    """Import a PyTorch ReLU network as a :class:`ReluNet` (float64, eval semantics).

    Accepts an ``nn.Sequential`` (nested allowed) of Linear, ReLU, Flatten, Identity, Dropout and
    BatchNorm1d, or a module whose ``torch.fx`` trace is such a chain. Consecutive affine layers
    (Linear, BatchNorm) are composed into one; the model must start and end with an affine layer.

    >>> import torch.nn as nn, quasieq as qe
    >>> qe.from_torch(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)))
    ReluNet(2-8-1, depth=2, parameters=33)
    """
    if not isinstance(module, nn.Module):
        raise QuasieqError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    stack = LayerStack(None)
    value: Value = stack.input
    label = "input"
    for position, (kind, name, payload) in enumerate(_leaves(module, "")):
        if kind == "refused":
            what, reason = payload
            raise QuasieqError(f"layer {position} ({what} '{name}'): {reason}")
        if kind == "module":
            label = f"layer {position} ({type(payload).__name__} '{name}')"
        else:
            label = f"layer {position} ({kind} '{name}')"
        if kind == "relu" or (kind == "module" and _plain(payload, nn.ReLU)):
            value = stack.relu(value, label)
        elif kind == "flatten" or (kind == "module" and _plain(payload, nn.Flatten)):
            if kind == "module" and (payload.start_dim, payload.end_dim) != (1, -1):
                raise QuasieqError(f"{label}: only Flatten(start_dim=1, end_dim=-1) is supported")
            value = value.reshape(None if value.shape is None else (value.size,), label)
        elif _plain(payload, nn.Identity) or _plain(payload, nn.Dropout):
            continue
        elif _plain(payload, nn.Linear):
            bias = None if payload.bias is None else _tensor(payload.bias)
            value = value.affine(_tensor(payload.weight), bias, label)
        elif _plain(payload, nn.BatchNorm1d):
            s, t = _batchnorm(payload, label)
            if value.size is not None and value.size != s.size:
                raise QuasieqError(f"{label}: normalises {s.size} features but the previous layer gives {value.size}")
            value = value.reshape((s.size,), label).scale(s, label).shift(t, label)
        else:
            raise QuasieqError(f"{label}: unsupported; {SUPPORTED}")
    return stack.finish(value, label)


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
