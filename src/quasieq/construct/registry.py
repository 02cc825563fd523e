"""The constructions, one registry line each; the library's ``method=``, the CLI's ``--method`` (its
metavar and help) and the validation of the arguments every construction shares (method, task, δ),
used by the library and the CLI alike, live here.

Light on purpose: importing it builds nothing and loads no construction. A construction is a module
with one function ``build(form: str, job: Job) -> ReluNet`` (``construct.job``), ``form`` being
``"wide"`` or ``"deep"``; :func:`builder` imports it on first use. Adding a construction is one new
module plus one line in :data:`CONSTRUCTIONS` (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quasieq.errors import QuasieqError

if TYPE_CHECKING:  # annotations only: the IR and the job load with the builders
    from quasieq.construct.job import Job
    from quasieq.net import ReluNet

#: The two forms every construction builds.
FORMS = ("wide", "deep")
#: What must agree: the outputs (regression) or the labels (classification).
TASKS = ("regression", "classification")


@dataclass(frozen=True)
class Construction:
    """One ``method=``: its name, the line ``--help`` shows, the module holding its ``build``, whether it
    needs δ (the measure it may disagree on), whether it builds classifiers only and whether it can
    reuse a region complex of the net (``job.cx``) or must refine the regions itself."""

    name: str
    summary: str
    module: str
    needs_delta: bool = True
    classification_only: bool = False
    reuses_regions: bool = True


CONSTRUCTIONS: dict[str, Construction] = {c.name: c for c in (
    Construction("compact", "triangulate the regions, then the compact strip construction (Table 1 sizes or "
                 "smaller)", "quasieq.construct.compact"),
    Construction("paper", "triangulate the regions, then the paper's fan modules with the gate fix",
                 "quasieq.construct.paper"),
    Construction("exact", "the max–min lattice form of the regions: zero error, no δ",
                 "quasieq.construct.lattice", needs_delta=False),
    Construction("logits", "classification: rebuild the logits with the compact construction",
                 "quasieq.construct.logits", classification_only=True),
    Construction("demorgan", "classification: labelled simplices as De Morgan rules",
                 "quasieq.construct.demorgan", classification_only=True, reuses_regions=False),
)}

#: ``method=`` values of ``to_wide`` / ``to_deep`` and what each builds (D ≥ 2; D = 1 is always exact).
METHODS = {name: c.summary for name, c in CONSTRUCTIONS.items()}
#: The methods that build classifiers (``task="classification"`` only).
CLASSIFICATION_METHODS = tuple(name for name, c in CONSTRUCTIONS.items() if c.classification_only)


def default_method(task: str) -> str:
    """``demorgan`` for classification, ``compact`` otherwise."""
    return "demorgan" if task == "classification" else "compact"


def check_method(method: str | None, task: str, *, option: str = "method", task_option: str = "task") -> str:
    """``method`` (None: the task's default) checked against the registry and the task; messages name
    the arguments ``option`` and ``task_option`` (the CLI passes ``--method`` and ``--task``)."""
    if task not in TASKS:
        raise QuasieqError(f"unknown {task_option} {task!r}: choose one of {', '.join(TASKS)}")
    method = default_method(task) if method is None else method
    if method not in CONSTRUCTIONS:
        raise QuasieqError(f"unknown {option} {method!r}: choose one of {', '.join(CONSTRUCTIONS)}")
    if CONSTRUCTIONS[method].classification_only and task != "classification":
        raise QuasieqError(f"{option} {method} builds classifiers: use it with {task_option} classification")
    return method


def check_delta(delta: Any, option: str = "delta") -> float:
    """δ is an absolute Lebesgue measure on the box: positive and finite; returned as a float."""
    try:
        value = float(delta)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0.0):
        raise QuasieqError(f"{option} {delta!r}: δ must be a positive finite measure (absolute, on the box)")
    return value


def builder(method: str) -> Callable[[str, Job], ReluNet]:
    """The ``build(form, job)`` of ``method`` (its module imported on first use)."""
    return importlib.import_module(CONSTRUCTIONS[method].module).build
