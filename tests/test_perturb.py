from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from torchvision.transforms import Resize

from harness import perturb
from harness.api import ConfigError, UnknownNameError
from harness.chains import derive_seed, expand, expand_grid, parse
from tests.helpers import noise_image


def test_grid_expands_to_one_spec_per_value():
    assert [c.spec for c in expand("jpeg(quality=[95,75,50])")] == [
        "jpeg(quality=95)", "jpeg(quality=75)", "jpeg(quality=50)"]


def test_chain_is_applied_left_to_right_and_expands_as_a_product():
    chains = expand("jpeg(quality=[90,80])+resize(scale=[0.5,0.25])")
    assert [c.spec for c in chains] == ["jpeg(quality=90)+resize(scale=0.5)", "jpeg(quality=90)+resize(scale=0.25)",
                                        "jpeg(quality=80)+resize(scale=0.5)", "jpeg(quality=80)+resize(scale=0.25)"]
    img = noise_image()
    manual = Resize((30, 40))(Image.open(_jpeg_bytes(img, 90)).convert("RGB"))
    assert np.array_equal(np.asarray(perturb(chains[0].spec, img)), np.asarray(manual))


def test_canonical_spec_coerces_types_so_spellings_share_a_name():
    assert parse("blur(sigma=2)").spec == parse("blur( sigma = 2.0 )").spec == "blur(sigma=2.0)"


def test_grid_list_keeps_first_occurrences_in_order():
    assert [c.spec for c in expand_grid(["none", "jpeg(quality=[95,75])", "jpeg(quality=95)"])] == [
        "none", "jpeg(quality=95)", "jpeg(quality=75)"]


def test_unknown_perturbation_suggests_a_name():
    with pytest.raises(UnknownNameError, match="did you mean 'jpeg'"):
        parse("jepg(quality=75)")


@pytest.mark.parametrize("bad", ["jpeg", "jpeg(q=75)", "jpeg(quality=abc)", "jpeg(quality=[])", "blur(sigma=1"])
def test_malformed_specs_are_config_errors(bad):
    with pytest.raises(ConfigError):
        expand(bad)


def _jpeg_bytes(img: Image.Image, quality: int) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return buf


def test_jpeg_is_a_pil_encode_and_decode_at_that_quality():
    img = noise_image()
    expected = np.asarray(Image.open(_jpeg_bytes(img, 75)).convert("RGB"))
    assert np.array_equal(np.asarray(perturb("jpeg(quality=75)", img)), expected)


def test_blur_is_scipy_gaussian_filter_on_each_uint8_channel():
    img = noise_image()
    arr = np.array(img)
    for c in range(3):
        gaussian_filter(arr[:, :, c], output=arr[:, :, c], sigma=1.5)
    assert np.array_equal(np.asarray(perturb("blur(sigma=1.5)", img)), arr)


def test_resize_is_torchvision_resize_of_int_scaled_height_and_width():
    img = noise_image(size=(81, 61))
    out = perturb("resize(scale=0.5)", img)
    assert out.size == (40, 30)
    assert np.array_equal(np.asarray(out), np.asarray(Resize((30, 40))(img)))


def test_none_returns_the_image_unchanged():
    img = noise_image()
    assert np.array_equal(np.asarray(perturb("none", img)), np.asarray(img))


def test_derived_seed_depends_only_on_run_seed_sample_and_spec():
    assert derive_seed(0, "abc", "noise(sigma=1)") == derive_seed(0, "abc", "noise(sigma=1)")
    assert derive_seed(0, "abc", "x") != derive_seed(1, "abc", "x") != derive_seed(0, "abd", "x")
