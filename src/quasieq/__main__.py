"""The ``quasieq`` command (and ``python -m quasieq``): Ctrl-C handling first, then the CLI.

Loading the CLI takes seconds (numba, scipy, onnx, torch); the signal handlers of
:mod:`quasieq.interrupts` are installed before that, so a Ctrl-C or SIGTERM while the CLI loads also
ends with the one line ``interrupted`` and exit 130 / 143 instead of an import traceback. The package
itself (``quasieq/__init__``) loads before this module: the ``quasieq`` script therefore starts in
``quasieq_launcher``, outside the package, whose handlers cover that first second too.
"""

from __future__ import annotations

import os
import sys

from quasieq.interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED, MESSAGE, exit_code, handled_signals


def main() -> None:
    """Entry point of the ``quasieq`` script."""
    try:
        with handled_signals():
            from quasieq.cli import app  # inside the handler: a signal during the CLI's imports exits cleanly

            app()
    except KeyboardInterrupt as exc:  # only start-up gets here: the app reports its own interrupts
        sys.stderr.write(f"{MESSAGE}\n")
        sys.exit(exit_code(exc))
    except SystemExit as stop:
        if stop.code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            # stopped by a signal, the stack unwound and every output cleaned up: skip the interpreter's
            # teardown (freeing gigabytes of arrays, unloading numba), which can take longer than the
            # cleanup itself
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(stop.code)
        raise


if __name__ == "__main__":
    main()
