"""Classification as a data-driven De Morgan law (paper_notes §2.7, option C2).

**Labels.** A net with K ≥ 2 outputs labels x by argmax_c h_c(x), ties going to the *lowest* index
(numpy's argmax); a single-logit net labels x by [h(x) > 0], which is the argmax of the two scores
(0, h) under the same tie rule (h = 0 gives class 0); ``ReluNet.labels`` (``net.class_labels`` on outputs)
implements both. :func:`as_scores` makes that lift, so every classifier quasieq exports has K ≥ 2 scores
whose argmax is the label.

**Rules.** The decision regions are unions of polytopes. Appending one hidden layer of the pairwise
differences d_ck = h_c − h_k (c < k) to the net, the regions of the extended net are the activation
regions refined by the signs of all d_ck, on each of which the label is constant (it is read at the
region's interior point). Neighbouring regions of the same label are merged while their union stays
convex (``triangulate(merge=True)`` on the complex whose maps are the one-hot labels), then
triangulated: labelled simplices (S_i, c_i), i = 1..n, with n_c of class c. Rule A_i ≡ [x ∈ S_i].

**Soft rules.** With the unit facet functions ℓ̂_j^{(i)} of S_i (positive inside) and κ_i = 1/ε_i,

    U_i = Σ_j σ(−ℓ̂_j^{(i)}(x)),    I_i = σ(1 − κ_i U_i),    ¬A_i = 1 − I_i = min(1, κ_i U_i).

U_i = 0 on S_i and U_i ≥ ε_i off S_i^{ε_i} = {ℓ̂_j ≥ −ε_i ∀j}, so I_i = 1_{S_i} off the strip
S_i^{ε_i} \\ S_i, of measure ((1 + ε_i/r_i)^D − 1)·vol(S_i) (r_i the inradius). ε_i comes from the
budget of ``construct.compact`` (each strip gets (DELTA_SHARE·δ − dropped sliver volume)/n), so the
analytic bound Σ_i strip + dropped ≤ DELTA_SHARE·δ < δ.

**Wide form (right-hand side of De Morgan).** For disjoint rules at most one A_i holds, so
∧_{i∈c} ¬A_i = Σ_{i∈c} ¬A_i − (n_c − 1) and

    score_c = ¬(∧_{i∈c} ¬A_i) = n_c − Σ_{i∈c} ¬A_i(x).

Layer 1: the (D+1)n units σ(−ℓ̂_j^{(i)}); layer 2: the n units v_i = σ(1 − κ_i U_i) (so ¬A_i = 1 − v_i);
output score_c = n_c − Σ_{i∈c} (1 − v_i) (stored folded: weight 1 on v_i, bias n_c − n_c = 0). Width
(D+1)n, 2 hidden layers, (D+2)n neurons.

**Deep form (left-hand side).** The union A_1 ∨ … ∨ A_n as a chain: the input is carried as
ω = σ(x − lo) = x − lo (≥ 0 on the box, so ReLUs pass it exactly) and K accumulators P ≥ 0 collect
P_{c_i} += I_i. The chain is pipelined: hidden layer l (l = 0..n−1) holds

    [u^{(l)} (D+1) = σ(−ℓ̂^{(l)}(ω + lo)) | ω (D) | I_{l−1} = σ(1 − κ_{l−1} Σ u^{(l−1)}) | P (K)],

where P in layer l already holds I_0 … I_{l−2}; hidden layer n is [I_{n−1} | P], and the linear output
is score_c = P_c + [c = c_{n−1}] I_{n−1} = Σ_{i∈c} I_i. Width 2D + K + 2, n + 1 hidden layers (the
paper's chain, 2n + 1 layers, spends a separate layer on each I_i; the rules are disjoint, so no
masking of claimed inputs is needed). The intervals example (``construct.intervals``) uses the same chain.

Off ∪_i (S_i^{ε_i} \\ S_i) ∪ (dropped slivers), exactly one I_i is 1 and the others 0, so both forms
output the one-hot vector of h's label: the label-disagreement measure is ≤ the analytic bound < δ.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from quasieq.box import Box
from quasieq.construct.compact import (
    budget_epsilons,
    layers_from_pattern,
    sparse_from_triplets,
    strip_bound,
    strip_budget,
)
from quasieq.construct.job import Job, provenance, table1_sizes
from quasieq.construct.scores import as_scores
from quasieq.errors import QuasieqError
from quasieq.geometry.simplices import SimplexComplex, triangulate
from quasieq.net import Provenance, ReluNet
from quasieq.regions.enumerate import regions


# ----- labels ----------------------------------------------------------------------------------
def _argmax_net(scores: ReluNet) -> ReluNet:
    """The hidden layers of ``scores``, then one hidden layer of the pairwise differences h_c − h_k
    (c < k), then a zero output: its activation regions are the label-constant refinement."""
    K = scores.out_dim
    c, k = np.triu_indices(K, 1)
    pair_rows = np.r_[np.arange(len(c)), np.arange(len(c))]
    pairs = sp.csr_matrix(
        (np.r_[np.ones(len(c)), -np.ones(len(c))], (pair_rows, np.r_[c, k])), shape=(len(c), K)
    )
    W, b = scores.layers[-1]
    Wd = pairs @ W
    return ReluNet(
        list(scores.weights[:-1]) + [Wd, np.zeros((1, len(c)))],
        list(scores.biases[:-1]) + [pairs @ b, np.zeros(1)],
        relu_masks=[*scores.relu_masks, np.ones(len(c), dtype=bool)],
    )


@dataclass(frozen=True, eq=False)
class LabelledSimplices:
    """The rules of a classifier on a box: simplices S_i with labels c_i.

    simplices : SimplexComplex whose map on S_i is the constant one-hot vector of c_i (A = 0,
        b = e_{c_i}), so ``simplices.evaluate`` is the label's one-hot vector.
    labels : (n,) class of each simplex.
    classes : K ≥ 2 (a single-logit source has K = 2).
    label_regions : (K,) label-constant regions per class (the argmax-refined activation regions,
        before merging).
    """

    simplices: SimplexComplex
    labels: np.ndarray
    classes: int
    label_regions: np.ndarray

    @property
    def n(self) -> int:
        return self.simplices.M

    @property
    def rules_per_class(self) -> np.ndarray:
        """n_c: number of simplices (rules) of each class, (K,)."""
        return np.bincount(self.labels, minlength=self.classes)


def label_regions(net: ReluNet, box: Box, *, merge: bool = True, max_regions: int | None = None) -> LabelledSimplices:
    """Refine the activation regions of ``net`` on ``box`` by the argmax and triangulate them.

    Raises :class:`SingleClass` when the net gives one label on the whole box (no second class to
    separate; :func:`constant_classifier` is then its exact wide and deep form).

    Example
    -------
    >>> rules = label_regions(net, qe.Box.cube(2))          # doctest: +SKIP
    >>> rules.rules_per_class, rules.label_regions           # doctest: +SKIP
    """
    box.check_net(net)
    scores = as_scores(net)
    K, D = scores.out_dim, box.dim
    cx = regions(_argmax_net(scores), box, max_regions=max_regions)
    label = scores.labels(cx.interior_points)
    per_class = np.bincount(label, minlength=K)
    if np.count_nonzero(per_class) < 2:
        raise SingleClass(int(label[0]), K)
    onehot = copy.copy(cx)  # same regions and neighbours, maps replaced by the constant one-hot labels
    onehot.A = np.zeros((len(cx), K, D))
    onehot.b = np.eye(K)[label]
    sc = triangulate(onehot, merge=merge)
    return LabelledSimplices(sc, sc.b.argmax(axis=1).astype(np.int64), K, per_class)


class SingleClass(QuasieqError):
    """The classifier gives one class on the whole box: there are no rules to build."""

    def __init__(self, label: int, classes: int) -> None:
        super().__init__(f"the classifier gives class {label} on the whole box: there is no second class to separate")
        self.label, self.classes = label, classes


def constant_classifier(net: ReluNet, box: Box, label: int, classes: int, delta: float) -> ReluNet:
    """The classifier that gives ``label`` everywhere — the exact wide and deep form of a net that gives
    one class on the whole box: one dead hidden unit (σ(0·x) = 0), output scores the one-hot of
    ``label`` (K = ``classes`` ≥ 2), so its labels equal the net's on the whole box (error bound 0)."""
    built = ReluNet([np.zeros((1, box.dim)), np.zeros((classes, 1))], [np.zeros(1), np.eye(classes)[label]])
    return built.with_provenance(provenance(
        "demorgan", box, task="classification", delta=delta, error_bound=0.0, max_abs_weight=1.0, simplices=0,
        details={"classes": classes, "constant_class": label},
    ))


