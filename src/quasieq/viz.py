"""Plots of region complexes and of rebuilt networks (matplotlib, Agg canvas: no screen, no pyplot state).

The drawing is split into reusable pieces; each ``draw_*`` fills one axes, each ``plot_*`` makes a figure
of them and writes it:

* :func:`region_polygons` — the polygon of each 2-D region, vertices in counter-clockwise order;
* :func:`centroid_values` — an affine map evaluated at each polygon's vertex centroid;
* :func:`draw_polygons` — filled polygons coloured by a value, thin edges, colour bar;
* :func:`new_canvas` / :func:`new_figure` / :func:`save_figure` — an Agg figure and its writer;
* :func:`plot_regions` — the ``quasieq regions --plot`` picture (D = 2 partition, D = 1 graph);
* :func:`draw_simplices` / :func:`plot_simplices` — a triangulation's edges over the coloured regions;
* :func:`error_grid` / :func:`draw_error_set` / :func:`plot_error_set` — where two nets disagree, on a
  dense pixel grid;
* :func:`plot_transform` — the simplices and the error-set panels side by side (``wide|deep --plot``);
* :func:`plot_univariate` — a 1-D net and its rebuilds on one axis, breakpoints marked.
"""

from __future__ import annotations

from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from quasieq.construct.univariate import breakpoints
from quasieq.errors import QuasieqError
from quasieq.net import class_labels
from quasieq.regions import regions
from quasieq.verify.compare import chunk_size

if TYPE_CHECKING:  # annotations only
    from quasieq.box import Box
    from quasieq.construct.demorgan import LabelledSimplices
    from quasieq.net import ReluNet
    from quasieq.quadratic.separable import FactorNet


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


