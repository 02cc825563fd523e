"""Attributes of a package imported on first use (PEP 562 module ``__getattr__``), so that importing
the package does not import torch, matplotlib or the constructions until they are asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, where: Mapping[str, str],
                    eager: list[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: attribute ``name`` in ``where`` is, on first access, the
    attribute ``name`` of the module ``where[name]``, or the module itself when ``where[name]`` is the
    package's submodule of that name; it is then kept in the package. ``eager`` lists the names bound
    at import."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(where[name])
        value = module if where[name] == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*eager, *where})

    return __getattr__, __dir__