# ----- the two forms -----------------------------------------------------------------------------
def rules_wide(G: np.ndarray, g0: np.ndarray, kappa: np.ndarray, labels: np.ndarray, K: int) -> ReluNet:
    """score_c = n_c − Σ_{i∈c} ¬A_i, ¬A_i = 1 − σ(1 − κ_i Σ_j σ(−(G_ij·x + g0_ij))): 2 hidden layers.

    G (n, D+1, D), g0 (n, D+1): unit facet functions of the n rules; kappa (n,); labels (n,) in 0..K−1.
    """
    n, J, D = G.shape
    W1 = sparse_from_triplets(np.repeat(np.arange(n * J), D), np.tile(np.arange(D), n * J), -G.reshape(-1), (n * J, D))
    W2 = sparse_from_triplets(np.repeat(np.arange(n), J), np.arange(n * J), np.repeat(-kappa, J), (n, n * J))
    W3 = sparse_from_triplets(labels, np.arange(n), np.ones(n), (K, n))
    n_c = np.bincount(labels, minlength=K).astype(np.float64)
    # n_c − Σ_{i∈c} (1 − v_i): weight +1 on every v_i of class c, constant n_c − n_c
    return ReluNet([W1, W2, W3], [-g0.reshape(-1), np.ones(n), n_c - n_c])


