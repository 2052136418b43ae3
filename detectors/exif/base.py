"""What the two EXIF detectors share: tiling in ``preprocess`` and batched features."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from harness.api import ConfigError
from harness.detector import BaseDetector, check_precision, numeric_precision
from detectors.exif.fast import FastExtractor
from detectors.exif.model import BackboneConfig, SDAIEBackbone
from detectors.exif.tiling import TILINGS, tile_image

__all__ = ["ExifDetectorBase"]


class ExifDetectorBase(BaseDetector):
    """``preprocess`` tiles an (already perturbed) image; ``_features`` runs the backbone
    on many images at once. Subclasses set ``self._extractor`` in ``load``."""

    max_tiles: int = 40000

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params.get("tiling", "center") not in TILINGS:
            raise ConfigError(f"{self.name}: tiling={self.params['tiling']!r}; use one of {list(TILINGS)}")
        # opt-in arithmetic for scoring (harness.detector.numeric_precision); fp32 is exact
        check_precision(self.name, self.params.get("precision", "fp32"))
        self._extractor: FastExtractor | None = None
        self._config: BackboneConfig | None = None

    def _set_backbone(self, backbone: SDAIEBackbone, device: str) -> None:
        if backbone.config.patch_size != int(self.patch_size):
            raise ConfigError(
                f"{self.name}: the weights use {backbone.config.patch_size}px tiles; set "
                f"patch_size={backbone.config.patch_size} (tiling happens before the weights are loaded)")
        self._config = backbone.config
        # tiles per CNN pass: on CPU, 16 tiles keep a layer's activations (16 x 512 KiB at
        # the paper's width) in the last-level cache, which measured fastest
        # (tests/benchmarks/bench_exif_scoring.py --chunks); a GPU wants large passes
        default_chunk = 16 if torch.device(device).type == "cpu" else 256
        self._extractor = FastExtractor(backbone.to(device).eval(),
                                        chunk=int(self.params.get("chunk", default_chunk)))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        tiles = tile_image(image.convert("RGB"), int(self.params.get("patch_size", 64)),
                           self.params.get("tiling", "center"))
        return tiles[: int(self.params.get("max_tiles", self.max_tiles))]

    def _features(self, items: Sequence[torch.Tensor]) -> torch.Tensor:
        if self._extractor is None:
            raise RuntimeError(f"{self.name}: call load() before scoring")
        device = self._extractor.stem_w.device
        with torch.inference_mode(), numeric_precision(self.params.get("precision", "fp32"), device):
            return self._extractor(list(items)).float()

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, D) SDAIE features (D = 528 for the paper's backbone) of RGB images."""
        return self._features([self.preprocess(im) for im in images]).cpu().numpy()
