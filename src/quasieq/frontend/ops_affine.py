"""Lowering rules of the affine ops: each maps its data input x (flattened per sample) to W x + b.

* ``Gemm``: Y = α·A'·B' + β·C (A' = Aᵀ if transA, B' = Bᵀ if transB) with A the data: W = α·B'ᵀ,
  b = β·C (C a constant broadcast per sample, or a data tensor added). transA=1 would put the batch on
  the feature axis and is refused.
* ``MatMul``: X·B on the last axis, W = I ⊗ Bᵀ; B·X with X of per-sample shape (…, K, P): W = I ⊗ B ⊗ I_P.
* ``Add``/``Sub``/``Mul``/``Div`` with a constant operand (numpy broadcasting, never over the batch):
  t ± k, k ⊙ t, t / k; ``Add``/``Sub``/``Sum``/``Mean`` of data tensors: their sum; ``Neg``: −t.
* ``Conv`` (1-D, 2-D, 3-D; strides, pads, auto_pad, dilations, groups): the sparse matrix with one entry
  per (output, kernel tap) that lands inside the input (taps in the zero padding contribute nothing).
* ``AveragePool`` (count_include_pad, ceil_mode) and ``GlobalAveragePool``: sparse averaging matrices;
  ``ReduceSum``/``ReduceMean`` over feature axes: 0/1 summation matrices (scaled).
* ``BatchNormalization`` (inference, any position): per channel s = γ/√(σ²+ε), t' = s·(t − μ) + β; it
  merges into whichever affine map is next to it.
* ``Identity``, ``Dropout`` (inference), ``Cast`` to a float type: the identity.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from onnx import TensorProto

from quasieq.errors import QuasieqError
from quasieq.frontend.affine import Value, check_entries, constant
from quasieq.frontend.graph import Node
from quasieq.frontend.rules import Context, reduction_axes, rule

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


# ----- broadcasting ------------------------------------------------------------------------------
def broadcast_to(x: Value, shape: tuple[int, ...]) -> Value:
    """x expanded (numpy rules) to per-sample ``shape``: a row selection."""
    if x.shape == tuple(shape):
        return x
    index = np.broadcast_to(np.arange(x.size).reshape(x.shape), shape)
    return x.rows(index)


def per_sample_shape(shapes: list[tuple[int, ...]], label: str) -> tuple[int, ...]:
    """The broadcast (numpy rules) of per-sample shapes."""
    try:
        out = np.broadcast_shapes(*shapes)
    except ValueError:
        raise QuasieqError(f"{label}: operand shapes {[tuple(s) for s in shapes]} do not broadcast") from None
    return tuple(int(d) for d in out)


def _const_operand(k: np.ndarray, x: Value, label: str) -> tuple[Value, np.ndarray]:
    """x broadcast against constant k of the *batched* tensor: (x expanded, k flattened to x's shape)."""
    k = np.asarray(k, dtype=np.float64)
    batched = (1, *x.shape)
    try:
        out = np.broadcast_shapes(batched, k.shape)
    except ValueError:
        raise QuasieqError(f"{label}: constant of shape {k.shape} does not broadcast with data of shape "
                           f"(N, {', '.join(map(str, x.shape))})") from None
    if len(out) > len(batched) or out[0] != 1:
        raise QuasieqError(f"{label}: constant of shape {k.shape} would broadcast over the batch axis")
    shape = tuple(int(d) for d in out[1:])
    return broadcast_to(x, shape), np.broadcast_to(k, out).reshape(-1)


def _data_operands(node: Node, ctx: Context) -> list[Value]:
    """All inputs of a variadic elementwise op as Values of one broadcast shape (constants included)."""
    data = [ctx.data(t) for t in node.inputs if t and ctx.is_data(t)]
    rank = max(len(v.shape) for v in data)
    values = []
    for t in node.inputs:
        if ctx.is_data(t):
            values.append(ctx.data(t))
        else:
            k = ctx.const(t, node.label).astype(np.float64)
            if k.ndim > rank:
                if k.shape[0] != 1:
                    raise QuasieqError(f"{node.label}: constant of shape {k.shape} would broadcast over the batch")
                k = k.reshape(k.shape[1:])
            values.append(constant(data[0], k))
    shape = per_sample_shape([v.shape for v in values], node.label)
    return [broadcast_to(v, shape) for v in values]


@rule("Add", "Sub", "Mul", "Div")
def arithmetic(node: Node, ctx: Context) -> Value:
    a, b = node.inputs
    if ctx.is_data(a) and ctx.is_data(b):
        if node.op in ("Mul", "Div"):
            raise QuasieqError(f"{node.label}: {node.op} of two data tensors is not piecewise linear")
        x, y = _data_operands(node, ctx)
        return x + y if node.op == "Add" else x - y
    if not ctx.is_data(a) and node.op == "Div":
        raise QuasieqError(f"{node.label}: a constant divided by data is not piecewise linear")
    data_first = ctx.is_data(a)
    x, k = _const_operand(ctx.const(b if data_first else a, node.label), ctx.data(a if data_first else b), node.label)
    if node.op == "Add":
        return x.shift(k, node.label)
    if node.op == "Sub":
        return x.shift(-k, node.label) if data_first else (-x).shift(k, node.label)
    if node.op == "Mul":
        return x.scale(k, node.label)
    if np.any(k == 0):
        raise QuasieqError(f"{node.label}: division by a constant holding zeros")
    return x.scale(1.0 / k, node.label)


@rule("Sum", "Mean")
def variadic_sum(node: Node, ctx: Context) -> Value:
    values = _data_operands(node, ctx)
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total.scale(np.full(total.size, 1.0 / len(values)), node.label) if node.op == "Mean" else total


@rule("Neg")
def negate(node: Node, ctx: Context) -> Value:
    return -ctx.data(node.inputs[0])


@rule("Identity", "Dropout")
def identity(node: Node, ctx: Context) -> Value:
    if node.op == "Dropout":
        if node.attrs.get("is_test", 1) == 0:
            raise QuasieqError(f"{node.label}: Dropout in training mode (is_test=0) is random")
        if len(node.inputs) > 2 and node.inputs[2] and bool(np.asarray(ctx.const(node.inputs[2], node.label))):
            raise QuasieqError(f"{node.label}: Dropout with training_mode=true is random; export in eval mode")
    return ctx.data(node.inputs[0])


@rule("Cast")
def cast(node: Node, ctx: Context) -> Value:
    if node.attrs.get("to") not in _FLOAT_TYPES:
        raise QuasieqError(f"{node.label}: Cast of data to a non-float type rounds it, which is not piecewise linear")
    return ctx.data(node.inputs[0])


# ----- matrix products ---------------------------------------------------------------------------
@rule("Gemm")
def gemm(node: Node, ctx: Context) -> Value:
    a, b = node.inputs[:2]
    c = node.inputs[2] if len(node.inputs) > 2 else ""
    if not ctx.is_data(a) or ctx.is_data(b):
        raise QuasieqError(f"{node.label}: Gemm with the data as operand B puts the batch on a feature axis")
    if node.attrs.get("transA", 0):
        raise QuasieqError(f"{node.label}: Gemm with transA=1 transposes the batch; only transA=0 is supported")
    x = ctx.data(a)
    if len(x.shape) != 1:
        raise QuasieqError(f"{node.label}: Gemm on a rank-{len(x.shape) + 1} tensor; it needs (N, K)")
    B = ctx.const(b, node.label).astype(np.float64)
    W = float(node.attrs.get("alpha", 1.0)) * (B if node.attrs.get("transB", 0) else B.T)
    beta = float(node.attrs.get("beta", 1.0))
    y = x.linear(W, (W.shape[0],), node.label)
    if not c:
        return y
    if ctx.is_data(c):
        return y + broadcast_to(ctx.data(c).scale(np.full(ctx.data(c).size, beta), node.label), y.shape)
    y, k = _const_operand(beta * ctx.const(c, node.label).astype(np.float64), y, node.label)
    return y.shift(k, node.label)


@rule("MatMul")
def matmul(node: Node, ctx: Context) -> Value:
    a, b = node.inputs
    if ctx.is_data(a) and ctx.is_data(b):
        raise QuasieqError(f"{node.label}: MatMul of two data tensors is not piecewise linear")
    if ctx.is_data(a):
        x, B = ctx.data(a), ctx.const(b, node.label).astype(np.float64)
        if B.ndim not in (1, 2) or B.shape[0] != x.shape[-1]:
            raise QuasieqError(f"{node.label}: MatMul of data (N, {', '.join(map(str, x.shape))}) by a constant of "
                               f"shape {B.shape} is not supported (a (K, M) or (K,) matrix is needed)")
        Bm = B.reshape(B.shape[0], -1)
        prefix = int(np.prod(x.shape[:-1], dtype=np.int64))
        W = sp.kron(sp.identity(prefix, format="csr"), sp.csr_matrix(Bm.T), format="csr") if prefix > 1 else Bm.T
        shape = (*x.shape[:-1], *B.shape[1:])
        return x.linear(W, shape, node.label)
    x, A = ctx.data(b), ctx.const(a, node.label).astype(np.float64)
    if A.ndim != 2 or len(x.shape) < 2 or x.shape[-2] != A.shape[1]:
        raise QuasieqError(f"{node.label}: MatMul of a constant of shape {A.shape} by data "
                           f"(N, {', '.join(map(str, x.shape))}) is not supported")
    prefix = int(np.prod(x.shape[:-2], dtype=np.int64))
    W = sp.kron(sp.identity(prefix), sp.kron(sp.csr_matrix(A), sp.identity(x.shape[-1])), format="csr")
    return x.linear(W, (*x.shape[:-2], A.shape[0], x.shape[-1]), node.label)


# ----- windows: convolution and pooling ----------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Geometry of a sliding window over the spatial axes (ONNX Conv/Pool attributes resolved)."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def taps(self) -> int:
        return math.prod(self.kernel)


def window(node: Node, spatial: tuple[int, ...], kernel: tuple[int, ...], ceil_mode: bool = False) -> Window:
    """Resolve strides, dilations, pads (explicit or auto_pad) and the output size of ``node``."""
    n = len(spatial)
    strides = tuple(node.attrs.get("strides", [1] * n))
    dilations = tuple(node.attrs.get("dilations", [1] * n))
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if len(strides) != n or len(dilations) != n:
        raise QuasieqError(f"{node.label}: strides/dilations do not match the {n} spatial axes")
    span = [d * (k - 1) + 1 for d, k in zip(dilations, kernel, strict=False)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = tuple(-(-i // s) for i, s in zip(spatial, strides, strict=False))
        total = [max(0, (o - 1) * s + w - i) for o, s, w, i in zip(out, strides, span, spatial, strict=False)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        first, last = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        return Window(kernel, strides, dilations, tuple(first), tuple(last), out)
    if auto_pad == "VALID":
        pads = [0] * (2 * n)
    elif auto_pad == "NOTSET":
        pads = list(node.attrs.get("pads", [0] * (2 * n)))
    else:
        raise QuasieqError(f"{node.label}: auto_pad '{auto_pad}' is not an ONNX value")
    begin, end = tuple(pads[:n]), tuple(pads[n:])
    out_list = []
    for i, pb, pe, w, s in zip(spatial, begin, end, span, strides, strict=False):
        room = i + pb + pe - w
        if room < 0:
            raise QuasieqError(f"{node.label}: the window ({w}) is larger than the padded input ({i + pb + pe})")
        o = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= i + pb:  # the last window may not start in the end padding
            o -= 1
        out_list.append(o)
    return Window(kernel, strides, dilations, begin, end, tuple(out_list))


def window_taps(spatial: tuple[int, ...], w: Window) -> Iterator[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
    """For each kernel tap κ: the flat input position every output position reads, and whether that
    position is inside the input (False: it is in the padding)."""
    grids = np.meshgrid(*[np.arange(o) for o in w.out], indexing="ij")
    for kappa in np.ndindex(*w.kernel):
        geometry = zip(grids, w.strides, w.pads_begin, kappa, w.dilations, strict=False)
        pos = [g * s - pb + k * d for g, s, pb, k, d in geometry]
        valid = np.ones(w.out, dtype=bool)
        for p, size in zip(pos, spatial, strict=False):
            valid &= (p >= 0) & (p < size)
        clipped = [np.clip(p, 0, size - 1) for p, size in zip(pos, spatial, strict=False)]
        flat = np.ravel_multi_index(tuple(clipped), spatial) if spatial else np.zeros(1, dtype=np.int64)
        yield kappa, np.asarray(flat).reshape(-1), valid.reshape(-1)


def _spatial_input(node: Node, x: Value, what: str) -> tuple[int, tuple[int, ...]]:
    if len(x.shape) < 2:
        raise QuasieqError(f"{node.label}: {what} needs an (N, C, spatial...) input, got "
                           f"(N, {', '.join(map(str, x.shape))})")
    return x.shape[0], tuple(x.shape[1:])


@rule("Conv")
def conv(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    C, spatial = _spatial_input(node, x, "Conv")
    Wt = ctx.const(node.inputs[1], node.label).astype(np.float64)
    bias = ctx.optional_const(node.inputs[2] if len(node.inputs) > 2 else "", node.label)
    groups = int(node.attrs.get("group", 1))
    M, Cg = Wt.shape[:2]
    kernel = tuple(int(k) for k in Wt.shape[2:])
    if len(kernel) != len(spatial) or Cg * groups != C or M % groups:
        raise QuasieqError(f"{node.label}: weight of shape {Wt.shape} with group={groups} does not fit an input "
                           f"of shape (N, {C}, {', '.join(map(str, spatial))})")
    w = window(node, spatial, kernel)
    P_out, P_in = math.prod(w.out), math.prod(spatial)
    check_entries(M * Cg * P_out * w.taps, "the convolution matrix", x.max_weight_bytes)
    m = np.arange(M)[:, None, None]
    cin = (m // (M // groups)) * Cg + np.arange(Cg)[None, :, None]
    taps_of_w = Wt.reshape(M, Cg, -1)
    rows, cols, vals = [], [], []
    for kappa, flat, valid in window_taps(spatial, w):
        keep = np.broadcast_to(valid[None, None, :], (M, Cg, P_out))
        r = np.broadcast_to(m * P_out + np.arange(P_out)[None, None, :], keep.shape)
        col = cin * P_in + flat[None, None, :]
        v = np.broadcast_to(taps_of_w[:, :, np.ravel_multi_index(kappa, kernel)][:, :, None], keep.shape)
        rows.append(r[keep])
        cols.append(np.broadcast_to(col, keep.shape)[keep])
        vals.append(v[keep])
    K = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(M * P_out, C * P_in))
    b = None if bias is None else np.repeat(bias.astype(np.float64), P_out)
    return x.linear(K, (M, *w.out), node.label, b)


def pooling_taps(node: Node, x: Value, kernel: tuple[int, ...]) -> tuple[Window, list[np.ndarray]]:
    """Per tap, the (flat input index or −1 in the padding) of every (channel, output position)."""
    C, spatial = _spatial_input(node, x, node.op)
    if len(kernel) != len(spatial):
        raise QuasieqError(f"{node.label}: kernel_shape {kernel} does not match the {len(spatial)} spatial axes")
    w = window(node, spatial, kernel, ceil_mode=bool(node.attrs.get("ceil_mode", 0)))
    P_in = math.prod(spatial)
    check_entries(C * math.prod(w.out) * w.taps, "the pooling windows", x.max_weight_bytes)
    taps = []
    for _, flat, valid in window_taps(spatial, w):
        index = np.arange(C)[:, None] * P_in + flat[None, :]
        taps.append(np.where(valid[None, :], index, -1).reshape(-1))
    return w, taps


@rule("AveragePool")
def average_pool(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    kernel = tuple(int(k) for k in node.attrs["kernel_shape"])
    w, taps = pooling_taps(node, x, kernel)
    C, spatial = x.shape[0], tuple(x.shape[1:])
    n_out = C * math.prod(w.out)
    rows = np.concatenate([np.flatnonzero(idx >= 0) for idx in taps])
    cols = np.concatenate([idx[idx >= 0] for idx in taps])
    S = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_out, x.size))
    if node.attrs.get("count_include_pad", 0):
        # divisor: taps inside the padded input (explicit pads count, the ceil_mode overhang does not)
        counts = np.ones(w.out)
        for d, (o, s, pb, pe, k, dil, size) in enumerate(zip(w.out, w.strides, w.pads_begin, w.pads_end, kernel,
                                                            w.dilations, spatial, strict=False)):
            start = np.arange(o) * s - pb
            taps_in = ((start[:, None] + np.arange(k)[None, :] * dil >= -pb)
                       & (start[:, None] + np.arange(k)[None, :] * dil < size + pe)).sum(axis=1)
            counts = counts * taps_in.reshape([-1 if i == d else 1 for i in range(len(w.out))])
        divisor = np.tile(counts.reshape(-1), C)
    else:
        divisor = np.asarray(S.sum(axis=1)).reshape(-1)
    if np.any(divisor == 0):
        raise QuasieqError(f"{node.label}: a pooling window lies entirely in the padding")
    return x.linear(sp.diags(1.0 / divisor) @ S, (C, *w.out), node.label)


@rule("GlobalAveragePool")
def global_average_pool(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    C, spatial = _spatial_input(node, x, "GlobalAveragePool")
    P = math.prod(spatial)
    S = sp.kron(sp.identity(C), sp.csr_matrix(np.full((1, P), 1.0 / P)), format="csr")
    return x.linear(S, (C, *[1] * len(spatial)), node.label)


@rule("ReduceSum", "ReduceMean")
def reduce_sum(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    axes = reduction_axes(node, ctx)
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return x
        raise QuasieqError(f"{node.label}: {node.op} over all axes would mix the samples of the batch")
    kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    labels = np.broadcast_to(np.arange(math.prod(kept)).reshape(kept), x.shape).reshape(-1)
    weight = 1.0 / (x.size // math.prod(kept)) if node.op == "ReduceMean" else 1.0
    R = sp.csr_matrix((np.full(x.size, weight), (labels, np.arange(x.size))), shape=(math.prod(kept), x.size))
    shape = kept if node.attrs.get("keepdims", 1) else tuple(s for i, s in enumerate(x.shape) if i not in axes)
    return x.linear(R, shape, node.label)


@rule("BatchNormalization")
def batch_normalization(node: Node, ctx: Context) -> Value:
    if node.attrs.get("training_mode", 0) or any(node.outputs[1:]):
        raise QuasieqError(f"{node.label}: BatchNormalization in training mode; export the model in eval mode")
    x = ctx.data(node.inputs[0])
    gamma, beta, mean, var = (ctx.const(t, node.label).astype(np.float64).reshape(-1) for t in node.inputs[1:5])
    for what, values in (("scale", gamma), ("bias", beta), ("mean", mean), ("variance", var)):
        if not np.all(np.isfinite(values)):
            raise QuasieqError(f"{node.label}: {what} holds non-finite values (nan or inf)")
    s = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    C = x.shape[0]
    if s.size != C:
        raise QuasieqError(f"{node.label}: normalises {s.size} channels but its input has {C}")
    per = x.size // C
    return x.scale(np.repeat(s, per), node.label).shift(np.repeat(beta - s * mean, per), node.label)
