"""``exif-bc``: the binary SDAIE detector (authors' ``bc_train.py`` / ``bc_eval.py``).

A network of the backbone's architecture, trained from scratch on real and generated
images with cross-entropy + ``alpha`` (0.05) x the sum of the MSEs between its four CNN
group outputs and covariance vectors and those of the frozen pretext backbone. Training
reads 16 random tiles per image after the authors' augmentation (random square resize,
blur, JPEG); scoring reads all tiles (``tiling``) and returns P(generated) = 1 - softmax[0].

Parameters: ``checkpoint`` (an authors' bc ``.pth`` or an ``exif-bc`` folder),
``backbone`` (the teacher for ``fit``: an authors' pretext ``.pth``, an ``exif-backbone``
folder, or ``"random"`` for tests), ``tiling``, ``epochs``, ``batch_size``, ``lr``,
``alpha``, ``n_crops``, ``augment``, ``width``/``patch_size`` (must match the teacher).
Defaults are the paper's: ``batch_size`` 800 is the authors' global batch (100 images on
each of 8 GPUs); one process here takes the whole batch in one step.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from harness.api import ConfigError
from harness.detector import TrainingSet
from harness.checkpoint import data_manifest_sha256, write_checkpoint
from detectors.exif.augment import custom_augment
from detectors.exif.base import ExifDetectorBase
from detectors.exif.curves import write_loss_curve
from detectors.exif.losses import distillation_mse
from detectors.exif.model import BackboneConfig, BinaryNet
from detectors.exif.tiling import normalise, random_crops, to_tensor
from detectors.exif.weights import RANDOM, load_backbone, load_binary, source_sha256

__all__ = ["ExifBinaryDetector", "training_crops"]


def training_crops(image: Image.Image, n: int, patch: int, rng: np.random.Generator,
                   augment: bool = True) -> torch.Tensor:
    """The authors' ``_fixpatch``: augment, resize to one tile if smaller, normalise, crop."""
    image = image.convert("RGB")
    if augment:
        image = custom_augment(image, rng)
    if min(image.size) < patch:
        image = image.resize((patch, patch), Image.BILINEAR)
    return random_crops(normalise(to_tensor(image)), n, patch, rng)


class ExifBinaryDetector(ExifDetectorBase):
    name = "exif-bc"

    def __init__(self, checkpoint: str | None = None, backbone: str | None = None, tiling: str = "center",
                 epochs: int = 15, batch_size: int = 800, lr: float = 1e-3, alpha: float = 0.05, n_crops: int = 16,
                 augment: bool = True, width: int = 32, patch_size: int = 64, **params: Any):
        super().__init__(checkpoint=checkpoint, backbone=backbone, tiling=tiling, epochs=epochs,
                         batch_size=batch_size, lr=lr, alpha=alpha, n_crops=n_crops, augment=augment, width=width,
                         patch_size=patch_size, **params)
        self.threshold = 0.5

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        net, _ = load_binary(self._require_checkpoint())
        self._set_backbone(net.extractor, device)
        self.fc_ = net.fc.to(device).eval()

    def score_batch(self, items: Sequence[torch.Tensor]) -> np.ndarray:
        with torch.inference_mode():
            logits = self.fc_(self._features(items))
            return (1 - logits.softmax(dim=-1)[:, 0]).double().cpu().numpy()

    # --- training ----------------------------------------------------------------------
    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu", **_: Any) -> Path:
        if not self.backbone:
            raise ConfigError("exif-bc fit needs `backbone = PATH` (the frozen pretext backbone: an authors' .pth "
                              "or an exif-backbone folder); train one with `exifbench train exif-backbone`")
        if len(set(train.labels.tolist())) < 2:
            raise ConfigError("exif-bc needs real (label 0) and generated (label 1) training images")
        config = BackboneConfig(width=int(self.width), patch_size=int(self.patch_size))
        teacher = load_backbone(self.backbone, config, seed=seed).to(device).eval().requires_grad_(False)
        if teacher.config.patch_size != self.patch_size:
            raise ConfigError(f"exif-bc: teacher uses {teacher.config.patch_size}px tiles; set patch_size accordingly")
        torch.manual_seed(seed)
        net = BinaryNet(teacher.config).to(device)
        history = self._train(net, teacher, train, np.random.default_rng(seed), device)
        write_loss_curve(out, history, "exif-bc training loss")
        labels = train.labels.tolist()
        return write_checkpoint(
            out, self.name, net.state_dict(), params={**teacher.config.as_dict(), "tiling": self.tiling},
            config={k: self.params[k] for k in ("epochs", "batch_size", "lr", "alpha", "n_crops", "augment")},
            data_sha256=data_manifest_sha256([s.sample_id for s in train.samples], labels),
            extra={"backbone": str(self.backbone), "backbone_sha256": source_sha256(self.backbone),
                   "random_backbone": str(self.backbone) == RANDOM, "n_train": len(labels),
                   "final_loss": history[-1]["loss"] if history else None},
        )

    def _train(self, net: BinaryNet, teacher, train: TrainingSet, rng: np.random.Generator, device: str) -> list[dict]:
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        images = [train.image(i) for i in range(len(train))] if len(train) <= 4096 else None
        labels = torch.as_tensor(train.labels)
        bs, history, step = min(int(self.batch_size), len(train)), [], 0
        net.train()
        for epoch in range(int(self.epochs)):
            order = rng.permutation(len(train))
            for start in range(0, len(order) - bs + 1, bs):  # drop_last, as the authors
                idx = order[start:start + bs]
                x = torch.stack([training_crops(images[i] if images else train.image(i), int(self.n_crops),
                                                int(self.patch_size), rng, bool(self.augment)) for i in idx])
                loss, ce, dis = self._step(net, teacher, x.to(device), labels[idx].to(device), opt)
                step += 1
                history.append({"step": step, "epoch": epoch + 1, "loss": loss, "ce": ce, "distill": dis})
        return history

    def _step(self, net: BinaryNet, teacher, x: torch.Tensor, y: torch.Tensor, opt) -> tuple[float, float, float]:
        with torch.no_grad():
            target = teacher(x)
        feats = net.extractor(x)
        ce = F.cross_entropy(net.fc(feats[0]), y)
        dis = distillation_mse(feats, target)
        loss = ce + float(self.alpha) * dis
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach()), float(ce.detach()), float(dis.detach())
