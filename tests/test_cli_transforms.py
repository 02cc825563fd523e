"""``quasieq wide|deep|compare`` and the transform plots, checked against independent computations.

* Sizes the CLI prints and writes are the attributes of ``qe.to_wide``/``qe.to_deep`` rebuilt here.
* The measures in the JSON are recomputed: the float64 one by ``qe.compare`` on the same seed, the
  float32 one by running the written ONNX file in ONNX Runtime on the same sample points.
* Exit codes follow the measures: a single Monte-Carlo point inside a strip makes the measured measure
  vol(box) > δ (exit 1), a point outside makes it 0 (exit 0); which seed does which is found here with
  the box's own sampler and the nets' forward passes.
* The ``compare --max-measure`` threshold is checked against the closed form of the Clopper–Pearson
  upper limit with no disagreement, 1 − (α/2)^(1/N).
* Plots: the error-set image is recomputed pixel by pixel; the univariate curves are the nets' forward
  passes; the drawn simplex edges close into triangles that tile the box.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from matplotlib.collections import LineCollection

import quasieq as qe
from conftest import random_net
from quasieq import tolerances
from quasieq.cli import EXIT_BAD_INPUT, EXIT_CHECK_FAILED
from quasieq.verify import clopper_pearson, onnx_function
from quasieq.viz import plot_error_set, plot_simplices, plot_univariate
from test_cli import _plain_pipe, invoke, table_int  # noqa: F401  (_plain_pipe: autouse fixture)

TRANSFORM_KEYS = {"schema_version", "method", "task", "delta", "simplices", "width", "hidden_layers", "depth",
                  "neurons", "parameters", "max_abs_weight", "error_bound", "table1", "report", "report_float32"}
COMPARE_KEYS = {"schema_version", "method", "sup_error", "disagreement_measure", "disagreement_fraction", "ci95",
                "samples", "tolerance", "label_disagreement_measure", "cells", "witness"}
BOX = qe.Box.cube(2, -1.0, 1.0)
BUILD = {"wide": qe.to_wide, "deep": qe.to_deep}


@pytest.fixture
def nets(tmp_path, rng):
    """Two different 2-D nets and a 1-D and 3-D one, saved as .npz: (nets, paths) keyed by name."""
    nets = {"a": random_net((2, 6, 5, 1), rng), "b": random_net((2, 6, 5, 1), rng),
            "one": random_net((1, 6, 5, 2), rng), "three": random_net((3, 4, 1), rng)}
    paths = {}
    for name, net in nets.items():
        paths[name] = tmp_path / f"{name}.npz"
        qe.save(net, paths[name])
    return nets, paths


def compare_points(samples: int, seed: int) -> np.ndarray:
    """compare's sample points for ``seed`` when they fit in one chunk: the chunk's stream is the first
    child of SeedSequence(seed)."""
    return BOX.sample(samples, np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]))


def flagged_on_the_reports_points(net, onnx_path, samples: int, seed: int, tol: float) -> int:
    """How many of compare's sample points (seed ``seed``, one chunk) have |net − ONNX model| > tol."""
    X = compare_points(samples, seed)
    return int(np.count_nonzero(np.abs(net.forward(X) - onnx_function(onnx_path)(X)).max(axis=1) > tol))


# The paper form's weights reach ~1e10: its float32 export is useless (that is what report_float32
# shows), so its written model is checked in float64.
@pytest.mark.parametrize("form, method, dtype, rtol", [("wide", "compact", "float32", 1e-5),
                                                       ("deep", "compact", "float32", 1e-5),
                                                       ("wide", "paper", "float64", 1e-9)])
