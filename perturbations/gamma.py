"""``gamma(g=x)``: ``255 * (v / 255) ** g`` on every channel, rounded (g < 1 brightens)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["gamma"]


def gamma(image: Image.Image, rng, g: float) -> Image.Image:
    table = np.rint(255.0 * (np.arange(256) / 255.0) ** g).astype(np.uint8)
    return Image.fromarray(table[np.asarray(image)])


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "gamma",
            gamma,
            params=(ParamSpec("g", float),),
            summary="gamma curve 255*(v/255)**g, rounded",
            metadata="pixels only; no metadata",
            strength="g",
        )
    ]
