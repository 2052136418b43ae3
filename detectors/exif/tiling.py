"""Turning an RGB image into the set of normalised tiles the SDAIE network reads.

``official`` reproduces the authors' evaluation (``utils.py``, ``_adaptivepatch``): an
image whose short side is under the tile size is resized to one tile (bilinear, as
torchvision's ``Resize``); otherwise it is centre-cropped to multiples of the tile size
but with ``(width', height')`` passed where torchvision expects ``(height, width)``, so a
non-square image is zero-padded along one axis and over-cropped along the other (the
padding is black before normalisation, i.e. -mean/std after it). ``center`` crops
``height' x width'`` as intended. Both then convert to [0, 1], normalise with the CLIP
mean/std and cut non-overlapping tiles in row-major order.
"""
from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from harness.api import ConfigError

__all__ = ["CLIP_MEAN", "CLIP_STD", "TILINGS", "tile_image", "normalise", "random_crops", "to_tensor"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TILINGS = ("official", "center")


def to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """RGB uint8 image -> (3, H, W) float32 in [0, 1], as torchvision's ``ToTensor``."""
    return TF.to_tensor(image)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return TF.normalize(x, CLIP_MEAN, CLIP_STD)


def _crop_size(width: int, height: int, patch: int, mode: str) -> tuple[int, int]:
    """(rows, cols) in pixels of the centre crop, in torchvision's (height, width) order."""
    w, h = width // patch * patch, height // patch * patch
    if mode == "official":
        return w, h  # the authors' swapped axes, kept on purpose: their numbers depend on it
    return h, w


def _cut(x: torch.Tensor, patch: int) -> torch.Tensor:
    tiles = x.unfold(1, patch, patch).unfold(2, patch, patch)
    return tiles.permute(1, 2, 0, 3, 4).reshape(-1, x.shape[0], patch, patch)


def tile_image(image: Image.Image, patch: int = 64, mode: str = "center") -> torch.Tensor:
    """(N, 3, patch, patch) normalised tiles of ``image`` covering it in row-major order."""
    if mode not in TILINGS:
        raise ConfigError(f"tiling={mode!r}: use one of {list(TILINGS)}")
    width, height = image.size
    if min(width, height) < patch:
        image = TF.resize(image, [patch, patch], interpolation=TF.InterpolationMode.BILINEAR)
    else:
        image = TF.center_crop(image, list(_crop_size(width, height, patch, mode)))
    return _cut(normalise(to_tensor(image)), patch).contiguous()


def random_crops(x: torch.Tensor, n: int, patch: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` random ``patch`` x ``patch`` crops of a (3, H, W) tensor (torchvision's
    ``RandomCrop`` without padding), drawn from an explicit generator."""
    _, h, w = x.shape
    if h < patch or w < patch:
        raise ValueError(f"image {w}x{h} is smaller than one {patch}px crop")
    tops = rng.integers(0, h - patch + 1, size=n)
    lefts = rng.integers(0, w - patch + 1, size=n)
    return torch.stack([x[:, t:t + patch, l:l + patch] for t, l in zip(tops, lefts)])
