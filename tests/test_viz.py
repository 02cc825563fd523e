"""Plots: what viz draws is checked geometrically, independently of the region engine's own volumes.

* D = 2: the polygons in the drawn PolyCollection tile the box — their shoelace areas add up to the box
  area — and each equals the area of the convex hull of the region's vertices (scipy's Qhull, a second
  algorithm), which fails if the angular ordering produced a self-intersecting polygon.
* The colour of each polygon is the net's forward pass at the polygon's vertex centroid.
* D = 1: each drawn segment's end heights are the net's forward pass at those ends.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from scipy.spatial import ConvexHull

import quasieq as qe
from conftest import random_net
from quasieq.viz import centroid_values, convex_polygon, plot_regions, region_polygons


def shoelace(P: np.ndarray) -> float:
    """Signed area ½ Σ (x_i y_{i+1} − x_{i+1} y_i) of a closed polygon (positive when counter-clockwise)."""
    x, y = P[:, 0], P[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


@pytest.mark.parametrize(
    "arch, lo, hi", [((2, 8, 1), -1.0, 1.0), ((2, 10, 8, 2), -2.0, 3.0), ((2, 6, 6, 6, 1), 0.0, 1.0)]
)
def test_drawn_polygons_tile_the_box(arch, lo, hi, rng, tmp_path):
    net = random_net(arch, rng)
    box = qe.Box([lo, lo + 0.5], [hi, hi])
    cx = qe.regions(net, box)
    path = tmp_path / "regions.png"
    fig = plot_regions(cx, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    (collection,) = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    drawn = [p.vertices for p in collection.get_paths()]
    assert len(drawn) == len(cx)
    areas = np.array([shoelace(P) for P in drawn])
    assert np.all(areas > 0)  # counter-clockwise, as the angular sort promises
    assert areas.sum() == pytest.approx(box.volume, rel=1e-9)
    hulls = np.array([ConvexHull(r.vertices).volume for r in cx])
    np.testing.assert_allclose(areas, hulls, rtol=1e-9, atol=1e-12 * box.volume)

    # each polygon is coloured by the net's value (output 0) at its vertex centroid
    centroids = np.array([P.mean(axis=0) for P in region_polygons(cx)])
    np.testing.assert_allclose(collection.get_array(), net.forward(centroids)[:, 0], rtol=1e-9, atol=1e-9)


def test_convex_polygon_orders_shuffled_vertices(rng):
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    ring = np.c_[np.cos(angles), np.sin(angles)] * 2.0 + [0.3, -0.7]
    ordered = convex_polygon(rng.permutation(ring))
    assert shoelace(ordered) == pytest.approx(ConvexHull(ring).volume, rel=1e-12)


def test_centroid_values_is_the_affine_map_at_the_centroid(rng):
    polygons = [rng.normal(size=(4, 2)) for _ in range(5)]
    A, b = rng.normal(size=(5, 2)), rng.normal(size=5)
    expected = [A[i] @ polygons[i].mean(axis=0) + b[i] for i in range(5)]
    np.testing.assert_allclose(centroid_values(polygons, A, b), expected, rtol=1e-12)


def test_one_dimensional_plot_draws_the_function(rng, tmp_path):
    net = random_net((1, 8, 8, 2), rng)
    cx = qe.regions(net, qe.Box([-3.0], [2.0]))
    path = tmp_path / "graph.png"
    fig = plot_regions(cx, path, output=1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (lines,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    segments = np.array(lines.get_segments())  # (regions, 2 ends, (x, y))
    assert len(segments) == len(cx)
    ends = segments[:, :, 0].reshape(-1, 1)
    np.testing.assert_allclose(segments[:, :, 1].reshape(-1), net.forward(ends)[:, 1], rtol=1e-9, atol=1e-9)
    # the intervals cover [-3, 2] without gaps or overlaps
    order = np.sort(segments[:, :, 0], axis=1)
    order = order[np.argsort(order[:, 0])]
    assert order[0, 0] == pytest.approx(-3.0) and order[-1, 1] == pytest.approx(2.0)
    np.testing.assert_allclose(order[1:, 0], order[:-1, 1], atol=1e-12)


def test_higher_dimensions_are_refused(rng, tmp_path):
    net = random_net((3, 4, 1), rng)
    cx = qe.regions(net, qe.Box.cube(3))
    with pytest.raises(qe.QuasieqError, match="dimension 1 or 2"):
        plot_regions(cx, tmp_path / "no.png")
    with pytest.raises(qe.QuasieqError, match="dimension 2 can be drawn"):
        region_polygons(cx)
    assert not (tmp_path / "no.png").exists()
