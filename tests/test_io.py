"""Frontends and backends against independent evaluators: PyTorch's forward and ONNX Runtime."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import quasieq as qe
from conftest import random_net
from quasieq.frontend.check import rounding_scale
from quasieq.io import onnx_io, torch_io
from quasieq.tolerances import LOWERING_MATCH_RELATIVE


# ----- helpers -----------------------------------------------------------------------------------------
def torch_forward(module: nn.Module, X: np.ndarray) -> np.ndarray:
    dtype = next(module.parameters()).dtype
    with torch.no_grad():
        return module(torch.tensor(X, dtype=dtype)).double().numpy()


def ort_forward(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    name = session.get_inputs()[0].name
    return session.run(None, {name: X.astype(dtype)})[0].astype(np.float64)


def scale(Y: np.ndarray) -> float:
    return max(1.0, float(np.abs(Y).max()))


def randomise_batchnorm(bn: nn.BatchNorm1d, gen: torch.Generator) -> None:
    """Non-trivial running statistics and affine parameters (fresh ones are the identity)."""
    with torch.no_grad():
        n = bn.num_features
        bn.running_mean.copy_(torch.randn(n, generator=gen))
        bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
        bn.weight.copy_(torch.randn(n, generator=gen))
        bn.bias.copy_(torch.randn(n, generator=gen))


def mlp_with_extras(arch: tuple[int, ...], seed: int, dtype: torch.dtype) -> nn.Sequential:
    """Linear/BatchNorm1d/ReLU/Dropout/Identity chain with a Flatten in front, nested Sequentials."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    blocks: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(arch[:-1], arch[1:], strict=False)):
        bn = nn.BatchNorm1d(b)
        randomise_batchnorm(bn, gen)
        block = [nn.Linear(a, b), bn]
        if i < len(arch) - 2:
            block += [nn.ReLU(), nn.Dropout(0.5), nn.Identity()]
        blocks.append(nn.Sequential(*block))
    return nn.Sequential(*blocks).to(dtype).eval()


def write_pickle_bomb(path: Path, sentinel: Path) -> None:
    """A file that creates ``sentinel`` if anyone unpickles it."""

    class Bomb:
        def __reduce__(self):
            return (Path.touch, (sentinel,))

    path.write_bytes(pickle.dumps(Bomb()))


def export_torch_onnx(module: nn.Module, dim: int, path: Path) -> None:
    """PyTorch's own exporter (the TorchScript one: the dynamo one needs onnxscript)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(2, dim, dtype=next(module.parameters()).dtype), str(path),
                          dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def onnx_model(nodes, inputs, output, initializers, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def chain_onnx(tmp_path: Path, middle: list[onnx.NodeProto], extra_init=()) -> Path:
    """input (N, 3) -> Gemm 3->4 (output 'h') -> middle nodes ending in 'y' ; used for refusal tests."""
    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W"),
            numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b"), *extra_init]
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm", transB=1), *middle]
    model = onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                       helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]), init)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


archs = st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple)


# ----- torch -> IR -> torch ----------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arch=archs, seed=st.integers(0, 10**6))
def test_torch_round_trip_float64(arch, seed):
    module = mlp_with_extras(arch, seed, torch.float64)
    X = np.random.default_rng(seed).normal(size=(64, arch[0]))
    expected = torch_forward(module, X)
    net = qe.from_torch(module)
    assert net.in_dim == arch[0] and net.out_dim == arch[-1] and net.widths == arch[1:-1]
    assert np.abs(net.forward(X) - expected).max() <= 1e-12 * scale(expected)
    back = qe.to_torch(net)
    assert np.abs(torch_forward(back, X) - expected).max() <= 1e-12 * scale(expected)


@settings(max_examples=15, deadline=None)
@given(arch=archs, seed=st.integers(0, 10**6))
def test_torch_round_trip_float32(arch, seed):
    module = mlp_with_extras(arch, seed, torch.float32)
    X = np.random.default_rng(seed).normal(size=(64, arch[0])).astype(np.float32).astype(np.float64)
    expected = torch_forward(module, X)
    net = qe.from_torch(module)
    # float32 rounding is relative to the summed terms (a BatchNorm of small variance amplifies it)
    tol = LOWERING_MATCH_RELATIVE * max(1.0, float(rounding_scale(net, X).max()))
    assert np.abs(net.forward(X) - expected).max() <= tol
    back = qe.to_torch(net, dtype=torch.float32)
    assert next(back.parameters()).dtype == torch.float32
    assert np.abs(torch_forward(back, X) - expected).max() <= 2 * tol


def test_consecutive_linears_compose_into_one_layer(rng):
    module = nn.Sequential(nn.Linear(3, 7), nn.Linear(7, 5), nn.ReLU(), nn.ReLU(), nn.Linear(5, 2),
                           nn.Linear(2, 2)).double()
    net = qe.from_torch(module)
    assert net.widths == (5,)  # ReLU, ReLU acts as one; Linear∘Linear is one affine layer
    X = rng.normal(size=(50, 3))
    assert np.allclose(net.forward(X), torch_forward(module, X), rtol=0, atol=1e-12)


def test_batchnorm_before_first_linear_folds_forward(rng):
    bn = nn.BatchNorm1d(3)
    randomise_batchnorm(bn, torch.Generator().manual_seed(1))
    module = nn.Sequential(bn, nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).double().eval()
    net = qe.from_torch(module)
    X = rng.normal(size=(50, 3))
    assert net.widths == (4,)
    assert np.abs(net.forward(X) - torch_forward(module, X)).max() < 1e-12


class TracedChain(nn.Module):
    """A plain module whose fx graph is a chain (functional relu, method relu, torch.flatten)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.body(x).relu()
        return self.head(torch.relu(x))


