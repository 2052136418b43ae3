"""UnivFD: Ojha, Li and Lee, "Towards Universal Fake Image Detectors that Generalize Across
Generative Models", CVPR 2023. Upstream: github.com/WisconsinAIVision/UniversalFakeDetect.

A frozen CLIP ViT-L/14 image encoder (OpenAI weights; ``encode_image``, the 768-d projected
features, not L2-normalised) and one linear layer ``fc = Linear(768, 1)``; score =
sigmoid(fc(features)). The released head ``pretrained_weights/fc_weights.pth`` is the
state dict of that layer: ``weight`` (1, 768), ``bias`` (1,). Their training script saves
the whole model under ``model`` (keys ``fc.weight``/``fc.bias`` beside the CLIP weights);
the head is taken from either.

CLIP runs through open_clip (an optional dependency: ``pip install 'exifbench[univfd]'``),
model ``ViT-L-14-quickgelu`` (OpenAI's CLIP uses QuickGELU), whose key layout is OpenAI's.
Its weights come from a local file (``clip_weights=PATH``): a state dict (``.pt``/``.pth``/
``.bin``, read with ``weights_only=True``) or ``.safetensors``, of the whole CLIP model or of
its ``visual.*`` tower, loaded strictly. OpenAI's own ``ViT-L-14.pt`` is a TorchScript
archive; convert it once with
``torch.save(torch.jit.load("ViT-L-14.pt", map_location="cpu").state_dict(), "ViT-L-14.state.pt")``.

Evaluation (their ``validate.py``): no resize, ``CenterCrop(224)`` (zero-padded when the
image is smaller), ``ToTensor``, CLIP normalisation.

Training (``train.py``, ``networks/trainer.py``, ``options/``, run with ``--fix_backbone``):
shorter side resized to 256, blur (sigma in [0, 3]) and JPEG (quality 30-100, OpenCV or
Pillow) each with probability 0.5, random crop 224, flip; only ``fc`` trains (initialised
N(0, 0.02)), AdamW (lr 1e-4, betas 0.9/0.999, weight decay 0), batch 256, BCE, the
CNNDetection early stopping on validation accuracy. Here the backbone's features of
``views`` augmented crops per image are computed once and kept in memory, and the linear
probe trains on them (the authors draw a new augmentation every epoch); the validation
split is held out from the training set.

``random_clip_seed`` builds CLIP with random weights instead of loading a file: for testing
the wiring only (the conformance kit uses it with the bundled ``tiny-test-clip`` config);
such a detector is no UnivFD, and its checkpoints say so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from harness.api import CheckpointError, ConfigError
from harness.detector import BaseDetector, TrainingSet
from harness.checkpoint import (data_manifest_sha256, file_sha256, load_state_dict_strict, read_checkpoint,
                                      write_checkpoint)
from harness.recipes.cnndetection.classifier import decode_training_images
from harness.recipes.cnndetection.recipe import (CLIP_MEAN, CLIP_STD, CNNDetectionAugment, center_crop, data_augment,
                                      random_crop, random_hflip, resize_short_side, to_normalised_tensor)
from harness.recipes.cnndetection.training import Schedule, split_train_val, train_classifier
from harness.recipes.cnndetection.weights import read_state_file, unwrap_state

__all__ = ["UnivFDDetector", "build_clip", "read_clip_state", "head_state", "BUNDLED_CONFIGS"]

#: open_clip model configs shipped with this package (name -> JSON file)
BUNDLED_CONFIGS = {p.stem: p for p in (Path(__file__).parent / "configs").glob("*.json")}
#: keys of OpenAI's TorchScript state dict that are not parameters
_NON_PARAMETER_KEYS = ("input_resolution", "context_length", "vocab_size")


def _open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ConfigError("univfd needs open_clip: pip install 'exifbench[univfd]' (or open_clip_torch)") from exc
    return open_clip


def build_clip(model: str = "ViT-L-14-quickgelu", config: str | Path | None = None) -> nn.Module:
    """An open_clip CLIP with random weights (nothing is downloaded); ``config`` is an
    open_clip JSON model config, whose file name then names the model."""
    open_clip = _open_clip()
    config = config or BUNDLED_CONFIGS.get(model)
    if config is not None:
        open_clip.add_model_config(Path(config))
        model = Path(config).stem
    if model not in open_clip.list_models():
        raise ConfigError(f"univfd: unknown open_clip model {model!r}; e.g. 'ViT-L-14-quickgelu'")
    return open_clip.create_model(model, pretrained=None, device="cpu")


def read_clip_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A CLIP state dict from a local file (safetensors or ``torch.load(weights_only=True)``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"univfd: CLIP weights {str(path)!r} do not exist; give clip_weights=PATH to "
                              "OpenAI's CLIP ViT-L/14 weights (nothing can be downloaded here)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = unwrap_state(read_state_file(path), entries=("state_dict",))
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}. A TorchScript archive (OpenAI's ViT-L-14.pt) must be converted "
                                  "to a state dict first; see detectors.univfd.model") from exc
    return {k: v for k, v in state.items() if k not in _NON_PARAMETER_KEYS}


def load_clip_weights(clip: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strictly into the whole model, or into ``clip.visual`` for a ``visual.*``-only file."""
    if state and all(k.startswith("visual.") for k in state):
        load_state_dict_strict(clip.visual, {k[len("visual."):]: v for k, v in state.items()}, source=source)
    else:
        load_state_dict_strict(clip, state, source=source)


