"""``exifbench data check``: compare a folder with its catalogue entry before any model runs.

A wrong folder, a corrupt file or a silent format bias makes a benchmark number
meaningless, so the check reports, per generator and class:

- **errors** (exit code 1): the layout cannot read the folder; images outside any class
  folder (a misnamed ``1_fakes/`` or ``Real/``), which the layout would silently skip;
  generators of the entry that are missing, folders that are not generators of the entry;
  counts that differ from the published ones (per generator, and per real-only folder such as
  UniversalFakeDetect's ``laion``; each message cites the entry's ``counts_source``); a
  generator without reals or without fakes;
  files that cannot be decoded (with the decoder's reason);
- **warnings** (exit code 0, or 1 with ``--strict``): class imbalance (one class more than
  twice the other); real and generated images in different formats, or JPEGs of very
  different quality (the known bias of several benchmarks: a detector can learn the file
  format instead of the image); file extensions that lie about the format;
- **the shortcut probe** (:mod:`harness.data.shortcut`): a logistic regression on features
  of processing history only, cross-validated per generator against its reals; a warning
  when its AUC interval lies above 0.5 (the classes differ by history: a detector can learn
  it); ``probe=N`` reads at most N images per class and generator (``exifbench data check``
  runs it with ``--probe 200`` by default, ``--probe 0`` leaves it out);
- **the mix of each class**: formats, median size, smallest side, JPEG quality (estimated
  from the quantisation tables: the IJG quality whose luminance table is closest, "exact"
  when identical), share of files with EXIF.

Beyond the layout's own samples:

- **ignored files**: below a folder or in an archive read by ``binary-folders``, ``genimage``
  or ``real-only``, files the layout does not read are counted (hidden files, names without
  an image extension; a note, exit code 0), and those that are images by their content but
  lack an image extension are a warning (the layout skips them: rename them); in WebDataset
  shards, the members no sample uses (hidden, other extensions, metadata without an image);
- **checksums**: the checksum file named by ``--checksums``, the layout option ``checksums``
  or the entry's ``checksums`` (:mod:`harness.data.checksums`) is verified; listed files that
  are missing and files whose digest differs are errors.

A folder with no catalogue entry is checked against its layout alone
(:func:`~harness.data.catalogue.adhoc_entry`): every finding above but the entry's
generators and counts.
"""
from __future__ import annotations

import io
import os
import statistics
import tomllib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image

from harness.api import ConfigError, DecodeError, ExifbenchError, Sample
from harness.data import sources
from harness.data.catalogue import CatalogueEntry
from harness.data.checksums import ChecksumReport, verify_checksums
from harness.data.decode import load_image, sniff_format
from harness.data.layouts import CLASS_DIRS, GENIMAGE_CLASS_DIRS, is_image_name, root_images
from harness.data.shortcut import ProbeRow, probe_rows, separates
from harness.data.sources import is_container, open_binary, root_name

__all__ = ["Finding", "FileInfo", "ClassMix", "CheckReport", "check_dataset", "estimate_jpeg_quality",
           "inspect_file", "parse_options"]

IMBALANCE = 2.0          # one class more than twice the other is worth a warning
QUALITY_GAP = 10         # median JPEG qualities further apart than this are a bias
#: images of each class per generator row that the shortcut probe reads (a seeded choice beyond it)
PROBE_PER_CLASS = 200
_EXTENSIONS = {"jpeg": {".jpg", ".jpeg", ".jpe"}, "png": {".png"}, "webp": {".webp"}, "gif": {".gif"},
               "tiff": {".tif", ".tiff"}, "bmp": {".bmp"}, "heif": {".heic", ".heif"}, "avif": {".avif"},
               "ppm": {".ppm", ".pgm"}, "mpo": {".jpg", ".jpeg"}}


@dataclass(frozen=True)
class Finding:
    level: str       # "error" or "warning"
    code: str        # short machine-readable kind, e.g. "missing-generator"
    message: str


@dataclass(frozen=True)
class FileInfo:
    path: str
    format: str = ""
    width: int = 0
    height: int = 0
    has_exif: bool = False
    jpeg_quality: int | None = None
    jpeg_exact: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ClassMix:
    n: int
    formats: dict[str, int]
    median_size: tuple[int, int]
    min_side: int
    jpeg_quality: dict[str, int]
    exif_share: float
    unreadable: int