def test_transform_sizes_reports_and_onnx_match_the_api(form, method, dtype, rtol, nets, tmp_path):
    nets_, paths = nets
    net, delta, samples, seed = nets_["a"], 0.05, 3000, 4
    doc_path, onnx_path = tmp_path / "form.json", tmp_path / "form.onnx"
    result = invoke(form, paths["a"], "--box", -1, 1, "--delta", delta, "--method", method, "--samples", samples,
                    "--seed", seed, "--json", doc_path, "--out", onnx_path, "--dtype", dtype)
    built = BUILD[form](net, BOX, delta, method=method)
    report = qe.compare(net, built, BOX, samples=samples, seed=seed)
    upper = clopper_pearson(round(report.disagreement_fraction * samples), samples)[1] * BOX.volume
    assert result.exit_code == (0 if upper <= delta else EXIT_CHECK_FAILED), result.output
    assert "\x1b" not in result.stdout  # a pipe: no progress bar, no colour

    doc = json.loads(doc_path.read_text())
    assert set(doc) >= TRANSFORM_KEYS and doc["schema_version"] == 1
    assert (doc["method"], doc["task"], doc["delta"]) == (method, "regression", delta)
    for key in ("width", "hidden_layers", "depth", "neurons", "parameters"):
        assert doc[key] == getattr(built, key), key
        assert table_int(result.stdout, key.replace("_", " ")) == getattr(built, key), key
    assert doc["max_abs_weight"] == pytest.approx(built.max_abs_weight(), rel=1e-12)
    assert doc["simplices"] == built.provenance.simplices == table_int(result.stdout, "simplices M")
    assert doc["simplices"] == qe.triangulate(qe.regions(net, BOX), merge=True).M
    table1 = built.provenance.table1
    assert doc["table1"] == {"width": table1.width, "depth": table1.depth}
    assert table_int(result.stdout, "Table 1 width") == doc["table1"]["width"]
    assert doc["error_bound"] == built.provenance.error_bound

    assert set(doc["report"]) == set(doc["report_float32"]) == COMPARE_KEYS
    assert doc["report"]["samples"] == doc["report_float32"]["samples"] == samples
    assert doc["report"]["disagreement_measure"] == report.disagreement_measure
    assert doc["report"]["ci95"] == pytest.approx(list(report.ci95), rel=1e-12)
    tol = doc["report"]["tolerance"]
    assert doc["report_float32"]["tolerance"] == tol == report.tolerance
    float32_path = onnx_path
    if dtype != "float32":
        float32_path = tmp_path / "float32.onnx"
        qe.save(built, float32_path, dtype="float32")
    count = flagged_on_the_reports_points(net, float32_path, samples, seed, tol)
    assert doc["report_float32"]["disagreement_measure"] == pytest.approx(count / samples * BOX.volume, abs=1e-15)

    # the written ONNX computes the built net: wherever the float64 build agrees with the original
    # (outside the strips), the export agrees with the build to the rounding of its precision
    X = BOX.sample(4000, np.random.default_rng(11))
    exported, exact = onnx_function(onnx_path)(X), built.forward(X)
    outside = np.abs(exact - net.forward(X)).max(axis=1) <= tol
    assert outside.mean() > 0.5
    np.testing.assert_allclose(exported[outside], exact[outside], rtol=rtol, atol=rtol)


