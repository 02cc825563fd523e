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

import numpy as np
import scipy.sparse as sp

from quasieq import tolerances
from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.complex import RegionComplex
from quasieq.regions.polytope import points_inside, region_facts
from quasieq.regions.splitting import pre_activation_maps, split_layer

ProgressFn = Callable[[int, float], None]

#: Monte-Carlo samples per region (at least 10^5 in all) for volumes above EXACT_VOLUME_MAX_DIM.
_MC_SAMPLES_PER_REGION = 200


def _box_polytope(box: Box, words: int):
    """The box as the initial region: vertices, incidence, facet constraints (n·x ≤ c)."""
    D = box.dim
    V = box.vertices()
    if D == 2:  # the 2-D splitter keeps polygons in cyclic order
        V = V[[0, 1, 3, 2]]
    inc = np.zeros((V.shape[0], words), dtype=np.uint64)
    for i in range(D):
        for v in range(V.shape[0]):
            face = 2 * i if V[v, i] == box.lo[i] else 2 * i + 1
            inc[v, face >> 6] |= np.uint64(1) << np.uint64(face & 63)
    ids = np.arange(2 * D, dtype=np.int64)
    normals = np.zeros((2 * D, D))
    offsets = np.empty(2 * D)
    for i in range(D):
        normals[2 * i, i], offsets[2 * i] = -1.0, -box.lo[i]
        normals[2 * i + 1, i], offsets[2 * i + 1] = 1.0, box.hi[i]
    return V, inc, ids, normals, offsets


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
    if not isinstance(net, ReluNet):
        raise QuasieqError(f"regions: expected a ReluNet, got {type(net).__name__}; use qe.load or qe.from_torch")
    box.check_net(net)
    if max_regions is not None and int(max_regions) < 1:
        raise QuasieqError(f"max_regions must be ≥ 1, got {max_regions}")
    limit = int(max_regions) if max_regions is not None else np.iinfo(np.int64).max
    started = time.perf_counter()
    D = box.dim
    tol = tolerances.ON_HYPERPLANE * box.scale
    sliver = tolerances.SLIVER * box.scale
    layers = [(W.toarray() if sp.issparse(W) else np.ascontiguousarray(W), b) for W, b in net.layers]
    hidden = layers[:-1]
    W_out, b_out = layers[-1]
    words = (2 * D + net.relu_units + 63) // 64
    hyperplane_ids = _hyperplane_ids(net, D)


    V, inc, ids, normals, offsets = _box_polytope(box, words)
    # a chunk: CSR polytopes, the previous layer's pre-activation maps per parent (Z_par, z0_par), each
    # region's parent and bits in that layer (splitting.layer_input), and the patterns so far; the box
    # is the one child of a virtual identity layer (input a(x) = x)
    root = (
        V, inc, np.array([0, V.shape[0]]), ids, normals, offsets, np.array([0, ids.shape[0]]),
        np.eye(D)[None], np.zeros((1, D)), np.zeros(1, dtype=np.int64), np.ones((1, D), dtype=bool),
        np.zeros((1, 0), dtype=bool),
    )
    finished: list[tuple] = []
    found = dropped = 0
    done_weight = 0.0
    stack = [(0, root, 1.0)]
    pending = 1
    while stack:
        layer, chunk, weight = stack.pop()
        n_chunk = chunk[2].shape[0] - 1
        pending -= n_chunk
        if layer == len(hidden):
            reduced, n_thin = _finish(chunk, W_out, b_out, box)
            finished.append(reduced)
            dropped += n_thin
            found += n_chunk - n_thin
            done_weight += weight
            if progress is not None:
                progress(found, done_weight)
            continue
        V, inc, voff, ids, normals, offsets, coff, Z_par, z0_par, parent, bits, patterns = chunk
        W, b = hidden[layer]
        budget = limit - found - pending
        packed, Z_par, z0_par, n_dropped = split_layer(
            V, inc, voff, ids, normals, offsets, coff, Z_par, z0_par, parent, bits, W, b,
            hyperplane_ids[layer], tol, sliver, tolerances.FLAT_GRADIENT, tolerances.PATTERN_ROUNDING, budget,
        )
        dropped += n_dropped
        V, inc, voff, ids, normals, offsets, coff, parent, bits = packed
        n_children = voff.shape[0] - 1
        if n_children > budget:
            raise QuasieqError(
                f"more than {max_regions} regions (at least {found + pending + n_children} found); "
                "raise max_regions or shrink the box"
            )
        patterns = np.concatenate((patterns[parent], bits[:, net.relu_masks[layer]]), axis=1)
        starts = list(range(0, n_children, chunk_size))
        for s in reversed(starts):
            e = min(s + chunk_size, n_children)
            sub = (
                V[voff[s] : voff[e]], inc[voff[s] : voff[e]], voff[s : e + 1] - voff[s],
                ids[coff[s] : coff[e]], normals[coff[s] : coff[e]], offsets[coff[s] : coff[e]],
                coff[s : e + 1] - coff[s], Z_par, z0_par, parent[s:e], bits[s:e], patterns[s:e],
            )
            stack.append((layer + 1, sub, weight * (e - s) / max(n_children, 1)))
            pending += e - s
    return _assemble(net, box, finished, dropped, started)


