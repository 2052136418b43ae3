"""The camera database: what the simulator needs to know about each camera model.

Built at run time from darktable's data files (see :mod:`.darktable`) and the lensfun
database bundled in the ``lensfunpy`` wheel (https://github.com/letmaik/lensfunpy, lensfun
data CC-BY-SA 3.0): EXIF Make/Model as the camera writes them, CFA layout, colour matrix,
black/white levels, noise parameters per ISO, white-balance presets, crop factor and
compatible lenses. The result is cached as JSON in the cache folder; only cameras present in
all of cameras.xml (2x2 Bayer), noiseprofiles.json and lensfun are kept.

Each model also gets an in-camera processing "style" (JPEG quality and chroma subsampling,
demosaicing algorithm, sharpening, contrast, saturation), drawn deterministically from a
hash of its EXIF name: real cameras differ in these, and they are what makes two models'
JPEGs distinguishable beyond their sensors.

When the darktable package cannot be fetched, :func:`load_cameras` falls back to a handful
of generic cameras (Make ``Generic``), with a warning; their numbers are typical of real
sensors but belong to no real model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import ConfigError
from harness.cache_folder import cache_dir
from harness.data.fetch import FetchError
from harness.files import atomic_write_text

__all__ = ["Lens", "Camera", "load_cameras", "build_database", "fallback_cameras", "camera_style",
           "DATABASE_VERSION"]

log = logging.getLogger(__name__)
DATABASE_VERSION = 1
DEMOSAIC_METHODS = ("bilinear", "malvar2004", "menon2007")


@dataclass(frozen=True)
class Lens:
    model: str
    min_focal: float
    max_focal: float
    min_fnumber: float  # widest aperture (smallest f-number); at max_focal for variable zooms
    max_fnumber: float
    crop_factor: float  # of the camera the lens was calibrated on (scales vignetting radius)
    #: lensfun "pa" vignetting calibrations: (focal, f-number, k1, k2, k3)
    vignetting: tuple[tuple[float, float, float, float, float], ...] = ()


@dataclass(frozen=True)
class Camera:
    make: str  # EXIF spelling, e.g. "NIKON CORPORATION"
    model: str  # EXIF spelling, e.g. "NIKON D700"
    canonical_make: str
    canonical_model: str
    cfa: str  # 2x2 Bayer layout, row-major, e.g. "RGGB"
    color_matrix: tuple[float, ...]  # 3x3 XYZ(D65) -> camera RGB, row-major (Adobe ColorMatrix)
    black: int
    white: int
    #: Poisson-Gaussian noise of raw values in [0, 1]: variance = a*x + b, per R, G, B
    noise: tuple[tuple[int, tuple[float, float, float], tuple[float, float, float]], ...]
    wb_presets: tuple[tuple[str, tuple[float, float, float]], ...]
    crop_factor: float
    lenses: tuple[Lens, ...]
    jpeg_quality: int
    subsampling: int  # Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    demosaic: str
    sharpen_amount: float
    sharpen_radius: float
    contrast: float
    saturation: float
    source: str  # "darktable+lensfun" or "builtin-fallback"

    @property
    def isos(self) -> tuple[int, ...]:
        return tuple(n[0] for n in self.noise)

    @property
    def name(self) -> str:
        return f"{self.make} {self.model}"


def _hash_unit(text: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def camera_style(make: str, model: str) -> dict[str, Any]:
    """The in-camera processing of a model, a deterministic function of its EXIF name."""
    name = f"{make}|{model}"
    u = lambda salt: _hash_unit(name, salt)  # noqa: E731
    sub = u("subsampling")
    return {
        "jpeg_quality": 86 + int(u("quality") * 12),  # 86..97, the range of camera JPEGs
        "subsampling": 1 if sub < 0.5 else (2 if sub < 0.9 else 0),  # 4:2:2 is the DSLR default
        "demosaic": DEMOSAIC_METHODS[int(u("demosaic") * len(DEMOSAIC_METHODS))],
        "sharpen_amount": round(0.2 + 0.8 * u("sharpen"), 3),
        "sharpen_radius": round(0.6 + 0.8 * u("radius"), 3),
        "contrast": round(0.1 + 0.4 * u("contrast"), 3),
        "saturation": round(0.95 + 0.3 * u("saturation"), 3),
    }


def _camera_from_dict(d: dict[str, Any]) -> Camera:
    d = dict(d)
    d["lenses"] = tuple(Lens(**{**lens, "vignetting": tuple(tuple(v) for v in lens["vignetting"])})
                        for lens in d["lenses"])
    d["color_matrix"] = tuple(d["color_matrix"])
    d["noise"] = tuple((int(i), tuple(a), tuple(b)) for i, a, b in d["noise"])
    d["wb_presets"] = tuple((n, tuple(m)) for n, m in d["wb_presets"])
    return Camera(**d)


def _generic(model: str, cfa: str, matrix: tuple[float, ...], white: int, crop: float, lens: Lens,
             noise_scale: float) -> Camera:
    # Noise grows with ISO as in measured profiles: shot noise ~ gain, read noise ~ gain^2.
    isos = (100, 200, 400, 800, 1600, 3200, 6400, 12800)
    noise = tuple((iso, tuple(noise_scale * 4e-6 * iso / 100 * k for k in (1.1, 1.0, 1.2)),
                   tuple(noise_scale * 2e-8 * (iso / 100) ** 2 + 1e-8 for _ in range(3)))
                  for iso in isos)
    make = "Generic"
    return Camera(make=make, model=model, canonical_make=make, canonical_model=model, cfa=cfa,
                  color_matrix=matrix, black=0 if white < 5000 else 512, white=white, noise=noise,
                  wb_presets=(), crop_factor=crop, lenses=(lens,), source="builtin-fallback",
                  **camera_style(make, model))


def fallback_cameras() -> list[Camera]:
    """Five generic cameras (Make ``Generic``): used when darktable's data cannot be fetched."""
    canon_like = (0.6602, -0.0841, -0.0939, -0.4472, 1.2458, 0.2247, -0.0975, 0.2039, 0.6148)
    nikon_like = (0.8139, -0.2171, -0.0663, -0.8747, 1.6541, 0.2295, -0.1925, 0.2008, 0.8093)
    sony_like = (0.5838, -0.1430, -0.0246, -0.3497, 1.1477, 0.2297, -0.0748, 0.1885, 0.5778)
    phone_like = (0.7128, -0.1547, -0.0656, -0.5266, 1.3311, 0.2150, -0.1042, 0.2255, 0.6402)
    kit = Lens("Generic 18-55mm f/3.5-5.6", 18, 55, 3.5, 22, 1.5)
    full = Lens("Generic 24-105mm f/4", 24, 105, 4.0, 22, 1.0)
    prime = Lens("Generic 35mm f/1.8", 35, 35, 1.8, 16, 1.5)
    phone = Lens("Generic 4.3mm f/1.9", 4.3, 4.3, 1.9, 1.9, 6.0)
    compact = Lens("Generic 5-25mm f/2.8-5.9", 5.0, 25.0, 2.8, 8.0, 5.6)
    return [
        _generic("APS-C RGGB (simulated fallback)", "RGGB", canon_like, 16383, 1.6, kit, 1.0),
        _generic("Full-frame GBRG (simulated fallback)", "GBRG", nikon_like, 16383, 1.0, full, 0.6),
        _generic("APS-C BGGR (simulated fallback)", "BGGR", sony_like, 4095, 1.5, prime, 1.3),
        _generic("Phone GRBG (simulated fallback)", "GRBG", phone_like, 1023, 6.0, phone, 4.0),
        _generic("Compact RGGB (simulated fallback)", "RGGB", phone_like, 4095, 5.6, compact, 2.5),
    ]


