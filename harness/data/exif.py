"""EXIF reading: ``harness.read_exif(path) -> dict`` with canonical tag names and types.

Values follow ``exiftool -n`` (which applies ExifTool's value conversions, not its print
conversions): rationals become floats (``0/0`` is NaN, ``n/0`` +infinity whatever the sign of
``n``: exiftool's ``undef`` and ``inf``), enumerations ints, strings end at their first NUL and lose trailing blanks (and the whitespace ExifTool trims, ``_TRIM``),
``ShutterSpeedValue`` is in seconds (``2**-v``) and ``ApertureValue``/``MaxApertureValue``
are f-numbers (``2**(v/2)``; ``inf`` where that overflows a double, as in ExifTool; an
ApertureValue of ``0/0`` is left out, where ExifTool computes 1 from ``undef``; ShutterSpeedValue
and ExposureBiasValue are read as signed rationals whatever type the file declares, as in ExifTool), the three byte-coded UNDEFINED tags (ComponentsConfiguration,
FileSource, SceneType) become ints, the version tags strings, and other binary blobs
(MakerNote, CFAPattern, ...) are left out. ``EXIFTOOL_NAMES`` maps the few canonical names
that ExifTool spells differently. exiftool prints rationals rounded to 10 significant
digits; ``read_exif`` keeps the full double. ``Make`` and ``Model`` are additionally normalised (see
:func:`normalise_make`, :func:`normalise_model`) since cameras spell them inconsistently;
their raw strings stay available as ``MakeRaw`` and ``ModelRaw``.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

__all__ = ["read_exif", "exif_from_image", "normalise_make", "normalise_model", "CANONICAL_TAGS", "EXIFTOOL_NAMES"]

#: The tags the EXIF pretext task and the data checks use, under their canonical names.
CANONICAL_TAGS = (
    "Make", "Model", "Software", "DateTimeOriginal", "Orientation", "Flash", "MeteringMode",
    "ExposureMode", "ExposureProgram", "WhiteBalance", "SceneCaptureType", "FocalLength",
    "FocalLengthIn35mmFilm", "FNumber", "ExposureTime", "ISOSpeedRatings", "ExposureBiasValue",
    "MaxApertureValue", "LightSource", "Contrast", "Saturation", "Sharpness", "DigitalZoomRatio",
    "SubjectDistance", "BrightnessValue", "ShutterSpeedValue", "ApertureValue",
)
_NAMES = {**ExifTags.TAGS, 0x8827: "ISOSpeedRatings"}
#: canonical (Pillow) name -> ExifTool's name, where they differ
EXIFTOOL_NAMES = {
    "ISOSpeedRatings": "ISO", "ExposureBiasValue": "ExposureCompensation", "DateTime": "ModifyDate",
    "DateTimeDigitized": "CreateDate", "FocalLengthIn35mmFilm": "FocalLengthIn35mmFormat",
    "FlashPixVersion": "FlashpixVersion", "SubsecTime": "SubSecTime", "SubsecTimeOriginal": "SubSecTimeOriginal",
    "SubsecTimeDigitized": "SubSecTimeDigitized", "RelatedImageLength": "RelatedImageHeight",
    "ImageLength": "ImageHeight", "LensSpecification": "LensInfo", "SubjectArea": "SubjectArea",
    "MakeRaw": "Make", "ModelRaw": "Model",
}
# 0x9214 is SubjectArea (Pillow's table reuses the name of 0xA214, SubjectLocation)
_NAMES[0x9214] = "SubjectArea"
_BYTE_CODED = {0x9101, 0xA300, 0xA301}          # ComponentsConfiguration, FileSource, SceneType
_VERSION_TAGS = {0x9000, 0xA000, 0x0002}        # ExifVersion, FlashpixVersion, InteropVersion
_NAMES[0x0002] = "InteropVersion"
#: the trailing characters trimmed from a string tag: Perl's ``\s``, which ExifTool trims from
#: Make, Model, Software and Artist; blanks from every other one (``exiftool -args`` prints
#: none, and ExifTool trims them from the SubSecTime tags)
_TRIM = dict.fromkeys((0x010F, 0x0110, 0x0131, 0x013B), " \t\n\r\f\v")
_SIGNED = {0x9201, 0x9204}  # ShutterSpeedValue, ExposureBiasValue: ExifTool reads them as signed rationals


def _pow2(x: float) -> float:
    """``2**x`` as Perl computes it: ``inf`` past the largest double (Python raises)."""
    try:
        return 2.0 ** x
    except OverflowError:
        return math.inf


_APEX = {  # ExifTool's ValueConv of the APEX tags (exiftool -n applies it)
    0x9201: lambda v: _pow2(-v) if abs(v) < 100 else 0.0,   # ShutterSpeedValue -> seconds (0 when NaN)
    0x9202: lambda v: _pow2(v / 2.0),                      # ApertureValue -> f-number
    0x9205: lambda v: _pow2(v / 2.0),                      # MaxApertureValue -> f-number
}

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
        return value.split(b"\x00", 1)[0].decode("latin-1", "replace")
    if isinstance(value, str):
        return value.split("\x00", 1)[0]
    if isinstance(value, (tuple, list)):
        vals = [_clean(v) for v in value]
        return vals[0] if len(vals) == 1 else vals
    if isinstance(value, Fraction) or type(value).__name__ == "IFDRational":
        return _rational(value.numerator, value.denominator)
    return value


def _rational(num: int, den: int) -> float:
    if den == 0:  # ExifTool: 'undef' for 0/0, 'inf' for n/0 whatever the sign of n
        return math.nan if num == 0 else math.inf
    return num / den


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
    raw: dict[int, Any] = {}
    for tag in list(exif):
        try:
            raw[tag] = exif[tag]
        except (KeyError, ValueError, TypeError):  # Pillow lists some malformed tags it cannot give
            continue
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
        value = _typed(tag, value)
        if value is not None:
            out[name] = value
    if "Make" in out:
        out["MakeRaw"] = out["Make"]
        out["Make"] = normalise_make(str(out["Make"]))
    if "Model" in out:
        out["ModelRaw"] = out["Model"]
        out["Model"] = normalise_model(str(out["Model"]), str(out.get("MakeRaw", "")))
    return out


def _typed(tag: int, value: Any) -> Any:
    """One tag's value as ``exiftool -n`` gives it; None for a binary blob it cannot type."""
    if isinstance(value, bytes):
        if tag in _BYTE_CODED:
            if tag == 0x9101:  # ExifTool reads ComponentsConfiguration as int8u
                return value[0] if len(value) == 1 else list(value)
            return value[0] if len(value) == 1 else None  # longer: ExifTool prints it as a string
        if tag in _VERSION_TAGS:  # ExifTool strips trailing NULs only; an empty or NUL-cut version is left out
            text = value.rstrip(b"\0")  # (one byte: ExifTool prints it as a number)
            return text.decode("latin-1") if len(value) > 1 and text and b"\0" not in text else None
        return None
    if tag in _SIGNED:
        value = _as_signed(value)
    value = _clean(value)
    if isinstance(value, str):
        return value.rstrip(_TRIM.get(tag, " "))
    if tag in _APEX and isinstance(value, (int, float)):
        if tag != 0x9201 and math.isnan(value):
            return None  # 0/0: ExifTool computes 2**(undef/2) = 1, a number the file never held
        return _APEX[tag](float(f"{value:.10g}"))  # ExifTool rounds the rational first
    return value


def _as_signed(value: Any) -> Any:
    """A rational read as unsigned (a numerator or denominator >= 2**31) read again as signed,
    as ExifTool reads the tags it declares ``rational64s`` whatever type the file gives."""
    if type(value).__name__ != "IFDRational" or max(value.numerator, value.denominator) < 2**31:
        return value
    num, den = (v - 2**32 if v >= 2**31 else v for v in (value.numerator, value.denominator))
    return _rational(num, den)


def read_exif(path: str | Path) -> dict[str, Any]:
    """The EXIF tags of an image file (or archive member, :mod:`harness.data.sources`) under
    canonical names; ``{}`` when it has none.

    Raises :class:`harness.api.DecodeError` when the file cannot be opened as an image.
    """
    from harness.api import DecodeError
    from harness.data.sources import open_binary

    try:
        with open_binary(path) as f, Image.open(f) as img:
            return exif_from_image(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"cannot read EXIF ({str(exc)[:60]})", path) from exc
