"""The lowering compiler, op by op, against ONNX Runtime and torch on random inputs of several batch sizes.

Every op that torch expresses is a small torch model, taken in three ways: exported to a file by
torch's default exporter (``dynamo=True``) and by the legacy one (``dynamo=False``), both with a dynamic
batch axis and checked against ONNX Runtime on that file and against the module, and through
``qe.from_torch`` (checked against the module). Every ONNX op is also built directly with onnx.helper
(checked against ONNX Runtime). A few composite models hold many ops in one graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import quasieq as qe
from quasieq.frontend import lower_onnx_file, lower_onnx_model, lower_torch, ops_affine
from quasieq.frontend.check import rounding_scale

BATCHES = (1, 4, 7)  # the exported files are traced at batch 2, from_torch at batch 1


# ----- evaluators -----------------------------------------------------------------------------------
def ort_run(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0].astype(np.float64)


def torch_run(module: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.tensor(X, dtype=torch.float32)).double().numpy()


def assert_close(net: qe.ReluNet, X: np.ndarray, expected: np.ndarray, task: str = "regression") -> None:
    """Our float64 forward pass equals the float32 reference to float32 rounding of the summed terms
    (for ``task="classification"`` the reference ends in a Softmax that the lowering dropped: ours is
    compared after a softmax, which is 1-Lipschitz in the max norm, so the same bound holds)."""
    flat = X.astype(np.float64).reshape(len(X), -1)
    ours = net.forward(flat)
    if task == "classification":
        ours = np.exp(ours - ours.max(axis=1, keepdims=True))
        ours /= ours.sum(axis=1, keepdims=True)
    scale = max(1.0, float(rounding_scale(net, flat).max()))
    assert ours.shape == expected.reshape(len(X), -1).shape
    assert np.abs(ours - expected.reshape(ours.shape)).max() <= 1e-5 * scale


def random_inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + n).standard_normal((n, *shape)).astype(np.float32)


#: torch's two ONNX exporters: the default one (``dynamo=True``, torch.export) and the legacy TorchScript one.
EXPORTERS = ("default", "dynamo=False")


def export(module: nn.Module, example: torch.Tensor, path: Path, exporter: str) -> None:
    """``torch.onnx.export`` by ``exporter``, with a dynamic batch axis (the file runs any batch size)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "default":
            torch.onnx.export(module, (example,), str(path), input_names=["x"], output_names=["y"], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("N")},))
        else:
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and PReLU slopes (fresh ones are the identity / 0.25)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))
            if isinstance(m, nn.PReLU):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
    return module.eval()


