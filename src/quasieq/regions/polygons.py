"""Splitting polygons by the lines of one layer: the 2-D twin of splitting.split_layer (numba kernel).

In the plane a region is a convex polygon held as its vertices in cyclic order v_0 … v_{k−1} and, per
edge i (from v_i to v_{i+1}), the line it lies on: a global hyperplane id (polytope.py), the unit
outward normal n_i and the right-hand side c_i (n_i·x ≤ c_i inside). The edges are the facets, so the
splitter needs no incidence bitsets, no edge search and no pruning. With d_i the signed distance of v_i
to the line h of neuron j, d_i = (Z_j·v_i + z0_j)/‖Z_j‖ (splitting.py), the positive child is one walk
around the polygon:

* it keeps, in order, the vertices with d_i ≥ −tol, and on each edge whose ends lie strictly on
  opposite sides (beyond ±tol) the crossing w = v_i + t(v_{i+1} − v_i), t = d_i/(d_i − d_{i+1});
* a kept row's outgoing edge lies on its parent edge's line when the next kept row follows it on the
  parent's boundary (no vertex skipped between them); otherwise it is the chord along h, whose
  constraint z_j ≥ 0 reads (−Z_j/‖Z_j‖)·x ≤ z0_j/‖Z_j‖.

The negative child is the same walk with d replaced by −d (constraint (Z_j/‖Z_j‖)·x ≤ −z0_j/‖Z_j‖).
Vertices within tol of h join both children, as in the general splitter; the distances are recomputed
from the coordinates at every node (two multiply-adds per vertex and line) instead of being carried.

A region's whole subtree is explored depth first on a stack whose storage is reused last in, first
out: a node is copied out when popped and its children are written where it lay, so nothing is
allocated per split. Only the leaves are written out, in the CSR form of :class:`splitting.Polytopes`
(vertices in cyclic order, one constraint per edge, each vertex's incidence bits its two edges' lines).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from quasieq.regions.chunk import Chunk, FinishedChunk, chunk_rows, source_code
from quasieq.regions.neighbours import UNRESOLVED
from quasieq.regions.polytope import has_bit, row_has_bit, row_set_bit
from quasieq.regions.splitting import (
    LayerInputs,
    LayerSplit,
    Polytopes,
    children_chunk,
    pre_activation_maps,
    rounding_scratch,
    rounding_tests,
    stack_layer,
)


@njit(cache=True, nogil=True)
def _row_store(capacity):
    """Empty polygon rows: per row a vertex and its outgoing edge's line (id, unit normal, rhs)."""
    return np.empty((capacity, 2)), np.empty(capacity, dtype=np.int64), np.empty((capacity, 2)), np.empty(capacity)


@njit(cache=True, nogil=True)
def _grown_rows(vertices, line_ids, normals, rhs, capacity):
    """The four row arrays of a polygon store copied into arrays of ``capacity`` rows."""
    n = rhs.shape[0]
    v, ids, nrm, c = _row_store(capacity)
    for i in range(n):
        v[i, 0], v[i, 1] = vertices[i, 0], vertices[i, 1]
        ids[i] = line_ids[i]
        nrm[i, 0], nrm[i, 1] = normals[i, 0], normals[i, 1]
        c[i] = rhs[i]
    return v, ids, nrm, c


@njit(cache=True, nogil=True)
def _grown(a, capacity):
    """A copy of the 1-D array ``a`` with room for ``capacity`` entries."""
    out = np.empty(capacity, dtype=a.dtype)
    for i in range(a.shape[0]):
        out[i] = a[i]
    return out


@njit(cache=True, nogil=True)
def _grown_bits(a, capacity):
    """A copy of the 2-D bool array ``a`` with room for ``capacity`` rows."""
    out = np.empty((capacity, a.shape[1]), dtype=np.bool_)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j]
    return out


@njit(cache=True, nogil=True)
def _polygon_rows(chunk, r, vertices, line_ids, normals, rhs):
    """Region r of the chunk as polygon rows (written from row 0): edge i's line is the first
    constraint of the region through both of its ends (by incidence). Returns the row count."""
    v0, k = chunk.vertex_indptr[r], chunk.vertex_indptr[r + 1] - chunk.vertex_indptr[r]
    c0, c1 = chunk.constraint_indptr[r], chunk.constraint_indptr[r + 1]
    inc = chunk.incidence
    for i in range(k):
        a, b = v0 + i, v0 + (i + 1) % k
        vertices[i, 0] = chunk.vertices[a, 0]
        vertices[i, 1] = chunk.vertices[a, 1]
        for c in range(c0, c1):
            hid = chunk.constraint_ids[c]
            if row_has_bit(inc, a, hid) and row_has_bit(inc, b, hid):
                line_ids[i] = hid
                normals[i, 0] = chunk.constraint_normals[c, 0]
                normals[i, 1] = chunk.constraint_normals[c, 1]
                rhs[i] = chunk.constraint_rhs[c]
                break
    return k


