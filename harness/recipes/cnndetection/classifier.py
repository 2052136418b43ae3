"""A trainable single-logit CNN detector: the shape shared by ``cnnspot`` and ``npr``.

Both come from the CNNDetection code base (Wang et al., CVPR 2020,
github.com/PeterWang512/CNNDetection; NPR forks it). A subclass says how to build its
network, how to map the authors' checkpoint keys, what it does to an image at training and
at evaluation, and its presets; this class does the rest: parameters and presets, loading
(exifbench folder or the authors' file, strictly), batched scoring of images of any size,
and ``fit`` (decode once, seeded hold-out, the authors' schedule, a checkpoint folder whose
manifest says whether training started from scratch or from which weights).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from harness.api import CheckpointError, ConfigError, DecodeError
from harness.detector import BaseDetector, TrainingSet
from harness.checkpoint import data_manifest_sha256, read_manifest, write_checkpoint
from harness.recipes.cnndetection.recipe import score_by_shape
from harness.recipes.cnndetection.training import Schedule, split_train_val, train_classifier
from harness.recipes.cnndetection.weights import load_weights, weights_identity

__all__ = ["TrainableCNN", "decode_training_images"]

#: parameters every such detector takes besides its preset's hyperparameters
COMMON_PARAMS = ("checkpoint", "preset", "init", "crop", "eval_batch_size")


class TrainableCNN(BaseDetector):
    """Subclasses set ``name``, ``PRESETS``, ``ARCH_KEYS`` and implement the hooks below."""

    #: preset name -> every hyperparameter; explicit constructor parameters override it
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: hyperparameters that change the network's shape (must match a checkpoint's)
    ARCH_KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, checkpoint: str | None = None, preset: str = "paper", init: str | None = None,
                 crop: int | None = None, eval_batch_size: int = 16, **hyper: Any):
        super().__init__(checkpoint=checkpoint, preset=preset, init=init, crop=crop,
                         eval_batch_size=eval_batch_size, **hyper)

    # --- hooks ----------------------------------------------------------------------------
    def build_model(self, cfg: Mapping[str, Any]) -> nn.Module:
        raise NotImplementedError

    def remap_upstream(self, state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
        return state

    def train_resize(self, image: Image.Image, cfg: Mapping[str, Any]) -> Image.Image:
        """Deterministic resize applied once to every training image (cached)."""
        return image

    def train_input(self, image: Image.Image, cfg: Mapping[str, Any], rng: np.random.Generator) -> torch.Tensor:
        raise NotImplementedError

    def val_input(self, image: Image.Image, cfg: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def schedule(self, cfg: Mapping[str, Any]) -> Schedule:
        raise NotImplementedError

    # --- parameters -----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The preset's hyperparameters overridden by the explicit ones (``None`` included)."""
        if self.preset not in self.PRESETS:
            raise ConfigError(f"{self.name}: unknown preset {self.preset!r}; known: {sorted(self.PRESETS)}")
        base = dict(self.PRESETS[self.preset])
        extra = {k: v for k, v in self.params.items() if k not in COMMON_PARAMS}
        unknown = sorted(set(extra) - set(base))
        if unknown:
            raise ConfigError(f"{self.name}: unknown parameters {unknown}; known: {sorted(set(base) | set(COMMON_PARAMS))}")
        base.update(extra)  # an explicit None switches a step off (e.g. load_size=None: no resize)
        return base

    # --- scoring --------------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        super().load(device)
        cfg, path = self.config(), self._require_checkpoint()
        if path.is_dir():  # say which architecture to ask for before key errors could
            self._check_arch(read_manifest(path), cfg)
        model = self.build_model(cfg)
        load_weights(model, path, self.name, self.remap_upstream)
        self.model_ = model.to(device).eval()

    def _check_arch(self, manifest: Mapping[str, Any], cfg: Mapping[str, Any]) -> None:
        trained = manifest.get("params", {})
        wrong = {k: trained[k] for k in self.ARCH_KEYS if k in trained and trained[k] != cfg[k]}
        if wrong:
            fix = ", ".join(f"{k}={v!r}" for k, v in wrong.items())
            raise CheckpointError(f"{self.name}: checkpoint {self.checkpoint!r} was trained with {fix} "
                                  f"(preset {manifest['params'].get('preset')!r}); create the detector with {fix}")

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        raise NotImplementedError

    def score_batch(self, items: Sequence[torch.Tensor]) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise CheckpointError(f"{self.name}: call load(device) before scoring")
        # sigmoid in float64: a float32 sigmoid rounds confident logits to exactly 1.0
        forward = lambda x: torch.sigmoid(self.model_(x).double())  # noqa: E731 - higher = generated
        return score_by_shape(forward, items, int(self.eval_batch_size), self.device)

    # --- training -------------------------------------------------------------------------
    def _initialise(self, model: nn.Module) -> dict[str, Any]:
        """Weights to start from: ``init=PATH`` (a checkpoint of this detector) or scratch."""
        if not self.init:
            return {"kind": "scratch"}
        load_weights(model, self.init, self.name, self.remap_upstream)
        return {"kind": "checkpoint", **weights_identity(self.init)}

    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu") -> Path:
        """Train on ``train`` with the authors' recipe and write a checkpoint folder ``out``."""
        cfg = self.config()
        images, labels, ids, skipped = decode_training_images(train, lambda im: self.train_resize(im, cfg))
        if len(set(labels.tolist())) < 2:
            raise ConfigError(f"{self.name} needs real (0) and generated (1) training images")
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = self.build_model(cfg)
        init = self._initialise(model)
        model.to(device)
        train_idx, val_idx = split_train_val(labels, float(cfg["val_fraction"]), seed)
        val_inputs = [self.val_input(images[i], cfg) for i in val_idx]
        schedule = self.schedule(cfg)
        calibration = [self.val_input(images[i], cfg) for i in train_idx] if schedule.recalibrate_bn else []
        log = train_classifier(model, lambda i, r: self.train_input(images[i], cfg, r), labels, train_idx,
                               val_inputs, labels[val_idx], schedule, device, rng, calibration)
        self.model_, self.device = model.eval(), device
        return write_checkpoint(
            out, self.name, model.state_dict(), params={**cfg, "preset": self.preset},
            data_sha256=data_manifest_sha256(ids, labels.tolist()),
            extra={"init": init, "seed": seed, "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
                   "skipped": skipped, "training": log.as_dict()},
        )


def decode_training_images(train: TrainingSet, resize) -> tuple[list[Image.Image], np.ndarray, list[str], list[str]]:
    """Every decodable training image, resized once; undecodable ones are listed, not fatal."""
    images, labels, ids, skipped = [], [], [], []
    for i, sample in enumerate(train.samples):
        try:
            images.append(resize(train.image(i).convert("RGB")))
        except DecodeError as exc:
            skipped.append(f"{sample.path}: {exc.reason}")
            continue
        labels.append(int(sample.label))
        ids.append(sample.sample_id)
    return images, np.array(labels, dtype=np.int64), ids, skipped