# ----- torch models, one per op -------------------------------------------------------------------
class Lambda(nn.Module):
    """A custom forward around a few layers: ``fn(self, x)``."""

    def __init__(self, fn, *layers: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        return self.fn(self, x)


class TorchCase(NamedTuple):
    """One op in a small torch model: ``factory()`` builds it for per-sample inputs of ``shape``."""

    name: str
    factory: Callable[[], nn.Module]
    shape: tuple[int, ...]
    task: str = "regression"


IDX = torch.tensor([2, 1])


def torch_cases() -> list[TorchCase]:
    L = nn.Linear
    C = TorchCase
    return [
        C("linear", lambda: nn.Sequential(L(3, 5), nn.ReLU(), L(5, 2)), (3,)),
        C("linear-no-bias", lambda: nn.Sequential(L(3, 5, bias=False), nn.ReLU(), L(5, 2, bias=False)), (3,)),
        C("matmul", lambda: Lambda(lambda s, x: F.relu(x @ s.layers[0].weight.T) @ s.layers[1].weight.T, L(3, 4),
                                   L(4, 2)), (2, 3)),
        C("conv1d", lambda: nn.Sequential(nn.Conv1d(1, 3, 2, stride=2, padding=1), nn.ReLU(), nn.Flatten(), L(9, 2)),
          (1, 4)),
        C("conv2d-stride-groups-dilation", lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=(2, 1), padding=2, dilation=2, groups=2), nn.ReLU(), nn.Flatten(),
            L(4 * 3 * 5, 1)), (2, 5, 5)),
        C("batchnorm2d", lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                                               L(8, 1)), (1, 4, 4)),
        C("batchnorm1d-anywhere", lambda: nn.Sequential(nn.BatchNorm1d(3), L(3, 4), nn.ReLU(), nn.BatchNorm1d(4),
                                                        L(4, 2), nn.BatchNorm1d(2)), (3,)),
        C("avgpool", lambda: nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True), nn.Flatten(),
                                           L(9, 2)), (1, 5, 5)),
        C("avgpool-exclude-pad", lambda: nn.Sequential(nn.AvgPool2d(2, padding=1, count_include_pad=False),
                                                       nn.Flatten(), L(9, 2)), (1, 5, 5)),
        C("adaptive-avgpool", lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.AdaptiveAvgPool2d(2),
                                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), L(2, 1)), (1, 4, 4)),
        C("maxpool2d", lambda: nn.Sequential(nn.Conv2d(1, 2, 2), nn.MaxPool2d(2, stride=1, padding=1), nn.Flatten(),
                                             L(18, 1)), (1, 3, 3)),
        C("maxpool1d-ceil", lambda: nn.Sequential(nn.MaxPool1d(3, stride=2, ceil_mode=True), nn.Flatten(), L(3, 1)),
          (1, 6)),
        C("leaky-relu", lambda: nn.Sequential(L(3, 4), nn.LeakyReLU(0.2), L(4, 1)), (3,)),
        C("prelu", lambda: nn.Sequential(L(3, 4), nn.PReLU(4), L(4, 1)), (3,)),
        C("relu6", lambda: nn.Sequential(L(3, 4), nn.ReLU6(), L(4, 1)), (3,)),
        C("hardtanh", lambda: nn.Sequential(L(3, 4), nn.Hardtanh(-0.3, 0.5), L(4, 1)), (3,)),
        C("clamp", lambda: Lambda(lambda s, x: s.layers[1](torch.cat([s.layers[0](x).clamp(-0.3, 0.5),
                                                                      x.clamp(min=0.1), x.clamp(max=-0.2)], dim=1)),
                                  L(3, 4), L(10, 1)), (3,)),
        C("hardsigmoid", lambda: nn.Sequential(L(3, 4), nn.Hardsigmoid(), L(4, 1)), (3,)),
        C("abs", lambda: Lambda(lambda s, x: s.layers[1](s.layers[0](x).abs()), L(3, 4), L(4, 1)), (3,)),
        C("residual", lambda: Lambda(lambda s, x: s.layers[2](F.relu(x + s.layers[1](F.relu(s.layers[0](x)))))
                                     - x[:, :1], L(3, 4), L(4, 3), L(3, 1)), (3,)),
        C("concat", lambda: Lambda(lambda s, x: s.layers[1](torch.cat([F.relu(s.layers[0](x)), x], dim=1)),
                                   L(3, 4), L(7, 2)), (3,)),
        C("view-permute-transpose", lambda: Lambda(lambda s, x: s.layers[0](
            F.relu(x).permute(0, 3, 1, 2).transpose(1, 3).reshape(x.shape[0], -1)), L(12, 2)), (2, 3, 2)),
        C("squeeze-unsqueeze", lambda: Lambda(lambda s, x: s.layers[0](x.unsqueeze(1)).squeeze(1), L(3, 2)), (3,)),
        C("slice-gather-pad", lambda: Lambda(lambda s, x: s.layers[0](
            F.pad(F.relu(x[:, 1:4]), (1, 2), value=0.5)[:, [0, 2, 5]]), L(3, 1)), (5,)),
        C("index-3d", lambda: Lambda(lambda s, x: s.layers[0](torch.cat(
            [F.relu(x[:, :, [3, 0]]).flatten(1), x[:, [0, 2], [1, 3]], x[:, 1], torch.index_select(x, 2, IDX)[:, 0]],
            dim=1)), L(14, 1)), (3, 4)),
        C("arith-constants", lambda: Lambda(lambda s, x: s.layers[0](
            (-(x - 0.5) * torch.tensor([2.0, -1.0, 3.0])) / 4.0), L(3, 2)), (3,)),
        C("maximum-minimum", lambda: Lambda(lambda s, x: torch.maximum(s.layers[0](x), s.layers[1](x))
                                            - torch.minimum(x[:, :2], s.layers[1](x)), L(3, 2), L(3, 2)), (3,)),
        C("dropout-eval", lambda: nn.Sequential(nn.Dropout1d(0.3), nn.Flatten(), L(3, 4), nn.Dropout(0.5), nn.ReLU(),
                                                L(4, 2)), (1, 3)),
        C("trailing-softmax", lambda: nn.Sequential(L(3, 4), nn.ReLU(), L(4, 3), nn.Softmax(dim=1)), (3,),
          "classification"),
    ]