@njit(cache=True, nogil=True, inline="always")
def _write_child(pv, pid, pn, pr, k, d, sign, tol, chord, vertices, line_ids, normals, rhs, start):
    """Write the child on side ``sign`` (+1: d ≥ −tol, −1: d ≤ tol) of the popped polygon (rows
    0 … k−1 of pv, pid, pn, pr; signed distances d) into the row arrays from row ``start``; ``chord`` =
    (line id, n0, n1, rhs) of the cutting line's constraint on that side. Returns the child's row
    count (module docstring).

    A row's outgoing edge lies on the parent edge of the row (``prev``) when no parent vertex was
    skipped before the next written row, else on the chord; the closing edge likewise."""
    row = start
    prev = -1  # parent edge of the last written row
    skipped = False  # a parent vertex was left out since the last written row
    skipped_first = False  # ... before the first written row
    for i in range(k):
        di = sign * d[i]
        j = i + 1 if i + 1 < k else 0
        dj = sign * d[j]
        if di >= -tol:  # vertex i is kept
            if prev < 0:
                skipped_first = skipped
            else:
                _set_end(pid, pn, pr, prev, skipped, chord, line_ids, normals, rhs, row - 1)
            vertices[row, 0] = pv[i, 0]
            vertices[row, 1] = pv[i, 1]
            prev, skipped = i, False
            row += 1
        else:
            skipped = True
        if (di > tol and dj < -tol) or (di < -tol and dj > tol):  # edge i crosses the line
            if prev < 0:
                skipped_first = skipped
            else:
                _set_end(pid, pn, pr, prev, skipped, chord, line_ids, normals, rhs, row - 1)
            t = d[i] / (d[i] - d[j])
            for c in range(2):
                vertices[row, c] = pv[i, c] + t * (pv[j, c] - pv[i, c])
            prev, skipped = i, False
            row += 1
    _set_end(pid, pn, pr, prev, skipped or skipped_first, chord, line_ids, normals, rhs, row - 1)  # closing edge
    return row - start


@njit(cache=True, nogil=True, inline="always")
def _set_end(pid, pn, pr, prev, on_chord, chord, line_ids, normals, rhs, row):
    """Row ``row``'s outgoing edge: the chord, or the parent edge ``prev`` it lies on."""
    if on_chord:
        line_ids[row], normals[row, 0], normals[row, 1], rhs[row] = chord
    else:
        line_ids[row], normals[row, 0], normals[row, 1], rhs[row] = pid[prev], pn[prev, 0], pn[prev, 1], pr[prev]


@njit(cache=True, nogil=True)
def _pack_leaves(vertices, line_ids, normals, rhs, counts, parent, leaf_bits, n_leaves, words):
    """The leaves as :class:`splitting.Polytopes`, their parents and bits. A vertex's incidence bits are
    its two edges' lines; a polygon's constraints are its edges in ascending line id, the order in which
    the general splitter lists them (the box faces, then the neurons in the order they split). The sort
    is numba's ``np.argsort``: an insertion sort below 16 edges (written out here), quicksort above."""
    offsets = np.zeros(n_leaves + 1, dtype=np.int64)
    for q in range(n_leaves):
        offsets[q + 1] = offsets[q] + counts[q]
    total = offsets[n_leaves]
    incidence = np.zeros((total, words), dtype=np.uint64)
    ids = np.empty(total, dtype=np.int64)
    out_normals = np.empty((total, 2))
    out_rhs = np.empty(total)
    order = np.empty(16, dtype=np.int64)
    for q in range(n_leaves):
        start, k = offsets[q], counts[q]
        for i in range(k):
            row_set_bit(incidence, start + i, line_ids[start + i])
            row_set_bit(incidence, start + i, line_ids[start + (i - 1) % k])
        if k <= 15:
            for i in range(k):  # insertion sort, stable: numba's argsort below SMALL_QUICKSORT
                key = line_ids[start + i]
                p = i
                while p > 0 and line_ids[start + order[p - 1]] > key:
                    order[p] = order[p - 1]
                    p -= 1
                order[p] = i
            ranked = order
        else:
            ranked = np.argsort(line_ids[start : start + k])
        for c in range(k):
            e = start + ranked[c]
            ids[start + c] = line_ids[e]
            out_normals[start + c, 0] = normals[e, 0]
            out_normals[start + c, 1] = normals[e, 1]
            out_rhs[start + c] = rhs[e]
    children = Polytopes(vertices[:total].copy(), incidence, offsets, ids, out_normals, out_rhs, offsets.copy())
    return children, parent[:n_leaves].copy(), leaf_bits[:n_leaves].copy()


