"""Defensive decoding: each awkward kind of file has exactly one documented outcome.

``tests.helpers.AWKWARD`` (kind -> outcome, maker) is also the recipe of the awkward corpus
in test_awkward.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.api import DecodeError
from harness.data import decode
from harness.data.decode import MAX_PIXELS, decode_bytes
from tests.helpers import AWKWARD, bomb_png, rotated_jpeg, save_bytes


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
        decode_bytes(bomb_png(np.random.default_rng(0)))


def test_exif_orientation_is_not_applied_unless_asked():
    data = rotated_jpeg(np.random.default_rng(0))
    assert decode_bytes(data).size == (48, 40)
    assert decode_bytes(data, apply_orientation=True).size == (40, 48)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    arr = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    out = np.asarray(decode_bytes(save_bytes(Image.fromarray(arr), "PNG")))[0, :, 0]
    assert out.tolist() == [0, 1, 255, 128]


def test_alpha_is_dropped_keeping_the_colour_under_transparent_pixels():
    img = Image.new("RGBA", (4, 4), (200, 10, 30, 0))
    assert np.asarray(decode_bytes(save_bytes(img, "PNG")))[0, 0].tolist() == [200, 10, 30]


def test_animated_file_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = save_bytes(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert np.asarray(decode_bytes(data))[0, 0].tolist() == [255, 0, 0]


def test_wrongly_named_file_is_decoded_by_its_content(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(save_bytes(Image.new("RGB", (8, 6), (1, 2, 3)), "PNG"))
    assert decode.probe(path)["format"] == "png" and decode.load_image(path).size == (8, 6)


def test_broken_heic_names_the_extra_when_pillow_heif_is_missing():
    fake_heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    reason = "corrupt or truncated" if decode.HEIF_AVAILABLE else "HEIC/HEIF needs"
    with pytest.raises(DecodeError) as info:
        decode_bytes(fake_heic)
    assert info.value.reason.startswith(reason), info.value.reason
