"""Files on disk: their content hash, and writes that never leave a half-written file.

A writer that is killed, or two processes writing the same cache entry at once, must leave
either the old file or the whole new one: every write goes to a temporary file in the target's
folder (same file system, so the rename is atomic) and is renamed onto the target only once
complete. Readers therefore never see a partial weights file, cache entry or photograph.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["file_sha256", "atomic_path", "atomic_write_bytes", "atomic_write_text"]


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in blocks (weights files are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target`` for a writer that needs a path (``torch.save``,
    ``to_parquet``); it replaces ``target`` when the block ends, and is removed if it raises."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
