"""Splitting polytopes by the hyperplanes of one layer (numba kernel, LP-free).

For a region R whose layer input is the affine map a(x) = A_R x + c_R, layer l's pre-activations are
z(x) = Z x + z0 with Z = W_l A_R and z0 = W_l c_R + b_l. Neuron j cuts R iff its signed distance
d_j(v) = z_j(v)/‖Z_j‖ takes both signs (beyond ±tol) on R's vertices. R is split by the cutting
neurons one after the other; a child that no neuron cuts is final for this layer, and its pattern bit j
is [z_j > 0 inside].

Splitting polytope P (vertices V, incidence bitsets I, distances d) by hyperplane h:

* vertices with |d| ≤ tol lie on h (they join both children and gain h in their incidence);
* every edge (u, v) with d(u) > tol > −tol > d(v) gives the new vertex w = u + t(v − u),
  t = d(u)/(d(u) − d(v)), with I[w] = (I[u] ∩ I[v]) ∪ {h}; all other per-vertex data (coordinates and
  the distances to this layer's remaining hyperplanes) are interpolated with the same t, which is exact
  because they are affine along the edge;
* edges are found combinatorially (polytope.py): u ~ v iff exactly two vertices w have I[w] ⊇ I[u] ∩ I[v];
  pairs sharing fewer than D − 1 facets are rejected first (an edge lies on at least D − 1 facets).

**Layer inputs are stored per parent.** On a region r produced by the previous layer's split of parent
p, that layer's output is a(x) = diag(m_r)(Z_p x + z0_p), with (Z_p, z0_p) the parent's pre-activation map
and m_r the region's bits. So a chunk keeps (Z_p, z0_p) once per parent and each region's parent
index and bits, and the kernels read A_r = diag(m_r) Z_p, c_r = m_r ⊙ z0_p from them where needed (without
forming them): the memory per region is n bits instead of n·(D + 1) floats (a 2-1024-1024-1 net has ~10^5 regions
after its first layer, all children of the box).

Both children are full-dimensional (each keeps a vertex strictly off h). Vertices within tol of h on one
side while the other side is empty form a sliver thinner than tol: it is dropped and counted when its
thickness exceeds ``sliver`` (below that it is rounding noise of a vertex lying on the hyperplane). A
region whose vertices all lie within tol of a (non-flat) hyperplane lies in a slab of width 2·tol: it is
a sliver itself, dropped and counted (deep nets with large weights produce such cells).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS of numba's matrix products: loaded before one_blas_thread looks)
from numba import njit
from numba.typed import List
from threadpoolctl import ThreadpoolController

from quasieq.regions.chunk import Chunk
from quasieq.regions.polytope import popcount, prune_constraints, row_set_bit


@functools.cache
def _blas_libraries() -> list:
    return [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the kernels with single-threaded BLAS (usable as a decorator).

    The matrix products inside the kernels (:func:`pre_activation_maps`) go to OpenBLAS, which by
    default wakes a thread per core for every product. The kernels make many small products, where
    waking and joining the threads costs more than the arithmetic, and far more when the cores are busy
    with other work: measured with other jobs on both cores, the second layer of 2-64-64-1 took 110 ms
    with OpenBLAS's threads and 13 ms without. (The libraries are found once; setting their thread
    count is a C call, so this costs microseconds per use.)"""
    libraries = _blas_libraries()
    before = [lib.get_num_threads() for lib in libraries]
    for lib, threads in zip(libraries, before, strict=True):
        if threads != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, threads in zip(libraries, before, strict=True):
            if threads != 1:
                lib.set_num_threads(threads)


