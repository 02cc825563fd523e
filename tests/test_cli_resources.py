"""Resource limits, time limits, certificates and boxes through the ``quasieq`` command line.

Each expectation is computed here independently: sample points from the box's own sampler, the nets'
forward passes, Clopper–Pearson limits from the Beta law, region counts from ``qe.regions`` on a net
folded by hand, sizes from construct/sizes.py's formulas checked against built nets elsewhere
(tests/test_sizes.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import quasieq as qe
from conftest import random_net
from oracles import seeded_relu_net
from quasieq.cli import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_TIME_LIMIT
from quasieq.verify import clopper_pearson, onnx_function
from test_cli import _plain_pipe, invoke  # noqa: F401  (_plain_pipe: autouse fixture)
from test_cli_transforms import compare_points

BOX = qe.Box.cube(2, -1.0, 1.0)


@pytest.fixture
def saved(tmp_path, rng):
    """A random 2-6-5-1 net, the seeded 2-16-16-1 and 2-64-64-1 nets, saved as .npz."""
    nets = {"a": random_net((2, 6, 5, 1), rng), "demo": seeded_relu_net("2-16-16-1"),
            "big": seeded_relu_net("2-64-64-1")}
    paths = {}
    for name, net in nets.items():
        paths[name] = tmp_path / f"{name}.npz"
        qe.save(net, paths[name])
    return nets, paths


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# ----- --tol -------------------------------------------------------------------------------------------
def test_tol_on_compare_is_the_threshold_of_disagreement(saved, tmp_path):
    """B = A + 1e-3 on its output: disagreement everywhere below that tolerance, nowhere above it."""
    nets, paths = saved
    a = nets["a"]
    shifted = qe.ReluNet(list(a.weights), [*a.biases[:-1], a.biases[-1] + 1e-3])
    qe.save(shifted, tmp_path / "b.npz")
    for tol, measure in ((2e-3, 0.0), (5e-4, BOX.volume)):
        doc_path = tmp_path / f"cmp{tol:g}.json"
        result = invoke("compare", paths["a"], tmp_path / "b.npz", "--box", -1, 1, "--samples", 500, "--tol", tol,
                        "--json", doc_path)
        assert result.exit_code == 0, result.output
        doc = json.loads(doc_path.read_text())
        assert doc["tolerance"] == tol and doc["disagreement_measure"] == measure


@pytest.mark.parametrize("form", ["wide", "deep"])
def test_tol_on_wide_and_deep_sets_both_reports_threshold(form, saved, tmp_path):
    """--tol T: both reports use T, and their counts are the points of compare's sample (seed 3) where
    |net − form| > T, float64 and through the float32 ONNX export written here."""
    nets, paths = saved
    net, samples, seed, delta = nets["a"], 600, 3, 0.05
    built = (qe.to_wide if form == "wide" else qe.to_deep)(net, BOX, delta)
    X = compare_points(samples, seed)
    qe.save(built, tmp_path / "f32.onnx", dtype="float32")
    for tol in (1e-9, 0.05):
        doc_path = tmp_path / f"{form}{tol:g}.json"
        result = invoke(form, paths["a"], "--box", -1, 1, "--delta", delta, "--samples", samples, "--seed", seed,
                        "--tol", tol, "--json", doc_path)
        assert result.exit_code in (0, EXIT_CHECK_FAILED), result.output
        doc = json.loads(doc_path.read_text())
        assert doc["report"]["tolerance"] == doc["report_float32"]["tolerance"] == tol
        count64 = int(np.count_nonzero(np.abs(built.forward(X) - net.forward(X)).max(axis=1) > tol))
        exported = onnx_function(tmp_path / "f32.onnx")(X)
        count32 = int(np.count_nonzero(np.abs(exported - net.forward(X)).max(axis=1) > tol))
        assert doc["report"]["disagreement_measure"] == pytest.approx(count64 / samples * BOX.volume, abs=1e-15)
        assert doc["report_float32"]["disagreement_measure"] == pytest.approx(count32 / samples * BOX.volume, abs=1e-15)
        upper = clopper_pearson(count64, samples)[1] * BOX.volume
        assert result.exit_code == (0 if upper <= delta else EXIT_CHECK_FAILED)


# ----- the float32 claim of the README --------------------------------------------------------------------
@pytest.mark.parametrize("form", ["wide", "deep"])
def test_compact_forms_keep_their_float64_measure_in_float32(form, saved, tmp_path):
    """README: the compact forms keep their float64 measure in float32. On the demo's architecture
    (seeded 2-16-16-1) at δ = 1e-3 and the default 100,000 samples, the float32 export's measure is
    no higher than the float64 measure's upper 95% limit and both pass the δ check."""
    nets, paths = saved
    doc_path = tmp_path / "form.json"
    result = invoke(form, paths["demo"], "--box", -1, 1, "--delta", 1e-3, "--json", doc_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(doc_path.read_text())
    assert doc["report_float32"]["disagreement_measure"] <= doc["report"]["ci95"][1]
    assert doc["report_float32"]["ci95"][1] <= 1e-3


# ----- all-or-nothing output -------------------------------------------------------------------------
def test_a_failure_after_outputs_were_staged_leaves_no_file(saved, tmp_path, monkeypatch):
    """The model and the JSON are staged before the plot; the plot fails (the disk is full): no target
    exists afterwards and no staged temporary file is left in the folder."""
    import quasieq.viz

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(quasieq.viz, "plot_transform", disk_full)
    nets, paths = saved
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("wide", paths["a"], "--box", -1, 1, "--delta", 0.05, "--samples", 300,
                    "--out", out / "wide.onnx", "--json", out / "wide.json", "--plot", out / "wide.png")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "No space left on device" in one_error_line(result)
    assert sorted(out.iterdir()) == []


# ----- certificates ---------------------------------------------------------------------------------------
def test_ten_samples_are_inconclusive_not_passed(saved):
    nets, paths = saved
    result = invoke("wide", paths["a"], "--box", -1, 1, "--delta", 1e-3, "--samples", 10)
    assert result.exit_code == EXIT_CHECK_FAILED, result.output
    assert "inconclusive: 10 samples cannot show a measure below δ = 0.001, need at least 14,754" in result.stdout
    assert "passed" not in result.stdout


def test_a_delta_whose_weights_overflow_float32_writes_nothing(saved, tmp_path):
    nets, paths = saved
    out = tmp_path / "w.onnx"
    result = invoke("wide", paths["a"], "--box", -1, 1, "--delta", 1e-40, "--out", out)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "beyond the largest float32" in one_error_line(result)
    assert not out.exists()


def test_one_output_classification_says_it_reads_the_one_logit_rule(saved):
    nets, paths = saved
    result = invoke("wide", paths["a"], "--box", -1, 1, "--task", "classification", "--delta", 0.05, "--samples", 400)
    assert result.exit_code in (0, EXIT_CHECK_FAILED), result.output
    assert "one-logit rule [h > 0]" in result.stdout


def test_one_class_on_the_whole_box_builds_the_constant_classifier(tmp_path):
    net = qe.ReluNet([np.eye(2), np.array([[1.0, 2.0]])], [np.zeros(2), np.array([5.0])])  # h > 0 on the box
    qe.save(net, tmp_path / "one.npz")
    out = tmp_path / "deep.onnx"
    result = invoke("deep", tmp_path / "one.npz", "--box", -1, 1, "--task", "classification", "--samples", 20_000,
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert "gives class 1 on the whole box" in result.stderr and "constant classifier" in result.stderr
    X = BOX.sample(1000, np.random.default_rng(0))
    assert np.all(onnx_function(out)(X).argmax(axis=1) == 1)


# ----- size and time limits ---------------------------------------------------------------------------------
def test_size_limits_stop_wide_with_one_line(saved):
    nets, paths = saved
    base = ["wide", paths["demo"], "--box", -1, 1, "--samples", 100]
    line = one_error_line(invoke(*base, "--max-regions", 20))
    assert "more than 20 regions" in line and "--max-regions" in line
    line = one_error_line(invoke(*base, "--max-simplices", 10))
    assert "more than 10 regions" in line and "raise --max-simplices" in line
    # both caps set: the run stops at the smaller one, and the message names that one
    line = one_error_line(invoke(*base, "--max-regions", 20, "--max-simplices", 10))
    assert "more than 10 regions" in line and "raise --max-simplices" in line
    line = one_error_line(invoke(*base, "--max-regions", 10, "--max-simplices", 20))
    assert "more than 10 regions" in line and "raise --max-regions" in line
    line = one_error_line(invoke(*base, "--max-form-bytes", 10_000))
    assert "neurons and up to" in line and "--max-form-bytes" in line


def test_max_cells_bounds_the_exact_check(saved):
    nets, paths = saved
    line = one_error_line(invoke("compare", paths["a"], paths["demo"], "--box", -1, 1, "--exact", "--max-cells", 5))
    assert "more than 5 cells" in line and "--max-cells" in line
    line = one_error_line(invoke("compare", paths["a"], paths["demo"], "--box", -1, 1, "--max-cells", 5))
    assert "add --exact" in line


@pytest.mark.parametrize("argv, stage", [
    (("regions", "{big}", "--box", -1, 1), "enumerating regions"),
    (("compare", "{big}", "{a}", "--box", -1, 1, "--samples", 3_000_000), "comparing on sample points"),
])
def test_time_limit_exits_3_with_one_line(argv, stage, saved):
    """A limit that has passed by the stage's first check (1 µs: the setup before it takes longer; with
    0.01 s a warm process enumerated the big net, one kernel call after one check, within the limit)."""
    nets, paths = saved
    args = [str(a).format(**paths) for a in argv]
    result = invoke(*args, "--time-limit", 1e-6)
    assert result.exit_code == EXIT_TIME_LIMIT, result.output
    line = one_error_line(result)
    assert f"time limit of 1e-06 s reached while {stage}" in line


# ----- boxes ----------------------------------------------------------------------------------------------
def test_boxes_through_the_cli(saved, tmp_path):
    nets, paths = saved
    thin = tmp_path / "thin.json"
    thin.write_text(json.dumps({"lo": [-1.0, 0.5], "hi": [1.0, 0.5 + 1e-9]}))
    doc_path = tmp_path / "r.json"
    assert invoke("regions", paths["demo"], "--bounds", thin, "--json", doc_path).exit_code == 0
    doc = json.loads(doc_path.read_text())
    W, b = nets["demo"].layers[0]
    lo, side = np.array([-1.0, 0.5]), np.array([2.0, 1e-9])
    folded = qe.ReluNet([W * side, *nets["demo"].weights[1:]], [b + W @ lo, *nets["demo"].biases[1:]])
    assert doc["count"] == len(qe.regions(folded, qe.Box.cube(2, 0.0, 1.0)))
    assert doc["volume_total"] == pytest.approx(2e-9, rel=1e-9)
    for lo_hi in ((-1e308, 1e308), (-1e200, 1e200), (-1e-170, 1e-170)):
        line = one_error_line(invoke("regions", paths["demo"], "--box", *lo_hi))
        assert "float64" in line
    wide = qe.ReluNet([np.ones((2, 20)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    qe.save(wide, tmp_path / "twenty.npz")
    line = one_error_line(invoke("regions", tmp_path / "twenty.npz", "--box", -1, 1))
    assert "20 inputs" in line and "--plane" in line
