"""Image side of the CNNDetection recipe, shared by the ``cnnspot``, ``npr`` and ``univfd`` baselines.

Wang et al., "CNN-generated images are surprisingly easy to spot... for now", CVPR 2020
(github.com/PeterWang512/CNNDetection). NPR (github.com/chuangchuangtan/NPR-DeepfakeDetection)
and UnivFD (github.com/WisconsinAIVision/UniversalFakeDetect) are built on that code base
and reuse its ``data/datasets.py``, so the three baselines share these functions:

- train-time ``data_augment``: Gaussian blur (sigma uniform in ``blur_sigma``) with
  probability ``blur_prob``, then JPEG (quality uniform over the integers of ``jpeg_quality``,
  encoder drawn from ``jpeg_methods``: OpenCV or Pillow) with probability ``jpeg_prob``;
- resizing, random/centre crops that pad with zeros when the image is smaller (as
  torchvision's ``CenterCrop`` does; their ``RandomCrop`` would fail instead), flips;
- ``ToTensor`` + ``Normalize`` with the ImageNet or the CLIP statistics;
- scoring a list of images of different sizes in batches of equal shape.

Randomness comes from an explicit ``numpy.random.Generator`` instead of Python's global
``random`` module, so a training run is reproducible from its seed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from harness.imaging import gaussian_blur_uint8, jpeg_cv2, jpeg_pil  # one coding, shared

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "CLIP_MEAN", "CLIP_STD", "CNNDetectionAugment",
    "data_augment", "resize_short_side", "resize_square", "random_crop", "center_crop",
    "random_hflip", "to_normalised_tensor", "trim_to_even", "score_by_shape",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class CNNDetectionAugment:
    """Blur and JPEG augmentation of ``data_augment`` (CNNDetection's ``--blur_*``/``--jpg_*``)."""

    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 100)
    jpeg_methods: tuple[str, ...] = ("cv2", "pil")


def data_augment(image: Image.Image, cfg: CNNDetectionAugment, rng: np.random.Generator) -> Image.Image:
    """Blur then JPEG, each with its probability (CNNDetection ``data_augment``)."""
    img = np.array(image.convert("RGB"))
    if rng.random() < cfg.blur_prob:
        lo, hi = cfg.blur_sigma
        img = gaussian_blur_uint8(img, lo + rng.random() * (hi - lo))
    if rng.random() < cfg.jpeg_prob:
        method = cfg.jpeg_methods[int(rng.integers(len(cfg.jpeg_methods)))]
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        img = jpeg_cv2(img, quality) if method == "cv2" else jpeg_pil(img, quality)
    return Image.fromarray(img)


def resize_short_side(image: Image.Image, size: int | None) -> Image.Image:
    """``TF.resize(img, size)``: shorter side to ``size``, bilinear (CNNDetection ``custom_resize``)."""
    if size is None or min(image.size) == size:
        return image
    return TF.resize(image, size, interpolation=TF.InterpolationMode.BILINEAR)


def resize_square(image: Image.Image, size: int | None) -> Image.Image:
    """``transforms.Resize((size, size))``, bilinear (NPR's training resize)."""
    if size is None or image.size == (size, size):
        return image
    return TF.resize(image, [size, size], interpolation=TF.InterpolationMode.BILINEAR)


def _pad_to(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    if w >= size and h >= size:
        return image
    canvas = Image.new("RGB", (max(w, size), max(h, size)))
    canvas.paste(image, ((max(w, size) - w) // 2, (max(h, size) - h) // 2))
    return canvas


def random_crop(image: Image.Image, size: int | None, rng: np.random.Generator) -> Image.Image:
    """A ``size`` x ``size`` crop at a uniform position (zero-padded first if smaller)."""
    if size is None:
        return image
    image = _pad_to(image, size)
    w, h = image.size
    left, top = int(rng.integers(w - size + 1)), int(rng.integers(h - size + 1))
    return image.crop((left, top, left + size, top + size))


def center_crop(image: Image.Image, size: int | None) -> Image.Image:
    """torchvision ``CenterCrop`` (zero-padded when the image is smaller)."""
    if size is None or image.size == (size, size):
        return image
    return TF.center_crop(image, [size, size])


def random_hflip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def trim_to_even(image: Image.Image) -> Image.Image:
    """Drop a last odd row/column, so that a x0.5 then x2 nearest resampling keeps the size."""
    w, h = image.size
    return image if (w % 2 == 0 and h % 2 == 0) else image.crop((0, 0, w - w % 2, h - h % 2))


def to_normalised_tensor(image: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``ToTensor`` then ``Normalize``: a float32 (3, H, W) tensor."""
    return TF.normalize(TF.to_tensor(image.convert("RGB")), list(mean), list(std))


@torch.no_grad()
def score_by_shape(forward: Callable[[torch.Tensor], torch.Tensor], items: Sequence[torch.Tensor],
                   batch_size: int, device: str | torch.device) -> np.ndarray:
    """Run ``forward`` over (C, H, W) tensors of possibly different sizes, in batches of one
    shape (the authors resize or crop to batch; grouping keeps each image's native size);
    returns one float per item, in the order of ``items``."""
    out = np.empty(len(items), dtype=np.float64)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[tuple(item.shape)].append(i)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            batch = torch.stack([items[i] for i in chunk]).to(device)
            out[chunk] = forward(batch).reshape(len(chunk)).double().cpu().numpy()
    return out
