"""``check_detector``: the conformance kit every registered detector passes.

Like scikit-learn's estimator checks, for detectors: plugin authors run it on their own
detectors (``pytest`` parametrised over the registry does so for every installed one).
The kit makes a tiny labelled set whose classes differ the way generated images often do
(generated: smooth content up-sampled by nearest neighbour, hence periodic artefacts;
real: the same content with sensor-like noise), trains the detector at its
``test_params`` when it is trainable, and checks:

1. ``score`` returns one finite float per image, as a 1-D numpy float array;
2. higher means generated: a trainable detector scores the images it was trained on with
   AUC above ``min_auc`` (a detector whose scores point the wrong way gets an AUC near 0;
   generalisation from 32 tiny images is not the point and is only reported, as
   ``heldout_auc``); everything is seeded, so the AUC is deterministic and a bar of 0.65
   separates "points the right way" (a linear probe on random frozen features reaches
   about 0.74) from "points the wrong way" (1 - AUC); a detector that is not trained
   here scores held-out images with AUC above 0.5;
3. determinism: scoring twice gives the same scores;
4. batching: scoring all images at once equals scoring them one by one;
5. ``score == score_batch(preprocess(...))``, the split the engine relies on;
6. a wrong checkpoint (one of another detector, or a file that is not a checkpoint) is
   refused with :class:`~harness.api.CheckpointError`, never scored with random weights.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from harness.api import CheckpointError, Sample
from harness.detector import TrainingSet
from harness.files import file_sha256

__all__ = ["synthetic_pair_images", "synthetic_training_set", "check_detector", "ConformanceError"]


class ConformanceError(AssertionError):
    """A detector breaks the harness's contract; the message says which rule."""


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random content: a few gradients and blobs."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for c in range(3):
        a, b, f = rng.uniform(-1, 1, 3)
        img[..., c] = 128 + 60 * np.sin(2 * np.pi * (a * x + b * y) * (1 + 2 * abs(f))) + rng.uniform(-40, 40)
    return img


