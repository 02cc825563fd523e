"""What every construction is built from (:class:`Job`), the steps they share (regions, simplices,
the size checks made before building) and the one place their :class:`Provenance` is assembled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quasieq.box import Box
from quasieq.construct.sizes import check_size, estimate
from quasieq.errors import QuasieqError
from quasieq.geometry.simplices import SimplexComplex, triangulate
from quasieq.net import LatticeSizes, Provenance, ReluNet, Table1
from quasieq.regions.complex import RegionComplex
from quasieq.regions.enumerate import regions
from quasieq.regions.limits import RegionLimit, within_limits


@dataclass(frozen=True)
class Job:
    """One request of ``to_wide`` / ``to_deep``, validated (``construct.transform``): the net and its
    box, δ (None only for methods that need none), the task, whether equal-map regions are merged
    before triangulating, the limits (``max_simplices``, ``max_bytes``, ``export_dtype``) and a region
    complex of (net, box) to reuse, if any. Every construction's ``build(form, job)`` reads it."""

    net: ReluNet
    box: Box
    delta: float | None
    task: str
    merge: bool = True
    max_simplices: int | None = None
    cx: RegionComplex | None = None
    max_bytes: int | None = None
    export_dtype: str | None = None

    def measure(self, method: str) -> float:
        """δ, for a method that needs it (validation refused a missing δ for all the others)."""
        if self.delta is None:
            raise QuasieqError(f"method {method!r} needs delta, the measure it may disagree on")
        return float(self.delta)

    def too_many(self, count: int, what: str) -> None:
        """Refuse a form needing more than ``max_simplices`` simplices (or pieces)."""
        if self.max_simplices is not None and count > int(self.max_simplices):
            raise QuasieqError(
                f"the net needs {count} {what}, more than max_simplices={self.max_simplices}: raise the limit or "
                "shrink the box"
            )

    def regions(self) -> RegionComplex:
        """The given complex, or the regions of (net, box), stopped early (TooManyRegions) once more than
        ``max_simplices`` exist: every region is cut into at least one simplex (or is at least one linear
        piece in 1-D)."""
        if self.cx is not None:
            return self.cx
        return within_limits(lambda cap: regions(self.net, self.box, max_regions=cap),
                             RegionLimit(self.max_simplices, "max_simplices=", ", each at least one simplex"))

    def simplices(self, form: str, method: str) -> SimplexComplex:
        """The regions triangulated, refused before building when there are more than ``max_simplices``
        simplices or the ``form`` of ``method`` would take more than ``max_bytes`` (construct/sizes.py)."""
        sc = triangulate(self.regions(), merge=self.merge)
        self.too_many(sc.M, "simplices")
        check_size(estimate(form, method, sc.M, sc.D, sc.K), form, method, sc.M, self.max_bytes)
        return sc


def table1_sizes(form: str, D: int, M: int) -> tuple[int, int]:
    """Table 1's (width, depth) for M simplices in dimension D: D²(D+1)M and D + 1 for the wide form,
    (D+1)D² and (D+1)M for the deep one."""
    return (D * D * (D + 1) * M, D + 1) if form == "wide" else ((D + 1) * D * D, (D + 1) * M)


def provenance(method: str, box: Box, *, max_abs_weight: float, task: str = "regression",
               delta: float | None = None, error_bound: float | None = None, simplices: int | None = None,
               table1: tuple[int, int] | None = None, lattice: LatticeSizes | None = None,
               breakpoints: tuple[float, ...] | None = None, details: dict[str, Any] | None = None) -> Provenance:
    """The :class:`Provenance` of a construction on ``box`` (``table1`` as (width, depth))."""
    return Provenance(
        method=method,
        task=task,
        delta=None if delta is None else float(delta),
        box_lo=tuple(box.lo.tolist()),
        box_hi=tuple(box.hi.tolist()),
        error_bound=error_bound,
        max_abs_weight=max_abs_weight,
        simplices=simplices,
        table1=None if table1 is None else Table1(*table1),
        lattice=lattice,
        breakpoints=breakpoints,
        details={} if details is None else details,
    )
