"""Agreement of two classifiers on a given data set, and the data-set files it reads.

For points x_1 … x_N (a test set, not uniform samples) let X = #{n : label_a(x_n) ≠ label_b(x_n)}.
The report gives the disagreement count, the agreement fraction 1 − X/N and the Clopper–Pearson 95%
interval of the disagreement *rate* X/N — the rate on the population the data were drawn from, a
statement about data, not about Lebesgue measure (that is ``compare(..., task="classification")``).
Labels are ``class_labels``: argmax with ties to the lowest index, [h > 0] for a single logit, so a
single-logit net and its two-score form (0, h) compare as equal.

Files (``--data FILE``):

* ``.npz`` (read with ``allow_pickle=False``): array ``X`` (N, D) and optionally ``y`` (N,) of integer
  class labels;
* ``.csv``: numeric, comma-separated, optional header line; the label is the last column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.io.limits import DEFAULT_MAX_WEIGHT_BYTES
from quasieq.io.npz_io import read_npz_arrays
from quasieq.net import ReluNet, class_labels
from quasieq.verify.compare import chunk_size, clopper_pearson


def _as_labels(y: Any, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise QuasieqError(f"{where}: labels y must have shape ({n},), got {y.shape}")
    yf = y.astype(np.float64)
    if not np.all(np.isfinite(yf)) or np.any(yf != np.round(yf)) or np.any(yf < 0):
        raise QuasieqError(f"{where}: labels y must be integers 0, 1, …, K−1")
    y = yf.astype(np.int64)
    if len(np.unique(y)) < 2:
        raise QuasieqError(
            f"{where}: labels have no second class (all are {int(y[0])}): a classifier needs at least two"
        )
    return y


def _as_points(X: Any, where: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise QuasieqError(f"{where}: X must be a non-empty (N, D) array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise QuasieqError(f"{where}: X holds non-finite values (nan or inf)")
    return X


def load_dataset(path: str | Path, max_bytes: int = DEFAULT_MAX_WEIGHT_BYTES) -> tuple[np.ndarray, np.ndarray | None]:
    """(X (N, D) float64, y (N,) int64 or None) from ``.npz`` (X, optional y) or ``.csv`` (label last).

    Raises QuasieqError for an unreadable file, a ``.npz`` declaring more than ``max_bytes``
    (io/limits.py, checked before reading, other arrays than X and y included), a missing ``X``,
    non-numeric or non-finite entries, non-integer labels or labels without a second class.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = read_npz_arrays(path, lambda name: True, "", max_bytes)
        if "X" not in arrays:
            raise QuasieqError(f"{path}: the .npz holds {sorted(arrays)} but no array 'X'")
        X, y = arrays["X"], arrays.get("y")
    elif suffix == ".csv":
        try:
            try:
                table = np.loadtxt(path, delimiter=",", ndmin=2)
            except ValueError:  # a header line
                table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        except (OSError, ValueError) as exc:
            raise QuasieqError(f"{path}: not a numeric CSV ({exc})") from None
        if table.shape[1] < 2:
            raise QuasieqError(
                f"{path}: a CSV needs at least one feature column and the label column, "
                f"got {table.shape[1]} column(s)"
            )
        X, y = table[:, :-1], table[:, -1]
    else:
        raise QuasieqError(f"{path}: unknown data format {suffix or '(none)'}; use .npz (X, y) or .csv (label last)")
    X = _as_points(X, str(path))
    return X, (None if y is None else _as_labels(y, len(X), str(path)))


def data_box(X: Any) -> Box:
    """The bounding box of the data, [min_i X_i, max_i X_i] per coordinate (QuasieqError if a feature
    is constant: the box would be flat)."""
    X = _as_points(X, "data_box")
    lo, hi = X.min(axis=0), X.max(axis=0)
    flat = np.flatnonzero(~(lo < hi))
    if flat.size:
        raise QuasieqError(f"data_box: feature {int(flat[0])} is constant ({lo[flat[0]]:g}): the bounding box is flat")
    return Box(lo, hi)


