"""Exact linear-region analysis: ``regions(net, box) -> RegionComplex``."""

from quasieq.regions.complex import Region, RegionComplex
from quasieq.regions.enumerate import regions

__all__ = ["Region", "RegionComplex", "regions"]
