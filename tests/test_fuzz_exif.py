"""``read_exif`` over generated EXIF blocks (hypothesis; blocks from ``tests/exif_blocks.py``).

Any block (every field type and invalid ones, wrong counts, values past the end, truncated
IFDs, loops between IFD offsets): read_exif returns typed values and never raises. Sound
blocks (each tag in its own type or that type's signed twin, counts right, offsets valid;
extreme and zero numerators and denominators, negative values, any bytes in strings):
every value read_exif gives is the one ``exiftool -n`` gives, or the tag is absent, never a
different number. Example counts come from the hypothesis profile (tests/conftest.py).
"""
from __future__ import annotations

import math
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from hypothesis import example, given

from harness import read_exif
from harness.data.exif import EXIFTOOL_NAMES
from tests.exif_blocks import Block, Entry, blocks, jpeg_with_exif

EXIFTOOL = shutil.which("exiftool")
_APEX = {"ShutterSpeedValue", "ApertureValue", "MaxApertureValue"}
_NORMALISED = {"Make", "Model"}
_GROUPS = ("IFD0", "ExifIFD", "InteropIFD")


def _read(tmp: Path, tiff: bytes) -> tuple[Path, dict]:
    path = tmp / "fuzz.jpg"
    path.write_bytes(jpeg_with_exif(tiff))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about every broken entry it skips
        return path, read_exif(path)


def _typed(value) -> bool:
    if isinstance(value, list):
        return all(_typed(v) for v in value)
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


@given(block=blocks())
@example(block=Block("<", (Entry(262, 11, 2, b""),), (Entry(271, 2, 0, b""),), "ok", "none", None))  # found by the long fuzz: Pillow's KeyError
def test_read_exif_never_raises_and_gives_typed_values(tmp_path_factory, block):
    _, tags = _read(tmp_path_factory.getbasetemp(), block.tiff())
    assert all(_typed(v) for v in tags.values()), tags


class ExifTool:
    """One ``exiftool -stay_open`` process for many files (starting Perl costs ~0.2 s)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([EXIFTOOL, "-stay_open", "True", "-@", "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def values(self, path: Path) -> dict[str, str]:
        """IFD0, Exif and Interop tags of ``exiftool -n -args -G1 -a`` (first occurrence wins),
        bytes read as Latin-1 as read_exif reads them."""
        args = ["-n", "-args", "-G1", "-a", "-charset", "exif=Latin", "-charset", "Latin", str(path), "-execute"]
        self.proc.stdin.write(("\n".join(args) + "\n").encode())
        self.proc.stdin.flush()
        out: dict[str, str] = {}
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("latin-1").rstrip("\n")
            if line == "{ready}":
                return out
            key, _, value = line[1:].partition("=")
            group, _, name = key.partition(":")
            if group in _GROUPS:
                out.setdefault(name, value)
        raise RuntimeError("exiftool stopped")

    def close(self) -> None:
        self.proc.communicate(b"-stay_open\nFalse\n", timeout=30)


@pytest.fixture(scope="module")
def exiftool():
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed (Debian: apt-get install libimage-exiftool-perl)")
    tool = ExifTool()
    yield tool
    tool.close()


def as_exiftool_prints(value, apex: bool) -> str:
    """A read_exif value printed as ``exiftool -n -args`` prints it: rationals to 10
    significant digits, APEX results (Perl numbers) to 15 with ``Inf``; ASCII control
    characters as ``.`` and without trailing blanks (which ``-args`` drops from every value)."""
    if isinstance(value, list):
        return " ".join(as_exiftool_prints(v, apex) for v in value)
    if isinstance(value, float):
        if math.isnan(value):
            return "undef"
        if math.isinf(value):
            return ("Inf" if apex else "inf") if value > 0 else "-inf"
        return f"{value:.{15 if apex else 10}g}"
    if isinstance(value, str):
        return "".join("." if ord(c) < 32 or ord(c) == 127 else c for c in value).rstrip(" ")  # -args trims
    return str(value)


def test_as_exiftool_prints_catches_a_wrong_number():
    assert as_exiftool_prints(2.5, False) != "2.4" and as_exiftool_prints(math.inf, True) == "Inf"


@given(block=blocks(sound=True))
def test_read_exif_gives_what_exiftool_gives_or_nothing(tmp_path_factory, exiftool, block):
    path, ours = _read(tmp_path_factory.getbasetemp(), block.tiff())
    theirs = exiftool.values(path)
    wrong = []
    for name, value in ours.items():
        tool_name = EXIFTOOL_NAMES.get(name, name)
        if name in _NORMALISED or tool_name not in theirs:
            continue  # normalised on purpose / absent from exiftool's output (checked below)
        if as_exiftool_prints(value, name in _APEX) != theirs[tool_name]:
            wrong.append(f"{name}: read_exif {value!r}, exiftool {theirs[tool_name]!r}")
    missing = [n for n in ours if n not in _NORMALISED and EXIFTOOL_NAMES.get(n, n) not in theirs]
    assert wrong == [] and missing == [], (wrong, missing)


def test_an_apex_value_past_a_double_is_inf_as_exiftool_gives(tmp_path):
    """A camera's ApertureValue of 3000/1 overflowed 2**(v/2) and cost the photo its EXIF."""
    import struct

    entries = tuple(Entry(t, 10, 1, struct.pack("<ii", 3000, 1)) for t in (0x9201, 0x9202, 0x9205))
    _, tags = _read(tmp_path, Block("<", (), entries, "ok", "none", None).tiff())
    assert tags["ApertureValue"] == math.inf and tags["MaxApertureValue"] == math.inf
    assert tags["ShutterSpeedValue"] == 0.0