def test_exit_code_1_exactly_when_the_upper_limit_exceeds_delta(nets, tmp_path):
    """40 Monte-Carlo points at δ = 0.5 on a box of volume 4: with no point where the deep form differs
    from the original the upper 95% limit is 4·(1 − 0.025^(1/40)) ≈ 0.35 ≤ δ (exit 0); with one it is
    4·Beta(0.975; 2, 39) ≈ 0.5 — each seed's hits counted here with the box's sampler and the nets'
    forward passes, the limit from the Beta law; one point alone can never show a measure below δ
    (inconclusive, exit 1, need at least 28 = ⌊ln 0.025 / ln(1 − 0.5/4)⌋ + 1)."""
    nets_, paths = nets
    net, delta, samples = nets_["a"], 0.5, 40
    deep = qe.to_deep(net, BOX, delta)
    expected = {}
    for seed in range(60):
        X = compare_points(samples, seed)
        errors = np.abs(deep.forward(X) - net.forward(X)).max(axis=1)
        hits = int(np.count_nonzero(errors > tolerances.DISAGREE_RELATIVE))
        expected[seed] = (hits, clopper_pearson(hits, samples)[1] * BOX.volume <= delta)
    passing = next(s for s, (_, ok) in expected.items() if ok)
    failing = next(s for s, (hits, ok) in expected.items() if not ok and hits > 0)
    for seed, code, word in ((passing, 0, "passed"), (failing, EXIT_CHECK_FAILED, "FAILED")):
        doc_path = tmp_path / f"deep{seed}.json"
        result = invoke("deep", paths["a"], "--box", -1, 1, "--delta", delta, "--samples", samples, "--seed", seed,
                        "--json", doc_path)
        assert result.exit_code == code, result.output
        assert "upper 95% limit of the disagreement measure" in result.stdout and word in result.stdout
        doc = json.loads(doc_path.read_text())  # written in both cases: the evidence
        assert doc["report"]["disagreement_measure"] == expected[seed][0] / samples * BOX.volume
    one = invoke("deep", paths["a"], "--box", -1, 1, "--delta", delta, "--samples", 1, "--seed", passing)
    assert one.exit_code == EXIT_CHECK_FAILED, one.output
    assert "inconclusive: 1 samples cannot show a measure below δ = 0.5, need at least 28" in one.stdout


@pytest.mark.parametrize("method", ["logits", "demorgan"])
def test_classification_checks_the_label_disagreement(method, nets, tmp_path):
    """A single-logit source (label [h > 0]) against its rebuilt two-score classifier (label argmax)."""
    nets_, paths = nets
    net, delta, samples, seed = nets_["a"], 0.05, 3000, 2
    doc_path = tmp_path / "cls.json"
    result = invoke("wide", paths["a"], "--box", -1, 1, "--task", "classification", "--method", method,
                    "--delta", delta, "--samples", samples, "--seed", seed, "--json", doc_path)
    doc = json.loads(doc_path.read_text())
    built = qe.to_wide(net, BOX, delta, task="classification", method=method)
    assert built.out_dim == 2 and doc["width"] == built.width and doc["task"] == "classification"
    X = compare_points(samples, seed)
    differ = (net.forward(X)[:, 0] > 0) != (built.forward(X).argmax(axis=1) == 1)
    measure = differ.mean() * BOX.volume
    assert doc["report"]["label_disagreement_measure"] == pytest.approx(measure, abs=1e-15)
    upper = clopper_pearson(int(differ.sum()), samples)[1] * BOX.volume
    assert result.exit_code == (0 if upper <= delta else EXIT_CHECK_FAILED), result.output
    assert "label disagreement" in result.stdout


def test_compare_json_and_max_measure_threshold(nets, tmp_path):
    nets_, paths = nets
    samples, seed = 2000, 3
    doc_path = tmp_path / "cmp.json"
    result = invoke("compare", paths["a"], paths["b"], "--box", -1, 1, "--samples", samples, "--seed", seed,
                    "--json", doc_path, "--max-measure", 0)
    assert result.exit_code == EXIT_CHECK_FAILED, result.output
    doc = json.loads(doc_path.read_text())
    assert set(doc) == COMPARE_KEYS and doc["method"] == "monte-carlo" and doc["samples"] == samples
    X = compare_points(samples, seed)
    errors = np.abs(nets_["a"].forward(X) - nets_["b"].forward(X)).max(axis=1)
    assert doc["disagreement_measure"] == pytest.approx(np.mean(errors > doc["tolerance"]) * BOX.volume, abs=1e-15)
    assert doc["sup_error"] == pytest.approx(errors.max(), rel=1e-12)
    np.testing.assert_allclose(np.abs(nets_["a"].forward(doc["witness"]) - nets_["b"].forward(doc["witness"])).max(),
                               errors.max(), rtol=1e-12)

    # a net against itself: no disagreement, upper limit vol·(1 − 0.025^(1/N)) in closed form
    upper = BOX.volume * (1.0 - 0.025 ** (1.0 / samples))
    same = ["compare", paths["a"], paths["a"], "--box", -1, 1, "--samples", samples]
    assert invoke(*same, "--max-measure", upper * (1 + 1e-9)).exit_code == 0
    below = invoke(*same, "--max-measure", upper * (1 - 1e-6))
    assert below.exit_code == EXIT_CHECK_FAILED and "FAILED" in below.stdout
    assert invoke(*same).exit_code == 0  # no threshold, no check


