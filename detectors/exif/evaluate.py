"""How much a pretext backbone learned: its heads on held-out photos with EXIF.

:func:`evaluate_pretext` runs the pretext network (backbone + 14 heads) on photos it did not
train on (``n_crops`` random crops of each, as in training, with a fixed seed) and reports,
per ranking tag, the pairwise ranking accuracy (over every pair of photos whose values
differ: does the head order them as their EXIF does; tied head outputs count one half) and,
per categorical tag, the accuracy of the head's class against the photo's class in the
checkpoint's vocabulary, with its chance level (the share of the most frequent class among
the photos: what a constant answer gets). Intervals are percentile bootstraps over photos
(:class:`harness.stats.Bootstrap`; a pair enters a replicate with the product of its
photos' weights), so the dependence between the pairs of one photo is kept.

A random backbone (``steps = 0``) is the control: its ranking accuracy is about 0.5, its
categorical accuracy at most about the chance level.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from harness.api import ConfigError
from harness.data.decode import load_image
from harness.data.exif import read_exif
from harness.stats import Bootstrap, percentile_interval
from detectors.exif.labels import CATEGORICAL, RANKING, Vocabulary, encode_photo
from detectors.exif.model import PretextNet
from detectors.exif.tiling import normalise, random_crops
from detectors.exif.weights import load_pretext

__all__ = ["safe_exif", "keep_region", "PretextEvaluation", "evaluate_pretext", "compare_pretext", "head_outputs",
           "ranking_accuracy", "categorical_accuracy"]

#: the tags the demo reports (issue: ISO, exposure time, focal length; Make and Model)
REPORTED = ("ISOSpeedRatings", "ExposureTime", "FocalLength", "Make", "Model")


def safe_exif(path: str) -> dict:
    """The photo's EXIF; an unreadable EXIF block counts as none (all its pretext terms are masked)."""
    try:
        return read_exif(path)
    except Exception:  # noqa: BLE001 - any parse failure of a photo's EXIF means "no EXIF"
        return {}


def keep_region(image: Image.Image, patch: int, side: int | None) -> torch.Tensor:
    """The uint8 (3, H, W) centre region of ``side`` px (``None``: all) that pretext crops
    are drawn from; a photo smaller than one tile is resized to one."""
    image = image.convert("RGB")
    if min(image.size) < patch:
        image = image.resize((patch, patch), Image.BILINEAR)
    if side is not None:
        w, h = image.size
        image = TF.center_crop(image, [min(h, side), min(w, side)])
    return TF.pil_to_tensor(image)


@dataclass
class PretextEvaluation:
    """``table``: one row per head (tag, kind, n_photos, n_pairs, acc, acc_lo, acc_hi,
    chance); ``ci`` the interval level."""

    table: pd.DataFrame
    ci: float

    def row(self, tag: str) -> pd.Series:
        return self.table.set_index("tag").loc[tag]

    def summary(self, tags: Sequence[str] = REPORTED) -> str:
        lines = []
        for tag in tags:
            r = self.row(tag)
            if r["kind"] == "ranking":
                lines.append(f"{tag} ranking accuracy {r['acc']:.3f} [{r['acc_lo']:.3f}, {r['acc_hi']:.3f}] "
                             f"(chance 0.5; {int(r['n_pairs'])} pairs of {int(r['n_photos'])} photos)")
            else:
                lines.append(f"{tag} accuracy {r['acc']:.3f} [{r['acc_lo']:.3f}, {r['acc_hi']:.3f}] "
                             f"(chance {r['chance']:.3f}: the most frequent class; {int(r['n_photos'])} photos)")
        return "\n".join(lines)


def head_outputs(net: PretextNet, images: Sequence[torch.Tensor], n_crops: int, patch: int,
                 seed: int = 0) -> list[torch.Tensor]:
    """The 14 heads' outputs for each photo (uint8 (3, H, W) tensors), on ``n_crops``
    seeded random crops of it."""
    rng = np.random.default_rng(seed)
    outs: list[list[torch.Tensor]] = [[] for _ in range(14)]
    net.eval()
    with torch.inference_mode():
        for start in range(0, len(images), 16):
            crops = torch.stack([random_crops(normalise(im.float().div(255)), n_crops, patch, rng)
                                 for im in images[start:start + 16]])
            for i, o in enumerate(net(crops)):
                outs[i].append(o)
    return [torch.cat(o) for o in outs]


