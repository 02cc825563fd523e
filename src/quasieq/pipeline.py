"""Build, certify and describe a wide or deep form: the steps ``quasieq wide|deep`` and the demo share.

    net, box ──regions──▶ cx ──build_form──▶ built ──certify──▶ Certificate ──transform_json──▶ JSON

* :func:`build_form` — ``to_wide`` / ``to_deep`` reusing a region complex already computed;
* :func:`certify` — the built form against the original by Monte Carlo, in float64 and through its
  float32 ONNX export run in ONNX Runtime, on the same points and the same tolerance;
* :func:`checked_measure` — the measure the δ check reads;
* :func:`transform_json` — the ``wide|deep --json`` document (schema_version 1).

Long steps are announced through an optional ``step(text)`` hook returning a context manager (the
command line shows a spinner with it); the library itself prints nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, NamedTuple

from quasieq.box import Box
from quasieq.construct.demorgan import label_regions
from quasieq.construct.registry import CONSTRUCTIONS, default_method
from quasieq.construct.scores import as_scores
from quasieq.construct.sizes import DEFAULT_MAX_FORM_BYTES
from quasieq.construct.transform import to_deep, to_wide
from quasieq.geometry import triangulate
from quasieq.geometry.simplices import SimplexComplex
from quasieq.net import ReluNet, provenance_of
from quasieq.regions import RegionComplex
from quasieq.verify import EquivalenceReport, compare, float32_report

if TYPE_CHECKING:  # distributed is imported only when a cluster is used (cluster/executor.py)
    from distributed import Client

#: ``step(text)``: a context manager around a long step described by ``text``.
StepHook = Callable[[str], AbstractContextManager]


def quiet(text: str) -> AbstractContextManager:
    """The default step hook: announces nothing."""
    return nullcontext()


def build_form(form: str, net: ReluNet, box: Box, delta: float, *, cx: RegionComplex | None = None,
               method: str | None = None, task: str = "regression", max_simplices: int | None = None,
               max_bytes: int | None = DEFAULT_MAX_FORM_BYTES, step: StepHook = quiet) -> ReluNet:
    """``to_wide`` (``form="wide"``) or ``to_deep`` (``form="deep"``) of ``net`` on ``box``, reusing the
    region complex ``cx`` of (net, box) where the method can (``demorgan`` refines the regions by the
    argmax itself, so it is not given ``cx``: ``reuses_regions`` in the registry); ``max_bytes`` refuses a
    form whose build would take more memory (construct/sizes.py)."""
    method = default_method(task) if method is None else method
    reused = cx if CONSTRUCTIONS[method].reuses_regions else None
    with step(f"building the {form} form"):
        return (to_wide if form == "wide" else to_deep)(net, box, delta, method=method, task=task,
                                                        max_simplices=max_simplices, cx=reused, max_bytes=max_bytes)


class Certificate(NamedTuple):
    """A built form's Monte-Carlo reports against the original: float64, and its float32 ONNX export."""

    report: EquivalenceReport
    report_float32: EquivalenceReport


def certify(net: ReluNet, built: ReluNet, box: Box, *, samples: int, tol: float | None = None, seed: int = 0,
            task: str = "regression", step: StepHook = quiet, client: Client | None = None) -> Certificate:
    """The Monte-Carlo reports of ``built`` against ``net``: float64 (``compare``, on the Dask
    ``client``'s workers when given) and its float32 ONNX export run in ONNX Runtime in this process
    (``verify.float32_report``), on the same points and the same tolerance.

    For classification both nets are compared as K ≥ 2 class scores (``demorgan.as_scores``: a single
    logit h becomes (0, h), same label), so a single-logit source meets its rebuilt classifier.
    """
    if task == "classification":
        net, built = as_scores(net), as_scores(built)
    with step(f"comparing on {samples:,d} points (float64)"):
        report = compare(net, built, box, samples=samples, tol=tol, seed=seed, task=task, client=client)
    with step(f"comparing the float32 ONNX export on {samples:,d} points"):
        report32 = float32_report(net, built, box, samples=samples, tol=report.tolerance, seed=seed, task=task)
    return Certificate(report, report32)


def checked_measure(report: EquivalenceReport, task: str) -> float:
    """The measure the δ check reads: where the outputs differ by more than the tolerance (regression),
    where the labels differ (classification)."""
    if task == "classification":
        assert report.label_disagreement_measure is not None  # set by every classification comparison
        return report.label_disagreement_measure
    return report.disagreement_measure


def form_simplices(net: ReluNet, built: ReluNet, cx: RegionComplex) -> SimplexComplex:
    """The simplices ``built`` was made from: the label simplices for ``demorgan`` (regions refined by
    the argmax), the merged triangulation of ``cx`` otherwise."""
    if provenance_of(built).method == "demorgan":
        return label_regions(net, cx.box, merge=True).simplices
    return triangulate(cx, merge=True)


def table1_sizes(built: ReluNet) -> dict[str, int] | None:
    """Table 1's width and depth for the same D and M, where the construction has them."""
    table1 = provenance_of(built).table1
    return None if table1 is None else {"width": table1.width, "depth": table1.depth}


def transform_json(form: str, built: ReluNet, certificate: Certificate) -> dict:
    """The ``wide|deep --json`` document (keys in README.md; exact forms give ``pieces`` and friends instead of
    ``simplices``, and ``table1`` null)."""
    p = provenance_of(built)
    return {
        "schema_version": 1,
        "form": form,
        "method": p.method,
        "task": p.task,
        "delta": p.delta,
        **p.size_facts(),
        "width": built.width,
        "hidden_layers": built.hidden_layers,
        "depth": built.depth,
        "neurons": built.neurons,
        "parameters": built.parameters,
        "max_abs_weight": built.max_abs_weight(),
        "error_bound": p.error_bound,
        "table1": table1_sizes(built),
        "report": certificate.report.to_json(),
        "report_float32": certificate.report_float32.to_json(),
    }