def check_in_box(X: Any, box: Box) -> None:
    """Raise QuasieqError unless every data point lies in ``box`` (the constructions are arbitrary
    outside it)."""
    X = _as_points(X, "data")
    if X.shape[1] != box.dim:
        raise QuasieqError(f"data have {X.shape[1]} features but the box has dimension {box.dim}")
    outside = ~box.contains(X)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise QuasieqError(
            f"the box excludes the data: {int(outside.sum())} of {len(X)} points lie outside it (first: row {i}); "
            "use a box that contains the data, e.g. data_box(X)"
        )


@dataclass(frozen=True)
class DataAgreement:
    """Result of :func:`data_agreement`.

    samples : N.  disagreements : points where the labels differ.  agreement : 1 − disagreements/N.
    ci95 : Clopper–Pearson 95% interval of the disagreement rate.  witness : indices (up to 10) of
    points where they differ.  accuracy_a, accuracy_b : fraction of points whose label equals y
    (None without y).
    """

    samples: int
    disagreements: int
    agreement: float
    ci95: tuple[float, float]
    witness: tuple[int, ...]
    accuracy_a: float | None = None
    accuracy_b: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples, "disagreements": self.disagreements, "agreement": self.agreement,
            "ci95": list(self.ci95), "witness": list(self.witness),
            "accuracy_a": self.accuracy_a, "accuracy_b": self.accuracy_b,
        }


def _predict(f: Any, X: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Labels of f on X (chunked) and its number of classes (2 for a single logit)."""
    if isinstance(f, ReluNet):
        if f.in_dim != X.shape[1]:
            raise QuasieqError(
                f"data_agreement: {name} takes {f.in_dim} inputs but the data have {X.shape[1]} features"
            )
    elif not callable(f):
        raise QuasieqError(
            f"data_agreement: {name} must be a ReluNet or a callable (N, D) -> (N, K), got {type(f).__name__}"
        )
    labels: list[np.ndarray] = []
    K = 2
    chunk = chunk_size(f)
    for start in range(0, len(X), chunk):
        Y = np.asarray(f(X[start : start + chunk]), dtype=np.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y
        if Y.ndim != 2 or Y.shape[0] != len(X[start : start + chunk]):
            raise QuasieqError(f"data_agreement: {name} returned shape {Y.shape}; expected (N, K)")
        K = max(2, Y.shape[1])
        labels.append(class_labels(Y))
    return np.concatenate(labels), K


def data_agreement(a: Any, b: Any, X: Any, y: Any = None, *, box: Box | None = None) -> DataAgreement:
    """Where two classifiers give the same label on the data points X (and, with y, their accuracies).

    ``a``, ``b``: ReluNets or callables (N, D) → (N, K). Raises QuasieqError when their numbers of
    classes differ (a single logit counts as 2), when y names a class ≥ K or has no second class, or
    when ``box`` is given and excludes some points.

    Example
    -------
    >>> rep = data_agreement(net, qe.to_wide(net, box, 1e-3, task="classification"), X_test, y_test)  # doctest: +SKIP
    >>> rep.agreement, rep.accuracy_a, rep.accuracy_b                                                 # doctest: +SKIP
    """
    X = _as_points(X, "data_agreement")
    if box is not None:
        check_in_box(X, box)
    la, Ka = _predict(a, X, "a")
    lb, Kb = _predict(b, X, "b")
    if Ka != Kb:
        raise QuasieqError(f"data_agreement: a has {Ka} classes but b has {Kb} (a single logit counts as 2)")
    acc_a = acc_b = None
    if y is not None:
        y = _as_labels(y, len(X), "data_agreement")
        if y.max() >= Ka:
            raise QuasieqError(f"data_agreement: labels go up to {int(y.max())} but the classifiers have {Ka} classes")
        acc_a, acc_b = float(np.mean(la == y)), float(np.mean(lb == y))
    differ = np.flatnonzero(la != lb)
    return DataAgreement(
        samples=len(X),
        disagreements=int(differ.size),
        agreement=1.0 - differ.size / len(X),
        ci95=clopper_pearson(int(differ.size), len(X)),
        witness=tuple(int(i) for i in differ[:10]),
        accuracy_a=acc_a,
        accuracy_b=acc_b,
    )


__all__ = ["load_dataset", "data_box", "check_in_box", "DataAgreement", "data_agreement"]