def test_fx_traced_module_is_imported(rng):
    module = TracedChain().double().eval()
    net = qe.from_torch(module)
    X = rng.normal(size=(40, 6))
    assert net.widths == (8, 8)
    assert np.abs(net.forward(X) - torch_forward(module, X)).max() < 1e-12


def test_to_torch_densifies_sparse_layers(rng):
    W = sp.random(30, 20, density=0.1, random_state=3, format="csr")
    net = qe.ReluNet([W, rng.normal(size=(2, 30))], [rng.normal(size=30), rng.normal(size=2)])
    X = rng.normal(size=(25, 20))
    assert np.abs(torch_forward(qe.to_torch(net), X) - net.forward(X)).max() < 1e-12


# ----- IR -> ONNX -> ONNX Runtime ----------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(arch=archs, seed=st.integers(0, 10**6))
def test_onnx_export_matches_onnxruntime(tmp_path_factory, arch, seed):
    rng = np.random.default_rng(seed)
    net = random_net(arch, rng)
    X = rng.normal(size=(33, arch[0]))
    expected = net.forward(X)
    folder = tmp_path_factory.mktemp("onnx")
    for dtype, tol in (("float32", 1e-6), ("float64", 1e-12)):
        path = folder / f"{dtype}.onnx"
        qe.save(net, path, dtype=dtype)
        Xd = X.astype(np.float32).astype(np.float64) if dtype == "float32" else X
        got = ort_forward(path, Xd)
        assert np.abs(got - net.forward(Xd)).max() <= tol * scale(expected)
        again = qe.load(path)
        assert np.abs(again.forward(Xd) - got).max() <= tol * scale(expected)


def test_onnx_export_interface(tmp_path, rng):
    net = random_net((4, 5, 3), rng)
    path = tmp_path / "net.onnx"
    qe.save(net, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    assert inp.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim][1:] == [4]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim][1:] == [3]
    for n in (1, 17):  # dynamic batch size
        X = rng.normal(size=(n, 4)).astype(np.float32)
        assert ort_forward(path, X).shape == (n, 3)
    assert {n.op_type for n in model.graph.node} == {"Gemm", "Relu"}


def test_sparse_layer_export_is_linear_in_nnz(tmp_path, rng):
    out_dim, in_dim = 3000, 2000
    W = sp.random(out_dim, in_dim, density=0.002, random_state=7, format="lil")
    W[11, :] = rng.normal(size=in_dim)  # one dense row: padding must not blow up the others
    W[12, :] = 0.0  # one empty row
    W = sp.csr_matrix(W)
    net = qe.ReluNet([W, sp.random(2, out_dim, density=0.5, random_state=8, format="csr")],
                     [rng.normal(size=out_dim), rng.normal(size=2)])
    X = rng.normal(size=(20, in_dim))
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-6)):
        path = tmp_path / f"sparse-{dtype}.onnx"
        qe.save(net, path, dtype=dtype)
        Xd = X.astype(np.float32).astype(np.float64) if dtype == "float32" else X
        expected = net.forward(Xd)
        assert np.abs(ort_forward(path, Xd) - expected).max() <= tol * scale(expected)
        # stored entries: padded column index (8 bytes) + value; padding at most doubles nnz (+1 per row)
        bytes_per_entry = 8 + (8 if dtype == "float64" else 4)
        bound = (2 * W.nnz + out_dim) * bytes_per_entry + 4 * (out_dim + in_dim) * 8 + out_dim * 2 * 8
        assert path.stat().st_size < bound < 0.1 * out_dim * in_dim * 4
    ops = {n.op_type for n in onnx.load(str(tmp_path / "sparse-float64.onnx")).graph.node}
    assert {"Gather", "ReduceSum"} <= ops  # the sparse formulation, not a dense Gemm, holds layer 0
    back = qe.load(tmp_path / "sparse-float64.onnx")
    assert sp.issparse(back.weights[0])
    assert abs(back.weights[0] - W).max() == 0.0 and back.weights[0].nnz == W.nnz
    assert np.array_equal(back.biases[0], net.biases[0])


