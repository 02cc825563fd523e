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

from quasieq.regions.polytope import has_bit, set_bit
from quasieq.regions.splitting import (
    LayerInputs,
    LayerSplit,
    Polytopes,
    layer_input,
    pre_activation_maps,
    rounding_tests,
    side_of,
    sliver_count,
)


class _Rows(NamedTuple):
    """Polygon rows: per row a vertex and its outgoing edge's line (id, unit normal, right-hand side)."""

    vertices: np.ndarray  # (rows, 2)
    line_ids: np.ndarray  # (rows,) int64
    normals: np.ndarray  # (rows, 2)
    rhs: np.ndarray  # (rows,)


@njit(cache=True, nogil=True)
def _new_rows(capacity):
    return _Rows(np.empty((capacity, 2)), np.empty(capacity, dtype=np.int64), np.empty((capacity, 2)),
                 np.empty(capacity))


@njit(cache=True, nogil=True)
def _reserve(rows, needed):
    """``rows`` with room for at least ``needed`` rows (doubled and copied when short)."""
    if needed <= rows.rhs.shape[0]:
        return rows
    grown = _new_rows(max(needed, 2 * rows.rhs.shape[0]))
    n = rows.rhs.shape[0]
    grown.vertices[:n] = rows.vertices
    grown.line_ids[:n] = rows.line_ids
    grown.normals[:n] = rows.normals
    grown.rhs[:n] = rows.rhs
    return grown


@njit(cache=True, nogil=True)
def _copy_row(src, i, dst, j):
    dst.vertices[j, 0] = src.vertices[i, 0]
    dst.vertices[j, 1] = src.vertices[i, 1]
    dst.line_ids[j] = src.line_ids[i]
    dst.normals[j, 0] = src.normals[i, 0]
    dst.normals[j, 1] = src.normals[i, 1]
    dst.rhs[j] = src.rhs[i]


@njit(cache=True, nogil=True)
def _set_line(rows, j, line_id, n0, n1, rhs):
    rows.line_ids[j] = line_id
    rows.normals[j, 0] = n0
    rows.normals[j, 1] = n1
    rows.rhs[j] = rhs


@njit(cache=True, nogil=True)
def _polygon_rows(chunk, r, rows):
    """Region r of the chunk as polygon rows (written from row 0 of ``rows``): edge i's line is the
    first constraint of the region through both of its ends (by incidence). Returns the row count."""
    v0, k = chunk.vertex_indptr[r], chunk.vertex_indptr[r + 1] - chunk.vertex_indptr[r]
    c0, c1 = chunk.constraint_indptr[r], chunk.constraint_indptr[r + 1]
    for i in range(k):
        a, b = v0 + i, v0 + (i + 1) % k
        rows.vertices[i, 0] = chunk.vertices[a, 0]
        rows.vertices[i, 1] = chunk.vertices[a, 1]
        for c in range(c0, c1):
            hid = chunk.constraint_ids[c]
            if has_bit(chunk.incidence[a], hid) and has_bit(chunk.incidence[b], hid):
                normal = chunk.constraint_normals[c]
                _set_line(rows, i, hid, normal[0], normal[1], chunk.constraint_rhs[c])
                break
    return k


@njit(cache=True, nogil=True)
def _distances(rows, start, k, Z, z0, inv_norms, j, out):
    """out[i] = signed distance of vertex row start + i to neuron j's line, i < k."""
    for i in range(k):
        out[i] = (z0[j] + Z[j, 0] * rows.vertices[start + i, 0] + Z[j, 1] * rows.vertices[start + i, 1]) * inv_norms[j]


@njit(cache=True, nogil=True)
def _end_row(node, dst, j, prev_edge, skipped, chord):
    """Give row j of a child the line of its outgoing edge: the cutting line (``chord``) when parent
    vertices were skipped after it, else the parent edge ``prev_edge`` it lies on."""
    if skipped:
        line_id, n0, n1, rhs = chord
        _set_line(dst, j, line_id, n0, n1, rhs)
    else:
        _set_line(dst, j, node.line_ids[prev_edge], node.normals[prev_edge, 0], node.normals[prev_edge, 1],
                  node.rhs[prev_edge])


