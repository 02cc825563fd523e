"""The δ check (verify/certificate.py) against the Clopper–Pearson limits computed by scipy's Beta law."""

from __future__ import annotations

import pytest
from scipy.stats import beta as beta_law

from quasieq.verify.certificate import FAILED, INCONCLUSIVE, PASSED, judge, samples_needed
from quasieq.verify.compare import EquivalenceReport


def zero_failure_upper(n: int) -> float:
    """Upper 95% Clopper–Pearson limit of a proportion with 0 successes in n trials (Beta(1, n) 97.5%)."""
    return float(beta_law.ppf(0.975, 1, n))


def report(count: int, samples: int, volume: float) -> EquivalenceReport:
    measure = count / samples * volume
    return EquivalenceReport("monte-carlo", 0.0, measure, count / samples, (0.0, 0.0), samples, 1e-6, ())


@pytest.mark.parametrize("delta,volume", [(1e-3, 4.0), (1e-3, 1.0), (0.5, 8.0), (1e-6, 2.0), (3.0, 4.0)])
def test_samples_needed_is_the_fewest_that_can_show_a_measure_below_delta(delta, volume):
    n = samples_needed(delta, volume)
    assert volume * zero_failure_upper(n) < delta
    if n > 1:
        assert volume * zero_failure_upper(n - 1) >= delta


def test_ten_samples_cannot_show_a_measure_below_1e3_on_the_square():
    """The case of the issue: --samples 10 at δ = 1e-3 on [-1, 1]^2 printed "passed"."""
    verdict = judge(report(0, 10, 4.0), 1e-3, 4.0)
    assert verdict.status == INCONCLUSIVE and verdict.samples_needed == samples_needed(1e-3, 4.0) == 14_754
    assert verdict.upper == pytest.approx(4.0 * zero_failure_upper(10), rel=1e-12)
    assert "inconclusive: 10 samples cannot show a measure below δ = 0.001, need at least 14,754" in verdict.sentence()


def test_verdicts_read_the_upper_limit_not_the_estimate():
    volume, delta, n = 4.0, 1e-3, 200_000
    assert judge(report(0, n, volume), delta, volume).status == PASSED
    # estimate 4·45/2e5 = 9e-4 ≤ δ but upper limit 4·Beta(0.975; 46, 199955) > δ: failed, not passed
    upper = volume * float(beta_law.ppf(0.975, 46, n - 45))
    assert 45 / n * volume < delta < upper
    verdict = judge(report(45, n, volume), delta, volume)
    assert verdict.status == FAILED and verdict.upper == pytest.approx(upper, rel=1e-12)
    assert verdict.sentence().endswith("FAILED")


def test_exact_reports_are_judged_on_their_measure():
    exact = EquivalenceReport("exact", 0.0, 5e-4, 1.25e-4, None, 0, 1e-6, ())
    assert judge(exact, 1e-3, 4.0).status == PASSED
    assert judge(exact, 1e-4, 4.0).status == FAILED
    assert judge(exact, 1e-3, 4.0).sentence().startswith("check: exact disagreement measure 0.0005 ≤ δ = 0.001")
