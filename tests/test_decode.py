"""Defensive decoding: each awkward kind of file has exactly one documented outcome.

``AWKWARD`` (kind -> maker) is also the recipe of the awkward corpus in test_awkward.py.
"""
from __future__ import annotations

import io
import struct
import zlib
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.api import DecodeError
from harness.data import decode
from harness.data.decode import MAX_PIXELS, decode_bytes

#: a maker returns (file suffix, bytes); rng gives each file its own content
Maker = Callable[[np.random.Generator], tuple[str, bytes]]


def _rgb(rng: np.random.Generator, w: int = 48, h: int = 40) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _jpeg(rng) -> bytes:
    return _save(_rgb(rng), "JPEG", quality=90)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(rng) -> bytes:
    """A PNG whose header claims 40000 x 40000 pixels (1.6 Gpx) with almost no data."""
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", row) + _png_chunk(b"IEND", b"")


def _corrupt_jpeg(rng) -> bytes:
    data = bytearray(_jpeg(rng))
    start = data.index(b"\xff\xda")  # scrambled start-of-scan header
    data[start + 2:start + 12] = b"\xff" * 10
    return bytes(data)


def _rotated(rng) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(_rgb(rng), "JPEG", exif=exif.tobytes())


def _animated(rng) -> bytes:
    frames = [_rgb(rng).convert("P") for _ in range(3)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def _grey16(rng) -> bytes:
    return _save(Image.fromarray(rng.integers(0, 65536, (40, 48), dtype=np.uint16)), "PNG")


def _rgb16(rng) -> bytes:
    ok, enc = cv2.imencode(".png", rng.integers(0, 65536, (40, 48, 3), dtype=np.uint16))
    return enc.tobytes()


def _heic(rng) -> bytes:
    pytest.importorskip("pillow_heif")
    return _save(_rgb(rng), "HEIF", quality=90)


AWKWARD: dict[str, tuple[str, Maker]] = {
    # kind: (outcome, maker); outcome "ok" = decoded to RGB, else the start of the reason
    "zero-byte": ("empty file", lambda rng: (".jpg", b"")),
    "non-image": ("not an image", lambda rng: (".jpg", b"<html><body>403 Forbidden</body></html>")),
    "truncated": ("corrupt or truncated", lambda rng: (".jpg", _jpeg(rng)[:300])),
    "corrupt": ("corrupt or truncated", lambda rng: (".jpg", _corrupt_jpeg(rng))),
    "bomb": ("image too large", lambda rng: (".png", _bomb_png(rng))),
    "wrong-name": ("ok", lambda rng: (".jpg", _save(_rgb(rng), "PNG"))),
    "cmyk": ("ok", lambda rng: (".jpg", _save(_rgb(rng).convert("CMYK"), "JPEG"))),
    "palette": ("ok", lambda rng: (".png", _save(_rgb(rng).convert("P"), "PNG"))),
    "palette-transparent": ("ok", lambda rng: (".gif", _save(_rgb(rng).convert("P"), "GIF", transparency=0))),
    "grey": ("ok", lambda rng: (".png", _save(_rgb(rng).convert("L"), "PNG"))),
    "grey-alpha": ("ok", lambda rng: (".png", _save(_rgb(rng).convert("LA"), "PNG"))),
    "bilevel": ("ok", lambda rng: (".png", _save(_rgb(rng).convert("1"), "PNG"))),
    "grey-16bit": ("ok", lambda rng: (".png", _grey16(rng))),
    "rgb-16bit": ("ok", lambda rng: (".png", _rgb16(rng))),
    "alpha": ("ok", lambda rng: (".png", _save(_rgb(rng).convert("RGBA"), "PNG"))),
    "animated": ("ok", lambda rng: (".gif", _animated(rng))),
    "exif-rotated": ("ok", lambda rng: (".jpg", _rotated(rng))),
    "tiny": ("ok", lambda rng: (".png", _save(_rgb(rng, 1, 1), "PNG"))),
    "elongated": ("ok", lambda rng: (".png", _save(_rgb(rng, 2000, 2), "PNG"))),
    "webp": ("ok", lambda rng: (".webp", _save(_rgb(rng), "WEBP", quality=80))),
    "heic": ("ok", lambda rng: (".heic", _heic(rng))),
}


@pytest.mark.parametrize("kind", sorted(AWKWARD))
def test_each_awkward_kind_has_its_documented_outcome(kind):
    outcome, maker = AWKWARD[kind]
    _, data = maker(np.random.default_rng(0))
    if outcome == "ok":
        img = decode_bytes(data)
        assert img.mode == "RGB" and img.size[0] >= 1 and img.size[1] >= 1
    else:
        with pytest.raises(DecodeError) as info:
            decode_bytes(data)
        assert info.value.reason.startswith(outcome), info.value.reason


def test_every_outcome_is_listed_in_the_module_table():
    for reason in ("empty file", "not an image", "corrupt or truncated", "image too large", "HEIC/HEIF needs"):
        assert reason in decode.__doc__


def test_bomb_is_refused_from_the_header_before_any_pixel_is_decoded(monkeypatch):
    def no_decode(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    with pytest.raises(DecodeError, match=f"> {MAX_PIXELS}"):
        decode_bytes(_bomb_png(np.random.default_rng(0)))


def test_exif_orientation_is_not_applied_unless_asked():
    data = _rotated(np.random.default_rng(0))
    assert decode_bytes(data).size == (48, 40)
    assert decode_bytes(data, apply_orientation=True).size == (40, 48)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    arr = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    out = np.asarray(decode_bytes(_save(Image.fromarray(arr), "PNG")))[0, :, 0]
    assert out.tolist() == [0, 1, 255, 128]


def test_alpha_is_dropped_keeping_the_colour_under_transparent_pixels():
    img = Image.new("RGBA", (4, 4), (200, 10, 30, 0))
    assert np.asarray(decode_bytes(_save(img, "PNG")))[0, 0].tolist() == [200, 10, 30]


def test_animated_file_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = _save(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert np.asarray(decode_bytes(data))[0, 0].tolist() == [255, 0, 0]


def test_wrongly_named_file_is_decoded_by_its_content(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_save(Image.new("RGB", (8, 6), (1, 2, 3)), "PNG"))
    assert decode.probe(path)["format"] == "png" and decode.load_image(path).size == (8, 6)


def test_broken_heic_names_the_extra_when_pillow_heif_is_missing():
    fake_heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    reason = "corrupt or truncated" if decode.HEIF_AVAILABLE else "HEIC/HEIF needs"
    with pytest.raises(DecodeError) as info:
        decode_bytes(fake_heic)
    assert info.value.reason.startswith(reason), info.value.reason
