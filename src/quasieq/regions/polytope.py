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
* Volume by the cone (divergence) formula, recursively over faces: for a k-face F with centroid c_F,

      vol_k(F) = (1/k) Σ_{G facet of F} dist_F(c_F, aff G) · vol_{k-1}(G),     vol_2(polygon) = shoelace,

  where the facets of F are the maximal sets F ∩ S_h (h a facet of P not containing F), and the distance
  inside aff F from c to aff G = aff F ∩ {n_h·x = c_h} is |n_h·c − c_h| / ‖Π_F n_h‖, Π_F projecting onto
  the directions of F (the orthogonal complement of the normals of the chain P ⊃ … ⊃ F).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.typed import List


@njit(cache=True)
def contains_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitset a ⊇ b."""
    for w in range(a.shape[0]):
        if (b[w] & ~a[w]) != 0:
            return False
    return True


@njit(cache=True)
def popcount(x: np.uint64) -> int:
    """Number of set bits of a 64-bit word (SWAR bit counting)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def has_bit(bits: np.ndarray, k: int) -> bool:
    return (bits[k >> 6] >> np.uint64(k & 63)) & np.uint64(1) == np.uint64(1)


@njit(cache=True)
def set_bit(bits: np.ndarray, k: int) -> None:
    bits[k >> 6] |= np.uint64(1) << np.uint64(k & 63)


@njit(cache=True)
def clear_bit(bits: np.ndarray, k: int) -> None:
    bits[k >> 6] &= ~(np.uint64(1) << np.uint64(k & 63))


@njit(cache=True)
def _polygon_area(V, idx):
    """Area of a 2-face with vertex rows ``idx``: its vertices in an orthonormal basis (u1, u2) of the
    face's plane (built from the vertices themselves), sorted by angle, then the shoelace formula."""
    m = idx.shape[0]
    centre = np.zeros(V.shape[1])
    for i in idx:
        centre += V[i]
    centre /= m
    W = np.empty((m, V.shape[1]))
    for a in range(m):
        W[a] = V[idx[a]] - centre
    norms = np.sqrt((W * W).sum(axis=1))
    u1 = W[np.argmax(norms)] / norms.max()
    R = W - np.outer(W @ u1, u1)
    rn = np.sqrt((R * R).sum(axis=1))
    u2 = R[np.argmax(rn)] / rn.max()
    x = W @ u1
    y = W @ u2
    order = np.argsort(np.arctan2(y, x))
    area = 0.0
    for a in range(m):
        i, j = order[a], order[(a + 1) % m]
        area += x[i] * y[j] - x[j] * y[i]
    return 0.5 * abs(area)


@njit(cache=True)
def _vertex_masks(inc, ids):
    """Facet vertex sets as bitsets over the vertices: (n_facets, ceil(nv/64)) uint64."""
    nv = inc.shape[0]
    words = (nv + 63) >> 6
    out = np.zeros((ids.shape[0], words), dtype=np.uint64)
    for c in range(ids.shape[0]):
        for v in range(nv):
            if has_bit(inc[v], ids[c]):
                set_bit(out[c], v)
    return out


@njit(cache=True)
def _count(bits):
    n = 0
    for w in range(bits.shape[0]):
        n += popcount(bits[w])
    return n


@njit(cache=True)
def _members(bits, nv):
    out = np.empty(_count(bits), dtype=np.int64)
    k = 0
    for v in range(nv):
        if has_bit(bits, v):
            out[k] = v
            k += 1
    return out


@njit(cache=True)
def _centre(V, members):
    c = np.zeros(V.shape[1])
    for i in members:
        c += V[i]
    return c / members.shape[0]


@njit(cache=True)
def _direction_component(normals, facet_bits, face, h):
    """Π_F n_h: the part of n_h orthogonal to the normals of every facet containing the face F
    (Gram–Schmidt; normals dependent within 1e-10 are skipped, as at degenerate faces)."""
    D = normals.shape[1]
    Q = np.zeros((D, D))
    rank = 0
    for j in range(facet_bits.shape[0]):
        if rank == D:
            break
        if not contains_bits(facet_bits[j], face):
            continue
        q = normals[j].copy()
        for e in range(rank):
            q -= np.dot(q, Q[e]) * Q[e]
        qn = np.sqrt(np.dot(q, q))
        if qn > 1e-10:
            Q[rank] = q / qn
            rank += 1
    p = normals[h].copy()
    for e in range(rank):
        p -= np.dot(p, Q[e]) * Q[e]
    return p


@njit(cache=True)
def _is_maximal(sets, sizes, a, n):
    """Is bitset row a (of the first n rows) maximal under inclusion, and the first of equal rows?"""
    for b in range(n):
        if b != a and sizes[b] >= sizes[a] and contains_bits(sets[b], sets[a]):
            if sizes[b] > sizes[a] or b < a:
                return False
    return True


@njit(cache=True)
def _sub_faces(face, k, facet_bits, child_bits, gen_out):
    """The (k−1)-faces of the k-face ``face``: the maximal distinct sets face ∩ S_h with ≥ k vertices,
    written to child_bits (one row each) with their generating facet h in gen_out; returns the count."""
    n_sets, words = facet_bits.shape
    size_f = _count(face)
    cand = np.empty((n_sets, words), dtype=np.uint64)
    cand_h = np.empty(n_sets, dtype=np.int64)
    sizes = np.empty(n_sets, dtype=np.int64)
    n = 0
    for h in range(n_sets):
        for w in range(words):
            cand[n, w] = face[w] & facet_bits[h, w]
        size = _count(cand[n])
        if k <= size < size_f:
            sizes[n] = size
            cand_h[n] = h
            n += 1
    out = 0
    for a in range(n):
        if _is_maximal(cand, sizes, a, n):
            child_bits[out] = cand[a]
            gen_out[out] = cand_h[a]
            out += 1
    return out