#: The three ways in: a file from either exporter (checked against ONNX Runtime and torch), and qe.from_torch.
ROUTES = (*EXPORTERS, "from_torch")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", torch_cases(), ids=[c.name for c in torch_cases()])
def test_torch_op_lowers_exactly(tmp_path, case, route):
    """Files are traced at batch 2; from_torch at batch 1; every route is then run at batches 1, 4 and 7."""
    torch.manual_seed(0)
    module = randomise(case.factory())
    path = tmp_path / f"{case.name}.onnx"
    if route == "from_torch":
        net = lower_torch(module, torch.zeros(1, *case.shape), case.task).net
    else:
        export(module, torch.zeros(2, *case.shape), path, route)
        net = qe.load(path, case.task)
    for n in BATCHES:
        X = random_inputs(case.shape, n)
        assert_close(net, X, torch_run(module, X), case.task)
        if route != "from_torch":
            assert_close(net, X, ort_run(path, X), case.task)


class Composite(nn.Module):
    """Conv1d, BatchNorm1d, LeakyReLU, MaxPool1d, AvgPool1d, residual, cat, view, Hardtanh, ReLU6, abs, PReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 2, padding=1)
        self.bn = nn.BatchNorm1d(2)
        self.pool = nn.MaxPool1d(2)
        self.avg = nn.AvgPool1d(2, count_include_pad=False, padding=1)
        self.fc = nn.Linear(7, 7)
        self.prelu = nn.PReLU()
        self.head = nn.Linear(14, 2)

    def forward(self, x):
        h = self.pool(F.leaky_relu(self.bn(self.conv(x.view(x.shape[0], 1, 4))), 0.1))
        h = torch.cat([h.flatten(1), self.avg(x.view(-1, 1, 4)).reshape(x.shape[0], 3)], dim=1)
        h = h + F.relu6(self.fc(h))
        return self.head(torch.cat([F.hardtanh(h, -0.5, 0.5), self.prelu(h).abs()], dim=1))


class CompositeIndexing(nn.Module):
    """Dilated Conv2d, AvgPool2d(count_include_pad), permute, slicing, fancy indexing, F.pad,
    unsqueeze/squeeze, arithmetic with constants, Hardsigmoid, torch.maximum/minimum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, dilation=2, padding=1)
        self.pool = nn.AvgPool2d(2, padding=1, count_include_pad=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        h = self.pool(self.conv(x)).permute(0, 2, 3, 1).reshape(x.shape[0], -1)[:, 1:9][:, [0, 2, 3, 5, 6, 7]]
        h = F.pad(h, (1, 1), value=0.25)[:, 1:7].unsqueeze(1).squeeze(1)
        g = F.hardsigmoid((h - 0.5) * 2.0 / 3.0)
        return torch.maximum(self.fc(g), -self.fc(h)) - torch.minimum(h[:, :3], g[:, 3:])


def composite_cases() -> list[TorchCase]:
    return [
        TorchCase("composite-1d", Composite, (4,)),
        TorchCase("cnn-2d", lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 2, groups=2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)), (1, 6, 6)),
        TorchCase("composite-indexing", CompositeIndexing, (1, 4, 4)),
    ]


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("case", composite_cases(), ids=[c.name for c in composite_cases()])
def test_composite_model_lowers_exactly(tmp_path, case, exporter):
    """Many ops in one graph (merged affine runs, carried skips) from both exporters, at batches 1, 4, 7."""
    torch.manual_seed(1)
    module = randomise(case.factory())
    path = tmp_path / f"{case.name}.onnx"
    export(module, torch.zeros(2, *case.shape), path, exporter)
    net = qe.load(path)
    for n in BATCHES:
        X = random_inputs(case.shape, n)
        assert_close(net, X, torch_run(module, X))
        assert_close(net, X, ort_run(path, X))


