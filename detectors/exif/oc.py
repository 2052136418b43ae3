"""``exif-oc``: the one-class SDAIE detector (authors' ``oc_funs.py``).

Features of real photographs from the frozen pretext backbone -> scikit-learn
``GaussianMixture(5, full covariance, init_params='k-means++', random_state=42)``; the
threshold is the log-likelihood of the training reals at index ``int(0.02 n)`` of their
sorted values (the authors' 2 % quantile); score = -log-likelihood, so ``threshold`` here
is minus that value and "score > threshold" means generated.

Parameters: ``backbone`` (an authors' pretext ``.pth``, an ``exif-backbone`` checkpoint
folder, or ``"random"``: a seeded random backbone of ``width``/``patch_size``, for tests
only), ``checkpoint`` (an ``exif-oc`` folder written by ``fit``: it holds the backbone too),
``tiling`` (``official``/``center``). With only a backbone, ``features`` works and
``score`` asks for fitting.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from harness.api import CheckpointError, ConfigError
from harness.detector import TrainingSet
from harness.checkpoint import data_manifest_sha256, load_state_dict_strict, read_checkpoint, write_checkpoint
from detectors.exif.base import ExifDetectorBase
from detectors.exif.model import BackboneConfig, SDAIEBackbone
from detectors.exif.weights import RANDOM, config_from_params, load_backbone, source_sha256

__all__ = ["ExifOneClassDetector", "fit_gmm", "gmm_threshold"]

_GMM_KEYS = ("weights", "means", "covariances", "precisions_cholesky")


def fit_gmm(features: np.ndarray, n_components: int = 5, random_state: int = 42) -> GaussianMixture:
    gmm = GaussianMixture(n_components=n_components, covariance_type="full", init_params="k-means++",
                          random_state=random_state)
    return gmm.fit(features)


def gmm_threshold(loglik: np.ndarray, quantile: float = 0.02) -> float:
    """The authors' threshold: sorted log-likelihoods at index ``int(n * quantile)``."""
    ordered = np.sort(np.asarray(loglik, dtype=np.float64))
    return float(ordered[int(len(ordered) * quantile)])


def _gmm_from_weights(weights: dict[str, torch.Tensor]) -> GaussianMixture:
    gmm = GaussianMixture(n_components=len(weights["gmm.weights"]), covariance_type="full")
    for key in _GMM_KEYS:
        setattr(gmm, key + "_", weights[f"gmm.{key}"].double().numpy())
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 0, -np.inf
    return gmm


class ExifOneClassDetector(ExifDetectorBase):
    name = "exif-oc"
    max_tiles = 20000  # the authors' cap in DatasetforDiffusionGranularityOC

    def __init__(self, backbone: str | None = None, checkpoint: str | None = None, tiling: str = "center",
                 n_components: int = 5, quantile: float = 0.02, width: int = 32, patch_size: int = 64,
                 **params: Any):
        super().__init__(backbone=backbone, checkpoint=checkpoint, tiling=tiling, n_components=n_components,
                         quantile=quantile, width=width, patch_size=patch_size, **params)
        self.gmm_: GaussianMixture | None = None
        self.threshold = float("nan")

    # --- loading -----------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        super().load(device)
        if self.checkpoint:
            self._load_fitted(self._require_checkpoint(), device)
        elif self.backbone:
            self._set_backbone(self._backbone(), device)
        else:
            raise CheckpointError("exif-oc needs `checkpoint = DIR` (a fitted exif-oc) or `backbone = PATH` "
                                  "(an authors' pretext .pth or an exif-backbone folder) to extract features")

    def _backbone(self):
        return load_backbone(self.backbone, BackboneConfig(width=self.width, patch_size=self.patch_size),
                             seed=int(self.params.get("seed", 0)))

    def _load_fitted(self, folder: Path, device: str) -> None:
        weights, manifest = read_checkpoint(folder, self.name)
        missing = [f"gmm.{k}" for k in _GMM_KEYS if f"gmm.{k}" not in weights]
        if missing:
            raise CheckpointError(f"exif-oc checkpoint {str(folder)!r}: missing keys {missing}")
        backbone = SDAIEBackbone(config_from_params(manifest["params"]))
        state = {k[len("backbone."):]: v for k, v in weights.items() if k.startswith("backbone.")}
        extra = sorted(k for k in weights if not k.startswith(("backbone.", "gmm.")))
        if extra:
            raise CheckpointError(f"exif-oc checkpoint {str(folder)!r}: unexpected keys {extra}")
        load_state_dict_strict(backbone, state, str(folder))
        self._set_backbone(backbone, device)
        self.gmm_ = _gmm_from_weights(weights)
        self.threshold = -float(manifest["extra"]["threshold_loglik"])

    # --- scoring -----------------------------------------------------------------------
    def score_batch(self, items: Sequence[torch.Tensor]) -> np.ndarray:
        if self.gmm_ is None:
            raise CheckpointError("exif-oc has a backbone but no Gaussian mixture: fit it on real photos "
                                  "(`exifbench train exif-oc`) and pass `checkpoint = DIR`; features() works without")
        return -self.gmm_.score_samples(self._features(items).cpu().double().numpy())

    # --- training ----------------------------------------------------------------------
    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu", **_: Any) -> Path:
        """Fit the mixture on the features of the real photos of ``train`` (label 0)."""
        if not self.backbone:
            raise ConfigError("exif-oc fit needs `backbone = PATH` (authors' .pth or an exif-backbone folder); "
                              "train one with `exifbench train exif-backbone`")
        backbone = self._backbone()
        self._set_backbone(backbone, device)
        reals = [i for i in range(len(train)) if train.samples[i].label == 0]
        n_comp = int(self.n_components)
        if len(reals) < max(n_comp, 2):
            raise ConfigError(f"exif-oc needs at least {max(n_comp, 2)} real photos, got {len(reals)}")
        feats = np.concatenate([self.features([train.image(i) for i in part])
                                for part in np.array_split(reals, max(1, len(reals) // 16))]).astype(np.float64)
        gmm = fit_gmm(feats, n_comp)
        loglik = gmm.score_samples(feats)
        threshold = gmm_threshold(loglik, float(self.quantile))
        weights = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
        weights.update({f"gmm.{k}": torch.from_numpy(np.asarray(getattr(gmm, k + "_"))) for k in _GMM_KEYS})
        params = {**backbone.config.as_dict(), "tiling": self.tiling, "n_components": n_comp,
                  "quantile": float(self.quantile)}
        return write_checkpoint(
            out, self.name, weights, params=params,
            data_sha256=data_manifest_sha256([train.samples[i].sample_id for i in reals], [0] * len(reals)),
            extra={"threshold_loglik": threshold, "n_train": len(reals), "backbone": str(self.backbone),
                   "backbone_sha256": source_sha256(self.backbone), "gmm_converged": bool(gmm.converged_),
                   "random_backbone": str(self.backbone) == RANDOM},
        )
