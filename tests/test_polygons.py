"""The 2-D polygon splitter (regions/polygons.py) against the general splitter and the LP brute force,
and both splitters on degenerate nets in 2-D to 5-D against the LP brute force."""

from __future__ import annotations

import numpy as np
import pytest

import oracles as O
import quasieq as qe
from quasieq import tolerances
from quasieq.regions.chunk import chunk_rows
from quasieq.regions.neighbours import UNRESOLVED, facet_probes
from quasieq.regions.polygons import descend_polygons, finish_polygons, polygon_facts, split_polygons
from quasieq.regions.polytope import region_facts
from quasieq.regions.splitting import LayerInputs, pre_activation_maps, split_layer
from quasieq.regions.tree import EngineNet, finish_chunk, root_chunk, split_chunk
from test_regions import DEGENERATE_2D, check_against_brute_force, check_all, make_net, one_layer


def _regions_by_key(split):
    """Each child as (parent, bits) → (sorted vertex rows, sorted facet ids)."""
    children, inputs = split.children, split.inputs
    out = {}
    for r in range(children.vertex_indptr.shape[0] - 1):
        v = children.vertices[children.vertex_indptr[r] : children.vertex_indptr[r + 1]]
        ids = children.constraint_ids[children.constraint_indptr[r] : children.constraint_indptr[r + 1]]
        key = (int(inputs.parent[r]), inputs.bits[r].tobytes())
        assert key not in out, "two children with the same parent and bits"
        out[key] = (v[np.lexsort(v.T[::-1])], np.sort(ids))
    return out


NETS_2D = {
    "seeded 2-16-16-1": O.seeded_layers("2-16-16-1"),
    "fan-in 2-12-12-12-1": O.seeded_layers("2-12-12-12-1", init="fanin"),
    "integer 2-6-6-1": [(np.array([[1, -1], [1, 1], [1, 0], [0, 1], [2, -1], [1, 1]], float),
                         np.array([0, 0, 0, 0, -1, 0], float)),
                        (np.array([[1, -1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, -1, 0, 1, 0, 0],
                                   [0, 1, -1, 0, 1, 1], [2, 0, 0, -1, 0, 0]], float),
                         np.array([0, 1, -1, 0, 0, -0.5])),
                        (np.ones((1, 6)), np.zeros(1))],
    **{f"one layer, {name}": one_layer(*wb) for name, wb in DEGENERATE_2D.items()},
}


@pytest.mark.parametrize("name", sorted(NETS_2D))
def test_polygon_splitter_matches_the_general_splitter(name):
    """Layer by layer from the box, both kernels split the same chunk into the same children (same
    parent and bits, same vertices to 1e-12 of the box, same facets); the polygon facts equal the
    face-lattice ones on the polygon splitter's children."""
    layers = NETS_2D[name]
    engine = EngineNet.of(make_net(layers), qe.Box.cube(2))
    chunk = root_chunk(engine)
    for layer in range(engine.depth):
        args = (engine.stack.layer(layer), engine.split_tolerances, 10**9)
        polygons, general = split_polygons(chunk, *args), split_layer(chunk, *args)
        assert polygons.dropped == general.dropped
        mine, theirs = _regions_by_key(polygons), _regions_by_key(general)
        assert mine.keys() == theirs.keys()
        for key, (vertices, ids) in mine.items():
            np.testing.assert_allclose(vertices, theirs[key][0], atol=1e-12)
            np.testing.assert_array_equal(ids, theirs[key][1])
        np.testing.assert_array_equal(polygons.inputs.parent_Z, general.inputs.parent_Z)
        c = polygons.children
        csr = (c.vertices, c.incidence, c.vertex_indptr, c.constraint_ids, c.constraint_normals, c.constraint_rhs,
               c.constraint_indptr, True)
        for fast, slow in zip(polygon_facts(*csr), region_facts(*csr), strict=True):
            np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-14)
        chunk, _ = split_chunk(chunk, engine, layer, 10**9)


