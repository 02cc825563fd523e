"""Experiment 2 (paper_notes §4.2): wide vs deep quadratic feature extractors under adversarial attack.

The authors' scripts (``Robustness/*.py``) deskew MNIST, embed it in 2-D with t-SNE and classify the
embedding; MNIST cannot be downloaded here, so we use scikit-learn's 8×8 ``load_digits`` (1797 images).

Pipeline:

1. **Deskew** each image (:func:`deskew`): the shear that makes the intensity-weighted row/column
   covariance vanish, centred on the intensity centroid.
2. **Embed** the deskewed images (64-D) in 2-D with ``sklearn.manifold.TSNE`` (seeded). t-SNE is
   non-parametric, so train and test images are embedded *together*, as the authors' single file
   ``All_image_DR_skewed.npy`` (train rows then test rows) implies; the attacks therefore act on the
   2-D embedding, never on pixels.
3. **Scale** as the scripts do: X ← (x_max/16)·(X − x_min)/(x_max − x_min), with the global min/max of
   the embedding, so X ∈ [0, x_max/16]. Stratified 70/30 split (seeded).
4. **Classify**: each coordinate gets its own univariate sub-network ("twin1" for x₁, "twin2" for x₂),
   the two scalar features feed an MLP head 2→300→ReLU→200→ReLU→10 (truncated-normal init, std 0.01,
   weights and biases). Softmax cross-entropy, Adam lr 0.002, batches of 1000 reshuffled each epoch.

The three sub-networks (:data:`MODELS`), every scalar initialised N(0, 0.1²):

* ``wide``: N = 4 quadratic factors q_j(x) = h_j x² + b_j x + c_j, feature ∏_j q_j(x) (a degree-2N
  polynomial in factored form; the attack scripts use N = 4, the training script N = 8).
* ``deep``: Euler's continued fraction (paper_notes §3.3) with y = x², four rational units
  L_1 = h_1 y/(1 + h_1 y), L_k = h_k y/(1 + h_k y − L_{k−1}) (k = 2..4), then a_0/(1 − L_4) on x₁ (even
  part) and a_0·x/(1 − L_4) on x₂ (odd part). The units have poles where 1 + h_k y − L_{k−1} = 0.
* ``deep-relu``: L_1 = σ(h_1 y + b_1), L_k = σ(h_k y + l_k L_{k−1} + b_k) (k = 2..4), then
  σ(l_f L_4 + b_f) on x₁ and σ(h_f x + l_f L_4 + b_f) on x₂.

Attacks on the test embedding (:func:`fgsm`, :func:`ifgsm`, :func:`batch_deepfool`, :func:`deepfool`);
the first three use, like the scripts, the gradient ∇ of the *batch-mean* cross-entropy with respect to
the whole test matrix X.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from quasieq.errors import QuasieqError

MODELS = ("wide", "deep", "deep-relu")
WIDE_FACTORS = 4
CHAIN_UNITS = 4
SUBNET_INIT_STD = 0.1
HEAD_INIT_STD = 0.01
HEAD_WIDTHS = (2, 300, 200, 10)
LEARNING_RATE = 0.002
BATCH_SIZE = 1000
#: The attack scripts train 200 epochs of 55 MNIST batches = 11 000 Adam steps; digits' 1257 training
#: images make 2 batches an epoch, so 5500 epochs give the same number of steps (200 would give 400).
FAITHFUL_EPOCHS = 5500
DEFAULT_SEEDS = 10
TEST_FRACTION = 0.3
#: The scripts' scaling divides the embedding's maximum by 16 (``DF_deep.py`` alone uses 32).
SCALE_DIVISOR = 16.0
#: FGSM step per model, as in ``FSGM_wide.py`` / ``FSGM_deep.py`` / ``FSGM_deep_RELU.py``.
FGSM_EPSILON = {"wide": 0.062, "deep": 0.060, "deep-relu": 0.059}
IFGSM_ITERATIONS = (10, 20, 30, 50, 100)
IFGSM_STEP = 0.01
BATCH_DEEPFOOL_ITERATIONS = (10, 20, 30, 50, 60)
DEEPFOOL_OVERSHOOT = 0.02
DEEPFOOL_MAX_ITER = 50
#: Added to each DeepFool step length, as in the reference implementation (LTS4/DeepFool), so that a
#: step lands strictly beyond the linearised boundary.
DEEPFOOL_STEP_MARGIN = 1e-4
DIGITS = 1797
#: Fewest images a run may use: t-SNE's default perplexity (30) needs well over 30 points, and the
#: stratified 70/30 split needs every class in both parts.
MIN_SAMPLES = 100


# ----- data -----------------------------------------------------------------------------------------
def deskew(image: np.ndarray) -> np.ndarray:
    """Straighten a 2-D grey image by the shear that removes its row–column correlation.

    With intensity weights I(r, c): centroid (m_r, m_c), α = cov(r, c)/var(r). The output pixel o maps to
    the input point c + A (o − shape/2), A = [[1, 0], [α, 1]] (``scipy.ndimage.affine_transform``, cubic
    spline): a column offset of α per row below the centre is undone, and the centroid moves to
    shape/2. An image with cov(r, c) = 0 and centroid shape/2 is returned unchanged; a blank image or
    one on a single row is only re-centred (α = 0).
    """
    from scipy.ndimage import affine_transform  # heavy: loaded by the experiment that needs it

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise QuasieqError(f"deskew: image of shape {image.shape}, expected a 2-D array")
    total = image.sum()
    if total <= 0:
        return image.copy()
    r, c = np.mgrid[: image.shape[0], : image.shape[1]]
    centre = np.array([(r * image).sum(), (c * image).sum()]) / total
    var_r = ((r - centre[0]) ** 2 * image).sum() / total
    cov_rc = ((r - centre[0]) * (c - centre[1]) * image).sum() / total
    alpha = cov_rc / var_r if var_r > 0 else 0.0
    affine = np.array([[1.0, 0.0], [alpha, 1.0]])
    offset = centre - affine @ (np.array(image.shape) / 2.0)
    return affine_transform(image, affine, offset=offset)


@dataclass(frozen=True)
class Embedded:
    """The scaled 2-D embedding, split: x (N, 2) float64, y (N,) class index; ``box`` = (lo, hi), the
    scaled embedding's global range (the I-FGSM clip range)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    box: tuple[float, float]


