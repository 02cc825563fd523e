"""The compact quasi-equivalent constructions, R-wide and R-deep (paper_notes §2.6).

Per-simplex module (simplex S, map f = A x + b with K outputs, unit facets ℓ̂_j, j = 0..D):

    u_j = σ(−ℓ̂_j(x)),   U = Σ_j u_j        (U = 0 exactly on S, U ≥ ε off S^ε = {ℓ̂_j ≥ −ε ∀j})
    C   = 1 + max(0, −min_{j,k} f_k(v_j))   (so g_k := f_k + C ≥ 1 on S)
    p_k = σ(g_k(x) − κU),   q = σ(C − κU),   output_k = p_k − q,     κ = 𝒜/ε,

with 𝒜 ≥ C and 𝒜 ≥ sup g_k over every input the module can see. On S, U = 0 and p_k − q = f_k
exactly; off S^ε, κU ≥ 𝒜 kills p and q. So {module ≠ f·1_S} ⊂ S^ε \\ S, and since S^ε is S scaled by
(1 + ε/r) about its incentre (r the inradius),

    m(S^ε \\ S) = ((1 + ε/r)^D − 1)·vol(S).

ε budget: with δ' = DELTA_SHARE·δ (0.5δ) − (volume of dropped slivers), ε_m = r_m[(1 + δ'/(M vol S_m))^{1/D} − 1]
makes every simplex's strip δ'/M, so the analytic bound Σ_m ((1+ε_m/r_m)^D − 1) vol S_m + dropped ≤ DELTA_SHARE·δ < δ.

R-wide (2 hidden layers): layer 1 = D pass-through units s = σ(x − lo) = x − lo (≥ 0 on the box) and
the (D+1)M units u_j^{(m)}; layer 2 = for every simplex the K units p_k^{(m)} (reading x = s + lo) and
q^{(m)}; output H_k = Σ_m (p_k^{(m)} − q^{(m)}). Width max(D + (D+1)M, (K+1)M), D + (D+2+K)M neurons.

R-deep (strictly feedforward, width 2D + 2K + 2, 2M + 1 hidden layers): shift z = x − lo + 1 ≥ 1, so the
point Ω = 0 lies outside every shifted simplex, at U-value η_m = Σ_j σ(−ℓ̂_j^{(m)}(0)) > 0. The state
carried through the chain is Ω (D, the coordinates not yet claimed by a simplex), P (K) and Q (1), the
accumulators of p and q; all are ≥ 0 so ReLUs pass them exactly. Block m is two layers,

    α_m: [u^{(m)}(Ω) (D+1) | ω = Ω (D) | P (K) | Q]
    β_m: [p (K) | q | x̃ = σ(ω − κU) (D) | ω (D) | P (K) | Q],

and α_{m+1} reads Ω ← ω − x̃, P ← P + p, Q ← Q + q (affine, folded into its weights). After β_M one
layer [P + p, Q + q], output P_k − Q. For x in S_k off the strips: blocks before k see Ω = z ∉ S_m^{ε},
add nothing and leave Ω; block k adds f^{(k)}(x) and claims x̃ = Ω, so Ω = 0 after it; later blocks see
Ω = 0 and add nothing, because ε_m ≤ η_m/2 makes κU(0) ≥ 2𝒜. Here 𝒜_m also bounds ω_i ≤ max(hi − lo + 1)
and sup of g_k over ω ∈ [0, hi − lo + 1].

All layers are scipy.sparse CSR assembled from index arrays for all simplices at once, so memory and
build time are linear in M.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from quasieq.construct import univariate
from quasieq.construct.job import Job, provenance, table1_sizes
from quasieq.errors import QuasieqError
from quasieq.geometry.simplices import SimplexComplex
from quasieq.net import Provenance, ReluNet

#: Share of δ spent on the strips (the analytic bound is ≤ DELTA_SHARE·δ). Why 0.5 and not the paper's
#: 0.99: the wide form's true disagreement is close to its bound, and the check (verify/certificate.py)
#: passes only when the *upper 95% limit* of the Monte-Carlo measure is ≤ δ; at 0.99δ it never could,
#: at 0.5δ it does with the default 100,000 samples (the seeded 2-16-16-1 on [-1, 1]^2, δ = 1e-3: upper
#: limits 5.8e-4 to 7.9e-4 over seeds 0-3 for the wide form). The price is a factor 2 on κ, i.e. on the
#: largest weight.
DELTA_SHARE = 0.5


def strip_budget(sc: SimplexComplex, delta: float) -> float:
    """The budget δ' for the strips; raises on bad δ or an empty complex."""
    delta = float(delta)
    if not np.isfinite(delta) or delta <= 0.0:
        raise QuasieqError(f"delta must be a positive finite measure, got {delta!r}")
    if sc.M == 0:
        raise QuasieqError("the simplex complex is empty: nothing to rebuild")
    budget = DELTA_SHARE * delta - sc.dropped_volume
    if budget <= 0.0:
        raise QuasieqError(
            f"delta={delta:g} is not above the volume {sc.dropped_volume:g} of the dropped sliver simplices: "
            "choose a larger delta"
        )
    return budget


