"""The region tree as independent pieces of work: subtrees of chunks, explored depth-first.

The enumeration is a tree: the box → the regions after hidden layer 1 → … → the final regions. A
node of the tree is a *chunk* (regions/chunk.py): up to ``chunk_size`` consecutive children of one
chunk of the layer above (the root's children are cut into chunk.ROOT_CHUNKS chunks, :func:`chunk.chunk_rows`).
Splitting a chunk by the next layer's neurons (:func:`split_chunk`) gives its children, cut into
chunks in order; a chunk after the last hidden layer is *finished*
(:func:`finish_chunk`: output maps, volumes, interior points).

A chunk's **path** is the index of the chunk at each level from the root, so the final chunks in
lexicographic order of their paths are the depth-first order of the tree. Every chunk's computation
depends only on the chunk itself, so any set of disjoint subtrees covering the tree, explored
anywhere in any order and put back in path order, gives bitwise the same regions as one depth-first
walk: this is what lets a cluster enumerate the regions (regions/schedule.py) and a checkpoint keep
finished subtrees.

**Threads.** Inside one process, a chunk is split (and, above 2-D, finished) in parts run on ``engine.threads``
threads (the kernels release the GIL): each region's children depend on the region alone, except
for the pre-activation maps, which :func:`~quasieq.regions.splitting.pre_activation_maps` computes
:data:`~quasieq.regions.splitting.GEMM_BLOCK` regions per matrix product. The parts start at multiples
of that block, so each product sees the same regions as in one piece, and the parts' outputs, put
back in order, are bitwise those of the chunk split in one call: the complex does not depend on the
number of threads. Above 2-D the maps of a chunk are computed in one piece before it is split
(:func:`~quasieq.regions.splitting.split_layer_by_maps` takes their rows), and the volumes and
centres have no products, so there the parts are cut anywhere, at about equal vertex rows: the
root's children in 6-D are a few hundred regions of hundreds of children each, which parts of
whole blocks left on one thread. What joins the parts runs in parts too (regions/threads.py): the
copies that concatenate them, a final chunk's copy of its kept regions into the finished chunk, and
the neighbour links (regions/neighbours.py), so little of a large enumeration is left on one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import scipy.sparse as sp
from numba import njit

from quasieq import tolerances
from quasieq.box import Box
from quasieq.budget import check_time
from quasieq.interrupts import compiled
from quasieq.net import ReluNet
from quasieq.regions.chunk import Chunk, FinishedChunk, chunk_rows, source_code
from quasieq.regions.limits import NO_LIMIT, RegionLimit
from quasieq.regions.neighbours import UNRESOLVED, offset_neighbours
from quasieq.regions.polygons import descend_polygons, finish_polygons, polygon_facts, split_polygons
from quasieq.regions.polytope import region_facts
from quasieq.regions.splitting import (
    GEMM_BLOCK,
    Layer,
    LayerInputs,
    LayerSplit,
    LayerStack,
    Polytopes,
    SplitTolerances,
    children_chunk,
    pre_activation_maps,
    split_layer_by_maps,
    split_to_chunk,
)
from quasieq.regions.threads import PARTS_PER_THREAD, concatenate_in_threads, in_threads, weighted_parts

ProgressFn = Callable[[int, float], None]

Path = tuple[int, ...]


class EngineNet(NamedTuple):
    """The net and box as the splitter reads them: dense float64 layers and the tolerances at the
    box's scale s (tolerances.ON_HYPERPLANE·s, tolerances.SLIVER·s)."""

    stack: LayerStack  # every hidden layer (W_l, b_l, hyperplane ids; -1: linear unit), flat
    W_out: np.ndarray
    b_out: np.ndarray
    relu_masks: list[np.ndarray]  # per hidden layer, which units are ReLUs (their bits make the pattern)
    relu_units: int
    box: Box
    tol: float
    sliver: float
    threads: int = 1  # threads a chunk is split on (module docstring)

    @classmethod
    def of(cls, net: ReluNet, box: Box, threads: int = 1) -> EngineNet:
        layers = [(W.toarray() if sp.issparse(W) else np.ascontiguousarray(W), b) for W, b in net.layers]
        hidden = [Layer(W, b, ids) for (W, b), ids in zip(layers[:-1], _hyperplane_ids(net, box.dim), strict=True)]
        return cls(
            stack=LayerStack.of(hidden), W_out=layers[-1][0], b_out=layers[-1][1], relu_masks=list(net.relu_masks),
            relu_units=net.relu_units, box=box, tol=tolerances.ON_HYPERPLANE * box.scale,
            sliver=tolerances.SLIVER * box.scale, threads=threads,
        )

    @property
    def depth(self) -> int:
        """The number of hidden layers."""
        return self.stack.units.shape[0] - 1

    @property
    def split_tolerances(self) -> SplitTolerances:
        return SplitTolerances(self.tol, self.sliver, tolerances.FLAT_GRADIENT, tolerances.PATTERN_ROUNDING)

    @property
    def words(self) -> int:
        """uint64 words per incidence bitset (one bit per box face and per ReLU unit)."""
        return (2 * self.box.dim + self.relu_units + 63) // 64