def synthetic_pair_images(n: int, size: int = 64, seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """``n`` real-like and ``n`` generated-like RGB images, with labels 0/1."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(n):
        real = _scene(rng, size) + rng.normal(0, 6, (size, size, 3))
        images.append(Image.fromarray(np.clip(real, 0, 255).astype(np.uint8)))
        labels.append(0)
        half = _scene(rng, size // 2)
        fake = np.kron(half, np.ones((2, 2, 1)))  # nearest-neighbour x2: periodic up-sampling trace
        images.append(Image.fromarray(np.clip(fake, 0, 255).astype(np.uint8)))
        labels.append(1)
    return images, np.array(labels)


def synthetic_training_set(folder: Path, n: int = 16, size: int = 64, seed: int = 0) -> TrainingSet:
    """The synthetic images written as PNG files, wrapped as a :class:`TrainingSet`."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic_pair_images(n, size, seed)
    samples = []
    for i, (img, label) in enumerate(zip(images, labels)):
        path = folder / f"{i:03d}_{label}.png"
        img.save(path)
        sid = file_sha256(path)
        samples.append(Sample(sid, str(path), int(label), "synthetic", "nn-upsample" if label else "real",
                              "synthetic" if label else "camera", "train", "", "png", size, size, False))
    from harness.data.decode import load_image

    return TrainingSet(samples, lambda s: load_image(s.path))


def _fail(name: str, rule: str, detail: str) -> None:
    raise ConformanceError(f"detector {name!r} breaks rule '{rule}': {detail}")


def _check_scores(name: str, scores: Any, n: int) -> np.ndarray:
    if not isinstance(scores, np.ndarray) or scores.ndim != 1 or scores.shape[0] != n:
        _fail(name, "one score per image", f"got {type(scores).__name__} of shape {getattr(scores, 'shape', None)}")
    if scores.dtype.kind != "f":
        _fail(name, "float scores", f"dtype {scores.dtype}")
    if not np.all(np.isfinite(scores)):
        _fail(name, "finite scores", f"{scores}")
    return scores


TRAIN_SEED = 1


def _trained(name: str, params: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from harness.plugins import detectors

    spec = detectors()[name]
    if not spec.trainable:
        return dict(params)
    train = synthetic_training_set(workdir / "train", n=16, seed=TRAIN_SEED)
    ckpt = spec.create(**params).fit(train, workdir / "checkpoint", seed=0, device="cpu")
    return {**params, weights_parameter(spec): str(ckpt or workdir / "checkpoint")}


def weights_parameter(spec: Any) -> str:
    """The parameter a trained detector reads its weights from: ``checkpoint``, or else the
    first path parameter its spec declares (a plugin may name it as it likes)."""
    declared = list(getattr(spec, "path_params", {}) or {})
    return "checkpoint" if "checkpoint" in declared or not declared else declared[0]


def _direction_auc(det: Any, trainable: bool) -> float:
    """AUC on the training images for a trained detector, on held-out ones otherwise."""
    from harness.data.decode import decode_bytes

    images, labels = synthetic_pair_images(16, seed=TRAIN_SEED) if trainable else synthetic_pair_images(12, seed=7)
    if trainable:  # score exactly the files it was trained on (PNG round trip is lossless)
        images = [decode_bytes(_png(im)) for im in images]
    return float(roc_auc_score(labels, det.score(images)))


def _png(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def check_detector(name: str, params: dict[str, Any] | None = None, workdir: str | Path | None = None,
                   min_auc: float = 0.65) -> dict[str, Any]:
    """Run every rule on detector ``name``; returns what was measured, raises on a breach."""
    from harness.plugins import detectors

    spec = detectors()[name]
    params = dict(spec.test_params if params is None else params)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        full = _trained(name, params, work)
        det = spec.create(**full)
        det.load("cpu")
        images, labels = synthetic_pair_images(12, seed=7)
        scores = _check_scores(name, det.score(images), len(images))
        heldout_auc = float(roc_auc_score(labels, scores))
        auc = _direction_auc(det, spec.trainable)
        if auc <= (min_auc if spec.trainable else 0.5):
            where = "training" if spec.trainable else "held-out"
            _fail(name, "higher means generated", f"AUC {auc:.3f} on its {where} images")
        if not np.array_equal(scores, _check_scores(name, det.score(images), len(images))):
            _fail(name, "determinism", "two calls gave different scores")
        single = np.concatenate([det.score([im]) for im in images])
        if not np.allclose(single, scores, atol=1e-5, rtol=0):
            _fail(name, "batch invariance", f"max difference {np.abs(single - scores).max():.2e}")
        split = np.asarray(det.score_batch([det.preprocess(im) for im in images]), dtype=np.float64)
        if not np.allclose(split, scores, atol=1e-6, rtol=0):
            _fail(name, "score == score_batch(preprocess)", f"max difference {np.abs(split - scores).max():.2e}")
        _check_wrong_checkpoints(name, spec, full, work)
        return {"auc": auc, "heldout_auc": heldout_auc, "threshold": float(det.threshold)}


def _check_wrong_checkpoints(name: str, spec: Any, params: dict[str, Any], work: Path) -> None:
    key = weights_parameter(spec)
    if key not in params:
        return
    from harness.checkpoint import write_checkpoint
    import torch

    other = write_checkpoint(work / "other", "not-" + name, {"w": torch.zeros(2)})
    junk = work / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    for wrong in (other, junk):
        try:
            spec.create(**{**params, key: str(wrong)}).load("cpu")
        except CheckpointError:
            continue
        except Exception as exc:  # noqa: BLE001
            _fail(name, "wrong checkpoint refused clearly", f"{wrong.name}: {type(exc).__name__}: {exc}")
        _fail(name, "wrong checkpoint refused", f"{wrong.name} was accepted")
