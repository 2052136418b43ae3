"""The ``webdataset`` layout: tar shards where the files that share a key form one sample.

The convention is WebDataset's (github.com/webdataset/webdataset, ``tariterators.py``,
``base_plus_ext``): a member's key is its path up to the first dot of its last component
and the rest is its extension, so ``train/000042.jpg``, ``train/000042.json`` and
``train/000042.cls`` are one sample. In each sample:

- the image is the member with an image extension (``jpg``, ``png``, ``webp``, ...; a
  sample with two images is refused, naming its key);
- the label comes from ``.cls`` (the class index as text, ``0`` real or ``1`` generated)
  or from the ``label`` key of ``.json`` (``0``/``1``, or a name such as ``real``/``fake``;
  ``label_map`` maps other names); the generator from the ``generator`` key of ``.json``
  (``label_key`` and ``generator_key`` rename both), else the ``generator`` option, else
  the dataset's name. A sample without a label is refused, naming its shard and key.

Shards are a brace pattern (``shards/{000000..000099}.tar``, expanded by ``braceexpand``,
the package WebDataset itself uses), one tar file, a folder (its ``*.tar`` files, sorted),
or a list (option ``shards``, read relative to ``root``). Each shard is read once, as a
stream, without extracting; the engine reads an image again through
:func:`harness.data.sources.read_bytes` from its path ``<shard>::<member>``, and its
``sample_id`` is the sha256 of the member's bytes, so a dataset scores the same from
folders, from an archive and from shards. The WebDataset package is not needed: it
streams samples for training, while the harness needs each image addressable by path.
"""
from __future__ import annotations

import glob
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from braceexpand import braceexpand

from harness.api import ConfigError, LayoutSpec, Sample
from harness.data import sources
from harness.data.decode import probe_bytes
from harness.data.labels import label_of
from harness.data.layouts import IMAGE_EXTENSIONS
from harness.hookspecs import hookimpl

__all__ = ["read_webdataset", "shard_paths", "split_key", "ignored_members"]

_KEY = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")  # WebDataset's base_plus_ext
_IMAGE_EXTS = {e.lstrip(".") for e in IMAGE_EXTENSIONS}


def split_key(name: str) -> tuple[str, str] | None:
    """(key, extension) of a member name, or None for a name without an extension."""
    m = _KEY.match(name)
    return (m.group(1), m.group(2)) if m else None


def shard_paths(root: str | Path, shards: Sequence[str] | str | None = None) -> list[Path]:
    """The shard files that ``root`` (a brace pattern, a tar, a folder) or ``shards`` names."""
    if shards is not None:
        base = Path(root).expanduser()
        patterns = [shards] if isinstance(shards, str) else list(shards)
        paths = [p if p.is_absolute() else base / p
                 for pattern in patterns for p in map(Path, braceexpand(str(pattern)))]
    else:
        text = str(Path(root).expanduser())
        if Path(text).is_dir():
            paths = sorted(Path(text).glob("*.tar"))
            if not paths:
                raise ConfigError(f"webdataset: no *.tar shards in folder {text!r}")
        else:
            paths = [Path(p) for p in braceexpand(text)]
    paths = [q for p in paths for q in (map(Path, sorted(glob.glob(str(p)))) if glob.has_magic(str(p)) else [p])]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"webdataset: {len(missing)} of {len(paths)} shards are missing, e.g. {missing[:3]}")
    if not paths:
        raise ConfigError(f"webdataset: {str(root)!r} names no shard")
    return paths


def ignored_members(root: str | Path, shards: Sequence[str] | str | None = None) -> dict[str, list[str]]:
    """Members of the shards that no sample uses, by reason (for ``exifbench data check``)."""
    out: dict[str, list[str]] = {"hidden": [], "neither an image nor .json/.cls": [], "metadata without an image": []}
    for shard in shard_paths(root, shards):
        names = sources.container(shard).members()
        parts = {n: split_key(n) for n in names}
        imaged = {p[0] for n, p in parts.items() if p and p[1].lower() in _IMAGE_EXTS}
        for name, p in parts.items():
            where = sources.member_path(shard.name, name)
            if any(c.startswith(".") for c in name.split("/")):
                out["hidden"].append(where)
            elif p is None or p[1].lower() not in _IMAGE_EXTS | {"json", "cls"}:
                out["neither an image nor .json/.cls"].append(where)
            elif p[0] not in imaged:
                out["metadata without an image"].append(where)
    return out


