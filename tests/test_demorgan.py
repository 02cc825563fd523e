"""Classification as a De Morgan law (paper_notes §2.1, §2.7 C2; oracle 4 of paper_notes §6).

Oracles: the source net's forward pass and argmax (labels), barycentric coordinates of each simplex
recomputed here by a plain linear solve (exact rule indicators 1_{S_i} and the strips), the budget
formula for ε recomputed from those coordinates, Monte-Carlo counts with a Clopper–Pearson interval,
dense grids for the 1-D intervals, and the size formulas of the module docstrings.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

import quasieq as qe
from quasieq.construct.compact import DELTA_SHARE
from quasieq.construct.demorgan import as_scores, demorgan_deep, demorgan_wide, label_regions
from quasieq.construct.intervals import intervals_deep, intervals_wide
from quasieq.errors import QuasieqError
from quasieq.net import Table1, class_labels
from quasieq.verify.compare import clopper_pearson
from quasieq.verify.data import check_in_box, data_agreement, data_box, load_dataset


def _classifier(arch: tuple[int, ...], seed: int) -> qe.ReluNet:
    """The first seeded random net (from ``seed`` on) whose labels on [-1, 1]^D use every class, each
    on at least 15% of the box (a single logit has two classes)."""
    K = max(2, arch[-1])
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        net = qe.ReluNet(
            [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in pairwise(arch)],
            [rng.normal(size=o) * 0.3 for o in arch[1:]],
        )
        counts = np.bincount(class_labels(net(qe.Box.cube(arch[0]).sample(4000, rng))), minlength=K)
        if counts.min() >= 0.15 * counts.sum():
            return net
    raise AssertionError("no balanced classifier found")


def _barycentric(V: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit facet distances ℓ̂ (N, D+1), gradient norms ‖∇λ_j‖ (D+1,)) of simplex V (D+1, D)."""
    D = V.shape[1]
    T = np.vstack([V.T, np.ones(D + 1)])
    Tinv = np.linalg.inv(T)
    lam = (Tinv @ np.vstack([X.T, np.ones(len(X))])).T
    norms = np.linalg.norm(Tinv[:, :D], axis=1)
    return lam / norms, norms


def _rule_geometry(rules, delta: float, X: np.ndarray):
    """Exact indicators 1_{S_i}(x) (N, n), strip membership (N, n) and the bound, from scratch."""
    sc = rules.simplices
    D = sc.D
    inside, dist, radii, vols = [], [], [], []
    for V in sc.vertices:
        ell, norms = _barycentric(V, X)
        dist.append(ell.min(axis=1))
        radii.append(1.0 / norms.sum())
        vols.append(abs(np.linalg.det(V[1:] - V[0])) / np.prod(np.arange(1, D + 1)))
    dist, radii, vols = np.array(dist).T, np.array(radii), np.array(vols)
    budget = DELTA_SHARE * delta - sc.dropped_volume
    eps = radii * ((1 + budget / (sc.M * vols)) ** (1 / D) - 1)
    bound = float(np.sum(((1 + eps / radii) ** D - 1) * vols) + sc.dropped_volume)
    inside = dist >= 0
    strip = (dist < 0) & (dist >= -eps)
    # points within rounding of a facet or of a strip's outer boundary are left out of exact checks
    near = (np.abs(dist) < 1e-9) | (np.abs(dist + eps) < 1e-9)
    return inside, strip, near.any(axis=1), bound


# ----- labels, ties, label regions ----------------------------------------------------------------
def test_ties_go_to_the_lowest_index_everywhere():
    """Logits (g, g, −g): class 0 where g ≥ 0 (the tie 0/1 goes to 0, never 1), class 2 where g < 0;
    a single logit h gives class 0 at h = 0. Rules, wide and deep follow the same rule."""
    g = _classifier((2, 6, 6, 1), seed=3)
    W, b = g.layers[-1]
    net = qe.ReluNet(list(g.weights[:-1]) + [np.vstack([W, W, -W])], list(g.biases[:-1]) + [np.r_[b, b, -b]])
    box = qe.Box.cube(2)
    rng = np.random.default_rng(0)
    X = box.sample(20000, rng)
    G = g(X)[:, 0]
    assert np.array_equal(class_labels(net(X)), np.where(G > 0, 0, np.where(G < 0, 2, 0)))
    rules = label_regions(net, box)
    assert rules.rules_per_class[1] == 0 and rules.label_regions[1] == 0
    delta = 1e-3 * box.volume
    for form in (demorgan_wide(rules, delta), demorgan_deep(rules, delta)):
        assert form.out_dim == 3
        assert np.mean(class_labels(form(X)) == 1) == 0.0
    # single logit: h = x_0 on the line x_0 = 0 is class 0, in the source and its two-score lift
    line = qe.ReluNet([np.array([[1.0, 0.0]])], [np.zeros(1)])
    P = np.column_stack([np.zeros(5), np.linspace(-1, 1, 5)])
    assert np.all(class_labels(line(P)) == 0) and np.all(class_labels(as_scores(line)(P)) == 0)
    assert np.array_equal(class_labels(as_scores(line)(X)), (X[:, 0] > 0).astype(int))


