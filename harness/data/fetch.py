"""Fetching packages from the registries at run time, into the cache folder.

Debian packages through ``apt-get download`` (then ``dpkg-deb -x``), PyPI wheels and
source distributions through ``pip download --no-deps``. Each package is extracted once
into ``<cache>/packages/<name>-<version>/``; a later call finds it there and downloads
nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from harness.api import ExifbenchError
from harness.cache_folder import cache_dir

__all__ = ["FetchError", "fetch_package", "cached_package", "installed_package_dir"]


class FetchError(ExifbenchError):
    """A package could not be downloaded or extracted."""


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError as exc:
        raise FetchError(f"{cmd[0]} is not available on this machine: {exc}") from exc


def _apt_download(package: str, into: Path) -> Path:
    res = _run(["apt-get", "download", package], into)
    if res.returncode != 0 and os.geteuid() == 0:
        _run(["apt-get", "update"], into)  # a fresh machine may have no package lists yet
        res = _run(["apt-get", "download", package], into)
    debs = sorted(into.glob(f"{package}_*.deb"))
    if res.returncode != 0 or not debs:
        raise FetchError(f"`apt-get download {package}` failed ({res.stderr.strip()[-300:]}); "
                         f"run `apt-get update` (as root) and retry")
    return debs[-1]


def _pip_download(package: str, version: str, into: Path, sdist: bool) -> Path:
    spec = f"{package}=={version}" if version else package
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), spec]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    res = _run(cmd, into)
    files = [p for p in into.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if res.returncode != 0 or not files:
        raise FetchError(f"`pip download {spec}` failed: {res.stderr.strip()[-300:]}")
    return files[0]


def _extract(archive: Path, into: Path) -> None:
    if archive.suffix == ".deb":
        res = _run(["dpkg-deb", "-x", str(archive), str(into)], into.parent)
        if res.returncode != 0:
            raise FetchError(f"cannot extract {archive.name}: {res.stderr.strip()}")
    elif archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")


def _package_dir(kind: str, package: str, version: str) -> Path:
    return cache_dir() / "packages" / f"{package}-{version or 'latest'}-{kind}"


def cached_package(kind: str, package: str, version: str = "") -> Path | None:
    """The folder of a package fetched earlier, or None: never downloads."""
    target = _package_dir(kind, package, version)
    return target if (target / ".complete").is_file() else None


def fetch_package(kind: str, package: str, version: str = "") -> Path:
    """Download and extract one package; returns the folder holding its files."""
    target = _package_dir(kind, package, version)
    if (target / ".complete").is_file():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir("packages")) as tmp:
        tmp_path = Path(tmp)
        if kind == "deb":
            archive = _apt_download(package, tmp_path)
        elif kind in ("wheel", "sdist"):
            archive = _pip_download(package, version, tmp_path, sdist=kind == "sdist")
        else:
            raise FetchError(f"unknown package kind {kind!r} (deb, wheel, sdist)")
        staging = tmp_path / "files"
        staging.mkdir()
        _extract(archive, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    (target / ".complete").write_text(f"{kind} {package} {version}\n")
    return target


def installed_package_dir(module: str) -> Path:
    """The folder of an installed Python package (for data files that ship inside it)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise FetchError(f"python package {module!r} is not installed") from exc
    return Path(mod.__file__).parent
