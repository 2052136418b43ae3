"""Where the bytes of a sample come from: files, and members of containers read in place.

**The sample-path convention.** Every place that opens a sample (decoding, EXIF reading,
``data check``, the engine's workers, training jobs) takes a *sample path* and reads it
through :func:`read_bytes` or :func:`open_binary`:

- a plain path, ``/data/photos/a.jpg``, is a file;
- ``<container>::<member>``, ``/data/zoo.zip::progan/1_fake/a.png``, is the member
  ``progan/1_fake/a.png`` of the container ``/data/zoo.zip``. The container part is
  everything before the **first** ``::``; members are written with ``/`` and without a
  leading ``./``. Containers do not nest.

Container kinds (:data:`CONTAINER_KINDS`, tried in order by :func:`container_kind`):

==============  ===============================================  ===========================
kind            recognised by                                    member
==============  ===============================================  ===========================
``zip``         a file named ``*.zip``                           a file of the archive
``tar``         a file named ``*.tar``, ``*.tar.gz``, ``*.tgz``  a regular file of the
                (gzip is recognised by content, not by name)     archive (the last one of
                                                                 that name, as ``tar``)
==============  ===============================================  ===========================

Members are read directly, never extracted. A sample's identity (``sample_id``) is the
sha256 of the member's bytes, so a dataset gives the same ids, and so the same cached
scores, from a folder and from its archive.

**Open handles.** Each process keeps one open handle per container (:func:`container`),
made again after a ``fork`` (a handle's file offset would be shared with the parent) and
when the file changes (size or modification time). Engine workers and Ray actors are
long-lived processes, so a container is opened once per worker, not once per sample.

**Tar indexes.** A tar has no table of contents: listing it reads every header, and in a
``.tar.gz`` reaching a member means decompressing everything before it. The first process
that opens a tar (the driver, when a layout lists it) writes the member table and, for
gzip, a seek-point index of the compressed stream (``indexed_gzip``, a point every
:data:`GZIP_SPACING` bytes) into the cache folder (``archives/``), keyed by the archive's
path, size and modification time; every later process (each worker) loads them, so
reading a member costs one seek and at most ``GZIP_SPACING`` bytes of decompression.

**Adding a kind** (a saved 🤗 dataset, a Parquet shard whose member is a row): a subclass
of :class:`Container` with ``kind``, ``claims(path)``, ``members()`` and ``read(member)``,
appended to :data:`CONTAINER_KINDS`; a kind defined in another module is listed as a
``"module:Class"`` string, imported when a path is first classified (so that module may
itself import this one). Nothing else changes: layouts list members with
:func:`list_members`, and every reader goes through :func:`read_bytes`.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import os
import posixpath
import tarfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from harness.api import ConfigError

__all__ = ["SEP", "Container", "ZipContainer", "TarContainer", "CONTAINER_KINDS", "GZIP_SPACING", "split",
           "member_path", "container_kind", "is_container", "container", "list_members", "read_bytes",
           "open_binary", "exists", "parent", "join", "root_name", "sha256_of"]

log = logging.getLogger(__name__)

#: separates a container's path from a member's name in a sample path
SEP = "::"
#: bytes of uncompressed data between two seek points of a ``.tar.gz`` index
GZIP_SPACING = 2 << 20


class Container:
    """A file (or folder) holding samples as named members, opened once per process.

    A subclass sets ``kind`` and implements :meth:`claims`, :meth:`members` and
    :meth:`read`; ``read`` raises ``KeyError`` for a member it lacks and ``OSError`` for one it
    cannot read. The constructor may read the container's index but no member.
    """

    kind = ""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def claims(cls, path: Path) -> bool:
        """Whether ``path`` is a container of this kind (from its name or a cheap look)."""
        raise NotImplementedError

    def members(self) -> list[str]:
        """The names of its members that are files, in the container's own order."""
        raise NotImplementedError

    def read(self, member: str) -> bytes:
        raise NotImplementedError

    def __contains__(self, member: str) -> bool:
        return member in self.members()

    def close(self) -> None:
        """Release the handle (the default holds none)."""


class ZipContainer(Container):
    kind = "zip"

    def __init__(self, path: Path):
        super().__init__(path)
        self._zip = zipfile.ZipFile(path)  # reads the central directory only
        self._names = {_clean_member(i.filename): i for i in self._zip.infolist() if not i.is_dir()}

    @classmethod
    def claims(cls, path: Path) -> bool:
        return path.name.lower().endswith(".zip")

    def members(self) -> list[str]:
        return list(self._names)

    def __contains__(self, member: str) -> bool:
        return member in self._names

    def read(self, member: str) -> bytes:
        return self._zip.read(self._names[member])  # ZipFile reads members under its own lock

    def close(self) -> None:
        self._zip.close()


