"""Handing the region tree out as tasks: split early layers into enough subtrees, explore each on a
worker, collect the finished subtrees as they arrive, put them back in the canonical order.

**Canonical order.** The final regions are ordered by the path of their final chunk (regions/tree.py),
i.e. the depth-first order of one walk of the tree. Every chunk's computation depends only on the
chunk, and the chunks are the same however the tree is cut into tasks, so the complex is bitwise
the same for any number of workers, for the single process, and for a run resumed from a checkpoint.

**Cutting the tree into tasks.** A task takes a subtree and either *expands* it (splits its chunk
once and hands the child subtrees back) or *explores* it (every region below it, depth-first, on the
worker). The client expands subtrees while fewer than ``subtrees_wanted`` (a few per worker) are out,
so early layers are split until the work is spread; a worker that explores a subtree and finds after
its first split that more than ``split_above`` child chunks follow (and they split again) hands them
back too: a subtree that turns out large is split again. Expansions cost shipping the child chunks;
explored subtrees cost shipping their final regions, once. On a cluster the regions' patterns (one
bool per ReLU unit, most of those bytes: 1 KiB of the 2.3 KiB per region of 2-512-512-1) travel
packed eight to a byte (``numpy.packbits``) and are unpacked on arrival, bit for bit the same.

**Memory.** The client holds the finished regions (linear in the regions kept) and the small queue
of subtrees; a worker holds one subtree's walk (layers × chunk in flight) and its finished regions
until they are collected.

**Checkpoints** (regions/checkpoint.py): each explored subtree is written to disk when it arrives; a
resumed run reads those back instead of submitting them, and re-expands only the subtrees above
them (one split each) to find the ones still to explore.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from quasieq.cluster import Executor, InlineExecutor
from quasieq.regions.checkpoint import Checkpoint
from quasieq.regions.chunk import FinishedChunk
from quasieq.regions.complex import TreeRun
from quasieq.regions.limits import RegionLimit
from quasieq.regions.tree import (
    EngineNet,
    Explored,
    Path,
    ProgressFn,
    Subtree,
    concat_finished,
    empty_finished,
    explore,
    split_subtree,
)

#: Subtrees out per worker before the client stops splitting early layers (load balance).
SUBTREES_PER_WORKER = 4

#: Subtrees a single-process run with a checkpoint is cut into (the checkpoint's granularity).
CHECKPOINT_SUBTREES = 16

#: A worker hands a subtree's children back when its first split gives more chunks than this.
SPLIT_ABOVE_CHUNKS = 16


class TreePlan(NamedTuple):
    """How the tree is cut into tasks (the regions do not depend on it)."""

    chunk_size: int
    limit: int  # max_regions (TooManyRegions beyond)
    subtrees_wanted: int
    split_above: int | None  # None: a task never hands children back
    pack_patterns: bool = False  # explored regions' patterns travel packed (see the module docstring)


def tree_plan(executor: Executor, *, chunk_size: int, limit: int, checkpointed: bool) -> TreePlan:
    """One process without a checkpoint: one task, the whole tree depth-first (the plain walk). One
    process with a checkpoint: CHECKPOINT_SUBTREES subtrees, so a resume has something to skip. A
    cluster: SUBTREES_PER_WORKER per worker, large subtrees split again (SPLIT_ABOVE_CHUNKS)."""
    if isinstance(executor, InlineExecutor):
        return TreePlan(chunk_size=chunk_size, limit=limit, subtrees_wanted=CHECKPOINT_SUBTREES if checkpointed else 1,
                        split_above=None)
    return TreePlan(chunk_size=chunk_size, limit=limit, subtrees_wanted=SUBTREES_PER_WORKER * executor.workers,
                    split_above=SPLIT_ABOVE_CHUNKS, pack_patterns=True)


class Expanded(NamedTuple):
    """A subtree split once: its child subtrees, to be handed out."""

    path: Path
    children: list[Subtree]
    dropped: int


class RegionProgress(NamedTuple):
    """What ``regions(progress=...)`` receives: per final chunk in one process, per subtree on a cluster."""

    found: int  # regions found so far
    fraction: float  # share of the tree finished (estimated from the chunk sizes)
    subtrees_done: int
    subtrees_left: int  # subtrees handed out and not back yet


RegionProgressFn = Callable[[RegionProgress], None]


def run_subtree(engine: EngineNet, subtree: Subtree, plan: TreePlan, expand: bool,
                progress: ProgressFn | None = None) -> Explored | Expanded:
    """One task (runs on a worker): expand ``subtree``, or explore it, handing its children back
    when its first split shows it large (see the module docstring)."""
    result = _run_subtree(engine, subtree, plan, expand, progress)
    if plan.pack_patterns and isinstance(result, Explored):
        return result._replace(regions=result.regions._replace(patterns=np.packbits(result.regions.patterns, axis=1)))
    return result


def unpack_patterns(result: Explored, neurons: int) -> Explored:
    """``result`` as :func:`run_subtree` made it before packing its patterns (``neurons`` bits a row)."""
    patterns = np.unpackbits(result.regions.patterns, axis=1, count=neurons).view(bool)
    return result._replace(regions=result.regions._replace(patterns=patterns))


def _run_subtree(engine: EngineNet, subtree: Subtree, plan: TreePlan, expand: bool,
                 progress: ProgressFn | None) -> Explored | Expanded:
    final = len(engine.hidden)
    if subtree.layer == final or not (expand or plan.split_above is not None):
        return explore(engine, subtree, chunk_size=plan.chunk_size, limit=plan.limit, progress=progress)
    below, dropped = split_subtree(subtree, engine, chunk_size=plan.chunk_size, limit=plan.limit, found=0)
    large = plan.split_above is not None and len(below) > plan.split_above and subtree.layer + 1 < final
    if expand or large:
        return Expanded(path=subtree.path, children=[b._replace(chunk=b.chunk.own_parents()) for b in below],
                        dropped=dropped)
    parts = [explore(engine, b, chunk_size=plan.chunk_size, limit=plan.limit) for b in below]
    regions = concat_finished([p.regions for p in parts]) if parts else empty_finished(engine)
    return Explored(path=subtree.path, regions=regions, dropped=dropped + sum(p.dropped for p in parts),
                    chunks=sum(p.chunks for p in parts), share=subtree.share)


def array_bytes(obj: object) -> int:
    """Bytes of the numpy arrays inside ``obj`` (named tuples, lists, tuples): what a task ships."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (tuple, list)):
        return sum(array_bytes(item) for item in obj)
    return 0