@njit(cache=True, nogil=True)
def _grown(a, n):
    """``a`` with room for ``n`` entries (its first entries copied)."""
    out = np.empty(n, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _crossings(V, inc, d, tol):
    """Rows of both children as a plan: (u, v, t) copies row u when v < 0, else interpolates
    u + t(v − u) (a new vertex on h; d holds the vertices' signed distances to h). Returns the plan
    arrays and, per row, the side it goes to.

    In 2-D the vertices are kept in cyclic order and the crossing edges are the consecutive pairs
    whose signs differ, so both children stay cyclic. Above 2-D edges are found combinatorially:
    u ~ v iff the vertices w with I[w] ⊇ I[u] ∩ I[v] are u and v alone. That set is the intersection
    of the vertex sets S_h = {w : h ∈ I[w]} over the hyperplanes h ∈ I[u] ∩ I[v], so the sets S_h are
    built once per split (bitsets over the vertices) and each candidate pair costs |I[u] ∩ I[v]|
    words of AND instead of a scan of every vertex; pairs sharing fewer than D − 1 hyperplanes are
    rejected first (an edge lies on at least D − 1 facets). The loops are written out here, not in
    helpers, because every array handed to a numba function is reference-counted per call."""
    nv, D = V.shape
    words = inc.shape[1]
    cap = 2 * nv + (D * nv if D > 2 else 2)
    us = np.empty(cap, dtype=np.int64)
    vs = np.empty(cap, dtype=np.int64)
    ts = np.empty(cap)
    side = np.empty(cap, dtype=np.int64)  # +1 positive child only, -1 negative only, 0 both
    n = 0
    for i in range(nv):
        k = (i + 1) % nv
        us[n], vs[n], ts[n] = i, -1, 0.0
        side[n] = 1 if d[i] > tol else (-1 if d[i] < -tol else 0)
        n += 1
        if D == 2 and ((d[i] > tol and d[k] < -tol) or (d[i] < -tol and d[k] > tol)):
            us[n], vs[n], ts[n], side[n] = i, k, d[i] / (d[i] - d[k]), 0
            n += 1
    if D == 2:
        return us[:n], vs[:n], ts[:n], side[:n]
    one = np.uint64(1)
    vwords = (nv + 63) >> 6
    on = np.zeros((64 * words, vwords), dtype=np.uint64)  # on[h]: the vertex set S_h as a bitset
    for v in range(nv):
        for w in range(words):
            x = inc[v, w]
            while x != np.uint64(0):
                low = x & (~x + one)
                on[64 * w + popcount(low - one), v >> 6] |= one << np.uint64(v & 63)
                x ^= low
    common = np.empty(words, dtype=np.uint64)
    face = np.empty(vwords, dtype=np.uint64)
    for u in range(nv):
        if d[u] <= tol:
            continue
        for v in range(nv):
            if d[v] >= -tol:
                continue
            shared = 0
            for w in range(words):
                common[w] = inc[u, w] & inc[v, w]
                shared += popcount(common[w])
            if shared < D - 1:
                continue
            for q in range(vwords):  # all vertices (the face of an empty set: the 1-D segment)
                face[q] = ~np.uint64(0) if 64 * (q + 1) <= nv else (one << np.uint64(nv - 64 * q)) - one
            for w in range(words):
                x = common[w]
                while x != np.uint64(0):
                    low = x & (~x + one)
                    h = 64 * w + popcount(low - one)
                    for q in range(vwords):
                        face[q] &= on[h, q]
                    x ^= low
            count = 0
            for q in range(vwords):
                count += popcount(face[q])
            if count != 2:
                continue
            if n == us.shape[0]:
                us, vs, ts, side = _grown(us, 2 * n), _grown(vs, 2 * n), _grown(ts, 2 * n), _grown(side, 2 * n)
            us[n], vs[n], ts[n], side[n] = u, v, d[u] / (d[u] - d[v]), 0
            n += 1
    return us[:n], vs[:n], ts[:n], side[:n]


@njit(cache=True, nogil=True)
def _child(V, inc, dist, hid, us, vs, ts, side, keep):
    """Materialise the child made of the plan rows with side == keep or side == 0 (vertices, incidence
    with h = ``hid`` added on the new vertices, and the distances ``dist`` to the hyperplanes still to
    be tested, interpolated like the coordinates)."""
    m = 0
    for r in range(side.shape[0]):
        if side[r] == keep or side[r] == 0:
            m += 1
    cV = np.empty((m, V.shape[1]))
    cI = np.empty((m, inc.shape[1]), dtype=np.uint64)
    cd = np.empty((m, dist.shape[1]))
    row = 0
    for r in range(side.shape[0]):
        if not (side[r] == keep or side[r] == 0):
            continue
        u, v, t = us[r], vs[r], ts[r]
        if v < 0:
            cV[row] = V[u]
            cI[row] = inc[u]
            cd[row] = dist[u]
        else:
            cV[row] = V[u] + t * (V[v] - V[u])
            cd[row] = dist[u] + t * (dist[v] - dist[u])
            for w in range(inc.shape[1]):
                cI[row, w] = inc[u, w] & inc[v, w]
        if side[r] == 0:
            row_set_bit(cI, row, hid)
        row += 1
    return cV, cI, cd


@njit(cache=True, nogil=True)
def _split(V, inc, d, dist, hid, tol):
    """Split by hyperplane h (global id hid; d = the vertices' distances to it). Returns both children's
    (V, inc, dist) with the positive side first, ``dist`` holding the remaining hyperplanes' columns."""
    us, vs, ts, side = _crossings(V, inc, d, tol)
    Vp, Ip, dp = _child(V, inc, dist, hid, us, vs, ts, side, 1)
    Vn, In, dn = _child(V, inc, dist, hid, us, vs, ts, side, -1)
    return Vp, Ip, dp, Vn, In, dn


@njit(cache=True, nogil=True)
def _with_constraint(ids, normals, offsets, hid, normal, offset):
    k = ids.shape[0]
    nids = np.empty(k + 1, dtype=np.int64)
    nn = np.empty((k + 1, normals.shape[1]))
    no = np.empty(k + 1)
    nids[:k] = ids
    nn[:k] = normals
    no[:k] = offsets
    nids[k] = hid
    nn[k] = normal
    no[k] = offset
    return nids, nn, no


@njit(cache=True, nogil=True)
def side_of(d, tol):
    """Where a region lies w.r.t. a hyperplane, from its vertices' signed distances d:
    0 cut (vertices beyond tol on both sides), 1 positive side, 2 negative side, 3 within tol of it."""
    hi = d.max()
    lo = d.min()
    if hi > tol and lo < -tol:
        return 0
    if hi > tol:
        return 1
    if lo < -tol:
        return 2
    return 3


@njit(cache=True, nogil=True)
def sliver_count(d, state, sliver):
    """1 when a non-cutting hyperplane leaves a sub-tolerance sliver (thicker than rounding) on its
    other side, else 0."""
    if state == 1:
        return 1 if d.min() < -sliver else 0
    return 1 if d.max() > sliver else 0


class RoundingScratch(NamedTuple):
    """:func:`rounding_tests`' buffers, allocated once per kernel call and reused for every region."""

    row_norm: np.ndarray  # (n_in,) ‖A_i‖ of the region's layer input
    abs_c: np.ndarray  # (n_in,) |c_i|
    flat: np.ndarray  # (n,) bool, the result: flat_j
    constant_active: np.ndarray  # (n,) bool, the result: constant_active_j


@njit(cache=True, nogil=True)
def rounding_scratch(n_in, n):
    """Buffers for :func:`rounding_tests` on a layer of n units with n_in inputs."""
    return RoundingScratch(np.empty(n_in), np.empty(n_in), np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_))


