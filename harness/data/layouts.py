"""Dataset layouts: turn a folder or a manifest into :class:`~harness.api.Sample` records.

- ``binary-folders``: a path component ``0_real`` or ``1_fake`` (at any depth) gives the
  label, the first component below the root the generator (CNNDetection, UniversalFakeDetect,
  AIGCDetectBenchmark, SDAIE layout). Reals get generator ``real`` and keep that first
  component as their ``subset``, so they are compared with the fakes beside them.
- ``genimage``: ``<generator>/.../{train,val}/{ai,nature}/`` (GenImage): the class folder
  (``ai`` = 1, ``nature`` = 0) and the split folder above it at any depth, the generator the
  first component below the root; ``split`` keeps one split (default: both).
- ``manifest``: a CSV or Parquet file with columns ``path``, ``label``, ``generator`` and
  optionally ``family``, ``split``, ``subset``; relative paths are read from its folder.
- ``real-only``: every image below a folder, label 0 (for one-class fitting and pretext
  training).

Any layout's ``root`` may also be an archive (``.zip``, ``.tar``, ``.tar.gz``): its members
are read in place, as the files of a folder would be, and a sample's ``path`` is then
``<archive>::<member>`` (:mod:`harness.data.sources`). A manifest may be a member of an
archive (``data.zip::manifest.csv``): its relative paths are then members of that archive.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from harness.api import ConfigError, LayoutSpec, Sample
from harness.data import identities, sources
from harness.data.decode import probe_bytes
from harness.hookspecs import hookimpl

__all__ = ["IMAGE_EXTENSIONS", "CLASS_DIRS", "GENIMAGE_CLASS_DIRS", "GENIMAGE_SPLITS", "read_binary_folders",
           "read_genimage", "read_manifest", "read_real_only", "image_files", "root_images", "is_image_name",
           "sample_of"]

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .webp .bmp .tif .tiff .gif .heic .heif .avif .ppm .pgm".split()
)
CLASS_DIRS = {"0_real": 0, "1_fake": 1}
GENIMAGE_CLASS_DIRS = {"nature": 0, "ai": 1}
GENIMAGE_SPLITS = ("train", "val")


def is_image_name(name: str) -> bool:
    """A file name the layouts read: an image extension, not hidden."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def image_files(root: Path) -> list[Path]:
    """Every file below ``root`` with an image extension, sorted, hidden files excluded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if is_image_name(f))
    return out


def root_images(root: str | Path) -> list[tuple[str, tuple[str, ...]]]:
    """``(sample path, parts of the path below the root)`` of every image below a folder or
    in an archive, in folder-walk order; hidden files and folders are left out."""
    if sources.is_container(root):
        out = []
        for path in sources.list_members(root):
            rel = tuple(sources.split(path)[1].split("/"))
            if is_image_name(rel[-1]) and not any(p.startswith(".") for p in rel[:-1]):
                out.append((path, rel))
        return out
    folder = Path(root)
    return [(str(p), p.relative_to(folder).parts) for p in image_files(folder)]


def _require_root(root: str | Path) -> tuple[str, str]:
    """(root, its name): a folder, or an archive read in place."""
    path = Path(root).expanduser()
    if not path.is_dir() and not sources.is_container(path):
        raise ConfigError(f"dataset root {str(path)!r} is not a folder or an archive (.zip, .tar, .tar.gz)")
    return str(path), sources.root_name(path)


def sample_of(path: str, *, label: int, dataset: str, generator: str, family: str,
              split: str, subset: str) -> Sample:
    """The record of the file or archive member at ``path``: its bytes are read once, for
    the sha256 and the header; a file on disk that has not changed since it was last read is
    not read again (:mod:`harness.data.identities`)."""
    stat, known = identities.lookup(path) if sources.split(path)[1] is None else (None, None)
    if known is None:
        try:
            data = sources.read_bytes(path)
        except OSError as exc:
            raise ConfigError(f"cannot read {path!r}: {exc}") from exc
        info = probe_bytes(data) if data else {"format": "", "width": 0, "height": 0, "has_exif": False}
        known = (hashlib.sha256(data).hexdigest(), info["format"], info["width"], info["height"], info["has_exif"])
        identities.remember(stat, known)
    sha, fmt, width, height, has_exif = known
    return Sample(sample_id=sha, path=str(path), label=label, dataset=dataset, generator=generator, family=family,
                  split=split, subset=subset, format=fmt, width=width, height=height, has_exif=has_exif)


def read_binary_folders(root: str | Path, dataset: str = "", families: Mapping[str, str] | None = None,
                        split: str = "test", generators: Iterable[str] | None = None) -> list[Sample]:
    root, name = _require_root(root)
    families = dict(families or {})
    wanted = set(generators) if generators else None
    samples = []
    for path, rel in root_images(root):
        labels = [CLASS_DIRS[p] for p in rel[:-1] if p in CLASS_DIRS]
        if not labels:
            continue  # not below a class folder; `exifbench data check` reports these
        subset = rel[0] if rel[0] not in CLASS_DIRS else name
        if wanted is not None and subset not in wanted:
            continue
        label = labels[-1]
        generator = subset if label == 1 else "real"
        family = families.get(subset, "unknown") if label == 1 else "camera"
        samples.append(sample_of(path, label=label, dataset=dataset or name, generator=generator,
                               family=family, split=split, subset=subset))
    if not samples:
        raise ConfigError(f"no images below 0_real/ or 1_fake/ folders in {str(root)!r}")
    return samples


def _genimage_place(rel: tuple[str, ...]) -> tuple[int, str, int] | None:
    """(label, split, depth of the split folder) of a path below a GenImage root, or None."""
    for i in range(len(rel) - 2, 0, -1):
        if rel[i] in GENIMAGE_CLASS_DIRS and rel[i - 1] in GENIMAGE_SPLITS:
            return GENIMAGE_CLASS_DIRS[rel[i]], rel[i - 1], i - 1
    return None


def read_genimage(root: str | Path, dataset: str = "", families: Mapping[str, str] | None = None,
                  split: str | None = None, generators: Iterable[str] | None = None) -> list[Sample]:
    """GenImage: ``split`` keeps ``train`` or ``val`` (default both); reals keep their
    generator folder as ``subset``, as in ``binary-folders``."""
    root, name = _require_root(root)
    if split is not None and split not in GENIMAGE_SPLITS:
        raise ConfigError(f"genimage: split={split!r}; use one of {list(GENIMAGE_SPLITS)}")
    families, wanted = dict(families or {}), set(generators) if generators else None
    samples = []
    for path, rel in root_images(root):
        place = _genimage_place(rel)
        if place is None or (split is not None and place[1] != split):
            continue
        label, where, depth = place
        subset = rel[0] if depth > 0 else name
        if wanted is not None and subset not in wanted:
            continue
        samples.append(sample_of(path, label=label, dataset=dataset or name,
                               generator=subset if label else "real",
                               family=families.get(subset, "unknown") if label else "camera",
                               split=where, subset=subset))
    if not samples:
        raise ConfigError(f"no images below <split>/ai/ or <split>/nature/ folders in {str(root)!r} "
                          f"(GenImage layout: <generator>/{{train,val}}/{{ai,nature}}/)")
    return samples


def _cell(value) -> str:
    """A manifest's text cell: an empty one (NaN to pandas) is ""."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _relative_inside(name: str, manifest: str) -> str:
    """A manifest's relative path must stay in the manifest's folder (a manifest that came with
    a dataset cannot send the harness to read ``../../`` files of the machine); a file elsewhere
    is named by its absolute path, which is taken as it is."""
    if os.path.isabs(name) or sources.SEP in name and os.path.isabs(sources.split(name)[0]):
        return name
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(f"manifest {manifest!r}: the relative path {name!r} leaves the manifest's folder; "
                          "name a file outside it by its absolute path")
    return name if sources.SEP in name else posixpath.normpath(name)