class TarContainer(Container):
    """A tar, plain or gzip-compressed, read at members' offsets through a cached index."""

    kind = "tar"

    def __init__(self, path: Path):
        super().__init__(path)
        self._lock = threading.Lock()  # one file position per handle
        with open(path, "rb") as f:
            self._gzip = f.read(2) == b"\x1f\x8b"
        index = _index_file(path)
        gz_index = index.with_suffix(".gzidx")
        self._file = self._open_stream(gz_index if gz_index.is_file() else None)
        table = _load_table(index) if index.is_file() and (not self._gzip or gz_index.is_file()) else None
        if table is None:
            table = self._scan()
            self._save(index, gz_index, table)
        self._table = table

    @classmethod
    def claims(cls, path: Path) -> bool:
        return path.name.lower().endswith((".tar", ".tar.gz", ".tgz"))

    def _open_stream(self, gz_index: Path | None) -> BinaryIO:
        if not self._gzip:
            return open(self.path, "rb")
        from indexed_gzip import IndexedGzipFile

        return IndexedGzipFile(str(self.path), spacing=GZIP_SPACING, drop_handles=False,
                               index_file=str(gz_index) if gz_index else None)

    def _scan(self) -> dict[str, tuple[int, int]]:
        """Member -> (offset of its data, size), from one pass over the headers (in a gzip,
        the pass also lays the seek points)."""
        table: dict[str, tuple[int, int]] = {}
        self._file.seek(0)
        with tarfile.open(fileobj=self._file, mode="r:") as tar:
            for info in tar:
                if info.isfile():
                    name = _clean_member(info.name)
                    table.pop(name, None)  # a later copy of a name replaces the earlier (tar's rule)
                    table[name] = (info.offset_data, info.size)
        return table

    def _save(self, index: Path, gz_index: Path, table: dict[str, tuple[int, int]]) -> None:
        """Keep the index for the next process; a cache folder that cannot be written only
        costs each process its own scan."""
        from harness.files import atomic_path, atomic_write_text

        try:
            if self._gzip:
                with atomic_path(gz_index) as tmp:
                    self._file.export_index(str(tmp))
            atomic_write_text(index, json.dumps([[k, *v] for k, v in table.items()]))
        except OSError as exc:
            log.warning("cannot keep the index of %s in the cache folder: %s", self.path, exc)

    def members(self) -> list[str]:
        return list(self._table)

    def __contains__(self, member: str) -> bool:
        return member in self._table

    def read(self, member: str) -> bytes:
        offset, size = self._table[member]
        with self._lock:
            self._file.seek(offset)
            data = self._file.read(size)
        if len(data) != size:
            raise OSError(f"truncated archive: {member} has {len(data)} of its {size} bytes")
        return data

    def close(self) -> None:
        self._file.close()


#: container kinds, tried in order; a ``"module:Class"`` string is imported on first use
CONTAINER_KINDS: list[type[Container] | str] = [ZipContainer, TarContainer,
                                                 # 🤗 datasets: a row is a member (``<column>/<row>``)
                                                 "harness.data.hf:SavedDataset", "harness.data.hf:ParquetShard"]


def _clean_member(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _index_file(path: Path) -> Path:
    from harness.cache_folder import cache_dir

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
    return cache_dir("archives") / f"{key}.json"


def _load_table(index: Path) -> dict[str, tuple[int, int]] | None:
    try:
        return {name: (offset, size) for name, offset, size in json.loads(index.read_text())}
    except (OSError, ValueError) as exc:
        log.warning("ignoring a damaged archive index %s: %s", index, exc)
        return None


def _kinds() -> list[type[Container]]:
    for i, kind in enumerate(CONTAINER_KINDS):
        if isinstance(kind, str):
            module, _, name = kind.partition(":")
            CONTAINER_KINDS[i] = getattr(importlib.import_module(module), name)
    return CONTAINER_KINDS  # type: ignore[return-value]


def split(path: str | Path) -> tuple[str, str | None]:
    """``(container, member)`` of a sample path, or ``(path, None)`` for a plain file."""
    text = str(path)
    head, sep, member = text.partition(SEP)
    return (head, member) if sep else (text, None)


def member_path(container_path: str | Path, member: str) -> str:
    """The sample path of ``member`` in the container at ``container_path``."""
    return f"{container_path}{SEP}{member}"


def container_kind(path: str | Path) -> type[Container] | None:
    """The kind of container at ``path`` (which must exist), or None for a plain file or folder."""
    p = Path(path).expanduser()
    if not p.exists():
        return None
    return next((k for k in _kinds() if k.claims(p)), None)


def is_container(path: str | Path) -> bool:
    return container_kind(path) is not None


_OPEN: dict[str, tuple[tuple[int, int], Container]] = {}
_OPEN_PID = os.getpid()
_OPEN_LOCK = threading.Lock()


def container(path: str | Path) -> Container:
    """The open container at ``path``, opened on first use in this process.

    Raises :class:`~harness.api.ConfigError` when ``path`` is no container or cannot be opened.
    """
    global _OPEN_PID
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError as exc:
        raise ConfigError(f"{str(p)!r}: no such archive ({exc.strerror or exc})") from exc
    stamp = (st.st_size, st.st_mtime_ns)
    key = str(p.resolve())
    with _OPEN_LOCK:
        if os.getpid() != _OPEN_PID:  # a forked child: the parent's handles share file offsets
            _OPEN.clear()
            _OPEN_PID = os.getpid()
        held = _OPEN.get(key)
        if held is not None and held[0] == stamp:
            return held[1]
        kind = container_kind(p)
        if kind is None:
            raise ConfigError(f"{str(p)!r} is not an archive exifbench reads (.zip, .tar, .tar.gz, .tgz)")
        try:
            opened = kind(p)
        except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, ValueError) as exc:
            raise ConfigError(f"{str(p)!r}: not a readable {kind.kind} archive ({str(exc)[:100]})") from exc
        if held is not None:
            held[1].close()
        _OPEN[key] = (stamp, opened)
        return opened


