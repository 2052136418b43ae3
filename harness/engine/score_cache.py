"""The content-addressed score cache (SQLite in the user cache folder).

A cell's key is the sha256 of: the detector key (name, parameters, weights sha256), the
sample's sha256, the perturbation's canonical spec and plugin versions, and the run seed
when the perturbation is stochastic (a deterministic perturbation gives the same image
whatever the seed, so its cells are shared across seeds). Only the driver writes, in one
transaction per batch, so an interrupted sweep keeps every batch it finished.

Several sweeps may share one cache file at once (processes on one machine, or nodes of one
file system with working locks): SQLite's write-ahead log lets readers go on while one
writer commits, and a writer waits up to ``BUSY_TIMEOUT_S`` for another's commit to end.
Every write is ``INSERT OR REPLACE`` of a key that is a pure function of the cell, and every
value is what any sweep computes for that cell, so two sweeps computing the same cell store
it once. A write the machine refuses (disk full, read-only folder) is an
:class:`~harness.api.ExifbenchError` that says so; the batches committed before it are kept.
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from harness.files import storage_error

__all__ = ["ScoreCache", "cell_key", "BUSY_TIMEOUT_S"]

#: how long a write waits for another process's commit before it fails
BUSY_TIMEOUT_S = 60.0


def cell_key(detector_key: str, sample_id: str, spec: str, version: str, seed: int | None) -> str:
    text = f"{detector_key}|{sample_id}|{spec}|{version}|{'' if seed is None else seed}"
    return hashlib.sha256(text.encode()).hexdigest()


class ScoreCache:
    """Maps cell keys to ``(score, error)``; ``path=None`` keeps it in memory only."""

    def __init__(self, path: str | Path | None):
        self.path = str(path) if path else ":memory:"
        try:
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as exc:
            raise storage_error(exc, f"the score cache {self.path!r}") from exc
        with self._writing():
            self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
            # With WAL, NORMAL loses no committed batch when the process is killed (only on
            # power loss), and spares one disk sync per batch.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL, error TEXT, created REAL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS detectors (key TEXT PRIMARY KEY, threshold REAL)")
            self._db.commit()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction: committed whole, or rolled back with an error that says why."""
        try:
            yield
        except sqlite3.Error as exc:
            try:
                self._db.rollback()
            except sqlite3.Error:
                pass
            raise storage_error(exc, f"the score cache {self.path!r}") from exc

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[float | None, str | None]]:
        out: dict[str, tuple[float | None, str | None]] = {}
        keys = sorted(set(keys))  # in key order: neighbouring look-ups read neighbouring pages
        for i in range(0, len(keys), 900):  # SQLite's bound-parameter limit
            chunk = keys[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for key, score, error in self._db.execute(f"SELECT key, score, error FROM scores WHERE key IN ({marks})", chunk):
                out[key] = (score, error)
        return out

    def has_many(self, keys: Iterable[str]) -> set[str]:
        """The keys the cache holds, whatever their value: read from the key index alone
        (one B-tree search per key; :meth:`get_many` also reads each row)."""
        out: set[str] = set()
        keys = sorted(set(keys))
        for i in range(0, len(keys), 900):
            chunk = keys[i:i + 900]
            marks = ",".join("?" * len(chunk))
            out.update(k for (k,) in self._db.execute(f"SELECT key FROM scores WHERE key IN ({marks})", chunk))
        return out

    def put_many(self, rows: Iterable[tuple[str, float | None, str | None]]) -> None:
        now = time.time()
        values = [(k, None if s is None else float(s), e, now) for k, s, e in rows]
        with self._writing():
            self._db.executemany("INSERT OR REPLACE INTO scores (key, score, error, created) VALUES (?, ?, ?, ?)",
                                 values)
            self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def keys(self) -> Iterator[str]:
        for (key,) in self._db.execute("SELECT key FROM scores"):
            yield key

    def get_threshold(self, detector_key: str) -> float | None:
        """A detector's own threshold, kept so that a fully cached sweep needs no model."""
        row = self._db.execute("SELECT threshold FROM detectors WHERE key = ?", (detector_key,)).fetchone()
        return None if row is None else row[0]

    def put_threshold(self, detector_key: str, threshold: float) -> None:
        with self._writing():
            self._db.execute("INSERT OR REPLACE INTO detectors (key, threshold) VALUES (?, ?)",
                             (detector_key, float(threshold)))
            self._db.commit()

    def close(self) -> None:
        self._db.close()