def _lens_record(lens: Any, camera_crop: float) -> Lens | None:
    if not lens.min_focal or lens.type.name not in ("RECTILINEAR", "UNKNOWN"):
        return None
    compact = camera_crop >= 2.0
    widest = float(lens.min_aperture or (2.8 if compact else 3.5))
    narrowest = float(lens.max_aperture or (8.0 if compact else 22.0))
    vig = sorted({(round(v.focal, 2), round(v.aperture, 2), *(round(t, 4) for t in v.terms[:3]))
                  for v in (lens.calib_vignetting or []) if v.model.name == "PA" and len(v.terms) >= 3})
    return Lens(model=lens.model, min_focal=float(lens.min_focal), max_focal=float(lens.max_focal or lens.min_focal),
                min_fnumber=round(widest, 2), max_fnumber=round(max(narrowest, widest), 2),
                crop_factor=float(lens.crop_factor or camera_crop), vignetting=tuple(vig[:8]))


def _pick_lenses(lenses: list[Lens], make: str, limit: int = 8) -> tuple[Lens, ...]:
    """Up to ``limit`` lenses, the maker's own first, spread over focal lengths."""
    brand = make.split()[0].lower()
    own = sorted((l for l in lenses if l.model.lower().startswith(brand)), key=lambda l: (l.min_focal, l.model))
    other = sorted((l for l in lenses if l not in own), key=lambda l: (l.min_focal, l.model))
    pool = own if len(own) >= limit // 2 else own + other
    if len(pool) <= limit:
        return tuple(pool)
    step = len(pool) / limit
    return tuple(pool[int(i * step)] for i in range(limit))


