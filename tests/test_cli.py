"""The ``quasieq`` command line, checked against the Python API it wraps and against forward passes.

Every number the CLI prints or writes is compared with an independent computation: the net's own
attributes, ``qe.regions`` on the same net and box, and ``net.forward`` at the points the JSON names.
Bad input must give exit code 2, exactly one ``error: ...`` line on stderr and no file at all.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import quasieq as qe
from conftest import random_net
from quasieq.cli import EXIT_BAD_INPUT, app
from quasieq.io.outputs import staged_outputs

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def table_value(stdout: str, key: str) -> str:
    """The value cell of the row ``key`` in a two-column rich table."""
    match = re.search(rf"│ {re.escape(key)}\s+│\s+(.+?) │", stdout)
    assert match, f"row {key!r} not found in:\n{stdout}"
    return match.group(1).strip()


def table_int(stdout: str, key: str) -> int:
    return int(table_value(stdout, key).replace(",", ""))


@pytest.fixture(autouse=True)
def _plain_pipe(monkeypatch):
    """The tests' stdout is a pipe: make sure no environment variable forces rich into terminal mode."""
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def models(tmp_path, rng):
    """Seeded random nets with inputs of dimension 1, 2 and 3, saved as .npz, and the nets themselves."""
    nets = {1: random_net((1, 6, 5, 2), rng), 2: random_net((2, 8, 6, 1), rng), 3: random_net((3, 5, 4, 1), rng)}
    paths = {}
    for d, net in nets.items():
        paths[d] = tmp_path / f"net{d}.npz"
        qe.save(net, paths[d])
    return nets, paths


def test_info_reports_the_nets_sizes(models):
    nets, paths = models
    net = nets[2]
    result = invoke("info", paths[2])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert table_int(out, "input dimension") == net.in_dim
    assert table_int(out, "output dimension") == net.out_dim
    assert table_int(out, "width") == net.width
    assert table_int(out, "hidden layers") == net.hidden_layers
    assert table_int(out, "depth") == net.depth
    assert table_int(out, "neurons") == net.neurons
    assert table_int(out, "parameters") == net.parameters
    assert table_value(out, "widths") == ", ".join(map(str, net.widths))
    for W, _ in net.layers:  # one row per layer with its (out, in) shape
        assert f"({W.shape[0]}, {W.shape[1]})" in out


def test_regions_count_and_volumes_match_the_api(models):
    nets, paths = models
    result = invoke("regions", paths[2], "--box", -1.5, 2)
    assert result.exit_code == 0, result.output
    box = qe.Box.cube(2, -1.5, 2.0)
    cx = qe.regions(nets[2], box)
    assert table_int(result.stdout, "regions") == len(cx)
    assert table_int(result.stdout, "dropped lower-dim cells") == cx.dropped_lower_dim
    assert float(table_value(result.stdout, "box volume")) == pytest.approx(box.volume, rel=1e-9)
    assert float(table_value(result.stdout, "total volume")) == pytest.approx(box.volume, rel=1e-9)


def test_regions_with_bounds_file_matches_the_api(models, tmp_path):
    nets, paths = models
    bounds = tmp_path / "bounds.json"
    lo, hi = [-1.0, -0.5, 0.0], [0.5, 1.0, 2.0]
    bounds.write_text(json.dumps({"lo": lo, "hi": hi}))
    result = invoke("regions", paths[3], "--bounds", bounds)
    assert result.exit_code == 0, result.output
    assert table_int(result.stdout, "regions") == len(qe.regions(nets[3], qe.Box(lo, hi)))