def _concat_csr(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate CSR offset arrays (each starting at 0)."""
    out, base = [np.zeros(1, dtype=np.int64)], 0
    for p in parts:
        out.append(p[1:] + base)
        base += int(p[-1])
    return np.concatenate(out)


def _finish(chunk: tuple, W_out: np.ndarray, b_out: np.ndarray, box: Box) -> tuple[tuple, int]:
    """A final chunk reduced to what the complex keeps: the output map A = W_L·A_in, b = W_L·c_in + b_L
    (splitting.pre_activation_maps with the output layer) replaces the last layer's input maps, volumes and centres are computed, and
    the incidence bitsets are dropped — so memory stays linear in the region count with a small
    constant. Regions whose interior point is within ON_HYPERPLANE·s of a facet are slivers at the
    tolerance scale (their pattern is not resolvable in float64): they are dropped and counted.
    Returns the reduced chunk and the number of regions dropped."""
    V, inc, voff, ids, normals, offsets, coff, Z_par, z0_par, parent, bits, patterns = chunk
    dim = box.dim
    exact = dim <= tolerances.EXACT_VOLUME_MAX_DIM
    volumes, centres, radii, facet_centres = region_facts(V, inc, voff, ids, normals, offsets, coff, exact)
    keep = radii > tolerances.ON_HYPERPLANE * box.scale
    vrows = np.repeat(keep, np.diff(voff))
    crows = np.repeat(keep, np.diff(coff))
    voff = np.concatenate(([0], np.cumsum(np.diff(voff)[keep])))
    coff = np.concatenate(([0], np.cumsum(np.diff(coff)[keep])))
    A, b = pre_activation_maps(Z_par, z0_par, parent[keep], bits[keep], W_out, b_out)
    reduced = (
        V[vrows], voff, _source_codes(ids[crows], dim), normals[crows], offsets[crows], coff, A, b,
        patterns[keep], volumes[keep], centres[keep], radii[keep], facet_centres[crows],
    )
    return reduced, int(np.count_nonzero(~keep))


def _assemble(net, box, finished, dropped, started) -> RegionComplex:
    def cat(i: int) -> np.ndarray:
        return np.concatenate([c[i] for c in finished])

    voff = _concat_csr([c[1] for c in finished])
    coff = _concat_csr([c[5] for c in finished])
    sources = cat(2)
    exact = box.dim <= tolerances.EXACT_VOLUME_MAX_DIM
    cx = RegionComplex(
        net, box, cat(8), cat(0), voff, cat(3), cat(4), sources, coff,
        np.full(sources.shape[0], -1, dtype=np.int64), cat(10), cat(11), cat(6), cat(7), cat(9),
        volume_exact=exact, dropped_lower_dim=int(dropped),
    )
    _link_neighbours(cx, cat(12))
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
