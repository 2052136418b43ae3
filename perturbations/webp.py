"""``webp(quality=q)``: re-encode as lossy WebP (Pillow/libwebp, default method 4) and decode."""
from __future__ import annotations

import io

from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["webp"]


def webp(image: Image.Image, rng, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="WEBP", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "webp",
            webp,
            params=(ParamSpec("quality", int),),
            summary="lossy WebP re-encode (Pillow)",
            metadata="pixels only; no EXIF or ICC written",
            strength="quality",
        )
    ]
