"""The camera pipeline: scene -> raw sensor values -> the camera's JPEG, as pure numpy steps.

Unprocessing follows Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR
2019 (https://github.com/google-research/google-research/tree/master/unprocessing): invert
the tone curve and sRGB gamma to get linear values. The forward steps are those of a camera
image-signal processor as in dcraw/darktable: colour matrix (Adobe ``ColorMatrix``, XYZ ->
camera, rows normalised so that D65 white gives the camera's daylight white), Bayer mosaic,
darktable's Poisson-Gaussian noise model (variance ``a*x + b`` of raw values in [0, 1]),
quantisation between the black and white levels, demosaicing (``colour-demosaicing``:
bilinear, Malvar 2004, Menon 2007), white balance, camera->sRGB matrix, gamma and tone curve,
saturation, sharpening, JPEG with the camera's own quantisation tables.

What a model's photos share whatever the shot, each a deterministic function of the model's
EXIF name (:func:`model_unit`): a fixed pattern of the sensor (:func:`fixed_pattern`: a
PRNU-like multiplicative gain map with column and row components, stronger than most real
sensors' ~1 % so that a small network can learn it in minutes), a tone curve
(:func:`model_tone`: gamma and black lift on top of the style's contrast) and quantisation
tables (:func:`jpeg_qtables`: a model-specific tilt of the IJG tables over frequency and a
chroma scale, then a jitter of single entries).

The sensor is simulated at the output resolution: noise, CFA interpolation and JPEG blocks
land on output pixels, as in a camera's full-resolution JPEG.
"""
from __future__ import annotations

import hashlib
import io
from functools import lru_cache

import cv2
import numpy as np
from colour import WEIGHTS_YCBCR, xy_to_XYZ
from colour.temperature import CCT_to_xy_Kang2002
from PIL import Image

__all__ = ["SRGB_TO_XYZ", "srgb_to_linear", "linear_to_srgb", "unprocess", "illuminant_gains", "camera_matrices",
           "vignette", "lens_blur", "depth_of_field", "mosaic", "add_sensor_noise", "demosaic",
           "gray_world_gains", "apply_white_balance", "render_output", "jpeg_qtables", "encode_jpeg", "model_unit",
           "fixed_pattern", "model_tone"]

# Not colour's RGB_COLOURSPACE_sRGB matrix, which is IEC 61966-2-1's rounded one (0.4124, ...):
# these derived values are the ones the camera matrices below are normalised with.
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_KR, _KB = WEIGHTS_YCBCR["ITU-R BT.601"]
_LUMA = np.array([_KR, 1.0 - _KR - _KB, _KB], dtype=np.float32)  # Rec. 601 luma of gamma-encoded RGB


# colour's eotf_sRGB and eotf_inverse_sRGB compute in float64: their float32 results differ by
# one ulp, which changes a few pixels of every simulated JPEG (and they are 4x slower).
def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055).astype(np.float32)


