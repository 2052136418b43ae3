"""``hfstats``: logistic regression on three high-frequency statistics of the grey image.

A template more than a detector: small enough to read in one sitting, trained in a second
on CPU, and following the whole :class:`harness.api.Detector` contract. The statistics
catch what cheap generators leave behind, no more:

- ``hf_ratio``: the share of spectral power above a quarter of the sampling frequency
  (camera noise raises it; up-sampled content lowers it);
- ``grid``: mean absolute difference across odd pixel boundaries over that across even
  ones (nearest-neighbour up-sampling by two repeats pixels in pairs, so even boundaries
  carry no difference);
- ``laplacian``: the mean absolute discrete Laplacian (sensor noise again).

The weights are an exifbench checkpoint folder (``weights.pt`` + ``manifest.json``, see
:mod:`harness.checkpoint`), written by ``fit`` and read back strictly by ``load``; the
parameter that names it is ``coefficients``.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from harness.api import CheckpointError, ConfigError
from harness.checkpoint import data_manifest_sha256, read_checkpoint, write_checkpoint

if TYPE_CHECKING:
    from harness.detector import TrainingSet

__all__ = ["HFStatsDetector", "image_statistics", "FEATURES"]

NAME = "hfstats"
FEATURES = ("hf_ratio", "grid", "laplacian")
SHAPES = {"mean": (3,), "scale": (3,), "coef": (3,), "intercept": (1,)}


def image_statistics(image: Image.Image) -> np.ndarray:
    """The three statistics of ``image``, in the order of :data:`FEATURES`."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = grey.shape
    grey = np.pad(grey, ((0, max(0, 4 - h)), (0, max(0, 4 - w))), mode="edge")  # tiny crops
    return np.array([_hf_ratio(grey), _grid(grey), _laplacian(grey)])


def _hf_ratio(grey: np.ndarray) -> float:
    power = np.abs(np.fft.rfft2(grey - grey.mean())) ** 2
    radius = np.hypot(np.fft.fftfreq(grey.shape[0])[:, None], np.fft.rfftfreq(grey.shape[1])[None, :])
    return float(np.log(power[radius > 0.25].sum() / (power.sum() + 1e-12) + 1e-6))


def _grid(grey: np.ndarray) -> float:
    dx, dy = np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0))
    odd = dx[:, 1::2].mean() + dy[1::2, :].mean()
    even = dx[:, 0::2].mean() + dy[0::2, :].mean()
    return float(np.log((odd + 1.0) / (even + 1.0)))


def _laplacian(grey: np.ndarray) -> float:
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(np.log(np.abs(lap).mean() + 1.0))


def _plugin_version() -> str:
    try:
        return version("exifbench-plugin-example")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree
        return "0+unknown"


class HFStatsDetector:
    """Scores are probabilities of "generated", so the threshold is 0.5.

    Parameters are stored unchanged and nothing is read until :meth:`load`; what ``fit`` or
    ``load`` learns ends in ``_``. ``checkpoint`` is accepted as a second name for
    ``coefficients`` because the conformance kit (:func:`harness.testing.check_detector`)
    passes the weights it trains under that name.
    """

    threshold = 0.5

    def __init__(self, coefficients: str | None = None, C: float = 1.0, checkpoint: str | None = None):
        self.coefficients = coefficients
        self.C = C
        self.checkpoint = checkpoint

    # --- scoring -----------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        weights, manifest = read_checkpoint(self._weights_path(), NAME)
        shapes = {k: tuple(v.shape) for k, v in weights.items()}
        if shapes != SHAPES:
            raise CheckpointError(f"{NAME} checkpoint holds {shapes}; expected {SHAPES}")
        if manifest["params"].get("features") != list(FEATURES):
            raise CheckpointError(f"{NAME} checkpoint was fitted on the statistics "
                                  f"{manifest['params'].get('features')}, this code computes {list(FEATURES)}")
        self.mean_, self.scale_, self.coef_, self.intercept_ = (
            weights[k].double().numpy() for k in ("mean", "scale", "coef", "intercept"))

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return image_statistics(image)

    def score_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        z = (np.stack(items) - self.mean_) / self.scale_
        logits = np.clip(z @ self.coef_ + self.intercept_[0], -500.0, 500.0)
        return 1.0 / (1.0 + np.exp(-logits))

    def score(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.asarray(self.score_batch([self.preprocess(im) for im in images]), dtype=np.float64)

    def _weights_path(self) -> Path:
        value = self.coefficients or self.checkpoint
        if not value:
            raise CheckpointError(f"detector {NAME!r} needs `coefficients = PATH`; train one with "
                                  f"`exifbench train {NAME} --config TRAIN.toml --out DIR`")
        path = Path(value).expanduser()
        if not path.exists():
            raise CheckpointError(f"detector {NAME!r}: coefficients {str(path)!r} do not exist")
        return path

    # --- training ----------------------------------------------------------------------
    def fit(self, train: TrainingSet, out: str | Path, seed: int = 0, device: str = "cpu", **_: Any) -> Path:
        """Fit the logistic regression on ``train`` and write the checkpoint folder ``out``."""
        import torch
        from sklearn.linear_model import LogisticRegression  # here: scoring needs neither

        x = np.stack([self.preprocess(train.image(i)) for i in range(len(train))])
        y = train.labels
        if len(set(y.tolist())) < 2:
            raise ConfigError(f"{NAME} needs real and generated training images, got labels {sorted(set(y.tolist()))}")
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        clf = LogisticRegression(C=self.C, random_state=seed).fit((x - mean) / scale, y)
        learned = {"mean": mean, "scale": scale, "coef": clf.coef_[0], "intercept": clf.intercept_}
        return write_checkpoint(
            out, NAME, {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)) for k, v in learned.items()},
            params={"C": self.C, "features": list(FEATURES)},
            data_sha256=data_manifest_sha256([s.sample_id for s in train.samples], y.tolist()),
            extra={"n_train": len(y), "train_accuracy": float(clf.score((x - mean) / scale, y)),
                   "plugin_version": _plugin_version()},
        )