def _hyperplane_ids(net: ReluNet, dim: int) -> list[np.ndarray]:
    """Per hidden layer, each unit's global hyperplane id: 2·D + its index among the net's ReLU units
    (layers concatenated; the box faces are 0 … 2D − 1), or -1 for a linear unit, which bounds no region."""
    out, first = [], 2 * dim
    for mask in net.relu_masks:
        relu = int(np.count_nonzero(mask))
        if relu == mask.shape[0]:  # every unit a ReLU (the usual layer)
            ids = np.arange(first, first + relu, dtype=np.int64)
        else:
            ids = np.full(mask.shape[0], -1, dtype=np.int64)
            ids[mask] = first + np.arange(relu)
        out.append(ids)
        first += relu
    return out


def root_chunk(engine: EngineNet) -> Chunk:
    """The box as the initial region: its vertices with incidence and its 2D facets (n·x ≤ c), as the
    one child of a virtual identity layer (input a(x) = x: parent maps Z = I, z0 = 0, all bits on)."""
    with compiled():
        return _box_chunk(engine.box.lo, engine.box.hi, engine.words)


@njit(cache=True, nogil=True)
def _box_chunk(lo, hi, words):
    """:func:`root_chunk`'s kernel. Corner c has coordinate i at hi_i when bit i of c is set (the order
    of Box.vertices), in 2-D taken in the cyclic order 0, 1, 3, 2 (c = v XOR v >> 1) that the polygon
    splitter keeps; its incidence bits are the faces x_i = lo_i (hyperplane 2i) or x_i = hi_i (2i + 1),
    all in word 0 (2D ≤ 38 < 64, MAX_REGION_DIM). Facet 2i is −x_i ≤ −lo_i, facet 2i + 1 is x_i ≤ hi_i."""
    D = lo.shape[0]
    n = 1 << D
    V = np.empty((n, D))
    inc = np.zeros((n, words), dtype=np.uint64)
    for v in range(n):
        corner = v ^ (v >> 1) if D == 2 else v
        for i in range(D):
            up = (corner >> i) & 1
            V[v, i] = hi[i] if up else lo[i]
            inc[v, 0] |= np.uint64(1) << np.uint64(2 * i + up)
    normals = np.zeros((2 * D, D))
    rhs = np.empty(2 * D)
    for i in range(D):
        normals[2 * i, i], rhs[2 * i] = -1.0, -lo[i]
        normals[2 * i + 1, i], rhs[2 * i + 1] = 1.0, hi[i]
    identity = np.eye(D).reshape((1, D, D))
    return Chunk(V, inc, np.array([0, n]), np.arange(2 * D), normals, rhs, np.array([0, 2 * D]), identity,
                 np.zeros((1, D)), np.zeros(1, dtype=np.int64), np.ones((1, D), dtype=np.bool_),
                 np.zeros((1, 0), dtype=np.bool_))