def embedded_digits(samples: int = DIGITS, seed: int = 0) -> Embedded:
    """Deskew, t-SNE-embed (train and test together, ``random_state=seed``), scale and split digits.

    ``samples`` < 1797 takes a stratified subsample first (for quick runs).
    """
    from sklearn.datasets import load_digits  # heavy: loaded by the experiment that needs it
    from sklearn.manifold import TSNE
    from sklearn.model_selection import train_test_split

    if not MIN_SAMPLES <= samples <= DIGITS:
        raise QuasieqError(f"--samples {samples}: choose between {MIN_SAMPLES} and {DIGITS} digit images")
    digits = load_digits()
    images, labels = digits.images, digits.target
    if samples < DIGITS:
        images, _, labels, _ = train_test_split(images, labels, train_size=samples, stratify=labels, random_state=seed)
    flat = np.stack([deskew(im).ravel() for im in images])
    emb = TSNE(n_components=2, random_state=seed).fit_transform(flat).astype(np.float64)
    x_min, x_max = emb.min(), emb.max()
    if x_max <= 0:
        raise QuasieqError(f"t-SNE embedding has max {x_max:g} ≤ 0: the scripts' scaling x_max/16 needs x_max > 0")
    x = (x_max / SCALE_DIVISOR) * (emb - x_min) / (x_max - x_min)
    x_tr, x_te, y_tr, y_te = train_test_split(x, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed)
    return Embedded(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), (0.0, float(x_max / SCALE_DIVISOR)))


