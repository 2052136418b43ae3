"""One simulated photograph: the shot's light, optics, sensor and in-camera processing.

Where physics allows, the sampled tags act on the pixels: exposure time, f-number, ISO and
bias set the brightness (what quantisation leaves of the exposure error) and ISO the noise;
metering mode decides which part of the scene is exposed to mid-grey; focal length and
aperture set vignetting (lensfun calibration when the lens has one), softness wide open,
diffraction stopped down and background blur; the flash lights the centre with a neutral
light that falls off towards the edges; a white-balance preset or auto white balance sets
the colour; the scene type changes processing (landscape: more saturation and contrast,
portrait: softer, night: stronger noise reduction). Every photo of a model carries the
model's sensor gain map and tone curve (:func:`~harness.data.camera.pipeline.fixed_pattern`,
:func:`~harness.data.camera.pipeline.model_tone`).
"""
from __future__ import annotations

import math

import numpy as np
from colour.models import RGB_COLOURSPACE_sRGB

from harness.data.camera import pipeline as isp
from harness.data.camera.database import Camera, Lens
from harness.data.camera.shot import FLASH_KELVIN, Shot, _widest

__all__ = ["PRESET_KELVIN", "render_photo", "metered_luminance"]

PRESET_KELVIN = {"Daylight": 5500, "Direct Sunlight": 5500, "Fine Weather": 5500, "Cloudy": 6500, "Shade": 7500,
                 "Tungsten": 3000, "Incandescent": 3000, "Fluorescent": 4000, "Cool White Fluorescent": 4200,
                 "White Fluorescent": 4000, "Flash": 5500}
_RAW_MID_GREY = 0.16  # where a camera meter puts mid-grey in raw values, under 3 stops below clipping
_Y = RGB_COLOURSPACE_sRGB.matrix_RGB_to_XYZ[1].astype(np.float32)  # luminance of linear sRGB (Rec. 709)


