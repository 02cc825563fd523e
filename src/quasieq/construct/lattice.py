"""Exact (zero-error) wide and deep forms from the max–min (lattice) representation.

A continuous piecewise-linear f on a convex domain, affine ℓ_{σ(i)} on each convex piece P_i
(i = 1..q), with k distinct affine functions ℓ_1..ℓ_k, satisfies everywhere on the domain
(Ovchinnikov 2002, "Max–min representation of piecewise linear functions")

    f(x) = max_i min_{j ∈ S_i} ℓ_j(x),        S_i = {j : ℓ_j ≥ ℓ_{σ(i)} on P_i}.

``ℓ_j ≥ ℓ_{σ(i)} on P_i`` is tested at the vertices of P_i (an affine function is ≥ 0 on a polytope iff
it is ≥ 0 at its vertices), so no LP is needed. A term whose S_i contains another term's S_{i'} is
dominated (min over more functions is smaller) and dropped. The pieces are the net's exact regions,
with neighbours of equal affine map merged wherever their union stays convex (geometry.simplices.
merge_convex_groups): fewer pieces, the same function. Non-convex unions are never merged, because they
break the theorem (f = x, 1, 2x − 3, x on [0,1], [1,2], [2,3], [3,4]: the outer two pieces share a map, and
max–min over them as one piece is wrong on [1, 3]).

ReLU gadgets, with every value v carried through a ReLU as σ(v + C) − C, where C ≥ −(lower bound of
every ℓ_j on the box) makes v + C ≥ 0 on the box (one neuron per carried value):

    min(u, w) = σ(w + C) − C − σ(w − u)          max(u, w) = σ(u + C) − C + σ(w − u)

Wide form: the K outputs' lattices side by side; a balanced min tree per term (⌈log2 max|S_i|⌉ ≤
⌈log2 k⌉ hidden layers), then a balanced max tree over the terms (⌈log2 q⌉ layers): at most
2Σ|S_i| + q⌈log2 k⌉ + 2q + ⌈log2 q⌉ hidden neurons per output.

Deep form: the same lattice evaluated sequentially. The state is the shifted input σ(x − lo) = x − lo
(D units), the running maximum over finished terms and the running minimum of the current term (each
carried as σ(v + C)), and per layer one comparison neuron: width D + 3 per output (outputs done
earlier are carried, one unit each).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from quasieq import tolerances
from quasieq.box import Box
from quasieq.construct import univariate
from quasieq.construct.job import Job, provenance
from quasieq.construct.onelayer import onelayer_deep
from quasieq.construct.scores import as_scores
from quasieq.geometry.simplices import affine_equal, merge_convex_groups
from quasieq.net import LatticeSizes, Provenance, ReluNet, provenance_of
from quasieq.regions.complex import RegionComplex

#: Layers with at most this many entries are stored dense: building thousands of tiny CSR matrices
#: costs milliseconds each, dense they cost microseconds and as little memory.
_DENSE_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Lattice:
    """f = max_i min_{j ∈ terms[i]} (A[j]·x + b[j]) for one output on ``box``."""

    A: np.ndarray  # (k, D)
    b: np.ndarray  # (k,)
    terms: tuple[tuple[int, ...], ...]
    pieces: int  # q: convex pieces after merging, before dropping dominated terms
    regions: int  # the net's regions the pieces were merged from

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        L = np.atleast_2d(X) @ self.A.T + self.b
        return np.max([L[:, list(S)].min(axis=1) for S in self.terms], axis=0)


def _distinct_maps(A: np.ndarray, b: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Group the regions' maps (R, D), (R,) into distinct affine functions (tolerances.AFFINE_EQUAL,
    the same yardstick as region merging). Returns (index of each region's function, representatives)."""
    maps = np.column_stack([A, b])
    order = np.lexsort(maps.T[::-1])
    label = np.empty(len(maps), dtype=np.int64)
    reps: list[int] = []
    for r in order:
        if reps:
            last = reps[-1]
            if affine_equal(A[last], b[last:last + 1], A[r], b[r:r + 1], scale):
                label[r] = len(reps) - 1
                continue
        reps.append(r)
        label[r] = len(reps) - 1
    return label, maps[reps]


def lattice_of(cx: RegionComplex, output: int = 0) -> Lattice:
    """The max–min representation of output ``output`` of the net, from its exact regions merged into
    convex pieces."""
    s = cx.box.scale
    A_out, b_out = cx.A[:, output, :], cx.b[:, output]
    label, reps = _distinct_maps(A_out, b_out, s)
    A, b = reps[:, :-1], reps[:, -1]
    guard = tolerances.AFFINE_EQUAL * (1.0 + np.abs(A).max() * s + np.abs(b).max())
    roots, merged = merge_convex_groups(cx, A_out, b_out)
    pieces = np.flatnonzero(roots == np.arange(len(cx)))
    terms: list[frozenset[int]] = []
    for i in pieces.tolist():
        V = merged[i][0] if i in merged else cx.vertices_flat[cx.vertex_indptr[i] : cx.vertex_indptr[i + 1]]
        values = V @ A.T + b  # (n_vertices, k)
        own = values[:, label[i]][:, None]
        terms.append(frozenset(np.flatnonzero(np.all(values >= own - guard, axis=0)).tolist()))
    unique = sorted(set(terms), key=len)
    kept = [S for n, S in enumerate(unique) if not any(T < S for T in unique[:n])]
    return Lattice(A, b, tuple(tuple(sorted(S)) for S in kept), pieces=len(pieces), regions=len(cx))


