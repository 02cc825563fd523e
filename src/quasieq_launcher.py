"""The ``quasieq`` script's first code: a Ctrl-C or SIGTERM while the package loads ends at once.

``import quasieq`` takes one to three seconds (numba, scipy, onnx), and Python runs a package's
``__init__`` before any of its modules, ``quasieq.__main__`` included, so handlers installed there come
too late for a signal sent during start-up: Python's default handler would print a KeyboardInterrupt
traceback. This module sits outside the package and imports nothing heavy: it installs handlers that
write the one line ``interrupted`` and exit with 128 + the signal's number (130 for SIGINT, 143 for
SIGTERM; the same line and codes as :mod:`quasieq.interrupts`), then imports the CLI, whose own
handlers (:func:`quasieq.interrupts.handled_signals`) take over before any command runs. Nothing has
been written before that point, so exiting without cleanup loses nothing.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

#: The line and the exit codes of quasieq.interrupts (a test checks they agree); repeated here because
#: importing that module would load the package first.
MESSAGE = "interrupted"
EXIT_CODES = {signal.SIGINT: 128 + signal.SIGINT, signal.SIGTERM: 128 + signal.SIGTERM}


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    os.write(2, f"{MESSAGE}\n".encode())
    os._exit(EXIT_CODES[signal.Signals(signum)])


def main() -> None:
    """Entry point of the ``quasieq`` script: quick-exit handlers, then :func:`quasieq.__main__.main`."""
    for signum in EXIT_CODES:
        signal.signal(signum, _exit_at_once)
    from quasieq.__main__ import main as run_cli  # the package loads here, under the handlers above

    run_cli()


if __name__ == "__main__":
    main()
