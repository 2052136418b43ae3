"""EXIF reading: ``harness.read_exif(path) -> dict`` with canonical tag names and types.

Values follow ``exiftool -n``: rationals become floats, enumerations ints, strings are
stripped of padding and NULs. ``Make`` and ``Model`` are additionally normalised (see
:func:`normalise_make`, :func:`normalise_model`) since cameras spell them inconsistently;
their raw strings stay available as ``MakeRaw`` and ``ModelRaw``.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

__all__ = ["read_exif", "exif_from_image", "normalise_make", "normalise_model", "CANONICAL_TAGS"]

#: The tags the EXIF pretext task and the data checks use, under their canonical names.
CANONICAL_TAGS = (
    "Make", "Model", "Software", "DateTimeOriginal", "Orientation", "Flash", "MeteringMode",
    "ExposureMode", "ExposureProgram", "WhiteBalance", "SceneCaptureType", "FocalLength",
    "FocalLengthIn35mmFilm", "FNumber", "ExposureTime", "ISOSpeedRatings", "ExposureBiasValue",
    "MaxApertureValue", "LightSource", "Contrast", "Saturation", "Sharpness", "DigitalZoomRatio",
    "SubjectDistance", "BrightnessValue", "ShutterSpeedValue", "ApertureValue",
)
_NAMES = {**ExifTags.TAGS, 0x8827: "ISOSpeedRatings"}

_MAKE_ALIASES = {
    "NIKON CORPORATION": "Nikon", "NIKON": "Nikon", "EASTMAN KODAK COMPANY": "Kodak",
    "OLYMPUS IMAGING CORP.": "Olympus", "OLYMPUS CORPORATION": "Olympus", "OLYMPUS OPTICAL CO.,LTD": "Olympus",
    "SONY": "Sony", "CANON": "Canon", "FUJIFILM": "Fujifilm", "SAMSUNG": "Samsung",
    "SAMSUNG TECHWIN": "Samsung", "PENTAX CORPORATION": "Pentax", "PENTAX": "Pentax",
    "RICOH IMAGING COMPANY, LTD.": "Ricoh", "PANASONIC": "Panasonic", "LEICA CAMERA AG": "Leica",
    "MINOLTA CO., LTD.": "Minolta", "KONICA MINOLTA CAMERA, INC.": "Konica Minolta",
    "MOTOROLA": "Motorola", "XIAOMI": "Xiaomi", "APPLE": "Apple", "HUAWEI": "Huawei", "LG ELECTRONICS": "LG",
}


def _clean(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.rstrip(b"\x00").decode("latin-1", "replace").strip()
    if isinstance(value, str):
        return value.replace("\x00", "").strip()
    if isinstance(value, (tuple, list)):
        vals = [_clean(v) for v in value]
        return vals[0] if len(vals) == 1 else vals
    if isinstance(value, Fraction) or type(value).__name__ == "IFDRational":
        den = value.denominator
        return float("nan") if den == 0 else float(value.numerator) / float(den)
    return value


def normalise_make(make: str) -> str:
    key = make.strip().upper()
    if key in _MAKE_ALIASES:
        return _MAKE_ALIASES[key]
    return make.strip().split(" ")[0].capitalize() if make.strip() else ""


def normalise_model(model: str, make: str = "") -> str:
    """Strip the maker's name when the model repeats it ("Canon EOS 5D" -> "EOS 5D")."""
    model = " ".join(model.split())
    for prefix in {make.strip(), normalise_make(make)} - {""}:
        if model.upper().startswith(prefix.upper() + " "):
            model = model[len(prefix) + 1:]
    return model


def exif_from_image(img: Image.Image) -> dict[str, Any]:
    exif = img.getexif()
    raw: dict[int, Any] = dict(exif)
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop):
        try:
            sub = exif.get_ifd(ifd)
        except (KeyError, ValueError, TypeError, OSError):
            continue
        if ifd != ExifTags.IFD.GPSInfo:
            raw.update(sub)
    out: dict[str, Any] = {}
    for tag, value in raw.items():
        name = _NAMES.get(tag)
        if name is None or name in ("ExifOffset", "GPSInfo", "ExifInteroperabilityOffset", "MakerNote",
                                    "UserComment", "PrintImageMatching"):
            continue
        out[name] = _clean(value)
    if "Make" in out:
        out["MakeRaw"] = out["Make"]
        out["Make"] = normalise_make(str(out["Make"]))
    if "Model" in out:
        out["ModelRaw"] = out["Model"]
        out["Model"] = normalise_model(str(out["Model"]), str(out.get("MakeRaw", "")))
    return out


def read_exif(path: str | Path) -> dict[str, Any]:
    """The EXIF tags of an image file under canonical names; ``{}`` when it has none.

    Raises :class:`harness.api.DecodeError` when the file cannot be opened as an image.
    """
    from harness.api import DecodeError

    try:
        with Image.open(path) as img:
            return exif_from_image(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"cannot read EXIF ({str(exc)[:60]})", path) from exc
