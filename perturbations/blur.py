"""``blur(sigma=s)``: Gaussian blur, ``scipy.ndimage.gaussian_filter`` on each uint8 channel.

Written back into the uint8 array (truncating), exactly as the published evaluation code
does; ``sigma=0`` leaves the image unchanged.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl
from harness.imaging import gaussian_blur_uint8


def blur(image: Image.Image, rng, sigma: float) -> Image.Image:
    return Image.fromarray(gaussian_blur_uint8(np.asarray(image.convert("RGB")), sigma))


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "blur",
            blur,
            params=(ParamSpec("sigma", float),),
            summary="Gaussian blur per channel (scipy)",
            metadata="pixels only; no metadata",
            strength="sigma",
        )
    ]
