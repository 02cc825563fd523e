"""``method="logits"``: a classifier rebuilt through its logits (paper_notes §2.7, option C1).

The logits are rebuilt by the compact construction (``construct.compact``), then lifted to K ≥ 2 class
scores (``construct.scores.as_scores``), so the labels differ at most where the logits do: the compact
bound on the logits bounds the label disagreement.
"""

from __future__ import annotations

import dataclasses

from quasieq.construct import compact
from quasieq.construct.job import Job
from quasieq.construct.scores import as_scores
from quasieq.net import ReluNet, provenance_of


def build(form: str, job: Job) -> ReluNet:
    """The compact ``form`` of the logits as class scores, recorded as ``method="logits"``."""
    built = as_scores(compact.build(form, job))
    return built.with_provenance(dataclasses.replace(provenance_of(built), method="logits"))
