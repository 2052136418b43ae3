"""``jpeg(quality=q, encoder=pil|cv2)``: re-encode as JPEG and decode again.

``pil`` (the default) is the published evaluations' own (CNNDetection, AIGCDetectBenchmark,
SDAIE): Pillow's encoder at that quality with its default 4:2:0 chroma subsampling, decoded
by Pillow. ``cv2`` is OpenCV's ``imencode``/``imdecode`` at that quality, the ``cv2_jpg``
branch of CNNDetection's augmentation (``data/datasets.py`` in
github.com/PeterWang512/CNNDetection, also used by UniversalFakeDetect); the two encoders
give slightly different pixels at one quality.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from harness.api import ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

__all__ = ["jpeg"]


def jpeg(image: Image.Image, rng, quality: int, encoder: str = "pil") -> Image.Image:
    if encoder == "cv2":
        return _cv2_jpeg(image, quality)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _cv2_jpeg(image: Image.Image, quality: int) -> Image.Image:
    bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.size} image as JPEG")
    return Image.fromarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1])


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
