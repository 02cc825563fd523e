"""RegionComplex: the exact linear regions of a ReLU net on a box, stored flat (memory linear in size).

Each region R is a full-dimensional convex polytope on which the net is affine, f(x) = A_R x + b_R.
Variable-length data (vertices, facets, neighbours) are kept in CSR form: one flat array plus an
``indptr`` array of row pointers of length ``len + 1`` (``vertex_indptr``, ``facet_indptr``), so region i
owns ``flat[indptr[i]:indptr[i + 1]]``.

Facets are stored as ``normals · x ≤ rhs`` with unit normals (so ``rhs - normals · x`` is the distance
to the facet; ``facet_rhs_flat``, and ``Region.facet_rhs`` for one region). A facet's *source* is an
integer code: ``k ≥ 0`` is hidden ReLU unit k (global index among the ReLU units, layers concatenated;
see ``ReluNet.neuron_names``), ``-(2i+1)`` is the box face ``x_i ≥ lo_i`` and ``-(2i+2)`` the face
``x_i ≤ hi_i``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quasieq import tolerances
from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions import store
from quasieq.regions.lookup import PatternIndex

SCHEMA_VERSION = store.SCHEMA_VERSION


def source_name(code: int, neuron_names: list[str]) -> str:
    """Human name of a facet source code: ``"L1.N7"``, ``"box.lo.0"`` or ``"box.hi.0"``."""
    if code >= 0:
        return neuron_names[code]
    face = -code - 1
    return f"box.{'lo' if face % 2 == 0 else 'hi'}.{face // 2}"


def pattern_string(pattern: np.ndarray, widths: tuple[int, ...]) -> str:
    """0/1 per hidden ReLU unit, layers separated by ``|`` (JSON key ``pattern``); ``widths`` are the
    ReLU units per layer (``ReluNet.relu_widths``)."""
    bits = "".join("1" if p else "0" for p in pattern)
    parts, start = [], 0
    for w in widths:
        parts.append(bits[start : start + w])
        start += w
    return "|".join(parts)


@dataclass(frozen=True)
class Region:
    """A view of one region of a :class:`RegionComplex` (arrays are slices of the complex's storage)."""

    index: int
    pattern: np.ndarray  # bool (relu_units,)
    vertices: np.ndarray  # (n_vertices, D)
    facet_normals: np.ndarray  # (n_facets, D), unit rows, outward
    facet_rhs: np.ndarray  # (n_facets,) right-hand sides c: the facets are normals · x ≤ c
    facet_sources: np.ndarray  # int codes (see module docstring)
    neighbours: np.ndarray  # region index across each facet; -1 across box faces
    interior_point: np.ndarray  # (D,)
    radius: float  # Chebyshev radius
    A: np.ndarray  # (K, D)
    b: np.ndarray  # (K,)
    volume: float

    @property
    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        return self.A, self.b

    def contains(self, X: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Points (N, D) satisfying every facet inequality within ``tol``."""
        X = np.atleast_2d(X)
        return np.all(self.facet_rhs + tol >= X @ self.facet_normals.T, axis=1)


@dataclass(frozen=True)
class TreeRun:
    """How an enumeration ran (not part of the result: the regions do not depend on it)."""

    workers: int = 1
    tasks: int = 1  # tasks run in this process or on the cluster
    explored: int = 1  # subtrees explored in this run
    explored_regions: int = 0  # regions found in them
    resumed: int = 0  # subtrees read back from a checkpoint
    bytes_shipped: int = 0  # array bytes sent to and received from the workers (0 in one process)


class RegionComplex:
    """All full-dimensional activation regions of ``net`` inside ``box`` (built by ``qe.regions``).

    Example
    -------
    >>> cx = qe.regions(net, qe.Box.cube(2))          # doctest: +SKIP
    >>> len(cx), cx.volume_total, cx.locate([[0.0, 0.0]])   # doctest: +SKIP
    """

    def __init__(
        self,
        net: ReluNet,
        box: Box,
        *,
        patterns: np.ndarray,
        vertices: np.ndarray,
        vertex_indptr: np.ndarray,
        facet_normals: np.ndarray,
        facet_rhs: np.ndarray,
        facet_sources: np.ndarray,
        facet_indptr: np.ndarray,
        neighbours: np.ndarray,
        interior_points: np.ndarray,
        radii: np.ndarray,
        A: np.ndarray,
        b: np.ndarray,
        volumes: np.ndarray,
        volume_exact: bool = True,
        volume_samples: int = 0,
        dropped_lower_dim: int = 0,
        seconds: float = 0.0,
    ) -> None:
        self.net = net
        self.box = box
        self.patterns = patterns
        self.vertices_flat = vertices
        self.vertex_indptr = vertex_indptr
        self.facet_normals_flat = facet_normals
        self.facet_rhs_flat = facet_rhs
        self.facet_sources_flat = facet_sources
        self.facet_indptr = facet_indptr
        self.neighbours_flat = neighbours
        self.interior_points = interior_points
        self.radii = radii
        self.A = A
        self.b = b
        self.volumes = volumes
        self.volume_exact = volume_exact
        self.volume_samples = volume_samples
        self.dropped_lower_dim = dropped_lower_dim
        self.seconds = seconds
        self.run = TreeRun()
        self._pattern_index: PatternIndex | None = None
        #: The same regions on the unit box [0, 1]^D, as the engine computed them (unit_box.py); None
        #: for a complex on the unit box itself or one loaded from a file.
        self.unit: RegionComplex | None = None

    # ----- container protocol --------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.patterns.shape[0])

    def __getitem__(self, i: int) -> Region:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"region {i} out of range for {n} regions")
        i %= n
        v0, v1 = self.vertex_indptr[i], self.vertex_indptr[i + 1]
        f0, f1 = self.facet_indptr[i], self.facet_indptr[i + 1]
        return Region(
            index=i,
            pattern=self.patterns[i],
            vertices=self.vertices_flat[v0:v1],
            facet_normals=self.facet_normals_flat[f0:f1],
            facet_rhs=self.facet_rhs_flat[f0:f1],
            facet_sources=self.facet_sources_flat[f0:f1],
            neighbours=self.neighbours_flat[f0:f1],
            interior_point=self.interior_points[i],
            radius=float(self.radii[i]),
            A=self.A[i],
            b=self.b[i],
            volume=float(self.volumes[i]),
        )

    def __iter__(self) -> Iterator[Region]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"RegionComplex({len(self)} regions of {self.net!r} on {self.box!r})"

    # ----- derived quantities --------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.box.dim

    @property
    def volume_total(self) -> float:
        return float(self.volumes.sum())

    @property
    def min_radius(self) -> float:
        return float(self.radii.min()) if len(self) else 0.0

    #: Points per forward pass in ``locate`` (bounds its memory: chunk × widest layer floats).
    _LOCATE_CHUNK = 65536

    @property
    def pattern_index(self) -> PatternIndex:
        """Hashed index of the regions' activation patterns (built on first use)."""
        if self._pattern_index is None:
            self._pattern_index = PatternIndex(self.patterns)
        return self._pattern_index

    def locate(self, X: np.ndarray) -> np.ndarray:
        """Region index of each point (N, D); -1 outside the box or on a dropped lower-dimensional cell.

        Vectorised: the forward pass gives each point's activation pattern, looked up in a hash of
        the regions' patterns. Points on a shared facet get the region of the pattern the forward pass
        assigns (active means pre-activation > 0 beyond rounding, tolerances.PATTERN_ROUNDING).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != self.dim:
            raise QuasieqError(f"locate: points must have shape (N, {self.dim}), got {X.shape}")
        if self.unit is not None:  # on the unit box, where the rounding guard is relative to O(1) terms
            return self.unit.locate((X - self.box.lo) / (self.box.hi - self.box.lo))
        out = np.empty(len(X), dtype=np.int64)
        for start in range(0, len(X), self._LOCATE_CHUNK):
            part = X[start : start + self._LOCATE_CHUNK]
            patterns = self.net.activation_pattern(part, rounding_guard=tolerances.PATTERN_ROUNDING)
            out[start : start + len(part)] = self.pattern_index.find(patterns)
        out[~self.box.contains(X)] = -1
        return out

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """f(x) through the regions' affine maps (N, K); NaN where ``locate`` gives -1."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        idx = self.locate(X)
        out = np.full((len(X), self.net.out_dim), np.nan)
        ok = idx >= 0
        out[ok] = np.einsum("nkd,nd->nk", self.A[idx[ok]], X[ok]) + self.b[idx[ok]]
        return out

    # ----- serialisation -------------------------------------------------------------------------
    def region_json(self, i: int) -> dict:
        """Region i as its entry in the ``regions --json`` document."""
        r = self[i]
        return {
            "pattern": pattern_string(r.pattern, self.net.relu_widths),
            "volume": r.volume,
            "interior_point": r.interior_point.tolist(),
            "radius": r.radius,
            "affine": {"A": r.A.tolist(), "b": r.b.tolist()},
            "facets": {
                "normals": r.facet_normals.tolist(),
                "offsets": r.facet_rhs.tolist(),  # the JSON key of schema_version 1
                "sources": [source_name(int(s), self._neuron_names) for s in r.facet_sources],
                "neighbours": r.neighbours.tolist(),
            },
            "vertices": r.vertices.tolist(),
        }

    @functools.cached_property
    def _neuron_names(self) -> list[str]:
        return self.net.neuron_names()

    def summary_json(self) -> dict:
        """The ``regions --json`` document without its ``regions`` list."""
        return {
            "schema_version": SCHEMA_VERSION,
            "count": len(self),
            "dropped_lower_dim": int(self.dropped_lower_dim),
            "min_radius": self.min_radius,
            "box": self.box.to_dict(),
            "volume_total": self.volume_total,
            "volume_exact": bool(self.volume_exact),
            "volume_samples": int(self.volume_samples),
            "seconds": float(self.seconds),
        }

    #: Constructor keyword → attribute, for every array of the complex (what ``save`` writes).
    _ARRAYS = {
        "patterns": "patterns", "vertices": "vertices_flat", "vertex_indptr": "vertex_indptr",
        "facet_normals": "facet_normals_flat", "facet_rhs": "facet_rhs_flat", "facet_sources": "facet_sources_flat",
        "facet_indptr": "facet_indptr", "neighbours": "neighbours_flat", "interior_points": "interior_points",
        "radii": "radii", "A": "A", "b": "b", "volumes": "volumes",
    }

    def to_json(self) -> dict:
        """The ``regions --json`` document (schema_version 1); :func:`store.write_json` streams it."""
        return {**self.summary_json(), "regions": [self.region_json(i) for i in range(len(self))]}

    def write_json(self, path: str | Path, progress: store.ProgressFn | None = None, extra: dict | None = None) -> None:
        """Stream :meth:`to_json`'s document, with the keys of ``extra`` added, to ``path`` (see
        :func:`store.write_json`)."""
        with open(path, "w") as out:
            store.write_json(self, out, progress, extra=extra)

    def save(self, path: str | Path) -> None:
        """Save as the columnar ``.npz`` of :mod:`quasieq.regions.store` (no pickle)."""
        store.save_npz(self, path)

    @classmethod
    def load(cls, path: str | Path) -> RegionComplex:
        """Load a complex written by :meth:`save`, checking every array (``qe.load_regions``)."""
        stored = store.read_npz(path)
        return cls(
            stored.net, stored.box, **{keyword: stored.columns[name] for keyword, name in cls._ARRAYS.items()},
            volume_exact=stored.volume_exact, volume_samples=stored.volume_samples,
            dropped_lower_dim=stored.dropped_lower_dim, seconds=stored.seconds,
        )
