"""All-or-nothing file output that never replaces what it should not.

Every file of a run is written to a temporary name and put in place only once all of them are
complete, so a failed or interrupted run leaves nothing behind. What "put in place" means depends on
what already sits at the target (after following symlinks, so a link keeps pointing at the file it
named and that file is what gets written):

=======================  ====================================================================
nothing, or a file       temporary file beside the target, renamed onto it (atomic); an
                         existing file keeps its permission bits
character device, FIFO   a stream: the finished bytes are copied into it (``--json /dev/stdout``,
                         a named pipe); it is never replaced by a regular file
folder, block device,    refused before any work (:func:`check_output`)
socket
=======================  ====================================================================

:func:`check_output` runs before the work starts: it refuses a target of the wrong kind and a
folder that cannot be written (found by creating and removing a probe file there, so a read-only
mount or an immutable folder is caught even as root). :func:`check_distinct` refuses two outputs that
name one file. Renames are done with SIGINT/SIGTERM held back (:func:`quasieq.interrupts.deferred`),
so a signal never leaves half the outputs in place; temporary files are removed on any exception,
Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from quasieq.errors import QuasieqError
from quasieq.interrupts import deferred, scratch


def _is_stream(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _probe_writable(folder: Path, label: str) -> None:
    """Create and remove a file in ``folder``: the only test that sees read-only mounts, immutable
    folders and permissions alike (``os.access`` says yes to root on most of them)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".quasieq-probe-", dir=folder)
    except OSError as exc:
        raise QuasieqError(f"{label}: folder {folder} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: Path, option: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """Validate an output path before any work; returns ``path`` unchanged.

    Refused: a name without one of ``suffixes``; a target (after symlinks) that is a folder, a block
    device or a socket; a missing or unwritable folder (named in the message). A character device or
    FIFO must be writable by us.
    """
    label = f"{option} {path}"
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise QuasieqError(f"{label}: the file name must end in {' or '.join(suffixes)}")
    target = path.resolve()
    if target.exists():
        mode = target.stat().st_mode
        if stat.S_ISDIR(mode):
            raise QuasieqError(f"{label}: is a folder, give a file name")
        if _is_stream(mode):
            if not os.access(target, os.W_OK):
                raise QuasieqError(f"{label}: {target} cannot be written")
            return path
        if not stat.S_ISREG(mode):
            raise QuasieqError(f"{label}: {target} is not a regular file, a FIFO or a character device")
    folder = target.parent
    if not folder.is_dir():
        raise QuasieqError(f"{label}: folder {path.parent} does not exist")
    _probe_writable(folder, label)
    return path


def _identity(path: Path) -> tuple[int, int] | Path:
    """What makes two paths one file: (device, inode) when it exists, else the resolved path."""
    target = path.resolve()
    try:
        st = target.stat()
    except FileNotFoundError:
        return target
    return (st.st_dev, st.st_ino)


def check_distinct(outputs: dict[str, Path | None]) -> None:
    """Refuse two options naming one file (``--out X.onnx --json X.onnx``, a symlink to the other,
    a hard link)."""
    seen: dict[tuple[int, int] | Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        key = _identity(path)
        if key in seen:
            raise QuasieqError(f"{seen[key]} and {option} name the same file {path}: give each output its own path")
        seen[key] = option


@dataclass(frozen=True)
class _Staged:
    """One output: written to ``temporary``, committed to ``target`` (by rename, or by copying into a
    stream)."""

    temporary: Path
    target: Path
    stream: bool


@contextmanager
def staged_outputs() -> Iterator[Callable[[Path], Path]]:
    """All-or-nothing file output (see the module docstring).

    Yields ``stage(path) -> temporary path``: write each output to the temporary path it returns (its
    name ends in ``path``'s suffix, so writers that infer the format from the suffix still work).
    When the block ends normally every output is committed; when it raises (Ctrl-C and SIGTERM
    included) every temporary file is removed and no target is touched.
    """
    staged: list[_Staged] = []
    stream_folder: list[Path] = []  # a private folder in the system temp dir, made on first need
    registered = ExitStack()  # every temporary path, removed by the interrupt watchdog if it must
    umask = os.umask(0)
    os.umask(umask)

    def stage(path: Path) -> Path:
        target = Path(path).resolve()
        if any(s.target == target for s in staged):
            raise QuasieqError(f"{path}: two outputs of one run name the same file")
        existing = target.stat().st_mode if target.exists() else None
        if existing is not None and _is_stream(existing):
            if not stream_folder:
                stream_folder.append(registered.enter_context(scratch(tempfile.mkdtemp(prefix="quasieq-"))))
            temporary = stream_folder[0] / f"{len(staged)}{target.suffix}"
            temporary.touch()
            staged.append(_Staged(temporary, target, stream=True))
            return temporary
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
        mode = stat.S_IMODE(existing) if existing is not None else 0o666 & ~umask
        os.fchmod(fd, mode)  # mkstemp makes 0600 files: keep the target's mode, or the usual one
        os.close(fd)
        staged.append(_Staged(registered.enter_context(scratch(name)), target, stream=False))
        return Path(name)

    try:
        yield stage
        with deferred():
            for s in staged:
                if s.stream:
                    with open(s.temporary, "rb") as source, open(s.target, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                else:
                    os.replace(s.temporary, s.target)
    finally:
        for s in staged:
            if not s.stream:
                s.temporary.unlink(missing_ok=True)
        for folder in stream_folder:
            shutil.rmtree(folder, ignore_errors=True)
        registered.close()


def write_json(doc: dict, path: Path) -> None:
    """``doc`` as compact JSON text in ``path``."""
    path.write_text(json.dumps(doc))
