"""The paper's two experiments (paper_notes §4), reproduced in PyTorch.

* :mod:`quasieq.experiments.demorgan`: experiment 1, the eight De Morgan-equivalent networks on
  breast cancer, all (network, seed) pairs trained as one batched model.
* :mod:`quasieq.experiments.robustness`: experiment 2, wide vs deep quadratic feature extractors (and
  the deep-ReLU baseline) on t-SNE embeddings of deskewed digits, under FGSM, I-FGSM and DeepFool.
"""

from quasieq.experiments.demorgan import run_demorgan
from quasieq.experiments.robustness import run_robustness

__all__ = ["run_demorgan", "run_robustness"]
