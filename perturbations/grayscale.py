"""``grayscale``: Pillow's ITU-R 601-2 luma (``convert("L")``), replicated to three channels."""
from __future__ import annotations

from PIL import Image

from harness.api import PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["grayscale"]


def grayscale(image: Image.Image, rng) -> Image.Image:
    return image.convert("L").convert("RGB")


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "grayscale",
            grayscale,
            summary="luma (ITU-R 601-2) in all three channels",
            metadata="pixels only; no metadata",
        )
    ]
