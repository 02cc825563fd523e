"""The names of the constructions and tasks, in one place (the library, the CLI's ``--method`` and
``--task`` and their help read them here). Light on purpose: importing it builds nothing."""

from __future__ import annotations

#: ``method=`` values of ``to_wide`` / ``to_deep``, and what each builds (D ≥ 2; D = 1 is always exact).
METHODS = {
    "compact": "triangulate the regions, then the compact strip construction (Table 1 sizes or smaller)",
    "paper": "triangulate the regions, then the paper's fan modules with the gate fix",
    "exact": "the max–min lattice form of the regions: zero error",
    "logits": "classification: rebuild the logits with the compact construction",
    "demorgan": "classification: labelled simplices as De Morgan rules",
}
#: The methods that build classifiers (``task="classification"`` only).
CLASSIFICATION_METHODS = ("logits", "demorgan")
#: What must agree: the outputs (regression) or the labels (classification).
TASKS = ("regression", "classification")


def default_method(task: str) -> str:
    """``demorgan`` for classification, ``compact`` otherwise."""
    return "demorgan" if task == "classification" else "compact"
