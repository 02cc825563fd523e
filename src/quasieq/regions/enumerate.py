"""Exact enumeration of the linear regions of a ReLU net on a box: ``regions(net, box)``.

Algorithm (LP-free; see splitting.py and polytope.py for the geometry):

1. Start from the box as a polytope in V-form with incidence (2^D vertices, 2D facets).
2. For each hidden layer l, split every current region by the hyperplanes of layer l's ReLU units —
   affine on the region because the earlier pattern is fixed there — one after another (a linear
   unit never splits: its pre-activation passes into the next layer's input map). The children
   that no neuron of layer l cuts are the regions after layer l; each fixes layer l's pattern bits.
3. After the last hidden layer, each region's output map is A = W_L·diag(m)·Z, b = W_L·(m ⊙ z0) + b_L
   (m is 1 on the linear units).

The work is a tree (box → regions after layer 1 → … → final regions) explored depth-first in chunks of
``chunk_size`` regions; every chunk is an independent piece of work (its subtree), which bounds memory
by (layers × chunk) in flight plus the output, and lets a distributed runner hand out subtrees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from quasieq import tolerances
from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.chunk import Chunk, FinishedChunk
from quasieq.regions.complex import RegionComplex
from quasieq.regions.polytope import points_inside, region_facts
from quasieq.regions.splitting import pre_activation_maps, split_layer

ProgressFn = Callable[[int, float], None]

#: Monte-Carlo samples per region (at least 10^5 in all) for volumes above EXACT_VOLUME_MAX_DIM.
_MC_SAMPLES_PER_REGION = 200


class EngineNet(NamedTuple):
    """The net and box as the splitter reads them: dense float64 layers and the tolerances at the
    box's scale s (tolerances.ON_HYPERPLANE·s, tolerances.SLIVER·s)."""

    hidden: list[tuple[np.ndarray, np.ndarray]]  # (W_l, b_l) of every hidden layer
    W_out: np.ndarray
    b_out: np.ndarray
    hyperplane_ids: list[np.ndarray]  # per hidden layer, each unit's global hyperplane id (-1: linear unit)
    relu_masks: list[np.ndarray]  # per hidden layer, which units are ReLUs (their bits make the pattern)
    relu_units: int
    box: Box
    tol: float
    sliver: float

    @classmethod
    def of(cls, net: ReluNet, box: Box) -> EngineNet:
        layers = [(W.toarray() if sp.issparse(W) else np.ascontiguousarray(W), b) for W, b in net.layers]
        return cls(
            hidden=layers[:-1], W_out=layers[-1][0], b_out=layers[-1][1],
            hyperplane_ids=_hyperplane_ids(net, box.dim), relu_masks=list(net.relu_masks), relu_units=net.relu_units,
            box=box, tol=tolerances.ON_HYPERPLANE * box.scale, sliver=tolerances.SLIVER * box.scale,
        )

    @property
    def words(self) -> int:
        """uint64 words per incidence bitset (one bit per box face and per ReLU unit)."""
        return (2 * self.box.dim + self.relu_units + 63) // 64


def _hyperplane_ids(net: ReluNet, dim: int) -> list[np.ndarray]:
    """Per hidden layer, each unit's global hyperplane id: 2·D + its index among the net's ReLU units
    (layers concatenated; the box faces are 0 … 2D − 1), or -1 for a linear unit, which bounds no region."""
    out, first = [], 2 * dim
    for mask in net.relu_masks:
        ids = np.full(mask.shape[0], -1, dtype=np.int64)
        ids[mask] = first + np.arange(np.count_nonzero(mask))
        out.append(ids)
        first += int(np.count_nonzero(mask))
    return out


