"""Image operations shared by the perturbation plugins and the detectors' training
augmentations (CNNDetection's ``data_augment``, the EXIF binary detector's
``custom_augment``), each coded once, on uint8 RGB arrays (H, W, 3), as the published
code does them. Not a plugin module: it registers nothing.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

__all__ = ["gaussian_blur_uint8", "jpeg_cv2", "jpeg_pil"]


def gaussian_blur_uint8(arr: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter`` on each channel, written back into uint8
    (truncating), as the published code does; returns a new array."""
    out = np.array(arr, dtype=np.uint8, copy=True)
    for c in range(out.shape[2]):
        gaussian_filter(out[:, :, c], output=out[:, :, c], sigma=sigma)
    return out


def jpeg_pil(arr: np.ndarray, quality: int) -> np.ndarray:
    """Pillow's encoder at ``quality`` (default 4:2:0 chroma subsampling), decoded by Pillow."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def jpeg_cv2(arr: np.ndarray, quality: int) -> np.ndarray:
    """OpenCV's ``imencode``/``imdecode`` at ``quality`` (CNNDetection's ``cv2_jpg``)."""
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(arr[:, :, ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {arr.shape[1]}x{arr.shape[0]} image as JPEG")
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1])