def test_regions_json_has_the_design_keys_and_agrees_with_the_api(models, tmp_path):
    nets, paths = models
    net, out = nets[2], tmp_path / "regions.json"
    result = invoke("regions", paths[2], "--box", -1, 1, "--json", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1
    assert {"count", "dropped_lower_dim", "min_radius", "box", "volume_total", "seconds", "regions"} <= set(doc)
    assert doc["box"] == {"lo": [-1.0, -1.0], "hi": [1.0, 1.0]}
    cx = qe.regions(net, qe.Box.cube(2, -1.0, 1.0))
    assert doc["count"] == len(cx) == len(doc["regions"])
    assert doc["volume_total"] == pytest.approx(cx.volume_total, rel=1e-12)
    assert sum(r["volume"] for r in doc["regions"]) == pytest.approx(4.0, rel=1e-9)
    for region in doc["regions"]:
        assert {"pattern", "volume", "interior_point", "radius", "affine", "facets", "vertices"} <= set(region)
        assert {"normals", "offsets", "sources"} <= set(region["facets"])
    # the written affine maps are the net's: compare with forward passes at interior points and vertices
    for region in doc["regions"]:
        A, b = np.array(region["affine"]["A"]), np.array(region["affine"]["b"])
        X = np.vstack([region["interior_point"], region["vertices"]])
        np.testing.assert_allclose(X @ A.T + b, net.forward(X), rtol=1e-9, atol=1e-9)
        bits = "".join("1" if p else "0" for p in net.activation_pattern(region["interior_point"])[0])
        assert region["pattern"].replace("|", "") == bits


def test_regions_plot_is_written(models, tmp_path):
    _, paths = models
    for d in (1, 2):
        plot = tmp_path / f"plot{d}.png"
        result = invoke("regions", paths[d], "--box", -1, 1, "--plot", plot)
        assert result.exit_code == 0, result.output
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_only_on_a_terminal(models):
    _, paths = models
    piped = invoke("regions", paths[2], "--box", -1, 1)
    assert "found" not in piped.stdout and "\x1b" not in piped.stdout
    terminal = invoke("regions", paths[2], "--box", -1, 1, env={"TTY_COMPATIBLE": "1"})
    assert terminal.exit_code == 0, terminal.output
    assert "found" in terminal.stdout


def _bad_inputs(paths, tmp_path):
    """(name, CLI arguments, text the one-line message must contain) for every kind of bad input."""
    (tmp_path / "model.pt").write_bytes(b"\x80\x02 pretend pickle")
    (tmp_path / "garbage.onnx").write_bytes(b"this is not a protobuf")
    (tmp_path / "bounds3.json").write_text(json.dumps({"lo": [0, 0, 0], "hi": [1, 1, 1]}))
    (tmp_path / "broken.json").write_text('{"lo": [0, 0], "hi": [1,')
    (tmp_path / "nokeys.json").write_text('{"low": [0, 0], "high": [1, 1]}')
    return [
        ("missing model", ["regions", tmp_path / "nope.npz", "--box", 0, 1], "nope.npz"),
        ("pickled .pt", ["regions", tmp_path / "model.pt", "--box", 0, 1], "model.pt"),
        ("corrupt onnx", ["regions", tmp_path / "garbage.onnx", "--box", 0, 1], "garbage.onnx"),
        ("lo >= hi", ["regions", paths[2], "--box", 1, 1], "lo < hi"),
        ("box not numbers", ["regions", paths[2], "--box", "a", "1"], "--box"),
        ("box and bounds", ["regions", paths[2], "--box", 0, 1, "--bounds", tmp_path / "bounds3.json"], "exactly one"),
        ("neither box nor bounds", ["regions", paths[2]], "exactly one"),
        ("bounds dimension", ["regions", paths[2], "--bounds", tmp_path / "bounds3.json"], "dimension 3"),
        ("bounds bad JSON", ["regions", paths[2], "--bounds", tmp_path / "broken.json"], "not valid JSON"),
        ("bounds keys", ["regions", paths[2], "--bounds", tmp_path / "nokeys.json"], '"lo" and "hi"'),
        ("missing bounds", ["regions", paths[2], "--bounds", tmp_path / "nofile.json"], "nofile.json"),
        # --max-regions 1 would also fail, later: the plot message proves the refusal comes before any work
        ("plot D=3", ["regions", paths[3], "--box", 0, 1, "--plot", tmp_path / "p.png", "--max-regions", 1],
         "dimension 1 or 2"),
        ("plot suffix", ["regions", paths[2], "--box", 0, 1, "--plot", tmp_path / "p.jpg"], ".png"),
        ("json folder missing", ["regions", paths[2], "--box", 0, 1, "--json", tmp_path / "no" / "x.json"],
         "does not exist"),
        ("info missing model", ["info", tmp_path / "nope.onnx"], "nope.onnx"),
        ("unknown option", ["regions", paths[2], "--box", 0, 1, "--frobnicate"], "--frobnicate"),
    ]


def test_bad_input_exits_2_with_one_line_and_no_file(models, tmp_path):
    _, paths = models
    for name, args, needle in _bad_inputs(paths, tmp_path):
        before = sorted(p.name for p in tmp_path.iterdir())
        # ask for an output file too: a failed run must not leave it (or a temporary file) behind
        outputs = ["--json", tmp_path / "out.json"] if args[0] == "regions" and "--json" not in args else []
        result = invoke(*args, *outputs)
        assert result.exit_code == EXIT_BAD_INPUT, (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert needle in lines[0], (name, lines[0])
        assert "Traceback" not in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == before, name  # nothing written, no temp file


def test_max_regions_exceeded_says_how_many_and_writes_nothing(models, tmp_path):
    nets, paths = models
    true_count = len(qe.regions(nets[2], qe.Box.cube(2, -1.0, 1.0)))
    limit = true_count // 2
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    result = invoke("regions", paths[2], "--box", -1, 1, "--max-regions", limit, "--json", out, "--plot", plot)
    assert result.exit_code == EXIT_BAD_INPUT
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    found = [int(n) for n in re.findall(r"\d+", line)]
    assert any(limit < n <= true_count for n in found), line  # the number found, above the limit
    assert not out.exists() and not plot.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())


def test_staged_outputs_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.png"
    with pytest.raises(RuntimeError), staged_outputs() as stage:
        stage(a).write_text("complete")
        stage(b).write_text("half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
    with staged_outputs() as stage:
        stage(a).write_text("first")
        stage(b).write_text("second")
    assert (a.read_text(), b.read_text()) == ("first", "second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.png"]


def test_demo_writes_plot_json_and_an_onnx_that_matches_the_trained_net(tmp_path):
    torch = pytest.importorskip("torch")
    from quasieq.demo import DEMO_BOX, TrainingSetup, train

    out = tmp_path / "demo"
    samples = 2000
    result = invoke("demo", "--out", out, "--samples", samples)
    assert result.exit_code == 0, result.output
    plot, doc_path, model = out / "regions.png", out / "regions.json", out / "model.onnx"
    for path in (plot, doc_path, model):
        assert str(path) in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the demo is seeded: retraining gives the same net, which the exported ONNX must compute
    module, mse, _ = train(TrainingSetup())
    assert float(table_value(result.stdout, "training MSE")) == pytest.approx(mse, rel=1e-3)
    exported = qe.load(model)
    X = DEMO_BOX.sample(500, np.random.default_rng(7))
    with torch.no_grad():
        expected = module(torch.tensor(X, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(exported.forward(X), expected, rtol=1e-5, atol=1e-6)

    doc = json.loads(doc_path.read_text())
    assert doc["schema_version"] == 1
    count = len(qe.regions(qe.from_torch(module), DEMO_BOX))
    assert doc["count"] == count == table_int(result.stdout, "linear regions")
    assert doc["volume_total"] == pytest.approx(DEMO_BOX.volume, rel=1e-9)

    # the rebuilt forms: transforms.json describes each written model, which the API rebuilds identically
    # (the float32 weights of model.onnx are the trained module's, exactly representable in float64)
    forms = json.loads((out / "transforms.json").read_text())
    assert forms["schema_version"] == 1 and forms["box"] == DEMO_BOX.to_dict()
    assert [(f["form"], f["method"]) for f in forms["forms"]] == [
        ("wide", "compact"), ("deep", "compact"), ("wide", "paper"), ("deep", "paper")]
    assert (out / "transforms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for f in forms["forms"]:
        built = (qe.to_wide if f["form"] == "wide" else qe.to_deep)(exported, DEMO_BOX, f["delta"], method=f["method"])
        for key in ("simplices", "width", "hidden_layers", "depth", "parameters"):
            value = built.provenance.simplices if key == "simplices" else getattr(built, key)
            assert f[key] == value, (f["form"], f["method"], key)
        assert f["report"]["samples"] == samples
        written = qe.load(out / f"{f['form']}_{f['method']}.onnx")
        assert (written.width, written.hidden_layers) == (built.width, built.hidden_layers)
