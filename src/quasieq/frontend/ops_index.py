"""Lowering rules of the index ops: each output entry is one input entry (or a constant).

Flatten, Reshape, Squeeze and Unsqueeze keep the flattened per-sample vector and only change its shape;
Transpose, Slice, Gather, GatherND, Concat, Split, Expand, Tile and Pad are computed by applying the op
itself to the array of flat indices 0 … size−1 and selecting those rows (Pad's constant entries get
index −1 and the pad value as their constant). None of them may select along the batch axis: the
lowered net is per sample. A Transpose may *move* it (``Value.batch_axis``), for the Gather/GatherND
and the Transpose back that exporters emit for fancy indexing; any other op refuses such a tensor.
"""

from __future__ import annotations

import math

import numpy as np

from quasieq.errors import QuasieqError
from quasieq.frontend.affine import Value, constant, stack
from quasieq.frontend.fold import BATCH
from quasieq.frontend.graph import Node
from quasieq.frontend.rules import Context, feature_axis, rule


def _positions(x: Value) -> np.ndarray:
    return np.arange(x.size).reshape(x.shape)


def _axes(node: Node, ctx: Context, position: int) -> list[int] | None:
    """Axes from input ``position`` (newer opsets) or the ``axes`` attribute (older ones)."""
    if len(node.inputs) > position and node.inputs[position]:
        return [int(a) for a in ctx.const(node.inputs[position], node.label).reshape(-1)]
    return None if "axes" not in node.attrs else [int(a) for a in node.attrs["axes"]]


def _is_batch(entry: int | str, ctx: Context) -> bool:
    """A shape entry that stands for the batch size (symbolic, or the graph's fixed batch)."""
    return entry == BATCH or (ctx.batch is not None and entry == ctx.batch)


