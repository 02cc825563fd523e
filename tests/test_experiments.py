"""The paper's two experiments (quasieq.experiments), checked against independent computations.

* Experiment 1: parameter counts from this file's own reading of the authors' scripts against the
  paper's table and the module; the batched model against a plain per-(network, seed) forward pass.
* Experiment 2: the quadratic feature extractors against numpy polynomials, deskew against image
  moments, FGSM against a first-order Taylor expansion, DeepFool against the closed-form distance to a
  linear classifier's decision boundary, the authors' batch variant against numpy's matrix 2-norm.
* Both CLI commands run end to end on tiny settings and write their files.
"""

from __future__ import annotations

import functools
import json
from itertools import pairwise

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from quasieq.errors import QuasieqError
from quasieq.experiments import demorgan, robustness
from quasieq.experiments_cli import experiment_app


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----- experiment 1 ---------------------------------------------------------------------------------
WIDTHS = {"arm": (5, 2, 2, 2), "in": (5, 3, 3, 3), "mid": (3, 3, 3, 3), "out": (3, 3, 3, 2)}
#: Our reading of NetworkEquivalency_{I..VIII}.py: (wide arms, chains as block lists, final_bias).
#: "mid*" is V's fifth block: weights of DeepArm_5 with the biases of DeepArm_4 (the block before it).
ARCH = {
    "I": (3, [["in", "mid", "mid", "out"]], True),
    "II": (2, [["in", "mid", "mid", "mid", "out"]], True),
    "III": (4, [["in", "mid", "out"]], True),
    "IV": (2, [["in", "out"], ["in", "mid", "out"]], True),
    "V": (0, [["in", "mid", "mid", "mid", "mid*", "out"]], False),
    "VI": (7, [], True),
    "VII": (1, [["in", "mid", "mid", "mid", "out"]], True),
    "VIII": (3, [["in", "out"], ["in", "out"]], True),
}
#: paper_notes §4.1, column "used params (counted from the code)"; V is given as "≈ 210".
PAPER_USED = {"I": 220, "II": 232, "III": 208, "IV": 234, "V": 210, "VI": 170, "VII": 208, "VIII": 222}


def _count(block: str) -> int:
    widths = WIDTHS["mid" if block == "mid*" else block]
    pairs = list(pairwise(widths))
    return sum(a * b for a, b in pairs) + (0 if block == "mid*" else sum(b for _, b in pairs))


def _expected_used(name: str) -> int:
    arms, chains, final = ARCH[name]
    return arms * _count("arm") + sum(_count(b) for chain in chains for b in chain) + 2 * final


def test_used_parameter_counts_match_the_paper_table_and_the_module():
    model = demorgan.DeMorganBatch(seeds=2)
    per_member = model.used_parameter_counts()
    assert [s.name for s in demorgan.NETWORKS] == list(ARCH)
    for i, spec in enumerate(demorgan.NETWORKS):
        expected = _expected_used(spec.name)
        tol = 1 if spec.name == "V" else 0  # the paper only says "≈ 210" for V; the code gives 209
        assert abs(expected - PAPER_USED[spec.name]) <= tol, spec.name
        assert demorgan.used_parameter_count(spec) == expected, spec.name
        assert per_member[model.member(i, 0)] == per_member[model.member(i, 1)] == expected, spec.name