@njit(cache=True, nogil=True)
def split_polygons(chunk, layer, tols, max_children):
    """:func:`splitting.split_layer` for D = 2 (same arguments, same :class:`splitting.LayerSplit`).

    Length: one numba kernel on purpose. Its pieces (a region's rows, a child's walk, the packing of
    the leaves) are helpers; what remains is the loop that owns the node stack and the row buffers,
    which every step reads and grows. Every copy is an explicit loop over scalars: numba's slice
    assignment of small arrays checks for overlap and broadcasts, which cost more than the copy."""
    n_regions = chunk.vertex_indptr.shape[0] - 1
    W, b = layer.weights, layer.biases
    unit_ids = layer.hyperplane_ids
    n = W.shape[0]
    tol, sliver = tols.on_hyperplane, tols.sliver
    Z_out, z0_out = pre_activation_maps(chunk, W, b)
    absW = np.abs(W)
    W_row_abs = absW.sum(axis=1)
    max_k = 8
    for r in range(n_regions):
        max_k = max(max_k, chunk.vertex_indptr[r + 1] - chunk.vertex_indptr[r])
    # the pending nodes of a region's splitting tree: node s has rows first_row[s] … + n_rows[s] of
    # the row arrays sv, sid, sn, sr, its still-cutting neurons columns[first_col[s] … + n_cols[s]]
    # and its bits node_bits[s] (each pop pushes at most two nodes and removes a neuron: never more
    # than n + 2 pending)
    sv, sid, sn, sr = _row_store(4 * (max_k + n))
    columns = np.empty(4 * n + 4, dtype=np.int64)
    first_row = np.empty(n + 2, dtype=np.int64)
    n_rows_of = np.empty(n + 2, dtype=np.int64)
    first_col = np.empty(n + 2, dtype=np.int64)
    n_cols = np.empty(n + 2, dtype=np.int64)
    node_bits = np.empty((n + 2, n), dtype=np.bool_)
    # the popped node (a polygon has at most one edge per line), its columns, bits and distances
    node_cap = max_k + n + 2
    pv, pid, pn, pr = _row_store(node_cap)
    cols = np.empty(n, dtype=np.int64)
    bits = np.empty(n, dtype=np.bool_)
    d = np.empty(node_cap)  # distances to the first cutting line
    dq = np.empty(node_cap)  # distances to the line being tested
    # the leaves written so far
    lv, lid, ln, lr = _row_store(64 * max_k)
    counts = np.empty(64, dtype=np.int64)
    parent = np.empty(64, dtype=np.int64)
    leaf_bits = np.empty((64, n), dtype=np.bool_)
    n_leaves = n_rows = 0
    dropped = 0
    norms = np.empty(n)  # per region: ‖Z_j‖ and 1/‖Z_j‖ (1 for a flat unit)
    inv_norms = np.empty(n)
    scratch = rounding_scratch(W.shape[1], n)
    flat, constant_active = scratch.flat, scratch.constant_active
    for r in range(n_regions):
        Z, z0 = Z_out[r], z0_out[r]
        for j in range(n):  # ‖Z_j‖, summed as (Z * Z).sum(axis=1) sums it
            norms[j] = np.sqrt(Z[j, 0] * Z[j, 0] + Z[j, 1] * Z[j, 1])
        rounding_tests(absW, W_row_abs, b, chunk, r, z0, norms, tols.flat_gradient, tols.pattern_rounding, scratch)
        for j in range(n):
            inv_norms[j] = 1.0 if flat[j] else 1.0 / norms[j]
        k = _polygon_rows(chunk, r, sv, sid, sn, sr)
        m = 0
        for j in range(n):
            if not flat[j] and unit_ids[j] >= 0:
                columns[m] = j
                m += 1
            node_bits[0, j] = (constant_active[j] and flat[j]) or unit_ids[j] < 0  # linear units: 1
        first_row[0], n_rows_of[0], first_col[0], n_cols[0] = 0, k, 0, m
        top = 0
        while top >= 0:
            # pop: copy the node out; its storage is where its children go
            k, m = n_rows_of[top], n_cols[top]
            row0, col0 = first_row[top], first_col[top]
            for i in range(k):
                pv[i, 0], pv[i, 1] = sv[row0 + i, 0], sv[row0 + i, 1]
                pid[i] = sid[row0 + i]
                pn[i, 0], pn[i, 1] = sn[row0 + i, 0], sn[row0 + i, 1]
                pr[i] = sr[row0 + i]
            for q in range(m):
                cols[q] = columns[col0 + q]
            for j in range(n):
                bits[j] = node_bits[top, j]
            top -= 1
            # settle every line that does not cut the node; keep the cutting ones in order
            n_cut = 0
            thin = False
            for q in range(m):
                j = cols[q]
                a0, a1, off, inv = Z[j, 0], Z[j, 1], z0[j], inv_norms[j]
                hi, lo = -np.inf, np.inf
                for i in range(k):
                    di = (off + a0 * pv[i, 0] + a1 * pv[i, 1]) * inv
                    dq[i] = di
                    hi = max(hi, di)
                    lo = min(lo, di)
                if hi > tol and lo < -tol:  # cuts: the first cutting line's distances are kept
                    if n_cut == 0:
                        d, dq = dq, d
                    cols[n_cut] = j
                    n_cut += 1
                elif hi > tol:  # positive side; a sub-tolerance sliver beyond it is counted
                    bits[j] = True
                    dropped += 1 if lo < -sliver else 0
                elif lo < -tol:
                    bits[j] = False
                    dropped += 1 if hi > sliver else 0
                else:  # every vertex within tol of the line: the node is a sliver itself
                    thin = True
                    break
            if thin:
                dropped += 1
                continue
            if n_cut == 0:
                if n_leaves == counts.shape[0]:
                    counts, parent = _grown(counts, 2 * n_leaves), _grown(parent, 2 * n_leaves)
                    leaf_bits = _grown_bits(leaf_bits, 2 * n_leaves)
                if n_rows + k > lr.shape[0]:
                    lv, lid, ln, lr = _grown_rows(lv, lid, ln, lr, max(n_rows + k, 2 * lr.shape[0]))
                for i in range(k):
                    lv[n_rows + i, 0], lv[n_rows + i, 1] = pv[i, 0], pv[i, 1]
                    lid[n_rows + i] = pid[i]
                    ln[n_rows + i, 0], ln[n_rows + i, 1] = pn[i, 0], pn[i, 1]
                    lr[n_rows + i] = pr[i]
                counts[n_leaves] = k
                parent[n_leaves] = r
                for j in range(n):
                    leaf_bits[n_leaves, j] = bits[j]
                n_leaves += 1
                n_rows += k
                if n_leaves > max_children:
                    break
                continue
            j = cols[0]
            hid = unit_ids[j]
            u0, u1, off = Z[j, 0] * inv_norms[j], Z[j, 1] * inv_norms[j], z0[j] * inv_norms[j]
            if row0 + 2 * k + 4 > sr.shape[0]:
                sv, sid, sn, sr = _grown_rows(sv, sid, sn, sr, max(row0 + 2 * k + 4, 2 * sr.shape[0]))
            if col0 + 2 * n_cut > columns.shape[0]:
                columns = _grown(columns, 2 * (col0 + 2 * n_cut))
            # negative child first, so that the positive one is popped (and written out) first
            k_neg = _write_child(pv, pid, pn, pr, k, d, -1.0, tol, (hid, u0, u1, -off), sv, sid, sn, sr, row0)
            k_pos = _write_child(pv, pid, pn, pr, k, d, 1.0, tol, (hid, -u0, -u1, off), sv, sid, sn, sr, row0 + k_neg)
            for side in range(2):
                top += 1
                first_row[top] = row0 + side * k_neg
                n_rows_of[top] = k_pos if side == 1 else k_neg
                start = col0 + side * (n_cut - 1)
                first_col[top], n_cols[top] = start, n_cut - 1
                for q in range(1, n_cut):
                    columns[start + q - 1] = cols[q]
                for jj in range(n):
                    node_bits[top, jj] = bits[jj]
                node_bits[top, j] = side == 1
        if n_leaves > max_children:
            break
    children, leaf_parent, bits_out = _pack_leaves(lv, lid, ln, lr, counts, parent, leaf_bits, n_leaves,
                                                   chunk.incidence.shape[1])
    return LayerSplit(children, LayerInputs(Z_out, z0_out, leaf_parent, bits_out), dropped)


