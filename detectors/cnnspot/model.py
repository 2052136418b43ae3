"""CNNSpot: Wang, Wang, Zhang, Owens and Efros, "CNN-generated images are surprisingly easy
to spot... for now", CVPR 2020. Upstream: github.com/PeterWang512/CNNDetection.

Network: torchvision's ResNet-50 with ``fc`` replaced by ``Linear(2048, 1)``; score =
sigmoid(logit) = P(generated). Their ``networks/resnet.py`` is torchvision's, so the key
layout is torchvision's (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight`` ...
``layer4.2.bn3.*``, ``fc.weight`` (1, 2048), ``fc.bias`` (1,)); their ``.pth`` files hold
that state dict under ``model`` (``networks/base_model.py``).

Evaluation (their ``demo_dir.py``): no resize; an optional centre crop (``crop=224``,
zero-padded when smaller, as torchvision's ``CenterCrop``); ``ToTensor`` and ImageNet
normalisation. Images of different sizes are batched by shape.

Training (``train.py``, ``data/datasets.py``, ``options/``): shorter side resized to 256
(bilinear), blur (sigma in [0, 3]) and JPEG (quality 30-100, OpenCV or Pillow) each with
probability ``aug_prob`` (published: 0.1 and 0.5), random crop 224, horizontal flip, batch
64, Adam (lr 1e-4, betas 0.9/0.999), ``BCEWithLogitsLoss``, early stopping on validation
accuracy with lr/10 drops (:mod:`harness.recipes.cnndetection.training`).

Deviations, all forced by what is available here and recorded in the checkpoint manifest:
- no ImageNet weights: training starts from scratch (fc initialised N(0, 0.02) as theirs) or
  from ``init=PATH``; an ImageNet classifier state dict (``fc`` of 1000 classes, e.g.
  torchvision's ``resnet50-19c8e357.pth``) is accepted there, its ``fc`` replaced by a new
  head, which is the authors' recipe;
- the validation split is held out from the training set (``val_fraction``, seeded);
- the validation images are centre-cropped without blur/JPEG (theirs apply fixed ones).

``preset="cpu-small"`` is NOT the paper's model: a torchvision ResNet-18 trained from scratch
on 64 x 64 crops for 12 epochs (lr 1e-3, batch 32, blur/JPEG probability 0.1), with the
BatchNorm statistics re-estimated on the training images before each validation and at the
end (a few dozen steps leave the running averages far behind the weights), sized so that
~150 training images train in well under a minute on a 2-core CPU. It exists to exercise
the pipeline and the demo.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn

from harness.api import ConfigError
from harness.checkpoint import load_state_dict_strict
from harness.recipes.cnndetection.classifier import TrainableCNN
from harness.recipes.cnndetection.recipe import (IMAGENET_MEAN, IMAGENET_STD, CNNDetectionAugment, center_crop,
                                      data_augment, random_crop, random_hflip, resize_short_side,
                                      to_normalised_tensor)
from harness.recipes.cnndetection.training import Schedule
from harness.recipes.cnndetection.weights import fill_batch_counters, load_weights, read_state_file, unwrap_state, weights_identity

__all__ = ["CNNSpotDetector", "build_cnnspot", "remap_cnndetection", "ARCHS"]

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
INIT_GAIN = 0.02  # --init_gain: std of the new fc's weights

_PAPER = {
    "arch": "resnet50", "train_crop": 224, "load_size": 256, "aug_prob": 0.5,
    "blur_sigma": (0.0, 3.0), "jpeg_quality": (30, 100), "jpeg_methods": ("cv2", "pil"),
    "epochs": 1000, "batch_size": 64, "lr": 1e-4, "patience": 5, "val_fraction": 0.1,
    "recalibrate_bn": False,
}
PRESETS: dict[str, dict[str, Any]] = {
    "paper": _PAPER,
    # CPU preset (not the paper's model): ResNet-18, 64 x 64 crops, a few epochs.
    "cpu-small": {**_PAPER, "arch": "resnet18", "train_crop": 64, "aug_prob": 0.1, "epochs": 12,
                  "batch_size": 32, "lr": 1e-3, "patience": 4, "val_fraction": 0.15,
                  "recalibrate_bn": True},
}


def build_cnnspot(arch: str = "resnet50") -> nn.Module:
    """A torchvision ResNet with a one-logit ``fc``, initialised as CNNDetection's new head."""
    if arch not in ARCHS:
        raise ConfigError(f"cnnspot: arch must be one of {list(ARCHS)}, not {arch!r}")
    model = getattr(torchvision.models, arch)(weights=None, num_classes=1)
    nn.init.normal_(model.fc.weight, 0.0, INIT_GAIN)
    return model


