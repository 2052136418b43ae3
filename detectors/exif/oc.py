"""``exif-oc``: the one-class SDAIE detector (authors' ``oc_funs.py``).

Features of real photographs from the frozen pretext backbone -> scikit-learn
``GaussianMixture(5, full covariance, init_params='k-means++', random_state=42)``; the
threshold is the log-likelihood of the training reals at index ``int(0.02 n)`` of their
sorted values (the authors' 2 % quantile); score = -log-likelihood, so ``threshold`` here
is minus that value and "score > threshold" means generated.

The authors' rule is the default (``covariance="full"``, ``threshold_rule="in-sample"``). With
few photos it is degenerate: a full covariance has d(d+3)/2 parameters per component (702
for d = 36, 139,920 for the paper's d = 528), and the in-sample quantile of a mixture fitted
to the same photos is far above the likelihood of fresh reals, so nearly every test image
is flagged. Two switches fix that:

- ``threshold_rule="heldout"``: the log-likelihoods are out-of-fold ones (``folds``-fold over
  the training reals, each fold scored by a mixture fitted to the others) and the threshold
  is their ``k``-th smallest, ``k = max(1, round(quantile (n + 1)))``: for exchangeable
  photos a fresh real falls below it with probability ``k / (n + 1)`` (``target_fpr`` in the
  checkpoint), the nearest level to ``quantile`` that ``n`` photos can give. The mixture
  that scores is then fitted to all the photos.
- ``covariance``: scikit-learn's ``full``, ``tied``, ``diag`` or ``spherical``, or ``auto``:
  ``full`` when the photos are at least the parameters of one full component, else
  ``diag``. A full covariance with fewer photos than that warns.

``gmm_dtype="float32"`` fits and scores the mixture in float32, as the authors' code does
(its features are float32 tensors handed to scikit-learn); the default is float64.

Parameters: ``backbone`` (an authors' pretext ``.pth``, an ``exif-backbone`` checkpoint
folder, or ``"random"``: a seeded random backbone of ``width``/``patch_size``, for tests
only), ``checkpoint`` (an ``exif-oc`` folder written by ``fit``: it holds the backbone too),
``tiling`` (``official``/``center``). With only a backbone, ``features`` works and
``score`` asks for fitting.
"""
from __future__ import annotations

import warnings
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

__all__ = ["ExifOneClassDetector", "fit_gmm", "gmm_threshold", "heldout_threshold", "choose_covariance",
           "full_covariance_parameters", "fit_one_class", "COVARIANCES", "THRESHOLDS"]

_GMM_KEYS = ("weights", "means", "covariances", "precisions_cholesky")
COVARIANCES = ("full", "tied", "diag", "spherical", "auto")
THRESHOLDS = ("in-sample", "heldout")
_DTYPES = {"float64": np.float64, "float32": np.float32}


def fit_gmm(features: np.ndarray, n_components: int = 5, random_state: int = 42,
            covariance_type: str = "full") -> GaussianMixture:
    """The authors' mixture (k-means++ initialisation, random state 42); fitted in the
    features' dtype (float32 features: float32 arithmetic, as theirs)."""
    gmm = GaussianMixture(n_components=n_components, covariance_type=covariance_type, init_params="k-means++",
                          random_state=random_state)
    return gmm.fit(features)


def gmm_threshold(loglik: np.ndarray, quantile: float = 0.02) -> float:
    """The authors' threshold: sorted log-likelihoods at index ``int(n * quantile)``."""
    ordered = np.sort(np.asarray(loglik, dtype=np.float64))
    return float(ordered[int(len(ordered) * quantile)])


def full_covariance_parameters(d: int) -> int:
    """Free parameters of one full-covariance Gaussian in ``d`` dimensions: d + d(d+1)/2."""
    return d * (d + 3) // 2


def choose_covariance(covariance: str, n: int, d: int) -> str:
    """The covariance type to fit to ``n`` photos of ``d`` features (``auto``: ``full`` when
    ``n`` reaches the parameters of one full component, else ``diag``); warns when a full
    covariance gets fewer photos than that."""
    if covariance not in COVARIANCES:
        raise ConfigError(f"exif-oc: covariance={covariance!r}; use one of {list(COVARIANCES)}")
    needed = full_covariance_parameters(d)
    if covariance == "auto":
        return "full" if n >= needed else "diag"
    if covariance == "full" and n < needed:
        warnings.warn(f"exif-oc: {n} photos for a full covariance in {d} dimensions, which has {needed} "
                      "parameters per component: the mixture is degenerate (use covariance='auto' or 'diag')",
                      RuntimeWarning, stacklevel=3)
    return covariance


def heldout_threshold(features: np.ndarray, n_components: int, covariance_type: str, quantile: float,
                      folds: int, random_state: int = 42) -> tuple[float, float, np.ndarray]:
    """(threshold log-likelihood, target false-positive rate, out-of-fold log-likelihoods).

    ``folds``-fold cross-fitting over the photos (shuffled with ``random_state``); the
    threshold is the ``k``-th smallest out-of-fold log-likelihood, ``k = max(1,
    round(quantile (n + 1)))``, which a fresh photo of the same distribution falls below
    with probability ``k / (n + 1)``."""
    from sklearn.model_selection import KFold

    n = len(features)
    folds = min(int(folds), n)
    if folds < 2:
        raise ConfigError(f"exif-oc: a held-out threshold needs at least 2 folds and 2 photos (folds={folds}, n={n})")
    out = np.empty(n, dtype=np.float64)
    for fit_idx, held in KFold(folds, shuffle=True, random_state=random_state).split(features):
        if len(fit_idx) < n_components:
            raise ConfigError(f"exif-oc: {len(fit_idx)} photos per fit in {folds}-fold cross-fitting, fewer than "
                              f"n_components={n_components}; use fewer folds or components")
        out[held] = fit_gmm(features[fit_idx], n_components, random_state, covariance_type).score_samples(features[held])
    k = max(1, int(round(quantile * (n + 1))))
    return float(np.sort(out)[k - 1]), k / (n + 1), out