@dataclass
class CheckReport:
    name: str
    root: str
    findings: list[Finding] = field(default_factory=list)
    #: generator -> {"real": ClassMix, "fake": ClassMix}
    mix: dict[str, dict[str, ClassMix]] = field(default_factory=dict)
    #: the checksum file's verification, when one is named
    checksums: ChecksumReport | None = None
    #: the shortcut probe per generator row (:func:`probe_section`)
    probe: list[ProbeRow] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.errors or (strict and self.warnings) else 0

    def render(self) -> str:
        lines = [f"data check {self.name}: {self.root}"]
        for gen, classes in sorted(self.mix.items()):
            for cls, m in ((c, m) for c, m in classes.items() if m.n):
                q = ", ".join(f"q{k}:{v}" for k, v in sorted(m.jpeg_quality.items())) or "-"
                fmts = ", ".join(f"{k}:{v}" for k, v in sorted(m.formats.items()))
                lines.append(f"  {gen:24s} {cls:4s} n={m.n:<7d} formats[{fmts}] median {m.median_size[0]}x"
                             f"{m.median_size[1]} min side {m.min_side} jpeg[{q}] exif {m.exif_share:.0%}"
                             + (f" unreadable {m.unreadable}" if m.unreadable else ""))
        lines += probe_lines(self.probe)
        if self.checksums is not None:
            lines.append(f"  {self.checksums.summary()}")
        for f in self.findings:
            lines.append(f"{f.level.upper()}: {f.message}")
        lines.append(f"{len(self.errors)} errors, {len(self.warnings)} warnings")
        return "\n".join(lines)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as layout options: a VALUE that parses as a TOML value (``3``,
    ``true``, ``["a.tar", "b.tar"]``, ``{real = 0, fake = 1}``) is that value, any other is text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"layout option {pair!r} is not KEY=VALUE")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    return out


@lru_cache(maxsize=1)
def _ijg_tables() -> dict[int, tuple[int, ...]]:
    """The luminance table Pillow (libjpeg's IJG scaling) writes at each quality 1..100."""
    tables = {}
    for q in range(1, 101):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, format="JPEG", quality=q)
        buf.seek(0)
        tables[q] = tuple(Image.open(buf).quantization[0])
    return tables


def estimate_jpeg_quality(luma_table: Sequence[int]) -> tuple[int, bool]:
    """(IJG quality whose luminance table is closest, whether it matches exactly)."""
    table = tuple(int(v) for v in luma_table)
    best = min(_ijg_tables().items(), key=lambda kv: (sum(abs(a - b) for a, b in zip(kv[1], table)), -kv[0]))
    return best[0], best[1] == table


def inspect_file(path: str, decode: bool = True) -> FileInfo:
    """Header facts of one file and, with ``decode``, whether it decodes (never raises)."""
    info = {"path": path}
    try:
        with open_binary(path) as f, Image.open(f) as img:
            info.update(format=(img.format or "").lower(), width=img.size[0], height=img.size[1],
                        has_exif=bool(img.getexif()))
            tables = getattr(img, "quantization", None)
            if tables and 0 in tables:
                info["jpeg_quality"], info["jpeg_exact"] = estimate_jpeg_quality(tables[0])
    except Exception:  # noqa: BLE001 - the decoder below gives the reason
        pass
    if decode:
        try:
            load_image(path)
        except DecodeError as exc:
            info["error"] = exc.reason
        except Exception as exc:  # noqa: BLE001 - any failure is a finding, not a crash
            info["error"] = f"{type(exc).__name__}: {exc}"[:120]
    return FileInfo(**info)


def _inspect_all(paths: Sequence[str], decode: bool, workers: int) -> dict[str, FileInfo]:
    if workers <= 1 or len(paths) < 64:
        return {p: inspect_file(p, decode) for p in paths}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        infos = pool.map(inspect_file, paths, [decode] * len(paths), chunksize=64)
        return {i.path: i for i in infos}


def _mix(infos: Iterable[FileInfo]) -> ClassMix:
    infos = list(infos)
    sizes = [(i.width, i.height) for i in infos if i.width]
    quality = Counter(f"{i.jpeg_quality}{'' if i.jpeg_exact else '~'}" for i in infos if i.jpeg_quality)
    return ClassMix(
        n=len(infos), formats=dict(Counter(i.format or "?" for i in infos)),
        median_size=(int(statistics.median(w for w, _ in sizes)), int(statistics.median(h for _, h in sizes)))
        if sizes else (0, 0),
        min_side=min((min(s) for s in sizes), default=0), jpeg_quality=dict(quality),
        exif_share=sum(i.has_exif for i in infos) / len(infos) if infos else 0.0,
        unreadable=sum(i.error is not None for i in infos))