def remap_cnndetection(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """CNNDetection's keys are torchvision's; only BatchNorm counters may be missing."""
    return fill_batch_counters(state, module)


def _is_imagenet_classifier(state: Mapping[str, torch.Tensor]) -> bool:
    weight = state.get("fc.weight")
    return weight is not None and weight.ndim == 2 and weight.shape[0] == 1000


class CNNSpotDetector(TrainableCNN):
    """CNNSpot (Wang et al., CVPR 2020): see the module docstring for the input contract."""

    name = "cnnspot"
    PRESETS = PRESETS
    ARCH_KEYS = ("arch",)

    def build_model(self, cfg: Mapping[str, Any]) -> nn.Module:
        return build_cnnspot(cfg["arch"])

    def remap_upstream(self, state, module):
        return remap_cnndetection(state, module)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return to_normalised_tensor(center_crop(image.convert("RGB"), self.crop), IMAGENET_MEAN, IMAGENET_STD)

    # --- training -------------------------------------------------------------------------
    def train_resize(self, image: Image.Image, cfg: Mapping[str, Any]) -> Image.Image:
        return resize_short_side(image, cfg["load_size"])

    def train_input(self, image: Image.Image, cfg: Mapping[str, Any], rng: np.random.Generator) -> torch.Tensor:
        p = float(cfg["aug_prob"])
        aug = CNNDetectionAugment(p, tuple(cfg["blur_sigma"]), p, tuple(cfg["jpeg_quality"]),
                                  tuple(cfg["jpeg_methods"]))
        if p > 0:
            image = data_augment(image, aug, rng)
        image = random_hflip(random_crop(image, cfg["train_crop"], rng), rng)
        return to_normalised_tensor(image, IMAGENET_MEAN, IMAGENET_STD)

    def val_input(self, image: Image.Image, cfg: Mapping[str, Any]) -> torch.Tensor:
        return to_normalised_tensor(center_crop(image, cfg["train_crop"]), IMAGENET_MEAN, IMAGENET_STD)

    def schedule(self, cfg: Mapping[str, Any]) -> Schedule:
        if not 0.0 <= float(cfg["aug_prob"]) <= 1.0:
            raise ConfigError(f"cnnspot: aug_prob must be in [0, 1] (published: 0.1, 0.5), not {cfg['aug_prob']!r}")
        return Schedule(epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]), lr=float(cfg["lr"]),
                        betas=(0.9, 0.999), optimizer="adam", patience=cfg["patience"],
                        recalibrate_bn=bool(cfg["recalibrate_bn"]))

    def _initialise(self, model: nn.Module) -> dict[str, Any]:
        if not self.init:
            return {"kind": "scratch"}
        if Path(self.init).expanduser().is_file():
            state = unwrap_state(read_state_file(Path(self.init).expanduser()))
            if _is_imagenet_classifier(state):
                # The authors' start: an ImageNet ResNet whose 1000-class fc gives way to a new head.
                head = {k: v for k, v in model.state_dict().items() if k.startswith("fc.")}
                body = {k: v for k, v in state.items() if not k.startswith("fc.")}
                load_state_dict_strict(model, fill_batch_counters({**body, **head}, model), source=str(self.init))
                return {"kind": "imagenet-classifier", **weights_identity(self.init)}
        load_weights(model, self.init, self.name, self.remap_upstream)
        return {"kind": "checkpoint", **weights_identity(self.init)}
