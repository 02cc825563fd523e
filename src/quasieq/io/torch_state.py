"""quasieq's PyTorch state file ``.qtorch``: the ``state_dict`` of ``qe.to_torch(net)`` without pickle.

``torch.save`` files are pickles (loading one runs arbitrary code), so quasieq writes its own format: a
zip of ``.npy`` arrays (numpy's ``.npz``, read with ``allow_pickle=False``) holding

* ``format``: the string ``quasieq-torch-state/1``;
* ``modules``: a JSON list, one entry per module of the ``nn.Sequential``, in order:
  ``{"type": "Linear", "in_features": i, "out_features": o}``, ``{"type": "ReLU"}`` or
  ``{"type": "PartialReLU", "units": n}`` (ReLU on the units of its ``mask``, identity on the others);
* the state dict, one array per entry under its own name: ``"0.weight"`` (out, in), ``"0.bias"``,
  ``"1.mask"`` (bool) …, in float64 or float32.

Loaders: :func:`load_torch_state` rebuilds the ``nn.Sequential`` and fills it with
``load_state_dict(strict=True)``; :func:`read_torch_state` gives the :class:`ReluNet` without torch
modules (what ``qe.load("model.qtorch")`` returns).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from quasieq.errors import QuasieqError
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES
from quasieq.io.npz_io import read_npz_arrays
from quasieq.net import ReluNet

FORMAT = "quasieq-torch-state/1"
_DTYPES = {"float32": np.float32, "float64": np.float64}


def write_torch_state(net: ReluNet, file: BinaryIO, dtype: str = "float64") -> None:
    """Write ``qe.to_torch(net)``'s layout and state dict to an open binary file."""
    import torch  # heavy optional dependency: loaded on first use

    from quasieq.io.torch_io import PartialReLU, to_torch

    if dtype not in _DTYPES:
        raise QuasieqError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    module = to_torch(net, torch.float64)
    layout: list[dict[str, object]] = []
    for child in module:
        if isinstance(child, torch.nn.Linear):
            layout.append({"type": "Linear", "in_features": child.in_features, "out_features": child.out_features})
        elif isinstance(child, PartialReLU):
            layout.append({"type": "PartialReLU", "units": int(child.mask.numel())})
        else:
            layout.append({"type": "ReLU"})
    arrays = {}
    for name, tensor in module.state_dict().items():
        value = tensor.numpy()
        arrays[name] = value if value.dtype == np.bool_ else value.astype(_DTYPES[dtype])
    np.savez(file, format=np.array(FORMAT), modules=np.array(json.dumps(layout)), **arrays)


def _size(entry: dict, key: str, path: Path, index: int) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise QuasieqError(f"{path}: module {index} needs a non-negative integer {key!r}, got {value!r}")
    return value


def _read(path: Path, max_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The checked layout and arrays of a ``.qtorch`` file (module docstring); sizes are checked
    before reading (:func:`quasieq.io.npz_io.read_npz_arrays`)."""
    if not zipfile.is_zipfile(path):
        raise QuasieqError(f"{path}: not a quasieq .qtorch file (a zip of .npy arrays)")
    arrays = read_npz_arrays(path, lambda name: True, "", max_bytes, text=("format", "modules"))
    if str(arrays.pop("format", "")) != FORMAT:
        raise QuasieqError(f"{path}: not a {FORMAT} file (its 'format' entry is missing or different)")
    try:
        layout = json.loads(str(arrays.pop("modules")))
    except (KeyError, RecursionError, ValueError):  # missing, nested too deeply, not JSON
        raise QuasieqError(f"{path}: the 'modules' entry is missing or not JSON") from None
    if not isinstance(layout, list) or not all(isinstance(m, dict) for m in layout):
        raise QuasieqError(f"{path}: 'modules' must be a JSON list of objects")
    expected: dict[str, tuple[int, ...]] = {}
    for i, entry in enumerate(layout):
        kind = entry.get("type")
        if kind == "Linear":
            o, n = _size(entry, "out_features", path, i), _size(entry, "in_features", path, i)
            expected[f"{i}.weight"], expected[f"{i}.bias"] = (o, n), (o,)
        elif kind == "PartialReLU":
            expected[f"{i}.mask"] = (_size(entry, "units", path, i),)
        elif kind != "ReLU":
            raise QuasieqError(f"{path}: module {i} has type {kind!r}; a .qtorch file holds Linear, ReLU and "
                               "PartialReLU")
    if set(arrays) != set(expected):
        raise QuasieqError(f"{path}: the arrays {sorted(arrays)} do not match the modules' state {sorted(expected)}")
    for name, shape in expected.items():
        value = arrays[name]
        want = np.bool_ if name.endswith(".mask") else np.floating
        if value.shape != shape or not np.issubdtype(value.dtype, want):
            raise QuasieqError(f"{path}: {name} has shape {value.shape} and dtype {value.dtype}; expected {shape} "
                               f"{'bool' if want is np.bool_ else 'float'}")
    return layout, arrays


def read_torch_state(path: Path, max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> ReluNet:
    """The :class:`ReluNet` of a ``.qtorch`` file: Linear layers alternating with ReLU / PartialReLU."""
    layout, arrays = _read(path, max_weight_bytes)
    kinds = [m["type"] for m in layout]
    linear = [i for i, k in enumerate(kinds) if k == "Linear"]
    if not linear or linear[0] != 0 or kinds[-1] != "Linear" or any(
        kinds[a + 1 : b] not in (["ReLU"], ["PartialReLU"]) for a, b in zip(linear[:-1], linear[1:], strict=True)
    ):
        raise QuasieqError(f"{path}: modules {kinds} are not Linear, (ReLU | PartialReLU), …, Linear")
    weights = [arrays[f"{i}.weight"] for i in linear]
    biases = [arrays[f"{i}.bias"] for i in linear]
    masks = [arrays[f"{i + 1}.mask"] if kinds[i + 1] == "PartialReLU" else np.ones(arrays[f"{i}.bias"].size, bool)
             for i in linear[:-1]]
    return ReluNet(weights, biases, relu_masks=masks)


def load_torch_state(path: str | Path):
    """The ``nn.Sequential`` of a ``.qtorch`` file, in eval mode (``load_state_dict(strict=True)``)."""
    import torch  # heavy optional dependency: loaded on first use

    from quasieq.io.torch_io import PartialReLU

    path = Path(path)
    layout, arrays = _read(path)
    dtype = torch.float32 if all(arrays[k].dtype == np.float32 for k in arrays if not k.endswith(".mask")) \
        else torch.float64
    modules: list[torch.nn.Module] = []
    for i, entry in enumerate(layout):
        if entry["type"] == "Linear":
            modules.append(torch.nn.Linear(entry["in_features"], entry["out_features"], dtype=dtype))
        elif entry["type"] == "PartialReLU":
            modules.append(PartialReLU(arrays[f"{i}.mask"]))
        else:
            modules.append(torch.nn.ReLU())
    module = torch.nn.Sequential(*modules)
    module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}, strict=True)
    return module.eval()
