"""``compare(..., exact=True)``: the exact checker built on the common refinement of two nets.

Oracles: closed forms derived by hand (a shifted bias, relu(x0) against relu(x0 − c), a single logit
against a shifted one); an independent LP computation — each net's regions by the brute-force LP search
of tests/oracles.py, every pair intersected, and the measure of {|d| > τ} or of the label disagreement
as volumes of the intersections cut by the corresponding half-spaces (qhull) — which never builds the
stacked net nor calls the region engine; the Monte-Carlo compare with a 99.9% Clopper–Pearson
interval; forward passes at the witness; the analytic error bound of the compact wide form.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.spatial import HalfspaceIntersection

import quasieq as qe
from conftest import random_net
from oracles import MIN_RADIUS, brute_force_regions, chebyshev, polytope_volume, seeded_relu_net
from quasieq import tolerances
from quasieq.net import class_labels
from quasieq.verify import clopper_pearson, compare, exact_compare

#: Relative agreement demanded between the exact measure and the LP/qhull oracle: both are sums of
#: float64 simplex volumes, accurate to ~1e-13 relative each.
ORACLE_RELATIVE = 1e-9


def _output_bound(net: qe.ReluNet, box: qe.Box) -> np.ndarray:
    """A crude bound on |layer values| on the box: |z_l| ≤ |W_l| |z_{l-1}| + |b_l|, |z_0| ≤ max(|lo|, |hi|)."""
    z = np.maximum(np.abs(box.lo), np.abs(box.hi))
    for W, b in net.layers:
        z = np.abs(W) @ z + np.abs(b)
    return z


def _deeper_copy(net: qe.ReluNet, box: qe.Box) -> qe.ReluNet:
    """The same function one hidden layer deeper: y ↦ relu(y + C) − C with y + C > 0 on the box."""
    C = _output_bound(net, box) + 1.0
    K = net.out_dim
    W_out, b_out = net.layers[-1]
    weights = [W for W, _ in net.layers[:-1]] + [W_out, np.eye(K)]
    biases = [b for _, b in net.layers[:-1]] + [b_out + C, -C]
    return qe.ReluNet(weights, biases)


def _shifted(net: qe.ReluNet, output: int, s: float) -> qe.ReluNet:
    biases = [b.copy() for b in net.biases]
    biases[-1][output] += s
    return qe.ReluNet(net.weights, biases)


@dataclass
class PairCell:
    """One cell of the common refinement computed by the oracle: {G x ≤ h} (unit rows), its vertices
    (qhull), its volume and both nets' affine maps on it."""

    G: np.ndarray
    h: np.ndarray
    vertices: np.ndarray
    volume: float
    A_a: np.ndarray
    b_a: np.ndarray
    A_b: np.ndarray
    b_b: np.ndarray


