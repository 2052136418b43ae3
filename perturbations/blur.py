"""``blur(sigma=s)``: Gaussian blur, ``scipy.ndimage.gaussian_filter`` on each uint8 channel.

Written back into the uint8 array (truncating), exactly as the published evaluation code
does; ``sigma=0`` leaves the image unchanged.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl


def blur(image: Image.Image, rng, sigma: float) -> Image.Image:
    arr = np.array(image)
    for c in range(arr.shape[2]):
        gaussian_filter(arr[:, :, c], output=arr[:, :, c], sigma=sigma)
    return Image.fromarray(arr)


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