def split_chunk(chunk: Chunk, engine: EngineNet, layer: int, budget: int) -> tuple[Chunk, int]:
    """Split every region of ``chunk`` by the neurons of hidden layer ``layer``: the children (their
    patterns extended by this layer's bits; parents' maps = this layer's pre-activation maps on the
    chunk's regions) and the number of slivers dropped. Stops early once more than ``budget``
    children exist (the caller raises). Runs in parts on ``engine.threads`` threads (module docstring):
    in 2-D parts of GEMM_BLOCK multiples (:func:`part_bounds`); above 2-D the maps of the whole chunk
    first, then parts of about equal vertex rows cut anywhere (:func:`vertex_parts`), so that a chunk
    of a few costly regions (the root's children in 6-D) is spread over the threads too; a chunk
    outside 2-D split in one piece goes through one kernel call (:func:`splitting.split_to_chunk`)."""
    tols = engine.split_tolerances
    if engine.box.dim != 2 and len(parts := vertex_parts(chunk, engine.threads)) == 1:  # in one piece:
        with compiled():  # the maps, the split and the children's chunk in one kernel call
            children, dropped = split_to_chunk(chunk, engine.stack, layer, tols, budget)
        return children, dropped
    kernel_layer = engine.stack.layer(layer)
    if engine.box.dim == 2:  # the 2-D kernel walks polygons

        def split_part(bounds: tuple[int, int]) -> LayerSplit:
            with compiled():
                return split_polygons(chunk.rows(*bounds), kernel_layer, tols, budget)

        parts = part_bounds(chunk.size, engine.threads)
    else:
        with compiled():
            Z, z0 = pre_activation_maps(chunk, kernel_layer.weights, kernel_layer.biases)

        def split_part(bounds: tuple[int, int]) -> LayerSplit:
            start, stop = bounds
            with compiled():
                return split_layer_by_maps(chunk.rows(start, stop), Z[start:stop], z0[start:stop], kernel_layer,
                                           tols, budget)

    split = _joined_splits(in_threads(split_part, parts, engine.threads), parts, engine.threads)
    with compiled():
        return children_chunk(chunk, split, kernel_layer.hyperplane_ids), split.dropped


#: A chunk of fewer regions than this is split in one piece (a part costs a kernel call).
PART_MIN_REGIONS = 2 * GEMM_BLOCK

