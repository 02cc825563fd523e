"""Exact, vectorised lookup of activation patterns: which stored pattern (if any) equals each query.

Patterns (bool rows) are packed into uint64 words; each row gets a 64-bit multiplicative hash
h = Σ_w word_w · P_w (mod 2^64, P_w fixed odd constants); the table is sorted by hash, a query is
binary-searched and then compared word by word with every stored row of equal hash, so hash collisions
cost time, never correctness.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

MULTIPLIERS = np.random.default_rng(20020206).integers(1, 2**63, size=4096, dtype=np.uint64) | np.uint64(1)


def pack_patterns(patterns: np.ndarray) -> np.ndarray:
    """(N, bits) bool → (N, ceil(bits/64)) uint64."""
    n, bits = patterns.shape
    words = max(1, (bits + 63) // 64)
    packed = np.zeros((n, words * 8), dtype=np.uint8)  # bytes, zero-padded to whole words
    packed[:, : (bits + 7) // 8] = np.packbits(patterns, axis=1, bitorder="little")
    return packed.view(np.uint64).reshape(n, words)


class PatternTable(NamedTuple):
    """A :class:`PatternIndex`'s arrays, as its kernels read them."""

    hashes: np.ndarray  # (N,) uint64, sorted
    order: np.ndarray  # (N,) int64: the stored row of each sorted hash
    words: np.ndarray  # (N, words) uint64: the packed patterns, in stored order


@njit(cache=True, nogil=True)
def hash_rows(words: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    out = np.zeros(words.shape[0], dtype=np.uint64)
    for i in range(words.shape[0]):
        h = np.uint64(0)
        for w in range(words.shape[1]):
            h += words[i, w] * multipliers[w % multipliers.shape[0]] + np.uint64(w)
        out[i] = h
    return out


@njit(cache=True, nogil=True)
def find_rows(table, query_hash, query_words):
    """The stored row equal to each query (packed words, their hashes), or -1."""
    out = np.full(query_hash.shape[0], -1, dtype=np.int64)
    for q in range(query_hash.shape[0]):
        pos = np.searchsorted(table.hashes, query_hash[q])
        while pos < table.hashes.shape[0] and table.hashes[pos] == query_hash[q]:
            row = table.order[pos]
            same = True
            for w in range(query_words.shape[1]):
                if table.words[row, w] != query_words[q, w]:
                    same = False
                    break
            if same:
                out[q] = row
                break
            pos += 1
    return out


@njit(cache=True, nogil=True)
def flipped_words(words, rows, bits):
    """Row ``rows[q]`` of the packed table with bit ``bits[q]`` flipped, for every query q."""
    out = words[rows].copy()
    for q in range(rows.shape[0]):
        out[q, bits[q] >> 6] ^= np.uint64(1) << np.uint64(bits[q] & 63)
    return out


class PatternIndex:
    """Index of stored patterns; ``find(queries)`` gives each query's row or -1, ``find_flipped(rows,
    bits)`` the row of stored pattern ``rows[q]`` with bit ``bits[q]`` flipped (or -1)."""

    def __init__(self, patterns: np.ndarray) -> None:
        words = pack_patterns(patterns)
        hashes = hash_rows(words, MULTIPLIERS)
        order = np.argsort(hashes, kind="stable")
        self.table = PatternTable(hashes[order], order, words)

    def find(self, queries: np.ndarray) -> np.ndarray:
        words = pack_patterns(queries)
        return find_rows(self.table, hash_rows(words, MULTIPLIERS), words)

    def find_flipped(self, rows: np.ndarray, bits: np.ndarray) -> np.ndarray:
        words = flipped_words(self.table.words, np.asarray(rows, dtype=np.int64), np.asarray(bits, dtype=np.int64))
        return find_rows(self.table, hash_rows(words, MULTIPLIERS), words)