@pytest.mark.parametrize("name", ["seeded 2-16-16-1", "integer 2-6-6-1"])
def test_finish_polygons_keeps_the_regions_above_the_radius_with_their_facts_and_maps(name):
    """finish_polygons against the pieces it combines, recomputed here with numpy: the polygon facts,
    the regions whose radius exceeds the bound (a bound at the median radius drops half of them), the
    output maps of the kept regions, their vertex and facet rows (box faces as negative sources), and
    every neuron facet unresolved with its probe."""
    engine = EngineNet.of(make_net(NETS_2D[name]), qe.Box.cube(2))
    chunk = root_chunk(engine)
    for layer in range(engine.depth):
        chunk, _ = split_chunk(chunk, engine, layer, 10**9)
    volumes, centres, radii, facet_centres = polygon_facts(
        chunk.vertices, chunk.incidence, chunk.vertex_indptr, chunk.constraint_ids, chunk.constraint_normals,
        chunk.constraint_rhs, chunk.constraint_indptr, True)
    for bound in (engine.tol, float(np.median(radii))):
        reduced, dropped = finish_polygons(chunk, engine.W_out, engine.b_out, bound,
                                           tolerances.NEIGHBOUR_STEP * engine.box.scale)
        keep = radii > bound
        assert dropped == np.count_nonzero(~keep) and (bound == engine.tol or dropped > 0)
        A, b = pre_activation_maps(LayerInputs(chunk.parent_Z, chunk.parent_z0, chunk.parent[keep], chunk.bits[keep]),
                                   engine.W_out, engine.b_out)
        vrows = np.repeat(keep, np.diff(chunk.vertex_indptr))
        crows = np.repeat(keep, np.diff(chunk.constraint_indptr))
        expected = {
            "vertices": chunk.vertices[vrows], "vertex_indptr": np.r_[0, np.cumsum(np.diff(chunk.vertex_indptr)[keep])],
            "facet_sources": O.facet_source_codes(chunk.constraint_ids[crows], 2),
            "facet_normals": chunk.constraint_normals[crows], "facet_rhs": chunk.constraint_rhs[crows],
            "facet_indptr": np.r_[0, np.cumsum(np.diff(chunk.constraint_indptr)[keep])],
            "neighbours": np.where(O.facet_source_codes(chunk.constraint_ids[crows], 2) >= 0, UNRESOLVED, -1),
            "boundary_probes": facet_probes(facet_centres[crows][chunk.constraint_ids[crows] >= 4],
                                            chunk.constraint_normals[crows][chunk.constraint_ids[crows] >= 4],
                                            engine.box.scale),
            "A": A, "b": b, "patterns": chunk.patterns[keep],
            "volumes": volumes[keep], "interior_points": centres[keep], "radii": radii[keep],
        }
        for field, value in expected.items():
            got = getattr(reduced, field)
            assert got.dtype == value.dtype, field
            np.testing.assert_array_equal(got, value, err_msg=field)


@pytest.mark.parametrize("name", ["fan-in 2-12-12-12-1", "integer 2-6-6-1"])
def test_polygon_splitter_multilayer_matches_brute_force(name):
    layers = NETS_2D[name]
    lo, hi = -np.ones(2), np.ones(2)
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    check_against_brute_force(cx, layers, lo, hi)
    check_all(cx, layers, generic=name.startswith("fan-in"))