def new_canvas(size: tuple[float, float] = (6.4, 5.2)) -> Figure:
    """An empty figure on the Agg canvas (works without a display)."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def new_figure(size: tuple[float, float] = (6.4, 5.2)) -> tuple[Figure, Axes]:
    """A figure on the Agg canvas and its single axes."""
    fig = new_canvas(size)
    return fig, fig.add_subplot()


def save_figure(fig: Figure, path: str | Path, dpi: int = 150, caption: str | None = None) -> None:
    """Write the figure; the format follows the file suffix (png, pdf, svg). ``caption`` goes above
    every panel (e.g. which slice of the input space is drawn)."""
    path = Path(path)
    if caption:
        fig.suptitle(caption, fontsize="medium")
    fig.savefig(path, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png", bbox_inches="tight")


def draw_polygons(
    ax: Axes,
    polygons: list[np.ndarray] | np.ndarray,
    values: np.ndarray,
    label: str,
    *,
    cmap: str = "viridis",
    edge_width: float = 0.3,
) -> PolyCollection:
    """Filled polygons coloured by ``values``, thin dark edges, a colour bar labelled ``label``."""
    collection = PolyCollection(list(polygons), array=np.asarray(values), cmap=cmap, edgecolors="#222222",
                                linewidths=edge_width)
    ax.add_collection(collection)
    ax.figure.colorbar(collection, ax=ax, label=label)
    ax.set_aspect("equal")
    return collection


def plot_regions(cx, path: str | Path, *, output: int = 0, caption: str | None = None) -> Figure:
    """Draw the regions of ``cx`` into ``path``.

    D = 2: every region as a polygon coloured by its affine map of output ``output`` at the centroid,
    A[output]·c + b[output], with its edges drawn. D = 1: the graph of that output, each region's
    segment drawn from its own affine map, breakpoints (region ends inside the interval) as dots.
    Other dimensions raise :class:`QuasieqError`. Returns the figure (its first axes holds the drawing).
    """
    _require_dim(cx, (1, 2))
    _check_output(cx.net, output)
    fig, ax = new_figure()
    if cx.dim == 2:
        _draw_regions_2d(ax, cx, output)
    else:
        _draw_graph_1d(ax, cx, output)
    ax.set_title(f"{len(cx):,d} linear regions of a {cx.net.architecture} ReLU net")
    save_figure(fig, path, caption=caption)
    return fig


def _sizes(net) -> str:
    return f"width {net.width}, {net.hidden_layers} hidden layers"


def _check_output(net, output: int) -> None:
    if not 0 <= output < net.out_dim:
        raise QuasieqError(f"plot: output {output} does not exist, the net has {net.out_dim} outputs")


def _frame_box(ax: Axes, box) -> None:
    """Axes limits on a 2-D box, labelled x0 and x1."""
    ax.set_xlim(box.lo[0], box.hi[0])
    ax.set_ylim(box.lo[1], box.hi[1])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")


def _draw_regions_2d(ax: Axes, cx, output: int) -> PolyCollection:
    """Every region as a polygon coloured by A[output]·c + b[output] at its vertex centroid c."""
    polygons = region_polygons(cx)
    values = centroid_values(polygons, cx.A[:, output, :], cx.b[:, output])
    collection = draw_polygons(ax, polygons, values, f"output {output}")
    _frame_box(ax, cx.box)
    return collection


def _draw_graph_1d(ax: Axes, cx, output: int) -> None:
    """Segments (x_a, f(x_a)) – (x_b, f(x_b)) of each interval region with f = A x + b, and the breakpoints."""
    ends = np.array([[r.vertices[:, 0].min(), r.vertices[:, 0].max()] for r in cx])  # (n, 2)
    slope, offset = cx.A[:, output, 0], cx.b[:, output]
    ys = slope[:, None] * ends + offset[:, None]
    ax.add_collection(LineCollection(list(np.stack([ends, ys], axis=-1)), colors="C0", linewidths=1.2))
    lo, hi = float(cx.box.lo[0]), float(cx.box.hi[0])
    inner = ends[:, 0] > lo
    ax.plot(ends[inner, 0], ys[inner, 0], "o", color="C3", markersize=3, label=f"{int(inner.sum())} breakpoints")
    ax.set_xlim(lo, hi)
    ax.autoscale(axis="y")
    ax.set_xlabel("x0")
    ax.set_ylabel(f"output {output}")
    ax.legend(loc="best")


# ----- rebuilt networks -----------------------------------------------------------------------------
#: Pixels per side of the error-set grid: 300² = 9·10⁴ forward passes per net, a few seconds for the
#: widest demo construction; fine enough that a strip of width ~1/300 of the box shows up.
ERROR_GRID_RESOLUTION = 300



def draw_simplices(ax: Axes, cx, simplices, *, output: int = 0) -> LineCollection:
    """The regions of ``cx`` coloured as in :func:`plot_regions`, and every simplex's three edges over them.

    Edges are the segments (v_0, v_1), (v_1, v_2), (v_2, v_0) of each simplex's vertices.
    """
    _require_dim(cx, (2,))
    if simplices.D != 2:
        raise QuasieqError(f"plot: only simplices of dimension 2 can be drawn, these have {simplices.D}")
    _check_output(cx.net, output)
    _draw_regions_2d(ax, cx, output)
    V = simplices.vertices  # (M, 3, 2)
    edges = np.stack([V, np.roll(V, -1, axis=1)], axis=2).reshape(-1, 2, 2)  # (3M, 2 ends, (x, y))
    lines = LineCollection(list(edges), colors="white", linewidths=0.4, alpha=0.9)
    ax.add_collection(lines)
    ax.set_title(f"{simplices.M:,d} simplices over {len(cx):,d} regions")
    return lines


def plot_simplices(cx, simplices, path: str | Path, *, output: int = 0) -> Figure:
    """Draw a triangulation of a 2-D complex over its coloured regions (:func:`draw_simplices`) into ``path``."""
    fig, ax = new_figure()
    draw_simplices(ax, cx, simplices, output=output)
    save_figure(fig, path)
    return fig


def error_grid(original, constructed, box, tol: float, resolution: int = ERROR_GRID_RESOLUTION, *,
               task: str = "regression"):
    """Where two nets disagree, on the centres of a resolution × resolution pixel grid of a 2-D box.

    Pixel (i, j) has centre (lo_0 + (j + ½)h_0, lo_1 + (i + ½)h_1), h_d = (hi_d − lo_d)/resolution, and is
    flagged when max_k |a_k − b_k| > tol there (a NaN or inf difference is flagged, as in ``compare``);
    with ``task="classification"`` when the labels differ (argmax of K ≥ 2 scores, [h > 0] for one logit).
    ``original`` and ``constructed`` are ReluNets or callables (N, 2) → (N, K). The flagged fraction is
    a midpoint-rule estimate of m({|a − b| > tol}) / vol(box). Returns ``(xs, ys, flagged)`` with
    ``flagged`` of shape (resolution, resolution), row i holding y = ys[i].
    """
    if box.dim != 2:
        raise QuasieqError(f"plot: only inputs of dimension 2 have an error-set image, this box has {box.dim}")
    if int(resolution) < 1:
        raise QuasieqError(f"plot: resolution must be ≥ 1, got {resolution}")
    n = int(resolution)
    xs = box.lo[0] + (np.arange(n) + 0.5) * (box.hi[0] - box.lo[0]) / n
    ys = box.lo[1] + (np.arange(n) + 0.5) * (box.hi[1] - box.lo[1]) / n
    X = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # row-major: y index outer, x inner
    flagged = np.empty(len(X), dtype=bool)
    step = chunk_size(original, constructed)
    for start in range(0, len(X), step):
        chunk = X[start : start + step]
        Ya = np.asarray(original(chunk), dtype=np.float64).reshape(len(chunk), -1)
        Yb = np.asarray(constructed(chunk), dtype=np.float64).reshape(len(chunk), -1)
        if task == "classification":
            flagged[start : start + len(chunk)] = class_labels(Ya) != class_labels(Yb)
        else:
            flagged[start : start + len(chunk)] = ~(np.abs(Ya - Yb).max(axis=1) <= tol)  # NaN compares False: flagged
    return xs, ys, flagged.reshape(n, n)


def draw_error_set(ax: Axes, original, constructed, box, tol: float, resolution: int = ERROR_GRID_RESOLUTION, *,
                   task: str = "regression") -> np.ndarray:
    """The :func:`error_grid` image (flagged pixels red) with flagged pixel centres marked so isolated
    pixels stay visible; the title gives the count. Returns the flagged array."""
    xs, ys, flagged = error_grid(original, constructed, box, tol, resolution, task=task)
    extent = (box.lo[0], box.hi[0], box.lo[1], box.hi[1])
    ax.imshow(flagged, origin="lower", extent=extent, cmap=ListedColormap(["white", "#d62728"]), vmin=0, vmax=1,
              interpolation="nearest")
    rows, cols = np.nonzero(flagged)
    ax.plot(xs[cols], ys[rows], "o", color="#d62728", markersize=2.5, markerfacecolor="none", linewidth=0)
    count, total = int(flagged.sum()), flagged.size
    what = "labels differ" if task == "classification" else f"|a − b| > {tol:.1e}"
    ax.set_title(f"{what} on {count:,d} of {total:,d} pixels\n(≈ measure {count / total * box.volume:.2e})")
    _frame_box(ax, box)
    ax.set_aspect("equal")
    return flagged


def plot_error_set(original, constructed, box, path: str | Path, tol: float, *,
                   resolution: int = ERROR_GRID_RESOLUTION, task: str = "regression") -> Figure:
    """Draw where ``original`` and ``constructed`` differ by more than ``tol`` (or, for classification,
    in label) on a 2-D box into ``path``."""
    fig, ax = new_figure()
    draw_error_set(ax, original, constructed, box, tol, resolution, task=task)
    save_figure(fig, path)
    return fig


def plot_transform(cx, simplices, original, constructed, path: str | Path, tol: float, *,
                   resolution: int = ERROR_GRID_RESOLUTION, output: int = 0, task: str = "regression",
                   caption: str | None = None) -> Figure:
    """Two panels: the simplices over the regions (left) and the constructed net's error set (right)."""
    fig = new_canvas((13.0, 5.4))
    left, right = fig.subplots(1, 2)
    draw_simplices(left, cx, simplices, output=output)
    draw_error_set(right, original, constructed, cx.box, tol, resolution, task=task)
    save_figure(fig, path, caption=caption)
    return fig


