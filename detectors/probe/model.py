"""The shortcut probe: processing-history features (:mod:`harness.data.shortcut`) and a
logistic regression on them, standardised (scikit-learn's ``StandardScaler`` and
``LogisticRegression``, stored as plain tensors so that scoring needs no scikit-learn)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from harness.api import CheckpointError, ConfigError
from harness.checkpoint import data_manifest_sha256, read_checkpoint, write_checkpoint
from harness.data.shortcut import FEATURES, probe_features
from harness.detector import BaseDetector, TrainingSet

__all__ = ["ProbeDetector"]

_KEYS = {"mean", "scale", "coef", "intercept"}


class ProbeDetector(BaseDetector):
    name = "probe"

    def __init__(self, checkpoint: str | None = None, C: float = 1.0, jpeg_quality_from: str = "pixels",
                 **params: Any):
        if jpeg_quality_from not in ("pixels", "tables"):
            raise ConfigError(f"probe: jpeg_quality_from must be 'pixels' or 'tables', not {jpeg_quality_from!r}")
        super().__init__(checkpoint=checkpoint, C=C, jpeg_quality_from=jpeg_quality_from, **params)

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        weights, _ = read_checkpoint(self._require_checkpoint(), self.name)
        if set(weights) != _KEYS:
            raise CheckpointError(f"probe checkpoint keys {sorted(weights)}; expected {sorted(_KEYS)}")
        if weights["coef"].shape != (1, len(FEATURES)):
            raise CheckpointError(f"probe checkpoint has coef of shape {tuple(weights['coef'].shape)}; "
                                  f"expected (1, {len(FEATURES)}) for the features {FEATURES}")
        self.mean_, self.scale_ = weights["mean"].double().numpy(), weights["scale"].double().numpy()
        self.coef_, self.intercept_ = weights["coef"].double().numpy(), weights["intercept"].double().numpy()

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return probe_features(image, self.jpeg_quality_from)

    def score_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        x = (np.stack(items).astype(np.float64) - self.mean_) / self.scale_
        logits = x @ self.coef_.T + self.intercept_
        return 1.0 / (1.0 + np.exp(-logits[:, 0]))

    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, **_: Any) -> Path:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        labels = train.labels
        if len(set(labels.tolist())) < 2:
            raise ValueError("probe needs real and generated training images")
        features = np.stack([self.preprocess(train.image(i)) for i in range(len(train))])
        scaler = StandardScaler().fit(features)
        clf = LogisticRegression(C=self.C, max_iter=5000, random_state=seed).fit(scaler.transform(features), labels)
        weights = {"mean": torch.from_numpy(scaler.mean_), "scale": torch.from_numpy(scaler.scale_),
                   "coef": torch.from_numpy(clf.coef_), "intercept": torch.from_numpy(clf.intercept_)}
        return write_checkpoint(
            out, self.name, weights, params={"C": self.C, "jpeg_quality_from": self.jpeg_quality_from},
            data_sha256=data_manifest_sha256([s.sample_id for s in train.samples], labels.tolist()),
            extra={"n_train": len(labels), "features": list(FEATURES),
                   "train_accuracy": float(clf.score(scaler.transform(features), labels))})