def _vertices(G: np.ndarray, h: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return HalfspaceIntersection(np.hstack([G, -h[:, None]]), centre).intersections


def _pair_cells(a: qe.ReluNet, b: qe.ReluNet, box: qe.Box) -> list[PairCell]:
    """Every full-dimensional intersection of a brute-force region of a with one of b (the common
    refinement, by LPs). A pair is skipped without an LP when a facet of q has every vertex of p on
    or beyond it (the two cannot share interior points), and taken whole when every vertex of p lies
    inside q (then p ⊂ q)."""
    ra = brute_force_regions(a, box.lo, box.hi, volumes=False)
    rb = brute_force_regions(b, box.lo, box.hi, volumes=False)
    guard = MIN_RADIUS * box.scale
    cells = []
    for p in ra:
        V = _vertices(p.G, p.h, p.center)
        for q in rb:
            slack = q.h - V @ q.G.T
            if np.any(np.all(slack <= guard, axis=0)):
                continue
            G, h = np.vstack([p.G, q.G]), np.concatenate([p.h, q.h])
            if np.all(slack >= -guard):
                cells.append(PairCell(G, h, V, polytope_volume(p.G, p.h, p.center), p.A, p.b, q.A, q.b))
                continue
            radius, centre = chebyshev(G, h)
            if radius > guard:
                cells.append(PairCell(G, h, _vertices(G, h, centre), polytope_volume(G, h, centre), p.A, p.b, q.A, q.b))
    return cells


def _cut_volume(cell: PairCell, rows: np.ndarray, rhs: np.ndarray, box: qe.Box) -> float:
    """Volume of cell ∩ {rows x ≤ rhs}. Affine constraints hold on a polytope iff they hold at its
    vertices: all satisfied everywhere gives the cell's volume, one violated everywhere gives 0;
    otherwise an LP finds an interior point and qhull the volume."""
    slack = rhs - cell.vertices @ rows.T  # (vertices, constraints)
    if np.all(slack >= 0):
        return cell.volume
    if np.any(np.all(slack <= 0, axis=0)):
        return 0.0
    norms = np.linalg.norm(rows, axis=1)
    G = np.vstack([cell.G, rows / norms[:, None]])
    h = np.concatenate([cell.h, rhs / norms])
    radius, centre = chebyshev(G, h)
    return polytope_volume(G, h, centre) if radius > MIN_RADIUS * box.scale else 0.0


def _oracle_measure(cells: list[PairCell], tau: float, box: qe.Box) -> float:
    """Σ_cells vol(cell) − vol(cell ∩ {−τ ≤ d_k ≤ τ ∀k}), d = (A_a − A_b) x + (b_a − b_b)."""
    total = 0.0
    for cell in cells:
        dA, db = cell.A_a - cell.A_b, cell.b_a - cell.b_b
        total += cell.volume - _cut_volume(cell, np.vstack([dA, -dA]), np.concatenate([tau - db, tau + db]), box)
    return total


def _oracle_label_measure(cells: list[PairCell], box: qe.Box) -> float:
    """Σ_cells Σ_{i ≠ l} vol(cell ∩ {label_a = i} ∩ {label_b = l}), each label set cut by the
    half-spaces y_j − y_i ≤ 0, j ≠ i (K ≥ 2 scores)."""
    total = 0.0
    for cell in cells:
        K = cell.A_a.shape[0]
        for label_a, label_b in itertools.product(range(K), repeat=2):
            if label_a == label_b:
                continue
            others_a, others_b = np.arange(K) != label_a, np.arange(K) != label_b
            rows = np.vstack([(cell.A_a - cell.A_a[label_a])[others_a], (cell.A_b - cell.A_b[label_b])[others_b]])
            rhs = np.concatenate([(cell.b_a[label_a] - cell.b_a)[others_a], (cell.b_b[label_b] - cell.b_b)[others_b]])
            total += _cut_volume(cell, rows, rhs, box)
    return total


def _within_mc(exact_measure: float, a, b, box, *, tol=None, label=False, samples=300_000, seed=0) -> None:
    """The exact measure lies in the Monte-Carlo 99.9% Clopper–Pearson interval."""
    rep = compare(a, b, box, samples=samples, tol=tol, seed=seed, task="classification" if label else "regression")
    fraction = rep.label_disagreement_measure / box.volume if label else rep.disagreement_fraction
    lo, hi = clopper_pearson(int(round(fraction * samples)), samples, level=0.999)
    assert lo * box.volume <= exact_measure <= hi * box.volume


def _check_witness(a, b, rep) -> None:
    """The reported sup is attained at the witness (forward passes)."""
    w = np.array(rep.witness)
    assert np.abs(a(w) - b(w)).max() == pytest.approx(rep.sup_error, rel=1e-9, abs=1e-12)


# ----- hand-derived cases ------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", [(2, 8, 8, 2), (3, 6, 5, 1)])
def test_identical_and_deeper_equivalent_nets_agree_everywhere(arch, rng):
    net = random_net(arch, rng)
    box = qe.Box.cube(arch[0], -1.0, 1.5)
    scale = max(1.0, float(np.abs(net(box.sample(4096, rng))).max()))
    for a, b in [(net, net), (net, _deeper_copy(net, box)), (_deeper_copy(net, box), net)]:
        for tol in (0.0, None):
            rep = compare(a, b, box, exact=True, tol=tol)
            assert rep.method == "exact" and rep.ci95 is None and rep.samples == 0
            assert rep.sup_error <= 1e-9 * scale
            assert rep.disagreement_measure == 0.0 and rep.disagreement_fraction == 0.0
        # the padding neurons cut nothing: the common refinement is net's own regions
        assert rep.cells == len(qe.regions(net, box))


@pytest.mark.parametrize("s", [0.3, -2.0])
def test_shifted_output_bias_disagrees_by_exactly_the_shift(s, rng):
    a = random_net((2, 7, 6, 3), rng)
    b = _shifted(a, 1, s)
    box = qe.Box([-1.0, 0.0], [2.0, 0.5])
    for tol in (0.0, 0.5 * abs(s)):
        rep = compare(a, b, box, exact=True, tol=tol)
        assert rep.sup_error == pytest.approx(abs(s), rel=1e-12)
        assert rep.disagreement_measure == pytest.approx(box.volume, rel=1e-12)
        _check_witness(a, b, rep)
    assert compare(a, b, box, exact=True, tol=1.5 * abs(s)).disagreement_measure == 0.0


def _relu_x0(shift: float) -> qe.ReluNet:
    """x ↦ relu(x_0 − shift) on R^2."""
    return qe.ReluNet([np.array([[1.0, 0.0]]), np.array([[1.0]])], [np.array([-shift]), np.zeros(1)])


@pytest.mark.parametrize("lo,hi,c", [(-1.0, 1.0, 0.5), (-0.3, 2.0, 1.2)])
def test_relu_against_shifted_relu_matches_the_closed_form(lo, hi, c):
    """d = relu(x0) − relu(x0 − c) = clip(x0, 0, c): sup c; {|d| > τ} = {x0 > τ} for 0 ≤ τ < c, so its
    measure is (hi − τ)(hi − lo); empty for τ ≥ c. τ = 0 counts the cells x0 > 0 whose maps differ."""
    box = qe.Box.cube(2, lo, hi)
    f, g = _relu_x0(0.0), _relu_x0(c)
    for tau in (0.0, 0.1 * c, 0.5 * c, 0.9 * c, 1.1 * c):
        rep = compare(f, g, box, exact=True, tol=tau)
        expected = (hi - tau) * (hi - lo) if tau < c else 0.0
        assert rep.disagreement_measure == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert rep.sup_error == pytest.approx(c, rel=1e-12)
        assert rep.witness[0] >= c - 1e-12
        assert rep.cells == 3


def test_single_logit_label_disagreement_matches_the_closed_form():
    """Affine single logits a = x0, b = x0 − c: labels [a > 0] ≠ [b > 0] exactly on 0 < x0 < c."""
    box = qe.Box([-1.0, 2.0], [1.0, 5.0])
    c = 0.35
    a = qe.ReluNet([np.array([[1.0, 0.0]])], [np.zeros(1)])
    b = qe.ReluNet([np.array([[1.0, 0.0]])], [np.array([-c])])
    rep = compare(a, b, box, exact=True, task="classification")
    assert rep.label_disagreement_measure == pytest.approx(c * 3.0, rel=1e-9)
    assert rep.disagreement_measure == pytest.approx(box.volume, rel=1e-12)
    assert rep.sup_error == pytest.approx(c, rel=1e-12) and rep.cells == 1


# ----- random nets against the LP oracle and Monte Carlo -----------------------------------------------
@pytest.mark.parametrize("arch_a,arch_b,lo,hi", [
    ((2, 5, 4, 2), (2, 7, 2), -1.0, 1.0),
    ((3, 4, 1), (3, 3, 3, 1), -0.5, 1.0),
])
def test_random_nets_match_the_lp_oracle_and_monte_carlo(arch_a, arch_b, lo, hi, rng):
    a, b = random_net(arch_a, rng), random_net(arch_b, rng)
    box = qe.Box.cube(arch_a[0], lo, hi)
    cells = _pair_cells(a, b, box)
    first = compare(a, b, box, exact=True, tol=0.0)
    assert first.cells == len(cells)
    assert first.cells >= max(len(qe.regions(a, box)), len(qe.regions(b, box)))
    _check_witness(a, b, first)
    mc = compare(a, b, box, samples=200_000, seed=2)
    assert first.sup_error >= mc.sup_error
    for fraction in (0.2, 0.6):
        tau = fraction * first.sup_error
        rep = compare(a, b, box, exact=True, tol=tau)
        assert rep.disagreement_measure == pytest.approx(_oracle_measure(cells, tau, box), rel=ORACLE_RELATIVE)
        assert 0.0 < rep.disagreement_measure < box.volume
        _within_mc(rep.disagreement_measure, a, b, box, tol=tau)


def test_classifier_label_disagreement_matches_the_lp_oracle_and_monte_carlo(rng):
    a = random_net((2, 5, 5, 3), rng)
    weights = list(a.weights)
    weights[-1] = weights[-1] + 0.3 * rng.normal(size=weights[-1].shape)
    b = qe.ReluNet(weights, a.biases)
    box = qe.Box.cube(2, -2.0, 2.0)
    rep = compare(a, b, box, exact=True, task="classification")
    expected = _oracle_label_measure(_pair_cells(a, b, box), box)
    assert 0.0 < expected < box.volume
    assert rep.label_disagreement_measure == pytest.approx(expected, rel=ORACLE_RELATIVE)
    _within_mc(rep.label_disagreement_measure, a, b, box, label=True)
    # the labels the exact checker compares are read off the same rule as Monte Carlo's
    X = box.sample(1000, rng)
    assert np.array_equal(class_labels(a(X)), a(X).argmax(axis=1))


def test_compact_wide_form_disagrees_on_less_than_its_error_bound():
    net = seeded_relu_net("2-6-6-1")
    box = qe.Box.cube(2)
    wide = qe.to_wide(net, box, delta=1e-2)
    rep = compare(net, wide, box, exact=True)
    assert 0.0 < rep.disagreement_measure <= wide.provenance.error_bound
    _check_witness(net, wide, rep)
    _within_mc(rep.disagreement_measure, net, wide, box, tol=rep.tolerance, samples=400_000)


def test_exact_compare_counts_cells_and_takes_the_exact_default_tolerance(rng):
    net = random_net((2, 6, 1), rng)
    a = qe.ReluNet([net.weights[0], 10.0 * net.weights[1]], net.biases)  # output range > 1
    b = qe.ReluNet(a.weights, [a.biases[0] + 0.2, a.biases[1]])
    box = qe.Box.cube(2)
    cells = _pair_cells(a, b, box)
    sup = exact_compare(a, b, box, tol=0.0).sup_error
    found = exact_compare(a, b, box, tol=0.5 * sup)
    assert found.cells == len(cells) and found.tolerance == 0.5 * sup
    assert 0.0 < found.disagreement_measure < box.volume  # so |d| = tol cuts some cell
    assert found.cells_visited > found.cells and found.seconds > 0
    # default tol: DISAGREE_RELATIVE·max(1, range of a), the range read at a's LP regions' vertices
    values = np.vstack([
        _vertices(r.G, r.h, r.center) @ r.A.T + r.b for r in brute_force_regions(a, box.lo, box.hi, volumes=False)
    ])
    spread = float((values.max(axis=0) - values.min(axis=0)).max())
    assert spread > 1.0
    default = exact_compare(a, b, box)
    assert default.tolerance == pytest.approx(tolerances.DISAGREE_RELATIVE * max(1.0, spread), rel=1e-9)
    assert default.cells == len(cells)


# ----- refusals ----------------------------------------------------------------------------------------
def test_exact_compare_refuses_what_it_cannot_settle(rng):
    net7 = random_net((7, 3, 1), rng)
    with pytest.raises(qe.QuasieqError, match="D ≤ 6"):
        compare(net7, net7, qe.Box.cube(7), exact=True)
    net = random_net((2, 3, 2), rng)
    with pytest.raises(qe.QuasieqError, match="must be a ReluNet"):
        compare(net, lambda X: net(X), qe.Box.cube(2), exact=True)
    with pytest.raises(qe.QuasieqError, match="outputs"):
        compare(net, random_net((2, 3, 1), rng), qe.Box.cube(2), exact=True)
    with pytest.raises(qe.QuasieqError, match="dimension"):
        compare(net, net, qe.Box.cube(3), exact=True)


def test_max_cells_stops_the_exact_check_and_progress_counts_its_cells():
    """Progress reports the cells found so far (the stacked net's regions, which the result's
    cells_visited counts) up to the whole box; --max-cells below that count refuses in one line."""
    net = seeded_relu_net("2-8-8-1")
    other = qe.to_wide(net, qe.Box.cube(2), 1e-2)
    box = qe.Box.cube(2)
    seen: list[tuple[int, float]] = []
    found = exact_compare(net, other, box, tol=1e-6, progress=lambda p: seen.append((p.found, p.fraction)))
    counts = [c for c, _ in seen]
    assert counts == sorted(counts) and seen[-1][1] == pytest.approx(1.0)
    assert counts[-1] == found.cells_visited
    refusal = r"more than 10 cells \(at least \d+ found\): raise max_cells= \(--max-cells\)"
    with pytest.raises(qe.QuasieqError, match=refusal):
        exact_compare(net, other, box, tol=1e-6, max_cells=10)
