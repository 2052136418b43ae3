"""``resize(scale=s)``: torchvision ``Resize((int(h*s), int(w*s)))`` on the PIL image.

Bilinear with antialiasing, as torchvision does by default on PIL images; the semantics of
the AIGCDetectBenchmark and SDAIE evaluations.
"""
from __future__ import annotations

from PIL import Image
from torchvision.transforms import functional as TF

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl


def resize(image: Image.Image, rng, scale: float) -> Image.Image:
    w, h = image.size
    return TF.resize(image, [max(1, int(h * scale)), max(1, int(w * scale))])


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "resize",
            resize,
            params=(ParamSpec("scale", float),),
            summary="rescale by a factor (torchvision bilinear, antialiased)",
            metadata="pixels only; no metadata",
            strength="scale",
        )
    ]
