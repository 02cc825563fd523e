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
``chunk_size`` regions (regions/tree.py); every chunk is an independent piece of work (its subtree),
which bounds memory by (layers × chunk) in flight plus the output, and lets a distributed runner hand
out subtrees. This module checks the arguments, walks the tree and assembles the complex: neighbours
across facets and, above EXACT_VOLUME_MAX_DIM, volumes by sampling.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from quasieq import tolerances
from quasieq.box import Box
from quasieq.cluster import executor_for
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.checkpoint import Checkpoint
from quasieq.regions.chunk import FinishedChunk
from quasieq.regions.complex import RegionComplex
from quasieq.regions.limits import NO_LIMIT
from quasieq.regions.memory import trim_before
from quasieq.regions.neighbours import UNRESOLVED, link_within
from quasieq.regions.schedule import RegionProgressFn, array_bytes, run_tree, tree_plan
from quasieq.regions.splitting import one_blas_thread
from quasieq.regions.tree import EngineNet, Subtree, root_chunk
from quasieq.unit_box import UnitFrame, check_region_dim

if TYPE_CHECKING:  # distributed is imported only when a cluster is used (cluster/executor.py)
    from distributed import Client

#: Monte-Carlo samples per region (at least 10^5 in all) for volumes above EXACT_VOLUME_MAX_DIM.
_MC_SAMPLES_PER_REGION = 200


@one_blas_thread()
def regions(
    net: ReluNet,
    box: Box,
    *,
    max_regions: int | None = None,
    progress: RegionProgressFn | None = None,
    chunk_size: int = 4096,
    client: Client | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    threads: int | None = None,
) -> RegionComplex:
    """Every full-dimensional activation region of ``net`` inside ``box``.

    Parameters
    ----------
    net, box : the network and the box (dimensions must match).
    max_regions : raise :class:`QuasieqError` as soon as more regions than this are certain.
    progress : optional callable receiving a :class:`RegionProgress` (regions found, fraction of the
        tree done, subtrees done and left) per finished chunk (per finished subtree on a cluster).
    chunk_size : regions per independent piece of work (memory in flight grows with it; the last bits
        of the output maps depend on it, so it is part of a checkpoint's key).
    client : a ``distributed.Client``: the tree is cut into subtrees run on its workers
        (regions/schedule.py); the complex is bitwise the same as without.
    checkpoint, resume : a directory where each finished subtree is written; ``resume=True`` reads
        back the subtrees already there (same net, box and chunk size, else QuasieqError) instead of
        recomputing them.
    threads : threads each chunk is split on in this process (default: every core this process may
        use; 1 with a ``client``, whose workers are the parallelism), and the joining of the subtrees
        and the map from the unit box to ``box`` at the end run on (every core by default, also with a
        ``client``); the complex is bitwise the same for any number (regions/tree.py, unit_box.py,
        regions/assembly.py).

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
    check_region_dim(box.dim)
    frame = UnitFrame.of(box)  # first: a box float64 cannot represent is refused as such
    limit = _region_limit(net, box, max_regions)
    started = time.perf_counter()
    # the checkpoint is keyed by the caller's net and box; the tree runs on the unit box (unit_box.py)
    store = Checkpoint(checkpoint, net, box, chunk_size, resume=resume) if checkpoint is not None else None
    on_unit_box = frame.is_identity
    unit_net, unit_box = (net, box) if on_unit_box else (frame.fold(net), frame.unit_box)
    engine = EngineNet.of(unit_net, unit_box, threads=_threads(threads, client))
    root = Subtree(path=(), layer=0, chunk=root_chunk(engine), share=1.0)
    executor = executor_for(client)
    plan = tree_plan(executor, chunk_size=chunk_size, limit=limit, checkpointed=store is not None)
    # the subtrees are joined after the last one, like the map to the box below: on every core of this process
    found, dropped, run = run_tree(engine, root, plan, executor, checkpoint=store, progress=progress,
                                   assembly_threads=_threads(threads, None))
    cx = _assemble(unit_net, unit_box, found, dropped, started, subtrees=run.explored + run.resumed)
    cx.run = run
    # the map to the box comes after the last subtree: on a cluster every core of this process is free
    if on_unit_box:
        return cx
    trim_before(array_bytes(list(vars(cx).values())))  # the box's arrays come beside the unit box's
    return frame.complex_to_box(cx, net, threads=_threads(threads, None))


def _threads(threads: int | None, client: Client | None) -> int:
    """The threads of one process's enumeration: ``threads``, else every core the process may use
    (one on a cluster)."""
    if threads is not None:
        if int(threads) < 1:
            raise QuasieqError(f"threads must be ≥ 1, got {threads}")
        return int(threads)
    if client is not None:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _region_limit(net: ReluNet, box: Box, max_regions: int | None) -> int:
    """Check the arguments of :func:`regions`; the region count above which it raises."""
    if not isinstance(net, ReluNet):
        raise QuasieqError(f"regions: expected a ReluNet, got {type(net).__name__}; use qe.load or qe.from_torch")
    box.check_net(net)
    if max_regions is not None and int(max_regions) < 1:
        raise QuasieqError(f"max_regions must be ≥ 1, got {max_regions}")
    return min(int(max_regions), NO_LIMIT) if max_regions is not None else NO_LIMIT


def _assemble(net: ReluNet, box: Box, found: FinishedChunk, dropped: int, started: float,
              subtrees: int) -> RegionComplex:
    """The complex of the final regions (in the tree's depth-first order) of ``subtrees`` explored
    subtrees: neighbours linked, volumes estimated above EXACT_VOLUME_MAX_DIM."""
    exact = box.dim <= tolerances.EXACT_VOLUME_MAX_DIM
    cx = RegionComplex(
        net, box,
        patterns=found.patterns,
        vertices=found.vertices,
        vertex_indptr=found.vertex_indptr,
        facet_normals=found.facet_normals,
        facet_rhs=found.facet_rhs,
        facet_sources=found.facet_sources,
        facet_indptr=found.facet_indptr,
        neighbours=found.neighbours,
        interior_points=found.interior_points,
        radii=found.radii,
        A=found.A,
        b=found.b,
        volumes=found.volumes,
        volume_exact=exact,
        dropped_lower_dim=int(dropped),
    )
    _link_neighbours(cx, found, across_subtrees=subtrees > 1)
    if not exact:
        _monte_carlo_volumes(cx)
    cx.seconds = time.perf_counter() - started
    return cx


def _link_neighbours(cx: RegionComplex, found: FinishedChunk, across_subtrees: bool) -> None:
    """Neighbours across the facets the subtrees left unresolved: the flipped-pattern lookup on the
    whole complex (``across_subtrees``: of one subtree, it has been tried where the subtree ran and
    would fail again), then ``locate`` at the probes it does not settle (regions/neighbours.py)."""
    linked = link_within(found, cx.box.scale, cx.pattern_index) if across_subtrees else found
    left = np.flatnonzero(linked.neighbours == UNRESOLVED)
    neighbours = linked.neighbours
    if left.size:
        neighbours = neighbours.copy()
        neighbours[left] = cx.locate(linked.boundary_probes)
    cx.neighbours_flat = neighbours


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