def _lensfun_info(db: Any, make: str, model: str) -> tuple[float, tuple[Lens, ...]] | None:
    found = db.find_cameras(make, model)
    squash = lambda s: s.lower().replace(" ", "")  # noqa: E731
    if not found or squash(found[0].model) != squash(model):
        return None
    cam = found[0]
    crop = float(cam.crop_factor)
    lenses = [r for r in (_lens_record(l, crop) for l in db.find_lenses(cam)) if r]
    return (crop, _pick_lenses(lenses, make)) if lenses else None


def build_database(darktable_share: Path) -> list[Camera]:
    """Join darktable's three files and lensfun into :class:`Camera` records."""
    import lensfunpy

    from harness.data.camera import darktable as dt

    xml = dt.parse_cameras_xml(darktable_share / "rawspeed" / "cameras.xml")
    noise = dt.parse_noise_profiles(darktable_share / "noiseprofiles.json")
    wb = dt.parse_wb_presets(darktable_share / "wb_presets.json")
    db = lensfunpy.Database()
    cameras = []
    for key in sorted(set(xml) & set(noise)):
        entry = xml[key]
        optics = _lensfun_info(db, entry["exif_make"], entry["exif_model"])
        if optics is None:
            continue
        cameras.append(Camera(
            make=entry["exif_make"], model=entry["exif_model"], canonical_make=key[0], canonical_model=key[1],
            cfa=entry["cfa"], color_matrix=tuple(entry["color_matrix"]), black=entry["black"], white=entry["white"],
            noise=tuple((iso, tuple(a), tuple(b)) for iso, a, b in noise[key]),
            wb_presets=tuple((n, tuple(m)) for n, m in sorted(wb.get(key, {}).items())),
            crop_factor=optics[0], lenses=optics[1], source="darktable+lensfun",
            **camera_style(entry["exif_make"], entry["exif_model"])))
    return cameras


def _database_path() -> Path:
    return cache_dir() / "camera" / f"cameras-v{DATABASE_VERSION}.json"


def save_database(cameras: list[Camera], path: Path) -> None:
    atomic_write_text(path, json.dumps({"version": DATABASE_VERSION,
                                        "cameras": [dataclasses.asdict(c) for c in cameras]}, separators=(",", ":")))


def read_database(path: Path) -> list[Camera]:
    data = json.loads(path.read_text())
    if data.get("version") != DATABASE_VERSION:
        raise ConfigError(f"camera database {path} has version {data.get('version')}; delete it to rebuild")
    return [_camera_from_dict(c) for c in data["cameras"]]


def load_cameras(*, fetch: bool = True, fallback: bool = True) -> list[Camera]:
    """The camera database: from the cache, else built from darktable (fetched if ``fetch``).

    When that fails and ``fallback`` is true, the generic cameras of :func:`fallback_cameras`
    are returned with a warning; otherwise the error is raised.
    """
    from harness.data.camera import darktable as dt

    path = _database_path()
    if path.is_file():
        return read_database(path)
    try:
        share = dt.darktable_share(fetch)
        if share is None:
            raise ConfigError("darktable's data is not in the cache and fetching is off")
        cameras = build_database(share)
    except (ConfigError, FetchError, ImportError, OSError) as exc:
        if not fallback:
            raise
        warnings.warn(f"real camera data unavailable ({exc}); using {len(fallback_cameras())} generic "
                      "fallback cameras (Make 'Generic'), not real models", RuntimeWarning, stacklevel=2)
        return fallback_cameras()
    save_database(cameras, path)
    log.info("camera database: %d models from darktable + lensfun, cached at %s", len(cameras), path)
    return cameras
