"""The registry of constructions (construct/registry.py) is the one list the library, the CLI and the
validation read: every line names a construct/ module with ``build(form, job)``, the CLI's ``--help``
lists every method, and a name not in the registry is refused in the library and in the CLI alike."""

from __future__ import annotations

import importlib
import inspect

import pytest
from typer.testing import CliRunner

import quasieq as qe
from quasieq.cli import app
from quasieq.construct.registry import CONSTRUCTIONS, METHODS, check_method


@pytest.mark.parametrize("name", sorted(CONSTRUCTIONS))
def test_every_registered_construction_is_a_construct_module_with_one_build_signature(name):
    construction = CONSTRUCTIONS[name]
    assert construction.name == name and construction.module.startswith("quasieq.construct.")
    build = importlib.import_module(construction.module).build
    assert list(inspect.signature(build).parameters) == ["form", "job"]


@pytest.mark.parametrize("command", ["wide", "deep"])
def test_help_lists_every_method_with_its_summary(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for name, summary in METHODS.items():
        assert f"{name}: {' '.join(summary.split())}" in text, name


def test_an_unknown_or_misplaced_method_is_refused_by_the_same_check_in_library_and_cli(tmp_path):
    net = qe.ReluNet([[[1.0, -1.0]], [[1.0]]], [[0.0], [0.0]])
    box = qe.Box.cube(2)
    with pytest.raises(qe.QuasieqError, match="unknown method 'nope'"):
        qe.to_wide(net, box, 1e-3, method="nope")
    with pytest.raises(qe.QuasieqError, match="method logits builds classifiers"):
        qe.to_wide(net, box, 1e-3, method="logits")
    with pytest.raises(qe.QuasieqError, match="unknown --method 'nope'"):
        check_method("nope", "regression", option="--method", task_option="--task")
    qe.save(net, tmp_path / "m.npz")
    args = ["wide", str(tmp_path / "m.npz"), "--box", "-1", "1", "--delta", "1e-3", "--method"]
    result = CliRunner().invoke(app, [*args, "nope"])
    assert result.exit_code == 2 and "unknown --method 'nope'" in result.output
    result = CliRunner().invoke(app, [*args, "logits"])
    assert result.exit_code == 2 and "--method logits builds classifiers: use it with --task classification" in (
        " ".join(result.output.split()))


def test_exact_needs_no_delta_and_every_other_method_does():
    net = qe.ReluNet([[[1.0, -1.0], [0.5, 1.0]], [[1.0, -2.0]]], [[0.0, 0.1], [0.0]])
    box = qe.Box.cube(2)
    exact = qe.to_wide(net, box, method="exact")
    assert exact.provenance.error_bound == 0.0 and exact.provenance.delta is None
    for name, construction in CONSTRUCTIONS.items():
        if construction.needs_delta and not construction.classification_only:
            with pytest.raises(qe.QuasieqError, match=f"method '{name}' needs delta"):
                qe.to_wide(net, box, method=name)
