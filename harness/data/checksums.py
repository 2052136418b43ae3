"""Checksum files: which listed files are missing, and which differ from their checksum.

Two formats are read, told apart by the first line:

- ``sha256sum`` / ``md5sum`` output: ``<hex digest>  <name>`` per line (a ``*`` before the
  name, binary mode, is accepted; blank lines and ``#`` comments are skipped). A 64-digit
  digest is SHA-256, a 32-digit one MD5. A name is read from the checksum file's folder, as
  ``sha256sum -c`` does there; when the dataset root is an archive and the name is not found
  beside the checksum file, it is also looked up as a member of that archive. A checksum file
  may itself be an archive member (``data.zip::SHA256SUMS``): its names are then members.
- GenImage's ``checksums.csv`` (github.com/GenImage-Dataset/GenImage, ``data/``): a header
  ``md5Checksum,originalFilename`` and one row per downloaded part of the split archives
  (``imagenet_glide.z01``, ...). As that repository's ``check_md5_from_csv.sh`` does, a name
  is found anywhere below the checksum file's folder and the dataset root, also with the
  ``-NNN`` suffix that a Google Drive folder download adds before the extension.

A row repeated with the same digest is checked once (GenImage's file repeats one); a name
listed twice with different digests is refused.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from harness.api import ConfigError
from harness.data import sources

__all__ = ["Expected", "ChecksumReport", "read_checksums", "verify_checksums", "GENIMAGE_HEADER"]

GENIMAGE_HEADER = ("md5Checksum", "originalFilename")
_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{32}|[0-9a-fA-F]{64}) [ *](?P<name>.+)$")
_ALGORITHM = {32: "md5", 64: "sha256"}


@dataclass(frozen=True)
class Expected:
    name: str
    algorithm: str  # "sha256" or "md5"
    digest: str     # lower-case hex


@dataclass
class ChecksumReport:
    file: str
    checked: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    #: (name, expected digest, digest found or why it could not be read)
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"checksums {self.file}: {self.checked} listed, {self.ok} ok, {len(self.missing)} missing, "
                f"{len(self.corrupt)} corrupt")


def _text(path: str) -> str:
    try:
        return sources.read_bytes(path).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"checksum file {path!r} cannot be read ({exc})") from exc


def _unique(rows: Iterable[Expected], path: str) -> list[Expected]:
    seen: dict[str, Expected] = {}
    for row in rows:
        if seen.setdefault(row.name, row) != row:
            raise ConfigError(f"checksum file {path!r} lists {row.name!r} twice with different digests")
    return list(seen.values())


def _genimage(text: str, path: str) -> list[Expected]:
    out = []
    for i, row in enumerate(list(csv.reader(io.StringIO(text)))[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}", row[0].strip()):
            raise ConfigError(f"{path}:{i}: expected <md5>,<file name> (GenImage's checksums.csv), got {row}")
        out.append(Expected(row[1].strip(), "md5", row[0].strip().lower()))
    return out


def _sumfile(text: str, path: str) -> list[Expected]:
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line.rstrip("\r"))
        if m is None:
            raise ConfigError(f"{path}:{i}: not a sha256sum/md5sum line (<hex digest>  <name>): {line[:80]!r}")
        digest = m.group("digest").lower()
        out.append(Expected(m.group("name"), _ALGORITHM[len(digest)], digest))
    return out


def _parse(path: str) -> tuple[str, list[Expected]]:
    """(format, rows), the format ``"genimage"`` or ``"sumfile"``."""
    text = _text(path)
    first = text.splitlines()[0] if text.strip() else ""
    kind = "genimage" if tuple(c.strip().strip('"') for c in first.split(",")) == GENIMAGE_HEADER else "sumfile"
    rows = _genimage(text, path) if kind == "genimage" else _sumfile(text, path)
    if not rows:
        raise ConfigError(f"checksum file {path!r} lists no file")
    return kind, _unique(rows, path)


def read_checksums(path: str | Path) -> list[Expected]:
    """The rows of a checksum file (module docstring), checked for form."""
    return _parse(str(path))[1]


def _digest(path: str, algorithm: str) -> str:
    head, member = sources.split(path)
    h = hashlib.new(algorithm)
    if member is not None:
        h.update(sources.read_bytes(path))
        return h.hexdigest()
    with open(head, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _by_basename(folders: Iterable[str]) -> dict[str, str]:
    """Base name -> the first file of that name below the folders (a sorted walk)."""
    found: dict[str, str] = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                found.setdefault(name, os.path.join(dirpath, name))
    return found


def _genimage_match(name: str, index: dict[str, str]) -> str | None:
    if name in index:
        return index[name]
    stem, ext = os.path.splitext(name)
    renamed = re.compile(re.escape(stem) + r"-\d+" + re.escape(ext) + "$")
    return next((p for n, p in sorted(index.items()) if renamed.match(n)), None)


def _locate(name: str, folder: str, root: str | None) -> str | None:
    candidates = [sources.join(folder, name)]
    if root is not None and sources.is_container(root):
        candidates.append(sources.member_path(root, name.removeprefix("./")))
    return next((c for c in candidates if sources.exists(c)), None)


def _folders(*paths: str | None) -> list[str]:
    return [p for p in paths if p and sources.split(p)[1] is None and os.path.isdir(p)]


def verify_checksums(checksum_file: str | Path, root: str | Path | None = None) -> ChecksumReport:
    """Hash every file the checksum file lists; missing and differing files are reported."""
    checksum_file, root = str(checksum_file), str(root) if root is not None else None
    kind, rows = _parse(checksum_file)
    folder = sources.parent(checksum_file)
    index = _by_basename(_folders(folder, root)) if kind == "genimage" else {}
    report = ChecksumReport(checksum_file, checked=len(rows))
    for row in rows:
        path = _genimage_match(row.name, index) if kind == "genimage" else _locate(row.name, folder, root)
        if path is None:
            report.missing.append(row.name)
            continue
        try:
            got = _digest(path, row.algorithm)
        except OSError as exc:
            got = f"unreadable ({exc})"
        if got == row.digest:
            report.ok += 1
        else:
            report.corrupt.append((row.name, row.digest, got))
    return report
