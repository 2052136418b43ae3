"""``posterize(bits=b)``: keep the ``b`` most significant bits of every channel (1 to 8).

A pure function of (image, rng, parameters), like every exifbench perturbation: the rng
is unused because the result is deterministic. ``bits=8`` returns the image unchanged.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["posterize"]


def posterize(image: Image.Image, rng: np.random.Generator, bits: int) -> Image.Image:
    mask = np.uint8((0xFF << (8 - bits)) & 0xFF)
    return Image.fromarray(np.asarray(image.convert("RGB")) & mask)
