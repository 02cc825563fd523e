"""Slices: a network restricted to a line or a plane through its input space.

A slice is an affine map of k ≤ D slice coordinates t into the net's input space,

    x(t) = p0 + Σ_i t_i d_i = p0 + Dᵀ t,        D = [d_1; …; d_k]  (k, D_in),

and the sliced net is f ∘ x, again a :class:`ReluNet`: the map is folded into the first layer,

    W_1' = W_1 Dᵀ  (n_1, k),        b_1' = b_1 + W_1 p0,

with every other layer (and every ReLU mask) unchanged. Its regions on a box of t are the net's regions
cut by the slice, and each region's affine map (A, b) in t gives f(x(t)) = A t + b. This is how a
3072-input image classifier is looked at: the plane through three images x = p0 + s(p1 − p0) + t(p2 − p0),
(s, t) ∈ [0, 1]², holds p0 at (0, 0), p1 at (1, 0) and p2 at (0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES, check_npy_header
from quasieq.net import ReluNet

#: Slice kinds by the number of points that define them: a line through two inputs, a plane through three.
KIND_BY_POINTS = {2: "line", 3: "plane"}


def slice_net(net: ReluNet, origin: Any, directions: Any) -> ReluNet:
    """The net t ↦ net(origin + Σ_i t_i directions[i]) (module docstring); ``qe.slice``.

    ``origin`` has net.in_dim entries (any shape of that size, read in C order), ``directions`` one
    row of net.in_dim entries per slice coordinate. The sliced net keeps the ReLU masks; its input
    dimension is the number of directions.

    >>> import numpy as np, quasieq as qe
    >>> net = qe.ReluNet([np.eye(3), np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    >>> line = qe.slice(net, [1.0, -1.0, 0.0], [[0.0, 1.0, 1.0]])
    >>> line.in_dim, float(line.forward([[2.0]])[0, 0])
    (1, 4.0)
    """
    if not isinstance(net, ReluNet):
        raise QuasieqError(f"slice: expected a ReluNet, got {type(net).__name__}")
    p0, dirs = _checked_map(origin, directions, net.in_dim)
    W, b = net.layers[0]
    first = np.asarray(W @ dirs.T)  # (n_1, k), dense: k is small
    shift = np.asarray(W @ p0).reshape(-1)
    weights = [first, *net.weights[1:]]
    biases = [b + shift, *net.biases[1:]]
    return ReluNet(weights, biases, relu_masks=net.relu_masks)


def _checked_map(origin: Any, directions: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    p0 = np.asarray(origin, dtype=np.float64).reshape(-1)
    dirs = np.asarray(directions, dtype=np.float64)
    if p0.size != dim:
        raise QuasieqError(f"slice: the origin has {p0.size} entries but the net takes {dim} inputs")
    if dirs.ndim < 1 or dirs.shape[0] == 0 or dirs[0].size != dim:
        raise QuasieqError(f"slice: directions must be k ≥ 1 rows of {dim} entries each, got shape {dirs.shape}")
    dirs = dirs.reshape(dirs.shape[0], dim)
    if not (np.all(np.isfinite(p0)) and np.all(np.isfinite(dirs))):
        raise QuasieqError("slice: the origin and the directions must be finite")
    if dirs.shape[0] > dim:
        raise QuasieqError(f"slice: {dirs.shape[0]} directions in a {dim}-dimensional input space")
    if np.linalg.matrix_rank(dirs) < dirs.shape[0]:
        raise QuasieqError(f"slice: the {dirs.shape[0]} directions are linearly dependent (the points are "
                           "collinear or repeated); the slice would be degenerate")
    return p0, dirs


@dataclass(frozen=True, eq=False)
class Slice:
    """A line or plane through the input space: x(t) = origin + directions.T @ t (module docstring).

    ``points`` are the inputs it was drawn through (p0 at t = 0, p_i at t = e_i) and ``source`` the file
    they came from, both kept for the JSON and the plot titles.
    """

    origin: np.ndarray  # (D,)
    directions: np.ndarray  # (k, D)
    points: np.ndarray  # (k + 1, D)
    source: str | None = None

    @classmethod
    def through(cls, points: Any, source: str | None = None) -> Slice:
        """The line (two points) or plane (three points) x = p0 + Σ_i t_i (p_i − p0)."""
        P = np.asarray(points, dtype=np.float64)
        if P.ndim < 2 or P.shape[0] not in KIND_BY_POINTS:
            raise QuasieqError(f"slice: give 2 (a line) or 3 (a plane) input points, got an array of shape {P.shape}")
        P = P.reshape(P.shape[0], -1)
        origin, directions = _checked_map(P[0], P[1:] - P[0], P.shape[1])
        return cls(origin, directions, P, source)

    @property
    def kind(self) -> str:
        return KIND_BY_POINTS[self.points.shape[0]]

    @property
    def dim(self) -> int:
        """Number of slice coordinates k."""
        return int(self.directions.shape[0])

    def inputs(self, T: Any) -> np.ndarray:
        """The net inputs x(t) (N, D) of slice coordinates T (N, k)."""
        return self.origin + np.atleast_2d(np.asarray(T, dtype=np.float64)) @ self.directions

    def apply(self, net: ReluNet) -> ReluNet:
        """The sliced net t ↦ net(x(t))."""
        if net.in_dim != self.origin.size:
            raise QuasieqError(f"slice: the points have {self.origin.size} entries each but the net takes "
                               f"{net.in_dim} inputs")
        return slice_net(net, self.origin, self.directions)

    def describe(self) -> str:
        """``plane through the 3 inputs of points.npy`` (the plot titles)."""
        where = f" of {self.source}" if self.source else ""
        coords = "(s, t)" if self.kind == "plane" else "s"
        return f"{self.kind} through the {self.points.shape[0]} inputs{where}, coordinates {coords}"

    def to_json(self) -> dict:
        """The JSON key ``slice``: kind, source file, the points, origin and directions."""
        return {
            "kind": self.kind,
            "source": self.source,
            "coordinates": ["s", "t"][: self.dim],
            "points": self.points.tolist(),
            "origin": self.origin.tolist(),
            "directions": self.directions.tolist(),
        }


def read_slice_points(path: Path, kind: str, max_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Slice:
    """The slice through the inputs stored in ``path`` (.npy, ``allow_pickle=False``): an array of
    shape (2, *input_shape) for ``kind="line"`` or (3, *input_shape) for ``kind="plane"``; its header
    may declare at most ``max_bytes`` as float64 (io/limits.py, ``--max-weight-bytes``)."""
    count = {v: k for k, v in KIND_BY_POINTS.items()}[kind]
    if not path.is_file():
        raise QuasieqError(f"{path}: no such points file")
    check_npy_header(path, max_bytes)
    try:
        P = np.load(path, allow_pickle=False)
    except ValueError:
        raise QuasieqError(f"{path}: holds pickled (object) data, which quasieq never loads; save a float array "
                           "with np.save") from None
    except Exception as exc:
        raise QuasieqError(f"{path}: not a readable .npy array ({type(exc).__name__})") from None
    if not isinstance(P, np.ndarray) or not np.issubdtype(P.dtype, np.number) or P.ndim < 2 or P.shape[0] != count:
        shape = getattr(P, "shape", None)
        raise QuasieqError(f"{path}: a {kind} needs an array of {count} inputs, shape ({count}, *input_shape), "
                           f"got {type(P).__name__} of shape {shape}")
    try:
        return Slice.through(P, source=path.name)
    except QuasieqError as exc:
        raise QuasieqError(f"{path}: {exc}") from None


def requested_slice(plane: Path | None, line: Path | None,
                    max_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> Slice | None:
    """The slice of the CLI's ``--plane POINTS.npy`` or ``--line POINTS.npy`` (at most one), or None."""
    if plane is not None and line is not None:
        raise QuasieqError("give at most one of --plane and --line")
    if plane is not None:
        return read_slice_points(plane, "plane", max_bytes)
    return None if line is None else read_slice_points(line, "line", max_bytes)


def default_slice_box(cut: Slice):
    """The box of slice coordinates when none is given: [0, 1]^k (p0 at the origin, p_i at e_i)."""
    return Box.cube(cut.dim, 0.0, 1.0)