def rules_deep(G: np.ndarray, g0: np.ndarray, kappa: np.ndarray, labels: np.ndarray, K: int, lo: np.ndarray) -> ReluNet:
    """score_c = Σ_{i∈c} I_i as a pipelined chain (module docstring): width 2D + K + 2, n + 1 hidden
    layers. Exact for inputs x ≥ lo (coordinate-wise); for other x the chain sees max(x, lo)."""
    n, J, D = G.shape
    lo = np.asarray(lo, dtype=np.float64)
    g0w = g0 + np.einsum("njd,d->nj", G, lo)  # ℓ̂ in ω = x − lo coordinates
    # unit layout [u (J) | ω (D) | I (the unit at index ind) | P (K)]
    u, w, ind, P = np.arange(J), J + np.arange(D), J + D, J + D + 1 + np.arange(K)
    width = J + D + 1 + K
    # layer l ≥ 1 from layer l−1: u ← −G_l ω − g0w_l; ω ← ω; I ← 1 − κ_{l−1} Σ u; P_k ← P_k + [k = c_{l−2}] I
    rows = np.concatenate([np.repeat(u, D), w, np.full(J, ind), P, P])
    cols = np.concatenate([np.tile(w, J), w, u, P, np.full(K, ind)])
    add = np.zeros((n, K))
    add[np.arange(2, n), labels[: n - 2]] = 1.0
    data = np.concatenate([
        -G.reshape(n, J * D), np.ones((n, D)), -np.repeat(np.roll(kappa, 1)[:, None], J, axis=1), np.ones((n, K)), add,
    ], axis=1)
    W_chain = layers_from_pattern(data[1:], rows, cols, (width, width))
    b_chain = np.zeros((n, width))
    b_chain[:, u] = -g0w
    b_chain[:, ind] = 1.0
    # layer 0 from x: u ← −G_0 x − g0_0, ω ← x − lo, I = P = 0
    first = sparse_from_triplets(
        np.concatenate([np.repeat(u, D), w]), np.concatenate([np.tile(np.arange(D), J), np.arange(D)]),
        np.concatenate([-G[0].reshape(-1), np.ones(D)]), (width, D),
    )
    b_chain[0, u] = -g0[0]
    b_chain[0, w] = -lo
    b_chain[0, ind] = 0.0
    # last hidden layer [I_{n−1} | P] and the linear output (for n = 1 the I read from layer 0 is 0)
    c_prev = int(labels[n - 2]) if n >= 2 else 0
    last = sparse_from_triplets(
        np.concatenate([np.zeros(J, dtype=np.int64), 1 + np.arange(K), [1 + c_prev]]),
        np.concatenate([u, P, [ind]]),
        np.concatenate([-np.full(J, kappa[n - 1]), np.ones(K), [1.0]]),
        (K + 1, width),
    )
    out = sparse_from_triplets(
        np.r_[np.arange(K), labels[n - 1]], np.r_[1 + np.arange(K), 0], np.ones(K + 1), (K, K + 1)
    )
    weights = [first] + W_chain + [last, out]
    biases = list(b_chain) + [np.r_[1.0, np.zeros(K)], np.zeros(K)]
    return ReluNet(weights, biases)


