"""Public entry points ``to_wide`` / ``to_deep``: a ReLU net → its wide or deep (quasi-)equivalent.

Dispatch:

* D = 1: Theorem 9, exact (``construct.univariate``), whatever ``method`` says: the breakpoints of the
  1-D region complex give the wide form (one hidden layer) and the deep form (a width-(K+2) chain).
* D ≥ 2, ``method="exact"``: the max–min lattice form of the exact regions (``construct.lattice``),
  zero error, sizes in ``provenance.details`` (pieces q, affine functions k, Σ|S_i|, Chen et al.'s size).
* D ≥ 2: the regions are triangulated (``geometry.triangulate``) and rebuilt by
  ``method="compact"`` (paper_notes §2.6, ``construct.compact``) or ``method="paper"`` (the paper's fan
  modules with the gate fix, §2.3–2.5, ``construct.paper``).

``task="classification"``: ``method="demorgan"`` (the default) builds the rule/De Morgan forms of
paper_notes §2.7 C2 (``construct.demorgan``: label regions → labelled simplices → n_c − Σ¬A_i wide, the
chained union deep); ``method="logits"`` rebuilds the logits with the compact construction (option C1),
so the labels differ at most where the logits do. Both output K ≥ 2 class scores (a single-logit
source gets the scores (0, h), ``demorgan.as_scores``). ``compact`` and ``paper`` rebuild the logits as
they come.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from quasieq.box import Box
from quasieq.construct.compact import compact_deep, compact_wide, weight_floor
from quasieq.construct.demorgan import (
    SingleClass,
    as_scores,
    constant_classifier,
    demorgan_deep,
    demorgan_wide,
    label_regions,
)
from quasieq.construct.lattice import lattice_deep, lattice_wide
from quasieq.construct.methods import CLASSIFICATION_METHODS, METHODS, TASKS, default_method
from quasieq.construct.onelayer import onelayer_deep
from quasieq.construct.sizes import DEFAULT_MAX_FORM_BYTES, check_size, estimate
from quasieq.construct.univariate import breakpoints, univariate_deep, univariate_wide
from quasieq.errors import QuasieqError, TooManyRegions
from quasieq.geometry.simplices import triangulate
from quasieq.net import Provenance, ReluNet
from quasieq.regions.complex import RegionComplex
from quasieq.regions.enumerate import regions
from quasieq.unit_box import UnitFrame


def _check_delta(delta: float) -> None:
    """δ is an absolute Lebesgue measure on the box: positive and finite."""
    try:
        value = float(delta)
    except (TypeError, ValueError):
        raise QuasieqError(f"delta must be a positive finite measure, got {delta!r}") from None
    if not (math.isfinite(value) and value > 0.0):
        raise QuasieqError(f"delta must be a positive finite measure, got {delta!r}")


def _validate(net: ReluNet, box: Box, delta: float | None, method: str, task: str,
              max_simplices: int | None) -> None:
    box.check_net(net)
    if delta is None:
        if method != "exact":
            raise QuasieqError(f"method {method!r} needs delta, the measure it may disagree on; "
                               "only method='exact' builds without one")
    else:
        _check_delta(delta)
    if method not in METHODS:
        raise QuasieqError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if task not in TASKS:
        raise QuasieqError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    if method in CLASSIFICATION_METHODS and task != "classification":
        raise QuasieqError(f"method {method!r} builds classifiers: use it with task='classification'")
    if max_simplices is not None and int(max_simplices) < 1:
        raise QuasieqError(f"max_simplices must be ≥ 1, got {max_simplices}")


def _too_many(count: int, max_simplices: int | None, what: str) -> None:
    if max_simplices is not None and count > int(max_simplices):
        raise QuasieqError(
            f"the net needs {count} {what}, more than max_simplices={max_simplices}: raise the limit or shrink the box"
        )


def _check_writable(floor: float, delta: float, export_dtype: str | None) -> None:
    """Refuse before building a form whose weights (at least ``floor``) overflow ``export_dtype``."""
    if export_dtype is None:
        return
    largest = float(np.finfo(np.dtype(export_dtype)).max)
    if floor > largest:
        raise QuasieqError(
            f"a delta of {delta:.3g} of the box's volume needs weights of at least {floor:.3g}, beyond the largest "
            f"{export_dtype} ({largest:.3g}) the form is exported and checked in: choose a larger delta"
        )


def _regions_for(net: ReluNet, box: Box, max_simplices: int | None) -> RegionComplex:
    """The regions of (net, box), stopped early (TooManyRegions) once more than ``max_simplices``
    exist: every region is cut into at least one simplex (or is at least one linear piece in 1-D)."""
    try:
        return regions(net, box, max_regions=max_simplices)
    except TooManyRegions as exc:
        raise QuasieqError(
            f"the net has more than {max_simplices} regions (at least {exc.at_least} found), so it needs more than "
            f"max_simplices={max_simplices} simplices: raise the limit or shrink the box"
        ) from None


def _univariate(cx: RegionComplex, delta: float | None, task: str, form: str, max_simplices: int | None) -> ReluNet:
    """Theorem 9 forms with their provenance (error bound 0: exact)."""
    bp = breakpoints(cx)
    pieces = len(bp.t) + 1
    _too_many(pieces, max_simplices, "linear pieces")
    net = univariate_wide(bp) if form == "wide" else univariate_deep(bp)
    # Table 1 with D = 1 and M = pieces (a 1-simplex is an interval)
    table1 = {"width": 2 * pieces, "depth": 2} if form == "wide" else {"width": 2, "depth": 2 * pieces}
    return net.with_provenance(
        Provenance(
            method="exact",
            task=task,
            delta=None if delta is None else float(delta),
            box_lo=tuple(cx.box.lo.tolist()),
            box_hi=tuple(cx.box.hi.tolist()),
            error_bound=0.0,
            max_abs_weight=net.max_abs_weight(),
            details={"theorem": 9, "simplices": pieces, "breakpoints": bp.t.tolist(), "table1": table1},
        )
    )


def _changed(built: ReluNet, **changes: Any) -> ReluNet:
    """``built`` with fields of its provenance changed (every construction records a provenance)."""
    if built.provenance is None:
        raise QuasieqError("a construction returned a net without provenance")
    return built.with_provenance(dataclasses.replace(built.provenance, **changes))


def _needed(delta: float | None, method: str) -> float:
    """The δ of a method that needs one (:func:`_validate` refused a missing δ for all but exact)."""
    if delta is None:
        raise QuasieqError(f"method {method!r} needs delta, the measure it may disagree on")
    return float(delta)


def _transform(
    form: str,
    net: ReluNet,
    box: Box,
    delta: float | None,
    method: str | None,
    task: str,
    merge: bool,
    max_simplices: int | None,
    cx: RegionComplex | None,
    max_bytes: int | None,
    export_dtype: str | None,
) -> ReluNet:
    method = default_method(task) if method is None else method
    _validate(net, box, delta, method, task, max_simplices)
    frame = UnitFrame.of(box)
    if not frame.is_identity:  # build on [0, 1]^D with δ/J, then fold the inverse map in (unit_box.py)
        # the engine's own unit-box complex, else the regions of the folded net (a loaded complex)
        unit_cx = None
        if cx is not None:
            unit_cx = cx.unit if cx.unit is not None else regions(frame.fold(cx.net), frame.unit_box)
        unit_delta = None if delta is None else float(delta) / frame.jacobian
        built = _transform(form, frame.fold(net), frame.unit_box, unit_delta, method, task, merge,
                           max_simplices, unit_cx, max_bytes, export_dtype)
        return frame.built_on_box(built, None if delta is None else float(delta))
    if method == "demorgan":
        if cx is not None:
            raise QuasieqError(
                "cx: method='demorgan' refines the regions by the argmax itself; to reuse work call "
                "construct.demorgan.label_regions once and demorgan_wide / demorgan_deep"
            )
        try:
            rules = label_regions(net, box, merge=merge)
        except SingleClass as one:
            warnings.warn(f"{one}: its {form} form is the constant classifier giving class {one.label} (exact)",
                          stacklevel=3)
            return constant_classifier(net, box, one.label, one.classes, _needed(delta, method))
        _too_many(rules.n, max_simplices, "simplices")
        return (demorgan_wide if form == "wide" else demorgan_deep)(rules, _needed(delta, method))
    if method == "logits":
        built = _transform(form, net, box, delta, "compact", task, merge, max_simplices, cx, max_bytes, export_dtype)
        return _changed(as_scores(built), method="logits")
    if cx is None:
        cx = _regions_for(net, box, max_simplices)
    if net.in_dim == 1:
        return _univariate(cx, delta, task, form, max_simplices)
    if method == "exact":
        # the direct chain: width D + 1 + K, depth w + 1
        if form == "deep" and net.hidden_layers == 1 and not net.has_linear_units:
            built = onelayer_deep(net, box)
        else:
            built = (lattice_wide if form == "wide" else lattice_deep)(cx)
        scores = as_scores(built) if task == "classification" else built
        return _changed(scores, task=task, delta=None if delta is None else float(delta))
    measure = _needed(delta, method)
    sc = triangulate(cx, merge=merge)
    _too_many(sc.M, max_simplices, "simplices")
    check_size(estimate(form, method, sc.M, sc.D, sc.K), form, method, sc.M, max_bytes)
    if method == "compact":
        _check_writable(weight_floor(sc, measure), measure, export_dtype)
        build: Callable[..., ReluNet] = compact_wide if form == "wide" else compact_deep
        return build(sc, measure, task=task)
    # imported here: construct.paper is an optional sibling module built on the same simplices
    from quasieq.construct.paper import paper_deep, paper_wide

    built = (paper_wide if form == "wide" else paper_deep)(sc, box, measure)
    return built if built.provenance is not None and built.provenance.task == task else _changed(built, task=task)


def to_wide(
    net: ReluNet,
    box: Box,
    delta: float | None = None,
    *,
    method: str | None = None,
    task: str = "regression",
    merge: bool = True,
    max_simplices: int | None = None,
    cx: RegionComplex | None = None,
    max_bytes: int | None = DEFAULT_MAX_FORM_BYTES,
    export_dtype: str | None = "float32",
) -> ReluNet:
    """A wide, shallow net equal to ``net`` on ``box`` except on a set of measure < ``delta``.

    D = 1: exact (Theorem 9), one hidden layer. D ≥ 2, ``method="compact"``: two hidden layers of
    width max(D + (D+1)M, (K+1)M), M the number of simplices; ``method="paper"``: the paper's
    modules side by side. ``merge`` merges equal-map neighbouring regions before triangulating;
    ``max_simplices`` refuses nets needing more simplices (QuasieqError; without ``cx`` it also stops
    the enumeration once more regions than that exist, each region being at least one simplex);
    ``max_bytes`` refuses, before building, a compact or paper form whose build would take more
    memory (construct/sizes.py; None: no limit); ``export_dtype`` ("float32", the ONNX export's
    default, "float64" or None) refuses, before building, a compact form whose weights would not be
    finite in that precision; ``cx`` reuses a region
    complex already computed for (net, box). ``method`` defaults to ``"compact"`` for regression and
    ``"demorgan"`` for ``task="classification"`` (see the module docstring; ``"logits"`` is C1).
    ``result.provenance`` records M, sizes, Table 1's
    sizes, the analytic error bound and the largest |weight|.

    Example
    -------
    >>> wide = qe.to_wide(net, qe.Box.cube(2), delta=1e-3)                 # doctest: +SKIP
    >>> wide.provenance.error_bound < 1e-3                                   # doctest: +SKIP
    True
    """
    return _transform("wide", net, box, delta, method, task, merge, max_simplices, cx, max_bytes, export_dtype)


def to_deep(
    net: ReluNet,
    box: Box,
    delta: float | None = None,
    *,
    method: str | None = None,
    task: str = "regression",
    merge: bool = True,
    max_simplices: int | None = None,
    cx: RegionComplex | None = None,
    max_bytes: int | None = DEFAULT_MAX_FORM_BYTES,
    export_dtype: str | None = "float32",
) -> ReluNet:
    """A deep, narrow net equal to ``net`` on ``box`` except on a set of measure < ``delta``.

    D = 1: exact (Theorem 9), a chain of width K + 2 and (breakpoints + 1) hidden layers. D ≥ 2,
    ``method="compact"``: strictly feedforward, width 2D + 2K + 2, 2M + 1 hidden layers;
    ``method="paper"``: the paper's modules in series. Other arguments as in :func:`to_wide`.

    Example
    -------
    >>> deep = qe.to_deep(net, qe.Box.cube(2), delta=1e-3)                 # doctest: +SKIP
    >>> deep.width, deep.hidden_layers == 2 * deep.provenance.details["simplices"] + 1  # doctest: +SKIP
    (8, True)
    """
    return _transform("deep", net, box, delta, method, task, merge, max_simplices, cx, max_bytes, export_dtype)


__all__ = ["to_wide", "to_deep"]
