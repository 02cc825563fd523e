"""Combinatorial polytope kernels (numba): facets from vertex–facet incidence, exact volume, centres.

A region is held in *V-form with incidence*: its vertices ``V`` (nv, D) and, per vertex, a bitset
``I[v]`` (uint64 words) of the hyperplanes it lies on. Hyperplanes have global ids: ``0 … 2D-1`` are the
box faces (``2i`` is x_i ≥ lo_i, ``2i+1`` is x_i ≤ hi_i), ``2D + k`` is hidden neuron k. Each region also
keeps a list of *constraints* (id, unit outward normal n, offset c) meaning n·x ≤ c.

Facts used (P a full-dimensional polytope, every facet of P among the constraints):

* The face of P cut out by a supporting hyperplane h has vertex set S_h = {v : h ∈ I[v]}. The facets of
  P are exactly the constraints whose S_h is maximal under inclusion (two distinct facets are never
  nested; lower faces lie inside some facet). Hence pruning to a minimal H-representation is purely
  combinatorial.
* Two vertices u, v are joined by an edge iff the smallest face containing both, whose vertices are
  {w : I[w] ⊇ I[u] ∩ I[v]}, has exactly two vertices (used by the splitter).
* Volume by pyramids over facets, recursively over faces (:func:`polytope_volume`): for a k-face F
  and a vertex a of F, vol_k(F) = (1/k) Σ_{G facet of F, a ∉ G} dist_F(a, aff G) · vol_{k−1}(G), where
  the facets of F are the maximal proper sets F ∩ S_h (h a facet of P) and the distance inside aff F
  from a to aff G = aff F ∩ {n_h·x = c_h} is |n_h·a − c_h| / ‖Π_F n_h‖, Π_F projecting onto the
  directions of F (the orthogonal complement of the normals of the chain P ⊃ … ⊃ F).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from quasieq.tolerances import PROJECTION_CANCELLATION


@njit(cache=True, nogil=True, inline="always")
def rows_contain(A: np.ndarray, i: int, B: np.ndarray, j: int) -> bool:
    """Bitset row A[i] ⊇ bitset row B[j].

    The bitset helpers take a 2-D array and a row index rather than a row: a row view ``A[i]`` is a
    new array object to numba, reference-counted with an atomic add and subtract, which in the inner
    loops of the splitter and the volume cost more than the bit operations themselves. For the same
    reason the small helpers of the inner loops are inlined into their callers (``inline="always"``):
    a call into a separate compiled function also counts a reference per array argument (inlining
    them took 15% off :func:`polytope_volume` on the regions of a 5-16-16-16-1 net)."""
    for w in range(A.shape[1]):  # noqa: SIM110 - numba compiles this loop; all() over a generator it does not
        if (B[j, w] & ~A[i, w]) != 0:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def popcount(x: np.uint64) -> int:
    """Number of set bits of a 64-bit word (SWAR bit counting)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True, inline="always")
def has_bit(bits: np.ndarray, k: int) -> bool:
    return (bits[k >> 6] >> np.uint64(k & 63)) & np.uint64(1) == np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def row_has_bit(M: np.ndarray, r: int, k: int) -> bool:
    """Bit k of bitset row M[r]."""
    return (M[r, k >> 6] >> np.uint64(k & 63)) & np.uint64(1) == np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def set_bit(bits: np.ndarray, k: int) -> None:
    bits[k >> 6] |= np.uint64(1) << np.uint64(k & 63)


@njit(cache=True, nogil=True, inline="always")
def row_set_bit(M: np.ndarray, r: int, k: int) -> None:
    M[r, k >> 6] |= np.uint64(1) << np.uint64(k & 63)


@njit(cache=True, nogil=True, inline="always")
def row_clear_bit(M: np.ndarray, r: int, k: int) -> None:
    M[r, k >> 6] &= ~(np.uint64(1) << np.uint64(k & 63))


@njit(cache=True, nogil=True, inline="always")
def row_count(M: np.ndarray, r: int) -> int:
    """Number of set bits of bitset row M[r]."""
    n = 0
    for w in range(M.shape[1]):
        n += popcount(M[r, w])
    return n


