"""Neighbours across facets: linked inside each explored subtree where it ran, stitched across
subtrees where the complex is assembled.

The neighbour across a facet of neuron k is the region holding the *probe*, a point a small step
(tolerances.NEIGHBOUR_STEP·s) beyond the facet's vertex centroid. It is found without a forward pass:
crossing the facet flips bit k of the pattern and, in general position, no other bit (every later
neuron's pre-activation is continuous across the facet and nonzero at the probe), so the candidate is
the region whose pattern is the owner's with bit k flipped (a hashed lookup, regions/lookup.py). It is
accepted only if the probe satisfies all the candidate's facet inequalities (within ON_HYPERPLANE·s);
facets where the lookup misses or the probe lies outside (degenerate nets: duplicated neurons, a later
neuron vanishing on the facet) fall back to ``locate`` at the probe, on the whole complex.

**In parts.** A finished chunk starts with every neuron facet :data:`UNRESOLVED` and its probe kept
(``FinishedChunk.boundary_probes``, one row per unresolved facet in facet order). :func:`link_within`
resolves the facets whose candidate lies in the same part and keeps the probes of the others only, so
a subtree explored on a worker ships its neighbours linked and probes for the facets on its boundary.
Patterns are unique in a complex (children of one split differ in that layer's bits), so a candidate
found in a part is the one the whole complex would give, and the probe test reads only that region's
facets: linking part by part and then the whole gives bitwise the neighbours one pass over the whole
complex gives.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quasieq import tolerances
from quasieq.interrupts import compiled
from quasieq.regions.chunk import FinishedChunk
from quasieq.regions.lookup import MULTIPLIERS, PatternIndex, find_rows, flipped_words, hash_rows
from quasieq.regions.polytope import points_inside
from quasieq.regions.threads import even_parts, in_threads

#: ``FinishedChunk.neighbours`` of a neuron facet not linked yet (its probe is in ``boundary_probes``).
UNRESOLVED = -2


def facet_probes(facet_centres: np.ndarray, facet_normals: np.ndarray, scale: float) -> np.ndarray:
    """The probe of each facet: its vertex centroid moved NEIGHBOUR_STEP·s along the outward normal."""
    return facet_centres + (tolerances.NEIGHBOUR_STEP * scale) * facet_normals


#: Unresolved facets below which :func:`link_within` links on the calling thread (a hand-over to a
#: thread costs about as much as a few hundred lookups).
LINK_PARTS_MIN_FACETS = 1 << 14


def link_within(part: FinishedChunk, scale: float, index: PatternIndex | None = None,
                threads: int = 1) -> FinishedChunk:
    """``part`` with the unresolved facets whose neighbour is a region of ``part`` linked (see the
    module docstring), on ``threads`` threads (each facet's link depends on the facet alone); ``index``
    is ``PatternIndex(part.patterns)`` when the caller has it."""
    if not part.boundary_probes.shape[0]:  # one probe per unresolved facet: none left
        return part
    index = PatternIndex(part.patterns) if index is None else index
    unresolved = np.flatnonzero(part.neighbours == UNRESOLVED)
    neighbours = part.neighbours.copy()
    unlinked = np.empty(unresolved.shape[0], dtype=np.bool_)

    def link_part(bounds: tuple[int, int]) -> None:
        start, stop = bounds
        with compiled():
            _link(index.table, part.facet_indptr, part.facet_sources, unresolved[start:stop],
                  part.boundary_probes[start:stop], part.facet_normals, part.facet_rhs,
                  tolerances.ON_HYPERPLANE * scale, neighbours, unlinked[start:stop])

    in_threads(link_part, even_parts(unresolved.shape[0], threads, LINK_PARTS_MIN_FACETS), threads)
    return part._replace(neighbours=neighbours, boundary_probes=part.boundary_probes[unlinked])


@njit(cache=True, nogil=True)
def _link(table, facet_indptr, facet_sources, unresolved, probes, normals, rhs, tol, neighbours, unlinked):
    """:func:`link_within`'s kernel, on the unresolved facets ``unresolved`` (ascending) with their
    probes: the candidate region of facet f is its owner's pattern with bit ``facet_sources[f]``
    flipped (``table``: the PatternIndex's arrays), taken when the facet's probe lies inside it
    (:func:`polytope.points_inside`). Writes the links into ``neighbours`` and, per probe, whether its
    facet stays unresolved into ``unlinked``."""
    owner = np.empty(unresolved.shape[0], dtype=np.int64)
    r = np.searchsorted(facet_indptr, unresolved[0], side="right") - 1 if unresolved.shape[0] else 0
    for q in range(unresolved.shape[0]):
        while facet_indptr[r + 1] <= unresolved[q]:
            r += 1
        owner[q] = r
    words = flipped_words(table.words, owner, facet_sources[unresolved])
    candidate = find_rows(table, hash_rows(words, MULTIPLIERS), words)
    ok = points_inside(probes, candidate, normals, rhs, facet_indptr, tol)
    for q in range(unresolved.shape[0]):
        if ok[q]:
            neighbours[unresolved[q]] = candidate[q]
        unlinked[q] = not ok[q]


def offset_neighbours(neighbours: np.ndarray, first_region: int) -> np.ndarray:
    """A part's neighbour indices as indices of a complex where its regions start at ``first_region``
    (-1 and UNRESOLVED kept)."""
    return np.where(neighbours >= 0, neighbours + first_region, neighbours) if first_region else neighbours
