"""``quasieq demo``: the whole pipeline on small examples, in about a minute and a half, on a CPU.

Steps (each a function; :func:`run_demo` calls them in order):

1. :func:`train` — a seeded 2-16-16-1 ReLU net fitted by full-batch Adam to :func:`target` on
   [-1, 1]^2;
2. :func:`analyse` — import it (``qe.from_torch``) and enumerate its exact linear regions on the box;
3. :func:`rebuild` — its wide and deep forms by ``method="compact"`` and ``method="paper"`` (δ = 1e-3),
   each compared with the original by Monte Carlo in float64 and through its float32 ONNX export;
4. :func:`exact_forms` — its zero-error lattice forms (``method="exact"``), each certified by the exact
   checker (``qe.compare(..., exact=True)``: exact measure and sup error over the common refinement);
5. :func:`classifier` — a seeded 2-8-8-2 classifier trained on scikit-learn's ``make_moons``, its De
   Morgan wide and deep forms (label regions → labelled simplices), their Monte-Carlo
   label-disagreement measures and the held-out accuracy of all three (:func:`classifier_forms`);
6. :func:`polynomial_forms` — a pole-free quartic as a wide (factorisation) and a deep (continued
   fraction) quadratic network, with their maximum relative error against numpy on a dense grid;
7. :func:`write_outputs` — regions.png, regions.json, model.onnx, the four rebuilt models
   (wide_compact.onnx, deep_compact.onnx, wide_paper.onnx, deep_paper.onnx), transforms.json and
   transforms.png (simplices + the compact wide form's error set), the exact forms (wide_exact.onnx,
   deep_exact.onnx), the classifier and its forms (classifier*.onnx, classifier.png), the quadratic
   networks (poly_wide.onnx, poly_deep.onnx, polynomial.png) and report.html, one self-contained page
   with every table and plot (``quasieq.report``); all or nothing;
8. :func:`summary` / :func:`forms_tables` / :func:`step_tables` — the tables printed at the end (the
   same ones the report holds).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from rich.console import Console
from rich.table import Table as RichTable
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.functional import cross_entropy

import quasieq.quadratic as qq
from quasieq.box import Box
from quasieq.console import Steps, bound_text, enumerate_regions, key_value_table
from quasieq.construct.demorgan import as_scores, demorgan_deep, demorgan_wide, label_regions
from quasieq.errors import QuasieqError
from quasieq.geometry import triangulate
from quasieq.io import from_torch, save
from quasieq.io.outputs import staged_outputs, write_json
from quasieq.net import ReluNet, provenance_of
from quasieq.pipeline import Certificate, build_form, certify, transform_json
from quasieq.quadratic import save_onnx
from quasieq.quadratic.polynomial import GRID_SAMPLES
from quasieq.regions import RegionComplex
from quasieq.report import Image, Section, Table, render_report
from quasieq.verify import EquivalenceReport, compare
from quasieq.verify.certificate import judge
from quasieq.verify.data import data_agreement, data_box
from quasieq.viz import plot_classifier, plot_polynomial, plot_regions, plot_transform

if TYPE_CHECKING:  # annotations only
    from quasieq.construct.demorgan import LabelledSimplices
    from quasieq.quadratic.separable import FactorNet

#: The demo's domain: every guarantee and plot is on this box.
DEMO_BOX = Box.cube(2, -1.0, 1.0)

#: The demo polynomial P(x) = 1 + 0.5x + 0.8x² + 0.3x³ + 0.6x⁴ (ascending coefficients). Its even
#: coefficients (1, 0.8, 0.6) and its odd ones (0.5, 0.3) each have one sign, so every tail T_k of the
#: continued fraction has positive coefficients, T_k(y) ≥ 1 for y = x² ≥ 0: no pole anywhere
#: (quadratic/deep.py), and no zero coefficient to perturb.
DEMO_POLYNOMIAL = (1.0, 0.5, 0.8, 0.3, 0.6)
#: The interval on which the quadratic networks are built and checked.
DEMO_INTERVAL = (-1.0, 1.0)


@dataclass(frozen=True)
class TrainingSetup:
    """What :func:`train` does; the defaults train in about a second on one CPU core."""

    seed: int = 0
    hidden: tuple[int, ...] = (16, 16)
    samples: int = 2048
    steps: int = 1500
    learning_rate: float = 1e-2


@dataclass(frozen=True)
class RebuildSetup:
    """What :func:`rebuild` does. Monte-Carlo samples per comparison: the paper forms are larger and
    slower to evaluate, so they get fewer points (their 95% intervals are correspondingly wider).
    The classifier's comparisons use ``samples_compact``."""

    delta: float = 1e-3
    forms: tuple[str, ...] = ("wide", "deep")
    methods: tuple[str, ...] = ("compact", "paper")
    samples_compact: int = 100_000
    samples_paper: int = 20_000
    seed: int = 0

    def samples(self, method: str) -> int:
        return self.samples_paper if method == "paper" else self.samples_compact


