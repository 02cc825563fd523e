"""Putting explored subtrees together in the canonical order.

The final regions are ordered by the paths of their subtrees (regions/tree.py). Subtrees come back
in any order; a subtree split into children is *closed* and its children are expected instead (they
sort right after it and before its next sibling, so path order stays the tree's). Once every
expected subtree is back, the subtrees sorted by path are concatenated in one pass per field
(:func:`tree.concat_finished`, the same code that joins a subtree's final chunks on a worker: CSR row
pointers and neighbour indices rebased), so each row is copied once, on the process's cores
(``threads``, regions/threads.py: numpy copies without holding the GIL, and a copied row is the same
bytes on any number of threads). On 2-512-512-1 (1 worker, load 2.5–5, two runs each, interleaved)
the concatenation after the last subtree took 0.79 and 0.64 s of wall time on one thread, 0.30 and
0.42 s on two, for about the same CPU (0.2–0.5 s: 230 MB of fresh pages, 70 % of them the patterns).

Placing each subtree into growing arrays as it arrived (this module before) let the client copy
while the workers computed, but the arrays' regrowth copied the rows placed again and the fresh
arrays' pages faulted in. On the 281,772 regions of 4-28-28-28-1: in one process, placing the 32
subtrees took 0.63–1.02 CPU s against 0.08–0.10 s for one concatenation (two runs); on a local
cluster of 2 workers on 2 cores (load 3.8–4.6, two runs each) the workers' CPU went from 14.2–14.7 s
to 13.3–13.6 s and the client's from 3.8 s to 3.5–3.8 s: the copying beside the workers slowed them
too. The price is the concatenation after the last subtree (0.4–1.0 s of wall time at those loads).
Memory: the subtrees as they arrived, then the complex's arrays beside them while they are copied
(twice the regions' bytes for a moment).
"""

from __future__ import annotations

from collections.abc import Callable

from quasieq.regions.chunk import FinishedChunk
from quasieq.regions.tree import Explored, Path, concat_finished


class Assembly:
    """The final regions of a tree, in path order, from subtrees that arrive in any order."""

    def __init__(self, empty: Callable[[], FinishedChunk], threads: int = 1) -> None:
        self._empty = empty  # makes the regions of a tree whose subtrees were all dropped (rarely needed)
        self._threads = threads  # the concatenation's threads
        self._open: set[Path] = set()  # expected, not back yet
        self._arrived: dict[Path, Explored] = {}

    def expect(self, path: Path) -> None:
        """A subtree at ``path`` is handed out (or is being split)."""
        self._open.add(path)

    def close(self, path: Path) -> None:
        """The subtree at ``path`` was split: its children are expected instead."""
        self._open.remove(path)

    def arrive(self, result: Explored) -> None:
        """An explored subtree is back."""
        self._open.remove(result.path)
        self._arrived[result.path] = result

    def finished(self) -> FinishedChunk:
        """All regions in path order, once every expected subtree has arrived."""
        if self._open:
            raise RuntimeError(f"{len(self._open)} subtrees expected still (first {min(self._open)})")
        parts = [self._arrived.pop(path).regions for path in sorted(self._arrived)]
        return concat_finished(parts, self._threads) if parts else self._empty()
