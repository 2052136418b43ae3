"""The perturbation suite: new families, the jpeg encoder and resize size options, named suites."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from torchvision.transforms import Resize

from harness import perturb
from harness.api import ConfigError
from harness.config import load_sweep
from harness.engine.plan import chains_of
from harness.chains import expand, expand_grid, parse, suite_entries
from harness.plugins import perturbations, suites
from tests.conftest import noise_image


def test_noise_adds_seeded_gaussian_noise_on_the_0_255_scale():
    img = Image.new("RGB", (64, 64), (128, 128, 128))
    out = np.asarray(perturb("noise(sigma=10)", img, seed=3), dtype=np.float64) - 128
    assert abs(out.std() - 10) < 0.5 and abs(out.mean()) < 0.5
    expected = np.clip(np.rint(128 + np.random.default_rng(3).normal(0, 10, (64, 64, 3))), 0, 255)
    assert np.array_equal(out + 128, expected)


def test_noise_same_seed_same_pixels_other_seed_other_pixels():
    img = noise_image()
    a, b, c = (np.asarray(perturb("noise(sigma=5)", img, seed=s)) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_center_crop_takes_the_middle_window_without_padding():
    img = noise_image(size=(80, 60))
    assert np.array_equal(np.asarray(perturb("crop(size=32)", img)), np.asarray(img)[14:46, 24:56])
    assert perturb("crop(size=100)", img).size == (80, 60)


def test_random_crop_is_seeded_and_inside_the_image():
    img = noise_image(size=(80, 60))
    a, b = perturb("crop(size=32,where=random)", img, seed=7), perturb("crop(size=32,where=random)", img, seed=7)
    assert a.size == (32, 32) and np.array_equal(np.asarray(a), np.asarray(b))


def test_crop_refuses_an_unknown_position_and_a_zero_size():
    for bad in ("crop(size=32,where=left)", "crop(size=0)"):
        with pytest.raises(ConfigError):
            parse(bad)


def test_webp_is_a_pillow_encode_and_decode_at_that_quality():
    img, buf = noise_image(), io.BytesIO()
    img.save(buf, format="WEBP", quality=60)
    assert np.array_equal(np.asarray(perturb("webp(quality=60)", img)), np.asarray(Image.open(buf).convert("RGB")))


def test_jpeg_default_encoder_keeps_its_name_and_pixels():
    assert parse("jpeg(quality=75,encoder=pil)").spec == parse("jpeg(quality=75)").spec == "jpeg(quality=75)"
    img, buf = noise_image(), io.BytesIO()
    img.save(buf, format="JPEG", quality=75)
    assert np.array_equal(np.asarray(perturb("jpeg(quality=75)", img)), np.asarray(Image.open(buf).convert("RGB")))


def test_jpeg_cv2_encoder_is_opencv_imencode_and_imdecode():
    img = noise_image()
    ok, enc = cv2.imencode(".jpg", np.asarray(img)[:, :, ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 75])
    expected = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
    out = perturb("jpeg(quality=75,encoder=cv2)", img)
    assert parse("jpeg(quality=75,encoder=cv2)").spec == "jpeg(quality=75,encoder=cv2)"
    assert np.array_equal(np.asarray(out), expected)


def test_resize_size_brings_the_short_side_to_size():
    img = noise_image(size=(81, 61))
    out = perturb("resize(size=32)", img)
    assert out.size == (42, 32) and np.array_equal(np.asarray(out), np.asarray(Resize(32)(img)))
    assert parse("resize(scale=0.5)").spec == "resize(scale=0.5)"


@pytest.mark.parametrize("bad", ["resize()", "resize(scale=0.5,size=64)"])
def test_resize_needs_exactly_one_of_scale_and_size(bad):
    with pytest.raises(ConfigError, match="exactly one"):
        expand(bad)


def test_gamma_applies_the_power_curve_and_one_is_identity():
    img = noise_image()
    arr = np.asarray(img, dtype=np.float64)
    assert np.array_equal(np.asarray(perturb("gamma(g=2.2)", img)), np.rint(255 * (arr / 255) ** 2.2))
    assert np.array_equal(np.asarray(perturb("gamma(g=1)", img)), np.asarray(img))


def test_grayscale_is_pillow_luma_in_three_equal_channels():
    img = noise_image()
    out = np.asarray(perturb("grayscale", img))
    assert np.array_equal(out[:, :, 0], np.asarray(img.convert("L"))) and (out == out[:, :, :1]).all()


@pytest.mark.parametrize("name", sorted(perturbations()))
def test_every_perturbation_states_what_it_does_to_metadata(name):
    assert "metadata" in perturbations()[name].metadata or "EXIF" in perturbations()[name].metadata


SUITE_SPECS = {
    "universalfakedetect": ["none"] + [f"jpeg(quality={q})" for q in range(100, 20, -10)]
    + [f"blur(sigma={s}.0)" for s in range(5)],
    "sidbench": ["none", "jpeg(quality=95)", "jpeg(quality=90)", "jpeg(quality=50)", "jpeg(quality=30)",
                 "blur(sigma=2.0)", "blur(sigma=4.0)", "blur(sigma=2.0)+jpeg(quality=50)"],
    "genimage": ["none", "resize(size=112)", "resize(size=64)", "jpeg(quality=65)", "jpeg(quality=30)",
                 "blur(sigma=3.0)", "blur(sigma=5.0)"],
    "aigcdetect": ["none", "jpeg(quality=95)", "blur(sigma=1.0)", "resize(scale=0.5)"],
}


@pytest.mark.parametrize("name", sorted(SUITE_SPECS))
def test_suite_reproduces_the_published_grid(name):
    assert [c.spec for c in expand_grid(suite_entries(name))] == SUITE_SPECS[name]


@pytest.mark.parametrize("name", sorted(suites()))
def test_every_suite_cites_its_source_and_parses(name):
    suite = suites()[name]
    assert suite.source and suite.title and expand_grid(suite.entries)


def test_unknown_suite_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean 'genimage'"):
        suite_entries("genimag")


def test_sweep_config_may_name_a_suite(tmp_path):
    (tmp_path / "d").mkdir()
    config = tmp_path / "s.toml"
    config.write_text(f'[[datasets]]\nname="d"\nlayout="binary-folders"\nroot="{tmp_path / "d"}"\n'
                      '[[detectors]]\nname="spectrum"\n[perturbations]\nsuite="aigcdetect"\n')
    assert [c.spec for c in chains_of(load_sweep(config))] == SUITE_SPECS["aigcdetect"]
