"""Public entry points ``to_wide`` / ``to_deep``: a ReLU net → its wide or deep (quasi-)equivalent.

The arguments are validated once (``construct.registry``), gathered into a ``construct.job.Job`` and
handed, on the unit box (``unit_box.py``), to the ``build(form, job)`` the registry names for
``method``. What the constructions do:

* D = 1: Theorem 9, exact (``construct.univariate``), whatever ``method`` says: the breakpoints of the
  1-D region complex give the wide form (one hidden layer) and the deep form (a width-(K+2) chain).
* D ≥ 2, ``method="exact"``: the max–min lattice form of the exact regions (``construct.lattice``),
  zero error, sizes in ``provenance.lattice`` (pieces q, affine functions k, Σ|S_i|, Chen et al.'s size).
* D ≥ 2: the regions are triangulated (``geometry.triangulate``) and rebuilt by
  ``method="compact"`` (paper_notes §2.6, ``construct.compact``) or ``method="paper"`` (the paper's fan
  modules with the gate fix, §2.3–2.5, ``construct.paper``).

``task="classification"``: ``method="demorgan"`` (the default) builds the rule/De Morgan forms of
paper_notes §2.7 C2 (``construct.demorgan``: label regions → labelled simplices → n_c − Σ¬A_i wide, the
chained union deep); ``method="logits"`` rebuilds the logits with the compact construction (option C1),
so the labels differ at most where the logits do. Both output K ≥ 2 class scores (a single-logit
source gets the scores (0, h), ``scores.as_scores``). ``compact`` and ``paper`` rebuild the logits as
they come.
"""

from __future__ import annotations

import dataclasses
from typing import TypedDict, Unpack

from quasieq.box import Box
from quasieq.construct.job import Job
from quasieq.construct.registry import CONSTRUCTIONS, builder, check_delta, check_method
from quasieq.construct.sizes import DEFAULT_MAX_FORM_BYTES
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.complex import RegionComplex
from quasieq.regions.enumerate import regions
from quasieq.unit_box import UnitFrame


def _validate(net: ReluNet, box: Box, delta: float | None, method: str, max_simplices: int | None) -> None:
    box.check_net(net)
    if delta is None:
        if CONSTRUCTIONS[method].needs_delta:
            without = ", ".join(f"method={name!r}" for name, c in CONSTRUCTIONS.items() if not c.needs_delta)
            raise QuasieqError(f"method {method!r} needs delta, the measure it may disagree on; "
                               f"only {without} builds without one")
    else:
        check_delta(delta)
    if max_simplices is not None and int(max_simplices) < 1:
        raise QuasieqError(f"max_simplices must be ≥ 1, got {max_simplices}")


def _transform(form: str, job: Job, method: str) -> ReluNet:
    """The ``form`` of ``job`` by ``method``: built on the unit box [0, 1]^D with δ/J and its inverse map
    folded in (unit_box.py) unless the box is already the unit box, by the registry's builder."""
    frame = UnitFrame.of(job.box)
    if frame.is_identity:
        return builder(method)(form, job)
    # the engine's own unit-box complex, else the regions of the folded net (a loaded complex)
    unit_cx = None
    if job.cx is not None:
        unit_cx = job.cx.unit if job.cx.unit is not None else regions(frame.fold(job.cx.net), frame.unit_box)
    unit_job = dataclasses.replace(
        job, net=frame.fold(job.net), box=frame.unit_box, cx=unit_cx,
        delta=None if job.delta is None else float(job.delta) / frame.jacobian,
    )
    return frame.built_on_box(builder(method)(form, unit_job), None if job.delta is None else float(job.delta))


class BuildOptions(TypedDict, total=False):
    """The keyword options of :func:`to_wide` and :func:`to_deep` (defaults in :func:`_request`)."""

    method: str | None
    task: str
    merge: bool
    max_simplices: int | None
    cx: RegionComplex | None
    max_bytes: int | None
    export_dtype: str | None


def _request(form: str, net: ReluNet, box: Box, delta: float | None, *, method: str | None = None,
             task: str = "regression", merge: bool = True, max_simplices: int | None = None,
             cx: RegionComplex | None = None, max_bytes: int | None = DEFAULT_MAX_FORM_BYTES,
             export_dtype: str | None = "float32") -> ReluNet:
    """:func:`to_wide` / :func:`to_deep` with their defaults: validate the arguments once, then build."""
    chosen = check_method(method, task)
    _validate(net, box, delta, chosen, max_simplices)
    job = Job(net, box, delta, task, merge, max_simplices, cx, max_bytes, export_dtype)
    return _transform(form, job, chosen)


def to_wide(net: ReluNet, box: Box, delta: float | None = None, **options: Unpack[BuildOptions]) -> ReluNet:
    """A wide, shallow net equal to ``net`` on ``box`` except on a set of measure < ``delta``.

    Keyword options (:class:`BuildOptions`): ``method=None``, ``task="regression"``, ``merge=True``,
    ``max_simplices=None``, ``cx=None``, ``max_bytes=DEFAULT_MAX_FORM_BYTES`` (2 GiB),
    ``export_dtype="float32"``.

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
    return _request("wide", net, box, delta, **options)


def to_deep(net: ReluNet, box: Box, delta: float | None = None, **options: Unpack[BuildOptions]) -> ReluNet:
    """A deep, narrow net equal to ``net`` on ``box`` except on a set of measure < ``delta``.

    D = 1: exact (Theorem 9), a chain of width K + 2 and (breakpoints + 1) hidden layers. D ≥ 2,
    ``method="compact"``: strictly feedforward, width 2D + 2K + 2, 2M + 1 hidden layers;
    ``method="paper"``: the paper's modules in series. Other arguments as in :func:`to_wide`.

    Example
    -------
    >>> deep = qe.to_deep(net, qe.Box.cube(2), delta=1e-3)                 # doctest: +SKIP
    >>> deep.width, deep.hidden_layers == 2 * deep.provenance.simplices + 1   # doctest: +SKIP
    (8, True)
    """
    return _request("deep", net, box, delta, **options)


__all__ = ["to_wide", "to_deep"]
