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

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def rows_contain(A: np.ndarray, i: int, B: np.ndarray, j: int) -> bool:
    """Bitset row A[i] ⊇ bitset row B[j].

    The bitset helpers take a 2-D array and a row index rather than a row: a row view ``A[i]`` is a
    new array object to numba, reference-counted with an atomic add and subtract, which in the inner
    loops of the splitter and the volume cost more than the bit operations themselves."""
    for w in range(A.shape[1]):  # noqa: SIM110 - numba compiles this loop; all() over a generator it does not
        if (B[j, w] & ~A[i, w]) != 0:
            return False
    return True


@njit(cache=True, nogil=True)
def popcount(x: np.uint64) -> int:
    """Number of set bits of a 64-bit word (SWAR bit counting)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def has_bit(bits: np.ndarray, k: int) -> bool:
    return (bits[k >> 6] >> np.uint64(k & 63)) & np.uint64(1) == np.uint64(1)


@njit(cache=True, nogil=True)
def row_has_bit(M: np.ndarray, r: int, k: int) -> bool:
    """Bit k of bitset row M[r]."""
    return (M[r, k >> 6] >> np.uint64(k & 63)) & np.uint64(1) == np.uint64(1)


@njit(cache=True, nogil=True)
def set_bit(bits: np.ndarray, k: int) -> None:
    bits[k >> 6] |= np.uint64(1) << np.uint64(k & 63)


@njit(cache=True, nogil=True)
def row_set_bit(M: np.ndarray, r: int, k: int) -> None:
    M[r, k >> 6] |= np.uint64(1) << np.uint64(k & 63)


@njit(cache=True, nogil=True)
def row_clear_bit(M: np.ndarray, r: int, k: int) -> None:
    M[r, k >> 6] &= ~(np.uint64(1) << np.uint64(k & 63))


@njit(cache=True, nogil=True)
def row_count(M: np.ndarray, r: int) -> int:
    """Number of set bits of bitset row M[r]."""
    n = 0
    for w in range(M.shape[1]):
        n += popcount(M[r, w])
    return n


@njit(cache=True, nogil=True)
def _vertex_masks(inc, ids):
    """Facet vertex sets as bitsets over the vertices: (n_facets, ceil(nv/64)) uint64."""
    nv = inc.shape[0]
    words = (nv + 63) >> 6
    out = np.zeros((ids.shape[0], words), dtype=np.uint64)
    for c in range(ids.shape[0]):
        for v in range(nv):
            if row_has_bit(inc, v, ids[c]):
                row_set_bit(out, c, v)
    return out


@njit(cache=True, nogil=True)
def _count(bits):
    n = 0
    for w in range(bits.shape[0]):
        n += popcount(bits[w])
    return n


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _normal_component(normal, basis, rank, out):
    """out = the part of ``normal`` orthogonal to the first ``rank`` rows of the orthonormal ``basis``
    (modified Gram–Schmidt, applied twice so that the result stays orthogonal when it is short);
    returns its length."""
    D = out.shape[0]
    for i in range(D):
        out[i] = normal[i]
    for _ in range(2):
        for e in range(rank):
            dot = 0.0
            for i in range(D):
                dot += out[i] * basis[e, i]
            for i in range(D):
                out[i] -= dot * basis[e, i]
    norm = 0.0
    for i in range(D):
        norm += out[i] * out[i]
    return np.sqrt(norm)


@njit(cache=True, nogil=True)
def _first_member(bits):
    """The smallest index in a nonempty bitset."""
    for w in range(bits.shape[0]):
        if bits[w] != 0:
            low = bits[w] & (~bits[w] + np.uint64(1))
            return 64 * w + popcount(low - np.uint64(1))
    return -1


@njit(cache=True, nogil=True)
def _segment_length(V, faces, f, nv):
    """Length of the 1-face ``faces[f]``: the largest distance between two of its vertices (two, unless several
    coincide or lie on a line)."""
    longest = 0.0
    for u in range(nv):
        if not row_has_bit(faces, f, u):
            continue
        for v in range(u + 1, nv):
            if row_has_bit(faces, f, v):
                squared = 0.0
                for i in range(V.shape[1]):
                    squared += (V[u, i] - V[v, i]) ** 2
                longest = max(longest, squared)
    return np.sqrt(longest)


@njit(cache=True, nogil=True)
def _facets_of_face(face, k, facet_sets, cand, cand_facet, sizes):
    """The candidates for the facets of the k-face ``face``: the proper sets face ∩ S_h with at least
    k vertices, written to ``cand`` with their facet h and size; returns how many (the facets of the
    face are the maximal ones among them, :func:`_is_maximal`)."""
    n_facets, words = facet_sets.shape
    size = _count(face)
    m = 0
    for h in range(n_facets):
        s = 0
        for w in range(words):
            cand[m, w] = face[w] & facet_sets[h, w]
            s += popcount(cand[m, w])
        if k <= s < size:
            sizes[m], cand_facet[m] = s, h
            m += 1
    return m


@njit(cache=True, nogil=True)
def polytope_volume(V, inc, ids, normals, offsets):
    """Exact D-volume of a polytope from its vertices, incidence and facets (pulling recursion).

    Length: the recursion is unrolled into one depth-first walk over an explicit stack (numba kernels
    cannot recurse cheaply); the stack, the chain's orthonormal basis and the per-level distances are
    one state, read and written at every level, so the walk is kept in one function.

    For a k-face F and a vertex a of F (its *apex*, here its first vertex), F is the union of the
    pyramids with apex a over its facets G not containing a, so

        vol_k(F) = (1/k) Σ_{G facet of F, a ∉ G} dist_F(a, aff G) · vol_{k−1}(G),   vol_1(edge) = its length.

    The facets of F are the maximal proper sets F ∩ S_h over the facets h of P (module docstring). Along
    a chain P = F_D ⊃ F_{D−1} ⊃ … ⊃ F_k, each F_{i−1} = F_i ∩ {n_h·x = c_h}, the normal space of aff F_k is
    spanned by the chain's normals; with Q an orthonormal basis of it, dist_F(a, aff G) =
    |n_h·a − c_h| / ‖n_h − Q Qᵀ n_h‖. Unrolled, vol(P) is a sum over chains down to 2-faces of
    Π_k dist_k / k × the 2-face's area (its edges summed at once): a depth-first walk with an explicit
    stack that carries each chain's product and basis down, so nothing is allocated per face.
    """
    nv, D = V.shape
    if D == 1:
        return V[:, 0].max() - V[:, 0].min()
    facet_sets = _vertex_masks(inc, ids)
    n_facets, words = facet_sets.shape
    capacity = D * n_facets + 1  # each level holds at most n_facets siblings
    stack_sets = np.zeros((capacity, words), dtype=np.uint64)
    stack_depth = np.empty(capacity, dtype=np.int64)
    stack_weight = np.empty(capacity)
    stack_basis = np.empty((capacity, D, D))
    face = np.empty(words, dtype=np.uint64)
    basis = np.empty((D, D))
    cand = np.empty((n_facets, words), dtype=np.uint64)
    cand_facet = np.empty(n_facets, dtype=np.int64)
    sizes = np.empty(n_facets, dtype=np.int64)
    component = np.empty(D)
    for v in range(nv):
        row_set_bit(stack_sets, 0, v)
    stack_depth[0], stack_weight[0] = 0, 1.0
    top = 1
    total = 0.0
    while top > 0:
        top -= 1
        depth, weight = stack_depth[top], stack_weight[top]
        k = D - depth
        face[:] = stack_sets[top]
        basis[:depth] = stack_basis[top, :depth]
        apex = _first_member(face)
        m = _facets_of_face(face, k, facet_sets, cand, cand_facet, sizes)
        for a in range(m):
            if row_has_bit(cand, a, apex) or not _is_maximal(cand, sizes, a, m):
                continue
            h = cand_facet[a]
            length = _normal_component(normals[h], basis, depth, component)
            if length <= 1e-14:
                continue
            height = 0.0
            for i in range(D):
                height += normals[h, i] * V[apex, i]
            factor = weight * abs(height - offsets[h]) / length / k
            if k == 2:  # the facet is an edge: add its pyramid (a triangle) at once
                total += factor * _segment_length(V, cand, a, nv)
                continue
            stack_sets[top] = cand[a]
            stack_depth[top] = depth + 1
            stack_weight[top] = factor
            stack_basis[top, :depth] = basis[:depth]
            for i in range(D):
                stack_basis[top, depth, i] = component[i] / length
            top += 1
    return total


@njit(cache=True, nogil=True)
def region_facts(verts, inc, voff, ids, normals, offsets, coff, exact_volume):
    """Per region (CSR inputs as in splitting.split_layer): exact volume (or NaN when
    ``exact_volume`` is False), vertex centroid (an interior point), the radius of the largest ball
    around it inside the region, min_h (c_h − n_h·x̄); and per facet the centroid of its vertices."""
    R = voff.shape[0] - 1
    D = verts.shape[1]
    volumes = np.full(R, np.nan)
    centres = np.empty((R, D))
    radii = np.empty(R)
    facet_centres = np.empty((ids.shape[0], D))
    for r in range(R):
        V = verts[voff[r] : voff[r + 1]]
        incidence = inc[voff[r] : voff[r + 1]]
        fid = ids[coff[r] : coff[r + 1]]
        N = normals[coff[r] : coff[r + 1]]
        rhs = offsets[coff[r] : coff[r + 1]]
        centre = V.sum(axis=0) / V.shape[0]
        centres[r] = centre
        radii[r] = (rhs - N @ centre).min()
        for f in range(fid.shape[0]):
            total = np.zeros(D)
            count = 0
            for v in range(V.shape[0]):
                if row_has_bit(incidence, v, fid[f]):
                    total += V[v]
                    count += 1
            facet_centres[coff[r] + f] = total / count
        if exact_volume:
            volumes[r] = polytope_volume(V, incidence, fid, N, rhs)
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
            if np.dot(normals[f], points[q]) > rhs[f] + tol:
                inside = False
                break
        out[q] = inside
    return out
