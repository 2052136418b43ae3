"""``jpeg(quality=q, encoder=pil|cv2)``: re-encode as JPEG and decode again.

``pil`` (the default) is the published evaluations' own (CNNDetection, AIGCDetectBenchmark,
SDAIE): Pillow's encoder at that quality with its default 4:2:0 chroma subsampling, decoded
by Pillow. ``cv2`` is OpenCV's ``imencode``/``imdecode`` at that quality, the ``cv2_jpg``
branch of CNNDetection's augmentation (``data/datasets.py`` in
github.com/PeterWang512/CNNDetection, also used by UniversalFakeDetect); the two encoders
give slightly different pixels at one quality.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl
from harness.imaging import jpeg_cv2, jpeg_pil

__all__ = ["jpeg"]


def jpeg(image: Image.Image, rng, quality: int, encoder: str = "pil") -> Image.Image:
    arr = np.asarray(image.convert("RGB"))
    return Image.fromarray(jpeg_cv2(arr, quality) if encoder == "cv2" else jpeg_pil(arr, quality))


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "jpeg",
            jpeg,
            params=(ParamSpec("quality", int), ParamSpec("encoder", str, "pil", ("pil", "cv2"))),
            summary="JPEG re-encode (Pillow by default, or OpenCV), default 4:2:0 subsampling",
            metadata="pixels only; no EXIF written",
            strength="quality",
        )
    ]