@dataclass(frozen=True)
class ClassifierSetup:
    """What :func:`classifier` does: ``points`` make_moons points (noise ``noise``), a stratified
    ``held_out`` share kept for testing, a 2-h_1-…-2 net trained by full-batch Adam on the cross-entropy,
    and δ = ``delta_fraction``·vol(box) on the data's bounding box. About a second on one core."""

    seed: int = 0
    points: int = 400
    noise: float = 0.2
    held_out: float = 0.5
    hidden: tuple[int, ...] = (8, 8)
    steps: int = 1000
    learning_rate: float = 1e-2
    delta_fraction: float = 1e-3


@dataclass(frozen=True)
class Rebuilt:
    """One rebuilt form with its float64 and float32-export reports."""

    form: str
    method: str
    net: ReluNet
    report: EquivalenceReport
    report_float32: EquivalenceReport
    seconds: float

    @property
    def name(self) -> str:
        return f"{self.form}_{self.method}"


@dataclass(frozen=True)
class ExactForm:
    """One zero-error lattice form with the exact checker's report."""

    form: str
    net: ReluNet
    report: EquivalenceReport
    seconds: float
    check_seconds: float

    @property
    def name(self) -> str:
        return f"{self.form}_exact"


@dataclass(frozen=True)
class ClassifierResult:
    """A classifier, its De Morgan forms, their label-disagreement reports and held-out accuracies.

    ``accuracy`` maps ``original``, ``wide`` and ``deep`` to the fraction of held-out points whose
    label (``class_labels``) equals the true class.
    """

    net: ReluNet
    box: Box
    delta: float
    rules: LabelledSimplices
    forms: dict[str, ReluNet]
    reports: dict[str, EquivalenceReport]
    accuracy: dict[str, float | None]
    X_test: np.ndarray
    y_test: np.ndarray
    build_seconds: float
    train_seconds: float = 0.0


@dataclass(frozen=True)
class PolynomialResult:
    """A polynomial's wide and deep quadratic networks and their max relative errors on a dense grid."""

    coeffs: np.ndarray
    domain: tuple[float, float]
    nets: dict[str, FactorNet]  # "wide" / "deep" → torch module (N, 1) → (N, 1)
    errors: dict[str, float]


@dataclass
class DemoResult:
    """Everything the demo produced."""

    module: torch.nn.Module  # the trained torch.nn.Sequential
    net: ReluNet
    mse: float
    train_seconds: float
    complex: RegionComplex
    region_seconds: float
    rebuilt: list[Rebuilt] = field(default_factory=list)
    exact: list[ExactForm] = field(default_factory=list)
    classifier: ClassifierResult | None = None
    polynomial: PolynomialResult | None = None
    setup: TrainingSetup = field(default_factory=TrainingSetup)
    rebuild_setup: RebuildSetup = field(default_factory=RebuildSetup)
    paths: dict[str, Path] = field(default_factory=dict)


def target(X: np.ndarray) -> np.ndarray:
    """The regression target on [-1, 1]^2: a bump plus a saddle, f(x) = exp(-3‖x‖²) + x₀x₁/2."""
    X = np.asarray(X, dtype=np.float64)
    return np.exp(-3.0 * (X**2).sum(axis=1)) + 0.5 * X[:, 0] * X[:, 1]