@rule("Flatten", moved_batch=True)
def flatten(node: Node, ctx: Context) -> Value:
    """(d0 … d_{a−1}, d_a …) → (d0·…·d_{a−1}, d_a·…): the batch axis must be alone in its group (the
    other axes of that group of size 1), so each sample's entries stay in C order."""
    x = ctx.data(node.inputs[0])
    rank = len(x.shape) + 1
    axis = int(node.attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    b = x.batch_axis
    in_first = b < axis
    others = x.shape[:axis - 1] if in_first else x.shape[axis:]
    if math.prod(others) != 1:
        raise QuasieqError(f"{node.label}: Flatten axis {node.attrs.get('axis', 1)} merges the batch axis (axis {b}) "
                           "with features; only axis=1 keeps the samples apart")
    return x.reshape((x.size,), batch_axis=0 if in_first else 1)


def _split_at_batch(entries: list[int | str], j: int, size: int, ctx: Context) -> list[int] | None:
    """The per-sample shape of Reshape ``entries`` when entry ``j`` is the batch axis (a −1 among the
    others is inferred from the ``size`` features per sample); None when j cannot be the batch axis."""
    entry = entries[j]
    if not (_is_batch(entry, ctx) or entry == -1):
        return None
    rest = entries[:j] + entries[j + 1:]
    if any(r == BATCH for r in rest) or rest.count(-1) > (0 if entry == -1 else 1):
        return None
    known = math.prod(int(r) for r in rest if r != -1)
    if -1 in rest:
        if known == 0 or size % known:
            return None
        rest[rest.index(-1)] = size // known
    return [int(r) for r in rest]


@rule("Reshape", moved_batch=True)
def reshape(node: Node, ctx: Context) -> Value:
    """A reshape of the full tensor (…a, N, b…) → (…c, N, d…) in C order keeps each sample's entries
    in order exactly when Π a = Π c and Π b = Π d: the per-sample vector is unchanged, only its shape
    and the position of the batch axis change."""
    x = ctx.data(node.inputs[0])
    target = ctx.shape_entries(node.inputs[1], node.label)
    allowzero = bool(node.attrs.get("allowzero", 0))
    b = x.batch_axis
    full: list[int | str] = [*x.shape[:b], BATCH, *x.shape[b:]]
    entries = [full[i] if r == 0 and not allowzero and i < len(full) else r for i, r in enumerate(target)]
    before = math.prod(x.shape[:b])
    for j in range(len(entries)):
        shape = _split_at_batch(entries, j, x.size, ctx)
        if shape is not None and math.prod(shape[:j]) == before and math.prod(shape) == x.size:
            return x.reshape(shape, batch_axis=j)
    raise QuasieqError(f"{node.label}: Reshape to {target} does not keep the {x.size} features of each sample "
                       "apart from the batch axis")


@rule("Squeeze")
def squeeze(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    rank = len(x.shape) + 1
    axes = _axes(node, ctx, 1)
    if axes is None:
        per = [i for i, s in enumerate(x.shape) if s == 1]
    else:
        per = [feature_axis(a, rank, node.label) for a in axes]
        if any(x.shape[a] != 1 for a in per):
            raise QuasieqError(f"{node.label}: Squeeze of axes {axes} that are not of size 1 in (N, {x.shape})")
    return x.reshape(tuple(s for i, s in enumerate(x.shape) if i not in per))


@rule("Unsqueeze")
def unsqueeze(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    axes = _axes(node, ctx, 1) or []
    rank = len(x.shape) + 1 + len(axes)
    per = sorted(feature_axis(a, rank, node.label) for a in axes)
    shape = list(x.shape)
    for a in per:
        shape.insert(a, 1)
    return x.reshape(tuple(shape))


@rule("Transpose", moved_batch=True)
def transpose(node: Node, ctx: Context) -> Value:
    """Any permutation: one that moves the batch axis records where it went (``Value.batch_axis``)."""
    x = ctx.data(node.inputs[0])
    rank = len(x.shape) + 1
    perm = [int(p) for p in node.attrs.get("perm", list(range(rank))[::-1])]
    if sorted(perm) != list(range(rank)):
        raise QuasieqError(f"{node.label}: Transpose perm {perm} is not a permutation of the {rank} axes")
    per_sample = [p if p < x.batch_axis else p - 1 for p in perm if p != x.batch_axis]
    return x.rows(np.transpose(_positions(x), per_sample), batch_axis=perm.index(x.batch_axis))


def _feature_constant(k: np.ndarray, rank: int, node: Node) -> np.ndarray:
    """A constant operand of a batched op with its batch axis (of size 1) removed."""
    if k.ndim != rank or k.shape[0] != 1:
        raise QuasieqError(f"{node.label}: constant operand of shape {k.shape} does not have a batch axis of size 1")
    return k[0]


@rule("Concat")
def concat(node: Node, ctx: Context) -> Value:
    data = [ctx.data(t) for t in node.inputs if t and ctx.is_data(t)]
    rank = len(data[0].shape) + 1
    axis = feature_axis(int(node.attrs["axis"]), rank, node.label)
    values = [ctx.data(t) if ctx.is_data(t) else
              constant(data[0], _feature_constant(ctx.const(t, node.label), rank, node))
              for t in node.inputs if t]
    shapes = [v.shape for v in values]
    if any(len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
           for s in shapes):
        raise QuasieqError(f"{node.label}: shapes {shapes} do not concatenate along axis {axis + 1}")
    offsets = np.cumsum([0] + [v.size for v in values])
    blocks = [np.arange(v.size).reshape(v.shape) + off for v, off in zip(values, offsets[:-1], strict=True)]
    order = np.concatenate(blocks, axis=axis)
    return stack(values).rows(order)


@rule("Split")
def split(node: Node, ctx: Context) -> list[Value]:
    x = ctx.data(node.inputs[0])
    axis = feature_axis(int(node.attrs.get("axis", 0)), len(x.shape) + 1, node.label)
    if len(node.inputs) > 1 and node.inputs[1]:
        sizes = [int(s) for s in ctx.const(node.inputs[1], node.label).reshape(-1)]
    elif "split" in node.attrs:
        sizes = [int(s) for s in node.attrs["split"]]
    else:
        parts = len(node.outputs)
        step = -(-x.shape[axis] // parts)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(parts)]
    bounds = np.cumsum([0] + sizes)
    if bounds[-1] != x.shape[axis]:
        raise QuasieqError(f"{node.label}: split sizes {sizes} do not add up to {x.shape[axis]}")
    pos = _positions(x)
    return [x.rows(np.take(pos, np.arange(a, b), axis=axis)) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


@rule("Slice")
def slice_(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    rank = len(x.shape) + 1
    if len(node.inputs) > 1:
        starts, ends = (ctx.const(t, node.label).reshape(-1) for t in node.inputs[1:3])
        axes = _axes(node, ctx, 3)
        steps = ctx.optional_const(node.inputs[4] if len(node.inputs) > 4 else "", node.label)
    else:
        starts, ends = np.asarray(node.attrs["starts"]), np.asarray(node.attrs["ends"])
        axes, steps = node.attrs.get("axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = np.ones(len(starts), dtype=np.int64) if steps is None else steps.reshape(-1)
    index: list[slice] = [slice(None)] * len(x.shape)
    for a, s, e, st in zip(axes, starts, ends, steps, strict=False):
        a = a + rank if a < 0 else a
        if a == 0:
            if int(s) == 0 and int(st) == 1 and int(e) >= (ctx.batch or 2**62):
                continue
            raise QuasieqError(f"{node.label}: Slice along the batch axis selects samples; the lowered net is "
                               "per sample")
        big = np.iinfo(np.int64).max // 2
        index[a - 1] = slice(int(np.clip(s, -big, big)), int(np.clip(e, -big, big)), int(st))
    return x.rows(_positions(x)[tuple(index)])


def _constant_indices(node: Node, ctx: Context) -> np.ndarray:
    if not ctx.is_data(node.inputs[0]) or ctx.is_data(node.inputs[1]):
        raise QuasieqError(f"{node.label}: {node.op} with data-dependent indices has a data-dependent result")
    return ctx.const(node.inputs[1], node.label).astype(np.int64)


def _check_range(idx: np.ndarray, n: int, node: Node) -> None:
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise QuasieqError(f"{node.label}: {node.op} index out of range for {n} entries")


@rule("Gather", moved_batch=True)
def gather(node: Node, ctx: Context) -> Value:
    """y = take(x, idx, axis): the axis's entries replaced by idx's shape (batch axis shifted past it)."""
    idx = _constant_indices(node, ctx)
    x = ctx.data(node.inputs[0])
    rank = len(x.shape) + 1
    axis = feature_axis(int(node.attrs.get("axis", 0)), rank, node.label, x.batch_axis)
    _check_range(idx, x.shape[axis], node)
    batch_axis = x.batch_axis if x.batch_axis <= axis else x.batch_axis + idx.ndim - 1
    return x.rows(np.take(_positions(x), idx, axis=axis), batch_axis=batch_axis)


@rule("GatherND", moved_batch=True)
def gather_nd(node: Node, ctx: Context) -> Value:
    """batch_dims = 0: y[i…] = x[idx[i…, 0], …, idx[i…, k−1], :…], the first k axes indexed together.

    The exporters' fancy indexing ``x[:, [0, 2]]``: the batch axis is first moved behind the indexed
    axes by a Transpose, so here it must lie after the first k axes."""
    idx = _constant_indices(node, ctx)
    x = ctx.data(node.inputs[0])
    if int(node.attrs.get("batch_dims", 0)) != 0:
        raise QuasieqError(f"{node.label}: GatherND with batch_dims={node.attrs['batch_dims']}; quasieq lowers "
                           "batch_dims=0 (the indices would have to hold the batch size)")
    k = int(idx.shape[-1]) if idx.ndim else 0
    if idx.ndim == 0 or k > x.batch_axis:
        raise QuasieqError(f"{node.label}: GatherND indexes the batch axis (axis {x.batch_axis} among its first {k}); "
                           "it selects samples, and the lowered net is per sample")
    for j in range(k):
        _check_range(idx[..., j], x.shape[j], node)
    positions = _positions(x)[tuple(idx[..., j] for j in range(k))]
    return x.rows(positions, batch_axis=x.batch_axis - k + idx.ndim - 1)


@rule("Pad")
def pad(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    rank = len(x.shape) + 1
    mode = node.attrs.get("mode", "constant")
    if len(node.inputs) > 1 and node.inputs[1]:
        pads = [int(p) for p in ctx.const(node.inputs[1], node.label).reshape(-1)]
        value = ctx.optional_const(node.inputs[2] if len(node.inputs) > 2 else "", node.label)
        fill = 0.0 if value is None else float(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size else 0.0
        axes = _axes(node, ctx, 3)
    else:
        pads, fill, axes = [int(p) for p in node.attrs["pads"]], float(node.attrs.get("value", 0.0)), None
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    widths = [[0, 0] for _ in range(rank)]
    for k, a in enumerate(axes):
        widths[a] = [pads[k], pads[k + len(axes)]]
    if widths[0] != [0, 0]:
        raise QuasieqError(f"{node.label}: Pad along the batch axis adds samples")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise QuasieqError(f"{node.label}: Pad mode '{mode}' is not supported")
    pos = _positions(x)
    crop = tuple(slice(max(0, -lo), s - max(0, -hi)) for (lo, hi), s in zip(widths[1:], x.shape, strict=False))
    grow = [(max(0, lo), max(0, hi)) for lo, hi in widths[1:]]
    pos = pos[crop]
    if mode == "constant":
        padded = np.pad(pos, grow, mode="constant", constant_values=-1)
        return x.rows(padded, np.full(padded.size, fill))
    return x.rows(np.pad(pos, grow, mode=mode))


def _target_per_sample(target: list[int | str], rank: int, ctx: Context, node: Node) -> tuple[int, ...]:
    if len(target) > rank:
        raise QuasieqError(f"{node.label}: target shape {target} has more axes than the data; it would move the batch")
    full = [1] * (rank - len(target)) + list(target)
    if not (full[0] == 1 or _is_batch(full[0], ctx)):
        raise QuasieqError(f"{node.label}: target shape {target} changes the batch axis")
    return tuple(int(t) for t in full[1:])


@rule("Expand")
def expand(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    target = _target_per_sample(ctx.shape_entries(node.inputs[1], node.label), len(x.shape) + 1, ctx, node)
    try:
        shape = np.broadcast_shapes(x.shape, target)
    except ValueError:
        raise QuasieqError(f"{node.label}: (N, {x.shape}) does not expand to {target}") from None
    return x.rows(np.broadcast_to(_positions(x), shape))


@rule("Tile")
def tile(node: Node, ctx: Context) -> Value:
    x = ctx.data(node.inputs[0])
    repeats = [int(r) for r in ctx.const(node.inputs[1], node.label).reshape(-1)]
    if len(repeats) != len(x.shape) + 1 or repeats[0] != 1:
        raise QuasieqError(f"{node.label}: Tile repeats {repeats} repeat the batch axis")
    return x.rows(np.tile(_positions(x), repeats[1:]))
