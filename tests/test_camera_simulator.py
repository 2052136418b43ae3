"""Camera simulator: physical links between pixels and EXIF, EXIF read-back, determinism."""
from __future__ import annotations

import dataclasses
import io
import math
from fractions import Fraction

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness import read_exif
from harness.data.camera import fallback_cameras, make_photo, sample_shot, simulate
from harness.data.camera.pipeline import encode_jpeg, fixed_pattern, jpeg_qtables, model_tone
from harness.data.camera.render import REALISM_V1, Realism, render_photo, shake_length
from harness.data.camera.simulate import plan_jobs

FLAT = np.full((96, 128, 3), 128, np.uint8)


def _plain_shot(camera, iso: int, seed: int = 0):
    shot = sample_shot(camera, np.random.default_rng(seed))
    return dataclasses.replace(shot, iso=iso, flash=16, white_balance=1, wb_preset="Daylight", scene_capture_type=0,
                               exposure_error_ev=0.0, metering_mode=1, kelvin=6500.0, fnumber=Fraction(8))


def _highpass(img: np.ndarray) -> np.ndarray:
    g = img.astype(np.float32)
    return g - cv2.blur(g, (7, 7))


def test_noise_in_a_flat_region_rises_with_iso():
    camera = fallback_cameras()[0]
    stds = []
    for iso in (100, 800, 6400):
        out = render_photo(camera, FLAT, _plain_shot(camera, iso), np.random.default_rng(1))
        stds.append(float(_highpass(out)[24:72, 32:96].std()))
    assert stds[0] < stds[1] < stds[2], stds


def _phase_energy(camera) -> np.ndarray:
    """Mean squared high-pass of the image at each of the 4 positions of the 2x2 lattice.

    Energy at the Nyquist frequencies of the residual, located: where the Bayer filter sampled
    red (the largest white-balance gain) the noise is strongest, where it sampled blue the weakest.
    """
    out = render_photo(camera, FLAT, _plain_shot(camera, 3200), np.random.default_rng(2))
    data = encode_jpeg(out, jpeg_qtables(camera.jpeg_quality, camera.name), camera.subsampling, b"")
    residual = _highpass(np.asarray(Image.open(io.BytesIO(data))).mean(axis=2))[8:-8, 8:-8]
    return np.array([(residual[y::2, x::2] ** 2).mean() for y in (0, 1) for x in (0, 1)])


def test_cfa_layout_leaves_its_phase_in_the_jpeg_with_bilinear_demosaicing():
    patterns = []
    for camera in fallback_cameras()[:2]:  # RGGB and GBRG
        camera = dataclasses.replace(camera, demosaic="bilinear")
        energy = _phase_energy(camera)
        assert (int(energy.argmax()), int(energy.argmin())) == (camera.cfa.index("R"), camera.cfa.index("B")), energy
        patterns.append(energy.argsort().tolist())
    assert patterns[0] != patterns[1]


def test_two_camera_models_write_different_quantisation_tables(tmp_path):
    cams = fallback_cameras()[:2]
    jobs = plan_jobs(cams, 2, tmp_path, ["builtin:china"], 0, (64, 48))
    tables = []
    for job in jobs:
        make_photo(job)
        with Image.open(tmp_path / job.path) as im:
            tables.append({k: list(v) for k, v in im.quantization.items()})
    assert tables[0] != tables[1]


def test_exif_read_back_equals_what_was_sampled(tmp_path):
    jobs = plan_jobs(fallback_cameras(), 10, tmp_path, ["builtin:flower"], 3, (64, 48))
    for job in jobs:
        row = make_photo(job)
        exif = read_exif(tmp_path / job.path)
        sampled = {k: row[k] for k in ("Make", "Model", "Software", "DateTimeOriginal", "LensModel", "FocalLength",
                                       "FNumber", "ExposureTime", "ISOSpeedRatings", "ExposureBiasValue", "Flash",
                                       "MeteringMode", "ExposureMode", "ExposureProgram", "WhiteBalance",
                                       "SceneCaptureType", "FocalLengthIn35mmFilm", "MaxApertureValue")}
        assert {k: exif.get(k) for k in sampled} == sampled
        assert "simulated" in exif["Software"]