def fit_one_class(features: np.ndarray, n_components: int = 5, covariance: str = "full",
                  threshold_rule: str = "in-sample", quantile: float = 0.02, folds: int = 10,
                  random_state: int = 42) -> tuple[GaussianMixture, float, dict[str, Any]]:
    """The mixture, its threshold log-likelihood and what was chosen (``covariance_type``,
    ``target_fpr`` and, held out, ``folds``), for photos' ``features`` (n, d)."""
    if threshold_rule not in THRESHOLDS:
        raise ConfigError(f"exif-oc: threshold_rule={threshold_rule!r}; use one of {list(THRESHOLDS)}")
    cov = choose_covariance(covariance, len(features), features.shape[1])
    gmm = fit_gmm(features, n_components, random_state, cov)
    info: dict[str, Any] = {"covariance_type": cov}
    if threshold_rule == "in-sample":
        value = gmm_threshold(gmm.score_samples(features), quantile)
        info["target_fpr"] = quantile
    else:
        value, info["target_fpr"], _ = heldout_threshold(features, n_components, cov, quantile, folds, random_state)
        info["folds"] = min(int(folds), len(features))
    return gmm, value, info


def _gmm_from_weights(weights: dict[str, torch.Tensor], covariance_type: str = "full",
                      dtype: str = "float64") -> GaussianMixture:
    gmm = GaussianMixture(n_components=len(weights["gmm.weights"]), covariance_type=covariance_type)
    for key in _GMM_KEYS:
        setattr(gmm, key + "_", weights[f"gmm.{key}"].numpy().astype(_DTYPES[dtype]))
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 0, -np.inf
    return gmm


class ExifOneClassDetector(ExifDetectorBase):
    name = "exif-oc"
    max_tiles = 20000  # the authors' cap in DatasetforDiffusionGranularityOC

    def __init__(self, backbone: str | None = None, checkpoint: str | None = None, tiling: str = "center",
                 n_components: int = 5, quantile: float = 0.02, width: int = 32, patch_size: int = 64,
                 covariance: str = "full", threshold_rule: str = "in-sample", folds: int = 10, gmm_dtype: str = "float64",
                 **params: Any):
        super().__init__(backbone=backbone, checkpoint=checkpoint, tiling=tiling, n_components=n_components,
                         quantile=quantile, width=width, patch_size=patch_size, covariance=covariance,
                         threshold_rule=threshold_rule, folds=folds, gmm_dtype=gmm_dtype, **params)
        if covariance not in COVARIANCES:
            raise ConfigError(f"exif-oc: covariance={covariance!r}; use one of {list(COVARIANCES)}")
        if threshold_rule not in THRESHOLDS:
            raise ConfigError(f"exif-oc: threshold_rule={threshold_rule!r}; use one of {list(THRESHOLDS)}")
        if gmm_dtype not in _DTYPES:
            raise ConfigError(f"exif-oc: gmm_dtype={gmm_dtype!r}; use one of {list(_DTYPES)}")
        self.gmm_: GaussianMixture | None = None
        self._dtype = _DTYPES[gmm_dtype]
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
        fitted = manifest["params"]
        dtype = fitted.get("gmm_dtype", "float64")
        self.gmm_ = _gmm_from_weights(weights, fitted.get("covariance_type", "full"), dtype)
        self._dtype = _DTYPES[dtype]
        self.threshold = -float(manifest["extra"]["threshold_loglik"])

    # --- scoring -----------------------------------------------------------------------
    def score_batch(self, items: Sequence[torch.Tensor]) -> np.ndarray:
        if self.gmm_ is None:
            raise CheckpointError("exif-oc has a backbone but no Gaussian mixture: fit it on real photos "
                                  "(`exifbench train exif-oc`) and pass `checkpoint = DIR`; features() works without")
        feats = self._features(items).cpu().numpy().astype(self._dtype)
        return -self.gmm_.score_samples(feats).astype(np.float64)

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
                                for part in np.array_split(reals, max(1, len(reals) // 16))]).astype(self._dtype)
        gmm, threshold, info = fit_one_class(feats, n_comp, self.covariance, self.threshold_rule,
                                             float(self.quantile), int(self.folds))
        weights = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
        weights.update({f"gmm.{k}": torch.from_numpy(np.asarray(getattr(gmm, k + "_"))) for k in _GMM_KEYS})
        params = {**backbone.config.as_dict(), "tiling": self.tiling, "n_components": n_comp,
                  "quantile": float(self.quantile), "covariance": self.covariance,
                  "covariance_type": info["covariance_type"], "threshold_rule": self.threshold_rule,
                  "folds": int(self.folds), "gmm_dtype": self.gmm_dtype}
        return write_checkpoint(
            out, self.name, weights, params=params,
            data_sha256=data_manifest_sha256([train.samples[i].sample_id for i in reals], [0] * len(reals)),
            extra={"threshold_loglik": threshold, "target_fpr": info["target_fpr"], "n_train": len(reals),
                   "feature_dim": int(feats.shape[1]), "backbone": str(self.backbone),
                   "backbone_sha256": source_sha256(self.backbone), "gmm_converged": bool(gmm.converged_),
                   "random_backbone": str(self.backbone) == RANDOM},
        )
