"""A file's identity (its sha256 and header) remembered by its stat, so that reading a dataset
again hashes no file that has not changed.

Reading a dataset reads every file once: its sha256 is the sample id (content-addressed, so
scores survive renames and archives) and its header gives format and size. For a dataset of
millions of files that is the cost of every sweep, also of a fully cached one. This table,
``identities.sqlite`` in the cache folder, keeps per file the identity it had under a stat
signature: absolute path, size, modification and status-change times (nanoseconds) and
inode. Any write to the file changes its status-change time, which no user tool can set
back, so a changed file is always read again (the same rule as git's index, with the
status-change time always checked). Archive members are not kept here (their archive's
member table is, :mod:`harness.data.sources`).

It is an optimisation only: a cache folder that cannot be written leaves every file read,
with one warning.
"""
from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
from pathlib import Path

__all__ = ["lookup", "remember", "flush"]

log = logging.getLogger(__name__)

Identity = tuple[str, str, int, int, bool]  # sha256, format, width, height, has_exif
_FLUSH_EVERY = 2000


class _Table:
    def __init__(self, path: Path):
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.pending: list[tuple] = []
        self.broken = False
        self.lock = threading.Lock()

    def _open(self) -> sqlite3.Connection | None:
        if self.db is None and not self.broken:
            try:
                self.db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("CREATE TABLE IF NOT EXISTS ids (stat TEXT PRIMARY KEY, sha256 TEXT, format TEXT, "
                                "width INTEGER, height INTEGER, has_exif INTEGER)")
            except sqlite3.Error as exc:
                self._give_up(exc)
        return self.db

    def _give_up(self, exc: BaseException) -> None:
        self.broken, self.db = True, None
        log.warning("the file identity table %s cannot be used (%s): every file is read and hashed", self.path, exc)

    def get(self, stat: str) -> Identity | None:
        with self.lock:
            db = self._open()
            if db is None:
                return None
            try:
                row = db.execute("SELECT sha256, format, width, height, has_exif FROM ids WHERE stat = ?",
                                 (stat,)).fetchone()
            except sqlite3.Error as exc:
                self._give_up(exc)
                return None
        return None if row is None else (row[0], row[1], int(row[2]), int(row[3]), bool(row[4]))

    def put(self, stat: str, identity: Identity) -> None:
        with self.lock:
            self.pending.append((stat, *identity))
            if len(self.pending) >= _FLUSH_EVERY:
                self._flush()

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        db = self._open()
        if db is None or not rows:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO ids VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self._give_up(exc)

    def flush(self) -> None:
        with self.lock:
            self._flush()


_TABLES: dict[str, _Table] = {}


def _table() -> _Table:
    from harness.cache_folder import cache_dir

    root = os.environ.get("EXIFBENCH_CACHE", "")
    if root not in _TABLES:
        _TABLES[root] = _Table(cache_dir() / "identities.sqlite")
    return _TABLES[root]


def signature(path: str | Path) -> str | None:
    """The stat signature of a file on disk; None when it cannot be taken (the file is then read)."""
    try:
        st = os.stat(path)
        return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    except OSError:
        return None


def lookup(path: str | Path) -> tuple[str | None, Identity | None]:
    """(the file's stat signature, the identity remembered under it or None)."""
    stat = signature(path)
    return stat, (_table().get(stat) if stat is not None else None)


def remember(stat: str | None, identity: Identity) -> None:
    if stat is not None:
        _table().put(stat, identity)


def flush() -> None:
    """Write what is pending (also done every few thousand files and when the process ends)."""
    for table in _TABLES.values():
        table.flush()


atexit.register(flush)