@njit(cache=True, nogil=True)
def _write_child(node, k, d, sign, tol, chord, dst, start):
    """Write the child on side ``sign`` (+1: d ≥ −tol, −1: d ≤ tol) of the polygon ``node`` (rows
    0 … k−1, signed distances d) into ``dst`` from row ``start``; ``chord`` = (line id, n0, n1, rhs) of
    the cutting line's constraint on that side. Returns the child's row count (module docstring)."""
    row = start
    prev_edge = -1  # parent edge of the last written row
    skipped = False  # a parent vertex was left out since the last written row
    skipped_first = False  # ... before the first written row
    for i in range(k):
        di = sign * d[i]
        j = (i + 1) % k
        dj = sign * d[j]
        if di >= -tol:
            if prev_edge < 0:
                skipped_first = skipped
            else:
                _end_row(node, dst, row - 1, prev_edge, skipped, chord)
            dst.vertices[row, 0] = node.vertices[i, 0]
            dst.vertices[row, 1] = node.vertices[i, 1]
            prev_edge, skipped = i, False
            row += 1
        else:
            skipped = True
        if (di > tol and dj < -tol) or (di < -tol and dj > tol):
            t = d[i] / (d[i] - d[j])
            if prev_edge < 0:
                skipped_first = skipped
            else:
                _end_row(node, dst, row - 1, prev_edge, skipped, chord)
            for c in range(2):
                dst.vertices[row, c] = node.vertices[i, c] + t * (node.vertices[j, c] - node.vertices[i, c])
            prev_edge, skipped = i, False
            row += 1
    _end_row(node, dst, row - 1, prev_edge, skipped or skipped_first, chord)  # the closing edge
    return row - start


class _Leaves(NamedTuple):
    """The leaves written so far: polygon rows, per leaf its row count, parent region and bits."""

    rows: _Rows
    counts: np.ndarray  # (capacity,) int64
    parent: np.ndarray  # (capacity,) int64
    bits: np.ndarray  # (capacity, n) bool


