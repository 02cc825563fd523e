"""Hostile and broken input, as a table: every row is a file or an option an attacker or a careless
user could give, the command run on it, and what must happen.

For each row of :data:`CASES`: the command runs through the real app; it must exit with the row's code;
for a non-zero code stderr is exactly one line matching the row's pattern, with no traceback; the
row's output target must not exist afterwards (or, for streams and links, keep its type and mode);
and the working folder holds no temporary file. Faults are real: malformed CSR arrays, a zip bomb
(1.5 GiB of zeros in ~1.5 MB, built in a second by repeating one deflate block), ONNX files
declaring huge inputs, a character device and a FIFO made with ``os.mknod`` in the test's own folder
(never the system's), a read-only folder (a read-only tmpfs mount, else ``chattr +i``, else
permission bits when not root), and signals sent to real subprocesses.

Other helpers add their rows to :data:`CASES` (a row needs only an id, argv, code and pattern).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

import quasieq as qe
import quasieq_launcher
from quasieq.cli import app
from quasieq.interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED, MESSAGE
from quasieq.io.onnx_io import build_model

SRC = Path(__file__).resolve().parents[1] / "src"
runner = CliRunner()


# ----- input files ---------------------------------------------------------------------------------
def _good_net() -> qe.ReluNet:
    rng = np.random.default_rng(14)
    return qe.ReluNet([rng.normal(size=(6, 2)), rng.normal(size=(1, 6))], [rng.normal(size=6), rng.normal(size=1)])


def _csr_npz(path: Path, data, indices, indptr, shape) -> None:
    """A 2-6-1 net whose first layer is stored as the given CSR parts."""
    net = _good_net()
    np.savez(path, W0_data=np.asarray(data, float), W0_indices=np.asarray(indices), W0_indptr=np.asarray(indptr),
             W0_shape=np.asarray(shape), b0=net.biases[0], W1=net.weights[1], b1=net.biases[1])


def _gemm_onnx(path: Path, inputs: list[str], initializers: list[TensorProto], in_features: int,
               extra_nodes: tuple = ()) -> None:
    nodes = [*extra_nodes, helper.make_node("Gemm", inputs, ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
                              initializer=initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


_tensor = numpy_helper.from_array


def _conv_onnx(path: Path) -> None:
    """A 3x3 convolution of a 16x16 image into 8 channels, ReLU, global average pool: a few hundred
    bytes of weights, but a convolution matrix of 8·256·9 = 18,432 entries (147,456 bytes as float64)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 1, 1])],
                              initializer=[_tensor(rng.normal(size=(8, 1, 3, 3)).astype(np.float32), "W"),
                                           _tensor(rng.normal(size=8).astype(np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _npy_header_only(path: Path, shape: tuple[int, ...]) -> None:
    """A ``.npy`` file of a valid header declaring ``shape`` float64 and no data (a few hundred bytes)."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})


def _zip_bomb(path: Path, gib: float = 1.5) -> None:
    """A real zip bomb: ``W0.npy`` declaring and holding ``gib`` GiB of float64 zeros, deflated.

    Deflating 1.5 GiB takes a minute, so one 1 MiB block of zeros is deflated once with a full flush
    (which resets the compressor) and its bytes repeated: the result is a valid deflate stream of the
    whole member, and the zip is written by hand around it (local header, data, central directory).
    """
    chunk = bytes(1 << 20)
    n_chunks = int(gib * 1024)
    header = _npy_header((n_chunks * len(chunk) // 8,))
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(header)
    for _ in range(n_chunks):
        crc = zlib.crc32(chunk, crc)
    csize = len(head) + n_chunks * len(block) + len(tail)
    usize = len(header) + n_chunks * len(chunk)
    name = b"W0.npy"
    fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, csize, usize)
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name)
        f.write(head)
        for _ in range(n_chunks):
            f.write(block)
        f.write(tail)
        directory = f.tell()
        f.write(b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0)
                + name)
        size = f.tell() - directory
        f.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, size, directory, 0))


def _npy_header(shape: tuple[int, ...]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return np.lib.format.magic(1, 0) + buffer.getvalue()


def _nested_json(depth: int) -> str:
    return '{"lo": ' + "[" * depth + "]" * depth + ', "hi": [1]}'


#: Input files by name: each builder writes the named file into the test's folder.
INPUTS: dict[str, Callable[[Path], None]] = {
    "good.npz": lambda p: qe.save(_good_net(), p),
    "good.onnx": lambda p: qe.save(_good_net(), p),
    "indptr_falls.npz": lambda p: _csr_npz(p, [1, 1, 1], [0, 1, 0], [0, 2, 1, 3, 3, 3, 3], (6, 2)),
    "column_past_shape.npz": lambda p: _csr_npz(p, [1, 1], [0, 7], [0, 1, 2, 2, 2, 2, 2], (6, 2)),
    "negative_index.npz": lambda p: _csr_npz(p, [1, 1], [0, -1], [0, 1, 2, 2, 2, 2, 2], (6, 2)),
    "indptr_short_of_nnz.npz": lambda p: _csr_npz(p, [1, 1, 1], [0, 1, 0], [0, 1, 2, 2, 2, 2, 2], (6, 2)),
    "negative_shape.npz": lambda p: _csr_npz(p, [], np.zeros(0, np.int64), [0], (-1, 2)),
    "float_indices.npz": lambda p: _csr_npz(p, [1.0], np.array([0.5]), [0, 1, 1, 1, 1, 1, 1], (6, 2)),
    "complex.npz": lambda p: np.savez(p, W0=np.ones((3, 2)) * (1 + 2j), b0=np.zeros(3), W1=np.ones((1, 3)), b1=[0.0]),
    "no_outputs.npz": lambda p: np.savez(p, W0=np.ones((3, 2)), b0=np.zeros(3), W1=np.ones((0, 3)), b1=np.zeros(0)),
    "overflow.npz": lambda p: np.savez(p, W0=np.full((3, 2), 1e200), b0=np.zeros(3), W1=np.full((1, 3), 1e200),
                                       b1=[0.0]),
    "object.npz": lambda p: np.savez(p, W0=np.array([{"x": 1}], dtype=object), b0=[0.0]),
    "strings.npz": lambda p: np.savez(p, X=np.array([["a", "b"], ["c", "d"]])),
    "stray_key.npz": lambda p: np.savez(p, W0=np.ones((1, 2)), b0=[0.0], payload=np.zeros(3)),
    "corrupt.npz": lambda p: p.write_bytes(b"PK\x03\x04" + os.urandom(200)),
    "data.npy": lambda p: np.save(p, np.zeros((4, 2))),
    "bomb.npz": _zip_bomb,
    "bomb_small.npz": lambda p: _zip_bomb(p, gib=1 / 64),
    "truncated.onnx": lambda p: p.write_bytes(build_model(_good_net()).SerializeToString()[:100]),
    "huge_input_gather.onnx": lambda p: _gemm_onnx(
        p, ["g", "W", "b"], [_tensor(np.array([0], np.int64), "i"), _tensor(np.ones((1, 1), np.float32), "W"),
                             _tensor(np.zeros(1, np.float32), "b")],
        300_000_000, (helper.make_node("Gather", ["x", "i"], ["g"], axis=1),)),
    "conv.onnx": _conv_onnx,
    "huge_points.npy": lambda p: _npy_header_only(p, (3, 10**10)),
    # 40 bytes of shape, 80 GB of weights once ConstantOfShape is folded
    "constant_of_shape_bomb.onnx": lambda p: _gemm_onnx(
        p, ["x", "w", "b"], [_tensor(np.array([1, 10**10], np.int64), "s"), _tensor(np.zeros(1, np.float32), "b")],
        2, (helper.make_node("ConstantOfShape", ["s"], ["w"], name="fill"),)),
    "missing_bias.onnx": lambda p: _gemm_onnx(p, ["x", "W", "nowhere"], [_tensor(np.ones((1, 2), np.float32), "W")], 2),
    "complex.onnx": lambda p: _gemm_onnx(p, ["x", "W"], [_tensor(np.ones((1, 2), np.complex64), "W")], 2),
    "model.pt": lambda p: p.write_bytes(b"\x80\x04K\x01."),
    "huge_int.json": lambda p: p.write_text('{"lo": [' + "9" * 401 + ', 0], "hi": [1, 1]}'),
    "deep.json": lambda p: p.write_text(_nested_json(100_000)),
    "not_json.json": lambda p: p.write_bytes(b"\xff\xfe\x00"),
}


# ----- the table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One row: ``argv`` (file names from :data:`INPUTS` and ``out/…`` paths are made absolute in the
    test's folder), the exit ``code``, the ``stderr`` pattern of the one line (codes ≠ 0), the output
    ``target`` that must be absent afterwards, and optional ``prepare``/``check`` hooks for targets
    that already exist (devices, FIFOs, links)."""

    id: str
    argv: tuple[str, ...]
    code: int = 2
    stderr: str = ""
    target: str | None = None
    prepare: Callable[[Path], None] | None = field(default=None, compare=False)
    check: Callable[[Path, str], None] | None = field(default=None, compare=False)


BOX = ("--box", "-1", "1")

CASES: list[Case] = [
    # memory safety: malformed CSR parts never reach a kernel
    Case("csr indptr decreasing", ("regions", "indptr_falls.npz", *BOX, "--json", "out/r.json"),
         stderr=r"layer 0: (weight: )?indptr decreases at row 1", target="out/r.json"),
    Case("csr column past shape", ("regions", "column_past_shape.npz", *BOX),
         stderr=r"column index 7 .* outside \[0, 2\)"),
    Case("csr negative index", ("compare", "negative_index.npz", "good.npz", *BOX), stderr=r"column index -1"),
    Case("csr indptr short of nnz", ("info", "indptr_short_of_nnz.npz"), stderr=r"indptr must run from 0 to nnz = 3"),
    Case("csr negative shape", ("info", "negative_shape.npz"), stderr=r"negative dimension"),
    Case("csr float indices", ("info", "float_indices.npz"), stderr=r"indices must be a 1-D integer array"),
    # size limits before reading
    Case("zip bomb (default limit)", ("info", "bomb.npz"),
         stderr=r"zip member headers\) declares 1,610,612,8\d\d bytes "
         r"\(1.5 GiB\), above the limit of 1,073,741,824 bytes.*--max-weight-bytes"),
    Case("zip bomb under a lowered limit", ("info", "bomb_small.npz", "--max-weight-bytes", "1000000"),
         stderr=r"declares 16,77\d,\d{3} bytes \(16 MiB\), above the limit of 1,000,000 bytes"),
    Case("onnx input of 3e8 features then Gather", ("info", "huge_input_gather.onnx"),
         stderr=r"graph input 'x' \(per-sample dims \[300000000\]\) declares 2,400,000,000 bytes"),
    Case("--plane points whose .npy header declares 3e10 values", ("regions", "good.npz", "--plane", "huge_points.npy"),
         stderr=r"huge_points.npy \(.npy header\)\S* declares 240,000,000,000 bytes .*--max-weight-bytes"),
    Case("a folded ConstantOfShape of 1e10 values", ("info", "constant_of_shape_bomb.onnx"),
         stderr=r"^error: node 0 \(ConstantOfShape 'fill'\): its folded output would hold 10,000,000,000 values, "
                r"80,000,000,000 bytes \(74.5 GiB\) as float64, above the limit of 1,073,741,824 bytes \(1 GiB\); "
                r"raise the limit with --max-weight-bytes N$"),
    Case("compiler's convolution matrix over a lowered limit", ("info", "conv.onnx", "--max-weight-bytes", "20000"),
         stderr=r"^error: node 0 \(Conv 'conv'\): the convolution matrix would hold 18,432 values, 147,456 bytes "
         r"\(144 KiB\) as float64, above the limit of 20,000 bytes \(19.5 KiB\); raise the limit with "
         r"--max-weight-bytes N$"),
    Case("the same model under a raised limit", ("info", "conv.onnx", "--max-weight-bytes", "200000"), code=0),
    Case("convert under the lowered limit", ("convert", "conv.onnx", "out/c.npz", "--max-weight-bytes", "20000"),
         stderr=r"^error: node 0 \(Conv 'conv'\): the convolution matrix would hold .*--max-weight-bytes N$",
         target="out/c.npz"),
    Case("limit must be positive", ("info", "good.npz", "--max-weight-bytes", "0"), stderr=r"--max-weight-bytes"),
    # silently accepted bad models
    Case("complex weights (npz)", ("regions", "complex.npz", *BOX), stderr=r"layer 0: weight holds complex values"),
    Case("complex weights (onnx)", ("info", "complex.onnx"), stderr=r"complex"),
    Case("gemm bias names no initializer", ("info", "missing_bias.onnx"),
         stderr=r"'nowhere'.*(is neither|no earlier node produces)"),
    Case("net with 0 outputs", ("info", "no_outputs.npz"), stderr=r"layer 1: weight has shape \(0, 3\)"),
    Case("forward pass overflows on the box", ("compare", "overflow.npz", "overflow.npz", *BOX),
         stderr=r"layer 0: its pre-activations reach 2e\+200 .*float64-safe range"),
    Case("pickled object array", ("info", "object.npz"), stderr=r"pickled \(object\) arrays"),
    Case("stray npz key", ("info", "stray_key.npz"), stderr=r"unexpected keys \['payload'\]"),
    Case("corrupt zip model", ("info", "corrupt.npz"), stderr=r"not a readable \.npz"),
    Case("truncated onnx", ("info", "truncated.onnx"), stderr=r"not a readable ONNX model"),
    Case("pickle refused unopened", ("info", "model.pt"), stderr=r"never unpickles .* torch\.onnx\.export"),
    # one-line errors for options and side files
    Case("--seed -1", ("compare", "good.npz", "good.npz", *BOX, "--seed", "-1"), stderr=r"--seed"),
    Case("--max-regions beyond int64 means no limit", ("regions", "good.npz", *BOX, "--max-regions", "9" * 23), code=0),
    Case("--samples 10^12", ("compare", "good.npz", "good.npz", *BOX, "--samples", "1000000000000"),
         stderr=r"(out of memory|--samples)"),
    Case("--samples 0", ("compare", "good.npz", "good.npz", *BOX, "--samples", "0"), stderr=r"--samples"),
    Case("--tol nan", ("compare", "good.npz", "good.npz", *BOX, "--tol", "nan"), stderr=r"tol"),
    Case("--delta nan", ("wide", "good.npz", *BOX, "--delta", "nan"), stderr=r"--delta"),
    Case("--delta 0", ("deep", "good.npz", *BOX, "--delta", "0"), stderr=r"--delta"),
    Case("--box nan", ("regions", "good.npz", "--box", "nan", "1"), stderr=r"finite"),
    Case("--box empty", ("regions", "good.npz", "--box", "1", "1"), stderr=r"lo < hi"),
    Case("--box and --bounds", ("regions", "good.npz", *BOX, "--bounds", "huge_int.json"), stderr=r"exactly one"),
    Case("--dtype float16", ("wide", "good.npz", *BOX, "--out", "out/w.onnx", "--dtype", "float16"),
         stderr=r"float16", target="out/w.onnx"),
    Case("bounds with a 401-digit integer", ("regions", "good.npz", "--bounds", "huge_int.json"),
         stderr=r"too large for a float64"),
    Case("bounds nested 100,000 deep", ("regions", "good.npz", "--bounds", "deep.json"), stderr=r"nested too deeply"),
    Case("bounds not UTF-8", ("regions", "good.npz", "--bounds", "not_json.json"), stderr=r"not valid JSON"),
    Case("compare --data .npy", ("compare", "good.npz", "good.npz", *BOX, "--data", "data.npy"),
         stderr=r"unknown data format \.npy"),
    Case("compare --data corrupt zip", ("compare", "good.npz", "good.npz", *BOX, "--data", "corrupt.npz"),
         stderr=r"not a readable \.npz"),
    Case("compare --data string array", ("compare", "good.npz", "good.npz", *BOX, "--data", "strings.npz"),
         stderr=r"X has dtype <U1; numbers are needed"),
    Case("unknown option", ("regions", "good.npz", *BOX, "--frobnicate"), stderr=r"--frobnicate"),
    Case("experiment: bad protocol", ("experiment", "demorgan", "--protocol", "nonsense", "--out", "out/e"),
         stderr=r"protocol", target="out/e"),
    Case("quadratic: bad domain", ("quadratic", "wide", "1", "2", "3", "--domain", "1", "-1"), stderr=r"domain|LO"),
    Case("quadratic: not a number", ("quadratic", "check", "1", "x"), stderr=r"coeffs"),
]


# ----- output targets that already exist -----------------------------------------------------------
def _make_chardev(folder: Path) -> None:
    os.mknod(folder / "out" / "null", 0o620 | stat.S_IFCHR, os.makedev(1, 3))  # the null device's numbers
    (folder / "out" / "null").chmod(0o620)  # mknod applies the umask


def _check_chardev(folder: Path, stderr: str) -> None:
    st = (folder / "out" / "null").lstat()
    assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620 and st.st_rdev == os.makedev(1, 3)


def _make_link(folder: Path) -> None:
    (folder / "out" / "real.json").write_text("old")
    (folder / "out" / "link.json").symlink_to("real.json")


def _check_link(folder: Path, stderr: str) -> None:
    link = folder / "out" / "link.json"
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert json.loads((folder / "out" / "real.json").read_text())["schema_version"] == 1


def _make_private(folder: Path) -> None:
    (folder / "out" / "private.json").write_text("old")
    (folder / "out" / "private.json").chmod(0o600)


def _check_private(folder: Path, stderr: str) -> None:
    path = folder / "out" / "private.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_text())["schema_version"] == 1


CASES += [
    Case("--json to a character device", ("regions", "good.npz", *BOX, "--json", "out/null"), code=0,
         prepare=_make_chardev, check=_check_chardev),
    Case("--json through a symlink", ("regions", "good.npz", *BOX, "--json", "out/link.json"), code=0,
         prepare=_make_link, check=_check_link),
    Case("--json onto a 0600 file", ("regions", "good.npz", *BOX, "--json", "out/private.json"), code=0,
         prepare=_make_private, check=_check_private),
    Case("--out and --json on one file", ("wide", "good.npz", *BOX, "--out", "out/x.onnx", "--json", "out/x.onnx"),
         stderr=r"--out and --json name the same file", target="out/x.onnx"),
    Case("--json names a folder", ("regions", "good.npz", *BOX, "--json", "out"), stderr=r"is a folder"),
    Case("--json in a missing folder", ("regions", "good.npz", *BOX, "--json", "out/no/r.json"),
         stderr=r"folder .*no does not exist", target="out/no/r.json"),
    Case("--plot with a wrong suffix", ("regions", "good.npz", *BOX, "--plot", "out/r.jpg"), stderr=r"\.png",
         target="out/r.jpg"),
]


# ----- running a row -------------------------------------------------------------------------------
def _argv(case: Case, inputs: Path, folder: Path) -> list[str]:
    """The row's argv with input names made paths in ``inputs`` (built on first use) and ``out``
    paths in the row's own ``folder``."""
    argv = []
    for token in case.argv:
        if token in INPUTS:
            path = inputs / token
            if not path.exists():
                INPUTS[token](path)
            argv.append(str(path))
        elif token == "out" or token.startswith("out/"):
            argv.append(str(folder / token))
        else:
            argv.append(token)
    return argv


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_line(stderr: str, pattern: str, code: int) -> str:
    """stderr is exactly one line, ``error: ...`` (or ``interrupted``), matching ``pattern``."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    if code == 2:
        assert lines[0].startswith("error: "), lines[0]
    assert re.search(pattern, lines[0]), (pattern, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One folder for the whole table: inputs are built once (the zip bomb takes a second)."""
    return tmp_path_factory.mktemp("hostile")


SUBPROCESS = {"zip bomb (default limit)"}  # rows run as a real process, their peak memory measured


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_row(case: Case, workdir: Path):
    folder = workdir / re.sub(r"\W+", "_", case.id)
    (folder / "out").mkdir(parents=True)
    argv = _argv(case, workdir, folder)
    if case.prepare:
        case.prepare(folder)
    before = _listing(folder)
    if case.id in SUBPROCESS:
        code, stderr, peak = _run_process(argv, folder)
        assert peak < 1 << 30, f"peak RSS {peak / 2**20:.0f} MiB: the file was read"
    else:
        result = runner.invoke(app, argv)
        code, stderr = result.exit_code, result.stderr
    assert code == case.code, (case.id, stderr)
    if case.code != 0:
        assert_one_line(stderr, case.stderr, case.code)
    if case.target:
        assert not (folder / case.target).exists()
    if case.check:
        case.check(folder, stderr)
    left = _listing(folder) - before
    if case.code != 0:
        assert not left, left  # nothing written, no temporary file
    assert not [name for name in left if Path(name).name.startswith(".")], left


#: ``python -m quasieq`` that writes its own peak resident memory (VmHWM, kB) to the file named first:
#: measured inside the process, because the rusage of a child forked from a large test session
#: counts the session's pages too.
_MEASURED = (
    "import atexit, runpy, sys\n"
    "report = sys.argv.pop(1)\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    open(report, 'w').write(status.split('VmHWM:')[1].split()[0])\n"
    "atexit.register(peak)\n"
    "runpy.run_module('quasieq', run_name='__main__')\n"
)


def _run_process(argv: list[str], folder: Path) -> tuple[int, str, int]:
    """Run the CLI on ``argv`` in a fresh process: (exit code, stderr, its peak RSS in bytes)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc/self/status")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    report = folder.parent / f"{folder.name}.peak"
    proc = subprocess.run([sys.executable, "-c", _MEASURED, str(report), *argv], capture_output=True, text=True,
                          env=env, timeout=240)
    return proc.returncode, proc.stderr, int(report.read_text()) * 1024


# ----- a FIFO (needs a reader while the command writes) ---------------------------------------------
def test_json_into_a_fifo_is_streamed_and_the_fifo_stays(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo, 0o640)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    model = tmp_path / "good.npz"
    INPUTS["good.npz"](model)
    result = runner.invoke(app, ["regions", str(model), *BOX, "--json", str(fifo)])
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    st = fifo.lstat()
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    assert len(json.loads(got[0])["regions"]) == len(qe.regions(_good_net(), qe.Box.cube(2)))


# ----- a real read-only folder ---------------------------------------------------------------------
@contextlib.contextmanager
def read_only_folder(parent: Path):
    """A folder no one can create files in, root included: a read-only tmpfs mount, else ``chattr +i``,
    else (not root) permission bits. Yields (folder, how); skips only when none of them holds."""
    folder = parent / "ro"
    folder.mkdir()

    def writable() -> bool:
        try:
            (folder / "probe").touch()
        except OSError:
            return False
        (folder / "probe").unlink()
        return True

    attempts = [
        ("read-only tmpfs mount", ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
         ["umount", str(folder)]),
        ("chattr +i", ["chattr", "+i", str(folder)], ["chattr", "-i", str(folder)]),
    ]
    for how, setup, undo in attempts:
        if subprocess.run(setup, capture_output=True).returncode == 0:
            if not writable():
                try:
                    yield folder, how
                finally:
                    subprocess.run(undo, capture_output=True)
                return
            subprocess.run(undo, capture_output=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            if not writable():
                yield folder, "chmod 555"
                return
        finally:
            folder.chmod(0o755)
    pytest.skip("no way to make a read-only folder here: not root, and neither mount nor chattr works")


def test_read_only_output_folder_is_refused_before_the_work(tmp_path):
    model = tmp_path / "good.npz"
    INPUTS["good.npz"](model)
    with read_only_folder(tmp_path) as (folder, how):
        start = time.perf_counter()
        result = runner.invoke(app, ["wide", str(model), *BOX, "--json", str(folder / "w.json"), "--samples", "1000"])
        seconds = time.perf_counter() - start
        where = re.escape(str(folder))
        line = assert_one_line(result.stderr, rf"--json {where}/w\.json: folder {where} is not writable", 2)
        assert result.exit_code == 2, (how, line)
        assert ".quasieq" not in line and "tmp" not in line.split("folder")[-1].replace(str(folder), "")
        assert list(folder.iterdir()) == []
    assert seconds < 60  # refused at the start: no region enumeration, no construction


# ----- signals sent to real subprocesses -----------------------------------------------------------
def _spawn(argv: list[str], tmpdir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmpdir)}
    return subprocess.Popen([sys.executable, "-m", "quasieq", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _interrupted_when(ready: Callable[[], bool], proc: subprocess.Popen, signum: int, code: int,
                      never: str) -> float:
    """Send ``signum`` to ``proc`` once ``ready()``; check its exit ``code`` and its one line
    ``interrupted``; return the seconds from the signal to the exit."""
    try:
        assert _wait_for(ready, proc, 200), never
        sent = time.monotonic()
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
        latency = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert_one_line(stderr, r"^interrupted$", code)
    return latency


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_the_float32_check_cleans_up(tmp_path, signum, code):
    """The float32 check exports the form to a ``quasieq-*`` folder in TMPDIR: the signal arrives
    while it exists, and afterwards neither it nor any staged output is left."""
    tmpdir, out = tmp_path / "tmp", tmp_path / "out"
    tmpdir.mkdir()
    out.mkdir()
    model = tmp_path / "good.npz"
    INPUTS["good.npz"](model)
    proc = _spawn(["wide", str(model), *BOX, "--samples", "3000000", "--out", str(out / "w.onnx"),
                   "--json", str(out / "w.json")], tmpdir)
    latency = _interrupted_when(lambda: any(tmpdir.glob("quasieq-*")), proc, signum, code,
                                "the check stage never started")
    # (a library's own session marker `.ses` may sit in TMPDIR after any run: only ours must be gone)
    assert list(tmpdir.glob("quasieq-*")) == [] and list(out.iterdir()) == []
    assert latency < 30  # generous for a loaded CI machine; measured latencies are in docs/benchmarks.md


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum`` (the SigCgt mask of /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:")), 0)
    return bool(mask >> (signum - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_the_package_loads_ends_with_the_one_line(tmp_path, signum, code):
    """The ``quasieq`` script starts in quasieq_launcher, outside the package: once its handlers are in
    (Python itself never catches SIGTERM, so the mask shows them), a signal sent while ``import
    quasieq`` still runs (a second or more) ends the process with the line and the code, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "quasieq_launcher", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    latency = _interrupted_when(lambda: _catches(proc.pid, signal.SIGTERM) and not _maps(proc.pid, "llvmlite"),
                                proc, signum, code, "no handler was in place before the package loaded numba")
    assert latency < 10


def _maps(pid: int, library: str) -> bool:
    """Whether process ``pid`` has mapped a file whose path contains ``library`` (/proc/PID/maps): numba's
    llvmlite is mapped while ``import quasieq`` runs, so its absence means the package is still loading."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return True


def test_the_launcher_says_what_the_package_says():
    assert quasieq_launcher.MESSAGE == MESSAGE
    assert quasieq_launcher.EXIT_CODES == {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}


def _resident_mib(pid: int) -> float:
    """The resident set size of process ``pid`` (Linux /proc), in MiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident size from /proc")
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_inside_one_long_kernel_call_ends_the_process_at_once(tmp_path, signum, code):
    """4-200-200-200-1's first layer is one kernel call that runs for minutes (and fills memory): the
    Python handler cannot run until it returns, so the interrupt watchdog must end the process, with
    the one line, the exit code and nothing left in the output folder. Without the watchdog the
    process does not stop before the kernel ends."""
    rng = np.random.default_rng(0)
    arch = [4, 200, 200, 200, 1]
    net = qe.ReluNet([rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(arch[:-1], arch[1:], strict=True)],
                     [rng.normal(size=o) * 0.1 for o in arch[1:]])
    model, out = tmp_path / "big.npz", tmp_path / "out"
    qe.save(net, model)
    out.mkdir()
    proc = _spawn(["regions", str(model), *BOX, "--json", str(out / "r.json")], tmp_path)
    # past start-up (about 250 MiB of libraries) and into the first layer's split
    latency = _interrupted_when(lambda: _resident_mib(proc.pid) > 450, proc, signum, code,
                                "the enumeration never started")
    assert list(out.iterdir()) == []
    assert latency < 10  # measured 0.6-1.0 s; the kernel call alone runs for minutes


# ----- the export quasieq recommends for a pickled model must work as written ----------------------
def test_the_recommended_torch_export_runs_and_loads(tmp_path, monkeypatch):
    """``quasieq info m.pt`` names a torch.onnx.export call: run exactly that sentence (with ``model``
    and ``D`` bound, in a fresh folder) and check the file it writes loads and computes the module."""
    torch = pytest.importorskip("torch")
    (tmp_path / "m.pt").write_bytes(b"\x80\x04K\x01.")
    result = runner.invoke(app, ["info", str(tmp_path / "m.pt")])
    line = assert_one_line(result.stderr, r"torch\.onnx\.export", 2)
    sentence = re.search(r"(torch\.onnx\.export\(.*?\"model\.onnx\"\))", line).group(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).eval()
    monkeypatch.chdir(tmp_path)
    exec(sentence, {"torch": torch, "model": model, "D": 3})  # the user's own step, verbatim
    net = qe.load(tmp_path / "model.onnx")
    X = np.random.default_rng(1).uniform(-1, 1, (64, 3))
    with torch.no_grad():
        expected = model(torch.tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-5, atol=1e-5)


def test_an_interrupt_wrapped_by_compiled_code_still_counts_as_one():
    """numba reports a KeyboardInterrupt raised while it boxes a result as a SystemError caused by it."""
    from quasieq.interrupts import Terminated, exit_code, interrupt_cause

    try:
        try:
            raise Terminated()
        except KeyboardInterrupt as inner:
            raise SystemError("returned a result with an exception set") from inner
    except SystemError as outer:
        cause = interrupt_cause(outer)
    assert isinstance(cause, Terminated) and exit_code(cause) == 143
    assert interrupt_cause(ValueError("no signal here")) is None
