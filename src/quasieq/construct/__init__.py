"""Synthesis: rebuild a net's function as a wide or a deep network (paper.md §2)."""

from quasieq.construct.transform import to_deep, to_wide

__all__ = ["to_wide", "to_deep"]