def _reference_member_loss(model, b, x, y):
    """Member b's loss by a plain forward pass over its own rows, structured by ARCH; returns the loss
    and {(parameter name, row): leaf tensor}."""
    params = dict(model.named_parameters())
    leaves = {}

    def leaf(name, row):
        if (name, row) not in leaves:
            leaves[(name, row)] = params[name][row].detach().clone().requires_grad_(True)
        return leaves[(name, row)]

    def block(h, part, row, bias_row=None):
        widths = WIDTHS["mid" if part == "middle" else part]
        for layer in range(len(widths) - 1):
            w = leaf(f"{part}_weight.{layer}", row)
            bias = leaf(f"{part}_bias.{layer}", row if bias_row is None else bias_row)
            h = torch.relu(h @ w.T + bias[:, 0])
        return h

    spec_name = demorgan.NETWORKS[b // model.seeds].name
    arms, chains, final = ARCH[spec_name]
    xs = x[b].T  # (N, 5)
    arm_rows = (model.arm_member == b).nonzero().flatten().tolist()
    chain_rows = (model.chain_member == b).nonzero().flatten().tolist()
    assert len(arm_rows) == arms and len(chain_rows) == len(chains)
    logits = leaf("final_bias", b) * float(final) - sum((block(xs, "arm", r) for r in arm_rows), torch.zeros(2))
    # pair the module's chains with ARCH's by their number of middle blocks
    middles = {c: (model.middle_chain == c).nonzero().flatten().tolist() for c in chain_rows}
    assert sorted(len(m) for m in middles.values()) == sorted(len(ch) - 2 for ch in chains)
    for chain, c in zip(sorted(chains, key=len), sorted(chain_rows, key=lambda c: len(middles[c])), strict=True):
        h = block(xs, "in", c)
        bias_rows = [int(model.middle_bias_row[m]) for m in middles[c]]
        for j, (kind, m) in enumerate(zip(chain[1:-1], middles[c], strict=True)):
            if kind == "mid*":
                assert bias_rows[j] == bias_rows[j - 1]  # V: M5 reads M4's biases
            else:
                assert bias_rows[j] not in bias_rows[:j]
            h = block(h, "middle", m, bias_rows[j])
        logits = logits + block(h, "out", c)
    loss = torch.nn.functional.cross_entropy(logits, y[b])
    return loss, leaves


def test_batched_model_equals_each_network_and_seed_trained_alone():
    seeds = 2
    model = demorgan.DeMorganBatch(seeds)
    x, y = demorgan._member_tensors(demorgan.protocol_splits("held-out", seeds), "train")
    losses = demorgan.member_losses(model, x, y)
    losses.sum().backward()
    params = dict(model.named_parameters())
    covered = {name: torch.zeros(p.shape[0], dtype=torch.bool) for name, p in params.items()}
    for b in range(len(demorgan.NETWORKS) * seeds):
        ref, leaves = _reference_member_loss(model, b, x, y)
        ref.backward()
        assert abs(ref.item() - losses[b].item()) <= 1e-10
        for (name, row), t in leaves.items():
            expected = t.grad if t.grad is not None else torch.zeros_like(t)
            assert torch.allclose(params[name].grad[row], expected, rtol=1e-8, atol=1e-10), (b, name, row)
            covered[name][row] = True
    # every row of every parameter belongs to some member (V's masked final_bias row has zero gradient)
    for name, rows in covered.items():
        assert rows.all(), name
    v = [s.name for s in demorgan.NETWORKS].index("V")
    assert torch.all(params["final_bias"].grad[v * seeds:(v + 1) * seeds] == 0)


# ----- experiment 2: models -------------------------------------------------------------------------
def test_wide_feature_is_the_product_of_its_quadratic_factors():
    g = torch.Generator().manual_seed(3)
    wide = robustness.WideQuadratic(g)
    poly = np.array([1.0])
    for h, b, c in zip(wide.h.detach().numpy(), wide.b.detach().numpy(), wide.c.detach().numpy(), strict=True):
        poly = np.polymul(poly, [h, b, c])
    x = np.linspace(-2, 2, 41)
    assert np.allclose(wide(torch.from_numpy(x)).detach().numpy(), np.polyval(poly, x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("odd", [False, True])
def test_continued_fraction_feature_is_the_polynomial_of_euler_coefficients(odd):
    # Euler: a_0 = c_0, a_i = c_i/c_{i-1}; the chain's innermost unit is a_m (h_1) and its last a_1 (h_K)
    g = torch.Generator().manual_seed(4)
    chain = robustness.ContinuedFraction(g, odd=odd)
    a = [chain.a0.item()] + chain.h.flip(0).tolist()
    c = np.cumprod(a)  # c_i = a_0 a_1 ... a_i
    x = np.linspace(-0.5, 0.5, 21)
    expected = np.polynomial.polynomial.polyval(x**2, c) * (x if odd else 1.0)
    assert np.allclose(chain(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-10, atol=1e-14)


# ----- experiment 2: deskew -------------------------------------------------------------------------
def _moments(image):
    r, c = np.mgrid[: image.shape[0], : image.shape[1]]
    w = image / image.sum()
    mr, mc = (r * w).sum(), (c * w).sum()
    return ((r - mr) ** 2 * w).sum(), ((r - mr) * (c - mc) * w).sum()


def test_deskew_leaves_an_upright_centred_image_unchanged():
    image = np.zeros((8, 8))
    image[2:7, 3:6] = [[1.0, 3.0, 1.0]] * 5  # centroid (4, 4) = shape/2, no row/column correlation
    assert np.allclose(robustness.deskew(image), image, atol=1e-10)


def test_deskew_straightens_a_sheared_bar():
    r, c = np.mgrid[:28, :28]
    slope = 0.5  # the bar's column moves half a pixel per row
    image = np.exp(-((c - 14 - slope * (r - 14)) ** 2) / 2.0) * ((r >= 6) & (r <= 22))
    var_r, cov = _moments(image)
    assert cov / var_r == pytest.approx(slope, rel=0.05)
    straight = np.clip(robustness.deskew(image), 0, None)
    var_r2, cov2 = _moments(straight)
    assert abs(cov2 / var_r2) < 0.02
    rows = straight.sum(1) > 0.5  # per-row column centroid: constant for a vertical bar
    centroids = (straight * c).sum(1)[rows] / straight.sum(1)[rows]
    assert np.ptp(centroids) < 0.3 < slope * 16


# ----- experiment 2: attacks ------------------------------------------------------------------------
@functools.cache
def _trained_toy():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    y = torch.arange(3).repeat_interleave(60)
    x = centres[y] + 0.6 * torch.randn(180, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x, y


def test_fgsm_increases_the_loss_by_its_first_order_prediction():
    model, x, y = _trained_toy()
    assert robustness.accuracy(model, x, y) > 0.85
    loss, grad = robustness.input_gradient(model, x, y)

    def loss_at(z):
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(z), y).item()

    assert loss_at(robustness.fgsm(model, x, y, 0.2)) > float(loss) + 0.05
    eps = 1e-6  # L(x + ε sign ∇) − L(x) = ε‖∇‖₁ + O(ε²)
    assert (loss_at(robustness.fgsm(model, x, y, eps)) - float(loss)) / eps == pytest.approx(
        float(grad.abs().sum()), rel=1e-3)
    adv = robustness.ifgsm(model, x, y, 20, 0.05, (-1.0, 3.0))
    assert adv.min() >= -1.0 and adv.max() <= 3.0 and loss_at(adv) > float(loss)


def test_deepfool_finds_the_closed_form_distance_on_a_linear_classifier():
    torch.manual_seed(1)
    linear = torch.nn.Linear(3, 4).double()
    x = torch.randn(50, 3, dtype=torch.float64)
    r = robustness.deepfool(linear, x)
    W, c = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    eta, margin = robustness.DEEPFOOL_OVERSHOOT, robustness.DEEPFOOL_STEP_MARGIN
    for xn, rn in zip(x.numpy(), r.numpy(), strict=True):
        f = W @ xn + c
        k = f.argmax()
        d, normal = min((abs(f[j] - f[k]) / np.linalg.norm(W[j] - W[k]), W[j] - W[k]) for j in range(4) if j != k)
        assert d <= np.linalg.norm(rn) <= (1 + eta) * (d + margin) * (1 + 1e-9)
        assert np.linalg.norm(rn) == pytest.approx((1 + eta) * (d + margin), rel=1e-9)  # one step on an affine map
        assert np.dot(rn, normal) == pytest.approx(np.linalg.norm(rn) * np.linalg.norm(normal), rel=1e-9)
        assert (W @ (xn + rn) + c).argmax() != k
        assert (W @ (xn + (1 - 1e-6) * d * rn / np.linalg.norm(rn)) + c).argmax() == k  # d is minimal


def test_batch_deepfool_step_uses_the_spectral_norm_of_the_whole_gradient():
    model, x, y = _trained_toy()
    loss, grad = robustness.input_gradient(model, x, y)
    stepped, taken = robustness.batch_deepfool(model, x, y, 1)
    g = grad.numpy()
    assert taken == 1
    assert np.allclose(stepped.numpy(), x.numpy() + float(loss) / np.linalg.norm(g, 2) * g, rtol=1e-12, atol=1e-14)


# ----- CLI ------------------------------------------------------------------------------------------
runner = CliRunner()


def test_demorgan_command_writes_its_results(tmp_path):
    result = runner.invoke(experiment_app, ["demorgan", "--seeds", "2", "--steps", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for protocol in demorgan.PROTOCOLS:  # no terminal: plain progress lines on stderr, the last one complete
        assert f"{protocol}: 2/2 (" in result.stderr
    doc = json.loads((tmp_path / "demorgan.json").read_text())
    table = (tmp_path / "demorgan.md").read_text()
    assert set(doc["protocols"]) == set(demorgan.PROTOCOLS)
    for protocol, res in doc["protocols"].items():
        assert res["train_size"] + (res["test_size"] if protocol == "held-out" else 0) == 569
        for name in ARCH:
            acc = res["networks"][name]["test_accuracy"]
            assert len(acc["values"]) == 2 and acc["mean"] == pytest.approx(np.mean(acc["values"]))
            assert f"| {name} | {_expected_used(name)} |" in table


def test_robustness_command_writes_its_results(tmp_path):
    args = ["robustness", "--seeds", "1", "--epochs", "1", "--samples", "120", "--steps", "1", "--out", str(tmp_path)]
    result = runner.invoke(experiment_app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "robustness.json").read_text())
    assert doc["train_size"] + doc["test_size"] == 120
    assert set(doc["models"]) == set(robustness.MODELS)
    for m in doc["models"].values():
        assert m["steps"] == 1
        res = m["results"]
        assert set(res["ifgsm"]) == {str(n) for n in robustness.IFGSM_ITERATIONS}
        assert 0.0 <= res["deepfool"]["accuracy"]["mean"] <= 1.0 and res["deepfool"]["median_norm"]["mean"] > 0
    assert all(f"| {kind}" in (tmp_path / "robustness.md").read_text() for kind in robustness.MODELS)


@pytest.mark.parametrize("args", [
    ["demorgan", "--seeds", "0"], ["demorgan", "--protocol", "train"], ["robustness", "--samples", "20"],
    ["robustness", "--steps", "0"],
])
def test_bad_options_raise_quasieq_error_before_any_work(tmp_path, args):
    result = runner.invoke(experiment_app, [*args, "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, QuasieqError)
    assert not (tmp_path / "out").exists()
