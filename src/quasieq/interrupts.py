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
while compiled code runs (a numba kernel, one large numpy or BLAS call) would take effect only when
that call returns — seconds to minutes for the region engine's kernels. A **watchdog** thread bounds
it: the C-level handler writes the signal's number to a socket (``signal.set_wakeup_fd``) at once,
even while the main thread is in compiled code, and the watchdog reads it. If the main thread has
not started to unwind FORCED_EXIT_AFTER_S later (its Python handler has not run), the watchdog removes
every file and folder registered with :func:`scratch` (staged outputs, temporary folders), prints
``interrupted`` and ends the process with the same exit code. The watchdog needs the GIL, so the
engine's kernels release it (``njit(nogil=True)``); the work they were doing is abandoned, which is
safe because nothing is written anywhere but in scratch files until a command's outputs are committed
(inside :func:`deferred`, when the signals are held back).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

#: The one line printed on stderr when a command is stopped by a signal.
MESSAGE = "interrupted"


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside :func:`handled_signals`; unwinds exactly like Ctrl-C."""


_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Seconds between a signal and the watchdog's forced exit when the main thread has not begun to
#: unwind by then (it is inside compiled code). Long enough for the Python handler to run whenever the
#: main thread is executing bytecode (it runs within the interpreter's 5 ms switch interval), short
#: enough to keep Ctrl-C at about a second even on a loaded machine.
FORCED_EXIT_AFTER_S = 0.5

#: Set when the main thread's handler has raised: from then on the ordinary unwinding cleans up.
_unwinding = threading.Event()

#: Nesting depth of :func:`compiled` blocks in the main thread, and the signal that arrived in one.
_compiled_depth = 0
_pending: list[int] = []

#: Held while outputs are committed (:func:`deferred`): the watchdog does not end the process then.
_committing = threading.Lock()

#: Nesting depth of :func:`handled_signals` (only the outermost installs the handlers).
_handled_depth = 0

#: Files and folders to remove if the watchdog ends the process (see :func:`scratch`).
_scratch: set[Path] = set()


def _raise(signum: int) -> None:
    _unwinding.set()
    for s in _SIGNALS:  # the cleanup that follows must not be interrupted again
        signal.signal(s, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: raise now, or at the end of the :func:`compiled` block running."""
    if _compiled_depth:
        if not _pending:
            _pending.append(signum)
        return
    _raise(signum)


@contextmanager
def compiled() -> Iterator[None]:
    """Mark a call into compiled code (a numba kernel): a signal arriving meanwhile is raised when the
    block ends, not inside it. A handler that raises while numba converts a kernel's result back to
    Python objects (its named tuples call Python code) leaves numba with a half-built object, and
    the process crashes; the watchdog still ends a block that outlasts FORCED_EXIT_AFTER_S."""
    global _compiled_depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _compiled_depth += 1
    try:
        yield
    finally:
        _compiled_depth -= 1
        if not _compiled_depth and _pending:
            _raise(_pending.pop())


@contextmanager
def scratch(path: str | os.PathLike) -> Iterator[Path]:
    """Register ``path`` (a file or folder that the block creates and removes) for removal should the
    watchdog end the process while the block runs."""
    entry = Path(path)
    _scratch.add(entry)
    try:
        yield entry
    finally:
        _scratch.discard(entry)


def _forced_exit(signum: int) -> None:
    """Remove the registered scratch paths, print the one line and end the process (all threads)."""
    for path in list(_scratch):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    sys.stderr.write(f"{MESSAGE}\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def _watch(wakeup: socket.socket) -> None:
    """The watchdog thread: wait for a signal number on ``wakeup``; force the exit if the main thread
    has not begun unwinding FORCED_EXIT_AFTER_S after it. Returns when the socket is closed."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # signals are the main thread's to handle
    while True:
        try:
            data = wakeup.recv(16)
        except OSError:
            return
        if not data:
            return
        caught = [n for n in data if n in _SIGNALS]
        if caught and not _unwinding.wait(FORCED_EXIT_AFTER_S):
            with _committing:  # never in the middle of committing outputs (deferred)
                if not _unwinding.is_set():
                    _forced_exit(caught[0])


@contextmanager
def handled_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise in the main thread while the block runs, and the watchdog ends the
    process if they cannot (a no-op in other threads, where Python cannot install handlers); the
    previous handlers are restored afterwards."""
    global _handled_depth
    if threading.current_thread() is not threading.main_thread() or _handled_depth:
        yield  # other threads cannot install handlers; a nested block keeps the outer one's
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    _unwinding.clear()
    _pending.clear()
    _handled_depth += 1
    watchdog = threading.Thread(target=_watch, args=(reader,), name="quasieq-interrupt-watchdog", daemon=True)
    watchdog.start()
    for s in _SIGNALS:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        _handled_depth -= 1
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)
        writer.close()
        watchdog.join()
        reader.close()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (a few renames that must happen all or not
    at all); a signal that arrives meanwhile is delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        # a signal taken by another thread reaches the Python handler anyway: compiled() holds it
        # back too, and the watchdog waits for the lock
        with _committing, compiled():
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
