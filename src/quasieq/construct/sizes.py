"""The size of a quasi-equivalent construction before it is built: neurons, non-zeros, bytes.

From the simplex count M, the input dimension D and the output count K alone, each construction's
layers are known in shape and in the most entries they can hold (the layouts of construct/compact.py
and construct/paper.py, written here once as lists of layer shapes and entry bounds):

* compact wide: [D + (D+1)M] → [(K+1)M] → K; non-zeros ≤ D + D(D+1)M, ≤ (KD + (K+1)(D+1))M, ≤ 2KM.
* compact deep: 2M + 1 hidden layers alternating α (2D + K + 2 units) and β (2K + 2D + 2 units), then
  K + 1 and K; per block ≤ (2K + D + 1)(D + 1) + KD + 2D + K + 1 entries in β, ≤ 2D(D + 1) + 2D + 2K + 2
  in α.
* paper wide: [D + DM] → [(D+1)M] → [(D+1)M] → K; non-zeros ≤ D + D²M, ≤ 2D(D+1)M, ≤ (D+1)²M, ≤ K(D+1)M.
* paper deep: 3M hidden layers a (2D + K + 1), b, c (2D + K + 2 units each), blocks at most dense.

The entry counts are upper bounds (a construction drops exact zeros); neuron counts, widths and hidden
layers are exact (tests/test_sizes.py checks all of it against built nets). Memory: a CSR layer takes
12 bytes per stored entry (float64 value, int32 column) and 4 per row, a bias 8 per unit, and every
layer object about LAYER_OVERHEAD_BYTES; building one takes about BUILD_PEAK_FACTOR times the finished
net (the index and value triplets of every layer exist at once before they are compressed).
"""

from __future__ import annotations

from typing import NamedTuple

from quasieq.errors import QuasieqError

#: Bytes of one CSR layer object besides its arrays (scipy matrix, three numpy headers, the bias array).
LAYER_OVERHEAD_BYTES = 1024
#: Peak memory while building ÷ memory of the finished net: the COO triplets (int64 row, int64 column,
#: float64 value: 24 bytes per entry) live beside the CSR result (12 bytes per entry) while it is sorted.
BUILD_PEAK_FACTOR = 3
#: Default largest construction (its build peak, bytes) ``to_wide`` / ``to_deep`` and the CLI's
#: ``--max-form-bytes`` accept: 2 GiB.
DEFAULT_MAX_FORM_BYTES = 2**31
#: Methods whose size follows from (M, D, K) alone.
ESTIMATED_METHODS = ("compact", "paper")


class LayerShape(NamedTuple):
    """One affine layer: output units, input units, the most non-zero weights it can hold."""

    rows: int
    cols: int
    max_nonzeros: int


class FormSize(NamedTuple):
    """Size of a construction known before building it."""

    hidden_layers: int
    width: int
    neurons: int
    max_nonzeros: int
    bytes: int

    @property
    def build_peak_bytes(self) -> int:
        return BUILD_PEAK_FACTOR * self.bytes


def _compact_wide(M: int, D: int, K: int) -> list[LayerShape]:
    n1, n2 = D + (D + 1) * M, (K + 1) * M
    return [LayerShape(n1, D, D + D * (D + 1) * M), LayerShape(n2, n1, (K * D + (K + 1) * (D + 1)) * M),
            LayerShape(K, n2, 2 * K * M)]


def _compact_deep(M: int, D: int, K: int) -> list[LayerShape]:
    wa, wb = 2 * D + K + 2, 2 * K + 2 * D + 2
    beta = LayerShape(wb, wa, (2 * K + D + 1) * (D + 1) + K * D + 2 * D + K + 1)
    alpha = LayerShape(wa, wb, 2 * D * (D + 1) + 2 * D + 2 * K + 2)
    first = LayerShape(wa, D, (D + 1) * D + D)
    return [first, beta, *[alpha, beta] * (M - 1), LayerShape(K + 1, wb, 2 * K + 2), LayerShape(K, K + 1, 2 * K)]


def _paper_wide(M: int, D: int, K: int) -> list[LayerShape]:
    n1, n2, n3 = D + D * M, (D + 1) * M, (D + 1) * M
    return [LayerShape(n1, D, D + D * D * M), LayerShape(n2, n1, 2 * D * (D + 1) * M),
            LayerShape(n3, n2, (D + 1) ** 2 * M), LayerShape(K, n3, K * (D + 1) * M)]


def _paper_deep(M: int, D: int, K: int) -> list[LayerShape]:
    wa, wb = 2 * D + K + 1, 2 * D + K + 2
    a, b, c = LayerShape(wa, wb, wa * wb), LayerShape(wb, wa, wb * wa), LayerShape(wb, wb, wb * wb)
    return [LayerShape(wa, D, wa * D), b, c, *[a, b, c] * (M - 1), LayerShape(K, wb, K * wb)]


_LAYOUTS = {
    ("wide", "compact"): _compact_wide,
    ("deep", "compact"): _compact_deep,
    ("wide", "paper"): _paper_wide,
    ("deep", "paper"): _paper_deep,
}


def layer_shapes(form: str, method: str, M: int, D: int, K: int) -> list[LayerShape]:
    """The layers of the ``form`` ("wide"/"deep") built by ``method`` ("compact"/"paper") on M simplices."""
    if (form, method) not in _LAYOUTS:
        raise QuasieqError(f"no size formula for the {form} form of method {method!r}")
    if min(M, D, K) < 1:
        raise QuasieqError(f"sizes need M, D, K ≥ 1, got M={M}, D={D}, K={K}")
    return _LAYOUTS[(form, method)](int(M), int(D), int(K))


def estimate(form: str, method: str, M: int, D: int, K: int) -> FormSize:
    """Neurons (exact), non-zeros (at most) and bytes (about) of a construction, from M, D, K."""
    shapes = layer_shapes(form, method, M, D, K)
    hidden = shapes[:-1]
    nonzeros = sum(s.max_nonzeros for s in shapes)
    rows = sum(s.rows for s in shapes)
    nbytes = 12 * nonzeros + 4 * (rows + len(shapes)) + 8 * rows + LAYER_OVERHEAD_BYTES * len(shapes)
    return FormSize(len(hidden), max(s.rows for s in hidden), sum(s.rows for s in hidden), nonzeros, nbytes)


def check_size(size: FormSize, form: str, method: str, M: int, max_bytes: int | None) -> None:
    """Refuse (QuasieqError, before building) a construction whose build peak exceeds ``max_bytes``."""
    if max_bytes is not None and size.build_peak_bytes > max_bytes:
        raise QuasieqError(
            f"the {form} {method} form on M = {M:,d} simplices would have {size.neurons:,d} neurons and up to "
            f"{size.max_nonzeros:,d} non-zero weights, about {size.build_peak_bytes / 2**30:.3g} GiB to build, above "
            f"the limit of {max_bytes / 2**30:.3g} GiB; raise it with --max-form-bytes (max_bytes=) or shrink the box"
        )
