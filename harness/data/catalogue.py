"""The benchmark catalogue: one TOML file per benchmark in ``datasets/``.

Each file has a ``[dataset]`` table: ``name``, ``title``, ``layout``, ``obtain``,
``licence``, ``citation``, a ``[dataset.generators]`` table (generator -> family) and
optionally expected counts with their source.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.api import ConfigError, UnknownNameError
from harness.plugins import Registry

__all__ = ["CatalogueEntry", "load_catalogue", "catalogue_dir"]


def catalogue_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "datasets"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    title: str
    layout: str
    obtain: str
    licence: str
    citation: str
    generators: Mapping[str, str]
    path: Path
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def _entry(path: Path) -> CatalogueEntry:
    table = tomllib.loads(path.read_text()).get("dataset")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: a catalogue file needs a [dataset] table")
    missing = {"name", "title", "layout", "obtain", "licence", "citation", "generators"} - set(table)
    if missing:
        raise ConfigError(f"{path}: [dataset] lacks {sorted(missing)}")
    return CatalogueEntry(table["name"], table["title"], table["layout"], table["obtain"], table["licence"],
                          table["citation"], dict(table["generators"]), path, table)


def load_catalogue(folder: Path | None = None) -> Registry[CatalogueEntry]:
    registry: Registry[CatalogueEntry] = Registry("dataset")
    for path in sorted((folder or catalogue_dir()).glob("*.toml")):
        registry.add(_entry(path), owner=path.name)
    return registry
