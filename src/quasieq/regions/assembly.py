"""Putting explored subtrees together in the canonical order while the others are still computed.

The final regions are ordered by the paths of their subtrees (regions/tree.py). Subtrees come back
in any order; one can be placed once every subtree before it in path order is placed, i.e. once its
path is the smallest of the paths still *open* (handed out and not back, or back and not placed). A
subtree split into children closes and its children open; they sort right after it and before its
next sibling, so the order stays the tree's. Placing copies the subtree's arrays to the end of one
growing array per field (CSR row pointers and neighbour indices rebased), so when the last subtree
arrives only its own rows are left to copy: the client does not concatenate the whole complex after
the workers are done.

The first subtree placed keeps its own arrays (in one process, where the whole tree is one subtree,
nothing is copied). When the next does not fit, the rows placed move to a new array with room for
what the subtrees' estimated shares of the tree predict (× 1.15), so each row is copied about once;
at the end the arrays are cut to size in place (``ndarray.resize``: nothing else refers to them until
:meth:`Assembly.finished` hands them out). Memory stays linear in the regions: at most the headroom,
and the subtrees not placed yet as they arrived.
"""

from __future__ import annotations

import bisect

import numpy as np

from quasieq.regions.chunk import FinishedChunk
from quasieq.regions.neighbours import offset_neighbours
from quasieq.regions.tree import Explored, Path

#: Room made for the rows still to come: this factor × the rows the shares placed so far predict
#: (each subtree carries its estimated share of the tree, regions/tree.py).
_HEADROOM = 1.15


class Assembly:
    """The final regions of a tree, placed in path order as subtrees arrive (module docstring)."""

    def __init__(self, empty: FinishedChunk) -> None:
        self._arrays = {field: getattr(empty, field) for field in FinishedChunk._fields}
        self._used = {field: self._arrays[field].shape[0] for field in FinishedChunk._fields}
        self._grown: set[str] = set()  # fields whose array was allocated here (resized in place)
        self._placed = 0  # subtrees placed
        self._share = 0.0  # their estimated share of the tree
        self._open: list[Path] = []  # sorted
        self._arrived: dict[Path, Explored] = {}
        self.regions = 0  # regions placed so far

    def expect(self, path: Path) -> None:
        """A subtree at ``path`` is handed out (or is being split)."""
        bisect.insort(self._open, path)

    def close(self, path: Path) -> None:
        """The subtree at ``path`` was split: its children are expected instead."""
        self._open.remove(path)
        self._place_ready()

    def arrive(self, result: Explored) -> None:
        """An explored subtree is back (placed now or once all before it are)."""
        self._arrived[result.path] = result
        self._place_ready()

    def finished(self) -> FinishedChunk:
        """All regions in path order, once every expected subtree has arrived."""
        if self._open:
            raise RuntimeError(f"{len(self._open)} subtrees expected still (first {self._open[0]})")
        for field in self._grown:
            self._arrays[field].resize((self._used[field], *self._arrays[field].shape[1:]), refcheck=False)
        return FinishedChunk(**self._arrays)

    def _place_ready(self) -> None:
        while self._open and self._open[0] in self._arrived:
            self._place(self._arrived.pop(self._open.pop(0)))

    def _place(self, subtree: Explored) -> None:
        part = subtree.regions
        self._placed += 1
        self._share += subtree.share
        if self._placed == 1:  # the first subtree's arrays as they are (in one process: the only one)
            self._arrays = part._asdict()
            self._used = {field: array.shape[0] for field, array in self._arrays.items()}
            self.regions = part.radii.shape[0]
            return
        for field in FinishedChunk._fields:
            rows = getattr(part, field)
            if field.endswith("_indptr"):  # row pointers: the part's, after the last one placed
                rows = rows[1:] + self._arrays[field][self._used[field] - 1]
            elif field == "neighbours":
                rows = offset_neighbours(rows, self.regions)
            self._append(field, rows)
        self.regions += part.radii.shape[0]

    def _append(self, field: str, rows: np.ndarray) -> None:
        array, used = self._arrays[field], self._used[field]
        if used + rows.shape[0] > array.shape[0]:  # a new array, room for the predicted rows
            predicted = (used + rows.shape[0]) / max(self._share, 1e-9)
            capacity = max(int(_HEADROOM * predicted), used + rows.shape[0])
            grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
            grown[:used] = array[:used]
            self._arrays[field] = array = grown
            self._grown.add(field)
        array[used : used + rows.shape[0]] = rows
        self._used[field] = used + rows.shape[0]
