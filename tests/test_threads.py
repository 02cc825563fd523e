"""One enumeration on several threads (regions/tree.py): each chunk split and finished in parts that
start at multiples of the matrix-product block, so the complex is bitwise the one of a single thread."""

from __future__ import annotations

import numpy as np
import pytest

import oracles as O
import quasieq as qe
from quasieq.errors import QuasieqError
from quasieq.regions import tree
from quasieq.regions.splitting import GEMM_BLOCK, split_to_chunk
from test_regions import make_net, random_layers

ARRAYS = ("patterns", "vertices_flat", "vertex_indptr", "facet_normals_flat", "facet_rhs_flat", "facet_sources_flat",
          "facet_indptr", "neighbours_flat", "interior_points", "radii", "A", "b", "volumes")


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000, 4096])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_parts_cover_the_chunk_in_blocks(n, threads):
    """Parts are consecutive, cover 0..n, start at multiples of GEMM_BLOCK, and there is one part for
    one thread or a small chunk."""
    parts = tree.part_bounds(n, threads)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert all(start % GEMM_BLOCK == 0 and start < stop for start, stop in parts) or parts == [(0, 0)]
    assert len(parts) == 1 if threads == 1 or n < tree.PART_MIN_REGIONS else 1 < len(parts) <= 2 * threads


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_vertex_parts_cover_the_chunk_by_vertex_rows(threads):
    """Above 2-D a chunk is cut at about equal vertex rows: consecutive nonempty parts covering every
    region, each within one region's vertices of an equal share; one part for one thread or a chunk of
    few vertex rows."""
    rng = np.random.default_rng(threads)
    for sizes in (rng.integers(8, 400, size=150), np.r_[2000, np.full(40, 10)], np.full(3, 5)):
        chunk = tree.root_chunk(tree.EngineNet.of(O.seeded_relu_net("3-4-1"), qe.Box.cube(3)))
        chunk = chunk._replace(vertex_indptr=np.r_[0, np.cumsum(sizes)])
        parts = tree.vertex_parts(chunk, threads)
        assert parts[0][0] == 0 and parts[-1][1] == len(sizes)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(parts, parts[1:], strict=False))
        if threads == 1 or sizes.sum() < tree.PART_MIN_VERTICES:
            assert parts == [(0, len(sizes))]
            continue
        assert 1 < len(parts) <= tree.PARTS_PER_THREAD * threads
        rows = [int(sizes[a:b].sum()) for a, b in parts]
        share = sizes.sum() / (tree.PARTS_PER_THREAD * threads)
        assert max(rows) <= share + sizes.max()


def _complex_in_parts(net, box, threads, monkeypatch):
    """The complex on ``threads`` threads, and how many chunk operations ran in more than one part."""
    calls = []
    real = tree.in_threads

    def counting(fn, parts, n):
        calls.append(len(parts))
        return real(fn, parts, n)

    monkeypatch.setattr(tree, "in_threads", counting)
    cx = qe.regions(net, box, threads=threads)
    return cx, sum(c > 1 for c in calls)


@pytest.mark.parametrize(("arch", "init"), [("2-24-24-24-1", "torch"), ("2-16-16-16-1", "fanin"),
                                            ("3-16-16-1", "torch"), ("4-10-10-1", "fanin"), ("5-8-8-1", "fanin")])
def test_threads_give_the_single_thread_complex_bitwise(arch, init, monkeypatch):
    """Seeded 2-D to 5-D nets: the same arrays, bit for bit, on 1, 2 and 3 threads, with chunks really
    cut into parts (else the test would compare one run with itself)."""
    net = O.seeded_relu_net(arch, init=init)
    box = qe.Box.cube(net.in_dim)
    one, parted = _complex_in_parts(net, box, 1, monkeypatch)
    assert parted == 0
    for threads in (2, 3):
        many, parted = _complex_in_parts(net, box, threads, monkeypatch)
        assert parted > 0
        for name in ARRAYS:
            a, b = getattr(one, name), getattr(many, name)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name