def budget_epsilons(sc: SimplexComplex, budget: float) -> np.ndarray:
    """ε_m = r_m[(1 + budget/(M·vol S_m))^{1/D} − 1], so each strip S_m^{ε_m} \\ S_m has measure budget/M."""
    ratio = budget / (sc.M * sc.volumes)
    return sc.inradii * np.expm1(np.log1p(ratio) / sc.D)


def weight_floor(sc: SimplexComplex, delta: float) -> float:
    """A lower bound on the largest weight of the compact forms (and the De Morgan rules) for δ, known
    before building: κ_m = 𝒜_m/ε_m ≥ 1/ε_m since 𝒜_m ≥ C_m ≥ 1, and the deep form's ε only shrinks."""
    return float(1.0 / budget_epsilons(sc, strip_budget(sc, delta)).min())


def strip_bound(sc: SimplexComplex, eps: np.ndarray) -> float:
    """Σ_m ((1 + ε_m/r_m)^D − 1)·vol(S_m) + dropped volume: the analytic bound on m({H ≠ h})."""
    return float(np.sum(np.expm1(sc.D * np.log1p(eps / sc.inradii)) * sc.volumes) + sc.dropped_volume)


def _offset_constants(sc: SimplexComplex) -> np.ndarray:
    """C_m = 1 + max(0, −min_{j,k} f_k^{(m)}(v_j)): the shift making g = f + C ≥ 1 on S_m."""
    fv = np.einsum("mkd,mjd->mjk", sc.A, sc.vertices) + sc.b[:, None, :]
    return 1.0 + np.maximum(0.0, -fv.min(axis=(1, 2)))


def _box_sup(A: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max_k sup_{lo ≤ y ≤ hi} (A_k·y + b_k) for every simplex: (M,)."""
    return (b + np.maximum(A * lo, A * hi).sum(axis=2)).max(axis=1)


def _provenance(
    form: str, sc: SimplexComplex, parts: list[np.ndarray], delta: float, eps: np.ndarray, kappa: np.ndarray,
    task: str,
) -> Provenance:
    """Provenance of a construction; ``parts`` are all weight and bias values (for the largest |weight|,
    taken before the net is built so that it is validated once)."""
    return provenance(
        "compact", sc.box, task=task, delta=delta, error_bound=strip_bound(sc, eps),
        max_abs_weight=max(float(np.abs(a).max(initial=0.0)) for a in parts),
        simplices=sc.M, table1=table1_sizes(form, sc.D, sc.M),
        details={
            "dropped_simplices": sc.dropped,
            "merged_regions": sc.merged_regions,
            "epsilon_min": float(eps.min()),
            "epsilon_max": float(eps.max()),
            "kappa_max": float(kappa.max()),
        },
    )


def sparse_from_triplets(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR matrix with entries vals at (rows, cols), exact zeros left out."""
    keep = vals != 0.0
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=shape)


