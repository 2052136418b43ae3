"""``harness.read_exif`` gives what ``exiftool -n`` gives, tag by tag.

exiftool prints its values as text: rationals rounded to 10 significant digits, other
floats to 15, lists joined by spaces, ``undef`` for 0/0, and (with ``-args``) control
characters as ``.``; read_exif keeps typed values, so each is printed by those rules
before the comparison, which is then an exact string equality. Make and Model are
compared through their raw strings (``MakeRaw``, ``ModelRaw``): the canonical ones are
normalised on purpose.
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational as R

from harness import read_exif
from harness.data.exif import EXIFTOOL_NAMES

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed "
                                    "(Debian: apt-get install libimage-exiftool-perl)")
#: the user's cache, read before the per-test isolated cache replaces the variable
_USER_CACHE = Path(os.environ.get("EXIFBENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "exifbench").expanduser()
_APEX = {"ShutterSpeedValue", "ApertureValue", "MaxApertureValue"}
_NORMALISED = {"Make", "Model"}


def exiftool_values(path: Path) -> dict[str, str]:
    """IFD0, Exif and Interop tags of ``exiftool -n -args -G1 -a`` (first occurrence wins)."""
    out = subprocess.run([EXIFTOOL, "-n", "-args", "-G1", "-a", str(path)], capture_output=True, text=True,
                         errors="replace", check=True).stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line[1:].partition("=")
        group, _, name = key.partition(":")
        if group in ("IFD0", "ExifIFD", "InteropIFD"):
            values.setdefault(name, value)
    return values


def as_exiftool_prints(value: Any, digits: int) -> str:
    if isinstance(value, list):
        return " ".join(as_exiftool_prints(v, digits) for v in value)
    if isinstance(value, float):
        if math.isnan(value):
            return "undef"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}g}"
    if isinstance(value, str):
        return "".join(c if c.isprintable() else "." for c in value)
    return str(value)


def compare(path: Path) -> tuple[int, list[str]]:
    """(values compared, mismatches) between read_exif and exiftool for one file."""
    ours, theirs = read_exif(path), exiftool_values(path)
    compared, bad = 0, []
    for name, value in ours.items():
        if name in _NORMALISED:
            continue
        tool_name = EXIFTOOL_NAMES.get(name, name)
        if tool_name not in theirs:
            bad.append(f"{path.name}: {name} is not reported by exiftool")
            continue
        compared += 1
        mine = as_exiftool_prints(value, 15 if name in _APEX else 10)
        if mine != theirs[tool_name]:
            bad.append(f"{path.name}: {name} = {mine!r}, exiftool {theirs[tool_name]!r}")
    return compared, bad


def _photo(path: Path, make: str, exposure: Fraction, bias: Fraction) -> Path:
    exif = Image.Exif()
    exif.update({0x010F: make, 0x0110: "EOS 5D Mark IV ", 0x0131: "exifbench test", 0x0112: 6,
                 0x011A: R(300, 1), 0x0128: 2})
    exif.get_ifd(0x8769).update({
        0x829A: R(exposure.numerator, exposure.denominator), 0x829D: R(28, 10), 0x8827: 400, 0x9204: R(bias.numerator, bias.denominator), 0x9209: 16, 0x9207: 5,
        0x920A: R(5000, 100), 0x9201: R(7965784, 1000000), 0x9202: R(297, 100),
        0x9205: R(3, 1), 0xA405: 50, 0xA402: 0, 0xA403: 1, 0xA406: 0, 0xA404: R(0, 0),
        0x9000: b"0231", 0x9101: b"\x01\x02\x03\x00", 0xA301: b"\x01", 0xA300: b"\x03",
        0xA432: (R(24, 1), R(105, 1), R(4, 1), R(4, 1)),
        0x9003: "2024:05:01 10:00:00", 0xA434: "EF24-105mm f/4L IS USM",
    })
    Image.new("RGB", (64, 48), (120, 90, 60)).save(path, format="JPEG", exif=exif.tobytes())
    return path


@needs_exiftool
@pytest.mark.parametrize("make,exposure,bias", [("Canon", Fraction(1, 250), Fraction(-1, 3)),
                                                ("NIKON CORPORATION ", Fraction(10, 3), Fraction(2, 3))])
def test_read_exif_equals_exiftool_on_photos_written_with_pillow(tmp_path, make, exposure, bias):
    compared, bad = compare(_photo(tmp_path / "p.jpg", make, exposure, bias))
    assert compared >= 25 and bad == []


def _zoo_photos() -> list[Path]:
    manifests = sorted((_USER_CACHE / "zoo").glob("v*-harmonised-*/manifest.csv"))
    if not manifests:
        return []
    with open(manifests[-1], newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "0" and r["has_exif_original"] == "True"]
    return [_USER_CACHE / r["origin"] for r in rows if (_USER_CACHE / r["origin"]).is_file()]


@needs_exiftool
def test_read_exif_equals_exiftool_on_every_real_exif_photo_of_the_zoo():
    photos = _zoo_photos()
    if not photos:
        pytest.skip("the zoo is not in the cache (run `exifbench data fetch zoo` once)")
    results = [compare(p) for p in photos]
    compared, bad = sum(c for c, _ in results), [m for _, b in results for m in b]
    print(f"zoo: {len(photos)} photos, {compared} values compared, {compared - len(bad)} equal")
    assert bad == [] and compared > 20 * len(photos)


def test_apex_tags_are_converted_as_exiftool_does(tmp_path):
    tags = read_exif(_photo(tmp_path / "p.jpg", "Canon", Fraction(1, 250), Fraction(-1, 3)))
    assert tags["ShutterSpeedValue"] == pytest.approx(2 ** -7.965784)
    assert tags["ApertureValue"] == pytest.approx(2 ** (2.97 / 2)) and tags["MaxApertureValue"] == pytest.approx(2 ** 1.5)
    assert tags["ComponentsConfiguration"] == [1, 2, 3, 0] and tags["SceneType"] == 1
    assert tags["Make"] == "Canon" and tags["ModelRaw"] == "EOS 5D Mark IV" and math.isnan(tags["DigitalZoomRatio"])