def unprocess(rgb8: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> linear RGB in [0, 1]: inverse smoothstep tone curve, then inverse gamma."""
    x = np.clip(rgb8.astype(np.float32) / 255.0, 0.0, 1.0)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)
    return srgb_to_linear(x)


def _black_body_linear_srgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body (Y = 1): the Planckian locus of Kang et al. 2002 (the cubic
    fit of Kim et al., valid over 1667-25000 K, so clipped to it)."""
    xy = CCT_to_xy_Kang2002(float(np.clip(kelvin, 1667.0, 25000.0)))
    return np.linalg.solve(SRGB_TO_XYZ, xy_to_XYZ(xy))


@lru_cache(maxsize=64)
def _illuminant(kelvin: int) -> tuple[float, float, float]:
    rgb = _black_body_linear_srgb(kelvin) / _black_body_linear_srgb(6504)
    return tuple(float(v) for v in rgb / rgb[1])


def illuminant_gains(kelvin: float) -> np.ndarray:
    """Linear-sRGB gains (G = 1) of a black-body light relative to daylight (von Kries).

    Not colour's chromatic_adaptation: a camera's white balance scales its own channels,
    where colour's von Kries transform scales cone-like responses (LMS of a CAT matrix, or XYZ).
    """
    return np.array(_illuminant(int(round(kelvin / 50.0) * 50)), dtype=np.float32)


def camera_matrices(color_matrix: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera-from-sRGB, sRGB-from-white-balanced-camera, daylight multipliers), as dcraw does
    (colour has no equivalent: its RGB_to_RGB adapts whites, dcraw normalises matrix rows)."""
    cam_rgb = np.asarray(color_matrix, dtype=np.float64).reshape(3, 3) @ SRGB_TO_XYZ
    cam_rgb = cam_rgb / cam_rgb[1].sum()  # daylight white gives G = 1
    white = cam_rgb.sum(axis=1)
    rgb_cam = np.linalg.inv(cam_rgb / white[:, None])
    return cam_rgb.astype(np.float32), rgb_cam.astype(np.float32), (white[1] / white).astype(np.float32)


def vignette(h: int, w: int, k: tuple[float, float, float], radius_scale: float = 1.0) -> np.ndarray:
    """lensfun's "pa" model: gain 1 + k1 r^2 + k2 r^4 + k3 r^6, r = 1 at the corner."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = (((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)) * radius_scale**2
    gain = 1.0 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    return np.clip(gain, 0.05, 1.0).astype(np.float32)


def lens_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.05 else img


def depth_of_field(img: np.ndarray, sigma: float) -> np.ndarray:
    """Background blur: the centre (the subject) stays sharp, the periphery is out of focus."""
    if sigma < 0.3:
        return img
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    t = np.clip((r - 0.35) / 0.6, 0.0, 1.0)
    mask = (t * t * (3 - 2 * t))[..., None]
    return img * (1 - mask) + cv2.GaussianBlur(img, (0, 0), sigma) * mask


def _cfa_index(cfa: str, h: int, w: int) -> np.ndarray:
    index = np.array(["RGB".index(c) for c in cfa], dtype=np.intp).reshape(2, 2)
    return np.tile(index, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


def mosaic(img: np.ndarray, cfa: str) -> np.ndarray:
    """Keep, per pixel, the one colour the Bayer filter lets through."""
    h, w = img.shape[:2]
    return np.take_along_axis(img, _cfa_index(cfa, h, w)[..., None], axis=2)[..., 0]


def add_sensor_noise(raw: np.ndarray, cfa: str, a: tuple[float, ...], b: tuple[float, ...], black: int, white: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise (darktable's profile at one ISO), then quantise to the ADC's levels."""
    h, w = raw.shape
    idx = _cfa_index(cfa, h, w)
    var = np.asarray(a, np.float32)[idx] * np.maximum(raw, 0.0) + np.asarray(b, np.float32)[idx]
    noisy = raw + np.sqrt(var) * rng.standard_normal(raw.shape, dtype=np.float32)
    span = float(white - black)
    dn = np.clip(np.rint(noisy * span) + black, 0, white)
    return ((dn - black) / span).astype(np.float32)


def demosaic(raw: np.ndarray, cfa: str, method: str) -> np.ndarray:
    import colour_demosaicing as cd

    fn = {"bilinear": cd.demosaicing_CFA_Bayer_bilinear, "malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004,
          "menon2007": cd.demosaicing_CFA_Bayer_Menon2007}[method]
    return np.asarray(fn(raw.astype(np.float64), cfa), dtype=np.float32)


def gray_world_gains(img: np.ndarray, daylight: np.ndarray) -> np.ndarray:
    """Auto white balance: grey-world on unclipped pixels, kept within 2x of daylight (colour
    has no automatic white balance)."""
    ok = img.max(axis=2) < 0.95
    means = img[ok].mean(axis=0) if ok.sum() > 100 else img.reshape(-1, 3).mean(axis=0)
    gains = means[1] / np.maximum(means, 1e-6)
    return np.clip(gains, daylight / 2, daylight * 2).astype(np.float32)


def apply_white_balance(img: np.ndarray, gains: np.ndarray, rgb_cam: np.ndarray) -> np.ndarray:
    """Multipliers, then the camera->sRGB matrix; clipped like a camera's highlights."""
    balanced = np.minimum(img * gains, 1.0)
    return np.clip(balanced @ rgb_cam.T, 0.0, 1.0)


def _unsharp(img: np.ndarray, amount: float, radius: float) -> np.ndarray:
    return img + amount * (img - cv2.GaussianBlur(img, (0, 0), radius))


def _chroma_denoise(img: np.ndarray, sigma: float) -> np.ndarray:
    luma = (img @ _LUMA)[..., None]
    return luma + cv2.GaussianBlur(img - luma, (0, 0), sigma)


def model_unit(name: str, salt: str) -> float:
    """A number in [0, 1) that only the model's name and ``salt`` decide."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{name}".encode()).digest()[:8], "big") / 2.0**64


def _name_seed(name: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{name}".encode()).digest()[:8], "big")


@lru_cache(maxsize=16)
def fixed_pattern(name: str, h: int, w: int) -> np.ndarray:
    """The model's sensor gain map (h, w), about 1: photo-response non-uniformity (per-pixel
    gains, spatially correlated over a model-specific length) plus column and row gains.

    Amplitudes (standard deviations): pixels 1.5-5 %, columns 0-3 %, rows 0-2 %, each drawn
    from the model's name; the pattern itself is seeded by the name, so every photo of a
    model at one size carries the same map."""
    u = lambda salt: model_unit(name, salt)  # noqa: E731
    rng = np.random.default_rng(_name_seed(name, "fixed-pattern"))
    pixel = rng.standard_normal((h, w)).astype(np.float32)
    corr = 0.6 * u("prnu-correlation")
    if corr > 0.05:
        pixel = cv2.GaussianBlur(pixel, (0, 0), corr)
    pixel /= max(float(pixel.std()), 1e-6)
    columns = rng.standard_normal(w).astype(np.float32)
    rows = rng.standard_normal(h).astype(np.float32)
    gain = (1.0 + (0.015 + 0.035 * u("prnu")) * pixel + (0.03 * u("columns")) * columns[None, :]
            + (0.02 * u("rows")) * rows[:, None])
    gain = np.clip(gain, 0.5, 1.5).astype(np.float32)
    gain.flags.writeable = False  # shared by every caller through the cache
    return gain


def model_tone(name: str) -> tuple[float, float]:
    """The model's tone curve on gamma-encoded values: (exponent 0.8-1.25, black lift 0-0.04)."""
    return 0.8 + 0.45 * model_unit(name, "tone-gamma"), 0.04 * model_unit(name, "tone-lift")


def render_output(linear: np.ndarray, *, contrast: float, saturation: float, sharpen_amount: float,
                  sharpen_radius: float, chroma_denoise: float = 0.0,
                  tone: tuple[float, float] = (1.0, 0.0)) -> np.ndarray:
    """Linear sRGB -> 8-bit: gamma, the model's tone curve (``tone`` = exponent, black lift),
    S-shaped contrast, saturation, noise reduction, sharpening."""
    y = linear_to_srgb(linear)
    if tone != (1.0, 0.0):
        y = tone[1] + (1.0 - tone[1]) * np.power(y, tone[0], dtype=np.float32)
    y = y + contrast * (y * y * (3 - 2 * y) - y)
    luma = (y @ _LUMA)[..., None]
    y = luma + saturation * (y - luma)
    if chroma_denoise > 0:
        y = _chroma_denoise(y, chroma_denoise)
    y = _unsharp(y, sharpen_amount, sharpen_radius)
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_IJG_CHROMA = np.array([17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                        47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32)


_FREQ = (np.arange(64) // 8 + np.arange(64) % 8) / 14.0  # (u + v) / 14 of each entry, row-major


def jpeg_qtables(quality: int, name: str) -> list[list[int]]:
    """The model's tables at ``quality``: the IJG tables tilted over frequency by a
    model-specific factor ``exp(tilt ((u+v)/14 - 1/2))`` (tilt in [-0.8, 0.8]: cameras keep
    more or less of the high frequencies than IJG), the chroma table scaled by 0.7-1.3, then
    ±1 on 12 entries of each table (all seeded by the model's name): every model's tables
    differ, also where two models share a nominal quality.
    """
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big"))
    tilt = np.exp((1.6 * model_unit(name, "qtable-tilt") - 0.8) * (_FREQ - 0.5))
    chroma = 0.7 + 0.6 * model_unit(name, "qtable-chroma")
    tables = []
    for base in (_IJG_LUMA * tilt, _IJG_CHROMA * tilt * chroma):
        t = np.clip((base * scale + 50) // 100, 1, 255).astype(int)
        pos = rng.choice(np.arange(1, 64), size=12, replace=False)
        t[pos] = np.clip(t[pos] + rng.choice([-1, 1], size=12), 1, 255)
        tables.append([int(v) for v in t])
    return tables


def encode_jpeg(img: np.ndarray, qtables: list[list[int]], subsampling: int, exif: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", qtables=qtables, subsampling=subsampling, exif=exif,
                              optimize=False)
    return buf.getvalue()