#: Line styles of the rebuilt forms drawn over the original (which is a thick solid line).
_FORM_STYLES = ("--", ":", "-.")


def plot_univariate(original, forms: dict, box, path: str | Path, *, output: int = 0, points: int = 2001,
                    caption: str | None = None) -> Figure:
    """A 1-D net and its rebuilds on one axis, the original's breakpoints marked.

    Each curve is the net's forward pass on ``points`` equally spaced x in [lo, hi] together with the
    exact breakpoints t_k (region ends of ``qe.regions(original, box)`` after merging equal maps), so
    the drawn polylines are the piecewise-linear functions themselves. Each line's gid names it: ``original``,
    then each key of ``forms`` (in order), then ``breakpoints``.
    """
    if box.dim != 1:
        raise QuasieqError(f"plot: the univariate overlay needs a 1-D box, this one has dimension {box.dim}")
    _check_output(original, output)
    for name, net in forms.items():
        if net.in_dim != 1 or net.out_dim != original.out_dim:
            raise QuasieqError(f"plot: form {name!r} maps {net.in_dim} → {net.out_dim}, "
                               f"the original 1 → {original.out_dim}")
    t = breakpoints(regions(original, box)).t
    x = np.union1d(np.linspace(box.lo[0], box.hi[0], int(points)), t)[:, None]
    fig, ax = new_figure((7.2, 4.8))
    ax.plot(x[:, 0], original.forward(x)[:, output], color="0.6", linewidth=3.5, gid="original",
            label=f"original: {_sizes(original)}")
    for (name, net), style in zip(forms.items(), cycle(_FORM_STYLES)):
        ax.plot(x[:, 0], net.forward(x)[:, output], style, linewidth=1.5, gid=name, label=f"{name}: {_sizes(net)}")
    ax.plot(t, original.forward(t[:, None])[:, output], "o", color="C3", markersize=4, gid="breakpoints",
            label=f"{len(t)} breakpoints")
    ax.set_xlim(box.lo[0], box.hi[0])
    ax.set_xlabel("x0")
    ax.set_ylabel(f"output {output}")
    ax.set_title("a univariate ReLU net and its exact rebuilds (Theorem 9)")
    ax.legend(loc="best")
    save_figure(fig, path, caption=caption)
    return fig