def mlp(sizes: tuple[int, ...]):
    """``nn.Sequential`` of Linear layers sizes[0] → … → sizes[-1] with a ReLU between consecutive ones."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fit(module, loss, steps: int, learning_rate: float) -> float:
    """``steps`` full-batch Adam steps minimising ``loss()`` over ``module``'s parameters, on one thread;
    the module is left in eval mode. Returns the seconds spent."""
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only add synchronisation (10× slower on a busy machine)
    start = time.perf_counter()
    try:
        for _ in range(steps):
            optimiser.zero_grad()
            value = loss()
            value.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    module.eval()
    return time.perf_counter() - start


def train(setup: TrainingSetup = TrainingSetup()):
    """Fit a ReLU MLP 2-h_1-…-1 to :func:`target` on ``setup.samples`` uniform points of the box.

    Full-batch Adam on the mean squared error; ``torch.manual_seed(setup.seed)`` fixes the initial
    weights and a numpy generator with the same seed fixes the points, so the result is reproducible.
    Returns ``(module, training MSE, seconds)``.
    """
    torch.manual_seed(setup.seed)
    X = DEMO_BOX.sample(setup.samples, np.random.default_rng(setup.seed))
    x = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(target(X), dtype=torch.float32)[:, None]
    module = mlp((DEMO_BOX.dim, *setup.hidden, 1))
    seconds = fit(module, lambda: torch.mean((module(x) - y) ** 2), setup.steps, setup.learning_rate)
    with torch.no_grad():
        mse = float(torch.mean((module(x) - y) ** 2))
    return module, mse, seconds


def analyse(module, console: Console) -> tuple[ReluNet, RegionComplex, float]:
    """Import the trained module into the IR and enumerate its linear regions on :data:`DEMO_BOX`."""
    net = from_torch(module)
    cx, seconds = enumerate_regions(net, DEMO_BOX, console)
    return net, cx, seconds


def rebuild(net: ReluNet, cx: RegionComplex, console: Console, setup: RebuildSetup = RebuildSetup()) -> list[Rebuilt]:
    """Every (form, method) of ``setup``, built from the regions ``cx`` and certified against ``net``."""
    steps = Steps(console)
    out = []
    for method in setup.methods:
        for form in setup.forms:
            start = time.perf_counter()
            built = build_form(form, net, cx.box, setup.delta, method=method, cx=cx, step=steps)
            seconds = time.perf_counter() - start
            report, report32 = certify(net, built, cx.box, samples=setup.samples(method), seed=setup.seed,
                                       step=steps)
            out.append(Rebuilt(form, method, built, report, report32, seconds))
    return out


def exact_forms(net: ReluNet, cx: RegionComplex, console: Console, delta: float, *,
                samples: int | None = None) -> list[ExactForm]:
    """The wide and deep lattice forms (``method="exact"``, zero error by construction) built from ``cx``.

    ``samples=None``: each is certified by the exact checker, the common refinement of both nets' regions
    giving the exact measure of {|a − b| > tol} and the exact sup error (``qe.compare(..., exact=True)``);
    its cost grows with the lattice form's size (over a minute for the 155-region demo net, whose wide
    lattice form has 6,617 units), so the demo passes ``samples`` and checks by Monte Carlo instead.
    ``delta`` is only recorded: the lattice forms have no error budget."""
    steps = Steps(console)
    out = []
    for form in ("wide", "deep"):
        start = time.perf_counter()
        built = build_form(form, net, cx.box, delta, method="exact", cx=cx, step=steps)
        seconds = time.perf_counter() - start
        with steps(f"exact check of the {form} lattice form"):
            report = (compare(net, built, cx.box, exact=True) if samples is None
                      else compare(net, built, cx.box, samples=samples))
        out.append(ExactForm(form, built, report, seconds, time.perf_counter() - start - seconds))
    return out


def moons(setup: ClassifierSetup = ClassifierSetup()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)``: scikit-learn's make_moons (seeded), split stratified."""
    X, y = make_moons(n_samples=setup.points, noise=setup.noise, random_state=setup.seed)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=setup.held_out, stratify=y,
                                                        random_state=setup.seed)
    return X_train, y_train, X_test, y_test