def test_external_data_above_threshold(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_BYTES", 0)
    net = random_net((3, 200, 2), rng)  # every weight tensor above onnx's 1 KiB external-data cut
    path = tmp_path / "big.onnx"
    qe.save(net, path, dtype="float64")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    assert path.stat().st_size < 3 * 200 * 8  # the weights are not inside the model file
    X = rng.normal(size=(9, 3))
    assert np.abs(ort_forward(path, X) - net.forward(X)).max() < 1e-12
    assert np.abs(qe.load(path).forward(X) - net.forward(X)).max() < 1e-12


# ----- foreign ONNX files -> IR --------------------------------------------------------------------------
def test_torch_onnx_export_loads(tmp_path, rng):
    module = mlp_with_extras((5, 7, 6, 3), seed=4, dtype=torch.float32)
    path = tmp_path / "torch.onnx"
    export_torch_onnx(module, 5, path)
    X = rng.normal(size=(40, 5)).astype(np.float32).astype(np.float64)
    expected = torch_forward(module, X)
    net = qe.load(path)
    assert net.widths == (7, 6)
    assert np.abs(net.forward(X) - expected).max() <= 1e-6 * scale(expected)
    assert np.abs(ort_forward(path, X) - expected).max() <= 1e-6 * scale(expected)


def test_hand_built_onnx_with_every_supported_op(tmp_path, rng):
    """(N, 2, 3) input -> BatchNormalization over 2 channels -> Flatten -> MatMul + Add -> Relu ->
    Reshape (N, 2, 2) -> Reshape (N, -1) -> Identity -> Gemm (alpha, beta, transB=0) -> Mul -> Relu ->
    Gather columns -> Concat with itself -> Reshape (N, 4, 2) -> ReduceSum -> Dropout -> Gemm(transB=1),
    against ONNX Runtime running the same file."""
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    init = [numpy_helper.from_array(a, n) for a, n in [
        (f(2), "g"), (f(2), "beta"), (f(2), "mu"), (np.abs(f(2)) + 0.5, "var"),
        (f(6, 4), "M"), (f(4), "c"), (f(4, 5), "G"), (f(5), "gb"), (f(5), "scale"),
        (f(3, 4), "H"), (f(3), "hb"), (np.array([0, 4, 2], dtype=np.int64), "shape_pairs"),
        (np.array([0, 2, 2, 4], dtype=np.int64), "cols"), (np.array([0, -1], dtype=np.int64), "shape_flat"),
        (np.array([2], dtype=np.int64), "axes"),
    ]]
    nodes = [
        helper.make_node("BatchNormalization", ["x", "g", "beta", "mu", "var"], ["n"], name="bn", epsilon=1e-3),
        helper.make_node("Flatten", ["n"], ["fl"], name="flatten", axis=1),
        helper.make_node("MatMul", ["fl", "M"], ["mm"], name="matmul"),
        helper.make_node("Add", ["c", "mm"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r1"], name="relu1"),
        helper.make_node("Constant", [], ["shape3"], name="const",
                         value=numpy_helper.from_array(np.array([0, 2, 2], dtype=np.int64))),
        helper.make_node("Reshape", ["r1", "shape3"], ["r3"], name="reshape3"),
        helper.make_node("Reshape", ["r3", "shape_flat"], ["r2"], name="reshape2"),
        helper.make_node("Identity", ["r2"], ["i"], name="identity"),
        helper.make_node("Gemm", ["i", "G", "gb"], ["gm"], name="gemm", alpha=0.7, beta=1.3),
        helper.make_node("Mul", ["gm", "scale"], ["s"], name="mul"),
        helper.make_node("Relu", ["s"], ["r4"], name="relu2"),
        helper.make_node("Gather", ["r4", "cols"], ["ga"], name="gather", axis=1),
        helper.make_node("Concat", ["ga", "ga"], ["cc"], name="concat", axis=-1),
        helper.make_node("Reshape", ["cc", "shape_pairs"], ["cr"], name="reshape_pairs"),
        helper.make_node("ReduceSum", ["cr", "axes"], ["rs"], name="sum", keepdims=0),
        helper.make_node("Dropout", ["rs"], ["d"], name="dropout"),
        helper.make_node("Gemm", ["d", "H", "hb"], ["y"], name="head", transB=1),
    ]
    model = onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])],
                       helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]), init)
    path = tmp_path / "hand.onnx"
    onnx.save(model, str(path))
    X = rng.normal(size=(30, 2, 3)).astype(np.float32)
    expected = ort_forward(path, X)
    net = qe.load(path)
    assert net.in_dim == 6 and net.widths == (4, 5)
    got = net.forward(X.reshape(30, 6).astype(np.float64))
    assert np.abs(got - expected).max() <= 1e-5 * scale(expected)