def _root_chunk(engine: EngineNet) -> Chunk:
    """The box as the initial region: its vertices with incidence and its 2D facets (n·x ≤ c), as the
    one child of a virtual identity layer (input a(x) = x: parent maps Z = I, z0 = 0, all bits on)."""
    box = engine.box
    D = box.dim
    V = box.vertices()
    if D == 2:  # the 2-D splitter keeps polygons in cyclic order
        V = V[[0, 1, 3, 2]]
    inc = np.zeros((V.shape[0], engine.words), dtype=np.uint64)
    for i in range(D):
        for v in range(V.shape[0]):
            face = 2 * i if V[v, i] == box.lo[i] else 2 * i + 1
            inc[v, face >> 6] |= np.uint64(1) << np.uint64(face & 63)
    normals = np.zeros((2 * D, D))
    rhs = np.empty(2 * D)
    for i in range(D):
        normals[2 * i, i], rhs[2 * i] = -1.0, -box.lo[i]
        normals[2 * i + 1, i], rhs[2 * i + 1] = 1.0, box.hi[i]
    return Chunk(
        vertices=V, incidence=inc, vertex_indptr=np.array([0, V.shape[0]]),
        constraint_ids=np.arange(2 * D, dtype=np.int64), constraint_normals=normals, constraint_rhs=rhs,
        constraint_indptr=np.array([0, 2 * D]), parent_Z=np.eye(D)[None], parent_z0=np.zeros((1, D)),
        parent=np.zeros(1, dtype=np.int64), bits=np.ones((1, D), dtype=bool), patterns=np.zeros((1, 0), dtype=bool),
    )


def _source_codes(ids: np.ndarray, dim: int) -> np.ndarray:
    """Global hyperplane ids → RegionComplex source codes (ReLU unit k ≥ 0; box faces negative)."""
    return np.where(ids < 2 * dim, -(ids + 1), ids - 2 * dim)


def regions(
    net: ReluNet,
    box: Box,
    *,
    max_regions: int | None = None,
    progress: ProgressFn | None = None,
    chunk_size: int = 4096,
) -> RegionComplex:
    """Every full-dimensional activation region of ``net`` inside ``box``.

    Parameters
    ----------
    net, box : the network and the box (dimensions must match).
    max_regions : raise :class:`QuasieqError` as soon as more regions than this are certain.
    progress : optional callable ``progress(regions_found, fraction_done)``, called per finished chunk.
    chunk_size : regions per independent piece of work (memory in flight grows with it).

    Returns
    -------
    RegionComplex with, per region: pattern, vertices, minimal facets (unit normals, sources,
    neighbours), an interior point and the radius of the largest ball around it, the output's affine
    map, and the volume (exact for D ≤ 6, Monte Carlo above, flagged by ``volume_exact``).

    Example
    -------
    >>> import numpy as np, quasieq as qe
    >>> net = qe.ReluNet([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    >>> len(qe.regions(net, qe.Box.cube(2)))
    4
    """
    limit = _region_limit(net, box, max_regions)
    started = time.perf_counter()
    engine = EngineNet.of(net, box)
    finished: list[FinishedChunk] = []
    found = dropped = 0
    done_weight = 0.0
    # depth-first over chunks: (layer about to split them, chunk, its share of the box's tree)
    stack = [(0, _root_chunk(engine), 1.0)]
    pending = 1
    while stack:
        layer, chunk, weight = stack.pop()
        pending -= chunk.size
        if layer == len(engine.hidden):
            reduced, n_thin = _finish(chunk, engine)
            finished.append(reduced)
            dropped += n_thin
            found += chunk.size - n_thin
            done_weight += weight
            if progress is not None:
                progress(found, done_weight)
            continue
        budget = limit - found - pending
        children, n_dropped = _split(chunk, engine, layer, budget)
        dropped += n_dropped
        if children.size > budget:
            raise QuasieqError(
                f"more than {max_regions} regions (at least {found + pending + children.size} found); "
                "raise max_regions or shrink the box"
            )
        starts = list(range(0, children.size, chunk_size))
        for s in reversed(starts):
            e = min(s + chunk_size, children.size)
            stack.append((layer + 1, children.rows(s, e), weight * (e - s) / max(children.size, 1)))
            pending += e - s
    return _assemble(net, box, finished, dropped, started)