# ----- models ---------------------------------------------------------------------------------------
def _normal(generator: torch.Generator, *shape: int) -> torch.nn.Parameter:
    values = torch.empty(*shape, dtype=torch.float64).normal_(0.0, SUBNET_INIT_STD, generator=generator)
    return torch.nn.Parameter(values)


class WideQuadratic(torch.nn.Module):
    """x ↦ ∏_{j=1}^{N} (h_j x² + b_j x + c_j): N quadratic neurons (no activation), then their product."""

    def __init__(self, generator: torch.Generator, factors: int = WIDE_FACTORS):
        super().__init__()
        self.h, self.b, self.c = (_normal(generator, factors) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None]
        return (self.h * x**2 + self.b * x + self.c).prod(1)


class ContinuedFraction(torch.nn.Module):
    """Euler continued-fraction chain in y = x²: L_1 = h_1y/(1 + h_1y), L_k = h_ky/(1 + h_ky − L_{k−1}),
    out = a_0/(1 − L_K), times x when ``odd`` (h_1 is the innermost coefficient, h_K = a_1)."""

    def __init__(self, generator: torch.Generator, odd: bool, units: int = CHAIN_UNITS):
        super().__init__()
        self.odd = odd
        self.h = _normal(generator, units)
        self.a0 = _normal(generator, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x**2
        layer = torch.zeros_like(y)
        for h in self.h:
            layer = h * y / (1 + h * y - layer)
        out = self.a0 / (1 - layer)
        return out * x if self.odd else out


class DeepReLU(torch.nn.Module):
    """L_1 = σ(h_1y + b_1), L_k = σ(h_ky + l_kL_{k−1} + b_k), out = σ(l_fL_K + b_f) (+ h_f x inside σ when
    ``odd``), with y = x²."""

    def __init__(self, generator: torch.Generator, odd: bool, units: int = CHAIN_UNITS):
        super().__init__()
        self.h, self.b = _normal(generator, units), _normal(generator, units)
        self.l = _normal(generator, units - 1)
        self.l_f, self.b_f = _normal(generator, 1), _normal(generator, 1)
        self.h_f = _normal(generator, 1) if odd else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x**2
        layer = torch.relu(self.h[0] * y + self.b[0])
        for h_k, l_k, b_k in zip(self.h[1:], self.l, self.b[1:], strict=True):
            layer = torch.relu(h_k * y + l_k * layer + b_k)
        pre = self.l_f * layer + self.b_f
        return torch.relu(pre + self.h_f * x if self.h_f is not None else pre)


class EmbeddingClassifier(torch.nn.Module):
    """twin1(x₁), twin2(x₂) → Dense 2→300 ReLU → 300→200 ReLU → 200→10 logits (float64)."""

    twin1: torch.nn.Module  # a WideQuadratic, ContinuedFraction or DeepReLU, by ``kind``
    twin2: torch.nn.Module

    def __init__(self, kind: str, seed: int):
        super().__init__()
        if kind not in MODELS:
            raise QuasieqError(f"model {kind!r}: choose one of {', '.join(MODELS)}")
        g = torch.Generator().manual_seed(seed)
        if kind == "wide":
            self.twin1, self.twin2 = WideQuadratic(g), WideQuadratic(g)
        elif kind == "deep":
            self.twin1, self.twin2 = ContinuedFraction(g, odd=False), ContinuedFraction(g, odd=True)
        else:
            self.twin1, self.twin2 = DeepReLU(g, odd=False), DeepReLU(g, odd=True)
        layers = []
        for a, b in pairwise(HEAD_WIDTHS):
            dense = torch.nn.Linear(a, b, dtype=torch.float64)
            for p in (dense.weight, dense.bias):
                torch.nn.init.trunc_normal_(
                    p, std=HEAD_INIT_STD, a=-2 * HEAD_INIT_STD, b=2 * HEAD_INIT_STD, generator=g
                )
            layers += [dense, torch.nn.ReLU()]
        self.head = torch.nn.Sequential(*layers[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.stack([self.twin1(x[:, 0]), self.twin2(x[:, 1])], dim=1))


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int,
          max_steps: int | None = None) -> dict:
    """Adam (lr 0.002), batches of :data:`BATCH_SIZE` reshuffled each epoch (the last batch may be
    smaller), at most ``max_steps`` steps. Returns the number of steps and whether the loss ever became
    non-finite (a continued-fraction unit crossing its pole)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    g = torch.Generator().manual_seed(seed)
    steps, diverged = 0, False
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=g).split(BATCH_SIZE):
            if max_steps is not None and steps >= max_steps:
                return {"steps": steps, "diverged": diverged}
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            diverged |= not bool(torch.isfinite(loss))
            loss.backward()
            optimiser.step()
            steps += 1
    return {"steps": steps, "diverged": diverged}


# ----- attacks --------------------------------------------------------------------------------------
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose logits are finite and whose argmax is the label (an input where the model
    overflows counts as misclassified)."""
    with torch.no_grad():
        logits = model(x)
        return float(((logits.argmax(1) == y) & torch.isfinite(logits).all(1)).double().mean())


def input_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy over the batch, its gradient with respect to the whole input matrix x)."""
    x = x.detach().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """x + ε·sign(∇ₓ loss) (Goodfellow et al. 2015)."""
    return x + epsilon * torch.sign(input_gradient(model, x, y)[1])


def ifgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, iterations: int, step: float,
          box: tuple[float, float]) -> torch.Tensor:
    """``iterations`` times x ← clip(x + step·sign(∇ₓ loss), lo, hi) (Kurakin et al. 2017)."""
    for _ in range(iterations):
        x = torch.clamp(x + step * torch.sign(input_gradient(model, x, y)[1]), *box)
    return x


def batch_deepfool(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   iterations: int) -> tuple[torch.Tensor, int]:
    """The authors' "DeepFool" (``DF_*.py``): ``iterations`` times x ← x + (loss/‖∇‖₂)·∇, with ∇ the gradient
    of the batch-mean loss with respect to the whole (n, 2) matrix and ‖·‖₂ numpy's ``norm(·, 2)`` of a
    matrix, i.e. its largest singular value (not the Frobenius norm). One step for the whole batch; it
    uses the true labels, not the predicted ones, and has no per-sample linearisation. Its step grows
    with the loss, so it can throw inputs far outside the data, where a polynomial feature overflows;
    the iteration then stops (the model's output at x is already non-finite). Returns x and the number
    of steps taken."""
    for done in range(iterations):
        loss, grad = input_gradient(model, x, y)
        if not (torch.isfinite(loss) and torch.isfinite(grad).all()):
            return x, done
        x = x + (loss / torch.linalg.matrix_norm(grad, ord=2)) * grad
    return x, iterations


def deepfool(model: torch.nn.Module, x: torch.Tensor, overshoot: float = DEEPFOOL_OVERSHOOT,
             max_iter: int = DEEPFOOL_MAX_ITER) -> torch.Tensor:
    """Per-sample multi-class DeepFool (Moosavi-Dezfooli et al. 2016, Algorithm 2); returns r (n, d).

    For each sample, with k̂ = argmax f(x₀) and x = x₀ + (1 + η)·r_tot, while argmax f(x) = k̂:
    linearise every class k ≠ k̂: w_k = ∇f_k(x) − ∇f_k̂(x), f'_k = f_k(x) − f_k̂(x); take the nearest
    linearised boundary l = argmin_k |f'_k|/‖w_k‖; step r_tot += (|f'_l|/‖w_l‖ + 10⁻⁴)·w_l/‖w_l‖. The
    perturbation returned is (1 + η)·r_tot. On an affine classifier one step reaches the exact nearest
    boundary, so ‖r‖ = (1 + η)(d + 10⁻⁴) with d the closed-form distance. The model must act on samples
    independently (per-sample gradients are read off the gradient of a sum over the batch).
    """
    x0 = x.detach()
    with torch.no_grad():
        k0 = model(x0).argmax(1)
    r_tot = torch.zeros_like(x0)
    for _ in range(max_iter):
        xa = (x0 + (1 + overshoot) * r_tot).requires_grad_(True)
        out = model(xa)
        active = (out.argmax(1) == k0).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        jac = torch.stack([torch.autograd.grad(out[:, k].sum(), xa, retain_graph=True)[0]
                           for k in range(out.shape[1])], dim=1)[active]  # (n_a, K, d)
        out, kk = out.detach()[active], k0[active]
        rows = torch.arange(len(active))
        f = out - out[rows, kk][:, None]
        w = jac - jac[rows, kk][:, None, :]
        norm = torch.linalg.vector_norm(w, dim=2)
        dist = f.abs() / norm
        dist[rows, kk] = torch.inf
        dist = torch.where(norm > 0, dist, torch.inf)
        best, nearest = dist.min(1)  # the nearest other class's boundary
        movable = torch.isfinite(best)
        if not movable.any():
            break
        w_nearest = w[rows, nearest]
        step = ((best + DEEPFOOL_STEP_MARGIN) / norm[rows, nearest])[:, None] * w_nearest
        r_tot[active[movable]] += step[movable]
    return (1 + overshoot) * r_tot


def attack_report(
    model: torch.nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor, box: tuple[float, float]
) -> dict:
    """Accuracy of ``model`` on (x, y) clean and under every attack, plus DeepFool's perturbation sizes."""
    clean = accuracy(model, x, y)
    r = deepfool(model, x)
    # I-FGSM with N iterations is the first N steps of one trajectory, and so is the batch variant:
    # follow each trajectory once and read the accuracy off at every N.
    iterated, batch, steps_taken = {}, {}, {}
    x_it, x_b, taken, done = x, x, 0, 0
    for n in IFGSM_ITERATIONS:
        x_it, done = ifgsm(model, x_it, y, n - done, IFGSM_STEP, box), n
        iterated[str(n)] = accuracy(model, x_it, y)
    done = 0
    for n in BATCH_DEEPFOOL_ITERATIONS:
        x_b, more = batch_deepfool(model, x_b, y, n - done)
        taken, done = taken + more, n
        batch[str(n)], steps_taken[str(n)] = accuracy(model, x_b, y), taken
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    norms = torch.linalg.vector_norm(r, dim=1)[correct]
    return {
        "clean": clean,
        "fgsm": {"epsilon": FGSM_EPSILON[kind], "accuracy": accuracy(model, fgsm(model, x, y, FGSM_EPSILON[kind]), y)},
        "ifgsm": iterated,
        "batch_deepfool": batch,
        "batch_deepfool_steps_taken": steps_taken,
        "deepfool": {
            "accuracy": accuracy(model, x + r, y),
            "median_norm": float(norms.median()) if norms.numel() else float("nan"),
            "mean_norm": float(norms.mean()) if norms.numel() else float("nan"),
        },
    }