#: an affine expression over the units of the current layer: (dict unit → coefficient, constant)
Value = tuple[dict[int, float], float]


class _Layers:
    """Builds a feedforward ReluNet gadget by gadget, on :data:`Value` expressions."""

    def __init__(self, in_dim: int, shift: float) -> None:
        self.shift = shift  # the constant C of σ(v + C) − C
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.bias: list[float] = []
        self.weights: list[sp.csr_matrix] = []
        self.biases: list[np.ndarray] = []
        self.width_in = in_dim

    def _unit(self, terms: list[tuple[Value, float, float]]) -> int:
        """New unit σ(Σ (k·value + extra)) of the layer being built, terms (value, k, extra); returns its index."""
        row = len(self.bias)
        const = 0.0
        for expr, k, extra in terms:
            for col, v in expr[0].items():
                self.rows.append(row)
                self.cols.append(col)
                self.vals.append(k * v)
            const += k * expr[1] + extra
        self.bias.append(const)
        return row

    def carry(self, v: Value) -> Value:
        n = self._unit([(v, 1.0, self.shift)])
        return ({n: 1.0}, -self.shift)

    def minimum(self, u: Value, w: Value) -> Value:
        n_diff = self._unit([(w, 1.0, 0.0), (u, -1.0, 0.0)])
        n_w = self._unit([(w, 1.0, self.shift)])
        return ({n_w: 1.0, n_diff: -1.0}, -self.shift)

    def maximum(self, u: Value, w: Value) -> Value:
        n_diff = self._unit([(w, 1.0, 0.0), (u, -1.0, 0.0)])
        n_u = self._unit([(u, 1.0, self.shift)])
        return ({n_u: 1.0, n_diff: 1.0}, -self.shift)

    def close(self) -> None:
        """Finish the current hidden layer."""
        shape = (len(self.bias), self.width_in)
        if shape[0] * shape[1] <= _DENSE_MAX_ENTRIES:  # tiny layers (the deep chain) stay dense
            W = np.zeros(shape)
            np.add.at(W, (np.array(self.rows, dtype=np.int64), np.array(self.cols, dtype=np.int64)), self.vals)
        else:
            W = sp.csr_matrix((self.vals, (self.rows, self.cols)), shape=shape)
        self.weights.append(W)
        self.biases.append(np.array(self.bias))
        self.width_in = len(self.bias)
        self.rows, self.cols, self.vals, self.bias = [], [], [], []

    def output(self, values: list[Value]) -> ReluNet:
        for k, v in enumerate(values):
            for col, c in v[0].items():
                self.rows.append(k)
                self.cols.append(col)
                self.vals.append(c)
            self.bias.append(v[1])
        self.close()
        return ReluNet(self.weights, self.biases)


def _input_values(lat: Lattice) -> list[Value]:
    """ℓ_j(x) as values over the input coordinates (the first layer reads x directly)."""
    return [({d: float(a) for d, a in enumerate(lat.A[j]) if a != 0.0}, float(lat.b[j])) for j in range(len(lat.b))]


def _reduce_level(layers: _Layers, groups: list[list], op) -> list[list]:
    """One hidden layer of a tree reduction: pairs in every group are combined, odd ones carried."""
    out = []
    for g in groups:
        nxt = [op(g[i], g[i + 1]) for i in range(0, len(g) - 1, 2)]
        if len(g) % 2:
            nxt.append(layers.carry(g[-1]))
        out.append(nxt)
    return out


def _box_lower_bound(lattices: list[Lattice], box: Box) -> float:
    """min over all ℓ_j of min over the box (interval arithmetic): every min/max of ℓ's is ≥ it."""
    return min(float((lat.b + np.minimum(lat.A * box.lo, lat.A * box.hi).sum(axis=1)).min()) for lat in lattices)


def _shift(lattices: list[Lattice], box: Box) -> float:
    return max(1.0, 1.0 - _box_lower_bound(lattices, box))