def train_classifier(X: np.ndarray, y: np.ndarray, setup: ClassifierSetup = ClassifierSetup()):
    """A ReLU MLP D-h_1-…-K (K = max y + 1 scores) fitted by full-batch Adam to the cross-entropy;
    seeded by ``torch.manual_seed(setup.seed)``. Returns ``(module, seconds)``."""
    torch.manual_seed(setup.seed)
    x = torch.tensor(X, dtype=torch.float32)
    labels = torch.tensor(y, dtype=torch.long)
    module = mlp((X.shape[1], *setup.hidden, int(y.max()) + 1))
    seconds = fit(module, lambda: cross_entropy(module(x), labels), setup.steps, setup.learning_rate)
    return module, seconds


def classifier_forms(net: ReluNet, box: Box, delta: float, X_test: np.ndarray, y_test: np.ndarray,
                     console: Console, *, samples: int, seed: int = 0) -> ClassifierResult:
    """The De Morgan wide and deep forms of the classifier ``net`` on ``box`` (one ``label_regions``
    for both), their label-disagreement measures against ``net`` (Monte Carlo, ``samples`` uniform points
    of the box) and the held-out accuracy of all three on
    ``(X_test, y_test)``, which must lie in ``box`` (``verify.data.data_agreement``)."""
    start = time.perf_counter()
    steps = Steps(console)
    with steps("label regions and the De Morgan forms"):
        rules = label_regions(net, box)
        forms = {"wide": demorgan_wide(rules, delta), "deep": demorgan_deep(rules, delta)}
    seconds = time.perf_counter() - start
    reports: dict[str, EquivalenceReport] = {}
    accuracy: dict[str, float | None] = {}
    for name, form in forms.items():
        with steps(f"comparing the {name} De Morgan form on {samples:,d} points"):
            reports[name] = compare(as_scores(net), form, box, samples=samples, seed=seed, task="classification")
        agreement = data_agreement(net, form, X_test, y_test, box=box)
        accuracy["original"], accuracy[name] = agreement.accuracy_a, agreement.accuracy_b
    return ClassifierResult(net, box, float(delta), rules, forms, reports, accuracy, np.asarray(X_test),
                            np.asarray(y_test), seconds)


def classifier(console: Console, setup: ClassifierSetup = ClassifierSetup(), *, samples: int,
               seed: int = 0) -> ClassifierResult:
    """make_moons → :func:`train_classifier` → ``qe.from_torch`` → :func:`classifier_forms` on the
    bounding box of all the data (so every held-out point lies in it), δ = delta_fraction·vol(box)."""
    X_train, y_train, X_test, y_test = moons(setup)
    module, train_seconds = train_classifier(X_train, y_train, setup)
    box = data_box(np.vstack([X_train, X_test]))
    result = classifier_forms(from_torch(module), box, setup.delta_fraction * box.volume, X_test, y_test, console,
                              samples=samples, seed=seed)
    return dataclasses.replace(result, train_seconds=train_seconds)


def polynomial_forms(coeffs=DEMO_POLYNOMIAL, domain=DEMO_INTERVAL) -> PolynomialResult:
    """``qe.quadratic.wide`` and ``qe.quadratic.deep`` of P (ascending ``coeffs``) on ``domain``, each
    with max_x |net(x) − P(x)| / max_x |P(x)| over a dense grid, P by numpy's Horner."""
    wide = qq.wide(coeffs, domain=domain)
    nets: dict[str, FactorNet] = {"wide": wide, "deep": qq.deep(coeffs, domain=domain)}
    p, dom = wide.coeffs, wide.domain
    return PolynomialResult(p, dom, nets, {name: qq.max_relative_error(net, p, dom) for name, net in nets.items()})


