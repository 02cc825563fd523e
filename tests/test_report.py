"""The HTML report (quasieq.report) and the demo's new steps, checked independently.

The report is parsed back with the standard library's ``html.parser``: every picture must be a
``data:`` URI whose bytes are the PNG given (signature, IHDR chunk and its CRC recomputed with zlib),
every table cell must read back as the value given, and nothing may point outside the file. The demo's
steps run on tiny inputs and are checked against numpy's Horner evaluation (polynomial), a direct
recount through the torch module (classifier accuracies and label disagreements) and dense sampling
(exact forms).
"""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest
from rich.console import Console

import quasieq as qe
from quasieq.errors import QuasieqError
from quasieq.report import Image, Section, Table, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a browser would need from the page: tags, references, images, table cells, paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.images: list[dict] = []
        self.tables: list[list[list[str]]] = []
        self.captions: list[str] = []
        self.paragraphs: list[str] = []
        self.style = ""
        self._text: list[str] | None = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        self.refs += [(tag, k, v) for k, v in a.items() if k in ("src", "href", "srcset", "data", "action", "poster")]
        if tag == "img":
            self.images.append(a)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "p", "caption"):
            self._text = []
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._text))
        elif tag == "p":
            self.paragraphs.append("".join(self._text))
        elif tag == "caption":
            self.captions.append("".join(self._text))
        elif tag == "style":
            self._in_style = False
        if tag in ("td", "th", "p", "caption"):
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._in_style:
            self.style += data


def parse(path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def captioned(page: Page, test) -> list[list[str]]:
    """The first table of ``page`` whose caption passes ``test``."""
    return next(t for t, caption in zip(page.tables, page.captions, strict=True) if test(caption))


def png_bytes(src: str) -> bytes:
    """The bytes of a ``data:image/png;base64,`` URI, after checking the PNG signature and that the first
    chunk is a 13-byte IHDR whose CRC-32 (over type and data) is right and whose size is positive."""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    data = base64.b64decode(src[len(prefix):], validate=True)
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert crc == zlib.crc32(kind + body)
    width, height = struct.unpack(">II", body[:8])
    assert width > 0 and height > 0
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk and its fixed CRC
    return data


def assert_self_contained(page: Page) -> None:
    assert page.tags[0] == "html" and "body" in page.tags
    assert not {"link", "script", "iframe", "object", "embed"} & set(page.tags)
    assert all(value.startswith("data:") for _, _, value in page.refs), page.refs
    assert "url(" not in page.style and "@import" not in page.style


def a_png(tmp_path, name: str, colour: str) -> bytes:
    from quasieq.viz import new_figure, save_figure

    fig, ax = new_figure((2.0, 1.5))
    ax.plot([0, 1], [0, 1], color=colour)
    save_figure(fig, tmp_path / name, dpi=40)
    return (tmp_path / name).read_bytes()


# ----- the report writer ------------------------------------------------------------------------------
def test_report_is_one_self_contained_html_file_holding_the_given_tables_text_and_pngs(tmp_path):
    first, second = a_png(tmp_path, "a.png", "red"), a_png(tmp_path, "b.png", "blue")
    odd = 'a <b> & "c" \'d\''  # markup characters must come back as text
    tables = (
        Table("sizes", ("form", "width", odd), (("wide", "1,234", "x < y"), ("deep", "8", "&amp;"))),
        Table(odd, ("quantity", "value"), (("δ", "1e-3"),)),
    )
    sections = [
        Section("one", ("first paragraph", odd), tables, (Image("from a file", tmp_path / "a.png"),)),
        Section("two", (), (), (Image(odd, second),)),
    ]
    out = tmp_path / "report" / "report.html"
    out.parent.mkdir()
    assert write_report(out, sections) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]  # no temporary file left

    page = parse(out)
    assert_self_contained(page)
    assert [png_bytes(im["src"]) for im in page.images] == [first, second]
    assert [im["alt"] for im in page.images] == ["from a file", odd]
    assert page.captions == ["sizes", odd]
    for table, parsed in zip(tables, page.tables, strict=True):
        assert parsed == [list(table.columns)] + [list(row) for row in table.rows]
    assert page.paragraphs == ["first paragraph", odd]


