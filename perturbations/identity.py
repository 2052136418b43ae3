"""``none``: the unperturbed image (the reference column of every robustness sweep)."""
from __future__ import annotations

from PIL import Image

from harness.api import PerturbationSpec
from harness.hookspecs import hookimpl


def identity(image: Image.Image, rng) -> Image.Image:
    return image


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [PerturbationSpec("none", identity, summary="no change", metadata="pixels only; decoded image, no metadata")]
