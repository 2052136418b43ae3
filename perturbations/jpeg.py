"""``jpeg(quality=q)``: re-encode as JPEG and decode again.

As in the published evaluations (CNNDetection, AIGCDetectBenchmark, SDAIE): Pillow's
encoder at that quality with its default 4:2:0 chroma subsampling.
"""
from __future__ import annotations

import io

from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl


def jpeg(image: Image.Image, rng, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "jpeg",
            jpeg,
            params=(ParamSpec("quality", int),),
            summary="JPEG re-encode (Pillow, default subsampling)",
            metadata="pixels only; no EXIF written",
            strength="quality",
        )
    ]