def _read(entry: CatalogueEntry, root: Path) -> list[Sample]:
    from harness.plugins import layouts

    options = {k: v for k, v in entry.layout_options.items() if k != "checksums"}  # data check's, not the layout's
    return layouts()[entry.layout].read(str(root), dataset=entry.name, **options)


def _class_of(rel: tuple[str, ...], layout: str) -> bool:
    if layout == "genimage":
        return any(p in GENIMAGE_CLASS_DIRS for p in rel[:-1])
    return any(p in CLASS_DIRS for p in rel[:-1])


def _stray_findings(entry: CatalogueEntry, root: Path) -> list[Finding]:
    """Images below no class folder: the layout skips them, so a misnamed folder hides data."""
    if entry.layout not in ("binary-folders", "genimage"):
        return []
    stray: dict[str, int] = Counter()
    for _, rel in root_images(root):
        if not _class_of(rel, entry.layout):
            stray[str(Path(*rel[:-1])) or "."] += 1
    names = "0_real/ or 1_fake/" if entry.layout == "binary-folders" else "{train,val}/{ai,nature}/"
    return [Finding("error", "outside-class-folder", f"{n} images in {d}/ are below no {names} folder "
                    f"(a misnamed class folder?); the layout skips them") for d, n in sorted(stray.items())]


def _group(entry: CatalogueEntry, root: Path, samples: Sequence[Sample]) -> dict[str, dict[str, list[Sample]]]:
    """generator -> class -> samples; reals are grouped under the generator they sit beside."""
    groups: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: {"real": [], "fake": []})
    sole = next(iter(entry.generators)) if entry.single_generator and len(entry.generators) == 1 else None
    for s in samples:
        gen = s.generator if s.label == 1 else (s.subset or "real")
        if sole is not None and gen == root_name(root):
            gen = sole
        groups[gen]["fake" if s.label else "real"].append(s)
    return dict(groups)


def _generator_findings(entry: CatalogueEntry, groups: dict) -> list[Finding]:
    if not entry.catalogued:
        return []  # an ad-hoc check has no list of generators
    found = set(groups)
    out = [Finding("error", "missing-generator", f"generator {g!r} of {entry.name} is missing")
           for g in sorted(set(entry.generators) - found)]
    out += [Finding("error", "unexpected-generator", f"{g!r} is not a generator of {entry.name} "
                    f"(expected one of {sorted(entry.generators)})")
            for g in sorted(found - set(entry.generators) - set(entry.real_subsets) - {"real"})]
    return out


def _count_findings(entry: CatalogueEntry, groups: dict) -> list[Finding]:
    """Published counts against the folder's; keys are generators or real-only subsets."""
    out = []
    for gen, expected in sorted(entry.counts.items()):
        for cls, n in expected.items():
            got = len(groups.get(gen, {}).get(cls, []))
            if got != n:
                out.append(Finding("error", "count-mismatch", f"{gen} {cls}: {got} images, {n} expected "
                                   f"({entry.counts_source})"))
    return out


def _balance_findings(entry: CatalogueEntry, groups: dict) -> list[Finding]:
    out = []
    pooled = len(groups.get("real", {}).get("real", []))  # reals not beside any generator (manifest)
    for gen, cls in sorted(groups.items()):
        if gen in entry.real_subsets or gen == "real":
            continue
        r, f = len(cls["real"]) or pooled, len(cls["fake"])
        if not r or not f:
            out.append(Finding("error", "one-class-only", f"{gen}: {r} real and {f} generated images; "
                               "AP and AUC need both"))
        elif max(r, f) > IMBALANCE * min(r, f):
            out.append(Finding("warning", "imbalance", f"{gen}: {r} real vs {f} generated images"))
    return out


def _decode_findings(infos: dict[str, FileInfo]) -> list[Finding]:
    bad = [i for i in infos.values() if i.error]
    if not bad:
        return []
    reasons = Counter(i.error.split(" (")[0] for i in bad)
    examples = ", ".join(sorted(os.path.basename(i.path) for i in bad)[:5])
    return [Finding("error", "unreadable", f"{len(bad)} files cannot be decoded ({dict(reasons)}), e.g. {examples}; "
                    "they will be rows with an error")]


def _extension_findings(infos: dict[str, FileInfo]) -> list[Finding]:
    lying = [i for i in infos.values() if i.format in _EXTENSIONS and Path(i.path).suffix  # a 🤗 row has none
             and Path(i.path).suffix.lower() not in _EXTENSIONS[i.format]]
    if not lying:
        return []
    examples = ", ".join(f"{os.path.basename(i.path)} is {i.format}" for i in lying[:3])
    return [Finding("warning", "extension-mismatch", f"{len(lying)} files are not in the format their "
                    f"extension says ({examples}); decoding goes by content")]