# ----- files ----------------------------------------------------------------------------------------
def write_outputs(out_dir: Path, result: DemoResult) -> dict[str, Path]:
    """Write every demo file into ``out_dir`` (created if missing): ``regions.png``, ``regions.json``,
    ``model.onnx``, ``<form>_<method>.onnx`` per rebuilt form, ``transforms.json`` (the ``wide|deep
    --json`` document of each form) and ``transforms.png`` (simplices + error set of the first form);
    ``<form>_exact.onnx`` per exact form; ``classifier.onnx``, ``classifier_<form>.onnx`` and
    ``classifier.png``; ``poly_<form>.onnx`` and ``polynomial.png``; last ``report.html`` (every table
    and plot, :func:`report_sections`).

    Each file is written to a temporary name and renamed once all are complete.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cx = result.complex
    paths: dict[str, Path] = {}
    staged: dict[str, Path] = {}  # label → the temporary file being written
    with staged_outputs() as stage:

        def put(label: str, name: str) -> Path:
            paths[label] = out_dir / name
            staged[label] = stage(paths[label])
            return staged[label]

        plot_regions(cx, put("plot", "regions.png"))
        write_json(cx.to_json(), put("json", "regions.json"))
        save(result.net, put("model", "model.onnx"))
        for r in result.rebuilt:
            save(r.net, put(r.name, f"{r.name}.onnx"))
        if result.rebuilt:
            forms = [transform_json(r.form, r.net, Certificate(r.report, r.report_float32)) for r in result.rebuilt]
            doc = {"schema_version": 1, "box": cx.box.to_dict(), "forms": forms}
            write_json(doc, put("transforms json", "transforms.json"))
            first = result.rebuilt[0]
            plot_transform(cx, triangulate(cx, merge=True), result.net, first.net,
                           put("transforms plot", "transforms.png"), first.report.tolerance)
        for e in result.exact:
            save(e.net, put(e.name, f"{e.name}.onnx"))
        if result.classifier is not None:
            c = result.classifier
            save(c.net, put("classifier", "classifier.onnx"))
            for name, form in c.forms.items():
                save(form, put(f"classifier_{name}", f"classifier_{name}.onnx"))
            plot_classifier(c.rules, c.net, c.forms, c.box, c.X_test, c.y_test,
                            put("classifier plot", "classifier.png"))
        if result.polynomial is not None:
            for name, module in result.polynomial.nets.items():
                save_onnx(module, put(f"poly_{name}", f"poly_{name}.onnx"))
            p = result.polynomial
            plot_polynomial(p.coeffs, p.domain, p.nets, put("polynomial plot", "polynomial.png"))
        sections = report_sections(result, staged, paths)
        put("report", "report.html").write_text(render_report("quasieq demo", sections), encoding="utf-8")
    return paths


# ----- tables ---------------------------------------------------------------------------------------
def _rich(table: Table) -> RichTable:
    """The rich (terminal) rendering of a report table: text columns left, numbers right."""
    out = RichTable(title=table.title, title_justify="left")
    for column in table.columns:
        out.add_column(column, justify="left" if column in ("form", "method", "net", "file") else "right")
    for row in table.rows:
        out.add_row(*row)
    return out


def forms_report_tables(result: DemoResult) -> tuple[Table, Table]:
    """Two tables with one row per rebuilt form (one would not fit 80 columns): sizes (width, hidden
    layers, depth, parameters, simplices M, largest |weight|), then certificates (analytic bound,
    measured measure with its 95% interval, the float32 ONNX export's measured measure, and the δ check of
    each judged on its upper 95% limit: passed, FAILED or inconclusive, verify/certificate.py)."""
    sizes, certificates = [], []
    delta, volume = result.rebuild_setup.delta, result.complex.box.volume
    for r in result.rebuilt:
        net, p = r.net, provenance_of(r.net)
        sizes.append((r.form, r.method, f"{net.width:,d}", f"{net.hidden_layers:,d}", f"{net.depth:,d}",
                      f"{net.parameters:,d}", "—" if p.simplices is None else f"{p.simplices:,d}",
                      f"{net.max_abs_weight():.2g}"))
        ci = r.report.ci95
        interval = "exact" if ci is None else f"[{ci[0]:.2g}, {ci[1]:.2g}]"
        certificates.append((r.form, r.method, bound_text(net), f"{r.report.disagreement_measure:.3g}",
                             interval, judge(r.report, delta, volume).status,
                             f"{r.report_float32.disagreement_measure:.3g}",
                             judge(r.report_float32, delta, volume).status))
    arch = result.net.architecture
    return (
        Table(f"wide and deep forms of the {arch} net: sizes",
              ("form", "method", "width", "hidden layers", "depth", "parameters", "M", "max |w|"), tuple(sizes)),
        Table(f"wide and deep forms of the {arch} net: disagreement measures",
              ("form", "method", "bound", "measured", "95% CI", "check", "float32 export", "float32 check"),
              tuple(certificates)),
    )


def forms_tables(result: DemoResult) -> tuple[RichTable, RichTable]:
    """:func:`forms_report_tables` as rich tables."""
    sizes, certificates = forms_report_tables(result)
    return _rich(sizes), _rich(certificates)


def exact_table(result: DemoResult) -> Table:
    """One row per lattice form: sizes, pieces q and affine functions k, and the exact checker's
    findings (sup error, measure of {|a − b| > tol}, cells of the common refinement)."""
    rows = []
    for e in result.exact:
        sizes = provenance_of(e.net).lattice  # None for the one-hidden-layer chain (construct/onelayer.py)
        pieces, affine = ("—", "—") if sizes is None else (f"{sizes.pieces:,d}", f"{sizes.affine_functions:,d}")
        rows.append((e.form, f"{e.net.width:,d}", f"{e.net.hidden_layers:,d}", f"{e.net.parameters:,d}",
                     pieces, affine, f"{e.report.sup_error:.2g}",
                     f"{e.report.disagreement_measure:.3g}", e.report.method,
                     "—" if e.report.cells is None else f"{e.report.cells:,d}", f"{e.check_seconds:.1f}"))
    return Table(f"exact (lattice) forms of the {result.net.architecture} net",
                 ("form", "width", "hidden layers", "parameters", "pieces q", "affine k", "sup error",
                  "measure", "check", "cells", "check s"), tuple(rows))


def classifier_tables(c: ClassifierResult) -> tuple[Table, Table]:
    """The classifier's summary (data, box, δ, rules) and one row per net: sizes, analytic bound,
    label-disagreement measure with its 95% interval, held-out accuracy."""
    arch = c.net.architecture
    summary_rows = (
        ("data", f"make_moons, {len(c.y_test):,d} held-out points"),
        ("net", arch),
        ("box", f"[{c.box.lo[0]:.3g}, {c.box.hi[0]:.3g}] × [{c.box.lo[1]:.3g}, {c.box.hi[1]:.3g}]"),
        ("δ", f"{c.delta:.3g}"),
        ("rules (simplices) per class", ", ".join(str(int(n)) for n in c.rules.rules_per_class)),
        ("training seconds", f"{c.train_seconds:.2f}"),
        ("build seconds", f"{c.build_seconds:.2f}"),
    )
    rows = [("original", f"{c.net.width:,d}", f"{c.net.hidden_layers:,d}", f"{c.net.parameters:,d}", "", "", "",
             f"{c.accuracy['original']:.3f}")]
    for name, form in c.forms.items():
        report = c.reports[name]
        measure = report.label_disagreement_measure
        if measure is None:  # compare(task="classification") always measures the labels
            raise QuasieqError(f"the {name} De Morgan form's report has no label-disagreement measure")
        rows.append((f"{name} De Morgan", f"{form.width:,d}", f"{form.hidden_layers:,d}", f"{form.parameters:,d}",
                     bound_text(form), f"{measure:.3g}", f"{measure / c.box.volume:.2g}",
                     f"{c.accuracy[name]:.3f}"))
    return (
        Table(f"a {arch} classifier on make_moons", ("quantity", "value"), summary_rows),
        Table(f"De Morgan forms of the {arch} classifier ({c.reports['wide'].samples:,d} Monte-Carlo points)",
              ("net", "width", "hidden layers", "parameters", "bound", "label measure", "fraction of box",
               "held-out accuracy"), tuple(rows)),
    )


def polynomial_table(p: PolynomialResult) -> Table:
    """One row per quadratic network: width, depth, parameters, max relative error against numpy."""
    rows = tuple((name, f"{net.width:,d}", f"{net.depth:,d}", f"{sum(t.numel() for t in net.parameters()):,d}",
                  f"{p.errors[name]:.2g}") for name, net in p.nets.items())
    return Table(f"quadratic networks of a degree-{p.coeffs.size - 1} polynomial on [{p.domain[0]:g}, {p.domain[1]:g}]",
                 ("form", "width", "depth", "parameters", f"max rel. error ({GRID_SAMPLES:,d} points)"), rows)


def step_tables(result: DemoResult) -> list[Table]:
    """The tables of steps 4–6 (exact forms, classifier, polynomial) that ran."""
    tables = [exact_table(result)] if result.exact else []
    if result.classifier is not None:
        tables += classifier_tables(result.classifier)
    if result.polynomial is not None:
        tables.append(polynomial_table(result.polynomial))
    return tables


def summary(result: DemoResult, setup: TrainingSetup) -> list[tuple[str, str]]:
    """Rows of the demo's summary table."""
    cx = result.complex
    box_volume = cx.box.volume
    return [
        ("architecture", result.net.architecture),
        ("target", "exp(-3|x|^2) + x0*x1/2 on [-1, 1]^2"),
        ("training", f"{setup.samples} points, {setup.steps} full-batch Adam steps, seed {setup.seed}"),
        ("training MSE", f"{result.mse:.3e}"),
        ("training seconds", f"{result.train_seconds:.2f}"),
        ("linear regions", f"{len(cx):,d}"),
        ("dropped lower-dim cells", f"{cx.dropped_lower_dim:,d}"),
        ("volume check |Σ-box|/box", f"{abs(cx.volume_total - box_volume) / box_volume:.2e}"),
        ("region seconds", f"{result.region_seconds:.3f}"),
    ]


