"""Ctrl-C and SIGTERM: stop a command cleanly with one line ``interrupted``.

Within :func:`handled_signals` (the CLI wraps every command in it):

* SIGINT (Ctrl-C) raises :class:`KeyboardInterrupt` in the main thread, SIGTERM raises
  :class:`Terminated` (a KeyboardInterrupt), so both unwind the stack like any exception: every
  ``with`` block and ``finally`` clause runs, which is how staged output files and temporary folders
  are removed — nothing else has to know about signals.
* The first signal wins: later ones are ignored until the command has unwound, so a second Ctrl-C
  cannot break off the cleanup half-way; :func:`deferred` holds signals back around steps that must
  not be cut in two (committing the staged output files).
* :func:`exit_code` gives the conventional status 128 + signal number: 130 for SIGINT, 143 for SIGTERM.

Latency: Python runs a signal handler between bytecodes of the main thread, so a signal arriving
while compiled code runs (a numba kernel, one large numpy or BLAS call) takes effect when that call
returns. Long loops therefore work in chunks of bounded duration (the region engine's chunks, the
Monte-Carlo chunks of ``compare``), which is what bounds the time from Ctrl-C to exit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

#: The one line printed on stderr when a command is stopped by a signal.
MESSAGE = "interrupted"


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside :func:`handled_signals`; unwinds exactly like Ctrl-C."""


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_once(signum: int, frame: FrameType | None) -> None:
    for s in _SIGNALS:  # the cleanup that follows must not be interrupted again
        signal.signal(s, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def handled_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise in the main thread while the block runs (a no-op in other threads,
    where Python cannot install handlers); the previous handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, _raise_once)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (a few renames that must happen all or not
    at all); a signal that arrives meanwhile is delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def interrupt_cause(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt in ``exc``'s chain of causes, if any (compiled code that calls back into
    Python, as numba does when it returns objects, may wrap the interrupt in a SystemError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def exit_code(exc: BaseException) -> int:
    """130 after Ctrl-C, 143 after SIGTERM."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