@njit(cache=True, nogil=True)
def rounding_tests(absW, W_row_abs, b, inputs, r, z0, norms, flat_rel, guard_rel, scratch):
    """Which neurons are flat on region r, and which flat ones are constantly active, written to
    ``scratch.flat`` and ``scratch.constant_active``. The region's layer input a(x) = A x + c is read
    from its parent's map (A_i = bits_i·Z_p,i, c_i = bits_i·z0_p,i: the module docstring), without
    forming it.

    * flat_j: ‖Z_j‖ ≤ flat_rel · Σ_i |W_ji|·‖A_i‖ (the gradient Z_j = W_j A is rounding residue of the
      terms summed into it). The sum costs n_in operations per neuron, so it is computed only for the
      neurons that fail the cheap certificate ‖Z_j‖ > flat_rel · (Σ_i |W_ji|) · max_i ‖A_i‖, which
      implies not flat;
    * constant_active_j, for flat j: z0_j > guard_rel · (Σ_i |W_ji|·|c_i| + |b_j|) (the constant value
      is positive beyond its own rounding residue).
    """
    p = inputs.parent[r]
    Z_p, z0_p = inputs.parent_Z[p], inputs.parent_z0[p]
    row_norm, abs_c, flat, constant_active = scratch
    max_row = 0.0
    for i in range(Z_p.shape[0]):
        squares = 0.0  # ‖A_i‖² summed in order over the columns, as (A * A).sum(axis=1) sums it
        if inputs.bits[r, i]:
            for d in range(Z_p.shape[1]):
                squares += Z_p[i, d] * Z_p[i, d]
        row_norm[i] = np.sqrt(squares)
        abs_c[i] = abs(z0_p[i]) if inputs.bits[r, i] else 0.0
        max_row = max(max_row, row_norm[i])
    for j in range(norms.shape[0]):
        flat[j] = constant_active[j] = False
        if norms[j] > flat_rel * W_row_abs[j] * max_row:
            continue
        flat[j] = norms[j] <= flat_rel * np.dot(absW[j], row_norm)
        if flat[j]:
            constant_active[j] = z0[j] > guard_rel * (np.dot(absW[j], abs_c) + abs(b[j]))