def part_bounds(n: int, threads: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting n regions into parts for ``threads`` threads, every start a
    multiple of GEMM_BLOCK (module docstring); one part when there is one thread or few regions."""
    if threads <= 1 or n < PART_MIN_REGIONS:
        return [(0, n)]
    blocks = -(-n // GEMM_BLOCK)
    per_part = -(-blocks // min(blocks, PARTS_PER_THREAD * threads)) * GEMM_BLOCK
    return [(start, min(start + per_part, n)) for start in range(0, n, per_part)]


#: A chunk above 2-D of fewer vertex rows than this is split and finished in one piece (a part
#: costs a kernel call and a hand-over to a thread; a 3-D region of a few dozen vertices costs about
#: as much to split).
PART_MIN_VERTICES = 1024


def vertex_parts(chunk: Chunk, threads: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting a chunk's regions into PARTS_PER_THREAD · threads parts of
    about equal vertex rows (a region's cost grows with its vertices), anywhere (the parts of a
    computation that has no matrix-product blocks); one part with one thread or few vertex rows."""
    return weighted_parts(chunk.vertex_indptr, threads, PART_MIN_VERTICES)


def _joined_splits(splits: list[LayerSplit], parts: Sequence[tuple[int, int]], threads: int) -> LayerSplit:
    """The splits of consecutive parts of a chunk as one split of the whole chunk (CSR offsets
    rebased, each part's parent indices moved by the part's start; the children's rows copied on
    ``threads`` threads)."""
    if len(splits) == 1:
        return splits[0]
    children = concat_rows([s.children for s in splits], threads)
    inputs = LayerInputs(
        parent_Z=np.concatenate([s.inputs.parent_Z for s in splits]),
        parent_z0=np.concatenate([s.inputs.parent_z0 for s in splits]),
        parent=np.concatenate([s.inputs.parent + start for s, (start, _) in zip(splits, parts, strict=True)]),
        bits=np.concatenate([s.inputs.bits for s in splits]),
    )
    return LayerSplit(children, inputs, sum(s.dropped for s in splits))


Rows = TypeVar("Rows", Polytopes, FinishedChunk)


def concat_rows(parts: Sequence[Rows], threads: int = 1, **given: np.ndarray) -> Rows:
    """Records of row arrays (Polytopes, FinishedChunk) one after the other, as one record: every field
    concatenated (on ``threads`` threads, :func:`threads.concatenate_in_threads`), CSR row pointers
    (the ``*_indptr`` fields) rebased; a field in ``given`` is taken as passed (the caller rebased it)."""
    record = type(parts[0])
    rows = [field for field in record._fields if field not in given and not field.endswith("_indptr")]
    joined = dict(zip(rows, concatenate_in_threads([[getattr(p, field) for p in parts] for field in rows], threads),
                      strict=True))
    return record(**{
        field: given[field] if field in given
        else concat_csr([getattr(p, field) for p in parts]) if field.endswith("_indptr")
        else joined[field]
        for field in record._fields
    })


def concat_columns(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Per-part results ``(a_i, b_i, …)`` of consecutive parts as one ``(a, b, …)``, each concatenated."""
    return parts[0] if len(parts) == 1 else tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def concat_csr(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate CSR offset arrays (each starting at 0)."""
    out, base = [np.zeros(1, dtype=np.int64)], 0
    for p in parts:
        out.append(p[1:] + base)
        base += int(p[-1])
    return np.concatenate(out)


def finish_chunk(chunk: Chunk, engine: EngineNet) -> tuple[FinishedChunk, int]:
    """A final chunk reduced to what the complex keeps: the output map A = W_L·A_in, b = W_L·c_in + b_L
    (splitting.pre_activation_maps with the output layer) replaces the last layer's input maps, volumes
    and centres are computed, and the incidence bitsets are dropped — so memory stays linear in the
    region count with a small constant. Regions whose interior point is within ON_HYPERPLANE·s of a
    facet are slivers at the tolerance scale (their pattern is not resolvable in float64): they are
    dropped and counted. Every neuron facet is left unresolved with its probe (regions/neighbours.py
    links them). Returns the reduced chunk and the number of regions dropped."""
    dim = engine.box.dim
    if dim == 2:  # cyclic polygons: one kernel does what follows (the same values), on one thread: a
        with compiled():  # chunk's finish costs little beside its splits, and parts cost more than they save
            return finish_polygons(chunk, engine.W_out, engine.b_out, engine.tol,
                                   tolerances.NEIGHBOUR_STEP * engine.box.scale)
    exact = dim <= tolerances.EXACT_VOLUME_MAX_DIM
    facts = polygon_facts if dim == 2 else region_facts  # the 2-D splitter's polygons are cyclic

    def facts_part(bounds: tuple[int, int]) -> tuple[np.ndarray, ...]:
        part = chunk.rows(*bounds)
        with compiled():
            return facts(part.vertices, part.incidence, part.vertex_indptr, part.constraint_ids,
                         part.constraint_normals, part.constraint_rhs, part.constraint_indptr, exact)

    volumes, centres, radii, facet_centres = concat_columns(
        in_threads(facts_part, vertex_parts(chunk, engine.threads), engine.threads))
    keep = radii > tolerances.ON_HYPERPLANE * engine.box.scale
    parent, bits = chunk.parent[keep], chunk.bits[keep]

    def output_maps(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        inputs = LayerInputs(chunk.parent_Z, chunk.parent_z0, parent[bounds[0]:bounds[1]], bits[bounds[0]:bounds[1]])
        with compiled():
            return pre_activation_maps(inputs, engine.W_out, engine.b_out)

    A, b = concat_columns(in_threads(output_maps, part_bounds(parent.shape[0], engine.threads), engine.threads))
    with compiled():
        rows = _kept_rows(keep, chunk.vertex_indptr, chunk.constraint_indptr, chunk.constraint_ids, 2 * dim)
    reduced = FinishedChunk(
        vertices=np.empty((int(rows.vertex[-1]), dim)),
        vertex_indptr=rows.vertex[np.concatenate(([0], np.flatnonzero(keep) + 1))],
        facet_sources=np.empty(int(rows.facet[-1]), dtype=np.int64),
        facet_normals=np.empty((int(rows.facet[-1]), dim)),
        facet_rhs=np.empty(int(rows.facet[-1])),
        facet_indptr=rows.facet[np.concatenate(([0], np.flatnonzero(keep) + 1))],
        neighbours=np.empty(int(rows.facet[-1]), dtype=np.int64),
        boundary_probes=np.empty((int(rows.probe[-1]), dim)),
        A=A, b=b, patterns=np.empty((A.shape[0], chunk.patterns.shape[1]), dtype=np.bool_),
        volumes=np.empty(A.shape[0]), interior_points=np.empty((A.shape[0], dim)), radii=np.empty(A.shape[0]),
    )
    computed = RegionFacts(volumes, centres, radii, facet_centres)
    step = tolerances.NEIGHBOUR_STEP * engine.box.scale

    def write_part(bounds: tuple[int, int]) -> None:
        with compiled():
            _write_kept(chunk, computed, keep, rows, bounds[0], bounds[1], 2 * dim, step, reduced)

    in_threads(write_part, vertex_parts(chunk, engine.threads), engine.threads)
    return reduced, int(np.count_nonzero(~keep))


class RegionFacts(NamedTuple):
    """What :func:`polytope.region_facts` computes on a chunk's regions."""

    volumes: np.ndarray  # (R,)
    centres: np.ndarray  # (R, D) vertex centroids
    radii: np.ndarray  # (R,) radius of the largest ball around the centroid
    facet_centres: np.ndarray  # (constraint rows, D) the centroid of each facet's vertices


class KeptRows(NamedTuple):
    """Where a final chunk's kept regions go in its :class:`FinishedChunk` (:func:`_kept_rows`)."""

    region: np.ndarray  # (R,) each region's row among the kept ones
    vertex: np.ndarray  # (R + 1,) first vertex row of each region (a dropped region takes none)
    facet: np.ndarray  # (R + 1,) first facet row
    probe: np.ndarray  # (R + 1,) first probe row (one per neuron facet)


@njit(cache=True, nogil=True)
def _kept_rows(keep, vertex_indptr, constraint_indptr, constraint_ids, first_neuron):
    """The rows each region of a final chunk takes in the finished chunk when only the regions with
    ``keep`` stay: its vertices, its facets and its facets' probes (those of hyperplane id ≥
    ``first_neuron``, the neurons), one after the other in region order."""
    R = keep.shape[0]
    region = np.empty(R, dtype=np.int64)
    vertex = np.zeros(R + 1, dtype=np.int64)
    facet = np.zeros(R + 1, dtype=np.int64)
    probe = np.zeros(R + 1, dtype=np.int64)
    kept = 0
    for r in range(R):
        region[r] = kept
        vertex[r + 1], facet[r + 1], probe[r + 1] = vertex[r], facet[r], probe[r]
        if not keep[r]:
            continue
        kept += 1
        vertex[r + 1] += vertex_indptr[r + 1] - vertex_indptr[r]
        facet[r + 1] += constraint_indptr[r + 1] - constraint_indptr[r]
        for c in range(constraint_indptr[r], constraint_indptr[r + 1]):
            if constraint_ids[c] >= first_neuron:
                probe[r + 1] += 1
    return KeptRows(region, vertex, facet, probe)


@njit(cache=True, nogil=True)
def _write_kept(chunk, facts, keep, rows, start, stop, first_neuron, step, out):
    """:func:`finish_chunk`'s copy of regions ``start:stop`` of a final chunk into the finished chunk
    ``out`` (its rows allocated, :class:`KeptRows` ``rows``), the kept ones only: vertices, facets
    with their source codes (:func:`chunk.source_code`), every neuron facet UNRESOLVED with its probe (the
    facet's vertex centroid + ``step`` · its unit normal, regions/neighbours.py; a box face's
    neighbour is -1), the patterns and ``facts``. Parts cut anywhere write disjoint rows."""
    D = chunk.vertices.shape[1]
    for r in range(start, stop):
        if not keep[r]:
            continue
        v = rows.vertex[r]
        for u in range(chunk.vertex_indptr[r], chunk.vertex_indptr[r + 1]):
            for i in range(D):
                out.vertices[v, i] = chunk.vertices[u, i]
            v += 1
        f, p = rows.facet[r], rows.probe[r]
        for c in range(chunk.constraint_indptr[r], chunk.constraint_indptr[r + 1]):
            h = chunk.constraint_ids[c]
            out.facet_sources[f] = source_code(h, D)
            out.facet_rhs[f] = chunk.constraint_rhs[c]
            for i in range(D):
                out.facet_normals[f, i] = chunk.constraint_normals[c, i]
            out.neighbours[f] = -1
            if h >= first_neuron:
                out.neighbours[f] = UNRESOLVED
                for i in range(D):
                    out.boundary_probes[p, i] = facts.facet_centres[c, i] + step * chunk.constraint_normals[c, i]
                p += 1
            f += 1
        k = rows.region[r]
        out.patterns[k] = chunk.patterns[r]
        out.volumes[k] = facts.volumes[r]
        out.radii[k] = facts.radii[r]
        for i in range(D):
            out.interior_points[k, i] = facts.centres[r, i]


def concat_finished(parts: list[FinishedChunk], threads: int = 1) -> FinishedChunk:
    """Finished chunks one after the other, as one (CSR offsets and neighbour indices rebased; the
    rows copied on ``threads`` threads)."""
    if len(parts) == 1:
        return parts[0]
    firsts = np.cumsum([0] + [p.radii.shape[0] for p in parts[:-1]])
    neighbours = np.concatenate([offset_neighbours(p.neighbours, int(first))
                                 for p, first in zip(parts, firsts, strict=True)])
    return concat_rows(parts, threads, neighbours=neighbours)


def empty_finished(engine: EngineNet) -> FinishedChunk:
    """A finished chunk of no regions (a subtree whose regions were all dropped)."""
    D, K = engine.box.dim, engine.W_out.shape[0]
    neurons = engine.relu_units
    indptr = np.zeros(1, dtype=np.int64)
    return FinishedChunk(
        vertices=np.empty((0, D)), vertex_indptr=indptr, facet_sources=np.empty(0, dtype=np.int64),
        facet_normals=np.empty((0, D)), facet_rhs=np.empty(0), facet_indptr=indptr,
        neighbours=np.empty(0, dtype=np.int64), boundary_probes=np.empty((0, D)),
        A=np.empty((0, K, D)), b=np.empty((0, K)), patterns=np.empty((0, neurons), dtype=bool), volumes=np.empty(0),
        interior_points=np.empty((0, D)), radii=np.empty(0),
    )


class Subtree(NamedTuple):
    """A chunk and everything below it in the region tree: one independent piece of work."""

    path: Path  # index of the chunk at each level from the root (the canonical order key)
    layer: int  # the hidden layer that splits the chunk next (== hidden layers: the chunk is final)
    chunk: Chunk
    share: float  # the fraction of the tree's final chunks it stands for (for progress), estimated


class Explored(NamedTuple):
    """A subtree explored to the end: its final regions in depth-first order."""

    path: Path
    regions: FinishedChunk
    dropped: int  # lower-dimensional cells and slivers dropped inside the subtree
    chunks: int  # final chunks finished
    share: float  # the subtree's share of the tree (as in Subtree)


def explore(
    engine: EngineNet,
    subtree: Subtree,
    *,
    chunk_size: int,
    limit: int,
    progress: ProgressFn | None = None,
) -> Explored:
    """Every final region below ``subtree``, depth-first (children in order). Raises QuasieqError as
    soon as more than ``limit`` regions are certain in this subtree. ``progress(found, share_done)``
    is called per finished chunk."""
    finished: list[FinishedChunk] = []
    found = dropped = 0
    done_share = 0.0
    stack = [subtree]
    pending = subtree.chunk.size
    while stack:
        check_time("enumerating regions")
        node = stack.pop()
        pending -= node.chunk.size
        step = advance(node, engine, chunk_size=chunk_size, limit=limit, found=found + pending)
        dropped += step.dropped
        if step.finished is not None:
            finished.append(step.finished)
            found += step.finished.radii.shape[0]
            done_share += node.share
            if progress is not None:
                progress(found, done_share)
            continue
        stack.extend(reversed(step.below))
        pending += sum(b.chunk.size for b in step.below)
    regions = concat_finished(finished, engine.threads) if finished else empty_finished(engine)
    return Explored(path=subtree.path, regions=regions, dropped=dropped, chunks=len(finished), share=subtree.share)


class Step(NamedTuple):
    """What one step of the walk makes of a subtree: the subtrees below it, or its final regions."""

    below: list[Subtree]
    finished: FinishedChunk | None
    dropped: int  # slivers dropped


def advance(node: Subtree, engine: EngineNet, *, chunk_size: int, limit: int, found: int) -> Step:
    """One step of the depth-first walk from ``node`` (``found`` regions certain elsewhere): a final
    chunk is finished, any other split by its next layer (:func:`split_subtree`). A 2-D chunk of one
    part goes down in one kernel call (polygons.descend_polygons) as long as the tree below it is a
    single path of one-part chunks: the same steps, without the calls between them."""
    if engine.box.dim == 2 and len(part_bounds(node.chunk.size, engine.threads)) == 1:
        part_min = PART_MIN_REGIONS if engine.threads > 1 else NO_LIMIT
        with compiled():
            descent = descend_polygons(node.chunk, node.layer, engine.stack, engine.split_tolerances, limit - found,
                                       chunk_size, part_min, engine.W_out, engine.b_out,
                                       tolerances.NEIGHBOUR_STEP * engine.box.scale)
        if descent.done:
            return Step([], descent.finished, descent.dropped)
        parent = node._replace(path=(*node.path, *(0,) * (descent.levels - 1)), layer=descent.layer - 1)
        return Step(subtrees_below(parent, descent.chunk, chunk_size=chunk_size, limit=limit, found=found), None,
                    descent.dropped)
    if node.layer == engine.depth:
        reduced, thin = finish_chunk(node.chunk, engine)
        return Step([], reduced, thin)
    below, dropped = split_subtree(node, engine, chunk_size=chunk_size, limit=limit, found=found)
    return Step(below, None, dropped)


def split_subtree(
    node: Subtree, engine: EngineNet, *, chunk_size: int, limit: int, found: int
) -> tuple[list[Subtree], int]:
    """Split ``node``'s chunk by its next layer: the children cut into chunks (:func:`chunk.chunk_rows`), in
    order, as subtrees, and the number of slivers dropped. ``found`` regions are already certain
    elsewhere; more than ``limit`` in all raises TooManyRegions (the split stops as soon as that is sure)."""
    children, dropped = split_chunk(node.chunk, engine, node.layer, limit - found)
    return subtrees_below(node, children, chunk_size=chunk_size, limit=limit, found=found), dropped


def subtrees_below(node: Subtree, children: Chunk, *, chunk_size: int, limit: int, found: int) -> list[Subtree]:
    """The children of ``node``'s chunk split by its layer, cut into chunks (:func:`chunk.chunk_rows`) in
    order, as subtrees; raises TooManyRegions when they and the ``found`` regions are more than ``limit``."""
    n = children.size
    if n > limit - found:
        raise RegionLimit(limit, "max_regions=").refusal(found + n)
    rows = chunk_rows(node.layer, n, chunk_size)
    return [
        Subtree(path=(*node.path, i), layer=node.layer + 1, chunk=children.rows(s, min(s + rows, n)),
                share=node.share * (min(s + rows, n) - s) / max(n, 1))
        for i, s in enumerate(range(0, n, rows))
    ]