def _main_format(m: ClassMix) -> str:
    return max(m.formats.items(), key=lambda kv: kv[1])[0] if m.formats else ""


def _median_quality(infos: Sequence[FileInfo]) -> float | None:
    qs = [i.jpeg_quality for i in infos if i.jpeg_quality]
    return statistics.median(qs) if qs else None


def _bias_findings(mix: dict[str, dict[str, ClassMix]], infos: dict[str, FileInfo],
                   groups: dict) -> list[Finding]:
    out = []
    for gen, m in sorted(mix.items()):
        if not m["real"].n or not m["fake"].n:
            continue
        fr, ff = _main_format(m["real"]), _main_format(m["fake"])
        if fr != ff:
            out.append(Finding("warning", "format-bias", f"{gen}: real images are mostly {fr}, generated ones "
                               f"mostly {ff}; a detector can learn the format (harmonise both classes: "
                               "same size, same re-encoding)"))
        elif fr == "jpeg":
            qr = _median_quality([infos[s.path] for s in groups[gen]["real"]])
            qf = _median_quality([infos[s.path] for s in groups[gen]["fake"]])
            if qr is not None and qf is not None and abs(qr - qf) > QUALITY_GAP:
                out.append(Finding("warning", "quality-bias", f"{gen}: median JPEG quality {qr:g} (real) vs "
                                   f"{qf:g} (generated)"))
    return out


#: layouts that read every image file below a root, so a file they skip is worth counting
_FILE_LAYOUTS = ("binary-folders", "genimage", "real-only")