def _region_limit(net: ReluNet, box: Box, max_regions: int | None) -> int:
    """Check the arguments of :func:`regions`; the region count above which it raises."""
    if not isinstance(net, ReluNet):
        raise QuasieqError(f"regions: expected a ReluNet, got {type(net).__name__}; use qe.load or qe.from_torch")
    box.check_net(net)
    if max_regions is not None and int(max_regions) < 1:
        raise QuasieqError(f"max_regions must be ≥ 1, got {max_regions}")
    return int(max_regions) if max_regions is not None else int(np.iinfo(np.int64).max)


def _split(chunk: Chunk, engine: EngineNet, layer: int, budget: int) -> tuple[Chunk, int]:
    """Split every region of ``chunk`` by the neurons of hidden layer ``layer``: the children (their
    patterns extended by this layer's bits; parents' maps = this layer's pre-activation maps on the
    chunk's regions) and the number of slivers dropped. Stops early once more than ``budget``
    children exist (the caller raises)."""
    W, b = engine.hidden[layer]
    packed, Z, z0, n_dropped = split_layer(
        chunk.vertices, chunk.incidence, chunk.vertex_indptr, chunk.constraint_ids, chunk.constraint_normals,
        chunk.constraint_rhs, chunk.constraint_indptr, chunk.parent_Z, chunk.parent_z0, chunk.parent, chunk.bits,
        W, b, engine.hyperplane_ids[layer], engine.tol, engine.sliver, tolerances.FLAT_GRADIENT,
        tolerances.PATTERN_ROUNDING, budget,
    )
    V, inc, voff, ids, normals, rhs, coff, parent, bits = packed
    children = Chunk(
        vertices=V, incidence=inc, vertex_indptr=voff, constraint_ids=ids, constraint_normals=normals,
        constraint_rhs=rhs, constraint_indptr=coff, parent_Z=Z, parent_z0=z0, parent=parent, bits=bits,
        patterns=np.concatenate((chunk.patterns[parent], bits[:, engine.relu_masks[layer]]), axis=1),
    )
    return children, n_dropped


