"""The offline zoo: a small benchmark built at run time from the package registries.

Recipe: ``datasets/zoo.toml`` (sources, sizes, split), ``datasets/zoo_curation.csv``
(which ComfyUI preview is a text-to-image output, its generator and family) and
``datasets/zoo_lock.csv`` (every item of the zoo with its split, group and the sha256 of
the file it comes from). Steps: fetch the packages; collect real photographs
(exact duplicates dropped); collect the curated generated images; list the DCGAN faces by
sample index; group and split; compare with the lock; write each protocol.

Reproducible on any machine. Membership and split depend only on stable identities
(source, file name, DCGAN sample index), never on pixels computed in floating point (the
DCGAN's float output differs by CPU). Reals are grouped, and a group never straddles train
and test: photos of one camera model (EXIF Make and Model) form one group, and so do
near-duplicates (perceptual hash, :func:`imagehash.phash`, within ``phash_distance`` bits,
of the decoded file; JPEG decoding is integer arithmetic). Groups are ordered by the
sha256 of their name (their first member's) and filled into train up to
``train_fraction`` of their stratum (reals with EXIF, reals without, DCGAN faces). The
build compares its items with the lock and stops with a clear message when a source
changed (a new package version, a file added or edited); ``python -m harness.data.zoo
--write-lock`` rewrites the lock after a deliberate change (bump ``[recipe].version``).

Protocols. The fakes are small WebP/PNG files without metadata, the reals camera JPEGs
with EXIF: a detector could score the file history instead of the image.

- ``matched``: each generator's row compares its fakes with reals that went
  through the same processing history before harmonisation: for ``dcgan`` the reals are
  brought down to 64 px like the faces (then upsampled by harmonisation like them); for the
  preview generators each real takes the size of one of that generator's previews (chosen
  by the hash of the pair of names among those the photo reaches by downsampling: a
  preview is a generator's output at its size or smaller, so a real is never enlarged
  either; :func:`choose_preview`) and is encoded as WebP at that preview's quality
  (estimated by re-encoding the preview: the quality whose file size is closest). The
  manifest writes these reals once per generator, with ``subset`` = the generator's name
  on both the reals and the fakes, so the metrics compare each generator row with its own
  matched reals (reals are compared with the fakes of their subset).
- ``harmonised`` (the default): strips metadata, brings every image to the same size (short side resized
  to ``size``, centre crop) and re-encodes both classes as JPEG at one quality; reals are
  shared by all generator rows (no subset).
- ``as-is`` keeps the original files, format bias included.

The ``probe`` detector and ``exifbench data check`` measure how much of each row's
difference is processing history; results say which protocol was used.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tomllib
from dataclasses import dataclass, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Callable

from PIL import Image, ImageOps

from harness.api import ConfigError
from harness.cache_folder import cache_dir
from harness.data.decode import load_image
from harness.data.exif import read_exif
from harness.data.fetch import fetch_package, installed_package_dir
from harness.files import file_sha256
from harness.resources import catalogue_files

__all__ = ["PROTOCOLS", "DEFAULT_PROTOCOL", "LOCK_FILE", "LOCK_COLUMNS", "ZooBuild", "ZooLockError",
           "datasets_dir", "load_recipe", "zoo_items", "lock_rows", "read_lock", "compare_with_lock", "write_lock",
           "build_zoo", "choose_preview"]

PROTOCOLS = ("matched", "harmonised", "as-is")
#: ``matched`` would be the default if the shortcut probe could not separate any of its rows; it
#: still can (tests/benchmarks/probe_protocols.py --features): the preview rows by texture
#: (the previews are smoother) that no step of the reals' history changes, the DCGAN row by
#: how much detail the 64-px content holds; so the default stays ``harmonised``
DEFAULT_PROTOCOL = "harmonised"
LOCK_FILE = "zoo_lock.csv"
LOCK_COLUMNS = ("name", "source", "label", "generator", "split", "group", "sha256")


class ZooLockError(ConfigError):
    """The zoo built here differs from the committed lock (a source changed)."""


def datasets_dir() -> Traversable:
    """The folder of the recipe, the curation list and the lock (the catalogue's, as packaged)."""
    return catalogue_files()


def load_recipe() -> dict[str, Any]:
    path = datasets_dir() / "zoo.toml"
    if not path.is_file():
        raise ConfigError(f"zoo recipe {path} is missing")
    return tomllib.loads(path.read_text())


@dataclass(frozen=True)
class Item:
    origin: Path          # the fetched file (for a DCGAN face: the weights file)
    label: int
    generator: str
    family: str
    source: str
    name: str             # stable identity: source and file name, or dcgan_<index>
    sha256: str           # of the fetched file's bytes (for a DCGAN face: of the weights file)
    has_exif: bool
    camera: str = ""      # EXIF "Make|Model" of a real photograph
    phash: str = ""       # perceptual hash of a real photograph (hex)
    index: int = -1       # DCGAN sample index
    group: str = ""
    split: str = ""


@dataclass(frozen=True)
class ZooBuild:
    root: Path                # the protocol's folder
    manifest: Path            # manifest.csv (layout `manifest`)
    real_exif_train: Path     # original real photos with EXIF, train split (layout `real-only`)
    scenes_train: Path        # original real photos without EXIF, train split (scene content)
    counts: dict[str, Any]
    protocol: str


def _package_root(src: dict[str, Any]) -> Path:
    if src["kind"] == "installed":
        return installed_package_dir(src["package"])
    return fetch_package(src["kind"], src["package"], src.get("version", ""))


def _pixel_sha(img: Image.Image) -> str:
    """Exact duplicates only (decoded 8-bit pixels: integer JPEG decoding, no float)."""
    return hashlib.sha256(img.tobytes() + repr(img.size).encode()).hexdigest()


def _real_items(recipe: dict, log: Callable[[str], None]) -> list[Item]:
    import imagehash

    r = recipe["recipe"]
    items, seen = [], set()
    for src in r["sources"]:
        root = _package_root(src)
        files = sorted({p for g in src["globs"] for p in root.glob(g)})
        kept = 0
        for path in files:
            if path.name in src.get("exclude", []):
                continue
            try:  # the header first: most files of some packages are small or lack EXIF
                exif = read_exif(path)
                with Image.open(path) as header:
                    size = header.size
                if min(size) < r["min_short_side"] or (src["require_exif"] and not exif.get("Make")):
                    continue
                img = load_image(path)
            except Exception:  # noqa: BLE001 - deliberately broken sample files in some packages
                continue
            sha = _pixel_sha(img)
            if sha in seen:
                continue
            seen.add(sha)
            make = str(exif.get("Make", "")).strip().strip("\x00")
            camera = f"{make}|{str(exif.get('Model', '')).strip().strip(chr(0))}" if make else ""
            items.append(Item(path, 0, "real", "camera", src["name"], f"{src['name']}__{path.stem}",
                              file_sha256(path), bool(make), camera, str(imagehash.phash(img))))
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
            items.append(Item(path, 1, row["generator"], row["family"], src["name"], f"{src['name']}__{path.stem}",
                              file_sha256(path), False))
        log(f"  {src['name']}: {len(mine)} curated text-to-image outputs")
    return items


def _dcgan_items(recipe: dict, log: Callable[[str], None]) -> list[Item]:
    """One item per sample index; the faces are sampled when a protocol is written."""
    r = recipe["recipe"]
    spec = r["dcgan"]
    weights = fetch_package(spec["kind"], spec["package"], spec["version"]) / spec["weights"]
    sha = file_sha256(weights)
    log(f"  dcgan: {r['dcgan_samples']} faces (sample indices, seed {r['dcgan_seed']})")
    return [Item(weights, 1, "dcgan", "gan", "gan-face-generate", f"dcgan_{i:04d}", sha, False, index=i)
            for i in range(r["dcgan_samples"])]


# --- groups and splits --------------------------------------------------------------------

def _hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def group_reals(items: list[Item], max_distance: int) -> dict[str, str]:
    """name -> group name: one group per camera model and per chain of near-duplicates
    (perceptual hashes at most ``max_distance`` bits apart); a group is named by its first
    member in name order."""
    parent = {it.name: it.name for it in items}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_camera: dict[str, str] = {}
    for it in sorted(items, key=lambda i: i.name):
        if it.camera:
            union(by_camera.setdefault(it.camera.lower(), it.name), it.name)
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.phash and b.phash and _hamming(a.phash, b.phash) <= max_distance:
                union(a.name, b.name)
    return {it.name: find(it.name) for it in items}


def _order(name: str) -> str:
    return hashlib.sha256(f"exifbench-zoo|{name}".encode()).hexdigest()


def _fill(groups: dict[str, list[Item]], fraction: float) -> dict[str, str]:
    """group -> split: groups in hash order go to train while they fit in ``fraction`` of
    the stratum's items, the rest to test."""
    total = sum(len(m) for m in groups.values())
    target, train = round(fraction * total), 0
    out = {}
    for g in sorted(groups, key=_order):
        if train + len(groups[g]) <= target:
            out[g], train = "train", train + len(groups[g])
        else:
            out[g] = "test"
    return out


def assign_splits(items: list[Item], r: dict) -> list[Item]:
    """Every item with its group and split (see the module docstring)."""
    reals = [it for it in items if it.label == 0]
    group_of = group_reals(reals, int(r["phash_distance"]))
    strata: dict[str, dict[str, list[Item]]] = {}
    for it in reals:
        strata.setdefault("real", {}).setdefault(group_of[it.name], []).append(it)
    for it in items:
        if it.label == 1 and it.generator in r["train_generators"]:
            strata.setdefault(f"fake|{it.generator}", {})[it.name] = [it]
    # reals with EXIF and reals without are filled separately (both splits need both kinds)
    real_groups = strata.pop("real", {})
    for kind, has in (("real|exif", True), ("real|scene", False)):
        strata[kind] = {g: m for g, m in real_groups.items() if any(i.has_exif for i in m) == has}
    split_of = {}
    for groups in strata.values():
        for g, split in _fill(groups, r["train_fraction"]).items():
            split_of.update({it.name: (g, split) for it in groups[g]})
    return [replace(it, group=split_of.get(it.name, (it.name, "test"))[0],
                    split=split_of.get(it.name, (it.name, "test"))[1]) for it in items]


def zoo_items(recipe: dict | None = None, log: Callable[[str], None] = print) -> list[Item]:
    """Fetch the sources and list every item of the zoo with its group and split."""
    recipe = recipe or load_recipe()
    items = _real_items(recipe, log) + _curated_items(recipe, log) + _dcgan_items(recipe, log)
    return assign_splits(items, recipe["recipe"])


# --- the lock -----------------------------------------------------------------------------

def lock_rows(items: list[Item]) -> list[dict[str, str]]:
    rows = [{"name": it.name, "source": it.source, "label": str(it.label), "generator": it.generator,
             "split": it.split, "group": it.group, "sha256": it.sha256} for it in items]
    return sorted(rows, key=lambda row: row["name"])


def _lock_path() -> Traversable:
    return datasets_dir() / LOCK_FILE


def read_lock(path: str | Path | Traversable | None = None) -> list[dict[str, str]]:
    path = path if path is not None else _lock_path()
    if not path.is_file():
        raise ZooLockError(f"the zoo's lock file {path} is missing")
    with path.open("r", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and tuple(rows[0]) != LOCK_COLUMNS:
        raise ZooLockError(f"{path}: columns {list(rows[0])}, expected {list(LOCK_COLUMNS)}")
    return rows


def compare_with_lock(rows: list[dict[str, str]], lock: list[dict[str, str]]) -> list[str]:
    """The differences between the items built here and the lock, one line each."""
    built, locked = {r["name"]: r for r in rows}, {r["name"]: r for r in lock}
    lines = [f"{n}: in the lock, not built here (a file was removed or is now left out)"
             for n in sorted(set(locked) - set(built))]
    lines += [f"{n}: built here, not in the lock (a new file in {built[n]['source']})"
              for n in sorted(set(built) - set(locked))]
    for n in sorted(set(built) & set(locked)):
        diff = [f"{c} {locked[n][c]!r} -> {built[n][c]!r}" for c in LOCK_COLUMNS if built[n][c] != locked[n][c]]
        if diff:
            lines.append(f"{n}: " + ", ".join(d if not d.startswith("sha256") else
                                              "sha256 of the source file changed (the package changed)"
                                              for d in diff))
    return lines


def check_lock(rows: list[dict[str, str]]) -> None:
    diff = compare_with_lock(rows, read_lock())
    if diff:
        shown = "\n  ".join(diff[:12]) + (f"\n  ... and {len(diff) - 12} more" if len(diff) > 12 else "")
        raise ZooLockError(
            f"the zoo built here differs from its lock {_lock_path()} in {len(diff)} items:\n  {shown}\n"
            "A source package changed since the lock was written, so results would not be comparable with "
            "the reference. Install the locked versions, or, for a deliberate change, bump [recipe].version "
            "in zoo.toml and run `python -m harness.data.zoo --write-lock`.")


def write_lock(path: str | Path | None = None, log: Callable[[str], None] = print) -> Path:
    target = Path(path) if path else Path(str(_lock_path()))
    rows = lock_rows(zoo_items(log=log))
    with open(target, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(LOCK_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    log(f"wrote {len(rows)} items to {target}")
    return target


# --- writing a protocol -------------------------------------------------------------------

def _harmonise(img: Image.Image, target: Path, r: dict) -> None:
    img = ImageOps.fit(img, (r["size"], r["size"]), Image.Resampling.LANCZOS)
    img.save(target, format="JPEG", quality=r["jpeg_quality"])  # no exif= argument: metadata stripped


def _write(item: Item, out_dir: Path, protocol: str, r: dict, image: Image.Image | None = None) -> Path:
    """One item under ``protocol`` (``image``: its decoded pixels, when already at hand)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if protocol == "as-is":
        if item.index >= 0:
            target = out_dir / f"{item.name}.png"
            image.save(target)
            return target
        target = out_dir / f"{item.name}{item.origin.suffix.lower()}"
        shutil.copyfile(item.origin, target)
        return target
    target = out_dir / f"{item.name}.jpg"
    _harmonise(image if image is not None else load_image(item.origin), target, r)
    return target


@dataclass(frozen=True)
class Preview:
    """A generated file's history: its size and how it was encoded."""

    name: str
    size: tuple[int, int]
    encoding: str           # "webp" (lossy, at ``quality``), "lossless" (PNG, lossless WebP)
    quality: int = 0


def _webp_bytes(img: Image.Image, quality: int) -> int:
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=4)
    return buf.tell()


def estimate_webp_quality(path: Path) -> int:
    """The WebP quality of a lossy file, estimated as the quality at which re-encoding its
    pixels gives the file size closest to its own (bisection: size grows with quality).
    Re-encoding pixels that lossy coding already simplified makes a smaller file, so the
    estimate errs upwards: by 1-2 above quality 75, up to about 6 below (tested)."""
    size = path.stat().st_size
    img = load_image(path)
    lo, hi = 1, 100
    while lo < hi:
        mid = (lo + hi) // 2
        if _webp_bytes(img, mid) < size:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo == 1 or abs(_webp_bytes(img, lo) - size) <= abs(_webp_bytes(img, lo - 1) - size) else lo - 1


def preview_history(item: Item) -> Preview:
    with Image.open(item.origin) as img:
        size, fmt = img.size, (img.format or "").upper()
    if fmt == "WEBP" and item.origin.read_bytes()[12:16] == b"VP8L":
        return Preview(item.name, size, "lossless")
    if fmt == "WEBP":
        return Preview(item.name, size, "webp", estimate_webp_quality(item.origin))
    return Preview(item.name, size, "lossless")


def _matched_history(real: Image.Image, real_name: str, generator: str, kind: str, r: dict,
                     previews: list[Preview]) -> tuple[Image.Image, str]:
    """The real's pixels after the generator's history, and that history in words."""
    if kind == "dcgan":
        side = int(r["dcgan_size"])
        return ImageOps.fit(real, (side, side), Image.Resampling.LANCZOS), f"fit {side}x{side}"
    if kind != "preview":
        raise ConfigError(f"zoo recipe: unknown matched history {kind!r} for {generator} (dcgan, preview)")
    p, reachable = choose_preview(real.size, f"{generator}|{real_name}", previews)
    out = ImageOps.fit(real, p.size, Image.Resampling.LANCZOS)
    fit = f"fit {p.size[0]}x{p.size[1]}" + ("" if reachable else " (upsampled: the photo is smaller than every preview)")
    if p.encoding != "webp":
        return out, f"{fit} (as {p.name}, lossless)"
    buf = io.BytesIO()
    out.save(buf, format="WEBP", quality=p.quality, method=4)
    buf.seek(0)
    return Image.open(buf).convert("RGB"), f"{fit}, webp q{p.quality} (as {p.name})"


def choose_preview(size: tuple[int, int], key: str, previews: list[Preview]) -> tuple[Preview, bool]:
    """The preview whose history a real of ``size`` takes, and whether it is reached by
    downsampling. A preview is a generator's output at its own size or smaller, never
    enlarged, so a real is never enlarged either: from the preview chosen by the hash of
    ``key``, the first in list order (cyclically) that the photo's centre crop covers.
    When the photo is smaller than every preview, the hashed choice (upsampled, and said so)."""
    start = int(_order(key)[:8], 16) % len(previews)
    ring = previews[start:] + previews[:start]
    fits = [p for p in ring if size[0] >= p.size[0] and size[1] >= p.size[1]]
    return (fits[0], True) if fits else (ring[0], False)


def _recipe_hash(recipe: dict, protocol: str) -> str:
    data = b"".join((datasets_dir() / f).read_bytes() for f in ("zoo_curation.csv", LOCK_FILE))
    text = json.dumps(recipe, sort_keys=True) + protocol
    return hashlib.sha256(text.encode() + data).hexdigest()[:16]


def build_zoo(protocol: str = DEFAULT_PROTOCOL, log: Callable[[str], None] = print, force: bool = False) -> ZooBuild:
    """Build (or find in the cache) the zoo under one protocol; raises :class:`ZooLockError`
    when the items differ from the lock."""
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
    items = zoo_items(recipe, log)
    check_lock(lock_rows(items))
    for folder in ("images", build.real_exif_train.name, build.scenes_train.name):
        shutil.rmtree(root / folder, ignore_errors=True)
    rows = _write_all(items, root, protocol, r, log)
    for it in items:
        if it.label == 0 and it.split == "train":
            _copy_original(it, build.real_exif_train if it.has_exif else build.scenes_train)
    with open(build.manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    counts = _counts(rows)
    done.write_text(json.dumps(counts, indent=2))
    return ZooBuild(**{**build.__dict__, "counts": counts})


def _faces(items: list[Item], r: dict) -> dict[int, Image.Image]:
    from harness.data.dcgan import load_generator, sample_images

    wanted = [it.index for it in items if it.index >= 0]
    if not wanted:
        return {}
    faces = sample_images(load_generator(items[0].origin), r["dcgan_samples"], seed=r["dcgan_seed"])
    return {i: faces[i] for i in wanted}


def _write_all(items: list[Item], root: Path, protocol: str, r: dict, log: Callable[[str], None]) -> list[dict]:
    faces = _faces([it for it in items if it.index >= 0], r)
    matched = protocol == "matched"
    history = r.get("matched_history", {})
    previews: dict[str, list[Preview]] = {}
    if matched:
        for gen, kind in sorted(history.items()):
            if kind == "preview":
                previews[gen] = [preview_history(it) for it in sorted(items, key=lambda i: i.name)
                                 if it.label == 1 and it.generator == gen]
        qualities = {g: sorted({p.quality for p in ps if p.encoding == "webp"}) for g, ps in previews.items()}
        log("  matched histories: " + "; ".join(f"{g}: {history[g]}" + (f" (webp q {q})" if q else "")
                                                for g, q in [(g, qualities.get(g)) for g in sorted(history)]))
    gens_of_split: dict[str, list[str]] = {}
    for it in items:
        if it.label == 1 and it.generator not in gens_of_split.setdefault(it.split, []):
            gens_of_split[it.split].append(it.generator)
    rows = []
    for it in items:
        base = {"label": it.label, "generator": it.generator, "family": it.family, "split": it.split,
                "source": it.source, "group": it.group, "has_exif_original": it.has_exif,
                "origin": str(it.origin.relative_to(cache_dir()) if it.origin.is_relative_to(cache_dir())
                              else it.origin.name) + (f"#{it.index}" if it.index >= 0 else "")}
        image = faces.get(it.index) if it.index >= 0 else (None if protocol == "as-is" else load_image(it.origin))
        if it.label == 1:
            folder = root / "images" / it.split / it.generator / "1_fake"
            path = _write(it, folder, protocol, r, image)
            rows.append({"path": str(path.relative_to(root)), **base, "subset": it.generator if matched else "",
                         "history": "as generated"})
            continue
        if not matched:
            path = _write(it, root / "images" / it.split / "real" / "0_real", protocol, r, image)
            rows.append({"path": str(path.relative_to(root)), **base, "subset": "", "history": "as photographed"})
            continue
        for gen in sorted(gens_of_split.get(it.split, [])):
            if gen not in history:
                raise ConfigError(f"zoo recipe: [recipe.matched_history] names no history for generator {gen!r}")
            pixels, how = _matched_history(image, it.name, gen, history[gen], r, previews.get(gen, []))
            folder = root / "images" / it.split / f"real-{gen}" / "0_real"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{it.name}.jpg"
            _harmonise(pixels, target, r)
            rows.append({"path": str(target.relative_to(root)), **base, "subset": gen, "history": how})
    return rows


def _copy_original(item: Item, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(item.origin, folder / f"{item.name}{item.origin.suffix.lower()}")


def _counts(rows: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        cls = row["generator"] if row["label"] == 1 else ("real-" + row["subset"] if row["subset"] else "real")
        key = f"{row['split']}/{cls}"
        out[key] = out.get(key, 0) + 1
    out["real_with_exif"] = len({r["origin"] for r in rows if r["label"] == 0 and r["has_exif_original"]})
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.data.zoo",
                                     description="rewrite the zoo's lock file after a deliberate change of a source")
    parser.add_argument("--write-lock", action="store_true", required=True)
    parser.add_argument("--path", type=Path, default=None, help="where to write it (default: the packaged lock)")
    args = parser.parse_args(argv)
    write_lock(args.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