#: Pixels per side of a classifier's label error-set panels (two De Morgan forms, 200² points each).
CLASSIFIER_GRID = 200


def plot_classifier(rules: LabelledSimplices, net: ReluNet, forms: dict[str, ReluNet], box: Box,
                    X_test: np.ndarray, y_test: np.ndarray, path: str | Path) -> Figure:
    """Three panels: the labelled simplices (the rules) with the held-out points, then where the wide
    and the deep De Morgan form's labels differ from the original's on a pixel grid."""
    fig = new_canvas((16.0, 4.8))
    rules_ax, *error_axes = fig.subplots(1, 3)
    draw_polygons(rules_ax, rules.simplices.vertices, rules.labels, "class", cmap="coolwarm", edge_width=0.15)
    rules_ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="coolwarm", s=9, edgecolors="k", linewidths=0.4)
    rules_ax.set_xlim(box.lo[0], box.hi[0])
    rules_ax.set_ylim(box.lo[1], box.hi[1])
    rules_ax.set_title(f"{rules.n:,d} labelled simplices (rules), held-out points")
    for ax, (name, form) in zip(error_axes, forms.items(), strict=True):
        draw_error_set(ax, net, form, box, 0.0, CLASSIFIER_GRID, task="classification")
        ax.set_title(f"{name} De Morgan form: {ax.get_title()}", fontsize=9)
    save_figure(fig, path)
    return fig


def plot_polynomial(coeffs: np.ndarray, domain: tuple[float, float], nets: dict[str, FactorNet],
                    path: str | Path, points: int = 2001) -> Figure:
    """P (ascending ``coeffs``) and its quadratic networks on ``domain`` (left), |net(x) − P(x)| on a log
    axis (right; exact zeros drawn at 1e-18)."""
    from quasieq.quadratic.polynomial import evaluate, grid  # heavy (torch): lazy

    x = grid(*domain, points)
    reference = np.polynomial.polynomial.polyval(x, coeffs)
    fig = new_canvas((12.0, 4.4))
    values_ax, error_ax = fig.subplots(1, 2)
    values_ax.plot(x, reference, color="0.6", linewidth=3.5, label="P (numpy Horner)")
    for (name, net), style in zip(nets.items(), ("--", ":"), strict=True):
        values = evaluate(net, x)
        values_ax.plot(x, values, style, linewidth=1.5, label=f"{name}: width {net.width}, depth {net.depth}")
        error_ax.semilogy(x, np.maximum(np.abs(values - reference), 1e-18), style, linewidth=1.0, label=name)
    values_ax.set_title("P(x) = " + " + ".join(f"{c:g}x^{i}" for i, c in enumerate(coeffs)))
    values_ax.set_xlabel("x")
    values_ax.legend(loc="best")
    error_ax.set_title("|network − P| (numpy Horner)")
    error_ax.set_xlabel("x")
    error_ax.legend(loc="best")
    save_figure(fig, path)
    return fig


def _require_dim(cx, allowed: tuple[int, ...]) -> None:
    if cx.dim not in allowed:
        dims = " or ".join(map(str, allowed))
        raise QuasieqError(f"plot: only inputs of dimension {dims} can be drawn, this complex has {cx.dim}")