@pytest.mark.parametrize("arch", [(2, 8, 8, 3), (3, 5, 5, 1)])
def test_label_regions_are_label_constant_and_cover_the_box(arch):
    net = _classifier(arch, seed=10)
    box = qe.Box.cube(arch[0])
    rules = label_regions(net, box)
    sc = rules.simplices
    K = max(2, arch[-1])
    assert rules.classes == K and rules.rules_per_class.sum() == sc.M
    assert sc.volumes.sum() + sc.dropped_volume == pytest.approx(box.volume, rel=1e-9)
    rng = np.random.default_rng(1)
    for V, c in zip(sc.vertices, rules.labels, strict=True):  # points strictly inside each simplex carry its label
        lam = rng.dirichlet(np.ones(arch[0] + 1), size=50)
        assert np.all(class_labels(net(lam @ V)) == c)
    # volume per class against the Monte-Carlo share of each label (binomial 4σ)
    X = box.sample(40000, rng)
    share = np.bincount(class_labels(net(X)), minlength=K) / len(X)
    vol_share = np.bincount(rules.labels, weights=sc.volumes, minlength=K) / box.volume
    assert np.all(np.abs(share - vol_share) <= 4 * np.sqrt(share * (1 - share) / len(X)) + 1e-9)


# ----- the De Morgan forms ------------------------------------------------------------------------
@pytest.mark.parametrize("arch", [(2, 8, 8, 3), (2, 6, 6, 1)])
def test_de_morgan_identity_elementwise_off_the_strips(arch):
    """Wide: ¬A_i = 1 − v_i (its layer-2 units) equals 1 − 1_{S_i}; deep: its I units equal 1_{S_i};
    n_c − Σ_{i∈c} ¬A_i = Σ_{i∈c} I_i = one-hot of argmax h, off the strips."""
    net = _classifier(arch, seed=20)
    box = qe.Box.cube(2)
    delta = 0.02 * box.volume  # large, so that many samples fall in the strips
    rules = label_regions(net, box)
    wide, deep = demorgan_wide(rules, delta), demorgan_deep(rules, delta)
    X = box.sample(6000, np.random.default_rng(2))
    inside, strip, near, bound = _rule_geometry(rules, delta, X)
    off = ~strip.any(axis=1) & ~near
    assert strip.any(axis=1).sum() > 50  # the check below is not vacuous
    n, K = rules.n, rules.classes
    not_A = 1.0 - np.maximum(wide.pre_activations(X)[1], 0.0)  # (N, n)
    assert np.allclose(not_A[off], 1.0 - inside[off], atol=1e-6)
    Z = deep.pre_activations(X)  # I_i sits in hidden layer i + 1: unit 2D + 1, or unit 0 of the last layer
    I_deep = np.maximum(np.column_stack([z[:, 2 * 2 + 1] for z in Z[1:-1]] + [Z[-1][:, 0]]), 0.0)
    assert I_deep.shape[1] == n and np.allclose(I_deep[off], inside[off], atol=1e-6)
    n_c = rules.rules_per_class
    member = np.eye(K)[rules.labels]  # (n, K)
    lhs = n_c - (not_A @ member)
    union = inside.astype(float) @ member
    onehot = np.eye(K)[class_labels(net(X))]
    assert np.allclose(lhs[off], union[off], atol=1e-6) and np.allclose(union[off], onehot[off])
    assert np.allclose(wide(X)[off], onehot[off], atol=1e-6) and np.allclose(deep(X)[off], onehot[off], atol=1e-6)
    assert wide.provenance.error_bound == pytest.approx(bound, rel=1e-9)


@pytest.mark.parametrize(
    "arch,lo,hi", [((2, 8, 8, 3), [-1.0, -0.5], [1.0, 2.0]), ((3, 4, 4, 1), [-1.0] * 3, [1.0] * 3)]
)
def test_label_disagreement_below_delta_and_bound(arch, lo, hi):
    net = _classifier(arch, seed=30)
    box = qe.Box(lo, hi)
    delta = 1e-3 * box.volume
    source = as_scores(net)
    if arch[0] == 2:  # the public entry points, default method for classification
        forms = [qe.to_wide(net, box, delta, task="classification"), qe.to_deep(net, box, delta, task="classification")]
    else:
        rules = label_regions(net, box)
        forms = [demorgan_wide(rules, delta), demorgan_deep(rules, delta)]
    for form in forms:
        p = form.provenance
        assert p.method == "demorgan" and p.task == "classification" and form.out_dim == max(2, arch[-1])
        assert p.error_bound <= DELTA_SHARE * delta * (1 + 1e-9)
        rep = qe.compare(source, form, box, samples=30000, seed=5, task="classification")
        count = round(rep.label_disagreement_measure / box.volume * rep.samples)
        lo_ci, hi_ci = (v * box.volume for v in clopper_pearson(count, rep.samples))
        assert hi_ci < delta and lo_ci <= p.error_bound


