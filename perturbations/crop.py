"""``crop(size=n, where=center|random)``: an ``n x n`` window of the image.

``center`` takes the window of ``torchvision.transforms.functional.center_crop``
(top = round((h - n) / 2)); ``random`` draws its top-left corner uniformly from the
seeded generator. A side shorter than ``n`` is kept whole (no padding), so a small image
is never framed in black.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["crop"]


def crop(image: Image.Image, rng: np.random.Generator, size: int, where: str = "center") -> Image.Image:
    w, h = image.size
    cw, ch = min(size, w), min(size, h)
    if where == "center":
        left, top = int(round((w - cw) / 2.0)), int(round((h - ch) / 2.0))
    else:
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return image.crop((left, top, left + cw, top + ch))


def positive_int(value) -> int:
    out = int(value)
    if out < 1:
        raise ValueError(f"size must be at least 1, got {value}")
    return out


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "crop",
            crop,
            params=(ParamSpec("size", positive_int), ParamSpec("where", str, "center", ("center", "random"))),
            summary="square crop of a side (centre or seeded random position; no padding)",
            metadata="pixels only; no metadata",
            stochastic=True,
            strength="size",
        )
    ]
