"""Handing the region tree out as tasks: split early layers into enough subtrees, explore each on a
worker, collect the finished subtrees as they arrive, put them back in the canonical order.

**Canonical order.** The final regions are ordered by the path of their final chunk (regions/tree.py),
i.e. the depth-first order of one walk of the tree. Every chunk's computation depends only on the
chunk, and the chunks are the same however the tree is cut into tasks, so the complex is bitwise
the same for any number of workers, for the single process, and for a run resumed from a checkpoint.

**Cutting the tree into tasks.** The client *expands* subtrees (splits a chunk once into its child
subtrees) while fewer than ``subtrees_wanted`` (a few per worker) are out, so early layers are split
until the work is spread, and hands each remaining subtree out to be *explored* (every region below
it, depth-first, on one worker). The root (one region, the first split of every run) is split on
every worker, not sent: a task names a root child by its number (:class:`RootChild`), and the first
such task on a worker splits the root there and keeps the split for the later ones
(:func:`root_children`, once per worker and run), so the client neither splits the root nor ships its
children, and all workers split it at once at the start, when they would wait for it anyway. The
client does not know how many chunks the root's children make (ROOT_CHUNKS, or more for large roots,
regions/chunk.py) until a worker has split it: it hands out ROOT_CHUNKS root children at once and one
small task that streams the count back (:func:`describe_root`); it then hands out the chunks beyond
ROOT_CHUNKS, and a task for an index beyond the last answers :class:`Absent`. Measured on
2-512-512-1 with 2 workers (load 4.5): the client split the root in 0.21 CPU s (0.47 s of wall
time) and the workers started their first subtree 0.5 and 1.0 s after the run began, while the root's
children (190 bytes per region) went out through the client.
Below the root an expansion's children stay on the cluster: the expansion is a task whose
result is kept there (:meth:`Executor.keep`), a small task streams back how many children it has,
and each child becomes a key of its own (a task that picks it out), so a worker exploring a child
fetches that child only, from the worker that split it, and nothing of it passes through the client.
A worker that explores a subtree and finds after its first split that more than ``split_above``
child chunks follow (and they split again) hands them back (through the client): a subtree that turns
out large is split again.

**What comes back.** An explored subtree ships its final regions once, with the neighbours across its
facets linked on the worker as far as its own regions go (regions/neighbours.py); the client links
only the facets on subtree boundaries, after the last subtree. On a cluster the patterns (one bool
per ReLU unit, the bulk of a region's bytes) travel packed eight to a byte (``numpy.packbits``) and
are unpacked on arrival, bit for bit the same. The client keeps the subtrees as they arrive and,
after the last one, concatenates them in path order in one pass (regions/assembly.py).

**Memory.** The client holds the finished regions (linear in the regions kept) and the small queue
of subtrees; a worker holds the root's children (the regions after the first layer, with their
incidence bitsets, until the run's net is released on it), one subtree's walk (layers × chunk in
flight), the expansions whose children are not explored yet, and its finished regions until they are
collected.

**Checkpoints** (regions/checkpoint.py): each explored subtree is written to disk when it arrives; a
resumed run reads those back instead of submitting them, and re-expands only the subtrees above
them (one split each) to find the ones still to explore.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from quasieq.cluster import Executor, InlineExecutor
from quasieq.regions.assembly import Assembly
from quasieq.regions.checkpoint import Checkpoint
from quasieq.regions.chunk import ROOT_CHUNKS, FinishedChunk
from quasieq.regions.complex import TreeRun
from quasieq.regions.limits import RegionLimit
from quasieq.regions.neighbours import link_within
from quasieq.regions.tree import (
    EngineNet,
    Explored,
    Path,
    ProgressFn,
    Subtree,
    concat_finished,
    empty_finished,
    explore,
    root_chunk,
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
    expand_last: bool = True  # may an expansion's children be final chunks (see tree_plan)
    pack_patterns: bool = False  # explored regions' patterns travel packed (see the module docstring)


def tree_plan(executor: Executor, *, chunk_size: int, limit: int, checkpointed: bool) -> TreePlan:
    """One process without a checkpoint: one task, the whole tree depth-first (the plain walk). One
    process with a checkpoint: CHECKPOINT_SUBTREES subtrees, so a resume has something to skip. A
    cluster: SUBTREES_PER_WORKER per worker, large subtrees split again (SPLIT_ABOVE_CHUNKS), and a subtree
    expanded only when its children split again: a final chunk costs little to finish and much to ship
    (its vertices' incidence bitsets), so expanding into the last layer made tasks that fetched more
    than they computed (3-72-72-1 on 2 workers: 39 tasks and 1.9× the serial CPU seconds)."""
    if isinstance(executor, InlineExecutor):
        return TreePlan(chunk_size=chunk_size, limit=limit, subtrees_wanted=CHECKPOINT_SUBTREES if checkpointed else 1,
                        split_above=None)
    return TreePlan(chunk_size=chunk_size, limit=limit, subtrees_wanted=SUBTREES_PER_WORKER * executor.workers,
                    split_above=SPLIT_ABOVE_CHUNKS, pack_patterns=True, expand_last=False)


class Expanded(NamedTuple):
    """A subtree split once: its child subtrees, to be handed out."""

    path: Path
    children: list[Subtree]
    dropped: int


class ExpansionSummary(NamedTuple):
    """What the client learns of an expansion kept on the cluster: where it is and how many children."""

    path: Path
    layer: int  # the children's layer
    children: int
    dropped: int


class Waiting(NamedTuple):
    """A subtree to hand out: where it sits in the tree, and the subtree itself or a handle to it kept
    on the cluster (:meth:`Executor.keep`)."""

    path: Path
    layer: int
    subtree: object


class RegionProgress(NamedTuple):
    """What ``regions(progress=...)`` receives: per final chunk in one process, per subtree on a cluster."""

    found: int  # regions found so far
    fraction: float  # share of the tree finished (estimated from the chunk sizes)
    subtrees_done: int
    subtrees_left: int  # subtrees handed out and not back yet


RegionProgressFn = Callable[[RegionProgress], None]


class RootChild(NamedTuple):
    """Child chunk ``number`` of the root (its path is ``(number,)``), named instead of sent: the worker
    running the task splits the root itself (:func:`root_children`)."""

    number: int


class RootSplit(NamedTuple):
    """What the client learns of the root's split on a worker: its child chunks and slivers dropped."""

    children: int
    dropped: int


class Absent(NamedTuple):
    """The result of a task for a root child beyond the last (handed out before the count was known)."""

    path: Path


#: The root's split per worker process, for the engine a run shipped there (keyed by the id of its
#: output weights, an array that lives as long as the engine does) and the plan's chunk size and limit;
#: an entry goes when its engine is released on the worker (``weakref.finalize``).
_ROOT_SPLITS: dict[int, dict[tuple[int, int], tuple[list[Subtree], int]]] = {}
_ROOT_LOCK = threading.Lock()


def root_children(engine: EngineNet, plan: TreePlan) -> tuple[list[Subtree], int]:
    """The root's child subtrees and the slivers dropped splitting it: computed by the first task on
    this worker that asks (the others wait for it), kept for the later ones of the same run. The split
    is the one a single process makes, so every worker has bitwise the same children."""
    key = id(engine.W_out)
    with _ROOT_LOCK:
        splits = _ROOT_SPLITS.get(key)
        if splits is None:
            splits = _ROOT_SPLITS[key] = {}
            weakref.finalize(engine.W_out, _ROOT_SPLITS.pop, key, None)
        wanted = (plan.chunk_size, plan.limit)
        if wanted not in splits:
            root = Subtree(path=(), layer=0, chunk=root_chunk(engine), share=1.0)
            splits[wanted] = split_subtree(root, engine, chunk_size=plan.chunk_size, limit=plan.limit, found=0)
        return splits[wanted]


def describe_root(engine: EngineNet, plan: TreePlan) -> RootSplit:
    """One small task, streamed back ahead of the others: how many child chunks the root has (its split
    kept on the worker for the root children's tasks)."""
    children, dropped = root_children(engine, plan)
    return RootSplit(children=len(children), dropped=dropped)


def resolve(subtree: Subtree | RootChild, engine: EngineNet, plan: TreePlan) -> Subtree | Absent:
    """The subtree a task was given: a root child taken from this worker's split of the root (Absent
    beyond the last), a subtree sent by the client unpacked (:func:`unpack_subtree`)."""
    if isinstance(subtree, RootChild):
        children, _ = root_children(engine, plan)
        return children[subtree.number] if subtree.number < len(children) else Absent(path=(subtree.number,))
    return unpack_subtree(subtree, engine)


def expand_subtree(engine: EngineNet, subtree: Subtree | RootChild, plan: TreePlan) -> Expanded:
    """One task, its result kept on the cluster: ``subtree`` split once into its child subtrees (none
    for a root child beyond the last)."""
    resolved = resolve(subtree, engine, plan)
    if isinstance(resolved, Absent):
        return Expanded(path=resolved.path, children=[], dropped=0)
    below, dropped = split_subtree(resolved, engine, chunk_size=plan.chunk_size, limit=plan.limit, found=0)
    return _expanded(resolved, below, dropped)


def _expanded(subtree: Subtree, below: list[Subtree], dropped: int) -> Expanded:
    """``subtree`` split into ``below``: each child owning its parents' maps, so it can travel alone."""
    return Expanded(path=subtree.path, children=[b._replace(chunk=b.chunk.own_parents()) for b in below],
                    dropped=dropped)


def describe_expansion(expanded: Expanded) -> ExpansionSummary:
    """One small task, streamed back: what the client needs to hand the children of ``expanded`` out."""
    layer = expanded.children[0].layer if expanded.children else 0
    return ExpansionSummary(path=expanded.path, layer=layer, children=len(expanded.children),
                            dropped=expanded.dropped)


def child_of(expanded: Expanded, index: int) -> Subtree:
    """One small task, its result kept: child ``index`` of ``expanded``, a key of its own, so that a
    worker exploring it fetches that child only."""
    return expanded.children[index]


def run_subtree(engine: EngineNet, subtree: Subtree | RootChild, plan: TreePlan,
                progress: ProgressFn | None = None) -> Explored | Expanded | Absent:
    """One task, streamed back: explore ``subtree`` (its neighbours linked within it,
    regions/neighbours.py), or hand its children back when its first split shows it large (see the
    module docstring); :class:`Absent` for a root child beyond the last."""
    resolved = resolve(subtree, engine, plan)
    if isinstance(resolved, Absent):
        return resolved
    result = _run_subtree(engine, resolved, plan, progress)
    if isinstance(result, Explored):  # neighbours inside the subtree linked here, where it ran
        regions = link_within(result.regions, engine.box.scale, threads=engine.threads)
        if plan.pack_patterns:
            regions = regions._replace(patterns=np.packbits(regions.patterns, axis=1))
        return result._replace(regions=regions)
    return result


def pack_subtree(subtree: Subtree) -> Subtree:
    """``subtree`` as it travels from the client: its chunk's bool columns (``bits``, ``patterns``)
    packed eight to a byte, as uint8, and its vertices' incidence bitsets cut to the words that can be
    set so far (the box faces and the ReLU units of the layers split, 2D + ``patterns``' columns
    bits: hyperplane ids are numbered in that order, regions/tree.py). The root's children of
    2-512-512-1 travel in 641 bytes per region instead of 1,793."""
    chunk = subtree.chunk
    incidence = chunk.incidence
    used = (2 * chunk.vertices.shape[1] + chunk.patterns.shape[1] + 63) // 64
    if used < incidence.shape[1] and not incidence[:, used:].any():
        incidence = np.ascontiguousarray(incidence[:, :used])
    return subtree._replace(chunk=chunk._replace(bits=np.packbits(chunk.bits, axis=1), incidence=incidence,
                                                 patterns=np.packbits(chunk.patterns, axis=1)))


def unpack_subtree(subtree: Subtree, engine: EngineNet) -> Subtree:
    """``subtree`` as it was before :func:`pack_subtree` (the same when its columns are bool already):
    ``bits`` has one column per unit of the layer above (``parent_Z``'s rows), ``patterns`` one per
    ReLU unit of the layers split so far, the incidence ``engine.words`` words (the rest zero)."""
    chunk = subtree.chunk
    if chunk.bits.dtype == bool:
        return subtree
    neurons = sum(int(np.count_nonzero(mask)) for mask in engine.relu_masks[: subtree.layer])
    incidence = np.zeros((chunk.incidence.shape[0], engine.words), dtype=np.uint64)
    incidence[:, : chunk.incidence.shape[1]] = chunk.incidence
    return subtree._replace(chunk=chunk._replace(
        bits=np.unpackbits(chunk.bits, axis=1, count=chunk.parent_Z.shape[1]).view(bool), incidence=incidence,
        patterns=np.unpackbits(chunk.patterns, axis=1, count=neurons).view(bool)))


def unpack_patterns(result: Explored, neurons: int) -> Explored:
    """``result`` as :func:`run_subtree` made it before packing its patterns (``neurons`` bits a row)."""
    patterns = np.unpackbits(result.regions.patterns, axis=1, count=neurons).view(bool)
    return result._replace(regions=result.regions._replace(patterns=patterns))


def _run_subtree(engine: EngineNet, subtree: Subtree, plan: TreePlan,
                 progress: ProgressFn | None) -> Explored | Expanded:
    final = engine.depth
    if subtree.layer == final or plan.split_above is None:
        return explore(engine, subtree, chunk_size=plan.chunk_size, limit=plan.limit, progress=progress)
    below, dropped = split_subtree(subtree, engine, chunk_size=plan.chunk_size, limit=plan.limit, found=0)
    if len(below) > plan.split_above and subtree.layer + 1 < final:
        return _expanded(subtree, below, dropped)
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
    assembly_threads: int = 1,
) -> tuple[FinishedChunk, int, TreeRun]:
    """Every final region below ``root`` in the canonical order, the number dropped, and how it ran.

    ``progress`` is called as regions are found: per final chunk when the tasks run in this process,
    per finished subtree on a cluster. The subtrees are joined on ``assembly_threads`` threads."""
    inline = isinstance(executor, InlineExecutor)
    shared = executor.share(engine)
    assembly = Assembly(functools.partial(empty_finished, engine), assembly_threads)
    tally = _Tally(bytes_shipped=0 if inline else array_bytes(engine) * executor.workers)

    def report(found: int, share: float) -> None:
        if progress is not None:
            progress(RegionProgress(found=found, fraction=share, subtrees_done=tally.explored + tally.resumed,
                                    subtrees_left=tally.in_flight))

    def inline_progress(found: int, share: float) -> None:  # one process: per final chunk, as it goes
        report(tally.found + found, tally.share + share)

    def collect(result: Explored) -> None:
        assembly.arrive(result)
        tally.found += result.regions.radii.shape[0]
        tally.share += result.share
        tally.dropped += result.dropped
        if tally.found > plan.limit:
            raise RegionLimit(plan.limit, "max_regions=").refusal(tally.found)
        report(tally.found, tally.share)

    expansions: dict[Path, object] = {}  # expansions kept on the cluster, until their children are handed out

    def hand_out(waiting: list[Waiting]) -> None:
        spread = tally.in_flight + len(waiting) < plan.subtrees_wanted
        for w in waiting:
            assembly.expect(w.path)
            if checkpoint is not None and w.path in checkpoint.finished:
                collect(checkpoint.load(w.path))
                tally.resumed += 1
                continue
            above_finished = checkpoint is not None and checkpoint.has_below(w.path)
            children_split = plan.expand_last or w.layer + 1 < engine.depth
            expand = w.layer < engine.depth and (above_finished or (spread and children_split))
            if expand and w.layer == 0 and not inline:  # the root: split on the workers (module docstring)
                tally.tasks += 1
                tally.in_flight += 1
                executor.submit(describe_root, shared, plan, ahead=True)
                hand_out([Waiting((i,), 1, RootChild(i)) for i in range(ROOT_CHUNKS)])
                assembly.close(w.path)
                continue
            tally.tasks += 1
            tally.in_flight += 1
            subtree = w.subtree
            if not inline and isinstance(subtree, Subtree):  # sent from here (not a handle to one)
                subtree = pack_subtree(subtree)
                tally.bytes_shipped += array_bytes(subtree)
            if expand:
                expansions[w.path] = executor.keep(expand_subtree, shared, subtree, plan)
                executor.submit(describe_expansion, expansions[w.path], ahead=True)
            else:
                executor.submit(run_subtree, shared, subtree, plan, inline_progress if inline else None)

    def split_here(expanded: Expanded) -> None:  # children handed back by a task that found its subtree large
        tally.dropped += expanded.dropped
        hand_out([Waiting(child.path, child.layer, child) for child in expanded.children])
        assembly.close(expanded.path)

    hand_out([Waiting(root.path, root.layer, root)])
    for result in executor.results():
        tally.in_flight -= 1
        if not inline:
            tally.bytes_shipped += array_bytes(result)  # as it travelled (patterns packed)
        if isinstance(result, ExpansionSummary):  # children stay on the cluster: handles to each
            kept = expansions.pop(result.path)
            tally.dropped += result.dropped
            hand_out([Waiting((*result.path, i), result.layer, executor.keep(child_of, kept, i))
                      for i in range(result.children)])
            assembly.close(result.path)
            continue
        if isinstance(result, RootSplit):  # the root's chunks beyond those handed out at the start
            tally.dropped += result.dropped
            hand_out([Waiting((i,), 1, RootChild(i)) for i in range(ROOT_CHUNKS, result.children)])
            continue
        if isinstance(result, Absent):  # a root child beyond the last
            assembly.close(result.path)
            continue
        if isinstance(result, Expanded):  # handed back by a task that found its subtree large
            split_here(result)
            continue
        if plan.pack_patterns:
            result = unpack_patterns(result, engine.relu_units)
        tally.explored += 1
        tally.explored_regions += result.regions.radii.shape[0]
        if checkpoint is not None:
            checkpoint.write(result)
        collect(result)
    regions = assembly.finished()
    run = TreeRun(workers=executor.workers, tasks=tally.tasks, explored=tally.explored,
                  explored_regions=tally.explored_regions, resumed=tally.resumed, bytes_shipped=tally.bytes_shipped)
    return regions, tally.dropped, run
