"""Files on disk: their content hash, and writes that never leave a half-written file.

A writer that is killed, or two processes writing the same cache entry at once, must leave
either the old file or the whole new one: every write goes to a temporary file in the target's
folder (same file system, so the rename is atomic) and is renamed onto the target only once
complete. Readers therefore never see a partial weights file, cache entry or photograph.

A machine's faults (a full disk, a read-only or unwritable folder) become one clear
:class:`~harness.api.ExifbenchError` (:func:`storage_error`), and a command checks that its
output folder is writable before any work (:func:`writable_folder`).
"""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.api import ExifbenchError

__all__ = ["file_sha256", "atomic_path", "atomic_write_bytes", "atomic_write_text", "is_storage_fault",
           "storage_error", "writable_folder"]

#: what the user can do about a fault of the machine, by errno
_REMEDY = {
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EDQUOT: "the disk quota is used up: free some space and run the command again",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.EACCES: "permission denied: choose a folder you can write, or change its permissions",
    errno.EPERM: "permission denied: choose a folder you can write, or change its permissions",
}


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


def _remedy(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code in _REMEDY:
        return _REMEDY[code]
    text = str(exc).lower()  # pyarrow and SQLite give the reason in words only
    if "database or disk is full" in text:
        return _REMEDY[errno.ENOSPC]
    return next((remedy for c, remedy in _REMEDY.items() if os.strerror(c).lower() in text), "")


def is_storage_fault(exc: BaseException) -> bool:
    """A write refused by the machine (disk full, quota, read-only, permission), not a bug."""
    return isinstance(exc, OSError) and bool(_remedy(exc))


def storage_error(exc: BaseException, what: str = "") -> ExifbenchError:
    """``exc`` (a write that failed) as an error that says what could not be written, why,
    and what to do. Work already committed to the cache is kept: a rerun reuses it."""
    filename = getattr(exc, "filename", None)
    where = f" {what}" if what else ""
    name = f" ({filename})" if filename and str(filename) not in what else ""
    reason = getattr(exc, "strerror", None) or str(exc)
    remedy = _remedy(exc)
    return ExifbenchError(f"cannot write{where}{name}: {reason}" + (f"; {remedy}" if remedy else ""))


def writable_folder(path: str | Path, what: str = "the output folder") -> Path:
    """``path``, created if need be, once a file could be created in it: a command checks its
    output folder before it computes anything, not when it writes its results."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path, prefix=".exifbench-probe.")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise storage_error(exc, f"{what} {str(path)!r}") from exc
    return path