@njit(cache=True, nogil=True, inline="always")
def row_members(M: np.ndarray, r: int, out: np.ndarray) -> int:
    """The indices of the set bits of bitset row M[r], ascending, written to ``out``; returns how many.
    Word by word, lowest set bit first (x & −x), so the cost is the words plus the members, not the
    bit positions scanned."""
    n = 0
    for w in range(M.shape[1]):
        x = M[r, w]
        while x != np.uint64(0):
            low = x & (~x + np.uint64(1))
            out[n] = 64 * w + popcount(low - np.uint64(1))
            n += 1
            x ^= low
    return n


@njit(cache=True, nogil=True)
def _vertex_masks(inc, ids):
    """Facet vertex sets as bitsets over the vertices: (n_facets, ceil(nv/64)) uint64. Each vertex's
    hyperplanes are read off its incidence row (:func:`row_members`) and looked up in a table from
    hyperplane id to constraint row, so the cost is Σ_v |I[v]| rather than vertices × constraints."""
    nv = inc.shape[0]
    words = (nv + 63) >> 6
    out = np.zeros((ids.shape[0], words), dtype=np.uint64)
    row_of = np.full(64 * inc.shape[1], -1, dtype=np.int64)
    for c in range(ids.shape[0]):
        row_of[ids[c]] = c
    members = np.empty(64 * inc.shape[1], dtype=np.int64)
    for v in range(nv):
        for k in range(row_members(inc, v, members)):
            c = row_of[members[k]]
            if c >= 0:
                row_set_bit(out, c, v)
    return out


@njit(cache=True, nogil=True, inline="always")
def _is_maximal(sets, sizes, a, n):
    """Is bitset row a (of the first n rows) maximal under inclusion, and the first of equal rows?"""
    for b in range(n):
        if (
            b != a and sizes[b] >= sizes[a] and rows_contain(sets, b, sets, a)
            and (sizes[b] > sizes[a] or b < a)
        ):
            return False
    return True


@njit(cache=True, nogil=True)
def prune_constraints(inc, ids, normals, offsets, dim):
    """Keep only the facets among the constraints (minimal H-representation): the constraints whose
    vertex set S_h is maximal under inclusion (the first of equal ones) with ≥ dim vertices. Clears the
    incidence bits of the others in ``inc`` (in place); returns (ids, normals, offsets) of the facets."""
    sets = _vertex_masks(inc, ids)
    n = ids.shape[0]
    sizes = np.empty(n, dtype=np.int64)
    for c in range(n):
        sizes[c] = row_count(sets, c)
    keep = np.zeros(n, dtype=np.bool_)
    for a in range(n):
        keep[a] = sizes[a] >= dim and _is_maximal(sets, sizes, a, n)
    for c in range(n):
        if not keep[c]:
            for v in range(inc.shape[0]):
                row_clear_bit(inc, v, ids[c])
    return ids[keep].copy(), normals[keep].copy(), offsets[keep].copy()


@njit(cache=True, nogil=True, inline="always")
def _normal_component(normals, h, basis, f, rank, out):
    """out = the part of ``normals[h]`` orthogonal to the first ``rank`` rows of the orthonormal basis
    ``basis[f]`` (modified Gram–Schmidt, applied twice so that the result stays orthogonal when it is
    short); returns its length."""
    D = out.shape[0]
    for i in range(D):
        out[i] = normals[h, i]
    for _ in range(2):
        for e in range(rank):
            dot = 0.0
            for i in range(D):
                dot += out[i] * basis[f, e, i]
            for i in range(D):
                out[i] -= dot * basis[f, e, i]
    norm = 0.0
    for i in range(D):
        norm += out[i] * out[i]
    return np.sqrt(norm)


@njit(cache=True, nogil=True, inline="always")
def _first_member(M, r):
    """The smallest index in the nonempty bitset row M[r]."""
    for w in range(M.shape[1]):
        if M[r, w] != 0:
            low = M[r, w] & (~M[r, w] + np.uint64(1))
            return 64 * w + popcount(low - np.uint64(1))
    return -1


