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
from tests.helpers import noise_image, write_sweep_config


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


#: a valid spec of each built-in that needs parameters; another registered perturbation gets
#: its defaults, and a small value of their type for the parameters without one
EXAMPLE_SPECS = {"jpeg": "jpeg(quality=75)", "blur": "blur(sigma=1)", "resize": "resize(scale=0.5)",
                 "noise": "noise(sigma=2)", "crop": "crop(size=32)", "webp": "webp(quality=75)",
                 "gamma": "gamma(g=2.2)"}
SMALL_VALUES = {int: 4, float: 1.0}
#: these return the input's ``info`` (its EXIF and ICC included) with their pixels, although
#: their ``metadata`` says "pixels only": Pillow's crop/resize/copy keep ``info``
KEEP_THE_INPUTS_METADATA: set[str] = set()  # none since harness.chains.pixels_only


def _jpeg_with_exif_and_icc() -> Image.Image:
    from PIL import ImageCms

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"  # Make, Model
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    noise_image(size=(64, 48)).save(buf, format="JPEG", quality=95, exif=exif, icc_profile=icc)
    image = Image.open(io.BytesIO(buf.getvalue()))
    assert "exif" in image.info and "icc_profile" in image.info and image.getexif()[0x010F] == "Canon"
    return image


def _spec_from_params(spec) -> str:
    values = {p.name: p.choices[0] if p.choices else p.default if p.default is not None else SMALL_VALUES.get(p.type)
              for p in spec.params}
    given = ",".join(f"{k}={v}" for k, v in values.items() if v is not None)
    return f"{spec.name}({given})" if given else spec.name


def _metadata_case(name: str):
    if name not in KEEP_THE_INPUTS_METADATA:
        return name
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=(
        f"{name} passes the input's EXIF/ICC through; when fixed, drop it from KEEP_THE_INPUTS_METADATA")))


@pytest.mark.parametrize("name", [_metadata_case(n) for n in sorted(perturbations())])
def test_every_perturbation_outputs_pixels_only_as_its_metadata_says(name):
    spec = perturbations()[name]
    assert spec.metadata.startswith("pixels only"), spec.metadata
    try:
        chain = parse(EXAMPLE_SPECS.get(name) or _spec_from_params(spec))
    except ConfigError as exc:
        pytest.fail(f"add a valid spec of {name!r} to EXAMPLE_SPECS ({exc})")
    out = perturb(chain, _jpeg_with_exif_and_icc(), seed=0)
    assert not {"exif", "icc_profile"} & set(out.info), sorted(out.info)
    assert not dict(out.getexif()), dict(out.getexif())


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
    config = write_sweep_config(tmp_path / "s.toml",
                                datasets=[{"name": "d", "layout": "binary-folders", "root": tmp_path / "d"}],
                                detectors=[{"name": "spectrum"}], suite="aigcdetect")
    assert [c.spec for c in chains_of(load_sweep(config))] == SUITE_SPECS["aigcdetect"]
