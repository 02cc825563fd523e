"""A directory of finished subtrees, so that a stopped enumeration resumes where it was.

Layout of ``DIR``:

* ``manifest.json``: ``{"schema_version": 1, "kind": "quasieq-regions-checkpoint", "net_sha256",
  "box_sha256", "chunk_size", "root_chunks"}``. The hashes are SHA-256 of the float64 bytes (and
  shapes) of every layer's W and b, and of the box's lo and hi; ``chunk_size`` and ``root_chunks``
  (how the root's children are cut, regions/tree.py) are part of the key because the chunks (and so
  the paths and the last bits of the output maps) depend on them. A resume against a different net,
  box, chunk size or cut of the root (a checkpoint written before ``root_chunks`` existed) is refused.
* ``subtree-<path>.npz`` per explored subtree (``<path>`` its chunk indices joined by ``.``, ``root``
  for the whole tree): the FinishedChunk's arrays, ``dropped``, ``chunks`` and ``share``. Written to a
  temporary name, flushed to disk and renamed (atomic on POSIX), so a crash leaves either the whole
  file or none; read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import BinaryIO

import numpy as np

from quasieq.box import Box
from quasieq.errors import QuasieqError
from quasieq.net import ReluNet
from quasieq.regions.chunk import ROOT_CHUNKS, FinishedChunk
from quasieq.regions.tree import Explored, Path

SCHEMA_VERSION = 1
KIND = "quasieq-regions-checkpoint"
MANIFEST = "manifest.json"


def net_sha256(net: ReluNet) -> str:
    """SHA-256 of the net's layers: shapes and float64 bytes of W (dense) and b, layer by layer."""
    h = hashlib.sha256()
    for W, b in net.layers:
        dense = np.ascontiguousarray(W.toarray() if hasattr(W, "toarray") else W, dtype=np.float64)
        h.update(np.asarray(dense.shape, dtype=np.int64).tobytes())
        h.update(dense.tobytes())
        h.update(np.ascontiguousarray(b, dtype=np.float64).tobytes())
    return h.hexdigest()


def box_sha256(box: Box) -> str:
    """SHA-256 of the box's float64 lo and hi."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(box.lo, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(box.hi, dtype=np.float64).tobytes())
    return h.hexdigest()


def _write_atomically(target: FsPath, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into a temporary file beside ``target``, flush it to disk, rename it into place."""
    tmp = target.with_name("." + target.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


def _file_name(path: Path) -> str:
    return "subtree-" + (".".join(str(i) for i in path) if path else "root") + ".npz"


def _path_of(name: str) -> Path | None:
    if not (name.startswith("subtree-") and name.endswith(".npz")):
        return None
    key = name[len("subtree-") : -len(".npz")]
    if key == "root":
        return ()
    parts = key.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


class Checkpoint:
    """Finished subtrees of one enumeration (net, box, chunk size) in a directory.

    ``resume=False`` needs a directory without a checkpoint in it (created if missing);
    ``resume=True`` continues the one there (or starts one if there is none)."""

    def __init__(self, directory: str | os.PathLike, net: ReluNet, box: Box, chunk_size: int, *, resume: bool) -> None:
        self.directory = FsPath(directory)
        self.manifest = {
            "schema_version": SCHEMA_VERSION, "kind": KIND, "net_sha256": net_sha256(net),
            "box_sha256": box_sha256(box), "chunk_size": int(chunk_size), "root_chunks": ROOT_CHUNKS,
        }
        manifest = self.directory / MANIFEST
        if self.directory.exists() and not self.directory.is_dir():
            raise QuasieqError(f"--checkpoint {self.directory}: not a directory")
        if manifest.exists():
            if not resume:
                raise QuasieqError(f"--checkpoint {self.directory}: holds a checkpoint already; "
                                   "pass --resume to continue it or choose another directory")
            self._check_manifest(manifest)
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            content = json.dumps(self.manifest, indent=1).encode()
            _write_atomically(manifest, lambda f: f.write(content))
        self.finished: set[Path] = set()
        for entry in self.directory.iterdir():
            path = _path_of(entry.name)
            if path is not None:
                self.finished.add(path)

    def _check_manifest(self, manifest: FsPath) -> None:
        try:
            found = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise QuasieqError(f"--resume: {manifest} is not a quasieq checkpoint manifest ({exc})") from None
        if not isinstance(found, dict) or found.get("kind") != KIND:
            raise QuasieqError(f"--resume: {manifest} is not a quasieq checkpoint manifest")
        for key, what in (("net_sha256", "net"), ("box_sha256", "box"), ("chunk_size", "chunk size"),
                          ("root_chunks", "cut of the root's children")):
            if found.get(key) != self.manifest[key]:
                raise QuasieqError(
                    f"--resume: {self.directory} was written for a different {what} ({key} {found.get(key)!r}, "
                    f"this run {self.manifest[key]!r}); use another --checkpoint directory"
                )

    def has_below(self, path: Path) -> bool:
        """Is some finished subtree strictly below ``path``?"""
        n = len(path)
        return any(len(p) > n and p[:n] == path for p in self.finished)

    def write(self, result: Explored) -> None:
        """Store an explored subtree (atomically)."""
        arrays = dict(result.regions._asdict())
        arrays.update(path=np.asarray(result.path, dtype=np.int64), dropped=np.int64(result.dropped),
                      chunks=np.int64(result.chunks), share=np.float64(result.share))
        _write_atomically(self.directory / _file_name(result.path), lambda f: np.savez(f, **arrays))
        self.finished.add(result.path)

    def load(self, path: Path) -> Explored:
        """An explored subtree written by :meth:`write`."""
        file = self.directory / _file_name(path)
        try:
            with np.load(file, allow_pickle=False) as data:
                regions = FinishedChunk(**{field: data[field] for field in FinishedChunk._fields})
                stored = tuple(int(i) for i in data["path"])
                extra = int(data["dropped"]), int(data["chunks"]), float(data["share"])
        except (OSError, ValueError, KeyError) as exc:
            raise QuasieqError(
                f"--resume: {file} is not a readable subtree file ({exc}); delete it to recompute it"
            ) from None
        if stored != path:
            raise QuasieqError(f"--resume: {file} holds subtree {stored}, not {path}")
        return Explored(path=path, regions=regions, dropped=extra[0], chunks=extra[1], share=extra[2])
