"""Derived artefacts (a run's ``metrics.csv``, its leaderboard plots) cached by content.

Such an artefact is a pure function of its inputs and of the code that makes it, so one key
recipe serves every kind: the sha256 of the producing module's source, the name and version
of the library doing the work (scikit-learn, matplotlib) and the inputs' content. An entry is
a folder ``<cache>/derived/<kind>/<key>/`` holding the files and the order they were made
in; it is written in a staging folder and renamed into place, so a reader never sees half of
one. Re-deriving unchanged inputs copies files instead of importing the heavy library.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from harness.cache_folder import cache_dir

__all__ = ["derived_key", "derived_files"]

_ORDER = ".order"


def derived_key(code: ModuleType, library: str, *inputs: bytes) -> str:
    """The key of what ``code`` makes with ``library`` from ``inputs``."""
    digest = hashlib.sha256(inspect.getsource(code).encode())
    digest.update(f"\0{library}=={version(library)}".encode())
    for part in inputs:
        digest.update(b"\0" + part)
    return digest.hexdigest()


def derived_files(kind: str, key: str, make: Callable[[Path], Sequence[Path]], root: Path | None = None) -> list[Path]:
    """The files ``make(folder)`` writes into an empty folder and returns, in the cache under
    ``key`` (``root``: the cache folder, by default the user's): made once, later read back
    without calling ``make``. The returned paths are the cached files; copy them, never edit them."""
    entry = (root or cache_dir()) / "derived" / kind / key
    if not (entry / _ORDER).is_file():
        _publish(entry, make)
    return [entry / name for name in (entry / _ORDER).read_text().splitlines()]


def _publish(entry: Path, make: Callable[[Path], Sequence[Path]]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        made = make(staging)
        (staging / _ORDER).write_text("".join(f"{p.name}\n" for p in made))
        if entry.exists() and not (entry / _ORDER).is_file():  # not made here: never renamed into place
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(staging, entry)
        except OSError:
            if not (entry / _ORDER).is_file():  # not another process publishing the same key
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