def test_a_models_fixed_pattern_is_shared_by_its_photos_and_not_by_another_models():
    cams = fallback_cameras()[:2]
    assert np.array_equal(fixed_pattern(cams[0].name, 96, 128), fixed_pattern(cams[0].name, 96, 128))

    def residual(camera, seed: int) -> np.ndarray:
        out = render_photo(camera, FLAT, _plain_shot(camera, 100), np.random.default_rng(seed))
        return _highpass(out.mean(axis=2))[8:-8, 8:-8].ravel()

    same = np.corrcoef(residual(cams[0], 1), residual(cams[0], 2))[0, 1]
    other = np.corrcoef(residual(cams[0], 1), residual(cams[1], 2))[0, 1]
    assert same > 0.3 and abs(other) < 0.1, (same, other)


def test_models_differ_in_tone_curve_and_in_the_shape_of_their_quantisation_tables():
    names = [c.name for c in fallback_cameras()]
    assert len({model_tone(n) for n in names}) == len(names)
    # high- over low-frequency quantisation: a ±1 jitter of the IJG tables would leave it nearly equal
    ratios = [np.mean(jpeg_qtables(90, n)[0][-16:]) / np.mean(jpeg_qtables(90, n)[0][:16]) for n in names]
    assert max(ratios) / min(ratios) > 1.3, ratios


def test_exposure_triangle_matches_the_light():
    camera = fallback_cameras()[0]
    rng = np.random.default_rng(5)
    shots = [sample_shot(camera, rng) for _ in range(400)]
    auto = [s for s in shots if s.exposure_program in (2, 3, 8) and not s.flash_fired and s.ev100 > 9]
    # log2(N^2/t) = EV100 - bias + log2(ISO/100), up to third-stop quantisation
    residual = [abs(math.log2(float(s.fnumber) ** 2 / float(s.exposure_time)) - s.ev100 + float(s.exposure_bias)
                    - math.log2(s.iso / 100)) for s in auto]
    assert auto and max(residual) < 0.5
    dim = np.mean([s.iso for s in shots if s.ev100 < 6 and not s.flash_fired])
    bright = np.mean([s.iso for s in shots if s.ev100 > 12])
    assert dim > 4 * bright
    lens = camera.lenses[0]
    assert all(lens.min_fnumber * 0.97 <= float(s.fnumber) <= lens.max_fnumber * 1.03 for s in shots)


@pytest.mark.ray  # simulate() makes the photos as Ray tasks (parallel_map)
def test_simulate_is_deterministic_for_a_seed(tmp_path, ray_session):
    def run(name: str, seed: int) -> tuple[pd.DataFrame, list[bytes]]:
        out = simulate(2, 4, tmp_path / name, seed=seed, size=(64, 48), progress=False, database=fallback_cameras())
        table = pd.read_csv(out / "manifest.csv")
        return table, [(out / p).read_bytes() for p in table["path"]]

    a, files_a = run("a", 7)
    b, files_b = run("b", 7)
    c, files_c = run("c", 8)
    pd.testing.assert_frame_equal(a, b)
    assert files_a == files_b and files_a != files_c
    assert list(a["path"]) == sorted(a["path"]) and set(a["generator"]) == {"simulated"}
    assert set(a["label"]) == {0} and a["camera"].nunique() == 2


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.repeat(rng.integers(40, 216, size=(96, 128, 1), dtype=np.uint8), 3, axis=2)