@njit(cache=True, nogil=True)
def _distances_T(V, Z, z0, norms, flat):
    """(n, nv) signed distances (Z_j·v + z0_j)/‖Z_j‖ of the vertices to each non-flat neuron's
    hyperplane, one contiguous row per neuron (flat rows are left unset)."""
    n, D = Z.shape
    nv = V.shape[0]
    out = np.empty((n, nv))
    for j in range(n):
        if flat[j]:
            continue
        inv = 1.0 / norms[j]
        for v in range(nv):
            acc = z0[j]
            for k in range(D):
                acc += Z[j, k] * V[v, k]
            out[j, v] = acc * inv
    return out


class Polytopes(NamedTuple):
    """Convex polytopes in CSR form: polytope r owns vertex rows ``vertex_indptr[r]:vertex_indptr[r + 1]``
    and constraint rows ``constraint_indptr[r]:constraint_indptr[r + 1]`` (constraint c reads
    constraint_normals[c]·x ≤ constraint_rhs[c]). The kernels read these fields from any record that
    has them (a regions.chunk.Chunk)."""

    vertices: np.ndarray  # (vertex rows, D) float64
    incidence: np.ndarray  # (vertex rows, words) uint64: the hyperplane ids each vertex lies on
    vertex_indptr: np.ndarray  # (R + 1,) int64
    constraint_ids: np.ndarray  # (constraint rows,) int64 global hyperplane ids (polytope.py)
    constraint_normals: np.ndarray  # (constraint rows, D) unit outward normals
    constraint_rhs: np.ndarray  # (constraint rows,) right-hand sides
    constraint_indptr: np.ndarray  # (R + 1,) int64


class LayerInputs(NamedTuple):
    """Each region's layer input a(x) = A x + c, stored per parent (module docstring: A = diag(bits) Z_p,
    c = bits ⊙ z0_p with p = parent); the kernels read these fields from any record that has them (a
    regions.chunk.Chunk)."""

    parent_Z: np.ndarray  # (P, n_in, D): the previous layer's pre-activation gradients Z_p
    parent_z0: np.ndarray  # (P, n_in): its pre-activation constants z0_p
    parent: np.ndarray  # (R,) int64: each region's parent
    bits: np.ndarray  # (R, n_in) bool: each region's pattern bits in the previous layer


class Layer(NamedTuple):
    """A hidden layer z = W a + b. ``hyperplane_ids[j]`` is unit j's global hyperplane id, or -1 for a
    linear (pass-through) unit: such a unit never cuts, and its bit is always 1, so that
    the layer input a = diag(bits)(Z_p x + z0_p) passes its pre-activation on to the next layer unchanged."""

    weights: np.ndarray  # (n, n_in)
    biases: np.ndarray  # (n,)
    hyperplane_ids: np.ndarray  # (n,) int64