@njit(cache=True)
def prune_constraints(inc, ids, normals, offsets, dim):
    """Keep only the facets among the constraints (minimal H-representation): the constraints whose
    vertex set S_h is maximal under inclusion (the first of equal ones) with ≥ dim vertices. Clears the
    incidence bits of the others in ``inc`` (in place); returns (ids, normals, offsets) of the facets."""
    sets = _vertex_masks(inc, ids)
    n = ids.shape[0]
    sizes = np.empty(n, dtype=np.int64)
    for c in range(n):
        sizes[c] = _count(sets[c])
    keep = np.zeros(n, dtype=np.bool_)
    for a in range(n):
        keep[a] = sizes[a] >= dim and _is_maximal(sets, sizes, a, n)
    for c in range(n):
        if not keep[c]:
            for v in range(inc.shape[0]):
                clear_bit(inc[v], ids[c])
    return ids[keep].copy(), normals[keep].copy(), offsets[keep].copy()


@njit(cache=True)
def polytope_volume(V, inc, ids, normals, offsets):
    """Exact D-volume of a polytope from its vertices, incidence and facets (cone formula).

    The face lattice is built top-down once (level k−1 = the distinct maximal sets F ∩ S_h over the
    k-faces F, as vertex bitsets), so each face's volume is computed once and shared by every face
    containing it: 2-faces by the shoelace formula, then vol_k(F) = (1/k) Σ_G dist_F(c_F, G) vol_{k−1}(G).
    """
    nv, D = V.shape
    if D == 1:
        return V[:, 0].max() - V[:, 0].min()
    if D == 2:
        return _polygon_area(V, np.arange(nv))
    facet_bits = _vertex_masks(inc, ids)
    n_sets, words = facet_bits.shape
    # per level (dimension D-1 down to 2): face bitsets, and per face its children and generators
    levels = List()
    links_child = List()
    links_gen = List()
    links_start = List()
    levels.append(facet_bits.copy())
    scratch = np.empty((n_sets, words), dtype=np.uint64)
    gens = np.empty(n_sets, dtype=np.int64)
    for k in range(D - 1, 2, -1):
        faces = levels[len(levels) - 1]
        capacity = max(16, 2 * faces.shape[0])
        nxt = np.empty((capacity, words), dtype=np.uint64)
        n_next = 0
        child = np.empty(faces.shape[0] * n_sets, dtype=np.int64)
        gen = np.empty(faces.shape[0] * n_sets, dtype=np.int64)
        start = np.zeros(faces.shape[0] + 1, dtype=np.int64)
        for f in range(faces.shape[0]):
            m = _sub_faces(faces[f], k, facet_bits, scratch, gens)
            for i in range(m):
                found = -1
                for c in range(n_next):
                    same = True
                    for w in range(words):
                        if nxt[c, w] != scratch[i, w]:
                            same = False
                            break
                    if same:
                        found = c
                        break
                if found < 0:
                    if n_next == capacity:
                        grown = np.empty((2 * capacity, words), dtype=np.uint64)
                        grown[:capacity] = nxt
                        nxt = grown
                        capacity *= 2
                    nxt[n_next] = scratch[i]
                    found = n_next
                    n_next += 1
                child[start[f] + i] = found
                gen[start[f] + i] = gens[i]
            start[f + 1] = start[f] + m
        levels.append(nxt[:n_next].copy())
        links_child.append(child)
        links_gen.append(gen)
        links_start.append(start)
    bottom = levels[len(levels) - 1]
    volumes = np.empty(bottom.shape[0])
    for f in range(bottom.shape[0]):
        volumes[f] = _polygon_area(V, _members(bottom[f], nv))
    for level in range(len(links_child) - 1, -1, -1):
        faces = levels[level]
        k = D - 1 - level
        child, gen, start = links_child[level], links_gen[level], links_start[level]
        up = np.empty(faces.shape[0])
        for f in range(faces.shape[0]):
            centre = _centre(V, _members(faces[f], nv))
            total = 0.0
            for i in range(start[f], start[f + 1]):
                p = _direction_component(normals, facet_bits, faces[f], gen[i])
                pn = np.sqrt(np.dot(p, p))
                if pn > 1e-14:
                    total += abs(np.dot(normals[gen[i]], centre) - offsets[gen[i]]) / pn * volumes[child[i]]
            up[f] = total / k
        volumes = up
    centre = _centre(V, np.arange(nv))
    total = 0.0
    for f in range(n_sets):
        total += (offsets[f] - np.dot(normals[f], centre)) * volumes[f]
    return total / D


@njit(cache=True)
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
        centre = _centre(V, np.arange(V.shape[0]))
        centres[r] = centre
        radii[r] = (rhs - N @ centre).min()
        sets = _vertex_masks(incidence, fid)
        for f in range(fid.shape[0]):
            facet_centres[coff[r] + f] = _centre(V, _members(sets[f], V.shape[0]))
        if exact_volume:
            volumes[r] = polytope_volume(V, incidence, fid, N, rhs)
    return volumes, centres, radii, facet_centres


@njit(cache=True)
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
