"""The δ check of a certificate: passed, failed or inconclusive, judged on the upper 95% limit.

A Monte-Carlo report of N samples, X of them in the disagreement set, gives the Clopper–Pearson 95%
interval [lo, hi] of the measure (verify/compare.py). The check passes when hi ≤ δ — the point estimate
vol·X/N is never trusted on its own. With X = 0 the upper limit is vol·(1 − 0.025^(1/N)), so no run of
fewer than

    N_min = ⌊ln 0.025 / ln(1 − δ/vol)⌋ + 1

samples can show a measure below δ; such a run is *inconclusive* (exit 1, saying N_min), any other run
with hi > δ has *failed*. An exact report (``compare(..., exact=True)``) is judged on its exact measure.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from quasieq.errors import QuasieqError
from quasieq.verify.compare import EquivalenceReport, clopper_pearson

PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"
#: One-sided tail of the 95% interval's upper limit.
UPPER_TAIL = 0.025


def samples_needed(delta: float, volume: float) -> int:
    """The fewest samples whose zero-failure upper 95% limit vol·(1 − 0.025^(1/N)) is below δ."""
    if not (delta > 0 and volume > 0):
        raise QuasieqError(f"samples_needed: need δ > 0 and a positive volume, got δ={delta:g}, volume={volume:g}")
    if delta >= volume:
        return 1
    return math.floor(math.log(UPPER_TAIL) / math.log1p(-delta / volume)) + 1


class Verdict(NamedTuple):
    """The outcome of one δ check."""

    status: str  # PASSED, FAILED or INCONCLUSIVE
    measure: float  # the point estimate (Monte Carlo) or the exact measure
    upper: float  # what was compared with δ: the upper 95% limit, or the exact measure
    delta: float
    samples: int  # 0 for an exact report
    samples_needed: int | None  # N_min (Monte Carlo)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def sentence(self, what: str = "disagreement measure") -> str:
        """One line: ``check: upper 95% limit of the disagreement measure 2e-4 ≤ δ = 0.001: passed``."""
        limit = f"exact {what}" if self.samples == 0 else f"upper 95% limit of the {what}"
        head = f"check: {limit} {self.upper:.3g} {'≤' if self.passed else '>'} δ = {self.delta:g}: "
        if self.status == INCONCLUSIVE:
            return head + (f"inconclusive: {self.samples:,d} samples cannot show a measure below δ = {self.delta:g}, "
                           f"need at least {self.samples_needed:,d} (--samples)")
        return head + ("passed" if self.passed else "FAILED")


def judge(report: EquivalenceReport, delta: float, volume: float, *, labels: bool = False) -> Verdict:
    """Judge ``report`` against δ on the box of volume ``volume``; ``labels`` judges the measure where
    the labels differ (classification) instead of where the outputs do."""
    measure = report.label_disagreement_measure if labels else report.disagreement_measure
    if measure is None:
        raise QuasieqError("judge: the report holds no label disagreement measure (compare with task='classification')")
    if report.ci95 is None:  # exact
        return Verdict(PASSED if measure <= delta else FAILED, measure, measure, delta, 0, None)
    needed = samples_needed(delta, volume)
    count = round(measure / volume * report.samples)
    upper = clopper_pearson(count, report.samples)[1] * volume
    if upper <= delta:
        status = PASSED
    elif report.samples < needed:
        status = INCONCLUSIVE
    else:
        status = FAILED
    return Verdict(status, measure, upper, delta, report.samples, needed)