class LayerStack(NamedTuple):
    """Every hidden layer of a net in three flat arrays, so that a kernel can walk the layers (numba
    takes a list of arrays of different shapes only as a typed list): layer l's units are
    ``units[l]:units[l + 1]`` of ``biases`` and ``hyperplane_ids``, its weights ``weights[w0:w1]``
    reshaped to (units, inputs) with ``w0, w1 = weight_starts[l], weight_starts[l + 1]``."""

    weights: np.ndarray  # (Σ_l n_l·n_{l-1},) float64, each layer's W row by row
    biases: np.ndarray  # (Σ_l n_l,)
    hyperplane_ids: np.ndarray  # (Σ_l n_l,) int64 (Layer.hyperplane_ids)
    units: np.ndarray  # (L + 1,) int64 offsets of each layer's units
    weight_starts: np.ndarray  # (L + 1,) int64 offsets of each layer's weights

    @classmethod
    def of(cls, layers: list[Layer]) -> LayerStack:
        units = np.array([0, *itertools.accumulate(layer.biases.shape[0] for layer in layers)], dtype=np.int64)
        weight_starts = np.array([0, *itertools.accumulate(layer.weights.size for layer in layers)], dtype=np.int64)
        if not layers:
            return cls(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), units, weight_starts)
        return cls(np.concatenate([layer.weights.ravel() for layer in layers]),
                   np.concatenate([layer.biases for layer in layers]),
                   np.concatenate([layer.hyperplane_ids for layer in layers]), units, weight_starts)

    def layer(self, layer: int) -> Layer:
        """Hidden layer ``layer`` (views of the stack's arrays): :func:`stack_layer` run as Python."""
        return stack_layer.py_func(self, layer)


@njit(cache=True, nogil=True)
def stack_layer(stack, layer):
    """Hidden layer ``layer`` of a :class:`LayerStack` (views of its arrays)."""
    u0, u1 = stack.units[layer], stack.units[layer + 1]
    W = stack.weights[stack.weight_starts[layer]:stack.weight_starts[layer + 1]].reshape((u1 - u0, -1))
    return Layer(W, stack.biases[u0:u1], stack.hyperplane_ids[u0:u1])


@njit(cache=True, nogil=True)
def children_chunk(chunk, split, hyperplane_ids):
    """The chunk of the children of ``split``, the split of ``chunk`` by a layer with these hyperplane
    ids: their polytopes and layer inputs, and their patterns, the parent region's followed by the
    layer's ReLU bits (the units of id ≥ 0; a linear unit's bit is not part of a pattern)."""
    parent, bits = split.inputs.parent, split.inputs.bits
    before = chunk.patterns.shape[1]
    relu = np.flatnonzero(hyperplane_ids >= 0)
    patterns = np.empty((parent.shape[0], before + relu.shape[0]), dtype=np.bool_)
    for r in range(parent.shape[0]):
        for i in range(before):
            patterns[r, i] = chunk.patterns[parent[r], i]
        for i in range(relu.shape[0]):
            patterns[r, before + i] = bits[r, relu[i]]
    c = split.children
    return Chunk(c.vertices, c.incidence, c.vertex_indptr, c.constraint_ids, c.constraint_normals, c.constraint_rhs,
                 c.constraint_indptr, split.inputs.parent_Z, split.inputs.parent_z0, parent, bits, patterns)


class SplitTolerances(NamedTuple):
    """The splitter's tolerances (tolerances.py): ``on_hyperplane`` and ``sliver`` are absolute
    distances (relative tolerances times the box scale), the other two relative."""

    on_hyperplane: float
    sliver: float
    flat_gradient: float
    pattern_rounding: float


class LayerSplit(NamedTuple):
    """The children of a chunk split by one layer: their polytopes and their inputs to the next layer
    (``inputs.parent_Z``/``parent_z0`` are this layer's pre-activation maps on every region of
    the chunk; ``inputs.parent`` indexes them), and the number of slivers dropped."""

    children: Polytopes
    inputs: LayerInputs
    dropped: int


#: Regions whose layer inputs go through one matrix product in :func:`pre_activation_maps`.
GEMM_BLOCK = 128