def test_bad_input_exits_2_with_one_line_and_no_file(nets, tmp_path):
    _, paths = nets
    (tmp_path / "bounds3.json").write_text(json.dumps({"lo": [0, 0, 0], "hi": [1, 1, 1]}))
    box = ["--box", -1, 1]
    cases = [
        ("delta zero", ["wide", paths["a"], *box, "--delta", 0], "δ must be a positive"),
        ("delta negative", ["deep", paths["a"], *box, "--delta", -1e-3], "δ must be a positive"),
        ("delta nan", ["deep", paths["a"], *box, "--delta", "nan"], "δ must be a positive"),
        ("dimension", ["wide", paths["a"], "--bounds", tmp_path / "bounds3.json"], "dimension 3"),
        ("too many simplices", ["wide", paths["a"], *box, "--max-simplices", 2], "raise --max-simplices"),
        ("method", ["deep", paths["a"], *box, "--method", "lattice"], "--method"),
        ("task", ["deep", paths["a"], *box, "--task", "ranking"], "--task"),
        ("classifier method", ["deep", paths["a"], *box, "--method", "demorgan"], "--task classification"),
        ("plot D=3", ["wide", paths["three"], "--box", 0, 1, "--plot", tmp_path / "p.png"], "dimension 1 or 2"),
        ("out suffix", ["wide", paths["a"], *box, "--out", tmp_path / "w.txt"], ".onnx"),
        ("dtype npz", ["wide", paths["a"], *box, "--out", tmp_path / "w.npz", "--dtype", "float32"], "float64"),
        ("compare dims", ["compare", paths["a"], paths["one"], *box], "same input and output"),
        ("compare samples", ["compare", paths["a"], paths["b"], *box, "--samples", 0], "--samples"),
        ("compare max-measure", ["compare", paths["a"], paths["b"], *box, "--max-measure", -1], "--max-measure"),
    ]
    for name, args, needle in cases:
        before = sorted(p.name for p in tmp_path.iterdir())
        result = invoke(*args, "--json", tmp_path / "out.json")
        assert result.exit_code == EXIT_BAD_INPUT, (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert needle in lines[0], (name, lines[0])
        assert sorted(p.name for p in tmp_path.iterdir()) == before, name


def test_plot_option_writes_pictures_for_one_and_two_inputs(nets, tmp_path):
    _, paths = nets
    for name, lo, hi in (("a", -1, 1), ("one", -2, 2)):
        plot = tmp_path / f"{name}.png"
        result = invoke("wide", paths[name], "--box", lo, hi, "--delta", 0.05, "--samples", 500, "--plot", plot)
        assert result.exit_code in (0, EXIT_CHECK_FAILED), result.output
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_error_set_image_is_the_disagreement_on_the_pixel_grid(nets, tmp_path):
    nets_, _ = nets
    net, n = nets_["a"], 120
    wide = qe.to_wide(net, BOX, 0.5)
    tol = 1e-6
    fig = plot_error_set(net, wide, BOX, tmp_path / "err.png", tol, resolution=n)
    image = np.asarray(fig.axes[0].images[0].get_array())
    h = 2.0 / n
    centres = np.linspace(-1 + h / 2, 1 - h / 2, n)
    gx, gy = np.meshgrid(centres, centres)
    X = np.c_[gx.ravel(), gy.ravel()]
    expected = (np.abs(net.forward(X) - wide.forward(X)).max(axis=1) > tol).reshape(n, n)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(image.astype(bool), expected)
    assert f"{int(expected.sum()):,d} of {n * n:,d} pixels" in fig.axes[0].get_title()
    # the grid fraction estimates the measure: it lies in a generous band around the Monte-Carlo one
    report = qe.compare(net, wide, BOX, samples=20000, tol=tol)
    assert expected.mean() == pytest.approx(report.disagreement_fraction, rel=0.35)


def test_univariate_overlay_draws_the_nets_and_their_breakpoints(nets, tmp_path):
    nets_, _ = nets
    net, box = nets_["one"], qe.Box([-2.0], [1.5])
    forms = {"wide": qe.to_wide(net, box, 1e-3), "deep": qe.to_deep(net, box, 1e-3)}
    fig = plot_univariate(net, forms, box, tmp_path / "uni.png", output=1)
    lines = {line.get_gid(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"original", "wide", "deep", "breakpoints"}
    for name, drawn in (("original", net), *forms.items()):
        x, y = lines[name].get_xdata(), lines[name].get_ydata()
        assert x[0] == -2.0 and x[-1] == 1.5
        np.testing.assert_allclose(y, drawn.forward(x[:, None])[:, 1], rtol=1e-9, atol=1e-9)
    # breakpoints: the boundaries between consecutive intervals of the region complex where the slope changes
    cx = qe.regions(net, box)
    order = np.argsort([r.vertices[:, 0].min() for r in cx])
    starts = np.array([cx[int(i)].vertices[:, 0].min() for i in order])
    slopes = np.array([cx[int(i)].A[:, 0] for i in order])
    kinks = starts[1:][np.abs(np.diff(slopes, axis=0)).max(axis=1) > 1e-9]
    assert len(kinks) > 0
    np.testing.assert_allclose(lines["breakpoints"].get_xdata(), kinks, atol=1e-12)


def test_simplex_edges_close_into_triangles_that_tile_the_box(nets, tmp_path):
    nets_, _ = nets
    cx = qe.regions(nets_["a"], BOX)
    sc = qe.triangulate(cx, merge=True)
    fig = plot_simplices(cx, sc, tmp_path / "simplices.png")
    (edges,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    segments = np.array(edges.get_segments()).reshape(-1, 3, 2, 2)  # (M, 3 edges, 2 ends, xy)
    assert len(segments) == sc.M
    np.testing.assert_array_equal(segments[:, :, 1], np.roll(segments[:, :, 0], -1, axis=1))  # closed
    P = segments[:, :, 0]
    areas = 0.5 * np.abs(np.einsum("mi,mi->m", P[..., 0], np.roll(P[..., 1], -1, axis=1))
                         - np.einsum("mi,mi->m", np.roll(P[..., 0], -1, axis=1), P[..., 1]))
    assert areas.sum() == pytest.approx(BOX.volume, rel=1e-9)


@pytest.mark.skipif("exact" not in inspect.signature(qe.compare).parameters,
                    reason="qe.compare(..., exact=True) is not available yet")
def test_compare_exact_matches_dense_sampling(nets, tmp_path):
    nets_, paths = nets
    doc_path = tmp_path / "exact.json"
    result = invoke(
        "compare", paths["a"], paths["b"], "--box", -1, 1, "--exact", "--json", doc_path, "--max-measure", 0
    )
    assert result.exit_code == EXIT_CHECK_FAILED, result.output
    doc = json.loads(doc_path.read_text())
    assert doc["method"] == "exact" and doc["ci95"] is None
    dense = qe.compare(nets_["a"], nets_["b"], BOX, samples=200_000, tol=doc["tolerance"])
    lo, hi = dense.ci95
    assert lo - 1e-9 <= doc["disagreement_measure"] <= hi + 1e-9
    same = invoke("compare", paths["a"], paths["a"], "--box", -1, 1, "--exact", "--max-measure", 0)
    assert same.exit_code == 0, same.output