# ----- hand-built ONNX, one per op ----------------------------------------------------------------
def tensor(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def onnx_file(tmp_path: Path, nodes, in_shape, inits, opset: int = 17, batch="N") -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *in_shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


N = helper.make_node
I64 = np.int64


def onnx_cases():
    """(id, nodes, per-sample input shape, initializers, opset)."""
    return [
        ("gemm-attrs", [N("Gemm", ["x", "B", "C"], ["y"], alpha=0.7, beta=-1.3, transB=1)], (3,),
         [tensor("B", f32(4, 3)), tensor("C", f32(4))], 17),
        ("gemm-no-trans-scalar-c", [N("Gemm", ["x", "B", "C"], ["y"])], (3,), [tensor("B", f32(3, 2)),
                                                                                 tensor("C", np.float32(0.5))], 17),
        ("matmul-add", [N("MatMul", ["x", "B"], ["h"]), N("Add", ["c", "h"], ["y"])], (2, 3),
         [tensor("B", f32(3, 4)), tensor("c", f32(1, 4))], 17),
        ("const-matmul", [N("MatMul", ["A", "x"], ["y"])], (3, 2), [tensor("A", f32(4, 3))], 17),
        ("sub-mul-div-neg", [N("Sub", ["k", "x"], ["a"]), N("Mul", ["a", "m"], ["b"]), N("Div", ["b", "d"], ["c"]),
                             N("Neg", ["c"], ["y"])], (2, 3),
         [tensor("k", f32(3)), tensor("m", f32(2, 1)), tensor("d", np.float32([2.0, -4.0, 0.5]))], 17),
        ("broadcast-expands", [N("Add", ["x", "k"], ["y"])], (2, 1), [tensor("k", f32(2, 3))], 17),
        ("add-sub-data", [N("Relu", ["x"], ["r"]), N("Sub", ["x", "r"], ["s"]), N("Add", ["s", "x"], ["y"])], (4,),
         [], 17),
        ("conv1d-auto-pad-same-lower", [N("Conv", ["x", "W", "b"], ["y"], auto_pad="SAME_LOWER", strides=[2])],
         (2, 7), [tensor("W", f32(3, 2, 4)), tensor("b", f32(3))], 17),
        ("conv2d-same-upper", [N("Conv", ["x", "W"], ["y"], auto_pad="SAME_UPPER", strides=[2, 1])], (1, 5, 4),
         [tensor("W", f32(2, 1, 2, 3))], 17),
        ("conv2d-valid-groups", [N("Conv", ["x", "W"], ["y"], auto_pad="VALID", group=2, dilations=[1, 2])],
         (4, 4, 5), [tensor("W", f32(2, 2, 2, 2))], 17),
        ("conv2d-pads", [N("Conv", ["x", "W", "b"], ["y"], pads=[1, 0, 2, 1], strides=[2, 2])], (1, 4, 4),
         [tensor("W", f32(2, 1, 3, 3)), tensor("b", f32(2))], 17),
        ("batchnorm", [N("Relu", ["x"], ["r"]), N("BatchNormalization", ["r", "g", "b", "m", "v"], ["y"],
                                                 epsilon=1e-3)], (2, 3),
         [tensor("g", f32(2)), tensor("b", f32(2)), tensor("m", f32(2)), tensor("v", np.abs(f32(2)) + 0.5)], 17),
        ("averagepool-include-pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], pads=[1, 1, 1, 0],
                                       strides=[2, 1], count_include_pad=1)], (2, 5, 4), [], 17),
        ("global-average-pool", [N("GlobalAveragePool", ["x"], ["y"])], (3, 2, 2), [], 17),
        ("maxpool-pads-dilation", [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], pads=[1, 1, 0, 1],
                                     dilations=[1, 2], strides=[1, 2])], (2, 4, 5), [], 17),
        ("maxpool-auto-pad", [N("MaxPool", ["x"], ["y"], kernel_shape=[3], auto_pad="SAME_UPPER", strides=[2])],
         (1, 7), [], 17),
        ("global-max-pool", [N("GlobalMaxPool", ["x"], ["y"])], (2, 5), [], 17),
        ("relu-leaky", [N("LeakyRelu", ["x"], ["y"], alpha=0.3)], (5,), [], 17),
        ("prelu-per-channel", [N("PRelu", ["x", "s"], ["y"])], (3, 2), [tensor("s", f32(3, 1))], 17),
        ("clip-inputs", [N("Clip", ["x", "lo", "hi"], ["y"])], (4,), [tensor("lo", np.float32(-0.2)),
                                                                      tensor("hi", np.float32(0.6))], 17),
        ("clip-max-only", [N("Clip", ["x", "", "hi"], ["y"])], (4,), [tensor("hi", np.float32(0.1))], 17),
        ("clip-attrs-opset6", [N("Clip", ["x"], ["y"], min=-0.5, max=0.25)], (4,), [], 6),
        ("abs", [N("Abs", ["x"], ["y"])], (4,), [], 17),
        ("flatten-reshape-subgraph", [
            N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["n"], axis=0), N("Unsqueeze", ["n", "ax"], ["n1"]),
            N("Concat", ["n1", "minus1"], ["target"], axis=0), N("Relu", ["x"], ["r"]),
            N("Reshape", ["r", "target"], ["f"]), N("Flatten", ["f"], ["y"], axis=1)], (2, 3),
         [tensor("zero", np.array(0, I64)), tensor("ax", np.array([0], I64)),
          tensor("minus1", np.array([-1], I64))], 17),
        ("transpose-squeeze-unsqueeze", [N("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
                                         N("Unsqueeze", ["t", "a1"], ["u"]), N("Squeeze", ["u", "a1"], ["y"])],
         (2, 3), [tensor("a1", np.array([1], I64))], 17),
        ("squeeze-attrs-opset11", [N("Unsqueeze", ["x"], ["u"], axes=[2]), N("Squeeze", ["u"], ["y"], axes=[2])],
         (3,), [], 11),
        ("concat", [N("Relu", ["x"], ["r"]), N("Concat", ["r", "x", "r"], ["y"], axis=-1)], (2, 2), [], 17),
        ("slice-steps", [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], (4, 6),
         [tensor("st", np.array([3, 0], I64)), tensor("en", np.array([0, 100], I64)),
          tensor("ax", np.array([1, 2], I64)), tensor("sp", np.array([-1, 2], I64))], 17),
        ("gathernd-batch-moved", [N("Transpose", ["x"], ["t"], perm=[1, 2, 0]), N("GatherND", ["t", "i"], ["g"]),
                                  N("Transpose", ["g"], ["y"], perm=[1, 0])], (2, 3),
         [tensor("i", np.array([[0, 1], [1, -1], [1, 0]], I64))], 17),
        ("flatten-reshape-batch-moved", [
            N("Transpose", ["x"], ["t"], perm=[1, 2, 0]), N("Flatten", ["t"], ["f"], axis=2),
            N("Gather", ["f", "i"], ["g"], axis=0), N("Reshape", ["g", "s"], ["r"]),
            N("Transpose", ["r"], ["u"], perm=[1, 0]), N("Reshape", ["u", "s2"], ["y"])], (2, 3),
         [tensor("i", np.array([4, 1, 5], I64)), tensor("s", np.array([3, -1], I64)),
          tensor("s2", np.array([0, 3, 1], I64))], 17),
        ("gather-negative", [N("Gather", ["x", "i"], ["y"], axis=2)], (2, 4),
         [tensor("i", np.array([[3, -1], [0, 1]], I64))], 17),
        ("pad-constant-reflect", [N("Pad", ["x", "p", "v"], ["a"]), N("Pad", ["a", "p2"], ["y"], mode="reflect")],
         (1, 4), [tensor("p", np.array([0, 0, 1, 0, 0, 2], I64)), tensor("v", np.float32(0.7)),
                  tensor("p2", np.array([0, 0, 2, 0, 0, 1], I64))], 17),
        ("identity-dropout-constant-cast", [
            N("Constant", [], ["c"], value=tensor("cv", np.array([1.5, -2.0, 0.5], np.float64))),
            N("Cast", ["c"], ["c32"], to=TensorProto.FLOAT), N("Identity", ["x"], ["i"]),
            N("Dropout", ["i"], ["d"]), N("Mul", ["d", "c32"], ["y"])], (3,), [], 17),
        ("constant-of-shape", [N("ConstantOfShape", ["shp"], ["z"], value=tensor("v", np.array([0.25], np.float32))),
                               N("Add", ["x", "z"], ["y"])], (3,), [tensor("shp", np.array([3], I64))], 17),
        ("max-min-data", [N("Relu", ["x"], ["r"]), N("Max", ["x", "r", "k"], ["m"]), N("Min", ["m", "x"], ["y"])],
         (3,), [tensor("k", f32(3))], 17),
        ("reduce-sum-mean-max", [N("ReduceSum", ["x", "a"], ["s"], keepdims=1), N("ReduceMax", ["x"], ["m"], axes=[2]),
                                 N("ReduceMean", ["x"], ["e"], axes=[1], keepdims=0),
                                 N("Concat", ["s", "m"], ["c"], axis=2), N("Flatten", ["c"], ["f"]),
                                 N("Concat", ["f", "e"], ["y"], axis=1)], (2, 3),
         [tensor("a", np.array([2], I64))], 17),
        ("sum-mean-reduce-min-hardsigmoid", [
            N("Relu", ["x"], ["r"]), N("Sum", ["x", "r", "k"], ["s"]), N("Mean", ["s", "x"], ["m"]),
            N("ReduceMin", ["m"], ["n"], axes=[2], keepdims=1), N("HardSigmoid", ["x"], ["h"], alpha=0.4, beta=0.3),
            N("Concat", ["n", "h"], ["y"], axis=2)], (2, 3), [tensor("k", f32(3))], 17),
        ("split-expand-tile", [N("Split", ["x", "sz"], ["a", "b"], axis=1), N("Expand", ["a", "shp"], ["e"]),
                               N("Tile", ["b", "rep"], ["t"]), N("Concat", ["e", "t"], ["y"], axis=2)], (3, 2),
         [tensor("sz", np.array([1, 2], I64)), tensor("shp", np.array([1, 2, 2], I64)),
          tensor("rep", np.array([1, 1, 2], I64))], 17),
    ]