@dataclass
class _Parts:
    images: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)


def _members(shard: Path) -> dict[str, _Parts]:
    """key -> its image and metadata members, in the order of the shard. The shard is opened
    through :mod:`harness.data.sources`, which keeps its member table for the workers."""
    samples: dict[str, _Parts] = {}
    try:
        box = sources.container(shard)
        for name in box.members():
            parts = split_key(name)
            if parts is None or any(c.startswith(".") for c in name.split("/")):
                continue
            key, ext = parts
            if ext.lower() in _IMAGE_EXTS:
                samples.setdefault(key, _Parts()).images[name] = box.read(name)
            elif ext.lower() in ("json", "cls"):
                samples.setdefault(key, _Parts()).meta[ext.lower()] = box.read(name)
    except OSError as exc:
        raise ConfigError(f"webdataset: shard {str(shard)!r} cannot be read ({exc})") from exc
    return samples


def _meta(shard: Path, key: str, parts: _Parts, label_key: str, generator_key: str) -> tuple[Any, Any]:
    """(raw label, raw generator) of one sample from its ``.cls`` and ``.json`` members."""
    info: dict[str, Any] = {}
    if "json" in parts.meta:
        try:
            info = json.loads(parts.meta["json"])
        except ValueError as exc:
            raise ConfigError(f"webdataset: {shard}::{key}.json is not JSON ({exc})") from exc
        if not isinstance(info, dict):
            raise ConfigError(f"webdataset: {shard}::{key}.json is not a JSON object")
    label = info.get(label_key)
    if "cls" in parts.meta:
        text = parts.meta["cls"].decode("utf-8", "replace").strip()
        label = int(text) if text.lstrip("-").isdigit() else text
    if label is None:
        raise ConfigError(f"webdataset: sample {shard}::{key} has no label (a .cls member, or "
                          f"{label_key!r} in its .json)")
    return label, info.get(generator_key)


def _sample(shard: Path, name: str, data: bytes, label: int, generator: str, *, dataset: str,
            families: Mapping[str, str], split: str) -> Sample:
    info = probe_bytes(data)
    return Sample(sample_id=hashlib.sha256(data).hexdigest(), path=sources.member_path(shard, name), label=label,
                  dataset=dataset, generator=generator if label else "real",
                  family=families.get(generator, "unknown") if label else "camera", split=split,
                  subset=generator, **info)


def read_webdataset(root: str | Path, dataset: str = "", shards: Sequence[str] | str | None = None,
                    families: Mapping[str, str] | None = None, split: str = "test",
                    generators: Iterable[str] | None = None, generator: str | None = None,
                    label_key: str = "label", generator_key: str = "generator",
                    label_map: Mapping[str, int] | None = None) -> list[Sample]:
    """Samples of the shards ``root`` or ``shards`` names (module docstring)."""
    paths = shard_paths(root, shards)
    dataset = dataset or Path(str(root)).name.split("{")[0].rstrip("-_.") or "webdataset"
    families, wanted = dict(families or {}), set(generators) if generators else None
    samples = []
    for shard in paths:
        for key, parts in _members(shard).items():
            if not parts.images:
                continue
            if len(parts.images) > 1:
                raise ConfigError(f"webdataset: sample {shard}::{key} has {len(parts.images)} images "
                                  f"({sorted(parts.images)}); one image per key")
            raw_label, raw_gen = _meta(shard, key, parts, label_key, generator_key)
            label = label_of(raw_label, label_map, where=f"webdataset {shard}::{key}")
            gen = str(raw_gen if raw_gen not in (None, "") else generator or dataset)
            if wanted is not None and gen not in wanted:
                continue
            (name, data), = parts.images.items()
            samples.append(_sample(shard, name, data, label, gen, dataset=dataset, families=families, split=split))
    if not samples:
        raise ConfigError(f"webdataset: no image samples in {len(paths)} shards of {str(root)!r}")
    return samples


@hookimpl
def exifbench_dataset_layouts() -> list[LayoutSpec]:
    return [LayoutSpec("webdataset", read_webdataset, "tar shards ({000000..000099}.tar): a key's image + .cls/.json")]
