"""Exact linear-region analysis: ``regions(net, box) -> RegionComplex``; ``load_regions(path)`` reads a
complex saved as .npz (regions/store.py)."""

from quasieq.regions.complex import Region, RegionComplex
from quasieq.regions.enumerate import regions

load_regions = RegionComplex.load

__all__ = ["Region", "RegionComplex", "load_regions", "regions"]