@njit(cache=True, nogil=True)
def pre_activation_maps(inputs, W, b):
    """This layer's pre-activation map on every region of a chunk: Z_r = W A_r (R, n, D) and
    z0_r = W c_r + b (R, n), with A_r = diag(bits_r) Z_p, c_r = bits_r ⊙ z0_p (p = parent_r). With the
    output layer's (W, b) it gives the net's output maps on the regions of a final chunk.

    The inputs of :data:`GEMM_BLOCK` regions are laid side by side, [A_1 c_1 A_2 c_2 …], and multiplied
    by W at once: W is read from memory once per block instead of once per region (for a 1024-wide
    layer W is 8 MB, far beyond the caches, and a product with a thin (n_in, D) matrix is bound by that
    read)."""
    R = inputs.parent.shape[0]
    n_in, D = inputs.parent_Z.shape[1], inputs.parent_Z.shape[2]
    n = W.shape[0]
    Z = np.empty((R, n, D))
    z0 = np.empty((R, n))
    for start in range(0, R, GEMM_BLOCK):
        stop = min(start + GEMM_BLOCK, R)
        block = np.empty((n_in, (stop - start) * (D + 1)))
        for q in range(stop - start):  # [A_q c_q]: the parent's map, its rows kept where the bits are on
            r = start + q
            p = inputs.parent[r]
            for i in range(n_in):
                on = inputs.bits[r, i]
                for d in range(D):
                    block[i, q * (D + 1) + d] = inputs.parent_Z[p, i, d] if on else 0.0
                block[i, q * (D + 1) + D] = inputs.parent_z0[p, i] if on else 0.0
        M = W @ block
        for q in range(stop - start):
            for j in range(n):
                for d in range(D):
                    Z[start + q, j, d] = M[j, q * (D + 1) + d]
                z0[start + q, j] = M[j, q * (D + 1) + D] + b[j]
    return Z, z0


@njit(cache=True, nogil=True)
def _settle_root(dT, flat, constant_active, hyperplane_ids, tol, sliver):
    """A region against every unit of the layer (dT: one distance row per unit): the ReLU units whose
    hyperplane cuts it, the bits of the others (flat ones by their constant sign, linear units 1), the
    slivers dropped, and whether the region lies within tol of a hyperplane (a sliver itself)."""
    n = flat.shape[0]
    bits = constant_active & flat
    cutting = np.empty(n, dtype=np.int64)
    m = 0
    dropped = 0
    for j in range(n):
        if hyperplane_ids[j] < 0:
            bits[j] = True
            continue
        if flat[j]:
            continue
        state = side_of(dT[j], tol)
        if state == 0:
            cutting[m] = j
            m += 1
        elif state == 3:
            return cutting[:0], bits, dropped, True
        else:
            bits[j] = state == 1
            dropped += sliver_count(dT[j], state, sliver)
    return cutting[:m], bits, dropped, False


@njit(cache=True, nogil=True)
def _settle_node(d, cols, bits, tol, sliver):
    """A node of the splitting tree against the hyperplanes still to test (d: one column per entry of
    ``cols``): the column positions that cut it, how many, the slivers dropped (the non-cutting ones'
    bits are set in ``bits``), and whether the node is a sliver itself."""
    cutting = np.empty(cols.shape[0], dtype=np.int64)
    n_cut = 0
    dropped = 0
    for k in range(cols.shape[0]):
        state = side_of(d[:, k], tol)
        if state == 0:
            cutting[n_cut] = k
            n_cut += 1
        elif state == 3:  # every vertex within tol of the hyperplane: the node is a sliver itself
            return cutting, 0, dropped, True
        else:
            bits[cols[k]] = state == 1
            dropped += sliver_count(d[:, k], state, sliver)
    return cutting, n_cut, dropped, False


@njit(cache=True, nogil=True)
def split_layer(chunk, layer, tols, max_children):
    """Split every region of a chunk (a record with the fields of :class:`Polytopes` and
    :class:`LayerInputs`) by the units of one :class:`Layer`; returns a :class:`LayerSplit` whose
    children are in the chunk's CSR form. Stops early (returning what it has) once more than
    ``max_children`` children exist. (:func:`split_layer_by_maps` with the layer's pre-activation
    maps on the chunk's regions.)"""
    Z_out, z0_out = pre_activation_maps(chunk, layer.weights, layer.biases)
    return split_layer_by_maps(chunk, Z_out, z0_out, layer, tols, max_children)