@njit(cache=True, nogil=True)
def polygon_facts(verts, inc, voff, ids, normals, rhs, coff, exact_volume):
    """:func:`polytope.region_facts` for the polygons written by :func:`split_polygons` (vertices in
    cyclic order, one constraint per edge): the area by the shoelace formula
    ½|Σ_i x_i y_{i+1} − x_{i+1} y_i|, the vertex centroid x̄, the radius min_c (rhs_c − n_c·x̄), and each
    edge's midpoint (the centroid of its two vertices, found by incidence). ``exact_volume`` is accepted
    for the same signature; areas are always exact."""
    R = voff.shape[0] - 1
    volumes = np.empty(R)
    centres = np.empty((R, 2))
    radii = np.empty(R)
    facet_centres = np.zeros((ids.shape[0], 2))
    for r in range(R):
        v0, k = voff[r], voff[r + 1] - voff[r]
        area = 0.0
        cx = cy = 0.0
        for i in range(k):
            a, b = v0 + i, v0 + (i + 1) % k
            area += verts[a, 0] * verts[b, 1] - verts[b, 0] * verts[a, 1]
            cx += verts[a, 0]
            cy += verts[a, 1]
        cx /= k
        cy /= k
        volumes[r] = 0.5 * abs(area)
        centres[r, 0], centres[r, 1] = cx, cy
        radius = np.inf
        for c in range(coff[r], coff[r + 1]):
            radius = min(radius, rhs[c] - normals[c, 0] * cx - normals[c, 1] * cy)
            for i in range(v0, v0 + k):
                if has_bit(inc[i], ids[c]):
                    facet_centres[c, 0] += 0.5 * verts[i, 0]
                    facet_centres[c, 1] += 0.5 * verts[i, 1]
        radii[r] = radius
    return volumes, centres, radii, facet_centres