@njit(cache=True, nogil=True)
def _grown(a, capacity):
    """A copy of the 1-D array ``a`` with room for ``capacity`` entries."""
    out = np.empty(capacity, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _add_leaf(leaves, n_leaves, n_rows, node, k, r, bits):
    """Append polygon ``node`` (rows 0 … k−1) of region r with ``bits`` (growing the storage)."""
    rows = _reserve(leaves.rows, n_rows + k)
    counts, parent, all_bits = leaves.counts, leaves.parent, leaves.bits
    if n_leaves == counts.shape[0]:
        cap = 2 * counts.shape[0]
        counts, parent = _grown(counts, cap), _grown(parent, cap)
        grown = np.empty((cap, all_bits.shape[1]), dtype=np.bool_)
        grown[:n_leaves] = all_bits
        all_bits = grown
    for i in range(k):
        _copy_row(node, i, rows, n_rows + i)
    counts[n_leaves] = k
    parent[n_leaves] = r
    all_bits[n_leaves] = bits
    return _Leaves(rows, counts, parent, all_bits)


@njit(cache=True, nogil=True)
def _pack_leaves(leaves, n_leaves, words):
    """The leaves as :class:`splitting.Polytopes`, their parents and bits. A vertex's incidence bits are
    its two edges' lines; a polygon's constraints are its edges in ascending line id, the order in which
    the general splitter lists them (the box faces, then the neurons in the order they split)."""
    offsets = np.zeros(n_leaves + 1, dtype=np.int64)
    for q in range(n_leaves):
        offsets[q + 1] = offsets[q] + leaves.counts[q]
    total = offsets[n_leaves]
    rows = leaves.rows
    incidence = np.zeros((total, words), dtype=np.uint64)
    ids = np.empty(total, dtype=np.int64)
    normals = np.empty((total, 2))
    rhs = np.empty(total)
    for q in range(n_leaves):
        start, k = offsets[q], leaves.counts[q]
        for i in range(k):
            set_bit(incidence[start + i], rows.line_ids[start + i])
            set_bit(incidence[start + i], rows.line_ids[start + (i - 1) % k])
        order = np.argsort(rows.line_ids[start : start + k])
        for c in range(k):
            e = start + order[c]
            ids[start + c] = rows.line_ids[e]
            normals[start + c] = rows.normals[e]
            rhs[start + c] = rows.rhs[e]
    children = Polytopes(rows.vertices[:total].copy(), incidence, offsets, ids, normals, rhs, offsets.copy())
    return children, leaves.parent[:n_leaves].copy(), leaves.bits[:n_leaves].copy()


@njit(cache=True, nogil=True)
def split_polygons(chunk, layer, tols, max_children):
    """:func:`splitting.split_layer` for D = 2 (same arguments, same :class:`splitting.LayerSplit`).

    Length: one numba kernel on purpose. Its pieces (the per-unit rows of each pending node, the
    growing leaf store) are already helpers; what remains is the loop that owns the node stack and the
    row buffers, which every piece reads and grows, so a further split would pass those eight arrays
    back and forth and return grown buffers as tuples, without making a step easier to read."""
    n_regions = chunk.vertex_indptr.shape[0] - 1
    W, b = layer.weights, layer.biases
    n = W.shape[0]
    tol = tols.on_hyperplane
    Z_out, z0_out = pre_activation_maps(chunk, W, b)
    absW = np.abs(W)
    W_row_abs = absW.sum(axis=1)
    max_k = 8
    for r in range(n_regions):
        max_k = max(max_k, chunk.vertex_indptr[r + 1] - chunk.vertex_indptr[r])
    # the pending nodes of a region's splitting tree: node s has rows first_row[s] … + n_rows[s] of
    # ``rows``, its still-cutting neurons columns[first_col[s] … + n_cols[s]] and its bits node_bits[s]
    # (each pop pushes at most two nodes and removes a neuron: never more than n + 2 pending)
    rows = _new_rows(4 * (max_k + n))
    columns = np.empty(4 * n + 4, dtype=np.int64)
    first_row = np.empty(n + 2, dtype=np.int64)
    n_rows_of = np.empty(n + 2, dtype=np.int64)
    first_col = np.empty(n + 2, dtype=np.int64)
    n_cols = np.empty(n + 2, dtype=np.int64)
    node_bits = np.empty((n + 2, n), dtype=np.bool_)
    node = _new_rows(max_k + n + 2)  # the popped node (a polygon has at most one edge per line)
    cols = np.empty(n, dtype=np.int64)
    bits = np.empty(n, dtype=np.bool_)
    d = np.empty(max_k + n + 2)
    leaves = _Leaves(_new_rows(64 * max_k), np.empty(64, dtype=np.int64), np.empty(64, dtype=np.int64),
                     np.empty((64, n), dtype=np.bool_))
    n_leaves = n_rows = 0
    dropped = 0
    for r in range(n_regions):
        A_in, c_in = layer_input(chunk, r)
        Z, z0 = Z_out[r], z0_out[r]
        norms = np.sqrt((Z * Z).sum(axis=1))
        flat, constant_active = rounding_tests(absW, W_row_abs, b, A_in, c_in, z0, norms, tols.flat_gradient,
                                               tols.pattern_rounding)
        inv_norms = 1.0 / np.where(flat, 1.0, norms)
        k = _polygon_rows(chunk, r, rows)
        m = 0
        for j in range(n):
            if not flat[j] and layer.hyperplane_ids[j] >= 0:
                columns[m] = j
                m += 1
        first_row[0], n_rows_of[0], first_col[0], n_cols[0] = 0, k, 0, m
        node_bits[0] = (constant_active & flat) | (layer.hyperplane_ids < 0)  # linear units: 1
        top = 0
        while top >= 0:
            # pop: copy the node out; its storage is where its children go
            k, m = n_rows_of[top], n_cols[top]
            row0, col0 = first_row[top], first_col[top]
            for i in range(k):
                _copy_row(rows, row0 + i, node, i)
            cols[:m] = columns[col0 : col0 + m]
            bits[:] = node_bits[top]
            top -= 1
            # settle every line that does not cut the node; keep the cutting ones in order
            n_cut = 0
            thin = False
            for q in range(m):
                j = cols[q]
                _distances(node, 0, k, Z, z0, inv_norms, j, d)
                state = side_of(d[:k], tol)
                if state == 0:
                    cols[n_cut] = j
                    n_cut += 1
                elif state == 3:  # every vertex within tol of the line: the node is a sliver itself
                    thin = True
                    break
                else:
                    bits[j] = state == 1
                    dropped += sliver_count(d[:k], state, tols.sliver)
            if thin:
                dropped += 1
                continue
            if n_cut == 0:
                leaves = _add_leaf(leaves, n_leaves, n_rows, node, k, r, bits)
                n_leaves += 1
                n_rows += k
                if n_leaves > max_children:
                    break
                continue
            j = cols[0]
            _distances(node, 0, k, Z, z0, inv_norms, j, d)
            hid = layer.hyperplane_ids[j]
            u0, u1, off = Z[j, 0] * inv_norms[j], Z[j, 1] * inv_norms[j], z0[j] * inv_norms[j]
            rows = _reserve(rows, row0 + 2 * k + 4)
            if col0 + 2 * n_cut > columns.shape[0]:
                columns = _grown(columns, 2 * (col0 + 2 * n_cut))
            # negative child first, so that the positive one is popped (and written out) first
            k_neg = _write_child(node, k, d, -1.0, tol, (hid, u0, u1, -off), rows, row0)
            k_pos = _write_child(node, k, d, 1.0, tol, (hid, -u0, -u1, off), rows, row0 + k_neg)
            for side, first, count in ((0, row0, k_neg), (1, row0 + k_neg, k_pos)):
                top += 1
                first_row[top], n_rows_of[top] = first, count
                first_col[top], n_cols[top] = col0 + side * (n_cut - 1), n_cut - 1
                columns[col0 + side * (n_cut - 1) : col0 + (side + 1) * (n_cut - 1)] = cols[1:n_cut]
                node_bits[top] = bits
                node_bits[top, j] = side == 1
        if n_leaves > max_children:
            break
    children, parent, leaf_bits = _pack_leaves(leaves, n_leaves, chunk.incidence.shape[1])
    return LayerSplit(children, LayerInputs(Z_out, z0_out, parent, leaf_bits), dropped)


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
