"""One simulated photograph: the shot's light, optics, sensor and in-camera processing.

Where physics allows, the sampled tags act on the pixels: exposure time, f-number, ISO and
bias set the brightness (what quantisation leaves of the exposure error) and ISO the noise;
metering mode decides which part of the scene is exposed to mid-grey; focal length and
aperture set vignetting (lensfun calibration when the lens has one), softness wide open,
diffraction stopped down and background blur; the flash lights the centre with a neutral
light that falls off towards the edges; a white-balance preset or auto white balance sets
the colour (auto white balance leaving part of a warm light's cast); a hand-held camera's
shake blurs the ambient light over the exposure time; the scene type changes processing
(landscape: more saturation and contrast, portrait: softer, night: stronger noise
reduction). Every photo of a model carries the model's sensor gain map and tone curve
(:func:`~harness.data.camera.pipeline.fixed_pattern`, :func:`~harness.data.camera.pipeline.model_tone`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from colour.models import RGB_COLOURSPACE_sRGB

from harness.data.camera import pipeline as isp
from harness.data.camera.database import Camera, Lens
from harness.data.camera.shot import FLASH_KELVIN, Shot, _widest

__all__ = ["PRESET_KELVIN", "Realism", "REALISM_V1", "render_photo", "metered_luminance", "shake_length"]


@dataclass(frozen=True)
class Realism:
    """Effects the simulator adds beyond its first version (:data:`REALISM_V1` turns them off).

    ``noise_variance_scale``: darktable's noise profiles multiplied by this. Read as raw
    values in [0, 1] per pixel, they are smaller than photon statistics allow: the Poisson
    term at base ISO, ``a``, puts 1/a = 580,000 electrons at white for the NIKON Z 50's green
    pixels and 90,000 for the PowerShot G15's, many times what pixels of 4.2 um and 1.9 um
    hold (full wells of the order of tens of thousands and ten thousand electrons). A scale
    of 10 brings ISO noise to a per-pixel level, where it also survives the camera's JPEG.

    ``hand_shake``: a hand-held shot is blurred along a line of
    :func:`shake_length` pixels (none on a tripod; the flash's share of the light is not).

    ``awb_keep_warmth``: auto white balance leaves part of a warm light's cast, as cameras'
    default AWB does under tungsten ("ambience" or "keep warm colours" modes): the gains are
    moved towards daylight by up to this share (in log), fully below 3000 K, none above 4500 K.
    """

    noise_variance_scale: float = 10.0
    hand_shake: bool = True
    awb_keep_warmth: float = 0.35


#: the simulator as it was first released: darktable's profiles as they are, no shake, neutral AWB
REALISM_V1 = Realism(noise_variance_scale=1.0, hand_shake=False, awb_keep_warmth=0.0)
#: width in pixels of the sensor whose pixels the output's are: noise, CFA and JPEG act per
#: pixel as in a full-resolution photo, so motion blur is counted in a 24 MP sensor's pixels
SENSOR_WIDTH_PX = 6000

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


def shake_length(shot: Shot) -> float:
    """Length in pixels of the motion blur of a hand-held ``shot``: the image moves by
    angular velocity x exposure time x focal length (35 mm equivalent) on a 36 mm wide frame
    of :data:`SENSOR_WIDTH_PX` pixels."""
    return shot.shake_rad_s * float(shot.exposure_time) * shot.focal_35mm / 36.0 * SENSOR_WIDTH_PX


def _line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line of ``length`` px at ``angle`` rad, splatted bilinearly (sub-pixel lengths blur too)."""
    half = int(math.ceil(length / 2)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    for s in np.linspace(-length / 2, length / 2, max(2, int(math.ceil(4 * length)) + 1)):
        x, y = half + s * math.cos(angle), half + s * math.sin(angle)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        kernel[y0, x0] += (1 - fx) * (1 - fy)
        kernel[y0, x0 + 1] += fx * (1 - fy)
        kernel[y0 + 1, x0] += (1 - fx) * fy
        kernel[y0 + 1, x0 + 1] += fx * fy
    return kernel / kernel.sum()


def _shake(img: np.ndarray, shot: Shot) -> np.ndarray:
    length = shake_length(shot)
    if length < 0.1:
        return img
    return cv2.filter2D(img, -1, _line_kernel(length, shot.shake_angle), borderType=cv2.BORDER_REFLECT)


def _light(lin: np.ndarray, shot: Shot, realism: Realism) -> np.ndarray:
    """Scene radiance at the sensor, in units where the meter's reading is mid-grey; the
    ambient light blurred by the camera's shake over the exposure, a flash's light not (it
    lasts about a millisecond)."""
    ambient = lin * isp.illuminant_gains(shot.kelvin)
    if realism.hand_shake:
        ambient = _shake(ambient, shot)
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


def _wb_gains(img: np.ndarray, camera: Camera, shot: Shot, cam_rgb: np.ndarray, daylight: np.ndarray,
              keep_warmth: float = 0.0) -> np.ndarray:
    if not shot.white_balance:
        gains = isp.gray_world_gains(img, daylight)
        keep = keep_warmth * float(np.clip((4500.0 - shot.kelvin) / 1500.0, 0.0, 1.0))
        return (gains * (daylight / gains) ** keep).astype(np.float32) if keep > 0 else gains
    presets = dict(camera.wb_presets)
    if shot.wb_preset in presets:
        return np.asarray(presets[shot.wb_preset], dtype=np.float32)
    white = cam_rgb @ isp.illuminant_gains(PRESET_KELVIN.get(shot.wb_preset, 5500))
    return (white[1] / white).astype(np.float32)


def _noise_profile(camera: Camera, iso: int, scale: float = 1.0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    _, a, b = min(camera.noise, key=lambda p: abs(math.log(p[0] / iso)))
    return tuple(scale * v for v in a), tuple(scale * v for v in b)


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


def render_photo(camera: Camera, scene: np.ndarray, shot: Shot, rng: np.random.Generator,
                 realism: Realism = Realism()) -> np.ndarray:
    """uint8 sRGB scene content -> the 8-bit RGB image ``camera`` makes of it in ``shot``."""
    cam_rgb, rgb_cam, daylight = isp.camera_matrices(camera.color_matrix)
    lin = isp.unprocess(scene)
    radiance = _light(lin, shot, realism) / metered_luminance(lin, shot.metering_mode)
    sensor = _optics(radiance @ cam_rgb.T, camera, shot)
    raw = isp.mosaic(np.clip(sensor, 0.0, None), camera.cfa) * isp.fixed_pattern(camera.name, *sensor.shape[:2])
    raw = isp.add_sensor_noise(raw, camera.cfa, *_noise_profile(camera, shot.iso, realism.noise_variance_scale),
                               camera.black, camera.white, rng)
    img = np.clip(isp.demosaic(raw, camera.cfa, camera.demosaic), 0.0, None)
    gains = _wb_gains(img, camera, shot, cam_rgb, daylight, realism.awb_keep_warmth)
    out = isp.apply_white_balance(img, gains, rgb_cam)
    return isp.render_output(out, **_style(camera, shot))