def compact_wide(sc: SimplexComplex, delta: float, *, task: str = "regression") -> ReluNet:
    """R-wide: two hidden layers, width max(D + (D+1)M, (K+1)M), m({H ≠ h}) ≤ error_bound < δ.

    Example
    -------
    >>> wide = compact_wide(triangulate(qe.regions(net, box)), 1e-3)   # doctest: +SKIP
    >>> wide.hidden_layers, wide.provenance.error_bound < 1e-3          # doctest: +SKIP
    (2, True)
    """
    budget = strip_budget(sc, delta)
    M, D, K = sc.M, sc.D, sc.K
    lo, hi = sc.box.lo, sc.box.hi
    G, g0 = sc.unit_facets()
    C = _offset_constants(sc)
    calA = np.maximum(C, _box_sup(sc.A, sc.b, lo, hi) + C)
    eps = budget_epsilons(sc, budget)
    kappa = calA / eps

    # layer 1: [s (D) | u^{(m)}_j for m, j]; u rows are −ℓ̂_j
    n_u = (D + 1) * M
    n1 = D + n_u
    rows1 = np.concatenate([np.arange(D), np.repeat(np.arange(D, n1), D)])
    cols1 = np.concatenate([np.arange(D), np.tile(np.arange(D), n_u)])
    vals1 = np.concatenate([np.ones(D), -G.reshape(-1)])
    W1 = sparse_from_triplets(rows1, cols1, vals1, (n1, D))
    b1 = np.concatenate([-lo, -g0.reshape(-1)])

    # layer 2: per simplex [p_1 … p_K | q]
    n2 = (K + 1) * M
    p_rows = (np.arange(M)[:, None] * (K + 1) + np.arange(K)[None, :]).reshape(-1)  # (M*K,)
    q_rows = np.arange(M) * (K + 1) + K
    u_cols = D + np.arange(n_u).reshape(M, D + 1)  # (M, D+1)
    rows2 = np.concatenate([
        np.repeat(p_rows, D),  # A on s
        np.repeat(p_rows, D + 1),  # −κ on u
        np.repeat(q_rows, D + 1),
    ])
    cols2 = np.concatenate([
        np.tile(np.arange(D), M * K),
        np.repeat(u_cols, K, axis=0).reshape(-1),
        u_cols.reshape(-1),
    ])
    vals2 = np.concatenate([
        sc.A.reshape(-1),
        np.repeat(-kappa, K * (D + 1)),
        np.repeat(-kappa, D + 1),
    ])
    W2 = sparse_from_triplets(rows2, cols2, vals2, (n2, n1))
    b2 = np.empty(n2)
    b2[p_rows] = (np.einsum("mkd,d->mk", sc.A, lo) + sc.b + C[:, None]).reshape(-1)
    b2[q_rows] = C

    # output: H_k = Σ_m p_k^{(m)} − q^{(m)}
    rows3 = np.concatenate([np.tile(np.arange(K), M), np.repeat(np.arange(K), M)])
    cols3 = np.concatenate([p_rows, np.tile(q_rows, K)])
    vals3 = np.concatenate([np.ones(M * K), -np.ones(M * K)])
    W3 = sparse_from_triplets(rows3, cols3, vals3, (K, n2))

    prov = _provenance("wide", sc, [vals1, vals2, vals3, b1, b2], delta, eps, kappa, task)
    return ReluNet([W1, W2, W3], [b1, b2, np.zeros(K)], prov)