def _pair_matrices(scores: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(credit, valid): credit 1 for a pair ordered as its values, 1/2 for a tie of scores."""
    ok = ~np.isnan(values)
    dv = np.sign(values[:, None] - values[None, :])
    ds = np.sign(scores[:, None] - scores[None, :])
    valid = (dv != 0) & ok[:, None] & ok[None, :]
    credit = np.where(ds == dv, 1.0, np.where(ds == 0, 0.5, 0.0)) * valid
    return credit, valid.astype(np.float64)


def ranking_accuracy(scores: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pairwise ranking accuracy for each row of ``weights`` (B, n): the share of the
    weighted pairs with different values that the scores order as the values."""
    credit, valid = _pair_matrices(np.asarray(scores, np.float64), np.asarray(values, np.float64))
    num = np.einsum("bi,ij,bj->b", weights, credit, weights)
    den = np.einsum("bi,ij,bj->b", weights, valid, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def categorical_accuracy(predicted: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accuracy for each row of ``weights`` (B, n) over photos whose target is known (>= 0)."""
    known = target >= 0
    w = weights * known
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * (predicted == target)).sum(axis=1) / w.sum(axis=1)


def _load(backbone: str | Path | PretextNet, vocabulary: Vocabulary | None,
          n_crops: int | None) -> tuple[PretextNet, Vocabulary, int]:
    if isinstance(backbone, PretextNet):
        if vocabulary is None:
            raise ConfigError("evaluate_pretext: a network needs its vocabulary")
        return backbone, vocabulary, int(n_crops or 16)
    net, manifest = load_pretext(backbone)
    if vocabulary is None:
        if "vocabulary" not in manifest.get("extra", {}):
            raise ConfigError(f"evaluate_pretext: {backbone} has no vocabulary (an exif-backbone folder does)")
        vocabulary = Vocabulary.from_json(manifest["extra"]["vocabulary"])
    return net, vocabulary, int(n_crops or manifest.get("config", {}).get("n_crops") or 16)


def _head_replicates(backbone: str | Path | PretextNet, photos: Sequence[str | Path], vocabulary: Vocabulary | None,
                     n_crops: int | None, patch: int | None, cache_side: int | None, seed: int,
                     bootstrap: Bootstrap) -> list[dict]:
    """Per head: its description and ``reps``, the accuracy on all photos (first) and on each
    bootstrap replicate; the replicates' weights depend only on the number of photos, so two
    backbones on the same photos get the same resamples (paired)."""
    net, vocabulary, n_crops = _load(backbone, vocabulary, n_crops)
    patch = patch or net.backbone.config.patch_size
    if len(photos) < 2:
        raise ConfigError(f"evaluate_pretext needs at least 2 photos, got {len(photos)}")
    coded = [encode_photo(safe_exif(str(p)), vocabulary) for p in photos]
    cats = torch.stack([c for c, _ in coded]).numpy()
    vals = torch.stack([v for _, v in coded]).numpy()
    images = [keep_region(load_image(str(p)), patch, cache_side) for p in photos]
    outs = head_outputs(net, images, n_crops, patch, seed)
    n = len(photos)
    weights = np.vstack([np.ones((1, n)), bootstrap.weights("pretext-photos", n)])
    heads = []
    for i in range(14):
        if i in RANKING:
            values = vals[:, i]
            ok = ~np.isnan(values)
            pairs = int(((values[ok][:, None] != values[ok][None, :]).sum()) // 2)
            heads.append({"head": i, "tag": RANKING[i], "kind": "ranking", "n_photos": int(ok.sum()),
                          "n_pairs": pairs, "chance": 0.5,
                          "reps": ranking_accuracy(outs[i].reshape(-1).double().numpy(), values, weights)})
        else:
            target = cats[:, i]
            known = target[target >= 0]
            chance = float(np.bincount(known).max() / len(known)) if len(known) else float("nan")
            heads.append({"head": i, "tag": CATEGORICAL[i][0], "kind": "categorical", "n_photos": int(len(known)),
                          "n_pairs": 0, "chance": chance,
                          "reps": categorical_accuracy(outs[i].argmax(dim=1).numpy(), target, weights)})
    return heads


def evaluate_pretext(backbone: str | Path | PretextNet, photos: Sequence[str | Path], *,
                     vocabulary: Vocabulary | None = None, n_crops: int | None = None, patch: int | None = None,
                     cache_side: int | None = 256, seed: int = 0,
                     bootstrap: Bootstrap = Bootstrap(1000)) -> PretextEvaluation:
    """Every head of the pretext network ``backbone`` (an ``exif-backbone`` folder, or a
    network with ``vocabulary``) on held-out ``photos`` with EXIF. ``n_crops``: crops per
    photo, by default the checkpoint's training value (16 for a bare network)."""
    heads = _head_replicates(backbone, photos, vocabulary, n_crops, patch, cache_side, seed, bootstrap)
    rows = [{**{k: v for k, v in h.items() if k != "reps"}, **_interval(h["reps"], bootstrap.ci)} for h in heads]
    return PretextEvaluation(pd.DataFrame(rows), bootstrap.ci)


def compare_pretext(backbone: str | Path | PretextNet, control: str | Path | PretextNet,
                    photos: Sequence[str | Path], *, cache_side: int | None = 256, seed: int = 0,
                    bootstrap: Bootstrap = Bootstrap(1000)) -> pd.DataFrame:
    """Paired difference of two backbones' heads on the same ``photos`` (e.g. a trained one
    and its untrained control): per head ``acc`` (backbone), ``acc_control`` and ``delta`` =
    acc - acc_control with its percentile interval over the same bootstrap resamples of
    photos (``delta_lo``, ``delta_hi``). The vocabulary is each checkpoint's own (the same
    training photos give the same one); categorical heads compare classes in it."""
    a = _head_replicates(backbone, photos, None, None, None, cache_side, seed, bootstrap)
    b = _head_replicates(control, photos, None, None, None, cache_side, seed, bootstrap)
    rows = []
    for ha, hb in zip(a, b):
        lo, hi = percentile_interval(ha["reps"][1:] - hb["reps"][1:], bootstrap.ci)
        rows.append({"head": ha["head"], "tag": ha["tag"], "kind": ha["kind"], "n_photos": ha["n_photos"],
                     "acc": float(ha["reps"][0]), "acc_control": float(hb["reps"][0]),
                     "delta": float(ha["reps"][0] - hb["reps"][0]), "delta_lo": lo, "delta_hi": hi})
    return pd.DataFrame(rows)


def _interval(replicates: np.ndarray, ci: float) -> dict[str, float]:
    lo, hi = percentile_interval(replicates[1:], ci)
    return {"acc": float(replicates[0]), "acc_lo": lo, "acc_hi": hi}
