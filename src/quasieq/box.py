"""The domain every guarantee is stated on: an axis-aligned box {x : lo ≤ x ≤ hi}."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from quasieq.errors import QuasieqError
from quasieq.forward_range import check_forward_range


@dataclass(frozen=True, eq=False)
class Box:
    """Per-coordinate bounds ``lo < hi`` (finite). The paper's [-B, B]^D is ``Box.cube(D, -B, B)``.

    >>> Box.cube(2, -1, 1).volume
    4.0
    """

    lo: np.ndarray
    hi: np.ndarray

    def __init__(self, lo: Any, hi: Any) -> None:
        lo = np.array(lo, dtype=np.float64).reshape(-1)
        hi = np.array(hi, dtype=np.float64).reshape(-1)
        if lo.shape != hi.shape:
            raise QuasieqError(f"box: lo has {lo.size} coordinates but hi has {hi.size}")
        if lo.size == 0:
            raise QuasieqError("box: needs at least one coordinate")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise QuasieqError("box: bounds must be finite")
        bad = np.flatnonzero(~(lo < hi))
        if bad.size:
            i = int(bad[0])
            raise QuasieqError(f"box: coordinate {i} needs lo < hi, got lo={lo[i]:g}, hi={hi[i]:g}")
        lo.setflags(write=False)
        hi.setflags(write=False)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @classmethod
    def cube(cls, dim: int, lo: float = -1.0, hi: float = 1.0) -> Box:
        if int(dim) < 1:
            raise QuasieqError(f"box: dimension must be ≥ 1, got {dim}")
        return cls(np.full(int(dim), float(lo)), np.full(int(dim), float(hi)))

    @property
    def dim(self) -> int:
        return int(self.lo.size)

    @functools.cached_property  # the bounds are read-only: computed once (every enumeration step reads it)
    def volume(self) -> float:
        return float(np.prod(self.hi - self.lo))

    @functools.cached_property
    def scale(self) -> float:
        """Largest side length: the unit of every geometric tolerance (tolerances.py)."""
        return float(np.max(self.hi - self.lo))

    def check_net(self, net: Any) -> None:
        """Raise if the box's dimension differs from the net's input dimension, or if the net's forward
        pass overflows float64 on the box (:func:`quasieq.forward_range.check_forward_range`)."""
        if net.in_dim != self.dim:
            raise QuasieqError(f"box has dimension {self.dim} but the net takes {net.in_dim} inputs")
        check_forward_range(net, self)

    def vertices(self) -> np.ndarray:
        """The 2^D corners, (2^D, D)."""
        bits = (np.arange(2**self.dim)[:, None] >> np.arange(self.dim)) & 1
        return np.where(bits == 1, self.hi, self.lo)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n uniform points in the box."""
        return self.lo + (self.hi - self.lo) * rng.random((int(n), self.dim))

    def contains(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        return np.all((self.lo <= X) & (self.hi >= X), axis=1)

    def to_dict(self) -> dict[str, list[float]]:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist()}

    def __repr__(self) -> str:
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"
