"""Plots of region complexes (matplotlib, Agg canvas: no screen, no pyplot global state).

The drawing is split into reusable pieces so later plots (simplices of a triangulation, the error set
of a quasi-equivalent rebuild) compose them instead of repeating them:

* :func:`region_polygons` — the polygon of each 2-D region, vertices in counter-clockwise order;
* :func:`centroid_values` — an affine map evaluated at each polygon's vertex centroid;
* :func:`draw_polygons` — filled polygons coloured by a value, thin edges, colour bar;
* :func:`new_figure` / :func:`save_figure` — an Agg figure and its writer;
* :func:`plot_regions` — the ``quasieq regions --plot`` picture (D = 2 partition, D = 1 graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from quasieq.errors import QuasieqError


def convex_polygon(vertices: np.ndarray) -> np.ndarray:
    """The vertices of a convex polygon in counter-clockwise order.

    For a convex polygon the vertex centroid c = mean(v_i) lies inside, so the angle
    θ_i = atan2(v_i,y − c_y, v_i,x − c_x) increases monotonically along the boundary; sorting by θ gives
    the boundary order (counter-clockwise, since atan2 grows counter-clockwise).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    c = vertices.mean(axis=0)
    theta = np.arctan2(vertices[:, 1] - c[1], vertices[:, 0] - c[0])
    return vertices[np.argsort(theta, kind="stable")]


def region_polygons(cx) -> list[np.ndarray]:
    """One (n_i, 2) counter-clockwise polygon per region of a complex with D = 2 (see :func:`convex_polygon`)."""
    _require_dim(cx, (2,))
    return [convex_polygon(r.vertices) for r in cx]


def centroid_values(polygons: list[np.ndarray], A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """v_i = A_i · c_i + b_i with c_i the vertex centroid of polygon i (A: (n, D), b: (n,))."""
    centroids = np.array([p.mean(axis=0) for p in polygons]).reshape(len(polygons), -1)
    return np.einsum("nd,nd->n", A, centroids) + b


def new_figure(size: tuple[float, float] = (6.4, 5.2)) -> tuple[Figure, Axes]:
    """A figure on the Agg canvas (works without a display) and its single axes."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> None:
    """Write the figure; the format follows the file suffix (png, pdf, svg)."""
    path = Path(path)
    fig.savefig(path, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png", bbox_inches="tight")


def draw_polygons(
    ax: Axes,
    polygons: list[np.ndarray],
    values: np.ndarray,
    label: str,
    *,
    cmap: str = "viridis",
    edge_width: float = 0.3,
) -> PolyCollection:
    """Filled polygons coloured by ``values``, thin dark edges, a colour bar labelled ``label``."""
    collection = PolyCollection(polygons, array=np.asarray(values), cmap=cmap, edgecolors="#222222",
                                linewidths=edge_width)
    ax.add_collection(collection)
    ax.figure.colorbar(collection, ax=ax, label=label)
    ax.set_aspect("equal")
    return collection


def plot_regions(cx, path: str | Path, *, output: int = 0) -> Figure:
    """Draw the regions of ``cx`` into ``path``.

    D = 2: every region as a polygon coloured by its affine map of output ``output`` at the centroid,
    A[output]·c + b[output], with its edges drawn. D = 1: the graph of that output, each region's
    segment drawn from its own affine map, breakpoints (region ends inside the interval) as dots.
    Other dimensions raise :class:`QuasieqError`. Returns the figure (its first axes holds the drawing).
    """
    _require_dim(cx, (1, 2))
    if not 0 <= output < cx.net.out_dim:
        raise QuasieqError(f"plot: output {output} does not exist, the net has {cx.net.out_dim} outputs")
    arch = "-".join(str(n) for n in (cx.net.in_dim, *cx.net.widths, cx.net.out_dim))
    fig, ax = new_figure()
    lo, hi = cx.box.lo, cx.box.hi
    if cx.dim == 2:
        polygons = region_polygons(cx)
        draw_polygons(ax, polygons, centroid_values(polygons, cx.A[:, output, :], cx.b[:, output]), f"output {output}")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
    else:
        _draw_graph_1d(ax, cx, output)
    ax.set_title(f"{len(cx):,d} linear regions of a {arch} ReLU net")
    save_figure(fig, path)
    return fig


def _draw_graph_1d(ax: Axes, cx, output: int) -> None:
    """Segments (x_a, f(x_a)) – (x_b, f(x_b)) of each interval region with f = A x + b, and the breakpoints."""
    ends = np.array([[r.vertices[:, 0].min(), r.vertices[:, 0].max()] for r in cx])  # (n, 2)
    slope, offset = cx.A[:, output, 0], cx.b[:, output]
    ys = slope[:, None] * ends + offset[:, None]
    ax.add_collection(LineCollection(np.stack([ends, ys], axis=-1), colors="C0", linewidths=1.2))
    lo, hi = float(cx.box.lo[0]), float(cx.box.hi[0])
    inner = ends[:, 0] > lo
    ax.plot(ends[inner, 0], ys[inner, 0], "o", color="C3", markersize=3, label=f"{int(inner.sum())} breakpoints")
    ax.set_xlim(lo, hi)
    ax.autoscale(axis="y")
    ax.set_xlabel("x0")
    ax.set_ylabel(f"output {output}")
    ax.legend(loc="best")


def _require_dim(cx, allowed: tuple[int, ...]) -> None:
    if cx.dim not in allowed:
        dims = " or ".join(map(str, allowed))
        raise QuasieqError(f"plot: only inputs of dimension {dims} can be drawn, this complex has {cx.dim}")