def _degenerate_layers(D: int, rng: np.random.Generator) -> list:
    """Two hidden layers in D inputs with every degeneracy: a duplicated neuron and its negation, a zero
    row (bias > 0: always active), integer rows through box corners and through each other's crossings,
    and a second layer with a duplicated row and a zero row."""
    W1 = rng.integers(-1, 2, (4, D)).astype(float)
    W1[0] = 0.0
    W1[0, 0] = 1.0  # x_1 = 0: through the centre, meets the others' crossings
    W1 = np.vstack([W1, W1[1], -W1[1], np.zeros(D)])
    b1 = np.r_[0.0, rng.integers(-1, 2, 3).astype(float), 0.0, 0.0, 0.5]
    b1[5] = -b1[1]
    W2 = rng.integers(-1, 2, (3, W1.shape[0])).astype(float)
    W2 = np.vstack([W2, W2[0], np.zeros(W1.shape[0])])
    b2 = np.r_[rng.integers(-1, 2, 3).astype(float), 0.0, 1.0]
    b2[3] = b2[0]
    return [(W1, b1), (W2, b2), (np.ones((1, W2.shape[0])), np.zeros(1))]


@pytest.mark.parametrize("D", [2, 3, 4, 5])
def test_degenerate_nets_2d_to_5d_match_brute_force(D):
    layers = _degenerate_layers(D, np.random.default_rng(D))
    lo, hi = -np.ones(D), np.ones(D)
    cx = qe.regions(make_net(layers), qe.Box(lo, hi))
    check_against_brute_force(cx, layers, lo, hi)
    check_all(cx, layers, generic=False)


def _walk(engine: EngineNet, chunk, layer: int, chunk_size: int) -> tuple[list, int]:
    """The final chunks below ``chunk`` (split next by ``layer``) one explore step at a time
    (split_chunk, children in chunks of chunk_rows, finish_chunk), depth-first, and the regions dropped."""
    if layer == engine.depth:
        reduced, dropped = finish_chunk(chunk, engine)
        return [reduced], dropped
    children, dropped = split_chunk(chunk, engine, layer, 10**9)
    return _walk_below(engine, children, layer + 1, chunk_size, dropped)


def _walk_below(engine: EngineNet, children, layer: int, chunk_size: int, dropped: int) -> tuple[list, int]:
    """:func:`_walk` of each chunk the ``children`` of a split by ``layer - 1`` are cut into."""
    finished, rows = [], chunk_rows(layer - 1, children.size, chunk_size)
    for s in range(0, children.size, rows):
        below, thin = _walk(engine, children.rows(s, min(s + rows, children.size)), layer, chunk_size)
        finished += below
        dropped += thin
    return finished, dropped


@pytest.mark.parametrize("name", sorted(NETS_2D))
@pytest.mark.parametrize("chunk_size", [3, 40, 4096])
def test_descend_polygons_takes_the_walk_s_steps_in_one_call(name, chunk_size):
    """descend_polygons from the box, then the walk from where it stops, gives bitwise the final chunks
    and drop counts of the walk made one split_chunk/finish_chunk at a time; it stops at the first
    split whose children do not fit in one chunk, and finishes only a chunk that fits."""
    engine = EngineNet.of(make_net(NETS_2D[name]), qe.Box.cube(2))
    want, want_dropped = _walk(engine, root_chunk(engine), 0, chunk_size)
    big = np.iinfo(np.int64).max
    descent = descend_polygons(root_chunk(engine), 0, engine.stack, engine.split_tolerances, big, chunk_size, big,
                               engine.W_out, engine.b_out, tolerances.NEIGHBOUR_STEP * engine.box.scale)
    chunk, layer, dropped = root_chunk(engine), 0, 0
    for _ in range(descent.levels):  # the same path, a step at a time
        chunk, thin = split_chunk(chunk, engine, layer, 10**9)
        layer, dropped = layer + 1, dropped + thin
    assert descent.layer == layer and all(np.array_equal(a, b) for a, b in zip(descent.chunk, chunk, strict=True))
    fits = chunk.size <= chunk_rows(layer - 1, chunk.size, chunk_size)
    if descent.done:
        got = [descent.finished]
        assert fits and descent.dropped == want_dropped
    else:
        assert not fits and descent.dropped == dropped and descent.finished.radii.shape[0] == 0
        got = _walk_below(engine, chunk, layer, chunk_size, 0)[0]
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        for field in mine._fields:
            a, b = getattr(mine, field), getattr(theirs, field)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), field