def list_members(path: str | Path) -> list[str]:
    """The sample paths of every member of the container at ``path``, in the order a
    folder walk gives (each folder's files, sorted, before its subfolders, sorted)."""
    names = container(path).members()
    return [member_path(path, n) for n in sorted(names, key=_walk_key)]


def _walk_key(member: str) -> tuple:
    *folders, name = member.split("/")
    return (*((1, f) for f in folders), (0, name))


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a sample path (see the module docstring).

    Raises ``OSError`` when the file, the container or the member cannot be read (a
    missing member is ``FileNotFoundError``), whatever the kind of container.
    """
    head, member = split(path)
    if member is None:
        return Path(head).expanduser().read_bytes()
    try:
        box = container(head)
    except ConfigError as exc:
        raise OSError(str(exc)) from exc
    try:
        return box.read(member)
    except KeyError:
        raise FileNotFoundError(f"no member {member!r} in {head!r}") from None
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged member (bad CRC, bad gzip stream) is a read error
        raise OSError(f"damaged member {member!r} of {head!r} ({type(exc).__name__}: {str(exc)[:80]})") from exc


@contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file object of a sample path: the open file for a plain path (headers are
    read without reading the whole file), the member's bytes in memory otherwise."""
    head, member = split(path)
    if member is None:
        with open(Path(head).expanduser(), "rb") as f:
            yield f
    else:
        yield io.BytesIO(read_bytes(path))


def exists(path: str | Path) -> bool:
    """Whether a sample path names an existing file or member."""
    head, member = split(path)
    if member is None:
        return Path(head).expanduser().is_file()
    try:
        return member in container(head)
    except ConfigError:
        return False


def parent(path: str | Path) -> str:
    """The folder of a sample path: inside a container, the member's folder (``a.zip::x``
    for ``a.zip::x/m.csv``, ``a.zip::`` for a member at the top)."""
    head, member = split(path)
    if member is None:
        return str(Path(head).parent)
    return member_path(head, posixpath.dirname(member))


def join(folder: str | Path, relative: str) -> str:
    """``relative`` (a path with ``/``) read from ``folder``, a folder or a container folder
    (as :func:`parent` gives). An absolute ``relative``, or one that is itself a sample path
    of a container, is returned unchanged."""
    if os.path.isabs(relative) or SEP in relative and Path(split(relative)[0]).is_absolute():
        return relative
    head, member = split(folder)
    if member is None:
        return str(Path(head) / relative)
    inner = posixpath.normpath(posixpath.join(member, relative))
    if inner == ".." or inner.startswith("../"):
        raise ConfigError(f"{relative!r} leaves the archive {head!r}")
    return member_path(head, "" if inner == "." else inner)


def root_name(root: str | Path) -> str:
    """A dataset's default name from its root: the folder's name, or the archive's name
    without its extension (``zoo`` for ``zoo.tar.gz``)."""
    head, member = split(root)
    name = posixpath.basename(member.rstrip("/")) if member else Path(head).name
    lower = name.lower()
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def sha256_of(path: str | Path) -> str:
    """sha256 of a sample's bytes (a file is read in blocks)."""
    head, member = split(path)
    if member is None:
        from harness.files import file_sha256

        return file_sha256(Path(head).expanduser())
    return hashlib.sha256(read_bytes(path)).hexdigest()