def test_threads_on_a_degenerate_net_match_brute_force_and_one_thread(monkeypatch):
    """A small-integer 3-D net (coinciding, parallel and concurrent hyperplanes): the threaded complex
    is the single-thread one and agrees with the LP brute force."""
    from test_regions import check_against_brute_force

    rng = np.random.default_rng(11)
    layers = random_layers(rng, 3, [12, 10], integer=True)
    lo, hi = -np.ones(3), np.ones(3)
    one = qe.regions(make_net(layers), qe.Box(lo, hi), threads=1)
    many, parted = _complex_in_parts(make_net(layers), qe.Box(lo, hi), 2, monkeypatch)
    assert parted > 0
    assert all(getattr(one, name).tobytes() == getattr(many, name).tobytes() for name in ARRAYS)
    check_against_brute_force(many, layers, lo, hi)


def test_threads_must_be_positive():
    net = O.seeded_relu_net("2-4-1")
    with pytest.raises(QuasieqError, match="threads must be ≥ 1"):
        qe.regions(net, qe.Box.cube(2), threads=0)


def test_map_to_the_box_on_two_threads_is_the_one_thread_map(monkeypatch):
    """UnitFrame.complex_to_box on its pool (threshold lowered so that a small complex takes it) gives
    the arrays of its one-thread path bit for bit, and those are the unit-box complex mapped by
    x = lo + side·u (vertices, interior points) and the facets n·x ≤ c held by the mapped vertices."""
    from concurrent.futures import ThreadPoolExecutor

    from quasieq import unit_box

    pools = []

    class CountingPool(ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(unit_box, "MAP_THREADS_MIN_FACETS", 0)
    monkeypatch.setattr(unit_box, "ThreadPoolExecutor", CountingPool)
    net = O.seeded_relu_net("3-8-8-1", init="fanin")
    box = qe.Box(np.array([-3.0, 0.5, 10.0]), np.array([2.0, 0.75, 12.0]))
    unit = qe.regions(net, box, threads=1).unit
    frame = unit_box.UnitFrame.of(box)
    one = frame.complex_to_box(unit, net, threads=1)
    assert pools == []
    two = frame.complex_to_box(unit, net, threads=2)
    assert len(pools) == 1
    for name in ARRAYS:
        a, b = getattr(one, name), getattr(two, name)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    side = box.hi - box.lo
    assert np.array_equal(one.vertices_flat, box.lo + side * unit.vertices_flat)
    assert np.array_equal(one.interior_points, box.lo + side * unit.interior_points)
    for r in range(len(one)):
        V = one[r].vertices
        slack = one[r].facet_rhs[:, None] - one[r].facet_normals @ V.T
        assert slack.min() >= -1e-9 * box.scale and (np.abs(slack) <= 1e-9 * box.scale).any(axis=1).all()


def _every_step_in_parts(monkeypatch) -> None:
    """Thresholds lowered so that every threaded step of a small enumeration runs in parts: the vertex-row
    parts of splits and finishes, the copies of concatenations, the neighbour links."""
    from quasieq.regions import neighbours, threads

    monkeypatch.setattr(tree, "PART_MIN_VERTICES", 1)
    monkeypatch.setattr(threads, "COPY_PARTS_MIN_BYTES", 0)
    monkeypatch.setattr(neighbours, "LINK_PARTS_MIN_FACETS", 0)


@pytest.mark.parametrize("D", [3, 4])
def test_every_step_in_parts_on_degenerate_nets_matches_brute_force_and_one_thread(D, monkeypatch):
    """Degenerate 3-D and 4-D nets (a duplicated neuron and its negation, zero rows, integer
    hyperplanes through box corners and each other's crossings) with every threaded step cut into
    parts: the complex agrees with the LP brute force and is the single-thread one bit for bit."""
    from test_polygons import _degenerate_layers
    from test_regions import check_against_brute_force, check_all

    layers = _degenerate_layers(D, np.random.default_rng(D))
    lo, hi = -np.ones(D), np.ones(D)
    one = qe.regions(make_net(layers), qe.Box(lo, hi), threads=1)
    _every_step_in_parts(monkeypatch)
    for threads in (2, 3):
        many = qe.regions(make_net(layers), qe.Box(lo, hi), threads=threads)
        for name in ARRAYS:
            a, b = getattr(one, name), getattr(many, name)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    check_against_brute_force(many, layers, lo, hi)
    check_all(many, layers, generic=False)


@pytest.mark.parametrize(("arch", "init"), [("3-8-8-1", "fanin"), ("4-6-6-1", "torch")])
def test_finish_in_parts_keeps_the_regions_above_the_radius_with_their_facts_and_maps(arch, init, monkeypatch):
    """finish_chunk above 2-D, in parts on 1 to 3 threads, against the pieces it combines recomputed
    here with numpy: the region facts, the regions whose radius exceeds the bound (at the median radius
    half of them are dropped), the output maps of the kept regions, their vertex and facet rows (box
    faces as negative sources), and every neuron facet unresolved with its probe."""
    from quasieq import tolerances
    from quasieq.regions.neighbours import UNRESOLVED, facet_probes
    from quasieq.regions.polytope import region_facts
    from quasieq.regions.splitting import LayerInputs, pre_activation_maps

    monkeypatch.setattr(tree, "PART_MIN_VERTICES", 1)
    engine = tree.EngineNet.of(O.seeded_relu_net(arch, init=init), qe.Box.cube(int(arch[0]), 0.0, 1.0))
    chunk = tree.root_chunk(engine)
    for layer in range(engine.depth):
        chunk, _ = tree.split_chunk(chunk, engine, layer, 10**9)
    volumes, centres, radii, facet_centres = region_facts(
        chunk.vertices, chunk.incidence, chunk.vertex_indptr, chunk.constraint_ids, chunk.constraint_normals,
        chunk.constraint_rhs, chunk.constraint_indptr, True)
    D = engine.box.dim
    for bound in (tolerances.ON_HYPERPLANE, float(np.median(radii))):
        monkeypatch.setattr(tolerances, "ON_HYPERPLANE", bound)
        keep = radii > bound
        A, b = pre_activation_maps(LayerInputs(chunk.parent_Z, chunk.parent_z0, chunk.parent[keep], chunk.bits[keep]),
                                   engine.W_out, engine.b_out)
        vrows = np.repeat(keep, np.diff(chunk.vertex_indptr))
        crows = np.repeat(keep, np.diff(chunk.constraint_indptr))
        neuron = chunk.constraint_ids[crows] >= 2 * D
        expected = {
            "vertices": chunk.vertices[vrows], "vertex_indptr": np.r_[0, np.cumsum(np.diff(chunk.vertex_indptr)[keep])],
            "facet_sources": O.facet_source_codes(chunk.constraint_ids[crows], D),
            "facet_normals": chunk.constraint_normals[crows], "facet_rhs": chunk.constraint_rhs[crows],
            "facet_indptr": np.r_[0, np.cumsum(np.diff(chunk.constraint_indptr)[keep])],
            "neighbours": np.where(neuron, UNRESOLVED, -1),
            "boundary_probes": facet_probes(facet_centres[crows][neuron], chunk.constraint_normals[crows][neuron],
                                            engine.box.scale),
            "A": A, "b": b, "patterns": chunk.patterns[keep],
            "volumes": volumes[keep], "interior_points": centres[keep], "radii": radii[keep],
        }
        for threads in (1, 2, 3):
            reduced, dropped = tree.finish_chunk(chunk, engine._replace(threads=threads))
            assert dropped == np.count_nonzero(~keep) and (bound == engine.tol or dropped > 0)
            for field, value in expected.items():
                got = getattr(reduced, field)
                assert got.dtype == value.dtype, field
                np.testing.assert_array_equal(got, value, err_msg=field)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_concatenate_in_threads_is_numpy_concatenate(threads, monkeypatch):
    """Columns of pieces of different lengths, dtypes and trailing shapes (an empty piece among them),
    copied on the pool, are np.concatenate's arrays."""
    from quasieq.regions import threads as parts

    monkeypatch.setattr(parts, "COPY_PARTS_MIN_BYTES", 0)
    rng = np.random.default_rng(threads)
    sizes = [5, 0, 17, 1, 9]
    columns = [[rng.normal(size=(n, 3)) for n in sizes], [rng.integers(0, 2, n).astype(bool) for n in sizes],
               [rng.integers(-9, 9, (n, 2, 2)) for n in sizes]]
    for got, column in zip(parts.concatenate_in_threads(columns, threads), columns, strict=True):
        want = np.concatenate(column)
        assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_even_parts_cover_the_items(n, threads):
    """Consecutive parts covering 0..n whose sizes differ by at most one; one part for one thread."""
    from quasieq.regions.threads import PARTS_PER_THREAD, even_parts

    parts = even_parts(n, threads, 2)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    sizes = [b - a for a, b in parts]
    assert max(sizes) - min(sizes) <= 1
    assert len(parts) == 1 if threads == 1 or n < 2 else len(parts) == min(n, PARTS_PER_THREAD * threads)


@pytest.mark.parametrize(("arch", "init"), [("3-10-10-1", "fanin"), ("4-8-8-1", "torch")])
def test_links_in_parts_are_the_one_thread_links_and_hold_the_probes(arch, init, monkeypatch):
    """link_within on 3 threads (parts of a few facets each) links the facets one thread links, to the
    same regions, and keeps the same probes; every linked neighbour is the region whose pattern the
    forward pass gives at the facet's probe."""
    from quasieq.regions import neighbours

    monkeypatch.setattr(neighbours, "LINK_PARTS_MIN_FACETS", 0)
    net = O.seeded_relu_net(arch, init=init)
    engine = tree.EngineNet.of(net, qe.Box.cube(net.in_dim, 0.0, 1.0))
    root = tree.Subtree(path=(), layer=0, chunk=tree.root_chunk(engine), share=1.0)
    part = tree.explore(engine, root, chunk_size=64, limit=10**9).regions
    one = neighbours.link_within(part, engine.box.scale, threads=1)
    many = neighbours.link_within(part, engine.box.scale, threads=3)
    assert np.array_equal(one.neighbours, many.neighbours)
    assert np.array_equal(one.boundary_probes, many.boundary_probes)
    unresolved = np.flatnonzero(part.neighbours == neighbours.UNRESOLVED)
    linked = many.neighbours[unresolved] >= 0
    assert linked.mean() > 0.9
    at_probes = O.forward_patterns(O.layers_of(net), part.boundary_probes[linked])
    assert np.array_equal(at_probes, part.patterns[many.neighbours[unresolved[linked]]])


@pytest.mark.parametrize("D", [1, 3, 4, 5])
def test_a_chunk_split_in_one_call_is_the_chunk_split_in_parts(D, monkeypatch):
    """splitting.split_to_chunk (a chunk outside 2-D split in one piece: the maps, the split and the
    children's chunk in one kernel call) gives bit for bit the chunk and drop count of the maps, the
    split in parts and children_chunk (tree.split_chunk on three threads, every chunk cut into parts),
    layer after layer, on degenerate nets (duplicated and negated neurons, zero rows, hyperplanes
    through box corners and each other's crossings); and its complex agrees with the LP brute force."""
    from test_polygons import _degenerate_layers
    from test_regions import check_against_brute_force

    layers = _degenerate_layers(D, np.random.default_rng(D))
    lo, hi = -np.ones(D), np.ones(D)
    engine = tree.EngineNet.of(make_net(layers), qe.Box(lo, hi), threads=1)
    parted_engine = engine._replace(threads=3)
    monkeypatch.setattr(tree, "PART_MIN_VERTICES", 0)
    chunk = tree.root_chunk(engine)
    for layer in range(engine.depth):
        assert len(tree.vertex_parts(chunk, 3)) > 1 or chunk.size == 1
        in_parts, dropped_in_parts = tree.split_chunk(chunk, parted_engine, layer, 10**9)
        in_one, dropped = split_to_chunk(chunk, engine.stack, layer, engine.split_tolerances, 10**9)
        assert dropped == dropped_in_parts
        for field in in_one._fields:
            a, b = getattr(in_one, field), getattr(in_parts, field)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), field
        chunk = in_one
    monkeypatch.undo()
    check_against_brute_force(qe.regions(make_net(layers), qe.Box(lo, hi), threads=1), layers, lo, hi)
