"""Region complexes on disk (regions/store.py): the columnar .npz round trip, its checks on hostile
files, and the streamed JSON against the in-memory document."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

import quasieq as qe
from oracles import seeded_relu_net
from quasieq.cli import EXIT_BAD_INPUT, app
from quasieq.regions import store


@pytest.fixture(scope="module", params=["2-16-16-1", "3-8-8-1"])
def complex_(request):
    net = seeded_relu_net(request.param)
    return qe.regions(net, qe.Box.cube(net.in_dim))


def test_npz_round_trip_keeps_every_column(complex_, tmp_path):
    path = tmp_path / "regions.npz"
    complex_.save(path)
    back = qe.load_regions(path)
    for column in store.COLUMNS:
        name = store.ATTRIBUTE_OF.get(column, column)
        np.testing.assert_array_equal(getattr(back, name), getattr(complex_, name))
    assert (back.volume_exact, back.dropped_lower_dim) == (complex_.volume_exact, complex_.dropped_lower_dim)
    X = complex_.box.sample(300, np.random.default_rng(1))
    np.testing.assert_array_equal(back.net.forward(X), complex_.net.forward(X))
    np.testing.assert_array_equal(back.locate(X), complex_.locate(X))


def test_streamed_json_is_the_document(complex_):
    out = io.StringIO()
    calls = []
    store.write_json(complex_, out, progress=lambda done, total: calls.append((done, total)), every=50)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(complex_.to_json()))
    n = len(complex_)
    assert calls[-1] == (n, n) and [c[0] for c in calls[:-1]] == list(range(50, n + 1, 50))


def _rewrite(src, dst, change):
    """Copy archive ``src`` to ``dst`` with ``change(arrays)`` applied to its arrays (a dict)."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(dst, **arrays)


def _set(name, value):
    def change(arrays):
        arrays[name] = value(arrays[name]) if callable(value) else value
    return change


def _bump_offsets(name):
    def change(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name][-1] += 1
    return change


def _break_first(name, value):
    def change(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name].flat[0] = value
    return change


HOSTILE = [
    ("missing column", lambda a: a.pop("radii"), "'radii' is missing"),
    ("wrong dtype", _set("vertex_offsets", lambda x: x.astype(np.int32)), "'vertex_offsets' has dtype int32"),
    ("too few patterns", _set("patterns", lambda x: x[:-1]), "'patterns'|'interior_points'"),
    ("wrong pattern width", _set("patterns", lambda x: x[:, :-1]), "'patterns' has"),
    ("offsets past the rows", _bump_offsets("facet_offsets"), "'facet_offsets' must rise"),
    ("neighbour out of range", _break_first("neighbours_flat", 10**9), "'neighbours_flat'"),
    ("source out of range", _break_first("facet_sources_flat", -99), "'facet_sources_flat'"),
    ("non-finite volume", _break_first("volumes", np.nan), "'volumes' holds non-finite"),
    ("schema version", _set("meta", lambda m: np.array(json.dumps({**json.loads(str(m)), "schema_version": 7}))),
     "schema_version 7"),
    ("net of another width", _set("W0", lambda W: W[:-1]), "."),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_load_refuses_inconsistent_files(complex_, tmp_path, case):
    _, change, message = case
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    complex_.save(good)
    _rewrite(good, bad, change)
    with pytest.raises(qe.QuasieqError, match=message):
        qe.load_regions(bad)


def test_load_refuses_pickles_and_oversized_headers(complex_, tmp_path):
    good = tmp_path / "good.npz"
    complex_.save(good)
    pickled = tmp_path / "pickled.npz"
    _rewrite(good, pickled, _set("radii", lambda x: np.array([object()] * len(x), dtype=object)))
    with pytest.raises(qe.QuasieqError, match="Python objects"):
        qe.load_regions(pickled)
    # a header declaring 10^12 rows over the few bytes stored: refused before any allocation
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(huge, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "radii.npy":
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                                           "shape": (10**12,)})
                data = buf.getvalue() + np.zeros(len(complex_)).tobytes()
            dst.writestr(info.filename, data)
    with pytest.raises(qe.QuasieqError, match="more bytes than the file holds"):
        qe.load_regions(huge)
    not_zip = tmp_path / "text.npz"
    not_zip.write_text("hello")
    with pytest.raises(qe.QuasieqError, match="not a saved region complex"):
        qe.load_regions(not_zip)


def test_cli_save_writes_a_loadable_complex(tmp_path):
    net = seeded_relu_net("2-8-8-1")
    model = tmp_path / "model.npz"
    qe.save(net, model)
    out = tmp_path / "regions.npz"
    result = CliRunner().invoke(app, ["regions", str(model), "--box", "-1", "1", "--save", str(out)])
    assert result.exit_code == 0, result.output
    back = qe.load_regions(out)
    assert len(back) == len(qe.regions(net, qe.Box.cube(2)))
    result = CliRunner().invoke(app, ["regions", str(model), "--box", "-1", "1", "--save", str(tmp_path / "r.json")])
    assert result.exit_code == EXIT_BAD_INPUT and "must end in .npz" in result.output