def _concat_csr(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate CSR offset arrays (each starting at 0)."""
    out, base = [np.zeros(1, dtype=np.int64)], 0
    for p in parts:
        out.append(p[1:] + base)
        base += int(p[-1])
    return np.concatenate(out)


def _finish(chunk: Chunk, engine: EngineNet) -> tuple[FinishedChunk, int]:
    """A final chunk reduced to what the complex keeps: the output map A = W_L·A_in, b = W_L·c_in + b_L
    (splitting.pre_activation_maps with the output layer) replaces the last layer's input maps, volumes
    and centres are computed, and the incidence bitsets are dropped — so memory stays linear in the
    region count with a small constant. Regions whose interior point is within ON_HYPERPLANE·s of a
    facet are slivers at the tolerance scale (their pattern is not resolvable in float64): they are
    dropped and counted. Returns the reduced chunk and the number of regions dropped."""
    dim = engine.box.dim
    exact = dim <= tolerances.EXACT_VOLUME_MAX_DIM
    volumes, centres, radii, facet_centres = region_facts(
        chunk.vertices, chunk.incidence, chunk.vertex_indptr, chunk.constraint_ids, chunk.constraint_normals,
        chunk.constraint_rhs, chunk.constraint_indptr, exact,
    )
    keep = radii > tolerances.ON_HYPERPLANE * engine.box.scale
    vrows = np.repeat(keep, np.diff(chunk.vertex_indptr))
    crows = np.repeat(keep, np.diff(chunk.constraint_indptr))
    A, b = pre_activation_maps(chunk.parent_Z, chunk.parent_z0, chunk.parent[keep], chunk.bits[keep],
                               engine.W_out, engine.b_out)
    reduced = FinishedChunk(
        vertices=chunk.vertices[vrows],
        vertex_indptr=np.concatenate(([0], np.cumsum(np.diff(chunk.vertex_indptr)[keep]))),
        facet_sources=_source_codes(chunk.constraint_ids[crows], dim),
        facet_normals=chunk.constraint_normals[crows],
        facet_rhs=chunk.constraint_rhs[crows],
        facet_indptr=np.concatenate(([0], np.cumsum(np.diff(chunk.constraint_indptr)[keep]))),
        facet_centres=facet_centres[crows],
        A=A, b=b, patterns=chunk.patterns[keep], volumes=volumes[keep], interior_points=centres[keep],
        radii=radii[keep],
    )
    return reduced, int(np.count_nonzero(~keep))


def _assemble(net: ReluNet, box: Box, finished: list[FinishedChunk], dropped: int, started: float) -> RegionComplex:
    """The complex of the finished chunks in their order: CSR arrays concatenated, neighbours linked,
    volumes estimated above EXACT_VOLUME_MAX_DIM."""

    def cat(field: str) -> np.ndarray:
        return np.concatenate([getattr(c, field) for c in finished])

    sources = cat("facet_sources")
    exact = box.dim <= tolerances.EXACT_VOLUME_MAX_DIM
    cx = RegionComplex(
        net, box,
        patterns=cat("patterns"),
        vertices=cat("vertices"),
        vertex_offsets=_concat_csr([c.vertex_indptr for c in finished]),
        facet_normals=cat("facet_normals"),
        facet_rhs=cat("facet_rhs"),
        facet_sources=sources,
        facet_offsets=_concat_csr([c.facet_indptr for c in finished]),
        neighbours=np.full(sources.shape[0], -1, dtype=np.int64),
        interior_points=cat("interior_points"),
        radii=cat("radii"),
        A=cat("A"),
        b=cat("b"),
        volumes=cat("volumes"),
        volume_exact=exact,
        dropped_lower_dim=int(dropped),
    )
    _link_neighbours(cx, cat("facet_centres"))
    if not exact:
        _monte_carlo_volumes(cx)
    cx.seconds = time.perf_counter() - started
    return cx


def _link_neighbours(cx: RegionComplex, facet_centres: np.ndarray) -> None:
    """Neighbour across each neuron facet: the region holding the probe point a small step beyond the
    facet's vertex centroid (tolerances.NEIGHBOUR_STEP).

    Found without a forward pass: crossing the facet of neuron k flips bit k of the pattern and, in
    general position, no other bit (every later neuron's pre-activation is continuous across the facet
    and nonzero at the probe), so the candidate is the stored pattern with bit k flipped (a hashed
    lookup). The candidate is accepted only if the probe satisfies all its facet inequalities (within
    ON_HYPERPLANE·s); the facets where the lookup misses or the probe lies outside (degenerate nets:
    duplicated neurons, a later neuron vanishing on the facet) fall back to ``locate`` at the probe.
    """
    neuron = np.flatnonzero(cx.facet_sources_flat >= 0)
    if neuron.size == 0:
        return
    step = tolerances.NEIGHBOUR_STEP * cx.box.scale
    probes = facet_centres[neuron] + step * cx.facet_normals_flat[neuron]
    owner = np.repeat(np.arange(len(cx)), np.diff(cx.facet_offsets))[neuron]
    candidate = cx.pattern_index.find_flipped(owner, cx.facet_sources_flat[neuron])
    ok = points_inside(probes, candidate, cx.facet_normals_flat, cx.facet_rhs_flat, cx.facet_offsets,
                       tolerances.ON_HYPERPLANE * cx.box.scale)
    if not ok.all():
        candidate[~ok] = cx.locate(probes[~ok])
    cx.neighbours_flat[neuron] = candidate


def _monte_carlo_volumes(cx: RegionComplex) -> None:
    """Volumes by uniform sampling of the box (D above EXACT_VOLUME_MAX_DIM), seeded."""
    n = max(100_000, _MC_SAMPLES_PER_REGION * len(cx))
    rng = np.random.default_rng(0)
    counts = np.zeros(len(cx))
    for start in range(0, n, 100_000):
        idx = cx.locate(cx.box.sample(min(100_000, n - start), rng))
        counts += np.bincount(idx[idx >= 0], minlength=len(cx))
    cx.volumes = counts / n * cx.box.volume
    cx.volume_samples = n