def layers_from_pattern(
    data: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> list[sp.csr_matrix]:
    """One CSR matrix per row of ``data`` (M, nnz), entries at (rows, cols), exact zeros left out.

    The row pointers of all M matrices come from one cumulative count, so the only per-layer work is
    slicing and the CSR constructor.
    """
    order = np.lexsort((cols, rows))
    rows, cols, data = rows[order], cols[order], data[:, order]
    nonzero = data != 0.0
    per_row = np.zeros((len(data), shape[0]), dtype=np.int64)
    np.add.at(per_row.T, rows, nonzero.T)  # (M, n_rows) non-zeros per row (added through the transposed view)
    indptr = np.concatenate(
        [np.zeros((len(data), 1), dtype=np.int32), np.cumsum(per_row, axis=1, dtype=np.int32)], axis=1
    )
    indices = cols.astype(np.int32)
    return [
        sp.csr_matrix((data[m][nonzero[m]], indices[nonzero[m]], indptr[m]), shape=shape)
        for m in range(len(data))
    ]


# One function on purpose: the α/β blocks share one unit layout (the index arrays named once below) and
# are assembled for all M simplices at once; split, each piece would need the whole layout again.
def compact_deep(sc: SimplexComplex, delta: float, *, task: str = "regression") -> ReluNet:
    """R-deep: strictly feedforward, width 2D + 2K + 2, 2M + 1 hidden layers, m({H ≠ h}) ≤ error_bound < δ.

    Example
    -------
    >>> deep = compact_deep(triangulate(qe.regions(net, box)), 1e-3)   # doctest: +SKIP
    >>> deep.width, deep.hidden_layers                                   # doctest: +SKIP
    (8, 73)
    """
    budget = strip_budget(sc, delta)
    M, D, K = sc.M, sc.D, sc.K
    lo, hi = sc.box.lo, sc.box.hi
    beta = 1.0 - lo  # z = x + β ∈ [1, hi − lo + 1]
    z_hi = hi - lo + 1.0
    G, g0 = sc.unit_facets()
    g0z = g0 - np.einsum("mjd,d->mj", G, beta)  # ℓ̂_j in z-coordinates: G z + g0z
    b_z = sc.b - np.einsum("mkd,d->mk", sc.A, beta)
    C = _offset_constants(sc)
    calA = np.maximum.reduce([C, _box_sup(sc.A, b_z, np.zeros(D), z_hi) + C, np.full(M, z_hi.max())])
    eta = np.maximum(0.0, -g0z).sum(axis=1)  # U at Ω = 0
    eps = np.minimum(budget_epsilons(sc, budget), eta / 2.0)
    kappa = calA / eps

    # unit layout of α: [u (D+1) | ω (D) | P (K) | Q]; of β: [p (K) | q | x̃ (D) | ω (D) | P (K) | Q]
    wa, wb = 2 * D + K + 2, 2 * K + 2 * D + 2
    a_u, a_w, a_P, a_Q = np.arange(D + 1), D + 1 + np.arange(D), 2 * D + 1 + np.arange(K), 2 * D + 1 + K
    b_p, b_q, b_x, b_w = np.arange(K), K, K + 1 + np.arange(D), K + 1 + D + np.arange(D)
    b_P, b_Q = K + 1 + 2 * D + np.arange(K), wb - 1

    # β_m (from α_m): rows p, q, x̃ read −κ on every u; p reads A on ω; x̃_i, ω, P, Q read their α unit
    brows = np.concatenate([
        np.repeat(b_p, D + 1), np.repeat(b_p, D), np.full(D + 1, b_q), np.repeat(b_x, D + 1),
        b_x, b_w, b_P, [b_Q],
    ])
    bcols = np.concatenate([
        np.tile(a_u, K), np.tile(a_w, K), a_u, np.tile(a_u, D),
        a_w, a_w, a_P, [a_Q],
    ])
    bdata = np.concatenate([
        np.repeat(-kappa[:, None], K * (D + 1), axis=1), sc.A.reshape(M, K * D),
        np.repeat(-kappa[:, None], (D + 1) * (D + 1), axis=1), np.ones((M, 2 * D + K + 1)),
    ], axis=1)
    beta_W = layers_from_pattern(bdata, brows, bcols, (wb, wa))
    beta_b = np.zeros((M, wb))
    beta_b[:, b_p] = b_z + C[:, None]
    beta_b[:, b_q] = C

    # α_{m+1} (from β_m): Ω = ω − x̃ feeds u rows (−G Ω − g0z) and ω rows; P ← P + p; Q ← Q + q
    arows = np.concatenate([np.repeat(a_u, D), np.repeat(a_u, D), a_w, a_w, a_P, a_P, [a_Q, a_Q]])
    acols = np.concatenate([np.tile(b_w, D + 1), np.tile(b_x, D + 1), b_w, b_x, b_P, b_p, [b_Q, b_q]])
    Gn = G[1:].reshape(M - 1, (D + 1) * D)
    adata = np.concatenate([-Gn, Gn, np.ones((M - 1, D)), -np.ones((M - 1, D)), np.ones((M - 1, 2 * K + 2))], axis=1)
    alpha_W = layers_from_pattern(adata, arows, acols, (wa, wb))
    alpha_b = np.zeros((M, wa))
    alpha_b[:, a_u] = -g0z

    # α_1 from x: u rows −G x − g0 (x-coordinates), ω rows x + β; final [P + p, Q + q] and output
    first = sp.csr_matrix(np.vstack([-G[0], np.eye(D), np.zeros((K + 1, D))]))
    alpha_b[0, a_u] = -g0[0]
    alpha_b[0, a_w] = beta
    last = sparse_from_triplets(
        np.concatenate([np.arange(K), np.arange(K), [K, K]]), np.concatenate([b_P, b_p, [b_Q, b_q]]),
        np.ones(2 * K + 2), (K + 1, wb),
    )
    out = sparse_from_triplets(
        np.concatenate([np.arange(K), np.arange(K)]), np.concatenate([np.arange(K), np.full(K, K)]),
        np.concatenate([np.ones(K), -np.ones(K)]), (K, K + 1),
    )

    weights, biases = [], []
    for m in range(M):
        weights += [first if m == 0 else alpha_W[m - 1], beta_W[m]]
        biases += [alpha_b[m], beta_b[m]]
    prov = _provenance("deep", sc, [bdata, adata, first.data, alpha_b, beta_b], delta, eps, kappa, task)
    return ReluNet(weights + [last, out], biases + [np.zeros(K + 1), np.zeros(K)], prov)


def build(form: str, job: Job) -> ReluNet:
    """``method="compact"`` (registry): the regions triangulated, refused before building when the weights
    would overflow the export precision; exact in 1-D (Theorem 9)."""
    if job.net.in_dim == 1:
        return univariate.build(form, job)
    delta = job.measure("compact")
    sc = job.simplices(form, "compact")
    check_writable(weight_floor(sc, delta), delta, job.export_dtype)
    return (compact_wide if form == "wide" else compact_deep)(sc, delta, task=job.task)


def check_writable(floor: float, delta: float, export_dtype: str | None) -> None:
    """Refuse before building a form whose weights (at least ``floor``) overflow ``export_dtype``."""
    if export_dtype is None:
        return
    largest = float(np.finfo(np.dtype(export_dtype)).max)
    if floor > largest:
        raise QuasieqError(
            f"a delta of {delta:.3g} of the box's volume needs weights of at least {floor:.3g}, beyond the largest "
            f"{export_dtype} ({largest:.3g}) the form is exported and checked in: choose a larger delta"
        )
