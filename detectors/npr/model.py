"""NPR: Tan, Zhao, Wei, Gu, Liu and Wei, "Rethinking the Up-Sampling Operations in CNN-based
Generative Network for Generalizable Deepfake Detection", CVPR 2024.
Upstream: github.com/chuangchuangtan/NPR-DeepfakeDetection (``networks/resnet.py``).

Neighbouring Pixel Relationships: ``NPR = x - up2(down2(x))`` with nearest-neighbour
resampling by 0.5 then 2 (``F.interpolate(..., mode='nearest', recompute_scale_factor=True)``),
computed on the ImageNet-normalised image; the network sees ``NPR * 2/3``. Their
``resnet50`` is reduced: ``conv1`` 3x3 stride 2 (3 -> 64), ``bn1``, ReLU, max-pool, then only
``layer1`` (3 Bottlenecks, 64 -> 256) and ``layer2`` (4 Bottlenecks, 128 -> 512, stride 2 on
the 3x3 conv), global average pooling and ``fc1 = Linear(512, 1)``. Key layout (their
``state_dict``): ``conv1.weight`` (64, 3, 3, 3); ``bn1.{weight,bias,running_mean,running_var,
num_batches_tracked}``; ``layer1.{0,1,2}.{conv1,bn1,conv2,bn2,conv3,bn3}.*``,
``layer1.0.downsample.{0,1}.*``; ``layer2.{0..3}...``, ``layer2.0.downsample.0.weight``
(512, 256, 1, 1); ``fc1.weight`` (1, 512), ``fc1.bias`` (1,). torchvision's ``Bottleneck``
has the same names and shapes, so it is used here.

Checkpoints: the released ``NPR.pth`` is a bare state dict (``test.py`` loads it with
``strict=True``). Their ``networks/trainer.py`` attaches an unused ``fc = Linear(2048, 1)``
to the model before training, so checkpoints written by their ``train.py`` also hold
``fc.weight`` (1, 2048) and ``fc.bias`` (1,); :func:`remap_npr` drops exactly those two.

Evaluation (their ``test.py``/``validate.py``): no crop; no resize where the test set
allows it (they resize to 256 x 256 only to batch images of different sizes; here images
are batched by shape instead); ImageNet normalisation. An odd height or width would make
their ``x - interpolate(...)`` fail; the last row/column is dropped, as their commented-out
code in ``forward`` does.

Training (README and ``options/``): ``Resize((256, 256))``, random crop 224, horizontal
flip, no blur/JPEG (their ``data_augment`` call is commented out), batch 32, Adam (lr 2e-4,
betas 0.9/0.999), ``BCEWithLogitsLoss``, 50 epochs, lr x 0.8 at the end of every 10th epoch
(``--delr_freq 10``), last weights kept. Deviations: as for ``cnnspot``, an optional
validation split is held out from the training set (``val_fraction``, only reported).

``preset="cpu-small"`` keeps the authors' network (it is already small) and trains it on
64 x 64 crops for a few epochs with BatchNorm statistics re-estimated at the end: a CPU
preset for the pipeline and the demo, not the paper's training.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models.resnet import Bottleneck

from harness.recipes.cnndetection.classifier import TrainableCNN
from harness.recipes.cnndetection.recipe import (IMAGENET_MEAN, IMAGENET_STD, CNNDetectionAugment, center_crop,
                                      data_augment, random_crop, random_hflip, resize_square, to_normalised_tensor,
                                      trim_to_even)
from harness.recipes.cnndetection.training import Schedule
from harness.recipes.cnndetection.weights import fill_batch_counters

__all__ = ["NPRNet", "NPRDetector", "npr_residual", "remap_npr"]


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """``x - nearest_up2(nearest_down2(x))`` exactly as the authors' ``ResNet.interpolate``."""
    half = F.interpolate(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True)
    return x - F.interpolate(half, scale_factor=2.0, mode="nearest", recompute_scale_factor=True)


class NPRNet(nn.Module):
    """The authors' reduced ResNet-50 (``layers=[3, 4]`` used of ``[3, 4, 6, 3]``)."""

    def __init__(self, layers: tuple[int, int] = (3, 4), num_classes: int = 1):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(512, num_classes)
        for m in self.modules():  # the authors' initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(npr_residual(x) * 2.0 / 3.0))))
        x = self.layer2(self.layer1(x))
        return self.fc1(torch.flatten(self.avgpool(x), 1))


def remap_npr(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """Drop the unused ``fc`` head their trainer attaches; fill missing BatchNorm counters."""
    unused = {"fc.weight": (1, 2048), "fc.bias": (1,)}
    if all(k in state and tuple(state[k].shape) == shape for k, shape in unused.items()):
        state = {k: v for k, v in state.items() if k not in unused}
    return fill_batch_counters(state, module)


_PAPER = {
    "train_crop": 224, "load_size": 256, "aug_prob": 0.0, "blur_sigma": (0.0, 3.0), "jpeg_quality": (30, 100),
    "jpeg_methods": ("cv2", "pil"), "epochs": 50, "batch_size": 32, "lr": 2e-4, "decay_every": 10,
    "val_fraction": 0.0, "recalibrate_bn": False,
}
PRESETS: dict[str, dict[str, Any]] = {
    "paper": _PAPER,
    # CPU preset (the authors' network, a short run on small crops).
    "cpu-small": {**_PAPER, "train_crop": 64, "epochs": 10, "decay_every": 4, "lr": 1e-3,
                  "recalibrate_bn": True},
}


class NPRDetector(TrainableCNN):
    """NPR (Tan et al., CVPR 2024): see the module docstring for the input contract."""

    name = "npr"
    PRESETS = PRESETS

    def build_model(self, cfg: Mapping[str, Any]) -> nn.Module:
        return NPRNet()

    def remap_upstream(self, state, module):
        return remap_npr(state, module)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        image = trim_to_even(center_crop(image.convert("RGB"), self.crop))
        return to_normalised_tensor(image, IMAGENET_MEAN, IMAGENET_STD)

    # --- training -------------------------------------------------------------------------
    def train_resize(self, image: Image.Image, cfg: Mapping[str, Any]) -> Image.Image:
        return resize_square(image, cfg["load_size"])

    def train_input(self, image: Image.Image, cfg: Mapping[str, Any], rng: np.random.Generator) -> torch.Tensor:
        p = float(cfg["aug_prob"])
        if p > 0:  # off in the authors' recipe; offered for robustness experiments
            aug = CNNDetectionAugment(p, tuple(cfg["blur_sigma"]), p, tuple(cfg["jpeg_quality"]),
                                      tuple(cfg["jpeg_methods"]))
            image = data_augment(image, aug, rng)
        image = random_hflip(random_crop(image, cfg["train_crop"], rng), rng)
        return to_normalised_tensor(trim_to_even(image), IMAGENET_MEAN, IMAGENET_STD)

    def val_input(self, image: Image.Image, cfg: Mapping[str, Any]) -> torch.Tensor:
        return to_normalised_tensor(trim_to_even(center_crop(image, cfg["train_crop"])), IMAGENET_MEAN, IMAGENET_STD)

    def schedule(self, cfg: Mapping[str, Any]) -> Schedule:
        return Schedule(epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]), lr=float(cfg["lr"]),
                        betas=(0.9, 0.999), optimizer="adam", patience=None,
                        decay_every=cfg["decay_every"], decay_factor=0.8,
                        recalibrate_bn=bool(cfg["recalibrate_bn"]))