@njit(cache=True, nogil=True)
def split_to_chunk(chunk, stack, layer, tols, max_children):
    """The chunk of the children of ``chunk`` split by hidden layer ``layer`` of a :class:`LayerStack`
    (:func:`split_layer`, then :func:`children_chunk`) and the number of slivers dropped: the steps of a
    chunk split in one piece in one kernel call, where each of them would cost a call of its own
    (a chunk's dozen arrays passed in and out of each)."""
    cut = stack_layer(stack, layer)
    split = split_layer(chunk, cut, tols, max_children)
    return children_chunk(chunk, split, cut.hyperplane_ids), split.dropped


@njit(cache=True, nogil=True)
def split_layer_by_maps(chunk, Z_out, z0_out, layer, tols, max_children):
    """:func:`split_layer` given the layer's pre-activation maps on the chunk's regions (Z_out[r],
    z0_out[r] of :func:`pre_activation_maps`): regions r0 … r1 of a chunk split with the rows r0 … r1
    of the maps computed on the whole chunk give the children of those regions in the whole chunk's
    split, whatever r0 and r1, so a chunk may be split in parts cut anywhere (regions/tree.py).

    Length: the geometry (crossings, a child's vertices and incidence, slivers, rounding tests) is in
    the helpers above; this kernel is the driver that walks regions and units and appends to the seven
    typed output lists, which numba cannot return from a helper without copying them."""
    n_regions = chunk.vertex_indptr.shape[0] - 1
    D = chunk.vertices.shape[1]
    W, b = layer.weights, layer.biases
    n = W.shape[0]
    voff, coff = chunk.vertex_indptr, chunk.constraint_indptr
    out_V = List()
    out_I = List()
    out_ids = List()
    out_N = List()
    out_rhs = List()
    out_parent = List()
    out_bits = List()
    dropped = 0
    absW = np.abs(W)
    W_row_abs = absW.sum(axis=1)
    scratch = rounding_scratch(W.shape[1], n)
    flat, constant_active = scratch.flat, scratch.constant_active
    for r in range(n_regions):
        Z = Z_out[r]
        z0 = z0_out[r]
        norms = np.sqrt((Z * Z).sum(axis=1))
        rounding_tests(absW, W_row_abs, b, chunk, r, z0, norms, tols.flat_gradient, tols.pattern_rounding, scratch)
        V0 = chunk.vertices[voff[r] : voff[r + 1]]
        dT = _distances_T(V0, Z, z0, norms, flat)
        # A hyperplane that does not cut the region cannot cut any of its children: settle those bits
        # now and carry only the cutting columns C through the splits.
        C, bits0, n_slivers, thin = _settle_root(
            dT, flat, constant_active, layer.hyperplane_ids, tols.on_hyperplane, tols.sliver
        )
        dropped += n_slivers + (1 if thin else 0)
        if thin:
            continue
        if C.shape[0] == 0:  # no unit cuts the region: it is its own only child, its constraints
            c0, c1 = coff[r], coff[r + 1]  # facets already (prune_constraints made them so; pruning is idempotent)
            out_V.append(V0.copy())
            out_I.append(chunk.incidence[voff[r] : voff[r + 1]].copy())
            out_ids.append(chunk.constraint_ids[c0:c1].copy())
            out_N.append(chunk.constraint_normals[c0:c1].copy())
            out_rhs.append(chunk.constraint_rhs[c0:c1].copy())
            out_parent.append(r)
            out_bits.append(bits0)
            if len(out_V) > max_children:
                break
            continue
        # depth-first work stack of (V, inc, distances to the hyperplanes that cut it, their neurons,
        # bits, constraint arrays); each node settles every hyperplane that does not cut it, splits by
        # the first one that does and hands its children only the columns that cut it
        stack = List()
        stack.append(
            (
                V0.copy(), chunk.incidence[voff[r] : voff[r + 1]].copy(), np.ascontiguousarray(dT[C].T), C, bits0,
                chunk.constraint_ids[coff[r] : coff[r + 1]].copy(),
                chunk.constraint_normals[coff[r] : coff[r + 1]].copy(),
                chunk.constraint_rhs[coff[r] : coff[r + 1]].copy(),
            )
        )
        while len(stack) > 0:
            V, incidence, d, cols, bits, ids, nrm, rhs = stack.pop()
            cutting, n_cut, n_slivers, thin = _settle_node(d, cols, bits, tols.on_hyperplane, tols.sliver)
            dropped += n_slivers + (1 if thin else 0)
            if thin:
                continue
            if n_cut == 0:
                incidence = incidence.copy()
                ids, nrm, rhs = prune_constraints(incidence, ids, nrm, rhs, D)
                out_V.append(V)
                out_I.append(incidence)
                out_ids.append(ids)
                out_N.append(nrm)
                out_rhs.append(rhs)
                out_parent.append(r)
                out_bits.append(bits)
                if len(out_V) > max_children:
                    break
                continue
            rest = cutting[1:n_cut]
            neuron = cols[cutting[0]]
            hid = layer.hyperplane_ids[neuron]
            unit = Z[neuron] / norms[neuron]
            off = z0[neuron] / norms[neuron]
            Vp, Ip, dp, Vn, In, dn = _split(V, incidence, d[:, cutting[0]].copy(), d[:, rest], hid, tols.on_hyperplane)
            rest_cols = cols[rest]
            bits_pos = bits.copy()
            bits_pos[neuron] = True
            bits_neg = bits.copy()
            bits_neg[neuron] = False
            # positive side: z ≥ 0  ⇔  (−Z/‖Z‖)·x ≤ z0/‖Z‖ ; negative side: (Z/‖Z‖)·x ≤ −z0/‖Z‖
            ids_pos, normals_pos, rhs_pos = _with_constraint(ids, nrm, rhs, hid, -unit, off)
            ids_neg, normals_neg, rhs_neg = _with_constraint(ids, nrm, rhs, hid, unit, -off)
            stack.append((Vn, In, dn, rest_cols, bits_neg, ids_neg, normals_neg, rhs_neg))
            stack.append((Vp, Ip, dp, rest_cols, bits_pos, ids_pos, normals_pos, rhs_pos))
        if len(out_V) > max_children:
            break
    children, parent, bits = _pack(out_V, out_I, out_ids, out_N, out_rhs, out_parent, out_bits, D, n,
                                   chunk.incidence.shape[1])
    return LayerSplit(children, LayerInputs(Z_out, z0_out, parent, bits), dropped)


