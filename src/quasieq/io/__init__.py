"""Files and backends: ``load``/``save`` (.onnx, .npz) and ``to_torch``; ``from_torch`` is the frontend's.

``from_torch`` / ``to_torch`` are imported on first use (torch is slow to load).
"""

from quasieq.io.files import load, load_lowered, save
from quasieq.lazy import lazy_attributes

_LAZY = {"from_torch": "quasieq.frontend.torch_source", "to_torch": "quasieq.io.torch_io"}

__all__ = ["load", "load_lowered", "save", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
