"""Synthesis: rebuild a net's function as a wide or a deep network.

``to_wide`` / ``to_deep`` are imported on first use, so the registry of constructions
(``construct.registry``: the method names) loads without the constructions.
"""

from quasieq.lazy import lazy_attributes

_LAZY = {"to_wide": "quasieq.construct.transform", "to_deep": "quasieq.construct.transform"}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
