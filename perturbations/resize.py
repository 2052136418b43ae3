"""``resize(scale=s)`` or ``resize(size=n)``: torchvision ``Resize`` on the PIL image.

``scale``: ``Resize((int(h*s), int(w*s)))``, the semantics of the AIGCDetectBenchmark and
SDAIE evaluations. ``size``: ``Resize(n)``, the shorter side brought to ``n`` and the other
in proportion (GenImage's low-resolution test). Bilinear with antialiasing, as torchvision
does by default on PIL images. Exactly one of the two is given.
"""
from __future__ import annotations

from typing import Any, Mapping

from PIL import Image

from harness.api import ConfigError, ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["resize"]


def resize(image: Image.Image, rng, scale: float = 0.0, size: int = 0) -> Image.Image:
    from torchvision.transforms import functional as TF  # here: the registry loads without torch

    if size:
        return TF.resize(image, size)
    w, h = image.size
    return TF.resize(image, [max(1, int(h * scale)), max(1, int(w * scale))])


def _check(params: Mapping[str, Any]) -> None:
    if (params["scale"] > 0) == (params["size"] > 0):
        raise ConfigError("resize takes exactly one of scale=... (a factor > 0) or size=... (short side, pixels)")


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "resize",
            resize,
            params=(ParamSpec("scale", float, 0.0), ParamSpec("size", int, 0)),
            summary="rescale by a factor, or the short side to a size (torchvision bilinear, antialiased)",
            metadata="pixels only; no metadata",
            strength="scale",
            check=_check,
        )
    ]