@njit(cache=True, nogil=True, inline="always")
def _facets_of_face(faces, f, k, facet_sets, cand, cand_facet, sizes):
    """The candidates for the facets of the k-face ``faces[f]``: the proper sets F ∩ S_h with at least
    k vertices, written to ``cand`` with their facet h and size; returns how many (the facets of the
    face are the maximal ones among them, :func:`_is_maximal`)."""
    n_facets, words = facet_sets.shape
    size = row_count(faces, f)
    m = 0
    for h in range(n_facets):
        s = 0
        for w in range(words):
            cand[m, w] = faces[f, w] & facet_sets[h, w]
            s += popcount(cand[m, w])
        if k <= s < size:
            sizes[m], cand_facet[m] = s, h
            m += 1
    return m


@njit(cache=True, nogil=True, inline="always")
def _polygon_area(V, faces, f, members, plane, t):
    """Area of the 2-face ``faces[f]`` (a convex polygon in D dimensions): its vertices in the plane
    coordinates (w·t₁, w·t₂), w = v − v₀, with t₁ towards the vertex farthest from v₀ and t₂ the unit
    part of the vertex farthest from that line orthogonal to t₁; ordered by angle around their
    centroid (a pseudo-angle, monotone in the angle, in place of arctan); the shoelace formula.
    ``members`` (nv,), ``plane`` (nv, 3) and ``t`` (2, D) are scratch."""
    m = row_members(faces, f, members)
    D = V.shape[1]
    if m < 3:
        return 0.0
    origin = members[0]
    far, best = members[1], -1.0
    for q in range(1, m):
        squared = 0.0
        for i in range(D):
            squared += (V[members[q], i] - V[origin, i]) ** 2
        if squared > best:
            far, best = members[q], squared
    length = np.sqrt(best)
    if length == 0.0:
        return 0.0
    for i in range(D):
        t[0, i] = (V[far, i] - V[origin, i]) / length
    best = -1.0
    for q in range(1, m):  # the part of w orthogonal to t1 of the vertex farthest from the line
        along = 0.0
        for i in range(D):
            along += (V[members[q], i] - V[origin, i]) * t[0, i]
        squared = 0.0
        for i in range(D):
            squared += (V[members[q], i] - V[origin, i] - along * t[0, i]) ** 2
        if squared > best:
            best = squared
            for i in range(D):
                t[1, i] = V[members[q], i] - V[origin, i] - along * t[0, i]
    width = np.sqrt(best)
    if width == 0.0:
        return 0.0
    cx = cy = 0.0
    for q in range(m):
        x = y = 0.0
        for i in range(D):
            w = V[members[q], i] - V[origin, i]
            x += w * t[0, i]
            y += w * t[1, i]
        plane[q, 0], plane[q, 1] = x, y / width
        cx += x
        cy += y / width
    cx /= m
    cy /= m
    for q in range(m):
        dx, dy = plane[q, 0] - cx, plane[q, 1] - cy
        r = abs(dx) + abs(dy)
        plane[q, 2] = (dy / r if dx >= 0 else 2.0 - dy / r) if r > 0 else 0.0
    for q in range(1, m):  # insertion sort by angle (a polygon has few vertices)
        x, y, angle = plane[q, 0], plane[q, 1], plane[q, 2]
        p = q - 1
        while p >= 0 and plane[p, 2] > angle:
            plane[p + 1, 0], plane[p + 1, 1], plane[p + 1, 2] = plane[p, 0], plane[p, 1], plane[p, 2]
            p -= 1
        plane[p + 1, 0], plane[p + 1, 1], plane[p + 1, 2] = x, y, angle
    twice = 0.0
    for q in range(m):
        n = q + 1 if q + 1 < m else 0
        twice += plane[q, 0] * plane[n, 1] - plane[n, 0] * plane[q, 1]
    return 0.5 * abs(twice)


@njit(cache=True, nogil=True, inline="always")
def _hash_words(sets, f):
    """A hash of bitset row sets[f] (multiply–xor over its words)."""
    h = np.uint64(0x9E3779B97F4A7C15)
    for w in range(sets.shape[1]):
        h = (h ^ sets[f, w]) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(31)
    return h


