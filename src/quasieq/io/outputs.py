"""All-or-nothing file output: every file of a run is written to a temporary name beside its target and
renamed onto the target only once all of them are complete, so a failed run leaves no partial file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_outputs() -> Iterator[Callable[[Path], Path]]:
    """All-or-nothing file output.

    Yields ``stage(path) -> temporary path``: write each output to the temporary path it returns (same
    folder and suffix as ``path``, so writers that infer the format from the suffix still work). When
    the block ends normally every temporary file is renamed onto its target (an atomic rename within a
    folder); when it raises, every temporary file is removed and no target is touched.
    """
    staged: list[tuple[Path, Path]] = []
    umask = os.umask(0)
    os.umask(umask)

    def stage(path: Path) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; give the target the usual permissions
        os.close(fd)
        staged.append((Path(tmp), path))
        return Path(tmp)

    try:
        yield stage
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)


def write_json(doc: dict, path: Path) -> None:
    """``doc`` as compact JSON text in ``path``."""
    path.write_text(json.dumps(doc))