@pytest.mark.parametrize("arch", [(2, 8, 8, 3), (3, 5, 5, 1)])
def test_sizes_equal_the_formulas(arch):
    net = _classifier(arch, seed=40)
    D, K = arch[0], max(2, arch[-1])
    rules = label_regions(net, qe.Box.cube(D))
    n = rules.n
    wide, deep = demorgan_wide(rules, 1e-3), demorgan_deep(rules, 1e-3)
    assert wide.widths == ((D + 1) * n, n) and wide.neurons == (D + 2) * n and wide.out_dim == K
    assert deep.hidden_layers == n + 1 and deep.width == 2 * D + K + 2 and deep.out_dim == K
    assert deep.widths == (2 * D + K + 2,) * n + (K + 1,)
    d = wide.provenance.details
    assert wide.provenance.simplices == n and d["rules_per_class"] == rules.rules_per_class.tolist()
    assert sum(d["rules_per_class"]) == n
    assert wide.provenance.table1 == Table1(width=D * D * (D + 1) * n, depth=D + 1)


def test_logits_method_is_c1_with_two_scores():
    net = _classifier((2, 6, 6, 1), seed=50)
    box = qe.Box.cube(2)
    delta = 1e-3 * box.volume
    built = qe.to_wide(net, box, delta, task="classification", method="logits")
    assert built.provenance.method == "logits" and built.out_dim == 2
    X = box.sample(20000, np.random.default_rng(3))
    assert np.mean(class_labels(built(X)) != class_labels(net(X))) * box.volume <= delta
    with pytest.raises(QuasieqError, match="classif"):
        qe.to_wide(net, box, delta, method="demorgan")
    with pytest.raises(QuasieqError, match="cx"):
        qe.to_deep(net, box, delta, task="classification", cx=qe.regions(net, box))


# ----- the 1-D motivating example ----------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_intervals_wide_and_deep_equal_the_indicator_off_the_ramps(seed):
    rng = np.random.default_rng(seed)
    n, delta = 5, 0.01
    ends = np.sort(rng.uniform(-4, 4, size=2 * n))
    iv = ends.reshape(n, 2)
    x = np.linspace(-6, 6, 300_001)
    dx = x[1] - x[0]
    indicator = ((x[:, None] >= iv[:, 0]) & (x[:, None] <= iv[:, 1])).any(axis=1).astype(float)
    rising = (x[:, None] >= iv[:, 0] - delta) & (x[:, None] < iv[:, 0])
    falling = (x[:, None] > iv[:, 1]) & (x[:, None] <= iv[:, 1] + delta)
    ramps = (rising | falling).any(axis=1)
    wide = intervals_wide(iv[rng.permutation(n)], delta)(x[:, None])[:, 0]
    deep = intervals_deep(iv, delta)(x[:, None])[:, 0]
    for y in (wide, deep):
        wrong = np.abs(y - indicator) > 1e-9
        assert np.all(~wrong | ramps)  # wrong only on the ramps
        assert wrong.sum() * dx <= 2 * n * delta + 2 * n * dx
    assert np.allclose(wide[~ramps], deep[~ramps], atol=1e-9)
    assert intervals_wide(iv, delta).widths == (2 * n, 2 * n) and intervals_deep(iv, delta).widths == (5,) * n + (2,)


def test_intervals_bad_input():
    with pytest.raises(QuasieqError, match="disjoint"):
        intervals_wide([(0, 2), (1, 3)], 0.1)
    with pytest.raises(QuasieqError, match="a < b"):
        intervals_deep([(1, 0)], 0.1)
    with pytest.raises(QuasieqError, match="delta"):
        intervals_deep([(0, 1)], 0.0)