class FaceTable(NamedTuple):
    """The face table of :func:`face_volume`, kept from one region to the next of a call
    (:func:`region_facts` allocates it once per chunk and grows it when a region needs more room).

    Row f is a face (the region is row 0, each level's faces after the level above): its vertex bitset
    (``bits[f·words : (f + 1)·words]``, words = ⌈vertices / 64⌉ of the region at hand), an orthonormal
    basis ``basis[f, :D − k]`` of the normal space of its affine hull, the faces whose pyramids make
    it (``child[start[f]:stop[f]]`` with ``factor[…]``) and its volume. A level's faces are found again
    through an open-addressing hash table over their bitsets: slot s holds face ``slot_face[s]`` when
    ``slot_stamp[s]`` equals the current level's stamp ``stamp[0]``, which every level (of every region)
    increments, so that the table is never cleared."""

    bits: np.ndarray  # (cap · words,) uint64
    basis: np.ndarray  # (cap, D, D) float64
    start: np.ndarray  # (cap,) int64
    stop: np.ndarray  # (cap,) int64
    volume: np.ndarray  # (cap,) float64
    child: np.ndarray  # (4 · cap,) int64
    factor: np.ndarray  # (4 · cap,) float64
    slot_face: np.ndarray  # (slots,) int64, slots a power of two ≥ 2 · cap
    slot_stamp: np.ndarray  # (slots,) int64
    stamp: np.ndarray  # (1,) int64


@njit(cache=True, nogil=True)
def new_face_table(D, cap, words):
    """An empty :class:`FaceTable` for D-dimensional regions: room for ``cap`` faces of ``words``-word
    bitsets."""
    slots = 1
    while slots < 2 * cap:
        slots *= 2
    return FaceTable(np.empty(cap * words, dtype=np.uint64), np.empty((cap, D, D)), np.empty(cap, dtype=np.int64),
                     np.empty(cap, dtype=np.int64), np.empty(cap), np.empty(4 * cap, dtype=np.int64),
                     np.empty(4 * cap), np.empty(slots, dtype=np.int64), np.zeros(slots, dtype=np.int64),
                     np.ones(1, dtype=np.int64))


@njit(cache=True, nogil=True)
def _grown_table(table, words, n_faces, level_stop):
    """``table`` with twice the room (its first ``n_faces`` faces and their children copied); the faces
    of the level being built (rows ``level_stop`` on) are put in the new hash table again."""
    D = table.basis.shape[1]
    cap = table.start.shape[0]
    out = new_face_table(D, 2 * cap, words)
    out.bits[: cap * words] = table.bits[: cap * words]
    out.basis[:cap] = table.basis
    out.start[:cap] = table.start
    out.stop[:cap] = table.stop
    out.volume[:cap] = table.volume
    out.child[: 4 * cap] = table.child
    out.factor[: 4 * cap] = table.factor
    stamp = table.stamp[0]
    out.stamp[0] = stamp
    sets = out.bits.reshape((2 * cap, words))
    mask = np.uint64(out.slot_face.shape[0] - 1)
    for g in range(level_stop, n_faces):
        slot = _hash_words(sets, g) & mask
        while out.slot_stamp[slot] == stamp:
            slot = (slot + np.uint64(1)) & mask
        out.slot_face[slot], out.slot_stamp[slot] = g, stamp
    return out


@njit(cache=True, nogil=True)
def polytope_volume(V, inc, ids, normals, offsets):
    """Exact D-volume of a polytope from its vertices, incidence and facets (:func:`face_volume` with a
    table of its own)."""
    D = V.shape[1]
    return face_volume(V, inc, ids, normals, offsets, new_face_table(D, 2 * ids.shape[0] * D + 2,
                                                                     (V.shape[0] + 63) >> 6))[0]


