"""``exif-backbone``: the self-supervised EXIF pretext training of SDAIE (authors'
``backbone_train.py``).

Each step draws pairs of real photographs, 16 random tiles of each (after the CLIP
normalisation), and trains the backbone with its 14 heads: cross-entropy on the
categorical tags of the first photo plus a Thurstone ranking BCE on the ordinal tags of the
pair (see :mod:`detectors.exif.labels`, :mod:`detectors.exif.losses`); unweighted sum;
Adam 1e-4. A ``state.pt`` beside the checkpoint (weights, optimiser, step, random state,
loss history) lets an interrupted job resume; ``loss.csv`` and ``loss.png`` record the
curve. Presets: ``paper`` (the paper's network, 64 pairs per step) and ``cpu-small``
(width 8, 32 px tiles: a smoke-size run of about a minute on two CPU cores).

Deviation: the authors read photos pre-processed into 256 px tensors; here each photo is
decoded once and a centre region of ``cache_side`` px (``None``: the whole photo) is kept
in memory, from which the crops are drawn, so camera traces are never resampled.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from harness.api import ConfigError
from harness.data.exif import read_exif
from harness.detector import TrainingSet
from harness.train.checkpoint import data_manifest_sha256, write_checkpoint
from detectors.exif.curves import write_loss_curve
from detectors.exif.labels import HEAD_TAGS, RANKING, Vocabulary, build_vocabulary, encode_photo, pair_targets
from detectors.exif.losses import pretext_loss
from detectors.exif.model import BackboneConfig, PretextNet
from detectors.exif.tiling import normalise, random_crops

__all__ = ["PretextConfig", "PRESETS", "ExifBackboneTrainer", "PhotoBank"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretextConfig:
    width: int = 32
    patch_size: int = 64
    steps: int = 100_000
    batch_pairs: int = 64
    n_crops: int = 16
    lr: float = 1e-4
    mask_ties: bool = False
    cache_side: int | None = 1024
    log_every: int = 10
    save_every: int = 500
    threads: int | None = None  # torch CPU threads during fit (None: leave as is)


PRESETS = {
    "paper": PretextConfig(),
    # small networks are dominated by per-operation overhead: one thread is faster on a busy CPU
    "cpu-small": PretextConfig(width=8, patch_size=32, steps=50, batch_pairs=4, cache_side=256, log_every=1,
                               save_every=25, threads=1),
}


class PhotoBank:
    """Decoded photos (uint8, centre region) with their encoded EXIF targets."""

    def __init__(self, train: TrainingSet, patch: int, cache_side: int | None):
        exifs, self.images, self.skipped = [], [], []
        for i, sample in enumerate(train.samples):
            if sample.label != 0:
                continue
            exif = _safe_exif(sample.path)
            if not any(t in exif for t in HEAD_TAGS):
                self.skipped.append(sample.path)
                continue
            exifs.append(exif)
            self.images.append(_keep(train.image(i), patch, cache_side))
        if len(self.images) < 2:
            raise ConfigError(f"exif-backbone needs at least 2 real photos with EXIF, found {len(self.images)} "
                              f"({len(self.skipped)} without EXIF tags)")
        self.vocab = build_vocabulary(exifs)
        coded = [encode_photo(e, self.vocab) for e in exifs]
        self.cats = torch.stack([c for c, _ in coded])
        self.vals = torch.stack([v for _, v in coded])

    def __len__(self) -> int:
        return len(self.images)

    def crops(self, idx: np.ndarray, n: int, patch: int, rng: np.random.Generator) -> torch.Tensor:
        return torch.stack([random_crops(normalise(self.images[i].float().div_(255)), n, patch, rng) for i in idx])


def _safe_exif(path: str) -> dict:
    try:
        return read_exif(path)
    except Exception:  # an unreadable EXIF block counts as no EXIF: all its terms are masked
        return {}


def _keep(image: Image.Image, patch: int, side: int | None) -> torch.Tensor:
    image = image.convert("RGB")
    if min(image.size) < patch:
        image = image.resize((patch, patch), Image.BILINEAR)
    if side is not None:
        w, h = image.size
        image = TF.center_crop(image, [min(h, side), min(w, side)])
    return TF.pil_to_tensor(image)


class ExifBackboneTrainer:
    """``fit(train, out)`` trains the pretext network on the reals of ``train``."""

    name = "exif-backbone"

    def __init__(self, preset: str = "paper", **overrides: Any):
        if preset not in PRESETS:
            raise ConfigError(f"exif-backbone: preset={preset!r}; use one of {sorted(PRESETS)}")
        unknown = set(overrides) - set(PretextConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"exif-backbone: unknown parameters {sorted(unknown)}; "
                              f"known: {sorted(PretextConfig.__dataclass_fields__)}")
        self.preset = preset
        self.config = replace(PRESETS[preset], **overrides)

    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu", **_: Any) -> Path:
        before = torch.get_num_threads()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        try:
            return self._fit(train, Path(out), seed, device)
        finally:
            torch.set_num_threads(before)

    def _fit(self, train: TrainingSet, out: Path, seed: int, device: str) -> Path:
        cfg = self.config
        bank = PhotoBank(train, cfg.patch_size, cfg.cache_side)
        torch.manual_seed(seed)
        net = PretextNet(BackboneConfig(width=cfg.width, patch_size=cfg.patch_size)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        rng = np.random.default_rng(seed)
        step, history = self._resume(out, net, opt, rng, bank.vocab)
        started = time.perf_counter()
        while step < cfg.steps:
            loss, terms = self.train_step(net, opt, bank, rng, device)
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                history.append({"step": step, "loss": loss, **{f"head{i}_{t}": float(terms[i])
                                                              for i, t in enumerate(HEAD_TAGS)}})
            if step % cfg.save_every == 0 and step < cfg.steps:
                self._save_state(out, net, opt, rng, step, history, bank.vocab)
        write_loss_curve(out, history, f"exif-backbone pretext loss ({self.preset})")
        self._save_state(out, net, opt, rng, step, history, bank.vocab)
        return self._write(out, net, bank, train, history, time.perf_counter() - started)

    def train_step(self, net: PretextNet, opt, bank: PhotoBank, rng: np.random.Generator,
                   device: str) -> tuple[float, torch.Tensor]:
        """One optimiser step on ``batch_pairs`` random pairs; returns (loss, per-head terms)."""
        cfg = self.config
        i1 = rng.integers(0, len(bank), size=cfg.batch_pairs)
        i2 = rng.integers(0, len(bank), size=cfg.batch_pairs)
        x = torch.cat([bank.crops(i1, cfg.n_crops, cfg.patch_size, rng),
                       bank.crops(i2, cfg.n_crops, cfg.patch_size, rng)]).to(device)
        target, mask = pair_targets(bank.cats[i1], bank.vals[i1], bank.vals[i2], cfg.mask_ties)
        outs = net(x)  # both photos of every pair in one batch: samples are independent
        b = cfg.batch_pairs
        loss, terms = pretext_loss([o[:b] for o in outs], [o[b:] for o in outs], target.to(device),
                                   mask.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach()), terms.cpu()

    # --- persistence -------------------------------------------------------------------
    def _state_key(self) -> dict:
        return {k: v for k, v in asdict(self.config).items()
                if k not in ("steps", "log_every", "save_every", "threads")}

    def _save_state(self, out: Path, net, opt, rng, step: int, history: list, vocab: Vocabulary) -> None:
        out.mkdir(parents=True, exist_ok=True)
        state = {"net": net.state_dict(), "opt": opt.state_dict(), "step": step,
                 "meta": json.dumps({"config": self._state_key(), "rng": rng.bit_generator.state,
                                     "history": history, "vocab": vocab.to_json()}),
                 "torch_rng": torch.get_rng_state()}
        tmp = out / ".state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, out / "state.pt")

    def _resume(self, out: Path, net, opt, rng, vocab: Vocabulary) -> tuple[int, list]:
        path = out / "state.pt"
        if not path.is_file():
            return 0, []
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(state["meta"])
        if meta["config"] != self._state_key() or meta["vocab"] != vocab.to_json():
            log.warning("exif-backbone: %s belongs to another configuration or data; starting afresh", path)
            return 0, []
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = meta["rng"]
        torch.set_rng_state(state["torch_rng"])
        log.info("exif-backbone: resuming from step %d", state["step"])
        return int(state["step"]), meta["history"]

    def _write(self, out: Path, net, bank: PhotoBank, train: TrainingSet, history: list, seconds: float) -> Path:
        cfg = self.config
        reals = [s for s in train.samples if s.label == 0]
        return write_checkpoint(
            out, self.name, net.state_dict(),
            params={**BackboneConfig(width=cfg.width, patch_size=cfg.patch_size).as_dict()},
            config={"preset": self.preset, **asdict(cfg)},
            data_sha256=data_manifest_sha256([s.sample_id for s in reals], [0] * len(reals)),
            extra={"vocabulary": bank.vocab.to_json(), "heads": list(HEAD_TAGS),
                   "ranking_heads": {str(k): v for k, v in RANKING.items()}, "n_photos": len(bank),
                   "skipped_without_exif": len(bank.skipped), "final_loss": history[-1]["loss"] if history else None,
                   "seconds_this_run": round(seconds, 2)},
        )
