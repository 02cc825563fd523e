"""The region engine's unit of work: a chunk of regions in CSR form, before and after the last layer.

A chunk holds R regions. Variable-length rows are CSR: region r owns vertex rows
``vertex_indptr[r]:vertex_indptr[r + 1]`` and constraint (or facet) rows
``constraint_indptr[r]:constraint_indptr[r + 1]``. Constraints are ``normals · x ≤ rhs`` with unit
normals, each tagged with the global id of the hyperplane that made it (box faces 0 … 2D−1, then the
hidden neurons layer after layer).

A region's input to the next layer is not stored per region: the chunk keeps the previous layer's
pre-activation maps once per *parent* region (``parent_Z``, ``parent_z0``) and each region's parent
index and its pattern bits in that layer, from which the kernels (regions/splitting.py) read
a(x) = diag(bits) (Z_parent x + z0_parent) (memory per region: n bits instead of n(D+1) floats).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

#: The root's children (the regions after hidden layer 1) are cut into this many chunks at least.
ROOT_CHUNKS = 32

#: ... each of at least this many regions (a chunk costs a kernel call per layer below it; the
#: 128-region block of the pre-activation products, splitting.GEMM_BLOCK).
ROOT_CHUNK_MIN_REGIONS = 128


@njit(cache=True, nogil=True)
def chunk_rows(layer: int, children: int, chunk_size: int) -> int:
    """Regions per chunk when the ``children`` of a chunk split by hidden layer ``layer`` are cut:
    ``chunk_size``, except below the root (layer 0), whose children are cut into ROOT_CHUNKS chunks
    (of ROOT_CHUNK_MIN_REGIONS at least, ``chunk_size`` at most), so that the tree has enough
    independent subtrees near the top to spread over workers (regions/schedule.py). The rule depends
    on the tree alone, so one process cuts the same chunks as a cluster (and the kernel that walks
    small 2-D trees, polygons.descend_polygons, reads the same rule)."""
    if layer > 0:
        return chunk_size
    return min(chunk_size, max(ROOT_CHUNK_MIN_REGIONS, -(-children // ROOT_CHUNKS)))


@njit(cache=True, nogil=True)
def source_code(hyperplane_id: int, dim: int) -> int:
    """A global hyperplane id (box faces 0 … 2D−1, then the neurons) as a RegionComplex facet source
    code: ReLU unit k is k ≥ 0, box face j is −(j + 1)."""
    return hyperplane_id - 2 * dim if hyperplane_id >= 2 * dim else -(hyperplane_id + 1)


class Chunk(NamedTuple):
    """Regions waiting to be split by the next hidden layer (or finished after the last one)."""

    vertices: np.ndarray  # (rows, D) float64
    incidence: np.ndarray  # (rows, words) uint64: bit h set when the vertex lies on hyperplane h
    vertex_indptr: np.ndarray  # (R + 1,) int64
    constraint_ids: np.ndarray  # (rows,) int64 global hyperplane ids
    constraint_normals: np.ndarray  # (rows, D) unit rows
    constraint_rhs: np.ndarray  # (rows,)
    constraint_indptr: np.ndarray  # (R + 1,) int64
    parent_Z: np.ndarray  # (parents, n, D): previous layer's pre-activation maps per parent region
    parent_z0: np.ndarray  # (parents, n)
    parent: np.ndarray  # (R,) int64 index into parent_Z / parent_z0
    bits: np.ndarray  # (R, n) bool: the region's pattern in the previous layer
    patterns: np.ndarray  # (R, neurons so far) bool: the pattern of every layer split so far

    @property
    def size(self) -> int:
        """Number of regions R."""
        return int(self.vertex_indptr.shape[0] - 1)

    def rows(self, start: int, stop: int) -> Chunk:
        """Regions ``start:stop`` as a chunk of their own (sharing the parents' maps; the chunk itself
        when that is all of it)."""
        if start == 0 and stop == self.size:
            return self
        v0, v1 = self.vertex_indptr[start], self.vertex_indptr[stop]
        c0, c1 = self.constraint_indptr[start], self.constraint_indptr[stop]
        return self._replace(
            vertices=self.vertices[v0:v1],
            incidence=self.incidence[v0:v1],
            vertex_indptr=self.vertex_indptr[start : stop + 1] - v0,
            constraint_ids=self.constraint_ids[c0:c1],
            constraint_normals=self.constraint_normals[c0:c1],
            constraint_rhs=self.constraint_rhs[c0:c1],
            constraint_indptr=self.constraint_indptr[start : stop + 1] - c0,
            parent=self.parent[start:stop],
            bits=self.bits[start:stop],
            patterns=self.patterns[start:stop],
        )

    def own_parents(self) -> Chunk:
        """The same regions with only the parents' maps they use (children of one chunk are grouped
        by parent, so that is a contiguous range): what ships with a chunk sent on its own."""
        if self.size == 0:
            return self._replace(parent_Z=self.parent_Z[:0], parent_z0=self.parent_z0[:0])
        lo, hi = int(self.parent.min()), int(self.parent.max()) + 1
        return self._replace(parent_Z=self.parent_Z[lo:hi].copy(), parent_z0=self.parent_z0[lo:hi].copy(),
                             parent=self.parent - lo)


class FinishedChunk(NamedTuple):
    """A final chunk reduced to what the :class:`~quasieq.regions.complex.RegionComplex` keeps
    (incidence bitsets and parents' maps dropped; facets are the minimal constraints), with its
    neighbours linked as far as its own regions allow (regions/neighbours.py)."""

    vertices: np.ndarray  # (rows, D)
    vertex_indptr: np.ndarray  # (R + 1,)
    facet_sources: np.ndarray  # (rows,) RegionComplex source codes (neuron k ≥ 0, box faces < 0)
    facet_normals: np.ndarray  # (rows, D)
    facet_rhs: np.ndarray  # (rows,)
    facet_indptr: np.ndarray  # (R + 1,)
    neighbours: np.ndarray  # (rows,) int64 region across each facet within this part; -1 across a box face,
    # neighbours.UNRESOLVED where it is not linked yet (regions/neighbours.py)
    boundary_probes: np.ndarray  # (unresolved rows, D) probe of each unresolved facet, in facet order
    A: np.ndarray  # (R, K, D) output map
    b: np.ndarray  # (R, K)
    patterns: np.ndarray  # (R, neurons) bool
    volumes: np.ndarray  # (R,) exact, or NaN when the volumes are estimated later
    interior_points: np.ndarray  # (R, D) vertex centroids
    radii: np.ndarray  # (R,) radius of the largest ball around the interior point
