"""The rich console every command prints through."""

from __future__ import annotations

import sys

from rich.console import Console

#: Width of the tables printed to a file or pipe (a log, CI): rich's default there is 80 columns, which
#: truncates the wide tables of ``demo`` and ``experiment`` into unreadable "…" cells.
PLAIN_OUTPUT_WIDTH = 160


def make_console() -> Console:
    """A console on the current stdout (created per call, so redirected streams are honoured); off a
    terminal, PLAIN_OUTPUT_WIDTH columns wide."""
    return Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else PLAIN_OUTPUT_WIDTH)
