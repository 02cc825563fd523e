"""Unit-box coordinates: region enumeration and the constructions run on [0, 1]^D, whatever the box.

For a box lo ≤ x ≤ hi with sides s = hi − lo, the change of variables

    x = lo + s ⊙ u,      u ∈ [0, 1]^D,      dx = J du,  J = Π_i s_i

is exact in real arithmetic. A ReLU net f on the box becomes g(u) = f(lo + s ⊙ u) by folding the map
into its first layer, W' = W·diag(s) and b' = b + W·lo (each bias entry by compensated summation). g
has the same regions as f — same count, same activation patterns, same neighbours — and every
geometric quantity maps back:

    vertex / interior point    x = lo + s ⊙ u
    facet  n·u ≤ c             (n ⊘ s)·x ≤ c + (n ⊘ s)·lo, rescaled to a unit normal
    volume                     vol_x = J·vol_u
    affine map g = A u + b     f = (A ⊘ s) x + (b − (A ⊘ s)·lo)
    Chebyshev radius           r_x ≥ r_u·min_i s_i (equal for a cube; reported as that lower bound)

Because every tolerance of the engine is relative to the box's largest side (tolerances.py), working on
the unit box makes a thin box (2 × 1e-9) or an extreme one (±1e200) behave exactly like [0, 1]^D:
counts and relative volumes do not depend on a per-axis scaling or shift of the box. Only what float64
cannot represent is refused (:func:`check_representable`).

A net built on the unit box (``to_wide``/``to_deep``) is brought back by the inverse fold
u = (x − lo) ⊘ s in its first layer (:meth:`UnitFrame.unfold`), and a measure on the unit box is J
times smaller than on the box.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from quasieq import tolerances
from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.complex import RegionComplex

#: Facet rows from which :meth:`UnitFrame.complex_to_box` maps on two threads (about 13,000 regions in
#: 2-D): below it, starting the threads costs more than they save.
MAP_THREADS_MIN_FACETS = 1 << 16

#: Largest input dimension region enumeration accepts: the box alone is a polytope with 2^D vertices
#: (and D·2^(D-1) edges), so D = 20 holds a million vertices before any neuron cuts it.
MAX_REGION_DIM = 19


def check_representable(box: Box) -> None:
    """Refuse (one line) a box whose unit-box frame float64 cannot represent.

    * a side hi − lo that overflows (e.g. ±1e308);
    * a volume Π(hi − lo) that overflows or falls below the smallest normal float64 (±1e200 in 2-D,
      ±1e-170 in 2-D): region volumes could not be written;
    * a side narrower than tolerances.BOX_MIN_WIDTH_SPACINGS float spacings at its centre: points
      mapped back from the unit box would collapse onto a handful of floats.
    """
    lo, hi = box.lo.tolist(), box.hi.tolist()  # a few floats: plain Python costs less than numpy calls
    side = [top - bottom for bottom, top in zip(lo, hi, strict=True)]  # inf where it overflows
    for i, width in enumerate(side):
        if not math.isfinite(width):
            raise QuasieqError(
                f"box: coordinate {i} from {lo[i]:.3g} to {hi[i]:.3g} is wider than the largest float64 "
                f"({np.finfo(np.float64).max:.3g}); shrink the box or rescale that input"
            )
    for i, width in enumerate(side):
        if width < tolerances.BOX_MIN_WIDTH_SPACINGS * math.ulp(max(abs(lo[i]), abs(hi[i]))):  # ulp = np.spacing
            raise QuasieqError(
                f"box: coordinate {i} has width {width:.3g} at {lo[i]:.17g}, fewer than "
                f"{tolerances.BOX_MIN_WIDTH_SPACINGS} float64 steps; widen the box or shift that input towards 0"
            )
    log10_volume = sum(math.log10(width) for width in side)
    if not (math.log10(np.finfo(np.float64).tiny) < log10_volume < math.log10(np.finfo(np.float64).max)):
        raise QuasieqError(
            f"box: volume Π(hi - lo) ≈ 1e{log10_volume:.0f} is outside float64's normal range "
            "(1e-308 to 1e308); region volumes could not be written: shrink or widen the box, or rescale the inputs"
        )


def check_region_dim(dim: int) -> None:
    """Refuse, before allocating, an enumeration whose box alone has too many vertices."""
    if dim > MAX_REGION_DIM:
        raise QuasieqError(
            f"the net takes {dim} inputs: the box alone has 2^{dim} = {2**dim:,d} vertices, and region "
            f"enumeration is limited to {MAX_REGION_DIM} dimensions; enumerate on a slice of the input "
            "(--plane or --line) instead"
        )


@dataclass(frozen=True, eq=False)
class UnitFrame:
    """The change of variables x = lo + side ⊙ u between ``box`` and the unit box [0, 1]^D."""

    box: Box
    side: np.ndarray

    @classmethod
    def of(cls, box: Box) -> UnitFrame:
        """The frame of ``box`` (refused when float64 cannot represent it, :func:`check_representable`)."""
        check_representable(box)
        return cls(box, box.hi - box.lo)

    @property
    def unit_box(self) -> Box:
        return unit_cube(self.box.dim)

    @property
    def is_identity(self) -> bool:
        """True when the box already is [0, 1]^D."""
        return bool(np.all(self.box.lo == 0.0) and np.all(self.box.hi == 1.0))

    @property
    def jacobian(self) -> float:
        """J = Π side_i: vol_x = J·vol_u."""
        return float(np.prod(self.side))

    def to_box(self, U: np.ndarray) -> np.ndarray:
        """Points u (…, D) of the unit box → x = lo + side ⊙ u (one array written: side ⊙ u, then lo added
        in place)."""
        x = np.multiply(U, self.side, dtype=np.float64)
        x += self.box.lo
        return x

    def fold(self, net: ReluNet) -> ReluNet:
        """g(u) = f(lo + side ⊙ u): the first layer becomes W·diag(side), b + W·lo (compensated sum per row)."""
        W, b = net.layers[0]
        W_u = sp.csr_matrix(W.multiply(self.side[None, :])) if sp.issparse(W) else W * self.side
        return net.with_first_layer(W_u, _compensated_bias(W, b, self.box.lo))

    def unfold(self, built: ReluNet) -> ReluNet:
        """A net h built on the unit box as a net on the box: h((x − lo) ⊘ side), by the inverse fold
        W ← W ⊘ side (per column), b ← b − (W ⊘ side)·lo. Provenance is kept (the caller rescales it)."""
        W, b = built.layers[0]
        W_x = sp.csr_matrix(W.multiply(1.0 / self.side[None, :])) if sp.issparse(W) else W / self.side
        return built.with_first_layer(W_x, _compensated_bias(W_x, b, -self.box.lo))

    def facets_to_box(self, normals: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Facets n·u ≤ c (unit n) → the same half-spaces in x with unit normals."""
        n_x = normals / self.side
        big = np.abs(n_x[:, 0])  # scale first: the squares of 1e-201 or 1e200 leave float64
        for i in range(1, n_x.shape[1]):  # max |n_x| per row, a column at a time (3× faster than .max(axis=1))
            big = np.maximum(big, np.abs(n_x[:, i]))
        n_x /= big[:, None]
        squares = n_x * n_x  # the norm as np.linalg.norm forms it, √(Σ n_x²); the array is reused for n_x / norm
        norm = np.sqrt(np.add.reduce(squares, axis=1))
        rhs_x = (rhs / big + n_x @ self.box.lo) / norm
        return np.divide(n_x, norm[:, None], out=squares), rhs_x

    def maps_to_box(self, A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Affine maps g = A u + b, A (…, K, D) → f = A_x x + b_x with A_x = A ⊘ side, b_x = b − A_x·lo."""
        A_x = A / self.side
        return A_x, b - A_x @ self.box.lo


    def built_on_box(self, built: ReluNet, delta: float | None) -> ReluNet:
        """A construction made on the unit box (for ``self.fold(net)``, with δ/J) as a net on the box:
        :meth:`unfold`, and its provenance in box terms (δ, box, error bound × J, largest weight,
        breakpoints mapped to x; ε and κ in details stay in unit-box units, ``details["frame"]``)."""
        net = self.unfold(built)
        p = built.provenance
        if p is None:
            return net
        details = {**p.details, "frame": "unit box: u = (x - lo) / (hi - lo)"}
        breakpoints = None if p.breakpoints is None else \
            tuple(self.to_box(np.array(p.breakpoints).reshape(-1, 1))[:, 0].tolist())
        return net.with_provenance(dataclasses.replace(
            p, delta=delta, box_lo=tuple(self.box.lo.tolist()), box_hi=tuple(self.box.hi.tolist()),
            error_bound=None if p.error_bound is None else p.error_bound * self.jacobian,
            max_abs_weight=net.max_abs_weight(), breakpoints=breakpoints, details=details,
        ))

    def complex_to_box(self, unit: RegionComplex, net: ReluNet, threads: int = 1) -> RegionComplex:
        """The regions of ``net`` on the box from those of ``self.fold(net)`` on the unit box (module
        docstring); the unit-box complex stays available as ``.unit`` for the constructions. The facets,
        the vertices and the rest are mapped on up to ``threads`` threads at once (numpy releases the
        GIL; each array is computed by the same operations as on one thread, so the bits are the same),
        when there are MAP_THREADS_MIN_FACETS facets or more (starting the threads costs more on fewer)."""
        facets = functools.partial(self.facets_to_box, unit.facet_normals_flat, unit.facet_rhs_flat)
        vertices = functools.partial(self.to_box, unit.vertices_flat)
        if threads > 1 and unit.facet_rhs_flat.shape[0] >= MAP_THREADS_MIN_FACETS:
            with ThreadPoolExecutor(max_workers=2) as pool:  # facets and vertices beside the rest
                facets_done, vertices_done = pool.submit(facets), pool.submit(vertices)
                (A, b), interior = self.maps_to_box(unit.A, unit.b), self.to_box(unit.interior_points)
                (normals, rhs), vertices_x = facets_done.result(), vertices_done.result()
        else:  # in this thread, without an executor's futures (on a small complex they cost more than the maps)
            (normals, rhs), vertices_x = facets(), vertices()
            (A, b), interior = self.maps_to_box(unit.A, unit.b), self.to_box(unit.interior_points)
        cx = RegionComplex(
            net, self.box,
            patterns=unit.patterns,
            vertices=vertices_x,
            vertex_indptr=unit.vertex_indptr,
            facet_normals=normals,
            facet_rhs=rhs,
            facet_sources=unit.facet_sources_flat,
            facet_indptr=unit.facet_indptr,
            neighbours=unit.neighbours_flat,
            interior_points=interior,
            radii=unit.radii * float(self.side.min()),
            A=A,
            b=b,
            volumes=unit.volumes * self.jacobian,
            volume_exact=unit.volume_exact,
            volume_samples=unit.volume_samples,
            dropped_lower_dim=unit.dropped_lower_dim,
            seconds=unit.seconds,
        )
        cx.unit = unit
        cx.run = unit.run
        return cx


@functools.cache
def unit_cube(dim: int) -> Box:
    """[0, 1]^dim (a Box is immutable: one per dimension serves every enumeration)."""
    return Box.cube(dim, 0.0, 1.0)


def _compensated_bias(W, b: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """b + W·shift summed over the D + 1 terms of each row with Neumaier's compensated summation
    (error ≈ one rounding of the result plus O(D·u²·Σ|terms|)), so that a shift far from 0 (a box at
    1e200, or [1, 1 + 1e-9]) does not cost the bias its accuracy. The product W_ij·shift_j is rounded
    once each; only the first layer is summed here, so a (rows, D) dense view is cheap."""
    dense = W.toarray() if sp.issparse(W) else np.asarray(W)
    return _neumaier_rows(np.ascontiguousarray(dense, dtype=np.float64), b.astype(np.float64),
                          np.asarray(shift, dtype=np.float64))


@njit(cache=True, nogil=True)
def _neumaier_rows(dense, b, shift):
    """Per row r: b_r + Σ_j dense_rj·shift_j, the terms added in order j = 0, 1, … with Neumaier's
    correction (the rounding error of each addition, carried and added at the end)."""
    total = b.copy()
    carry = np.zeros_like(total)
    for j in range(dense.shape[1]):
        for r in range(dense.shape[0]):
            term = dense[r, j] * shift[j]
            s = total[r] + term
            carry[r] += (total[r] - s) + term if abs(total[r]) >= abs(term) else (term - s) + total[r]
            total[r] = s
    return total + carry
