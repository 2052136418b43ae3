"""The pretext and binary-detector losses of SDAIE (authors' ``backbone_train.py`` and
``bc_train.py``), with per-term masks for missing EXIF tags.

Ranking heads follow a Thurstone model: P(first >= second) = Φ(s₁ − s₂), scored by binary
cross-entropy. ``log Φ`` is computed with ``torch.special.log_ndtr`` rather than as
``log(0.5 (1 + erf(Δ/√2)))``: equal where the latter is finite, and finite where the
latter saturates (PyTorch's ``BCELoss`` then clamps the log at -100).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from detectors.exif.labels import CATEGORICAL, RANKING

__all__ = ["thurstone_probability", "ranking_bce", "masked_cross_entropy", "pretext_loss", "distillation_mse"]


def thurstone_probability(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """P(first ≻ second) = Φ(s₁ − s₂), as the authors compute it."""
    return 0.5 * (1 + torch.erf((s1 - s2) / 2 ** 0.5))


def ranking_bce(s1: torch.Tensor, s2: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over unmasked pairs of BCE(Φ(s₁ − s₂), target); 0 when every pair is masked."""
    delta = (s1 - s2).reshape(-1)
    nll = -(target * torch.special.log_ndtr(delta) + (1 - target) * torch.special.log_ndtr(-delta))
    return _masked_mean(nll, mask)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over unmasked samples of the cross-entropy; 0 when every sample is masked."""
    nll = F.cross_entropy(logits, target.long().clamp(min=0), reduction="none")
    return _masked_mean(nll, mask)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.reshape(-1).to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def pretext_loss(out1: list[torch.Tensor], out2: list[torch.Tensor], target: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted sum over the 14 heads; returns (total, per-head terms).

    ``out1``/``out2``: the heads' outputs for the first and second photos of each pair;
    ``target``/``mask``: (B, 14) from :func:`detectors.exif.labels.pair_targets`.
    """
    terms = []
    for i in range(14):
        if i in CATEGORICAL:
            terms.append(masked_cross_entropy(out1[i], target[:, i], mask[:, i]))
        else:
            assert i in RANKING
            terms.append(ranking_bce(out1[i], out2[i], target[:, i], mask[:, i]))
    terms_t = torch.stack(terms)
    return terms_t.sum(), terms_t.detach()


def distillation_mse(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Sum of the MSEs between the four CNN group outputs and the covariance vectors
    (positions 1..5 of the backbone's output), as ``bc_train.py``."""
    return sum(F.mse_loss(s, t) for s, t in zip(student[1:6], teacher[1:6]))