def test_a_picture_that_is_not_a_png_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "report.html"
    with pytest.raises(QuasieqError, match="not a PNG"):
        write_report(out, [Section("s", images=(Image("gif", b"GIF89a" + bytes(20)),))])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(QuasieqError, match="row 0 has 1 cells"):
        Table("t", ("a", "b"), (("1",),))


# ----- the demo's new steps ------------------------------------------------------------------------
def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_polynomial_step_reproduces_numpy_and_has_the_stated_sizes():
    from quasieq.demo import polynomial_forms

    rng = np.random.default_rng(5)
    coeffs = rng.uniform(0.2, 1.5, 8)  # degree 7, all positive: even and odd parts of one sign, no pole
    result = polynomial_forms(coeffs, (-1.5, 1.0))
    x = rng.uniform(-1.5, 1.0, 3000)
    reference = np.polynomial.polynomial.polyval(x, coeffs)
    import torch

    for name, net in result.nets.items():
        with torch.no_grad():
            values = net(torch.tensor(x[:, None], dtype=torch.float64)).numpy()[:, 0]
        assert np.max(np.abs(values - reference)) <= 1e-12 * np.max(np.abs(reference)), name
        assert 0.0 <= result.errors[name] <= 1e-12
    n = coeffs.size - 1
    half = math.ceil(n / 2)
    assert (result.nets["wide"].width, result.nets["wide"].depth) == (half, 1 + math.ceil(math.log2(half)))
    assert (result.nets["deep"].width, result.nets["deep"].depth) == (2, n // 2 + 2)


@pytest.fixture(scope="module")
def small_classifier():
    from quasieq.demo import ClassifierSetup, moons, train_classifier

    setup = ClassifierSetup(points=160, hidden=(5, 5), steps=300)
    X_train, y_train, X_test, y_test = moons(setup)
    module, _ = train_classifier(X_train, y_train, setup)
    return module, X_train, X_test, y_test


def test_classifier_step_accuracies_and_label_measures_equal_a_direct_recount(small_classifier):
    import torch

    from quasieq.demo import classifier_forms
    from quasieq.verify.data import data_box

    module, X_train, X_test, y_test = small_classifier
    net = qe.from_torch(module)
    box = data_box(np.vstack([X_train, X_test]))
    samples = 3000
    result = classifier_forms(net, box, 1e-3 * box.volume, X_test, y_test, quiet(), samples=samples, seed=4)

    def torch_labels(X):
        with torch.no_grad():
            return module(torch.tensor(X, dtype=torch.float32)).numpy().argmax(axis=1)

    assert result.accuracy["original"] == pytest.approx(np.mean(torch_labels(X_test) == y_test), abs=1e-12)
    X_mc = box.sample(samples, np.random.default_rng(4))  # compare's points: one chunk, same generator
    for name, form in result.forms.items():
        assert result.accuracy[name] == pytest.approx(np.mean(form.forward(X_test).argmax(axis=1) == y_test), abs=1e-12)
        differ = np.count_nonzero(form.forward(X_mc).argmax(axis=1) != torch_labels(X_mc))
        # float32 torch and float64 quasieq may split a tie on a boundary differently: allow one point
        assert abs(result.reports[name].label_disagreement_measure / box.volume * samples - differ) <= 1
        assert result.reports[name].label_disagreement_measure <= result.delta + 3 * box.volume / np.sqrt(samples)
    assert result.rules.rules_per_class.sum() == result.rules.n
    assert result.forms["wide"].hidden_layers == 2 and result.forms["deep"].width == 2 * 2 + 2 + 2


def test_exact_step_certifies_forms_that_match_the_net_on_dense_samples():
    from quasieq.demo import exact_forms

    rng = np.random.default_rng(11)
    net = qe.ReluNet([rng.normal(size=(5, 2)), rng.normal(size=(5, 5)), rng.normal(size=(1, 5))],
                     [rng.normal(size=5), rng.normal(size=5), rng.normal(size=1)])
    box = qe.Box.cube(2, -1.0, 1.0)
    cx = qe.regions(net, box)
    X = box.sample(20_000, rng)
    scale = max(1.0, float(np.abs(net.forward(X)).max()))
    for e in exact_forms(net, cx, quiet(), 1e-3):
        assert e.report.method == "exact" and e.report.disagreement_measure == 0.0
        assert e.report.sup_error <= 1e-9 * scale
        assert np.max(np.abs(e.net.forward(X) - net.forward(X))) <= 1e-9 * scale
        p = e.net.provenance  # pieces: regions merged into convex equal-map unions
        assert p.details["regions"] == len(cx) and 1 <= p.lattice.pieces <= len(cx)


def test_the_demo_on_tiny_settings_writes_a_report_of_every_table_plot_and_file(tmp_path):
    from quasieq.demo import ClassifierSetup, RebuildSetup, TrainingSetup, run_demo

    out = tmp_path / "demo"
    result = run_demo(out, quiet(), setup=TrainingSetup(hidden=(5, 5), samples=256, steps=150),
                      rebuild_setup=RebuildSetup(methods=("compact",), samples_compact=500),
                      classifier_setup=ClassifierSetup(points=120, hidden=(4, 4), steps=200))
    report = out / "report.html"
    assert result.paths["report"] == report and list(result.paths)[-1] == "report"
    page = parse(report)
    assert_self_contained(page)
    # every plot written is embedded byte for byte
    pngs = sorted(p.read_bytes() for p in out.glob("*.png"))
    assert len(pngs) == 4 and sorted(png_bytes(im["src"]) for im in page.images) == pngs
    # the files table lists every other file written, with its size
    files = captioned(page, lambda caption: caption == "files written")
    listed = {row[0]: int(row[1].replace(",", "")) for row in files[1:]}
    on_disk = {p.name: p.stat().st_size for p in out.iterdir() if p.name != "report.html"}
    assert listed == on_disk
    assert {"wide_exact.onnx", "deep_exact.onnx", "classifier_wide.onnx", "classifier_deep.onnx",
            "poly_wide.onnx", "poly_deep.onnx"} <= set(on_disk)
    # the held-out accuracies in the report are the result's, and the exact forms' measures are 0
    nets = captioned(page, lambda caption: caption.startswith("De Morgan forms"))
    c = result.classifier
    assert [row[-1] for row in nets[1:]] == [f"{c.accuracy[k]:.3f}" for k in ("original", "wide", "deep")]
    exact = captioned(page, lambda caption: caption.startswith("exact (lattice)"))
    assert [row[exact[0].index("measure")] for row in exact[1:]] == ["0", "0"]
    assert [e.report.samples for e in result.exact] == [500, 500]
    # every certified form carries its δ check: 500 samples with no disagreement give the upper limit
    # 4·(1 − 0.025^(1/500)) ≈ 0.029 > δ = 1e-3, and fewer than ln 0.025 / ln(1 − δ/4) ≈ 14,754 samples can
    # never pass: inconclusive, in float64 and float32
    forms = captioned(page, lambda caption: caption.endswith("disagreement measures"))
    delta, volume = 1e-3, 4.0
    assert math.log(0.025) / math.log1p(-delta / volume) > 500
    checks = [forms[0].index("check"), forms[0].index("float32 check")]
    assert len(forms) > 1 and all(row[i] == "inconclusive" for row in forms[1:] for i in checks)
    # the exported quadratic networks compute the polynomial in ONNX Runtime
    from quasieq.verify.compare import onnx_function

    x = np.linspace(-1.0, 1.0, 101)[:, None]
    for name in ("wide", "deep"):
        values = onnx_function(out / f"poly_{name}.onnx")(x)[:, 0]
        np.testing.assert_allclose(values, np.polynomial.polynomial.polyval(x[:, 0], result.polynomial.coeffs),
                                   rtol=1e-12, atol=1e-12)