def lattice_wide(cx: RegionComplex) -> ReluNet:
    """Exact wide form: per output a balanced min tree per term, then a max tree over the terms."""
    lattices = [lattice_of(cx, k) for k in range(cx.net.out_dim)]
    layers = _Layers(cx.dim, _shift(lattices, cx.box))
    # groups[k][t] = list of values still to be min-reduced for term t of output k
    inputs = [_input_values(lat) for lat in lattices]
    groups = [[[ell[j] for j in S] for S in lat.terms] for lat, ell in zip(lattices, inputs, strict=True)]
    while any(len(g) > 1 for out in groups for g in out):
        flat = [g for out in groups for g in out]
        reduced = _reduce_level(layers, flat, layers.minimum)
        layers.close()
        it = iter(reduced)
        groups = [[next(it) for _ in out] for out in groups]
    terms = [[g[0] for g in out] for out in groups]
    while any(len(t) > 1 for t in terms):
        terms = _reduce_level(layers, terms, layers.maximum)
        layers.close()
    net = layers.output([t[0] for t in terms])
    return net.with_provenance(_provenance(net, lattices, cx, "wide"))


def lattice_deep(cx: RegionComplex) -> ReluNet:
    """Exact deep-narrow form: the lattices evaluated sequentially, width D + 3 (+1 per earlier output)."""
    lattices = [lattice_of(cx, k) for k in range(cx.net.out_dim)]
    C = _shift(lattices, cx.box)
    layers = _Layers(cx.dim, C)
    D, lo = cx.dim, cx.box.lo
    x = [({d: 1.0}, 0.0) for d in range(D)]
    done: list = []
    for lat in lattices:
        best = None
        for S in lat.terms:
            running = None
            for j in S:
                ell: Value = ({}, float(lat.b[j]))
                for d in range(D):
                    if lat.A[j, d] != 0.0:
                        coef, const = x[d]
                        for col, c in coef.items():
                            ell[0][col] = ell[0].get(col, 0.0) + lat.A[j, d] * c
                        ell = (ell[0], ell[1] + lat.A[j, d] * const)
                if running is None:
                    running = ell
                    continue
                x, best, done, running = _step(layers, x, lo, best, done, layers.minimum, running, ell)
            if best is None:
                best = running
            else:
                x, _, done, best = _step(layers, x, lo, None, done, layers.maximum, best, running)
        done.append(best)
    net = layers.output(done)
    return net.with_provenance(_provenance(net, lattices, cx, "deep"))


def _step(layers: _Layers, x, lo, best, done, op, left, right):
    """One hidden layer: carry x (as σ(x − lo) + lo), the running max and earlier outputs; op(left, right)."""
    new_x = []
    for d, v in enumerate(x):
        n = layers._unit([(v, 1.0, -float(lo[d]))])
        new_x.append(({n: 1.0}, float(lo[d])))
    carried_best = layers.carry(best) if best is not None else None
    carried_done = [layers.carry(v) for v in done]
    result = op(left, right)
    layers.close()
    return new_x, carried_best, carried_done, result


def _provenance(net: ReluNet, lattices: list[Lattice], cx: RegionComplex, form: str) -> Provenance:
    q = max(lat.pieces for lat in lattices)
    k = max(len(lat.b) for lat in lattices)
    terms = max(len(lat.terms) for lat in lattices)
    sum_s = sum(sum(len(S) for S in lat.terms) for lat in lattices)
    target_neurons = sum(
        2 * sum(len(S) for S in lat.terms) + len(lat.terms) * math.ceil(math.log2(max(len(lat.b), 1)))
        + 2 * len(lat.terms) + math.ceil(math.log2(max(len(lat.terms), 1)))
        for lat in lattices
    )
    return provenance(
        "exact", cx.box, error_bound=0.0, max_abs_weight=net.max_abs_weight(),
        lattice=LatticeSizes(pieces=q, affine_functions=k, sum_term_sizes=sum_s,
                             chen_garudadri_rao_neurons=3 * q * k + 3 * q),
        details={
            "regions": max(lat.regions for lat in lattices),
            "terms": terms,
            "form": form,
            "target_hidden_layers": math.ceil(math.log2(max(k, 1))) + math.ceil(math.log2(max(terms, 1))),
            "target_neurons": target_neurons,
        },
    )


def build(form: str, job: Job) -> ReluNet:
    """``method="exact"`` (registry): the max–min lattice form of the regions, or for the deep form of a
    one-hidden-layer net the direct chain of width D + 1 + K and depth w + 1 (``construct.onelayer``);
    Theorem 9 in 1-D. Zero error: δ, when given, is only recorded."""
    cx = job.regions()
    if job.net.in_dim == 1:
        return univariate.build(form, job)
    if form == "deep" and job.net.hidden_layers == 1 and not job.net.has_linear_units:
        built = onelayer_deep(job.net, job.box)
    else:
        built = (lattice_wide if form == "wide" else lattice_deep)(cx)
    scores = as_scores(built) if job.task == "classification" else built
    return scores.with_provenance(dataclasses.replace(
        provenance_of(built), task=job.task, delta=None if job.delta is None else float(job.delta)))