@njit(cache=True, nogil=True)
def face_volume(V, inc, ids, normals, offsets, table):
    """Exact D-volume of a polytope from its vertices, incidence and facets (pulling recursion over the
    face lattice, each face computed once), and the face table (:class:`FaceTable`, grown if it had
    to be).

    Length: the face table (vertex sets, the hash that finds a face again, normal-space bases, children
    and factors) is one state that every level reads and writes, so the walk is kept in one function.

    For a k-face F and a vertex a of F (its *apex*, here its first vertex), F is the union of the
    pyramids with apex a over its facets G not containing a, so

        vol_k(F) = (1/k) Σ_{G facet of F, a ∉ G} dist_F(a, aff G) · vol_{k−1}(G),   vol_2 = polygon areas.

    The facets of F are the maximal proper sets F ∩ S_h over the facets h of P (module docstring). With
    Q an orthonormal basis of the normal space of aff F (the normals of a chain P ⊃ … ⊃ F of facets),
    G = F ∩ {n_h·x = c_h} and dist_F(a, aff G) = |n_h·a − c_h| / ‖n_h − Q Qᵀ n_h‖; aff F, and so this
    distance, depends on F alone. The length is ‖n_h − Q Qᵀ n_h‖² = ‖n_h‖² − ‖Qᵀ n_h‖² (Q orthonormal)
    from the dots Qᵀ n_h alone; where that difference is below tolerances.PROJECTION_CANCELLATION·‖n_h‖²
    (n_h nearly in F's normal space, where the subtraction would lose digits) the component is computed
    by modified Gram–Schmidt, twice, instead (:func:`_normal_component`). A face is reached from several
    faces above it (a j-face of a simple D-polytope lies in D − j faces of dimension j + 1), so the
    faces are found level by level, from P down to the 2-faces, each kept once in the table keyed by
    its vertex set (a hash over its bitset), with the children and factors that make its volume; the
    2-faces' areas come from the shoelace formula in their plane (:func:`_polygon_area`; 15% less time
    on 6-D regions than their pyramids over the edges), and the volumes are then added up from the
    2-faces to P. On seeded 6-D nets this visits about a sixth of the faces that the chains of the
    unrolled recursion pass through.
    """
    nv, D = V.shape
    if D == 1:
        return V[:, 0].max() - V[:, 0].min(), table
    facet_sets = _vertex_masks(inc, ids)
    n_facets, words = facet_sets.shape
    if table.bits.shape[0] < table.start.shape[0] * words:  # wider bitsets than the table was made for
        table = new_face_table(D, table.start.shape[0], words)
    sets = table.bits[: table.start.shape[0] * words].reshape((table.start.shape[0], words))
    cand = np.empty((n_facets, words), dtype=np.uint64)
    cand_facet = np.empty(n_facets, dtype=np.int64)
    sizes = np.empty(n_facets, dtype=np.int64)
    component = np.empty(D)
    dots = np.empty(D)
    members = np.empty(nv, dtype=np.int64)
    plane = np.empty((nv, 3))
    directions = np.empty((2, D))
    sets[0] = 0
    for v in range(nv):
        row_set_bit(sets, 0, v)
    n_faces, n_children = 1, 0
    level_start, level_stop = 0, 1
    two_faces = 0  # the first 2-face of the table (faces above it have children)
    for depth in range(D - 1):  # faces of dimension k = D − depth, found from the level above
        k = D - depth
        table.stamp[0] += 1
        stamp = table.stamp[0]
        for f in range(level_start, level_stop):
            if k == 2:  # a polygon: its area at once
                table.start[f] = table.stop[f] = n_children
                table.volume[f] = _polygon_area(V, sets, f, members, plane, directions)
                continue
            apex = _first_member(sets, f)
            m = _facets_of_face(sets, f, k, facet_sets, cand, cand_facet, sizes)
            table.start[f] = n_children
            for a in range(m):
                if row_has_bit(cand, a, apex) or not _is_maximal(cand, sizes, a, m):
                    continue
                h = cand_facet[a]
                squared = 0.0
                for i in range(D):
                    squared += normals[h, i] * normals[h, i]
                outside = squared  # ‖n_h‖² − ‖Qᵀ n_h‖², the squared length outside F's normal space
                for e in range(depth):
                    dot = 0.0
                    for i in range(D):
                        dot += normals[h, i] * table.basis[f, e, i]
                    dots[e] = dot
                    outside -= dot * dot
                exact = outside < PROJECTION_CANCELLATION * squared
                length = _normal_component(normals, h, table.basis, f, depth, component) if exact else np.sqrt(outside)
                if length <= 1e-14:
                    continue
                height = 0.0
                for i in range(D):
                    height += normals[h, i] * V[apex, i]
                scale = abs(height - offsets[h]) / length / k
                if n_faces == table.start.shape[0] or n_children == table.child.shape[0]:  # room for one more
                    table = _grown_table(table, words, n_faces, level_stop)
                    sets = table.bits.reshape((table.start.shape[0], words))
                for w in range(words):  # element by element: a row view is reference-counted (rows_contain)
                    sets[n_faces, w] = cand[a, w]
                mask = np.uint64(table.slot_face.shape[0] - 1)
                slot = _hash_words(sets, n_faces) & mask
                g = -1
                while g < 0 and table.slot_stamp[slot] == stamp:
                    g = table.slot_face[slot]
                    if not (rows_contain(sets, g, sets, n_faces) and rows_contain(sets, n_faces, sets, g)):
                        g = -1
                        slot = (slot + np.uint64(1)) & mask
                if g < 0:  # a new face: its normal space is F's and h's component orthogonal to it
                    g = n_faces
                    table.slot_face[slot], table.slot_stamp[slot] = g, stamp
                    if not exact:
                        for i in range(D):
                            component[i] = normals[h, i]
                        for e in range(depth):
                            for i in range(D):
                                component[i] -= dots[e] * table.basis[f, e, i]
                    for i in range(D):
                        for e in range(depth):
                            table.basis[g, e, i] = table.basis[f, e, i]
                        table.basis[g, depth, i] = component[i] / length
                    n_faces += 1
                table.child[n_children], table.factor[n_children] = g, scale
                n_children += 1
            table.stop[f] = n_children
        if k == 2:
            two_faces = level_start
        level_start, level_stop = level_stop, n_faces
    for f in range(two_faces - 1, -1, -1):  # children come after their parents in the table
        total = 0.0
        for c in range(table.start[f], table.stop[f]):
            total += table.factor[c] * table.volume[table.child[c]]
        table.volume[f] = total
    return table.volume[0], table