@pytest.mark.parametrize("name, nodes, shape, inits, opset", onnx_cases(), ids=[c[0] for c in onnx_cases()])
def test_onnx_op_lowers_exactly(tmp_path, name, nodes, shape, inits, opset):
    path = onnx_file(tmp_path, nodes, shape, inits, opset)
    net = qe.load(path)
    assert net.in_dim == int(np.prod(shape))
    for n in BATCHES:
        X = random_inputs(shape, n)
        assert_close(net, X, ort_run(path, X))


def test_fixed_batch_graph_is_per_sample(tmp_path):
    """A graph traced at batch 3 (Reshape target [3, -1] and input (3, 2, 2)) is lowered per sample."""
    nodes = [N("Relu", ["x"], ["r"]), N("Reshape", ["r", "t"], ["f"]), N("Gemm", ["f", "W"], ["y"], transB=1)]
    path = onnx_file(tmp_path, nodes, (2, 2), [tensor("t", np.array([3, -1], I64)), tensor("W", f32(2, 4))], batch=3)
    net = qe.load(path)
    X = random_inputs((2, 2), 3)
    assert_close(net, X, ort_run(path, X))
    assert net.forward(X.reshape(3, 4)[:1].astype(np.float64)).shape == (1, 2)


def test_concat_with_a_constant_in_a_batch_one_graph(tmp_path):
    nodes = [N("Relu", ["x"], ["r"]), N("Concat", ["r", "k", "x"], ["y"], axis=-1)]
    path = onnx_file(tmp_path, nodes, (2, 2), [tensor("k", f32(1, 2, 3))], batch=1)
    X = random_inputs((2, 2), 1)
    assert_close(qe.load(path), X, ort_run(path, X))


