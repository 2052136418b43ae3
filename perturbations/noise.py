"""``noise(sigma=s)``: additive Gaussian noise of standard deviation ``s`` on the 0-255 scale.

Drawn from the perturbation's seeded ``numpy.random.Generator`` (one normal draw per pixel
and channel), added to the uint8 pixels, rounded to the nearest integer and clipped to
0-255. The seed comes from (run seed, sample_id, spec), so a result does not depend on the
order or the number of workers.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["noise"]


def noise(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    arr = np.asarray(image, dtype=np.float64)
    noisy = arr + rng.normal(0.0, sigma, size=arr.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "noise",
            noise,
            params=(ParamSpec("sigma", float),),
            summary="additive Gaussian noise on 0-255, seeded, rounded and clipped",
            metadata="pixels only; no metadata",
            stochastic=True,
            strength="sigma",
        )
    ]
