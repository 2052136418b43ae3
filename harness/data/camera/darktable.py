"""Camera data from the Debian ``darktable`` package, fetched at run time into the cache.

darktable (https://github.com/darktable-org/darktable, GPL-3) ships three data files the
simulator needs: ``noiseprofiles.json`` (Poisson-Gaussian noise, variance ``a*x + b`` of raw
values normalised to [0, 1], per model and ISO), ``rawspeed/cameras.xml`` (LGPL-2; CFA,
black/white levels, the Adobe ``ColorMatrix`` XYZ->camera, and the EXIF Make/Model) and
``wb_presets.json`` (white-balance multipliers per preset). They are never committed: the
package is fetched like every other one (:mod:`harness.data.fetch`: ``apt-get download``,
``dpkg-deb -x``, into ``<cache>/packages/``).

darktable names cameras canonically ("Nikon", "D700"); cameras write EXIF differently
("NIKON CORPORATION", "NIKON D700"). ``cameras.xml`` links both: ``<Camera make model>`` is the
EXIF spelling and its ``<ID make model>`` the canonical one.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.api import ConfigError
from harness.data.fetch import cached_package, fetch_package

__all__ = ["DARKTABLE_FILES", "darktable_share", "find_darktable", "parse_cameras_xml",
           "parse_noise_profiles", "parse_wb_presets"]

DARKTABLE_FILES = ("noiseprofiles.json", "rawspeed/cameras.xml", "wb_presets.json")
_SHARE = Path("usr/share/darktable")
_COLOURS = {"RED": "R", "GREEN": "G", "BLUE": "B"}


def find_darktable(root: Path) -> Path | None:
    """The ``usr/share/darktable`` folder below ``root`` when all three files are there."""
    share = root / _SHARE
    return share if all((share / f).is_file() for f in DARKTABLE_FILES) else None


def darktable_share(fetch: bool = True) -> Path | None:
    """darktable's data folder in the fetched package; None when it was never fetched and
    ``fetch`` is false. Raises :class:`~harness.data.fetch.FetchError` when fetching fails."""
    root = fetch_package("deb", "darktable") if fetch else cached_package("deb", "darktable")
    if root is None:
        return None
    share = find_darktable(root)
    if share is None:
        raise ConfigError(f"the darktable package lacks {DARKTABLE_FILES}; camera data cannot be built")
    return share


def _cfa(camera: ET.Element) -> str | None:
    """The 2x2 Bayer layout, row-major, as seen after the sensor crop (its offset shifts the phase)."""
    cfa = camera.find("CFA")
    if cfa is None or cfa.get("width") != "2" or cfa.get("height") != "2":
        return None
    grid = {(int(c.get("x")), int(c.get("y"))): _COLOURS.get((c.text or "").strip()) for c in cfa.findall("Color")}
    crop = camera.find("Crop")
    dx = int(crop.get("x", 0)) % 2 if crop is not None else 0
    dy = int(crop.get("y", 0)) % 2 if crop is not None else 0
    layout = "".join(grid.get(((x + dx) % 2, (y + dy) % 2)) or "?" for y in (0, 1) for x in (0, 1))
    return layout if sorted(layout) == ["B", "G", "G", "R"] else None


def _matrix(camera: ET.Element) -> list[float] | None:
    m = camera.find("ColorMatrices/ColorMatrix")
    if m is None or m.get("planes") != "3":
        return None
    rows = sorted(m.findall("ColorMatrixRow"), key=lambda r: int(r.get("plane")))
    values = [float(v) / 10000.0 for r in rows for v in (r.text or "").split()]
    return values if len(values) == 9 else None


def _levels(camera: ET.Element) -> tuple[int, int] | None:
    sensors = camera.findall("Sensor")
    plain = [s for s in sensors if not s.get("iso_list") and not s.get("iso_min")] or sensors
    if not plain:
        return None
    black, white = int(plain[0].get("black", 0)), int(plain[0].get("white", 0))
    return (max(black, 0), white) if white > max(black, 0) + 255 else None


def parse_cameras_xml(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Canonical (make, model) -> EXIF make/model, CFA, colour matrix, black and white level.

    Only supported 2x2 RGB Bayer cameras with a 3-plane colour matrix are kept; of several
    modes of one camera the first complete one wins.
    """
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for cam in ET.parse(path).getroot().iter("Camera"):
        if cam.get("supported") == "no":
            continue
        ident = cam.find("ID")
        key = (ident.get("make"), ident.get("model")) if ident is not None else (cam.get("make"), cam.get("model"))
        cfa, matrix, levels = _cfa(cam), _matrix(cam), _levels(cam)
        if key in out or not (cfa and matrix and levels and key[0] and key[1]):
            continue
        out[key] = {"exif_make": cam.get("make").strip(), "exif_model": cam.get("model").strip(), "cfa": cfa,
                    "color_matrix": matrix, "black": levels[0], "white": levels[1]}
    return out


def parse_noise_profiles(path: Path) -> dict[tuple[str, str], list[tuple[int, list[float], list[float]]]]:
    """Canonical (make, model) -> [(iso, a[RGB], b[RGB]), ...] sorted by ISO, one profile per ISO."""
    out: dict[tuple[str, str], list] = {}
    for maker in json.loads(path.read_text())["noiseprofiles"]:
        for model in maker["models"]:
            by_iso: dict[int, tuple] = {}
            for p in model.get("profiles", []):
                iso, a, b = int(p["iso"]), p["a"], p["b"]
                if iso > 0 and len(a) == 3 and len(b) == 3 and min(a) > 0:
                    by_iso.setdefault(iso, (iso, [float(v) for v in a], [max(float(v), 1e-12) for v in b]))
            if by_iso:
                out[(maker["maker"], model["model"])] = [by_iso[k] for k in sorted(by_iso)]
    return out


def parse_wb_presets(path: Path) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Canonical (make, model) -> {preset name: [R, G, B] multipliers, G = 1}; untuned presets only."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for maker in json.loads(path.read_text())["wb_presets"]:
        for model in maker["models"]:
            presets: dict[str, list[float]] = {}
            for p in model.get("presets", []):
                ch = p.get("channels", [])
                if int(p.get("tuning", 0)) != 0 or len(ch) < 3 or not ch[1]:
                    continue
                presets.setdefault(p["name"], [ch[0] / ch[1], 1.0, ch[2] / ch[1]])
            if presets:
                out[(maker["maker"], model["model"])] = presets
    return out