def test_a_hand_held_camera_blurs_more_the_longer_the_exposure_and_not_on_a_tripod():
    camera = fallback_cameras()[0]
    scene = _texture()
    base = dataclasses.replace(_plain_shot(camera, 100), focal_35mm=50, shake_rad_s=0.02, shake_angle=0.3, tripod=False)

    def detail(**change) -> float:
        shot = dataclasses.replace(base, **change)
        quiet = Realism(noise_variance_scale=1.0, awb_keep_warmth=0.0)  # the shake alone
        out = render_photo(camera, scene, shot, np.random.default_rng(3), quiet)
        return float(np.abs(_highpass(out.mean(axis=2))[8:-8, 8:-8]).mean())

    fast, slow = detail(exposure_time=Fraction(1, 2000)), detail(exposure_time=Fraction(1, 15))
    assert shake_length(dataclasses.replace(base, exposure_time=Fraction(1, 15))) == pytest.approx(
        0.02 / 15 * 50 / 36 * 6000)
    assert slow < 0.7 * fast, (fast, slow)
    still = detail(exposure_time=Fraction(1, 15), shake_rad_s=0.0)
    assert still == pytest.approx(fast, rel=0.05)
    off = render_photo(camera, scene, dataclasses.replace(base, exposure_time=Fraction(1, 15)),
                       np.random.default_rng(3), REALISM_V1)
    assert np.array_equal(off, render_photo(camera, scene, dataclasses.replace(base, exposure_time=Fraction(1, 2000)),
                                            np.random.default_rng(3), REALISM_V1))


def test_long_exposures_rest_on_a_support_and_hand_held_ones_shake():
    camera = fallback_cameras()[0]
    rng = np.random.default_rng(11)
    shots = [sample_shot(camera, rng, 0.1) for _ in range(300)]
    assert all(s.tripod and s.shake_rad_s == 0 for s in shots if float(s.exposure_time) > 0.5)
    assert all(s.shake_rad_s > 0 for s in shots if not s.tripod)
    assert any(s.tripod for s in shots) and sum(not s.tripod for s in shots) > 100


def test_auto_white_balance_keeps_part_of_a_warm_lights_cast():
    camera = fallback_cameras()[0]
    grey = np.full((64, 96, 3), 140, np.uint8)

    def red_over_blue(kelvin: float, realism) -> float:
        shot = dataclasses.replace(_plain_shot(camera, 100), white_balance=0, wb_preset="", kelvin=kelvin)
        out = render_photo(camera, grey, shot, np.random.default_rng(4), realism).astype(np.float64)
        return out[..., 0].mean() / out[..., 2].mean()

    assert red_over_blue(2800, REALISM_V1) == pytest.approx(1.0, abs=0.03)
    assert red_over_blue(2800, Realism()) > 1.1
    assert red_over_blue(5500, Realism()) == pytest.approx(red_over_blue(5500, REALISM_V1), abs=0.01)


def test_the_noise_scale_multiplies_the_profiles_variance():
    camera = fallback_cameras()[0]
    shot = dataclasses.replace(_plain_shot(camera, 1600), shake_rad_s=0.0)

    def temporal_noise(realism) -> float:  # two exposures differ by their noise only, not by the fixed pattern
        a, b = (render_photo(camera, FLAT, shot, np.random.default_rng(seed), realism)[24:72, 32:96, 1]
                .astype(np.float64) for seed in (1, 2))
        return float((a - b).std() / math.sqrt(2))

    std = [temporal_noise(r) for r in (REALISM_V1, Realism())]
    assert 2.4 < std[1] / std[0] < 4.0, std  # sqrt(10) = 3.2, before sharpening, clipping and rounding


@pytest.mark.parametrize("flag, expected", [([], Realism()), (["--realism", "v1"], REALISM_V1)])
def test_data_simulate_realism_flag(tmp_path, monkeypatch, flag, expected):
    from harness import cli
    import harness.data.camera as camera_pkg

    seen = {}
    monkeypatch.setattr(camera_pkg, "simulate", lambda *a, **kw: seen.update(kw) or tmp_path)
    assert cli.main(["data", "simulate", "--cameras", "1", "--photos", "1", "--out", str(tmp_path), *flag]) == 0
    assert seen["realism"] == expected
