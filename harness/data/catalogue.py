"""The benchmark catalogue: one TOML file per benchmark in ``datasets/`` (package data, see
:mod:`harness.resources`).

Each file has a ``[dataset]`` table:

- required: ``name``, ``title``, ``layout`` (a registered layout), ``obtain`` (how to get
  the data), ``licence``, ``citation``, and ``[dataset.generators]`` (generator -> family;
  the generator is the name the layout gives, e.g. the first folder below the root);
- ``source``: where the benchmark is published (URL);
- expected counts, only where published: ``[dataset.counts.NAME]`` with ``real`` and/or
  ``fake`` integers, NAME a generator or one of ``real_subsets`` (which takes ``real``
  only), and ``counts_source`` naming where each number comes from (repository and file,
  or paper and table) — a file with counts but no source is refused; ``counts_note`` says
  what was searched and why counts are absent;
- ``[dataset.layout_options]``: options passed to the layout (e.g. GenImage's ``split``);
- ``real_subsets``: folders that hold only reals (UniversalFakeDetect's ``laion``);
- ``single_generator = true``: the set has no per-generator folders, so the root itself is
  its one generator;
- ``checksums``: a checksum file (``sha256sum``/``md5sum`` lines, or GenImage's
  ``checksums.csv``: :mod:`harness.data.checksums`) that ``exifbench data check`` verifies; a
  relative path is read from the dataset root (its folder, or the folder holding the archive
  or shards). ``[dataset.layout_options] checksums`` is read the same way.

:func:`adhoc_entry` stands for a folder that has no catalogue file (``exifbench data check
--layout LAYOUT --root DIR``): no generators or counts to compare with.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, Mapping

from harness.api import ConfigError
from harness.plugins import Registry
from harness.resources import catalogue_files

__all__ = ["CatalogueEntry", "load_catalogue", "catalogue_dir", "read_entry", "adhoc_entry"]

_REQUIRED = {"name", "title", "layout", "obtain", "licence", "citation", "generators"}


def catalogue_dir() -> Traversable:
    return catalogue_files()


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    title: str
    layout: str
    obtain: str
    licence: str
    citation: str
    generators: Mapping[str, str]
    path: Traversable | None  # None for an ad-hoc entry
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source: str = ""
    #: generator (or real subset) -> {"real": n, "fake": n}, only where a published count exists
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    counts_source: str = ""
    counts_note: str = ""
    layout_options: Mapping[str, Any] = field(default_factory=dict)
    real_subsets: tuple[str, ...] = ()
    single_generator: bool = False
    checksums: str = ""
    #: False for :func:`adhoc_entry`: no list of generators to hold the folder to
    catalogued: bool = True


def adhoc_entry(layout: str, name: str, layout_options: Mapping[str, Any] | None = None) -> CatalogueEntry:
    """An entry for a folder checked without a catalogue file: its layout and options only."""
    return CatalogueEntry(name, name, layout, obtain="", licence="", citation="", generators={}, path=None,
                          layout_options=dict(layout_options or {}), catalogued=False)


def _count_classes(name: str, table: Mapping[str, Any]) -> set[str] | None:
    """Classes a counts table may give for ``name``: reals only for a real subset."""
    if name in table["generators"]:
        return {"real", "fake"}
    return {"real"} if name in table.get("real_subsets", ()) else None


def _counts(table: Mapping[str, Any], path: Traversable) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, value in table.get("counts", {}).items():
        classes = _count_classes(name, table)
        if classes is None:
            raise ConfigError(f"{path}: counts for {name!r}, which is neither in [dataset.generators] "
                              "nor in real_subsets")
        if not isinstance(value, dict) or not value or not set(value) <= classes:
            raise ConfigError(f"{path}: [dataset.counts.{name}] takes "
                              + ("real = N and/or fake = N" if "fake" in classes else "real = N only (a real subset)"))
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in value.values()):
            raise ConfigError(f"{path}: [dataset.counts.{name}] needs whole numbers of images, got {value}")
        out[name] = dict(value)
    if out and not str(table.get("counts_source", "")).strip():
        raise ConfigError(f"{path}: expected counts need counts_source (the repository file or paper table "
                          "they come from)")
    return out


def read_entry(path: Traversable) -> CatalogueEntry:
    """One catalogue file, checked."""
    try:
        table = tomllib.loads(path.read_text()).get("dataset")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: a catalogue file needs a [dataset] table")
    missing = _REQUIRED - set(table)
    if missing:
        raise ConfigError(f"{path}: [dataset] lacks {sorted(missing)}")
    return CatalogueEntry(
        table["name"], table["title"], table["layout"], table["obtain"], table["licence"], table["citation"],
        dict(table["generators"]), path, table, source=str(table.get("source", "")),
        counts=_counts(table, path), counts_source=str(table.get("counts_source", "")),
        counts_note=str(table.get("counts_note", "")), layout_options=dict(table.get("layout_options", {})),
        real_subsets=tuple(table.get("real_subsets", ())), single_generator=bool(table.get("single_generator", False)),
        checksums=str(table.get("checksums", "")),
    )


def load_catalogue(folder: Traversable | None = None) -> Registry[CatalogueEntry]:
    registry: Registry[CatalogueEntry] = Registry("dataset")
    files = [p for p in (folder or catalogue_dir()).iterdir() if p.name.endswith(".toml") and p.is_file()]
    for path in sorted(files, key=lambda p: p.name):
        registry.add(read_entry(path), owner=path.name)
    return registry