@dataclass
class _Tally:
    """The client's running counts."""

    found: int = 0
    share: float = 0.0
    dropped: int = 0
    tasks: int = 0
    in_flight: int = 0
    explored: int = 0
    explored_regions: int = 0
    resumed: int = 0
    bytes_shipped: int = 0


def run_tree(
    engine: EngineNet,
    root: Subtree,
    plan: TreePlan,
    executor: Executor,
    *,
    checkpoint: Checkpoint | None = None,
    progress: RegionProgressFn | None = None,
) -> tuple[FinishedChunk, int, TreeRun]:
    """Every final region below ``root`` in the canonical order, the number dropped, and how it ran.

    ``progress`` is called as regions are found: per final chunk when the tasks run in this process,
    per finished subtree on a cluster."""
    inline = isinstance(executor, InlineExecutor)
    shared = executor.share(engine)
    done: dict[Path, Explored] = {}
    tally = _Tally(bytes_shipped=0 if inline else array_bytes(engine) * executor.workers)

    def report(found: int, share: float) -> None:
        if progress is not None:
            progress(RegionProgress(found=found, fraction=share, subtrees_done=len(done),
                                    subtrees_left=tally.in_flight))

    def inline_progress(found: int, share: float) -> None:  # one process: per final chunk, as it goes
        report(tally.found + found, tally.share + share)

    def collect(result: Explored) -> None:
        done[result.path] = result
        tally.found += result.regions.radii.shape[0]
        tally.share += result.share
        tally.dropped += result.dropped
        if tally.found > plan.limit:
            raise RegionLimit(plan.limit, "max_regions=").refusal(tally.found)
        report(tally.found, tally.share)

    def hand_out(subtrees: list[Subtree]) -> None:
        spread = tally.in_flight + len(subtrees) < plan.subtrees_wanted
        for subtree in subtrees:
            if checkpoint is not None and subtree.path in checkpoint.finished:
                collect(checkpoint.load(subtree.path))
                tally.resumed += 1
                continue
            above_finished = checkpoint is not None and checkpoint.has_below(subtree.path)
            expand = subtree.layer < len(engine.hidden) and (spread or above_finished)
            tally.tasks += 1
            tally.in_flight += 1
            if not inline:
                tally.bytes_shipped += array_bytes(subtree)
            executor.submit(run_subtree, shared, subtree, plan, expand, inline_progress if inline else None)

    hand_out([root])
    for result in executor.results():
        tally.in_flight -= 1
        if not inline:
            tally.bytes_shipped += array_bytes(result)  # as it travelled (patterns packed)
        if isinstance(result, Expanded):
            tally.dropped += result.dropped
            hand_out(result.children)
            continue
        if plan.pack_patterns:
            result = unpack_patterns(result, engine.relu_units)
        tally.explored += 1
        tally.explored_regions += result.regions.radii.shape[0]
        if checkpoint is not None:
            checkpoint.write(result)
        collect(result)
    ordered = [done[path].regions for path in sorted(done)]
    regions = concat_finished(ordered) if ordered else empty_finished(engine)
    run = TreeRun(workers=executor.workers, tasks=tally.tasks, explored=tally.explored,
                  explored_regions=tally.explored_regions, resumed=tally.resumed, bytes_shipped=tally.bytes_shipped)
    return regions, tally.dropped, run
