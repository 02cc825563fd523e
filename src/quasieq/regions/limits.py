"""Caps on how many regions an enumeration may find, and the one-line refusal that names the cap.

Several caps can bound one enumeration: ``--max-regions`` itself, ``--max-simplices`` (every region is
cut into at least one simplex, so more regions than simplices allowed is already too many) and the exact
check's ``--max-cells`` (every region of the stacked net is a cell). The enumeration runs once, under
the smallest of them; when it stops early (:class:`~quasieq.errors.TooManyRegions`), the refusal names
the cap that stopped it, so the user knows which flag to raise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from quasieq.errors import TooManyRegions

Result = TypeVar("Result")

#: The largest region count the kernels hold (int64): a limit standing for none.
NO_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class RegionLimit:
    """One cap: at most ``count`` regions (None: no cap), named ``name`` in the refusal (a flag such as
    ``--max-simplices``, or a keyword such as ``max_simplices=``). ``unit`` is what the cap counts (every region is one
    of them: "regions", "cells"), ``what`` what a region stands for under it (", each at least one
    simplex"), ``otherwise`` the other way out than raising it."""

    count: int | None
    name: str
    what: str = ""
    unit: str = "regions"
    otherwise: str = "shrink the box"

    def refusal(self, at_least: int) -> TooManyRegions:
        """The one-line error for an enumeration that found ``at_least`` regions, more than ``count``."""
        return TooManyRegions(f"more than {self.count:,d} {self.unit} (at least {at_least:,d} found){self.what}: "
                              f"raise {self.name} or {self.otherwise}", at_least)


def tightest(limits: Sequence[RegionLimit]) -> RegionLimit | None:
    """The cap with the smallest count (the first of equal ones), None when no cap is set."""
    return min((limit for limit in limits if limit.count is not None), key=lambda limit: cast(int, limit.count),
               default=None)


def within_limits(enumerate_regions: Callable[[int | None], Result], *limits: RegionLimit) -> Result:
    """``enumerate_regions(cap)`` under the tightest of ``limits``; an early stop (TooManyRegions)
    becomes that limit's one-line refusal (a TooManyRegions naming it)."""
    limit = tightest(limits)
    if limit is None:
        return enumerate_regions(None)
    try:
        return enumerate_regions(limit.count)
    except TooManyRegions as exc:
        raise limit.refusal(exc.at_least) from None