def _epsilons(rules: LabelledSimplices, delta: float) -> np.ndarray:
    """ε_i from the compact budget: every strip gets (DELTA_SHARE·δ − dropped volume)/n."""
    return budget_epsilons(rules.simplices, strip_budget(rules.simplices, delta))


def _provenance(form: str, rules: LabelledSimplices, net: ReluNet, delta: float, eps: np.ndarray) -> Provenance:
    sc = rules.simplices
    return provenance(
        "demorgan", sc.box, task="classification", delta=delta, error_bound=strip_bound(sc, eps),
        max_abs_weight=net.max_abs_weight(), simplices=sc.M, table1=table1_sizes(form, sc.D, rules.n),
        details={
            "classes": rules.classes,
            "rules_per_class": rules.rules_per_class.tolist(),
            "label_regions_per_class": rules.label_regions.tolist(),
            "dropped_simplices": sc.dropped,
            "merged_regions": sc.merged_regions,
            "epsilon_min": float(eps.min()),
            "epsilon_max": float(eps.max()),
            "kappa_max": float(1.0 / eps.min()),
        },
    )


def demorgan_wide(rules: LabelledSimplices, delta: float) -> ReluNet:
    """Wide De Morgan classifier (right-hand side): K scores, 2 hidden layers, width (D+1)n; the
    label differs from the source's on a set of measure ≤ ``provenance.error_bound`` < δ.

    Example
    -------
    >>> wide = demorgan_wide(label_regions(net, box), 1e-3)       # doctest: +SKIP
    >>> wide.hidden_layers, wide.out_dim >= 2                      # doctest: +SKIP
    (2, True)
    """
    eps = _epsilons(rules, delta)
    G, g0 = rules.simplices.unit_facets()
    net = rules_wide(G, g0, 1.0 / eps, rules.labels, rules.classes)
    return net.with_provenance(_provenance("wide", rules, net, delta, eps))


def demorgan_deep(rules: LabelledSimplices, delta: float) -> ReluNet:
    """Deep De Morgan classifier (left-hand side): K scores, width 2D + K + 2, n + 1 hidden layers;
    label disagreement ≤ ``provenance.error_bound`` < δ.

    Example
    -------
    >>> deep = demorgan_deep(label_regions(net, box), 1e-3)       # doctest: +SKIP
    >>> deep.width == 2 * box.dim + deep.out_dim + 2               # doctest: +SKIP
    True
    """
    eps = _epsilons(rules, delta)
    sc = rules.simplices
    G, g0 = sc.unit_facets()
    net = rules_deep(G, g0, 1.0 / eps, rules.labels, rules.classes, sc.box.lo)
    return net.with_provenance(_provenance("deep", rules, net, delta, eps))


def build(form: str, job: Job) -> ReluNet:
    """``method="demorgan"`` (registry): the label regions (the regions refined by the argmax itself, so a
    given complex is refused), then the ``form``'s De Morgan rules; the constant classifier, with a
    warning, when the net gives one class on the whole box."""
    if job.cx is not None:
        raise QuasieqError(
            "cx: method='demorgan' refines the regions by the argmax itself; to reuse work call "
            "construct.demorgan.label_regions once and demorgan_wide / demorgan_deep"
        )
    delta = job.measure("demorgan")
    try:
        rules = label_regions(job.net, job.box, merge=job.merge)
    except SingleClass as one:
        warnings.warn(f"{one}: its {form} form is the constant classifier giving class {one.label} (exact)",
                      stacklevel=4)
        return constant_classifier(job.net, job.box, one.label, one.classes, delta)
    job.too_many(rules.n, "simplices")
    return (demorgan_wide if form == "wide" else demorgan_deep)(rules, delta)


__all__ = [
    "as_scores", "LabelledSimplices", "label_regions", "rules_wide", "rules_deep",
    "demorgan_wide", "demorgan_deep",
]