@njit(cache=True, nogil=True)
def region_facts(verts, inc, voff, ids, normals, offsets, coff, exact_volume):
    """Per region (CSR inputs as in splitting.split_layer): exact volume (or NaN when
    ``exact_volume`` is False), vertex centroid (an interior point), the radius of the largest ball
    around it inside the region, min_h (c_h − n_h·x̄); and per facet the centroid of its vertices."""
    R = voff.shape[0] - 1
    D = verts.shape[1]
    volumes = np.full(R, np.nan)
    centres = np.zeros((R, D))
    radii = np.empty(R)
    facet_centres = np.empty((ids.shape[0], D))
    table = new_face_table(D, 64 * D, 1)
    for r in range(R):
        V = verts[voff[r] : voff[r + 1]]
        incidence = inc[voff[r] : voff[r + 1]]
        fid = ids[coff[r] : coff[r + 1]]
        N = normals[coff[r] : coff[r + 1]]
        rhs = offsets[coff[r] : coff[r + 1]]
        for v in range(V.shape[0]):  # scalar loops: a row view or a temporary costs an allocation
            for i in range(D):
                centres[r, i] += V[v, i]
        for i in range(D):
            centres[r, i] /= V.shape[0]
        radii[r] = np.inf
        for f in range(fid.shape[0]):
            slack = rhs[f]
            for i in range(D):
                slack -= N[f, i] * centres[r, i]
            radii[r] = min(radii[r], slack)
            row = coff[r] + f
            facet_centres[row] = 0.0
            count = 0
            for v in range(V.shape[0]):
                if row_has_bit(incidence, v, fid[f]):
                    for i in range(D):
                        facet_centres[row, i] += V[v, i]
                    count += 1
            for i in range(D):
                facet_centres[row, i] /= count
        if exact_volume:
            volumes[r], table = face_volume(V, incidence, fid, N, rhs, table)
    return volumes, centres, radii, facet_centres


@njit(cache=True, nogil=True)
def points_inside(points, regions, normals, rhs, coff, tol):
    """Does point q satisfy every facet inequality n·x ≤ c + tol of region ``regions[q]`` (CSR facets
    ``normals``, ``rhs`` with offsets ``coff``)? False where ``regions[q]`` is −1."""
    out = np.zeros(points.shape[0], dtype=np.bool_)
    for q in range(points.shape[0]):
        r = regions[q]
        if r < 0:
            continue
        inside = True
        for f in range(coff[r], coff[r + 1]):
            dot = 0.0  # n·x summed in a loop: np.dot of two short rows is a BLAS call each
            for i in range(points.shape[1]):
                dot += normals[f, i] * points[q, i]
            if dot > rhs[f] + tol:
                inside = False
                break
        out[q] = inside
    return out