# ----- structure of the lowering ------------------------------------------------------------------
def test_affine_runs_merge_and_units_are_counted(tmp_path):
    """Conv → BN → Gemm is one affine map; LeakyRelu gives ReLU and pass-through units; the census says so."""
    torch.manual_seed(2)
    module = randomise(nn.Sequential(nn.Conv1d(1, 2, 2), nn.BatchNorm1d(2), nn.Flatten(), nn.Linear(6, 3),
                                     nn.LeakyReLU(0.1), nn.Linear(3, 1)))
    lowered = lower_torch(module, torch.zeros(1, 1, 4))
    net = lowered.net
    assert net.widths == (6,) and net.relu_widths == (3,) and net.linear_units == 3
    rows = {r[0]: r for r in lowered.census.rows()}
    assert rows["LeakyRelu"][2:] == ("1", "3", "3") and rows["Conv"][2:] == ("0", "0", "0")
    assert lowered.input_shape == (1, 4)


def test_relu_after_relu_adds_no_layer():
    module = nn.Sequential(nn.Linear(3, 7), nn.Linear(7, 5), nn.ReLU(), nn.ReLU(), nn.Linear(5, 2))
    assert qe.from_torch(module.eval(), torch.zeros(1, 3)).widths == (5,)


def test_residual_skip_is_carried_through_pass_through_units():
    torch.manual_seed(3)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Linear(4, 6), nn.Linear(6, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.head(F.relu(x + self.b(F.relu(self.a(x)))))

    lowered = lower_torch(Block().eval(), torch.zeros(1, 4))
    assert lowered.net.relu_widths == (6, 4) and lowered.net.widths == (10, 4)  # x rides along layer 1
    assert lowered.census.carried_units == 4


def test_convolution_on_an_image_stays_sparse():
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 32 * 32, 2)).eval()
    net = qe.from_torch(module, torch.zeros(1, 3, 32, 32))
    assert sp.issparse(net.weights[0]) and net.weights[0].shape == (8192, 3072)
    assert net.weights[0].nnz <= 8 * 1024 * 27


