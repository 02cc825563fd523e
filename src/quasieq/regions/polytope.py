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

      vol_k(F) = (1/k) Σ_{G facet of F} dist_F(c_F, aff G) · vol_{k-1}(G),       vol_1(edge) = length,

  where the facets of F are the maximal sets F ∩ S_h (h a facet of P not containing F), and the distance
  inside aff F from c to aff G = aff F ∩ {n_h·x = c_h} is |n_h·c − c_h| / ‖Π_F n_h‖, Π_F projecting onto
  the directions of F (the orthogonal complement of the normals of the chain P ⊃ … ⊃ F).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def contains_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitset a ⊇ b."""
    for w in range(a.shape[0]):
        if (b[w] & ~a[w]) != 0:
            return False
    return True


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
def facet_vertex_sets(inc: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Boolean (n_constraints, nv): S_h for each constraint id."""
    nv = inc.shape[0]
    out = np.zeros((ids.shape[0], nv), dtype=np.bool_)
    for c in range(ids.shape[0]):
        for v in range(nv):
            out[c, v] = has_bit(inc[v], ids[c])
    return out


@njit(cache=True)
def _subset(a: np.ndarray, b: np.ndarray) -> bool:
    """Boolean vectors: a ⊆ b."""
    for i in range(a.shape[0]):
        if a[i] and not b[i]:
            return False
    return True


@njit(cache=True)
def maximal_faces(sets: np.ndarray, min_size: int) -> np.ndarray:
    """Indices of the rows of ``sets`` that are maximal under inclusion, have ≥ min_size members, and
    are not a repeat of an earlier equal row."""
    n = sets.shape[0]
    sizes = sets.sum(axis=1)
    keep = np.zeros(n, dtype=np.bool_)
    for a in range(n):
        if sizes[a] < min_size:
            continue
        ok = True
        for b in range(n):
            if b == a or sizes[b] < sizes[a]:
                continue
            if _subset(sets[a], sets[b]):
                if sizes[b] > sizes[a] or b < a:
                    ok = False
                    break
        keep[a] = ok
    return np.flatnonzero(keep)


@njit(cache=True)
def prune_constraints(inc, ids, normals, offsets, dim):
    """Keep only the facets among the constraints (minimal H-representation) and clear the incidence
    bits of the others. Returns (ids, normals, offsets) of the facets; ``inc`` is edited in place."""
    sets = facet_vertex_sets(inc, ids)
    keep = maximal_faces(sets, dim)
    kept = np.zeros(ids.shape[0], dtype=np.bool_)
    kept[keep] = True
    for c in range(ids.shape[0]):
        if not kept[c]:
            for v in range(inc.shape[0]):
                clear_bit(inc[v], ids[c])
    return ids[keep].copy(), normals[keep].copy(), offsets[keep].copy()


@njit(cache=True)
def _face_volume(V, sets, normals, offsets, face, E, nE, k):
    """k-dimensional volume of the face whose vertex mask is ``face``; rows 0..nE-1 of E are an
    orthonormal basis of the normals of the chain of facets that cut it out."""
    idx = np.flatnonzero(face)
    if k == 1:
        best = 0.0
        for a in range(idx.shape[0]):
            for b in range(a + 1, idx.shape[0]):
                best = max(best, np.sqrt(np.sum((V[idx[a]] - V[idx[b]]) ** 2)))
        return best
    D = V.shape[1]
    centre = np.zeros(D)
    for i in idx:
        centre += V[i]
    centre /= idx.shape[0]
    n_sets = sets.shape[0]
    sub = np.zeros((n_sets, V.shape[0]), dtype=np.bool_)
    valid = np.zeros(n_sets, dtype=np.bool_)
    face_size = idx.shape[0]
    for h in range(n_sets):
        size = 0
        for v in idx:
            if sets[h, v]:
                sub[h, v] = True
                size += 1
        valid[h] = k <= size < face_size
    cand = np.flatnonzero(valid)
    if cand.shape[0] == 0:
        return 0.0
    maximal = maximal_faces(sub[cand], k)
    total = 0.0
    for m in maximal:
        h = cand[m]
        p = normals[h].copy()
        for e in range(nE):
            p -= np.dot(p, E[e]) * E[e]
        pn = np.sqrt(np.dot(p, p))
        if pn <= 1e-14:
            continue
        dist = abs(np.dot(normals[h], centre) - offsets[h]) / pn
        if dist == 0.0:
            continue
        E[nE] = p / pn
        total += dist * _face_volume(V, sets, normals, offsets, sub[h], E, nE + 1, k - 1)
    return total / k


@njit(cache=True)
def polytope_volume(V, inc, ids, normals, offsets):
    """Exact D-volume of a polytope from its vertices, incidence and facets (cone formula)."""
    D = V.shape[1]
    sets = facet_vertex_sets(inc, ids)
    face = np.ones(V.shape[0], dtype=np.bool_)
    E = np.zeros((D, D))
    return _face_volume(V, sets, normals, offsets, face, E, 0, D)


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
        I = inc[voff[r] : voff[r + 1]]
        fid = ids[coff[r] : coff[r + 1]]
        N = normals[coff[r] : coff[r + 1]]
        O = offsets[coff[r] : coff[r + 1]]
        centre = np.zeros(D)
        for v in range(V.shape[0]):
            centre += V[v]
        centre /= V.shape[0]
        centres[r] = centre
        radii[r] = (O - N @ centre).min()
        sets = facet_vertex_sets(I, fid)
        for f in range(fid.shape[0]):
            members = np.flatnonzero(sets[f])
            acc = np.zeros(D)
            for v in members:
                acc += V[v]
            facet_centres[coff[r] + f] = acc / members.shape[0]
        if exact_volume:
            volumes[r] = polytope_volume(V, I, fid, N, O)
    return volumes, centres, radii, facet_centres