def head_state(obj: object) -> dict[str, torch.Tensor]:
    """``{weight, bias}`` of the authors' head: ``fc_weights.pth``, or ``fc.*`` of a training save."""
    state = unwrap_state(obj, entries=("model",))
    if "fc.weight" in state or "fc.bias" in state:
        return {k[len("fc."):]: v for k, v in state.items() if k.startswith("fc.")}
    return state


class UnivFDDetector(BaseDetector):
    """UnivFD (Ojha et al., CVPR 2023): see the module docstring for the input contract."""

    name = "univfd"

    def __init__(self, checkpoint: str | None = None, clip_weights: str | None = None,
                 clip_model: str = "ViT-L-14-quickgelu", clip_config: str | None = None,
                 random_clip_seed: int | None = None, crop: int = 224, eval_batch_size: int = 16,
                 load_size: int | None = 256, train_crop: int = 224, aug_prob: float = 0.5,
                 blur_sigma: Sequence[float] = (0.0, 3.0), jpeg_quality: Sequence[int] = (30, 100),
                 jpeg_methods: Sequence[str] = ("cv2", "pil"), views: int = 1, epochs: int = 100,
                 batch_size: int = 256, lr: float = 1e-4, patience: int | None = 5, val_fraction: float = 0.1):
        super().__init__(checkpoint=checkpoint, clip_weights=clip_weights, clip_model=clip_model,
                         clip_config=clip_config, random_clip_seed=random_clip_seed, crop=crop,
                         eval_batch_size=eval_batch_size, load_size=load_size, train_crop=train_crop,
                         aug_prob=aug_prob, blur_sigma=blur_sigma, jpeg_quality=jpeg_quality,
                         jpeg_methods=jpeg_methods, views=views, epochs=epochs, batch_size=batch_size, lr=lr,
                         patience=patience, val_fraction=val_fraction)

    # --- backbone -------------------------------------------------------------------------
    def clip_identity(self) -> dict[str, Any]:
        """What the features come from; a trained head is only valid on the same backbone."""
        if self.random_clip_seed is not None:
            return {"model": self.clip_model, "config": _config_name(self.clip_config),
                    "random_seed": int(self.random_clip_seed), "note": "random weights: testing only"}
        if not self.clip_weights:
            raise CheckpointError("univfd needs clip_weights=PATH: OpenAI's CLIP ViT-L/14 weights as a state dict "
                                  "or .safetensors file (nothing can be downloaded here)")
        path = Path(self.clip_weights).expanduser()
        sha = file_sha256(path) if path.is_file() else None
        return {"model": self.clip_model, "config": _config_name(self.clip_config), "weights_sha256": sha}

    def _backbone(self, device: str) -> nn.Module:
        if self.random_clip_seed is not None:
            torch.manual_seed(int(self.random_clip_seed))
            clip = build_clip(self.clip_model, self.clip_config)
        else:
            self.clip_identity()  # the missing-weights error, before building a large model
            clip = build_clip(self.clip_model, self.clip_config)
            load_clip_weights(clip, read_clip_state(self.clip_weights), str(self.clip_weights))
        clip.requires_grad_(False)
        return clip.to(device).eval()

    @torch.no_grad()
    def _encode(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        b = int(self.eval_batch_size)
        feats = [self.clip_.encode_image(torch.stack(list(tensors[i:i + b])).to(self.device)).float()
                 for i in range(0, len(tensors), b)]
        return torch.cat(feats) if feats else torch.empty(0)

    # --- scoring --------------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        super().load(device)
        self.clip_ = self._backbone(device)
        self.fc_ = self._load_head(self._require_checkpoint()).to(device).eval()

    def _new_head(self) -> nn.Linear:
        fc = nn.Linear(int(self.clip_.visual.output_dim), 1)
        nn.init.normal_(fc.weight, 0.0, 0.02)  # --init_gain
        return fc

    def _load_head(self, path: Path) -> nn.Linear:
        fc = self._new_head()
        if path.is_dir():
            state, manifest = read_checkpoint(path, self.name)
            trained_on, current = manifest.get("extra", {}).get("clip"), self.clip_identity()
            if trained_on != current:
                raise CheckpointError(f"univfd: head {str(path)!r} was trained on CLIP {trained_on}, "
                                      f"but this detector uses {current}")
        else:
            try:
                state = head_state(read_state_file(path))
            except CheckpointError as exc:
                raise CheckpointError(f"univfd: {str(path)!r}: {exc}") from exc
        load_state_dict_strict(fc, state, source=str(path))
        return fc

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return to_normalised_tensor(center_crop(image.convert("RGB"), int(self.crop)), CLIP_MEAN, CLIP_STD)

    @torch.no_grad()
    def score_batch(self, items: Sequence[torch.Tensor]) -> np.ndarray:
        if not hasattr(self, "fc_"):
            raise CheckpointError("univfd: call load(device) before scoring")
        if not len(items):
            return np.empty(0)
        logits = self.fc_(self._encode(items)).reshape(-1).double()
        return torch.sigmoid(logits).cpu().numpy()

    # --- training -------------------------------------------------------------------------
    def _augment(self) -> CNNDetectionAugment:
        p = float(self.aug_prob)
        return CNNDetectionAugment(p, tuple(self.blur_sigma), p, tuple(self.jpeg_quality), tuple(self.jpeg_methods))

    def _train_view(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        if float(self.aug_prob) > 0:
            image = data_augment(image, self._augment(), rng)
        image = random_hflip(random_crop(image, int(self.train_crop), rng), rng)
        return to_normalised_tensor(image, CLIP_MEAN, CLIP_STD)

    def _features(self, images: list[Image.Image], idx: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """(len(images), views, D) features of augmented crops; rows outside ``idx`` stay zero."""
        views = torch.stack([self._encode([self._train_view(images[i], rng) for i in idx])
                             for _ in range(int(self.views))], dim=1)
        feats = torch.zeros(len(images), *views.shape[1:])
        feats[torch.as_tensor(idx)] = views.cpu()
        return feats

    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu") -> Path:
        """Linear probe on the frozen CLIP features of ``train``; writes a checkpoint folder."""
        images, labels, ids, skipped = decode_training_images(train, lambda im: resize_short_side(im, self.load_size))
        if len(set(labels.tolist())) < 2:
            raise ConfigError("univfd needs real (0) and generated (1) training images")
        self.device, rng = device, np.random.default_rng(seed)
        self.clip_ = self._backbone(device)
        torch.manual_seed(seed)
        train_idx, val_idx = split_train_val(labels, float(self.val_fraction), seed)
        feats = self._features(images, train_idx, rng)
        val_feats = self._encode([to_normalised_tensor(center_crop(images[i], int(self.train_crop)), CLIP_MEAN,
                                                       CLIP_STD) for i in val_idx])
        fc = self._new_head().to(device)
        schedule = Schedule(epochs=int(self.epochs), batch_size=int(self.batch_size), lr=float(self.lr),
                            optimizer="adamw", weight_decay=0.0, patience=self.patience)
        pick = lambda i, r: feats[i, int(r.integers(feats.shape[1]))]  # noqa: E731 - a cached view
        log = train_classifier(fc, pick, labels, train_idx, list(val_feats), labels[val_idx], schedule, device, rng)
        self.fc_ = fc.eval()
        params = {k: v for k, v in self.get_params().items() if k != "checkpoint"}
        return write_checkpoint(
            out, self.name, fc.state_dict(), params=params,
            data_sha256=data_manifest_sha256(ids, labels.tolist()),
            extra={"clip": self.clip_identity(), "seed": seed, "n_train": int(len(train_idx)),
                   "n_val": int(len(val_idx)), "skipped": skipped, "training": log.as_dict()},
        )


def _config_name(config: str | Path | None) -> str | None:
    return Path(config).name if config else None
