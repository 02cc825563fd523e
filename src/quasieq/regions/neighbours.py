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

from quasieq import tolerances
from quasieq.regions.chunk import FinishedChunk
from quasieq.regions.lookup import PatternIndex
from quasieq.regions.polytope import points_inside

#: ``FinishedChunk.neighbours`` of a neuron facet not linked yet (its probe is in ``boundary_probes``).
UNRESOLVED = -2


def facet_probes(facet_centres: np.ndarray, facet_normals: np.ndarray, scale: float) -> np.ndarray:
    """The probe of each facet: its vertex centroid moved NEIGHBOUR_STEP·s along the outward normal."""
    return facet_centres + (tolerances.NEIGHBOUR_STEP * scale) * facet_normals


def link_within(part: FinishedChunk, scale: float, index: PatternIndex | None = None) -> FinishedChunk:
    """``part`` with the unresolved facets whose neighbour is a region of ``part`` linked (see the
    module docstring); ``index`` is ``PatternIndex(part.patterns)`` when the caller has it."""
    unresolved = np.flatnonzero(part.neighbours == UNRESOLVED)
    if unresolved.size == 0:
        return part
    index = PatternIndex(part.patterns) if index is None else index
    owner = np.repeat(np.arange(part.radii.shape[0]), np.diff(part.facet_indptr))[unresolved]
    candidate = index.find_flipped(owner, part.facet_sources[unresolved])
    ok = points_inside(part.boundary_probes, candidate, part.facet_normals, part.facet_rhs, part.facet_indptr,
                       tolerances.ON_HYPERPLANE * scale)
    neighbours = part.neighbours.copy()
    neighbours[unresolved[ok]] = candidate[ok]
    return part._replace(neighbours=neighbours, boundary_probes=part.boundary_probes[~ok])


def offset_neighbours(neighbours: np.ndarray, first_region: int) -> np.ndarray:
    """A part's neighbour indices as indices of a complex where its regions start at ``first_region``
    (-1 and UNRESOLVED kept)."""
    return np.where(neighbours >= 0, neighbours + first_region, neighbours) if first_region else neighbours