# ----- refusals: one line naming the node, its op and why ------------------------------------------
@pytest.mark.parametrize("nodes, inits, pattern", [
    ([N("Sigmoid", ["x"], ["y"], name="act")], [], r"^node 0 \(Sigmoid 'act'\): Sigmoid is not piecewise linear"),
    ([N("Relu", ["x"], ["r"], name="r"), N("Tanh", ["r"], ["y"], name="t")], [],
     r"^node 1 \(Tanh 't'\): Tanh is not piecewise linear"),
    ([N("Exp", ["x"], ["y"], name="e")], [], r"^node 0 \(Exp 'e'\): Exp is not piecewise linear"),
    ([N("NonZero", ["x"], ["y"], name="nz")], [], r"^node 0 \(NonZero 'nz'\): NonZero has a data-dependent shape"),
    ([N("Mul", ["x", "x"], ["y"], name="sq")], [], r"^node 0 \(Mul 'sq'\): Mul of two data tensors is not piecewise"),
    ([N("Reshape", ["x", "t"], ["y"], name="rs")], [tensor("t", np.array([-1], I64))],
     r"^node 0 \(Reshape 'rs'\): Reshape to \[-1\] does not keep"),
    ([N("Concat", ["x", "x"], ["y"], name="cat", axis=0)], [], r"^node 0 \(Concat 'cat'\): axis 0 .* batch axis"),
    ([N("Gemm", ["x", "W"], ["y"], name="ta", transA=1)], [tensor("W", f32(3, 3))], r"transA=0"),
    ([N("Add", ["x", "k"], ["y"], name="nan")], [tensor("k", np.float32([np.nan]))], r"constant holds non-finite"),
    ([N("Transpose", ["x"], ["t"], perm=[1, 0]), N("Relu", ["t"], ["y"], name="r")], [],
     r"^node 1 \(Relu 'r'\): its input 't' has its batch axis at axis 1 \(moved by a Transpose\)"),
    ([N("Transpose", ["x"], ["y"], perm=[1, 0])], [], r"the output 'y' has its batch axis at axis 1"),
    ([N("GatherND", ["x", "i"], ["y"], name="g")], [tensor("i", np.array([[0]], I64))],
     r"^node 0 \(GatherND 'g'\): GatherND indexes the batch axis"),
    ([N("Softmax", ["x"], ["y"], name="sm")], [], r"^node 0 \(Softmax 'sm'\): Softmax is not piecewise linear; a "
                                                  r"trailing Softmax is dropped only for --task classification"),
])
def test_refusals_are_one_line(tmp_path, nodes, inits, pattern):
    path = onnx_file(tmp_path, nodes, (3,), inits)
    with pytest.raises(qe.QuasieqError, match=pattern) as info:
        qe.load(path)
    assert "\n" not in str(info.value)


def test_trailing_softmax_dropped_for_classification(tmp_path):
    nodes = [N("Gemm", ["x", "W"], ["h"], transB=1), N("Relu", ["h"], ["r"]), N("Gemm", ["r", "V"], ["z"], transB=1),
             N("LogSoftmax", ["z"], ["y"], axis=1)]
    path = onnx_file(tmp_path, nodes, (2,), [tensor("W", f32(5, 2)), tensor("V", f32(3, 5, seed=1))])
    lowered = lower_onnx_file(path, task="classification")
    X = random_inputs((2,), 50)
    logits = lowered.net.forward(X.astype(np.float64))
    assert np.array_equal(logits.argmax(axis=1), ort_run(path, X).argmax(axis=1))
    assert "dropped the trailing LogSoftmax" in lowered.notes[0]
    with pytest.raises(qe.QuasieqError, match="dropped only for --task classification"):
        qe.load(path)


def test_torch_refusals_name_the_node():
    with pytest.raises(qe.QuasieqError, match=r"node \d+ \(Sigmoid '/1/Sigmoid'\): Sigmoid is not piecewise"):
        qe.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1)).eval())
    with pytest.raises(qe.QuasieqError, match="cannot export it"):
        qe.from_torch(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 1)).eval())
    with pytest.raises(qe.QuasieqError, match="pass example_input"):
        qe.from_torch(nn.Sequential(nn.Flatten(), nn.ReLU()))


