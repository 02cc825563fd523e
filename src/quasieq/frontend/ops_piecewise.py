"""Lowering rules of the piecewise-linear ops, each exact on all of ℝⁿ (not only on a box).

Elementwise ops are sums of ReLU terms and a pass-through term (:func:`elementwise`):

    Relu(z)            = relu(z)
    LeakyRelu / PRelu  = a·z + (1 − a)·relu(z)          (relu(z) and a pass-through z; none where a = 0)
    Clip(z; lo, hi)    = lo + relu(z − lo) − relu(z − hi)
                         (one term when a bound is omitted: max(z, lo) = lo + relu(z − lo),
                          min(z, hi) = hi − relu(hi − z))
    Abs(z)             = relu(z) + relu(−z)
    HardSigmoid(z)     = Clip(α z + β; 0, 1)

Maxima use max(a, b) = b + relu(a − b) (a ReLU unit and a pass-through b), in a balanced tree of
⌈log₂ k⌉ stages over the k operands of each output (:func:`maximum_tree`); min(a, b) = −max(−a, −b).
MaxPool's windows skip the padding (its −∞ padding never wins), GlobalMaxPool takes whole channels,
Max/Min take their data operands elementwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from quasieq.errors import QuasieqError
from quasieq.frontend.affine import Value, stack
from quasieq.frontend.emit import Stage
from quasieq.frontend.graph import Node
from quasieq.frontend.ops_affine import _const_operand, _data_operands, pooling_taps
from quasieq.frontend.rules import Context, reduction_axes, rule


@dataclass(frozen=True)
class ReluTerm:
    """α·relu(σ·z + β) per element (α, β broadcast to z; σ = ±1)."""

    alpha: np.ndarray
    sign: float
    beta: np.ndarray


def elementwise(ctx: Context, z: Value, terms: list[ReluTerm], gamma: np.ndarray, delta: np.ndarray) -> Value:
    """y = Σ_j α_j·relu(σ_j z + β_j) + γ·z + δ elementwise, as one stage (units only where α, γ ≠ 0)."""
    n = z.size
    full = lambda a: np.broadcast_to(np.asarray(a, dtype=np.float64).reshape(-1), (n,))  # noqa: E731
    pre, rows, cols, vals = [], [], [], []
    units = 0
    for t in terms:
        alpha, beta = full(t.alpha), full(t.beta)
        keep = np.flatnonzero(alpha != 0)
        if keep.size == 0:
            continue
        part = z.rows(keep)
        pre.append((part if t.sign > 0 else -part).shift(beta[keep], "relu term"))
        rows.append(keep)
        cols.append(units + np.arange(keep.size))
        vals.append(alpha[keep])
        units += keep.size
    gamma, delta = full(gamma), full(delta)
    linear_rows = np.flatnonzero(gamma != 0)
    if units == 0:  # no ReLU term left: the op is affine here (LeakyRelu with slope 1, Clip without bounds)
        return z.scale(gamma, "linear term").shift(delta, "linear term")
    out_relu = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, units))
    linear = z.rows(linear_rows) if linear_rows.size else None
    out_linear = sp.csr_matrix((gamma[linear_rows], (linear_rows, np.arange(linear_rows.size))),
                               shape=(n, linear_rows.size)) if linear_rows.size else None
    return ctx.stage(Stage(stack(pre), linear, out_relu, out_linear, delta.copy(), z.shape))


def maximum_tree(ctx: Context, operands: Value, groups: np.ndarray, shape: tuple[int, ...]) -> Value:
    """y[o] = max of operands[groups[o, :]] (entries −1 are absent) by the balanced tree of
    max(a, b) = b + relu(a − b): each stage pairs neighbours, an unpaired operand passes through."""
    G = np.asarray(groups, dtype=np.int64)
    G = np.array([np.concatenate([g[g >= 0], g[g < 0]]) for g in G]) if np.any(G < 0) else G
    if np.any(G[:, 0] < 0):
        raise QuasieqError("a maximum over an empty window")
    M = operands
    while G.shape[1] > 1:
        if G.shape[1] % 2:
            G = np.hstack([G, np.full((G.shape[0], 1), -1)])
        a, b = G[:, 0::2], G[:, 1::2]
        paired = (a >= 0) & (b >= 0)
        alone = (a >= 0) & (b < 0)
        n_pairs, n_alone = int(paired.sum()), int(alone.sum())
        relu = M.rows(a[paired]) - M.rows(b[paired])
        linear = M.rows(np.concatenate([b[paired], a[alone]]))
        count = n_pairs + n_alone
        out_relu = sp.csr_matrix((np.ones(n_pairs), (np.arange(n_pairs), np.arange(n_pairs))), shape=(count, n_pairs))
        M = ctx.stage(Stage(relu, linear, out_relu, sp.identity(count, format="csr"), None, (count,)))
        nxt = np.full(a.shape, -1, dtype=np.int64)
        nxt[paired] = np.arange(n_pairs)
        nxt[alone] = n_pairs + np.arange(n_alone)
        G = nxt
    return M.rows(G[:, 0].reshape(shape))


# ----- rules ---------------------------------------------------------------------------------------
@rule("Relu", piecewise=True)
def relu(node: Node, ctx: Context) -> Value:
    z = ctx.data(node.inputs[0])
    return elementwise(ctx, z, [ReluTerm(np.ones(1), 1.0, np.zeros(1))], np.zeros(1), np.zeros(1))


def _leaky(ctx: Context, z: Value, slope: np.ndarray) -> Value:
    return elementwise(ctx, z, [ReluTerm(1.0 - slope, 1.0, np.zeros(1))], slope, np.zeros(1))


@rule("LeakyRelu", piecewise=True)
def leaky_relu(node: Node, ctx: Context) -> Value:
    return _leaky(ctx, ctx.data(node.inputs[0]), np.array([float(node.attrs.get("alpha", 0.01))]))


@rule("PRelu", piecewise=True)
def prelu(node: Node, ctx: Context) -> Value:
    if ctx.is_data(node.inputs[1]):
        raise QuasieqError(f"{node.label}: PRelu with a data-dependent slope is not piecewise linear")
    z, slope = _const_operand(ctx.const(node.inputs[1], node.label), ctx.data(node.inputs[0]), node.label)
    return _leaky(ctx, z, slope)


def clip(ctx: Context, z: Value, lo: float | None, hi: float | None, label: str) -> Value:
    """max(lo, min(z, hi)) with either bound omitted (module docstring)."""
    if lo is not None and hi is not None and lo > hi:
        raise QuasieqError(f"{label}: Clip with min {lo} > max {hi}")
    one = np.ones(1)
    if lo is not None and hi is not None:
        terms = [ReluTerm(one, 1.0, np.array([-lo])), ReluTerm(-one, 1.0, np.array([-hi]))]
        return elementwise(ctx, z, terms, np.zeros(1), np.array([lo]))
    if lo is not None:
        return elementwise(ctx, z, [ReluTerm(one, 1.0, np.array([-lo]))], np.zeros(1), np.array([lo]))
    if hi is not None:
        return elementwise(ctx, z, [ReluTerm(-one, -1.0, np.array([hi]))], np.zeros(1), np.array([hi]))
    return z


def _bound(node: Node, ctx: Context, position: int, attr: str, sentinel: float) -> float | None:
    if len(node.inputs) > position and node.inputs[position]:
        if ctx.is_data(node.inputs[position]):
            raise QuasieqError(f"{node.label}: Clip with a data-dependent bound is not supported")
        value = float(np.asarray(ctx.const(node.inputs[position], node.label)).reshape(-1)[0])
    elif attr in node.attrs:
        value = float(node.attrs[attr])
    else:
        return None
    return None if abs(value) >= sentinel else value  # ±FLT_MAX (the old opsets' defaults) means no bound


@rule("Clip", piecewise=True)
def clip_rule(node: Node, ctx: Context) -> Value:
    big = float(np.finfo(np.float32).max)
    return clip(ctx, ctx.data(node.inputs[0]), _bound(node, ctx, 1, "min", big), _bound(node, ctx, 2, "max", big),
                node.label)


@rule("HardSigmoid", piecewise=True)
def hard_sigmoid(node: Node, ctx: Context) -> Value:
    z = ctx.data(node.inputs[0])
    alpha, beta = float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))
    return clip(ctx, z.scale(np.full(z.size, alpha), node.label).shift(np.full(z.size, beta), node.label), 0.0, 1.0,
                node.label)


@rule("Abs", piecewise=True)
def absolute(node: Node, ctx: Context) -> Value:
    one, zero = np.ones(1), np.zeros(1)
    return elementwise(ctx, ctx.data(node.inputs[0]), [ReluTerm(one, 1.0, zero), ReluTerm(one, -1.0, zero)], zero, zero)


@rule("MaxPool", piecewise=True)
def max_pool(node: Node, ctx: Context) -> Value:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise QuasieqError(f"{node.label}: MaxPool's Indices output is data dependent")
    if node.attrs.get("storage_order", 0):
        raise QuasieqError(f"{node.label}: MaxPool with storage_order=1 is not supported")
    x = ctx.data(node.inputs[0])
    kernel = tuple(int(k) for k in node.attrs["kernel_shape"])
    w, taps = pooling_taps(node, x, kernel)
    groups = np.stack(taps, axis=1)
    return maximum_tree(ctx, x, groups, (x.shape[0], *w.out))


@rule("GlobalMaxPool", piecewise=True)
def global_max_pool(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    C = x.shape[0]
    P = x.size // C
    return maximum_tree(ctx, x, np.arange(x.size).reshape(C, P), (C, *[1] * (len(x.shape) - 1)))


@rule("Max", "Min", piecewise=True)
def max_min(node: Node, ctx: Context) -> Value:
    values = _data_operands(node, ctx)
    sign = 1.0 if node.op == "Max" else -1.0
    signed = stack([v if sign > 0 else -v for v in values])
    n = values[0].size
    groups = np.arange(len(values) * n).reshape(len(values), n).T
    best = maximum_tree(ctx, signed, groups, values[0].shape)
    return best if sign > 0 else -best


@rule("ReduceMax", "ReduceMin", piecewise=True)
def reduce_max(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    per = reduction_axes(node, ctx)
    if not per:
        raise QuasieqError(f"{node.label}: {node.op} over all axes would mix the samples of the batch")
    keep = [i for i in range(len(x.shape)) if i not in per]
    pos = np.transpose(np.arange(x.size).reshape(x.shape), keep + per)
    kept_shape = tuple(x.shape[i] for i in keep)
    groups = pos.reshape(math.prod(kept_shape), -1)
    sign = 1.0 if node.op == "ReduceMax" else -1.0
    shape = tuple(1 if i in per else s for i, s in enumerate(x.shape)) if node.attrs.get("keepdims", 1) else kept_shape
    best = maximum_tree(ctx, x if sign > 0 else -x, groups, shape)
    return best if sign > 0 else -best