# ----- npz -----------------------------------------------------------------------------------------------
def test_npz_round_trip_is_exact(tmp_path, rng):
    sparse = sp.random(40, 6, density=0.2, random_state=2, format="csr")
    net = qe.ReluNet([rng.normal(size=(6, 3)), sparse, rng.normal(size=(2, 40))],
                     [rng.normal(size=6), rng.normal(size=40), rng.normal(size=2)])
    path = tmp_path / "net.npz"
    qe.save(net, path)
    back = qe.load(path)
    with np.load(path, allow_pickle=False) as z:
        assert {"W0", "b0", "W1_data", "W1_indptr", "W2"} <= set(z.files) and z["W0"].shape == (6, 3)
    assert sp.issparse(back.weights[1]) and not sp.issparse(back.weights[0])
    for (W, b), (V, c) in zip(net.layers, back.layers, strict=False):
        assert abs(sp.csr_matrix(W) - sp.csr_matrix(V)).max() == 0 and np.array_equal(b, c)


def test_npz_written_by_hand_loads(tmp_path, rng):
    W0, b0, W1, b1 = rng.normal(size=(4, 2)), rng.normal(size=4), rng.normal(size=(1, 4)), rng.normal(size=1)
    np.savez(tmp_path / "hand.npz", W0=W0, b0=b0, W1=W1, b1=b1)
    X = rng.normal(size=(10, 2))
    assert np.allclose(qe.load(tmp_path / "hand.npz").forward(X), np.maximum(X @ W0.T + b0, 0) @ W1.T + b1,
                       rtol=0, atol=1e-14)


# ----- writes are atomic -----------------------------------------------------------------------------------
def test_failed_save_leaves_nothing_behind(tmp_path, rng):
    net = random_net((2, 3, 1), rng)
    path = tmp_path / "net.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(qe.QuasieqError, match="dtype"):
        qe.save(net, path, dtype="float16")
    with pytest.raises(qe.QuasieqError, match="float64"):
        qe.save(net, tmp_path / "net.npz", dtype="float32")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]
    assert path.read_bytes() == b"previous"


# ----- refusals ----------------------------------------------------------------------------------------------
def test_non_finite_torch_weights_refused():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        module[2].weight[0, 1] = float("nan")
    with pytest.raises(qe.QuasieqError, match=r"node \d+ \(Gemm '/2/Gemm'\): weight holds non-finite"):
        qe.from_torch(module)
    bn = nn.BatchNorm1d(4)
    bn.running_var[0] = float("inf")
    with pytest.raises(qe.QuasieqError, match=r"node \d+ \(\w+ '[^']*'\): \w+ holds non-finite"):
        qe.from_torch(nn.Sequential(nn.Linear(3, 4), bn, nn.Linear(4, 1)))


def test_to_torch_refuses_huge_dense_layers(monkeypatch):
    monkeypatch.setattr(torch_io, "TO_TORCH_MAX_ENTRIES", 10)
    net = qe.ReluNet([sp.identity(4, format="csr"), np.ones((1, 4))], [np.zeros(4), np.zeros(1)])
    with pytest.raises(qe.QuasieqError, match=r"layer 0: .*qe\.save\(net, 'model\.onnx'\)"):
        qe.to_torch(net)