def _paper_failure_note(result: DemoResult) -> tuple[str, ...]:
    """One sentence on why the paper forms fail their check, when one does."""
    delta, volume = result.rebuild_setup.delta, result.complex.box.volume
    failing = [r for r in result.rebuilt if r.method == "paper"
               and not (judge(r.report, delta, volume).passed and judge(r.report_float32, delta, volume).passed)]
    if not failing:
        return ()
    largest = max(r.net.max_abs_weight() for r in failing)
    return (f"The paper forms fail in floating point: their weights grow like 1/δ² (up to {largest:.2g} here), and "
            "the large terms that cancel inside each module leave float64 — and far more float32 — rounding "
            "errors above the tolerance on a set much larger than δ; the compact forms' weights grow like 1/δ.",)


def _measure_note(result: DemoResult) -> str:
    return (f"δ = {result.rebuild_setup.delta:g} (absolute measure on the box, volume {result.complex.box.volume:g}); "
            "measures are Monte Carlo with a 95% Clopper–Pearson interval; the float32 measure is the ONNX export's")


#: What each written file holds, by its label in ``DemoResult.paths`` (rebuilt and exact forms are
#: described from their names).
_FILE_TEXT = {
    "plot": "the linear regions, coloured by the net's value",
    "json": "the region complex (regions --json document)",
    "model": "the trained regression net",
    "transforms json": "sizes and certificates of the rebuilt forms",
    "transforms plot": "simplices and the compact wide form's error set",
    "classifier": "the trained make_moons classifier",
    "classifier_wide": "its wide De Morgan form",
    "classifier_deep": "its deep De Morgan form",
    "classifier plot": "rules and label error sets",
    "poly_wide": "the wide quadratic network (float64)",
    "poly_deep": "the deep quadratic network (float64)",
    "polynomial plot": "the polynomial, both networks and their errors",
}