def _centre_weights(h: int, w: int, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return np.exp(-r2 / (2 * sigma**2))


def metered_luminance(lin: np.ndarray, mode: int) -> float:
    """The luminance a meter in EXIF MeteringMode ``mode`` reads from linear RGB ``lin``."""
    y = lin @ _Y
    h, w = y.shape
    if mode in (3, 6):  # spot (~3 % of the frame) or partial (~10 %)
        f = 0.09 if mode == 3 else 0.16
        value = y[int(h * (0.5 - f)):int(h * (0.5 + f)) + 1, int(w * (0.5 - f)):int(w * (0.5 + f)) + 1].mean()
    elif mode == 2:
        wts = _centre_weights(h, w, 0.45)
        value = (y * wts).sum() / wts.sum()
    elif mode == 5:  # evaluative meters discount highlights: between the mean and the geometric mean
        value = 0.5 * (y.mean() + math.exp(float(np.log(y + 0.01).mean())))
    else:
        value = y.mean()
    return max(float(value), 0.005)


def _vignetting_terms(lens: Lens, focal: float, fnumber: float, widest: float) -> tuple[float, float, float]:
    if lens.vignetting:
        best = min(lens.vignetting, key=lambda v: abs(math.log(v[0] / focal)) + abs(math.log(v[1] / fnumber)))
        return best[2], best[3], best[4]
    open_ = (widest / fnumber) ** 2  # vignetting fades about as the square of stopping down
    return -0.55 * open_, 0.15 * open_, 0.0


def _light(lin: np.ndarray, shot: Shot) -> np.ndarray:
    """Scene radiance at the sensor, in units where the meter's reading is mid-grey."""
    ambient = lin * isp.illuminant_gains(shot.kelvin)
    if not shot.flash_fired:
        return ambient * (_RAW_MID_GREY * 2.0**shot.exposure_error_ev)
    h, w = lin.shape[:2]
    falloff = 1.0 / (1.0 + (1.0 - _centre_weights(h, w, 0.5)) * 4.0)  # inverse square with distance from the subject
    flash = lin * isp.illuminant_gains(FLASH_KELVIN) * falloff[..., None]
    return ambient * (_RAW_MID_GREY * min(2.0**shot.exposure_error_ev, 1.0)) + flash * _RAW_MID_GREY


def _optics(img: np.ndarray, camera: Camera, shot: Shot) -> np.ndarray:
    focal, n = float(shot.focal_length), float(shot.fnumber)
    widest = _widest(shot.lens, focal)
    k = _vignetting_terms(shot.lens, focal, n, widest)
    h, w = img.shape[:2]
    img = img * isp.vignette(h, w, k, shot.lens.crop_factor / camera.crop_factor)[..., None]
    softness = 0.25 + 0.45 * (widest / n) ** 2 + 0.5 * max(0.0, n / 16.0 - 0.5)
    img = isp.lens_blur(img, softness)
    return isp.depth_of_field(img, float(np.clip(1.6 * shot.focal_35mm / (n * 25.0) - 0.3, 0.0, 5.0)))


def _wb_gains(img: np.ndarray, camera: Camera, shot: Shot, cam_rgb: np.ndarray, daylight: np.ndarray) -> np.ndarray:
    if not shot.white_balance:
        return isp.gray_world_gains(img, daylight)
    presets = dict(camera.wb_presets)
    if shot.wb_preset in presets:
        return np.asarray(presets[shot.wb_preset], dtype=np.float32)
    white = cam_rgb @ isp.illuminant_gains(PRESET_KELVIN.get(shot.wb_preset, 5500))
    return (white[1] / white).astype(np.float32)


def _noise_profile(camera: Camera, iso: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    _, a, b = min(camera.noise, key=lambda p: abs(math.log(p[0] / iso)))
    return a, b


def _style(camera: Camera, shot: Shot) -> dict[str, float]:
    style = {"contrast": camera.contrast, "saturation": camera.saturation, "sharpen_amount": camera.sharpen_amount,
             "sharpen_radius": camera.sharpen_radius, "chroma_denoise": 0.0 if shot.iso < 1600 else 1.2,
             "tone": isp.model_tone(camera.name)}
    if shot.scene_capture_type == 1:
        style.update(contrast=style["contrast"] + 0.1, saturation=style["saturation"] + 0.15,
                     sharpen_amount=style["sharpen_amount"] * 1.3)
    elif shot.scene_capture_type == 2:
        style.update(contrast=style["contrast"] - 0.05, saturation=style["saturation"] - 0.05,
                     sharpen_amount=style["sharpen_amount"] * 0.5)
    elif shot.scene_capture_type == 3:
        style.update(contrast=style["contrast"] + 0.05, chroma_denoise=2.0)
    return style


def render_photo(camera: Camera, scene: np.ndarray, shot: Shot, rng: np.random.Generator) -> np.ndarray:
    """uint8 sRGB scene content -> the 8-bit RGB image ``camera`` makes of it in ``shot``."""
    cam_rgb, rgb_cam, daylight = isp.camera_matrices(camera.color_matrix)
    lin = isp.unprocess(scene)
    radiance = _light(lin, shot) / metered_luminance(lin, shot.metering_mode)
    sensor = _optics(radiance @ cam_rgb.T, camera, shot)
    raw = isp.mosaic(np.clip(sensor, 0.0, None), camera.cfa) * isp.fixed_pattern(camera.name, *sensor.shape[:2])
    raw = isp.add_sensor_noise(raw, camera.cfa, *_noise_profile(camera, shot.iso), camera.black, camera.white, rng)
    img = np.clip(isp.demosaic(raw, camera.cfa, camera.demosaic), 0.0, None)
    out = isp.apply_white_balance(img, _wb_gains(img, camera, shot, cam_rgb, daylight), rgb_cam)
    return isp.render_output(out, **_style(camera, shot))
