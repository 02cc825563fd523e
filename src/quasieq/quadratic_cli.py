"""``quasieq quadratic wide|deep|check COEFFS...``: a polynomial as a wide or a deep quadratic network.

COEFFS are the ascending coefficients p0 … pn (negative numbers may be written as is: unknown
``-…`` tokens are read as arguments). Each command prints the sizes, the maximum relative error on a
dense grid of ``--domain`` against numpy's Horner evaluation (relative to max|P| there), and the
hazards found (factor backward error, root condition, zero coefficients, intermediate poles).

* ``wide`` / ``deep`` build the network (``--out FILE.onnx`` exports it in float64) and exit 0; bad
  input, or a hazard the chosen policy refuses, raises :class:`~quasieq.errors.QuasieqError` (the
  main app turns it into one stderr line and exit 2).
* ``check`` builds nothing it keeps: it reports every hazard and both nets' errors (building the deep
  one with ``on_pole="allow"`` when it has to), and exits 1 when a default construction would refuse.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

import quasieq.quadratic as qq
from quasieq.console import make_console
from quasieq.errors import QuasieqError
from quasieq.io.outputs import staged_outputs
from quasieq.quadratic.deep import find_poles, zero_coefficients
from quasieq.quadratic.polynomial import as_coefficients, as_domain, grid
from quasieq.tolerances import QUADRATIC_FACTOR_RELATIVE

quadratic_app = typer.Typer(
    help="Polynomials as quadratic networks: wide = factorisation, deep = Euler's continued fraction.",
    no_args_is_help=True, add_completion=False)

#: Negative coefficients ("-0.5") are not options: read unknown dash tokens as arguments.
_CONTEXT = {"ignore_unknown_options": True}

Coeffs = Annotated[list[float],
                   typer.Argument(help="Ascending coefficients p0 p1 ... pn (pn != 0).", show_default=False)]
Domain = Annotated[tuple[float, float], typer.Option("--domain", help="Interval LO HI on which P is represented.")]
Out = Annotated[Path | None, typer.Option("--out", help="Export the network to this .onnx file (float64).")]


def _out_path(out: Path | None) -> Path | None:
    if out is not None and (out.suffix != ".onnx" or not out.parent.is_dir()):
        raise QuasieqError(f"--out must be a .onnx file in an existing folder, got {out}")
    return out


def _export(net, out: Path | None, console: Console) -> None:
    if out is None:
        return
    with staged_outputs() as stage:
        qq.save_onnx(net, stage(out))
    console.print(f"wrote {out}")


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table


def _condition(p: np.ndarray, domain: tuple[float, float]) -> float:
    """max_x Σ|p_i||x|^i / max_x |P(x)| on the grid: how much relative coefficient errors are amplified."""
    x = grid(*domain)
    P = np.polynomial.polynomial
    return float(np.max(P.polyval(np.abs(x), np.abs(p))) / np.max(np.abs(P.polyval(x, p))))


def _wide_rows(net) -> list[tuple[str, str]]:
    fac = net.factorisation
    return [("width, depth", f"{net.width}, {net.depth}   (⌈n/2⌉, 1 + ⌈log2⌈n/2⌉⌉)"),
            ("factor backward error", f"{fac.coefficient_error:.3g}"),
            ("root condition (max)", f"{fac.root_condition:.3g}"),
            ("max relative error", f"{qq.max_relative_error(net, net.coeffs, net.domain):.3g}")]


def _deep_rows(net) -> list[tuple[str, str]]:
    rows = [("width, depth", f"{net.width}, {net.depth}   (2, ⌊n/2⌋ + 2)")]
    if net.perturbation is not None:
        pert = net.perturbation
        rows.append(("perturbed", f"{', '.join(f'p{i}' for i in pert.indices)} by ±{pert.eps:.3g}; "
                                  f"uniform error ≤ {pert.bound:.3g} (exact arithmetic), measured {pert.measured:.3g}"))
    rows.append(("poles on the domain", "; ".join(pole.describe() for pole in net.poles) or "none"))
    rows.append(("max relative error", f"{qq.max_relative_error(net, net.coeffs, net.domain):.3g}"))
    return rows


@quadratic_app.command("wide", context_settings=_CONTEXT)
def wide_command(coeffs: Coeffs, domain: Domain = (-1.0, 1.0), out: Out = None,
                 ill_conditioned: Annotated[str, typer.Option(help="refuse | warn")] = "refuse") -> None:
    """Build the wide network (roots paired into real quadratic factors, then a product tree)."""
    out = _out_path(out)
    net = qq.wide(coeffs, domain=domain, on_ill_conditioned=ill_conditioned)
    console = make_console()
    console.print(_table(f"wide quadratic net, degree {net.degree} on {list(net.domain)}", _wide_rows(net)))
    _export(net, out, console)


@quadratic_app.command("deep", context_settings=_CONTEXT)
def deep_command(coeffs: Coeffs, domain: Domain = (-1.0, 1.0), out: Out = None,
                 on_pole: Annotated[str, typer.Option(help="refuse | perturb | allow")] = "refuse",
                 eps: Annotated[float | None, typer.Option(help="Perturbation of zero coefficients.")] = None) -> None:
    """Build the deep network (Euler's continued fraction on the even and odd parts)."""
    out = _out_path(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the poles are printed below
        net = qq.deep(coeffs, domain=domain, on_pole=on_pole, eps=eps)
    console = make_console()
    console.print(_table(f"deep quadratic net, degree {net.degree} on {list(net.domain)}", _deep_rows(net)))
    _export(net, out, console)


@quadratic_app.command("check", context_settings=_CONTEXT)
def check_command(coeffs: Coeffs, domain: Domain = (-1.0, 1.0)) -> None:
    """Report every hazard of both constructions; exit 1 when a default construction would refuse."""
    p, dom = as_coefficients(coeffs), as_domain(domain)
    console = make_console()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide_net = qq.wide(p, domain=dom, on_ill_conditioned="warn")
        deep_net = qq.deep(p, domain=dom, on_pole="allow")
    zeros = zero_coefficients(p)
    poles = find_poles(p, dom) if not zeros else deep_net.poles
    console.print(_table(f"P of degree {p.size - 1} on {list(dom)}",
                         [("evaluation condition", f"{_condition(p, dom):.3g}   (max Σ|p_i||x|^i / max|P|)"),
                          ("zero coefficients", ", ".join(f"p{i}" for i in zeros) or "none")]))
    console.print(_table("wide", _wide_rows(wide_net)))
    console.print(_table("deep (built with on_pole='allow')", _deep_rows(deep_net)))
    refused = wide_net.factorisation.coefficient_error > QUADRATIC_FACTOR_RELATIVE or bool(zeros) or bool(poles)
    if refused:
        console.print("a default construction would refuse this polynomial (see above)")
        raise typer.Exit(1)