# ----- the experiment -------------------------------------------------------------------------------
def _collect(reports: list[dict]) -> dict:
    """Nested per-seed reports → the same nesting with {values, mean, sd} at the leaves."""
    first = reports[0]
    if isinstance(first, dict):
        return {k: _collect([r[k] for r in reports]) for k in first}
    arr = np.asarray(reports, dtype=np.float64)
    sd = float(np.std(arr, ddof=1)) if arr.size > 1 else 0.0
    return {"values": arr.tolist(), "mean": float(np.mean(arr)), "sd": sd}


def check_options(seeds: int, epochs: int, samples: int, steps: int | None) -> None:
    """Raise :class:`QuasieqError` naming the first bad option."""
    if seeds < 1:
        raise QuasieqError(f"--seeds {seeds}: need at least one seed")
    if epochs < 1:
        raise QuasieqError(f"--epochs {epochs}: need at least one epoch")
    if not MIN_SAMPLES <= samples <= DIGITS:
        raise QuasieqError(f"--samples {samples}: choose between {MIN_SAMPLES} and {DIGITS} digit images")
    if steps is not None and steps < 1:
        raise QuasieqError(f"--steps {steps}: need at least one step")


def run_robustness(seeds: int = DEFAULT_SEEDS, epochs: int = FAITHFUL_EPOCHS, samples: int = DIGITS,
                   steps: int | None = None, embed_seed: int = 0, progress=None) -> dict:
    """Embed digits once, then per model and seed train and attack. Returns the JSON document of
    ``quasieq experiment robustness``."""
    check_options(seeds, epochs, samples, steps)
    start = time.perf_counter()
    data = embedded_digits(samples, embed_seed)
    embed_seconds = time.perf_counter() - start
    x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_te, y_te = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    doc: dict[str, Any] = {
        "experiment": "robustness", "dataset": "sklearn load_digits (8x8), deskewed, t-SNE 2-D",
        "samples": samples, "train_size": len(y_tr), "test_size": len(y_te), "seeds": seeds, "epochs": epochs,
        "max_steps": steps, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE, "wide_factors": WIDE_FACTORS,
        "box": list(data.box), "embed_seconds": embed_seconds, "models": {},
    }
    for kind in MODELS:
        reports, runs = [], []
        for s in range(seeds):
            model = EmbeddingClassifier(kind, seed=s)
            runs.append(train(model, x_tr, y_tr, epochs, seed=s, max_steps=steps))
            report = attack_report(model, kind, x_te, y_te, data.box)
            report["train"] = accuracy(model, x_tr, y_tr)
            reports.append(report)
            if progress is not None:
                progress(kind, s + 1)
        doc["models"][kind] = {
            "parameters": sum(p.numel() for p in EmbeddingClassifier(kind, 0).parameters()),
            "steps": runs[0]["steps"], "diverged_seeds": sum(r["diverged"] for r in runs),
            "results": _collect(reports),
        }
    doc["seconds"] = time.perf_counter() - start
    return doc