@njit(cache=True, nogil=True)
def finish_polygons(chunk, W_out, b_out, min_radius, probe_step):
    """:func:`tree.finish_chunk` for the polygons of :func:`split_polygons`, in one kernel call: the
    facts (:func:`polygon_facts`), the regions whose radius exceeds ``min_radius`` (ON_HYPERPLANE·s;
    the others are slivers, dropped and counted), their output maps A = W_L·A_in, b = W_L·c_in + b_L
    (:func:`splitting.pre_activation_maps` on the kept regions, as the general path computes them),
    their rows, and every neuron facet unresolved with its probe, the edge's midpoint moved
    ``probe_step`` (NEIGHBOUR_STEP·s) along the outward normal (:func:`neighbours.facet_probes`).
    Returns the :class:`chunk.FinishedChunk` and the number of regions dropped."""
    volumes, centres, radii, facet_centres = polygon_facts(
        chunk.vertices, chunk.incidence, chunk.vertex_indptr, chunk.constraint_ids, chunk.constraint_normals,
        chunk.constraint_rhs, chunk.constraint_indptr, True,
    )
    voff, coff = chunk.vertex_indptr, chunk.constraint_indptr
    R = radii.shape[0]
    kept = np.empty(R, dtype=np.int64)
    n_kept = n_vertices = n_facets = n_probes = 0
    for r in range(R):
        if radii[r] > min_radius:
            kept[n_kept] = r
            n_kept += 1
            n_vertices += voff[r + 1] - voff[r]
            n_facets += coff[r + 1] - coff[r]
            for c in range(coff[r], coff[r + 1]):
                if chunk.constraint_ids[c] >= 4:  # a neuron's line (ids 0 … 3 are the box's edges)
                    n_probes += 1
    kept = kept[:n_kept]
    A, b = pre_activation_maps(LayerInputs(chunk.parent_Z, chunk.parent_z0, chunk.parent[kept], chunk.bits[kept]),
                               W_out, b_out)
    vertices = np.empty((n_vertices, 2))
    vertex_indptr = np.zeros(n_kept + 1, dtype=np.int64)
    sources = np.empty(n_facets, dtype=np.int64)
    normals = np.empty((n_facets, 2))
    rhs = np.empty(n_facets)
    neighbours = np.full(n_facets, -1, dtype=np.int64)
    probes = np.empty((n_probes, 2))
    facet_indptr = np.zeros(n_kept + 1, dtype=np.int64)
    v = f = p = 0
    for q in range(n_kept):
        r = kept[q]
        for i in range(voff[r], voff[r + 1]):
            vertices[v, 0], vertices[v, 1] = chunk.vertices[i, 0], chunk.vertices[i, 1]
            v += 1
        for c in range(coff[r], coff[r + 1]):
            h = chunk.constraint_ids[c]
            sources[f] = source_code(h, 2)
            normals[f, 0], normals[f, 1] = chunk.constraint_normals[c, 0], chunk.constraint_normals[c, 1]
            rhs[f] = chunk.constraint_rhs[c]
            if h >= 4:
                neighbours[f] = UNRESOLVED
                for i in range(2):
                    probes[p, i] = facet_centres[c, i] + probe_step * normals[f, i]
                p += 1
            f += 1
        vertex_indptr[q + 1], facet_indptr[q + 1] = v, f
    reduced = FinishedChunk(
        vertices, vertex_indptr, sources, normals, rhs, facet_indptr, neighbours, probes, A, b, chunk.patterns[kept],
        volumes[kept], centres[kept], radii[kept],
    )
    return reduced, R - n_kept