# ----- data sets and bad input ----------------------------------------------------------------------
def test_data_agreement_counts_and_accuracies(tmp_path):
    net = _classifier((2, 6, 6, 3), seed=60)
    box = qe.Box.cube(2)
    wide = demorgan_wide(label_regions(net, box), 1e-3)
    rng = np.random.default_rng(4)
    X = box.sample(500, rng)
    y = rng.integers(0, 3, size=500)
    y[:2] = [0, 1]
    rep = data_agreement(net, wide, X, y, box=box)
    la, lb = np.argmax(net(X), axis=1), np.argmax(wide(X), axis=1)
    assert rep.disagreements == int(np.sum(la != lb)) and rep.samples == 500
    assert rep.accuracy_a == pytest.approx(np.mean(la == y)) and rep.accuracy_b == pytest.approx(np.mean(lb == y))
    assert rep.ci95[0] <= rep.disagreements / 500 <= rep.ci95[1]
    # files: npz (X, y) and csv (label last, with a header) round trip
    np.savez(tmp_path / "d.npz", X=X, y=y)
    Xn, yn = load_dataset(tmp_path / "d.npz")
    assert np.array_equal(Xn, X) and np.array_equal(yn, y)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", header="x0,x1,label", comments="")
    Xc, yc = load_dataset(tmp_path / "d.csv")
    assert np.allclose(Xc, X, rtol=1e-15) and np.array_equal(yc, y)
    assert np.array_equal(data_box(X).lo, X.min(axis=0))


def test_bad_input_is_refused_clearly(tmp_path):
    box = qe.Box.cube(2)
    constant = qe.ReluNet([np.zeros((1, 2))], [np.ones(1)])  # class 1 everywhere
    with pytest.raises(QuasieqError, match="no second class"):
        label_regions(constant, box)
    X = box.sample(20, np.random.default_rng(0))
    np.savez(tmp_path / "one.npz", X=X, y=np.zeros(20, dtype=int))
    with pytest.raises(QuasieqError, match="no second class"):
        load_dataset(tmp_path / "one.npz")
    np.savez(tmp_path / "noX.npz", data=X)
    with pytest.raises(QuasieqError, match="no array 'X'"):
        load_dataset(tmp_path / "noX.npz")
    three, two = _classifier((2, 6, 6, 3), seed=70), _classifier((2, 6, 6, 1), seed=70)
    with pytest.raises(QuasieqError, match="3 classes but b has 2"):
        data_agreement(three, two, X)
    assert data_agreement(two, as_scores(two), X).disagreements == 0  # one logit counts as two classes
    with pytest.raises(QuasieqError, match="labels go up to 3"):
        data_agreement(three, three, X, np.r_[np.zeros(19, dtype=int), 3])
    with pytest.raises(QuasieqError, match="excludes the data"):
        check_in_box(X + 5.0, box)
    with pytest.raises(QuasieqError, match="excludes the data"):
        data_agreement(three, three, X + 5.0, box=box)


def test_cli_compare_reports_label_agreement_on_a_data_set(tmp_path):
    """``quasieq compare A B --data FILE``: the agreement equals a direct count of equal argmax labels."""
    import json

    from typer.testing import CliRunner

    from quasieq.cli import app

    rng = np.random.default_rng(4)
    a = qe.ReluNet([rng.normal(size=(6, 2)), rng.normal(size=(3, 6))], [rng.normal(size=6), rng.normal(size=3)])
    b = qe.ReluNet([W * 1.05 for W in a.weights], a.biases)
    X = rng.uniform(-1, 1, size=(500, 2))
    np.savez(tmp_path / "d.npz", X=X)
    qe.save(a, tmp_path / "a.npz")
    qe.save(b, tmp_path / "b.npz")
    out = tmp_path / "c.json"
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--box", "-1", "1",
                                      "--samples", "1000", "--data", str(tmp_path / "d.npz"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    same = np.count_nonzero(a.forward(X).argmax(axis=1) == b.forward(X).argmax(axis=1))
    assert json.loads(out.read_text())["data"]["agreement"] == same / len(X)


@pytest.mark.parametrize("form", ["wide", "deep"])
def test_a_classifier_with_one_class_on_the_box_becomes_the_constant_classifier(form):
    """h = x_0 + 2 x_1 + 5 > 0 on [-1, 1]^2: class 1 everywhere. The form is built (a warning says why)
    and its labels equal the net's on the whole box by the exact checker."""
    from quasieq.construct.demorgan import as_scores
    from quasieq.verify import exact_compare

    net = qe.ReluNet([np.eye(2), np.array([[1.0, 2.0]])], [np.zeros(2), np.array([5.0])])
    box = qe.Box.cube(2)
    with pytest.warns(UserWarning, match=r"gives class 1 on the whole box.*constant classifier giving class 1"):
        built = (qe.to_wide if form == "wide" else qe.to_deep)(net, box, 1e-3, task="classification")
    assert built.provenance.details["constant_class"] == 1 and built.provenance.error_bound == 0.0
    found = exact_compare(as_scores(net), built, box, task="classification")
    assert found.label_disagreement_measure == 0.0
