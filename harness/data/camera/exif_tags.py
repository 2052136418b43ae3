"""EXIF for a simulated shot, written with Pillow so that ``harness.read_exif`` reads it back.

Rationals are written as exact fractions (``1/250``, ``28/10``): ``read_exif`` turns them into
``numerator / denominator``, the same float as the sampled :class:`fractions.Fraction`.
``Software`` says that the photograph is simulated. ``MaxApertureValue`` is the lens's widest
aperture at the shot's focal length, in APEX units (``2 log2 N``, to 1/100).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from harness.data.camera.database import Camera
from harness.data.camera.shot import Shot, _widest
from harness.data.exif import normalise_make, normalise_model

__all__ = ["SOFTWARE", "build_exif", "expected_exif", "max_aperture_apex"]

SOFTWARE = "exifbench camera simulator (simulated photograph)"
_EXIF_IFD = 0x8769


def _rational(value: Fraction) -> IFDRational:
    return IFDRational(value.numerator, value.denominator)


def max_aperture_apex(shot: Shot) -> Fraction:
    """MaxApertureValue: the widest f-number at the shot's focal length, in APEX units."""
    return Fraction(round(200 * math.log2(_widest(shot.lens, float(shot.focal_length)))), 100)


def build_exif(camera: Camera, shot: Shot) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = camera.make
    exif[0x0110] = camera.model
    exif[0x0131] = SOFTWARE
    exif[0x0112] = 1
    ifd = exif.get_ifd(_EXIF_IFD)
    ifd.update({
        0x829A: _rational(shot.exposure_time), 0x829D: _rational(shot.fnumber), 0x8822: shot.exposure_program,
        0x8827: shot.iso, 0x9003: shot.datetime, 0x9204: _rational(shot.exposure_bias),
        0x9205: _rational(max_aperture_apex(shot)), 0x9207: shot.metering_mode, 0x9209: shot.flash, 0x920A: _rational(shot.focal_length),
        0xA402: shot.exposure_mode, 0xA403: shot.white_balance, 0xA405: shot.focal_35mm,
        0xA406: shot.scene_capture_type, 0xA434: shot.lens.model,
    })
    return exif.tobytes()


def expected_exif(camera: Camera, shot: Shot) -> dict[str, Any]:
    """The tags as ``harness.read_exif`` returns them for a photo written by :func:`build_exif`."""
    return {
        "Make": normalise_make(camera.make), "Model": normalise_model(camera.model, camera.make),
        "Software": SOFTWARE, "DateTimeOriginal": shot.datetime, "LensModel": shot.lens.model,
        "FocalLength": float(shot.focal_length), "FNumber": float(shot.fnumber),
        "ExposureTime": float(shot.exposure_time), "ISOSpeedRatings": shot.iso,
        "ExposureBiasValue": float(shot.exposure_bias), "Flash": shot.flash, "MeteringMode": shot.metering_mode,
        "ExposureMode": shot.exposure_mode, "ExposureProgram": shot.exposure_program,
        "WhiteBalance": shot.white_balance, "SceneCaptureType": shot.scene_capture_type,
        "FocalLengthIn35mmFilm": shot.focal_35mm, "MaxApertureValue": 2.0 ** (float(max_aperture_apex(shot)) / 2),
    }