def _all_files(root: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(sample path, parts below the root) of every file below a folder or in an archive,
    hidden ones included."""
    if sources.is_container(root):
        return [(p, tuple(sources.split(p)[1].split("/"))) for p in sources.list_members(root)]
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        out += [(os.path.join(dirpath, f), (Path(dirpath) / f).relative_to(root).parts) for f in sorted(filenames)]
    return out


def _is_image_content(path: str) -> bool:
    try:
        with sources.open_binary(path) as f:
            return bool(sniff_format(f.read(1 << 16)))
    except OSError:
        return False


def _ignored_shard_findings(entry: CatalogueEntry, root: Path) -> list[Finding]:
    """Members of WebDataset shards that no sample uses."""
    from harness.data.webdataset import ignored_members

    try:
        ignored = ignored_members(str(root), entry.layout_options.get("shards"))
    except ExifbenchError:
        return []  # the layout's own error is reported already
    n = sum(map(len, ignored.values()))
    if not n:
        return []
    parts = [f"{len(v)} {why} (e.g. {', '.join(v[:2])})" for why, v in ignored.items() if v]
    return [Finding("info", "ignored-files", f"{n} shard members are not read: " + "; ".join(parts))]


def _ignored_findings(entry: CatalogueEntry, root: Path) -> list[Finding]:
    """Files the layout skips: hidden ones and names without an image extension."""
    layout = entry.layout
    if layout == "webdataset":
        return _ignored_shard_findings(entry, root)
    if layout not in _FILE_LAYOUTS or not (root.is_dir() or sources.is_container(root)):
        return []
    hidden, other = [], []
    for path, rel in _all_files(root):
        if any(p.startswith(".") for p in rel):
            hidden.append("/".join(rel))
        elif not is_image_name(rel[-1]):
            other.append((path, "/".join(rel)))
    images = [rel for path, rel in other if _is_image_content(path)]
    rest = [rel for _, rel in other if rel not in set(images)]
    out = []
    if images:
        out.append(Finding("warning", "images-without-extension", f"{len(images)} files are images by their "
                           f"content but their names have no image extension, e.g. {', '.join(images[:3])}; "
                           "the layout skips them (rename them to be read)"))
    if hidden or rest:
        kinds = Counter(Path(r).suffix.lower() or "(none)" for r in rest)
        out.append(Finding("info", "ignored-files", f"{len(hidden) + len(rest)} files are not read: "
                           f"{len(hidden)} hidden" + (f" (e.g. {', '.join(hidden[:3])})" if hidden else "")
                           + f", {len(rest)} without an image extension"
                           + (f" ({', '.join(f'{k}: {n}' for k, n in kinds.most_common(6))}; e.g. "
                              f"{', '.join(rest[:3])})" if rest else "")))
    return out


def _checksum_file(entry: CatalogueEntry, root: Path) -> str | None:
    """The checksum file to verify: the layout option, else the entry's key; a relative
    name is read from the root folder (or the folder holding an archive, shards or a file)."""
    name = str(entry.layout_options.get("checksums") or entry.checksums or "")
    if not name:
        return None
    if os.path.isabs(sources.split(name)[0]):
        return name
    base = root if root.is_dir() else Path(str(root).split("{")[0]).parent
    found = str(base / name)
    if not sources.exists(found) and sources.is_container(root) and sources.exists(sources.member_path(root, name)):
        return sources.member_path(root, name)
    return found


def _checksum_findings(entry: CatalogueEntry, root: Path) -> tuple[ChecksumReport | None, list[Finding]]:
    file = _checksum_file(entry, root)
    if file is None:
        return None, []
    try:
        checked = verify_checksums(file, root)
    except ExifbenchError as exc:
        return None, [Finding("error", "checksum-file", str(exc))]
    out = []
    if checked.missing:
        out.append(Finding("error", "checksum-missing", f"{len(checked.missing)} of the {checked.checked} files "
                           f"listed in {file} are missing, e.g. {', '.join(checked.missing[:5])}"))
    if checked.corrupt:
        examples = "; ".join(f"{n} (expected {e[:12]}..., found {g[:40]})" for n, e, g in checked.corrupt[:3])
        out.append(Finding("error", "checksum-mismatch", f"{len(checked.corrupt)} files differ from their checksum "
                           f"in {file} (corrupt, truncated or changed): {examples}"))
    return checked, out


def check_dataset(entry: CatalogueEntry, root: str | Path, decode: bool = True, workers: int = 1,
                  probe: int = 0) -> CheckReport:
    """Compare ``root`` with ``entry``; ``decode=False`` reads headers only (fast, misses
    corrupt pixel data)."""
    root = Path(root).expanduser()
    report = CheckReport(entry.name, str(root))
    try:
        samples = _read(entry, root)
    except ExifbenchError as exc:
        report.findings.append(Finding("error", "unreadable-layout", f"layout {entry.layout}: {exc}"))
        samples = []
    if root.is_dir() or is_container(root):
        report.findings += _stray_findings(entry, root)
    report.findings += _ignored_findings(entry, root)
    report.checksums, found = _checksum_findings(entry, root)
    report.findings += found
    if not samples:
        return report
    groups = _group(entry, root, samples)
    infos = _inspect_all([s.path for s in samples], decode, workers)
    report.mix = {g: {c: _mix(infos[s.path] for s in ss) for c, ss in cls.items()} for g, cls in groups.items()}
    report.findings += (_generator_findings(entry, groups) + _count_findings(entry, groups)
                        + _balance_findings(entry, groups) + _decode_findings(infos)
                        + _extension_findings(infos) + _bias_findings(report.mix, infos, groups))
    if probe > 0:
        report.probe, found = probe_section(groups, probe, workers)
        report.findings += found
    return report


# --- the shortcut probe -------------------------------------------------------------------

def probe_section(groups: dict, per_class: int = PROBE_PER_CLASS, workers: int = 1) -> tuple[list[ProbeRow],
                                                                                               list[Finding]]:
    """The shortcut probe (:mod:`harness.data.shortcut`) cross-validated on each generator
    against its reals (those beside it, else the dataset's pooled reals), and a warning for
    every row where it separates the classes (its AUC interval above 0.5)."""
    pooled = groups.get("real", {}).get("real", [])
    rows = {gen: ([s.path for s in (cls["real"] or pooled)], [s.path for s in cls["fake"]])
            for gen, cls in groups.items() if cls["fake"]}
    results = probe_rows(rows, per_class, workers=workers)
    found = [Finding("warning", "shortcut", f"{r.generator}: the shortcut probe, which sees only processing "
                     f"history (JPEG grid and quality, high frequencies, resampling, size), separates real from "
                     f"generated images: cross-validated AUC {r.result.text()}; a detector can score the history "
                     "instead of the generator (bring both classes through the same history)")
             for r in results if r.result is not None and separates(r.result)]
    found += [Finding("warning", "shortcut-unreadable", f"{r.generator}: the probe could not read {r.unreadable} "
                      "files (see the decode errors)") for r in results if r.unreadable]
    return results, found


def probe_lines(rows: list[ProbeRow]) -> list[str]:
    if not rows:
        return []
    lines = ["  shortcut probe (processing history only; stratified 5-fold, AUC with 95% bootstrap interval; "
             "it warns when the interval lies above 0.5):"]
    for r in rows:
        lines.append(f"    {r.generator:24s} " + (r.result.text() if r.result else f"no result: {r.reason}"))
    return lines
