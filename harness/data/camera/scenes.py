"""Scene content for the simulator: real photographs, cropped, flipped and resampled.

A scene photo's own camera traces (noise, demosaicing, JPEG blocks) must not survive into
the simulated photo, or they would contradict its EXIF. A crop at least twice the output
size is reduced by area averaging, which erases them; a smaller one is low-pass filtered
(sigma 1 px) before it is enlarged, which leaves smooth content and no grid.

With no scene files given, scikit-learn's two sample photographs (``china.jpg``,
``flower.jpg``) serve: no network needed, and random crops and flips vary them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from harness.data.decode import load_image

__all__ = ["BUILTIN_SCENES", "load_scene"]

BUILTIN_SCENES = ("builtin:china", "builtin:flower")


@lru_cache(maxsize=4)
def _builtin(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image(f"{name}.jpg")


@lru_cache(maxsize=8)
def _file(path: str) -> np.ndarray:
    return np.asarray(load_image(path, apply_orientation=True))


def _source(ref: str) -> np.ndarray:
    return _builtin(ref.split(":", 1)[1]) if ref.startswith("builtin:") else _file(str(Path(ref)))


def _crop_box(h: int, w: int, aspect: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    ch, cw = (h, int(h * aspect)) if w >= h * aspect else (int(w / aspect), w)
    scale = float(np.sqrt(rng.uniform(0.35, 1.0)))
    ch, cw = max(8, int(ch * scale)), max(8, int(cw * scale))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return y, x, ch, cw


def load_scene(ref: str | Path, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop of scene ``ref`` (a file or ``builtin:NAME``), resampled to ``size`` = (w, h)."""
    img = _source(str(ref))
    w, h = size
    y, x, ch, cw = _crop_box(img.shape[0], img.shape[1], w / h, rng)
    crop = img[y:y + ch, x:x + cw]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    crop = np.ascontiguousarray(crop)
    if ch >= 2 * h and cw >= 2 * w:
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(crop, (0, 0), 1.0), (w, h), interpolation=cv2.INTER_CUBIC)