def test_train_mode_module_warns_and_is_lowered_in_eval_mode():
    module = randomise(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))).train()
    with pytest.warns(UserWarning, match="train mode"):
        net = qe.from_torch(module, torch.zeros(1, 3))
    assert module.training  # restored
    X = random_inputs((3,), 6)
    assert_close(net, X, torch_run(module.eval(), X))


# ----- the load-time check ----------------------------------------------------------------------
class TracedBranch(nn.Module):
    """Python control flow on the data: the export records one branch only."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else x


def test_check_catches_a_graph_that_differs_from_the_module():
    with pytest.raises(qe.QuasieqError, match=r"differs from torch by [0-9.e+-]+ at output \d"):
        qe.from_torch(TracedBranch().eval(), torch.zeros(1, 3))


def test_check_catches_a_wrong_lowering(tmp_path, monkeypatch):
    """A rule that drops the bias of Conv is caught against ONNX Runtime, not returned silently."""
    path = onnx_file(tmp_path, [N("Conv", ["x", "W", "b"], ["y"])], (1, 4), [tensor("W", f32(2, 1, 2)),
                                                                             tensor("b", f32(2) + 1)])
    qe.load(path)
    original = ops_affine.conv

    def no_bias(node, ctx):
        return original(node._replace(inputs=node.inputs[:2]) if hasattr(node, "_replace") else
                        type(node)(node.index, node.op, node.name, node.inputs[:2], node.outputs, node.attrs,
                                   node.proto), ctx)
    monkeypatch.setitem(qe.frontend.rules.RULES, "Conv", no_bias)
    with pytest.raises(qe.QuasieqError, match=r"differs from ONNX Runtime by"):
        qe.load(path)


def test_initializer_size_is_checked_before_decoding(tmp_path):
    """An in-memory model (as from_torch makes) has no file to size: each tensor is checked on decoding."""
    path = onnx_file(tmp_path, [N("Gemm", ["x", "W"], ["y"], transB=1)], (3,), [tensor("W", f32(4, 3))])
    with pytest.raises(qe.QuasieqError, match=r"^m: tensor 'W' declares 96 bytes, above the limit of 95 bytes; "
                                              r"if the file is trusted, raise the limit with --max-weight-bytes N$"):
        lower_onnx_model(onnx.load(str(path)), "m", max_weight_bytes=95)
    assert lower_onnx_model(onnx.load(str(path)), "m", max_weight_bytes=96).net.in_dim == 3


def test_relu_first_and_last_lower():
    """Nets that start or end with a ReLU (refused by the old chain importer) lower exactly."""
    for module in (nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), nn.Sequential(nn.Linear(3, 4), nn.ReLU())):
        net = qe.from_torch(module.eval(), torch.zeros(1, 3))
        X = random_inputs((3,), 9)
        assert_close(net, X, torch_run(module, X))


# ----- folding: outputs whose size their constant inputs' values set are sized before evaluation -----
@pytest.mark.parametrize(("op", "inputs", "attrs"), [
    ("ConstantOfShape", [np.array([3, 0, 5], np.int64)], {}),
    ("ConstantOfShape", [np.array([2, 7], np.int64)], {}),
    ("Expand", [np.ones((3, 1), np.float32), np.array([2, 1, 4], np.int64)], {}),
    ("Tile", [np.ones((2, 3), np.float32), np.array([3, 2], np.int64)], {}),
    ("Range", [np.array(1.0, np.float32), np.array(10.0, np.float32), np.array(2.5, np.float32)], {}),
    ("Range", [np.array(5, np.int64), np.array(1, np.int64), np.array(1, np.int64)], {}),
    ("Pad", [np.ones((2, 3), np.float32), np.array([1, 0, 2, 3], np.int64)], {}),
    ("OneHot", [np.array([0, 2, 1], np.int64), np.array(4, np.int64), np.array([0, 1], np.float32)], {}),
])
def test_folded_output_sizes_are_known_before_evaluation(op, inputs, attrs):
    """fold.output_values, the size checked against --max-weight-bytes before ONNX's reference
    evaluator allocates a folded tensor, equals the size of what the evaluator then returns."""
    from quasieq.frontend.fold import _evaluate, output_values
    from quasieq.frontend.graph import Node

    names = tuple(f"c{k}" for k in range(len(inputs)))
    proto = helper.make_node(op, list(names), ["out"], **attrs)
    node = Node(index=0, op=op, name="n", inputs=names, outputs=("out",), attrs=attrs, proto=proto)
    (evaluated,) = _evaluate(node, 17, list(inputs))
    assert output_values(node, list(inputs)) == evaluated.size