def _pm(leaf: dict, scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * leaf['mean']:.{digits}f} ± {scale * leaf['sd']:.{digits}f}"


def markdown_table(doc: dict) -> str:
    """Accuracy (%) per model under each attack (mean ± sd over seeds) and DeepFool's median ‖r‖₂."""
    first = next(iter(doc["models"].values()))["results"]
    head = ["model", "clean test", "train", "FGSM (ε)"]
    head += [f"I-FGSM {n}" for n in first["ifgsm"]] + [f"batch-DF {n}" for n in first["batch_deepfool"]]
    last = str(BATCH_DEEPFOOL_ITERATIONS[-1])
    head += [f"batch-DF steps taken (of {last})", "DeepFool", "DeepFool median ‖r‖₂"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, m in doc["models"].items():
        r = m["results"]
        name = kind + (f" ({m['diverged_seeds']} diverged)" if m["diverged_seeds"] else "")
        row = [name, _pm(r["clean"]), _pm(r["train"]), f"{_pm(r['fgsm']['accuracy'])} ({FGSM_EPSILON[kind]})"]
        row += [_pm(v) for v in r["ifgsm"].values()] + [_pm(v) for v in r["batch_deepfool"].values()]
        row += [_pm(r["batch_deepfool_steps_taken"][last], scale=1.0)]
        row += [_pm(r["deepfool"]["accuracy"]), _pm(r["deepfool"]["median_norm"], scale=1.0, digits=3)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "MODELS", "deskew", "embedded_digits", "WideQuadratic", "ContinuedFraction", "DeepReLU",
    "EmbeddingClassifier", "train", "accuracy", "input_gradient", "fgsm", "ifgsm", "batch_deepfool",
    "deepfool", "attack_report", "run_robustness", "markdown_table",
]
