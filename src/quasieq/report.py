"""One self-contained HTML report: sections of text, tables and PNG plots in a single file.

A report is a list of :class:`Section` (title, paragraphs, tables, images). :func:`render_report`
turns it into one HTML document that needs nothing else to display:

* the style sheet is inline (a ``<style>`` element), no script, no link;
* every image is embedded as a ``data:image/png;base64,…`` URI (only PNG is accepted: the 8-byte
  signature is checked, so a wrong file fails here rather than as a broken picture);
* every table is an HTML ``<table>`` whose cells hold the given strings;
* all text goes through ``html.escape``, so ``<``, ``&`` or quotes in a value cannot change the markup.

:func:`write_report` writes it atomically: to a temporary file in the target's folder, then
``os.replace`` onto the target, so a reader never sees half a report.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from quasieq.errors import QuasieqError
from quasieq.interrupts import scratch

#: The first 8 bytes of every PNG file (PNG specification, §5.2).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border: 1px solid #ccc; padding: .2rem .55rem; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #555; }
"""


@dataclass(frozen=True)
class Table:
    """A table: a caption, column headers and rows of already formatted cell strings."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise QuasieqError(
                    f"report table {self.title!r}: row {i} has {len(row)} cells, the header {len(self.columns)}"
                )


@dataclass(frozen=True)
class Image:
    """A PNG picture (its bytes, or the path of a PNG file) with a caption."""

    caption: str
    png: bytes | Path


@dataclass(frozen=True)
class Section:
    """A titled part of the report: paragraphs of text, then tables, then images."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    images: tuple[Image, ...] = ()


def png_data_uri(png: bytes | Path) -> str:
    """``data:image/png;base64,…`` of PNG bytes or a PNG file; QuasieqError if it is not a PNG."""
    data = Path(png).read_bytes() if isinstance(png, (str, Path)) else bytes(png)
    if data[:8] != PNG_SIGNATURE:
        name = str(png)[:60] if isinstance(png, (str, Path)) else "(bytes)"
        raise QuasieqError(f"report: image {name} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _table_html(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>\n" for row in table.rows)
    caption = f"<caption>{e(table.title)}</caption>"
    return f"<table>\n{caption}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _section_html(section: Section) -> str:
    e = html.escape
    parts = [f"<section>\n<h2>{e(section.title)}</h2>"]
    parts += [f"<p>{e(p)}</p>" for p in section.paragraphs]
    parts += [_table_html(t) for t in section.tables]
    parts += [f'<figure><img src="{png_data_uri(im.png)}" alt="{e(im.caption, quote=True)}">'
              f"<figcaption>{e(im.caption)}</figcaption></figure>" for im in section.images]
    parts.append("</section>")
    return "\n".join(parts)


def render_report(title: str, sections: list[Section]) -> str:
    """The whole HTML document (UTF-8, inline style, images as data URIs)."""
    e = html.escape
    body = "\n".join(_section_html(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{e(title)}</h1>\n{body}\n</body>\n</html>\n")


def write_report(path: str | Path, sections: list[Section], title: str = "quasieq report") -> Path:
    """Write :func:`render_report` to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``); returns the path."""
    path = Path(path)
    text = render_report(title, sections)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".html", dir=path.parent if str(path.parent) else ".")
    try:
        with scratch(tmp), os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the report the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["Table", "Image", "Section", "png_data_uri", "render_report", "write_report"]