@pytest.mark.parametrize("middle, extra, pattern", [
    ([helper.make_node("Sigmoid", ["h"], ["y"], name="sig")], [],
     r"node 1 \(Sigmoid 'sig'\): Sigmoid is not piecewise linear"),
    ([helper.make_node("Gemm", ["h", "V"], ["y"], name="g2", transB=1)],
     [numpy_helper.from_array(np.ones((4, 5), np.float32), "V")], r"node 1 \(Gemm 'g2'\): expects 5 inputs"),
    ([helper.make_node("Add", ["h", "nan"], ["y"], name="addnan")],
     [numpy_helper.from_array(np.array([np.nan], np.float32), "nan")], r"node 1 \(Add 'addnan'\): constant holds non"),
    ([helper.make_node("Reshape", ["h", "s"], ["y"], name="rs")],
     [numpy_helper.from_array(np.array([-1], np.int64), "s")], r"node 1 \(Reshape 'rs'\): Reshape to \[-1\]"),
    ([helper.make_node("Gemm", ["h", "V"], ["y"], name="ta", transA=1)],
     [numpy_helper.from_array(np.ones((4, 4), np.float32), "V")], "transA=0"),
])
def test_bad_onnx_graphs_refused(tmp_path, middle, extra, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            path = chain_onnx(tmp_path, middle, extra)
        except onnx.checker.ValidationError:
            pytest.fail("test graph must be valid ONNX")
    with pytest.raises(qe.QuasieqError, match=pattern):
        qe.load(path)


def test_non_finite_onnx_weights_refused(tmp_path):
    W = np.ones((2, 3), np.float32)
    W[1, 2] = np.inf
    model = onnx_model([helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                       helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2]),
                       [numpy_helper.from_array(W, "W")])
    onnx.save(model, str(tmp_path / "inf.onnx"))
    with pytest.raises(qe.QuasieqError, match=r"node 0 \(Gemm 'fc'\): weight holds non-finite"):
        qe.load(tmp_path / "inf.onnx")


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".ckpt"])
def test_pickles_refused_without_opening(tmp_path, suffix):
    sentinel = tmp_path / "unpickled"
    path = tmp_path / f"model{suffix}"
    write_pickle_bomb(path, sentinel)
    with pytest.raises(qe.QuasieqError, match=r"never unpickles.*torch\.onnx\.export.*qe\.from_torch"):
        qe.load(path)
    assert not sentinel.exists()


def test_pickle_bomb_is_armed(tmp_path):
    """The refusal test above would pass vacuously if the bomb did nothing when unpickled."""
    sentinel = tmp_path / "unpickled"
    write_pickle_bomb(tmp_path / "m.pt", sentinel)
    pickle.loads((tmp_path / "m.pt").read_bytes())
    assert sentinel.exists()


def test_bad_files_refused(tmp_path, rng):
    with pytest.raises(qe.QuasieqError, match="no such file"):
        qe.load(tmp_path / "missing.onnx")
    with pytest.raises(qe.QuasieqError, match=r"unknown model format '\.h5'"):
        qe.load(tmp_path / "model.h5")
    (tmp_path / "junk.onnx").write_bytes(os.urandom(200))
    with pytest.raises(qe.QuasieqError, match="not a readable ONNX model"):
        qe.load(tmp_path / "junk.onnx")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(qe.QuasieqError, match="not a readable .npz"):
        qe.load(tmp_path / "junk.npz")


@pytest.mark.parametrize("arrays, pattern", [
    ({"W0": np.ones((2, 2)), "b0": np.ones(2), "weights": np.ones(1)}, r"unexpected keys \['weights'\]"),
    ({"W0": np.ones((2, 2)), "W1": np.ones((1, 2)), "b1": np.ones(1)}, "key b0 is missing"),
    ({"b0": np.ones(2)}, "layer 0 needs either W0 or all of W0_data"),
    ({"W0": np.ones((2, 3)), "b0": np.ones(2), "W1": np.ones((1, 4)), "b1": np.ones(1)},
     "layer 1: weight expects 4 inputs but layer 0 gives 2"),
    ({"W0": np.array([[1.0, np.nan]]), "b0": np.ones(1)}, "layer 0: weight holds non-finite"),
    ({"W0": np.array([[1, 2]], dtype=object), "b0": np.ones(1)}, "pickled"),
    ({}, "holds no arrays"),
])
def test_bad_npz_refused(tmp_path, arrays, pattern):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(qe.QuasieqError, match=pattern):
        qe.load(path)