class Descent(NamedTuple):
    """Where :func:`descend_polygons` stopped: the chunk it reached, split ``levels`` times from the
    one it was given, the layer that splits it next, and ``finished`` when it was final (``done``)."""

    chunk: Chunk
    layer: int
    levels: int
    dropped: int  # slivers dropped by the splits, and regions by the finish
    done: bool
    finished: FinishedChunk  # the chunk finished (``done``), else a finished chunk of no regions


@njit(cache=True, nogil=True)
def descend_polygons(chunk, layer, stack, tols, budget, chunk_size, part_min, W_out, b_out, probe_step):
    """The region tree below a 2-D chunk while it is a single path: split the chunk by layer
    ``layer`` of ``stack`` (:func:`split_polygons`, at most ``budget`` children), its children by the
    next layer, and so on, as long as the children fit in one chunk (:func:`chunk.chunk_rows` of
    ``chunk_size``, and at most ``budget``) and a chunk is split in one part (fewer than ``part_min``
    regions); a final chunk is finished (:func:`finish_polygons`, slivers below ``tols.on_hyperplane``;
    tree.finish_chunk finishes a 2-D chunk in one piece whatever its size). Each step is the one
    tree.explore takes on such a chunk, so the result is bitwise the same: this kernel only saves the
    calls between them on small nets. Returns a :class:`Descent`."""
    layers = stack.units.shape[0] - 1
    levels = dropped = 0
    fits = True
    while fits and layer < layers and chunk.vertex_indptr.shape[0] - 1 < part_min:
        cut = stack_layer(stack, layer)
        split = split_polygons(chunk, cut, tols, budget)
        chunk = children_chunk(chunk, split, cut.hyperplane_ids)
        n = chunk.vertex_indptr.shape[0] - 1
        fits = n <= min(budget, chunk_rows(layer, n, chunk_size))
        layer += 1
        levels += 1
        dropped += split.dropped
    if fits and layer == layers:
        finished, thin = finish_polygons(chunk, W_out, b_out, tols.on_hyperplane, probe_step)
        return Descent(chunk, layer, levels, dropped + thin, True, finished)
    finished, _ = finish_polygons(_no_regions(chunk), W_out, b_out, tols.on_hyperplane, probe_step)
    return Descent(chunk, layer, levels, dropped, False, finished)


@njit(cache=True, nogil=True)
def _no_regions(chunk):
    """A chunk of no regions with ``chunk``'s column types."""
    indptr = np.zeros(1, dtype=np.int64)
    return Chunk(chunk.vertices[:0], chunk.incidence[:0], indptr, chunk.constraint_ids[:0],
                 chunk.constraint_normals[:0], chunk.constraint_rhs[:0], indptr, chunk.parent_Z,
                 chunk.parent_z0, chunk.parent[:0], chunk.bits[:0], chunk.patterns[:0])