def report_sections(result: DemoResult, staged: dict[str, Path], paths: dict[str, Path]) -> list[Section]:
    """The report's sections from the demo's results; ``staged`` maps each file's label to the file as
    written so far (plots are read from there), ``paths`` to its final path (listed by name)."""
    cx = result.complex
    key_values = Table("quasieq demo", ("quantity", "value"), tuple(summary(result, result.setup)))
    sections = [Section(
        "A regression net and its linear regions",
        (f"A {result.net.architecture} ReLU net is trained on exp(-3|x|²) + x0·x1/2 over [-1, 1]², imported "
         "into quasieq and its exact linear regions on the box are enumerated: the net is affine on each.",),
        (key_values,),
        (Image(f"{len(cx):,d} linear regions", staged["plot"]),) if "plot" in staged else (),
    )]
    if result.rebuilt:
        sections.append(Section(
            "Wide and deep forms (compact and paper methods)",
            ("The regions are triangulated into M simplices and the net is rebuilt with two hidden layers (wide) "
             "or as a narrow chain (deep); each form equals the original except on a set of measure below δ.",
             _measure_note(result) + "; a check passes when the upper 95% limit is at most δ.",
             *_paper_failure_note(result)),
            forms_report_tables(result),
            (Image("the simplices over the regions, and where the compact wide form differs from the net",
                   staged["transforms plot"]),),
        ))
    if result.exact:
        sections.append(Section(
            "Exact forms (max–min lattice)",
            ("The lattice representation f = max_i min_{j∈S_i} ℓ_j of the net's regions, built from ReLU gadgets, "
             "equals the net everywhere on the box. Checked here by Monte Carlo (sup error and measure on the "
             "samples); the exact checker (qe.compare(..., exact=True)) certifies the same with no sampling, "
             "but takes minutes on forms this large.",),
            (exact_table(result),),
        ))
    if result.classifier is not None:
        c = result.classifier
        sections.append(Section(
            "A classifier and its De Morgan forms",
            ("A classifier is trained on make_moons; its activation regions, refined by the argmax, are merged "
             "and triangulated into labelled simplices (rules). The wide form computes n_c − Σ¬A_i per class, the "
             "deep form chains the rules; each gives the original's label except on a set of measure below δ "
             "(label measure: Monte Carlo on the data's bounding box).",),
            classifier_tables(c),
            (Image("rules and where the forms' labels differ from the original's", staged["classifier plot"]),),
        ))
    if result.polynomial is not None:
        sections.append(Section(
            "A polynomial as two quadratic networks",
            ("The wide network multiplies the polynomial's real quadratic factors in a product tree; the deep one "
             "evaluates Euler's continued fraction of its even and odd parts (no pole here: the even and the odd "
             "coefficients each have one sign). Both are checked against numpy's Horner evaluation.",),
            (polynomial_table(result.polynomial),),
            (Image("the polynomial, both networks and their errors", staged["polynomial plot"]),),
        ))
    rows = tuple((path.name, f"{staged[label].stat().st_size:,d}",
                  _FILE_TEXT.get(label, f"the {label.replace('_', ' ')} form of the regression net"))
                 for label, path in paths.items() if label in staged)
    folder = next(iter(paths.values())).parent
    sections.append(Section("Files", (f"Written to {folder}; the ONNX models run in ONNX Runtime.",),
                            (Table("files written", ("file", "bytes", "contents"), rows),)))
    return sections


