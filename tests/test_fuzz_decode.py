"""Image decoding over mutated JPEG, PNG, WebP, GIF, TIFF and HEIC bytes (hypothesis).

Every mutated file is a decoded 8-bit RGB image or a :class:`DecodeError` with a reason;
nothing else escapes. Each file is decoded in one worker process with a memory cap
(``RLIMIT_AS``) and a time limit per file, so a hang or a memory blow-up fails the test
instead of stalling it. Headers that lie about the size (a PNG, GIF, TIFF or WebP claiming
up to 2**32 pixels a side over a few bytes of data) must be refused by the bomb guard.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import resource
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor

import pytest
from hypothesis import given, strategies as st
from PIL import Image

from harness.api import DecodeError
from harness.data.decode import HEIF_AVAILABLE, MAX_PIXELS, decode_bytes

SECONDS_PER_FILE = 20
MEMORY_CAP = 3 << 30  # bytes of address space in the worker: MAX_PIXELS of RGB is 384 MiB


def _seed(fmt: str) -> bytes:
    rng = __import__("numpy").random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype="uint8"))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "TIFF"] + (["HEIF"] if HEIF_AVAILABLE else [])
SEEDS = {fmt: _seed(fmt) for fmt in FORMATS}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _decode(data: bytes) -> str:
    """'ok WxH' or 'error: reason'; any other exception propagates to the test."""
    try:
        img = decode_bytes(data)
    except DecodeError as exc:
        return f"error: {exc}"
    assert img.mode == "RGB" and img.size[0] * img.size[1] <= MAX_PIXELS
    return f"ok {img.size[0]}x{img.size[1]}"


@pytest.fixture(scope="module")
def worker():
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_limit_memory) as pool:
        yield pool


def decode_in_worker(pool, data: bytes) -> str:
    return pool.submit(_decode, data).result(timeout=SECONDS_PER_FILE)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(FORMATS))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "dup"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]) | st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 32))]
        elif kind == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


@given(data=mutated())
def test_a_mutated_file_is_an_image_or_a_reason(worker, data):
    outcome = decode_in_worker(worker, data)
    assert outcome.startswith("ok ") or outcome.startswith("error: ") and len(outcome) > 8


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body
                                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(SEEDS["GIF"])
    data[6:10] = struct.pack("<HH", width, height)
    at = data.index(b"\x2c")  # the image descriptor
    data[at + 5:at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _tiff_claiming(width: int, height: int) -> bytes:
    img = Image.new("RGB", (4, 4))
    buf = io.BytesIO()
    img.save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    for tag, value in ((256, width), (257, height)):
        entry = data.index(struct.pack("<H", tag), 8)
        typ = struct.unpack_from("<H", data, entry + 2)[0]
        if typ == 3 and value < 65536:
            struct.pack_into("<HHIHH", data, entry, tag, 3, 1, value, 0)
        else:
            struct.pack_into("<HHII", data, entry, tag, 4, 1, value)
    return bytes(data)


def _webp_claiming(width: int, height: int) -> bytes:
    data = bytearray(SEEDS["WEBP"])
    at = data.index(b"VP8")
    if data[at:at + 4] == b"VP8 ":  # lossy: 14-bit sizes after the start code
        struct.pack_into("<HH", data, at + 14, min(width, 0x3FFF), min(height, 0x3FFF))
    return bytes(data)


@given(fmt=st.sampled_from(["png", "gif", "tiff", "webp"]),
       width=st.sampled_from([2**14, 2**16 - 1, 2**20, 2**31 - 1, 2**32 - 1]) | st.integers(1, 2**32 - 1),
       height=st.sampled_from([2**14, 2**16 - 1, 2**20, 2**31 - 1]) | st.integers(1, 2**32 - 1))
def test_a_header_that_lies_about_the_size_is_refused_or_decoded_within_the_cap(worker, fmt, width, height):
    lim = {"png": 2**31 - 1, "gif": 2**16 - 1, "tiff": 2**32 - 1, "webp": 0x3FFF}[fmt]
    width, height = min(width, lim), min(height, lim)
    data = {"png": _png_claiming, "gif": _gif_claiming, "tiff": _tiff_claiming, "webp": _webp_claiming}[fmt](width, height)
    outcome = decode_in_worker(worker, data)
    assert outcome.startswith("ok ") or outcome.startswith("error: ")


def test_a_png_claiming_a_bomb_is_refused_from_its_header(worker):
    assert "too large" in decode_in_worker(worker, _png_claiming(2**20, 2**20))