@njit(cache=True, nogil=True)
def _pack(out_V, out_I, out_ids, out_N, out_rhs, out_parent, out_bits, D, n, words):
    """The collected children as :class:`Polytopes`, with their parents and bits."""
    R = len(out_V)
    voff = np.zeros(R + 1, dtype=np.int64)
    coff = np.zeros(R + 1, dtype=np.int64)
    for r in range(R):
        voff[r + 1] = voff[r] + out_V[r].shape[0]
        coff[r + 1] = coff[r] + out_ids[r].shape[0]
    V = np.empty((voff[R], D))
    incidence = np.empty((voff[R], words), dtype=np.uint64)
    ids = np.empty(coff[R], dtype=np.int64)
    N = np.empty((coff[R], D))
    rhs = np.empty(coff[R])
    parent = np.empty(R, dtype=np.int64)
    bits = np.empty((R, n), dtype=np.bool_)
    for r in range(R):
        V[voff[r] : voff[r + 1]] = out_V[r]
        incidence[voff[r] : voff[r + 1]] = out_I[r]
        ids[coff[r] : coff[r + 1]] = out_ids[r]
        N[coff[r] : coff[r + 1]] = out_N[r]
        rhs[coff[r] : coff[r + 1]] = out_rhs[r]
        parent[r] = out_parent[r]
        bits[r] = out_bits[r]
    return Polytopes(V, incidence, voff, ids, N, rhs, coff), parent, bits