def run_demo(out_dir: Path, console: Console, setup: TrainingSetup = TrainingSetup(),
             rebuild_setup: RebuildSetup = RebuildSetup(), classifier_setup: ClassifierSetup = ClassifierSetup(),
             polynomial=DEMO_POLYNOMIAL) -> DemoResult:
    """Run every demo step, print the tables and the paths written (the report last), and return what
    was produced."""
    module, mse, train_seconds = train(setup)
    net, cx, region_seconds = analyse(module, console)
    result = DemoResult(module, net, mse, train_seconds, cx, region_seconds, setup=setup, rebuild_setup=rebuild_setup)
    result.rebuilt = rebuild(net, cx, console, rebuild_setup)
    result.exact = exact_forms(net, cx, console, rebuild_setup.delta, samples=rebuild_setup.samples("compact"))
    result.classifier = classifier(console, classifier_setup, samples=rebuild_setup.samples("compact"),
                                   seed=rebuild_setup.seed)
    result.polynomial = polynomial_forms(polynomial)
    result.paths = write_outputs(Path(out_dir), result)
    console.print(key_value_table("quasieq demo", summary(result, setup)))
    for table in forms_tables(result):
        console.print(table)
    console.print(_measure_note(result))
    for step_table in step_tables(result):
        console.print(_rich(step_table))
    for label, path in result.paths.items():
        console.print(f"{label}: {path}", soft_wrap=True)
    return result
