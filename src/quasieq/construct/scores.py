"""Class scores: a classifier as K ≥ 2 scores whose argmax is its label (what every classifier quasieq
builds or exports outputs)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from quasieq.net import ReluNet


def as_scores(net: ReluNet) -> ReluNet:
    """``net`` with K ≥ 2 class scores whose argmax (lowest index on ties) is its label.

    A single-logit net h becomes (0, h): argmax is 1 exactly when h > 0. Nets with K ≥ 2 are returned
    unchanged. The provenance is kept.
    """
    if net.out_dim >= 2:
        return net
    W, b = net.layers[-1]
    zero = sp.csr_matrix((1, W.shape[1])) if sp.issparse(W) else np.zeros((1, W.shape[1]))
    W2 = sp.vstack([zero, W], format="csr") if sp.issparse(W) else np.vstack([zero, W])
    return ReluNet(list(net.weights[:-1]) + [W2], list(net.biases[:-1]) + [np.concatenate([[0.0], b])], net.provenance,
                   relu_masks=net.relu_masks)