def read_manifest(root: str | Path, dataset: str = "", split: str | None = None,
                  generators: Iterable[str] | None = None) -> list[Sample]:
    """``split`` keeps rows of that split; ``generators`` keeps the fakes of those generators
    (and every real)."""
    path = str(Path(root).expanduser()) if sources.split(root)[1] is None else str(root)
    if not sources.exists(path):
        raise ConfigError(f"manifest {path!r} is not a file (or a member of an archive)")
    with sources.open_binary(path) as f:
        table = pd.read_parquet(f) if path.endswith(".parquet") else pd.read_csv(f)
    missing = {"path", "label", "generator"} - set(table.columns)
    if missing:
        raise ConfigError(f"manifest {str(path)!r} lacks columns {sorted(missing)}")
    if split is not None and "split" in table.columns:
        table = table[table["split"] == split]
    if generators is not None:
        table = table[(table["label"] == 0) | table["generator"].isin(list(generators))]
    samples = []
    for row in table.itertuples(index=False):
        file = sources.join(sources.parent(path), _relative_inside(str(row.path), path))
        label = int(row.label)
        if label not in (0, 1):
            raise ConfigError(f"manifest {str(path)!r}: label {label} for {row.path} is not 0 or 1")
        samples.append(sample_of(file, label=label, dataset=dataset or Path(sources.split(path)[1] or path).stem,
                               generator=str(row.generator),
                               family=str(getattr(row, "family", "camera" if label == 0 else "unknown")),
                               split=str(getattr(row, "split", "test")),
                               subset=_cell(getattr(row, "subset", ""))))
    return samples


def read_real_only(root: str | Path, dataset: str = "", split: str = "train") -> list[Sample]:
    root, name = _require_root(root)
    samples = [sample_of(p, label=0, dataset=dataset or name, generator="real", family="camera",
                         split=split, subset="") for p, _ in root_images(root)]
    if not samples:
        raise ConfigError(f"no images in {str(root)!r}")
    return samples


@hookimpl
def exifbench_dataset_layouts() -> list[LayoutSpec]:
    return [
        LayoutSpec("binary-folders", read_binary_folders, "<generator>/.../{0_real,1_fake}/ at any depth"),
        LayoutSpec("genimage", read_genimage, "<generator>/.../{train,val}/{ai,nature}/ (GenImage)"),
        LayoutSpec("manifest", read_manifest, "CSV or Parquet with path, label, generator[, family, split, subset]"),
        LayoutSpec("real-only", read_real_only, "a folder of real photographs (label 0)"),
    ]
