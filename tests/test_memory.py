"""regions/memory.py: freed memory inside glibc's heap handed back to the system."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from quasieq.regions import memory


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(memory._malloc_trim() is None or not sys.platform.startswith("linux"), reason="glibc only")
def test_trim_before_a_large_output_gives_freed_heap_blocks_back():
    """Blocks of 64 KiB (below glibc's mmap threshold: inside the heap), each followed by a small block
    that stays, freed: the resident memory keeps them until trim_before, which gives back most of them;
    below TRIM_BEFORE_BYTES it leaves them."""
    blocks, keep = [], []
    for _ in range(3000):  # ~190 MiB
        block = np.empty(8192)
        block[:] = 1.0  # touch every page
        blocks.append(block)
        keep.append(np.ones(4))  # small live blocks between them: the heap's top cannot shrink
    freed = sum(b.nbytes for b in blocks)
    del blocks
    before = _resident_bytes()
    memory.trim_before(memory.TRIM_BEFORE_BYTES - 1)
    assert _resident_bytes() > before - freed / 4
    memory.trim_before(memory.TRIM_BEFORE_BYTES)
    assert _resident_bytes() < before - freed / 2
    assert len(keep) == 3000
