"""The training-time augmentation of the authors' binary detector (``utils.py``,
``custom_augment``), with an explicit random generator instead of Python's global one:
random square resize to 64..128 px (p = 0.3), Gaussian blur with σ ∈ [0, 1] on each
uint8 channel (p = 0.1), JPEG re-encoding at quality 90..99 by OpenCV or Pillow (p = 0.25).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torchvision.transforms.functional as TF
from PIL import Image

from harness.imaging import gaussian_blur_uint8, jpeg_cv2, jpeg_pil  # one coding, shared

__all__ = ["ExifAugment", "custom_augment", "gaussian_blur_uint8", "jpeg_cv2", "jpeg_pil"]


@dataclass(frozen=True)
class ExifAugment:
    """Probabilities and ranges of ``custom_augment`` (the EXIF binary detector's training
    augmentation; :class:`harness.recipes.cnndetection.recipe.CNNDetectionAugment` is the baselines')."""

    resize_prob: float = 0.3
    resize_range: tuple[int, int] = (64, 128)
    blur_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.0, 1.0)
    jpg_prob: float = 0.25
    jpg_quality: tuple[int, int] = (90, 99)


def custom_augment(img: Image.Image, rng: np.random.Generator, cfg: ExifAugment = ExifAugment()) -> Image.Image:
    if rng.random() < cfg.resize_prob:
        size = int(rng.integers(cfg.resize_range[0], cfg.resize_range[1] + 1))
        img = TF.resize(img, [size, size])
    arr = np.array(img)
    if rng.random() < cfg.blur_prob:
        arr = gaussian_blur_uint8(arr, float(rng.uniform(*cfg.blur_sigma)))
    if rng.random() < cfg.jpg_prob:
        quality = int(rng.integers(cfg.jpg_quality[0], cfg.jpg_quality[1] + 1))
        arr = jpeg_cv2(arr, quality) if rng.random() < 0.5 else jpeg_pil(arr, quality)
    return Image.fromarray(arr)
