"""A base class for detectors: the shape of a scikit-learn estimator, for images.

Subclasses store constructor parameters unchanged (no I/O), load weights in ``load``,
and implement ``preprocess`` (CPU, per image, runs in parallel workers) and
``score_batch`` (model work on a list of preprocessed items). ``score`` composes the two.
Trainable detectors implement ``fit``, which writes a checkpoint folder.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from harness.api import CheckpointError, ConfigError, Sample

__all__ = ["BaseDetector", "PRECISIONS", "TrainingSet", "check_precision", "numeric_precision"]

#: arithmetic a torch detector may score in (its ``precision`` parameter); ``fp32`` is exact
PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(detector: str, precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"{detector}: precision={precision!r}; use one of {list(PRECISIONS)}")
    return precision


@contextmanager
def numeric_precision(precision: str, device: str = "cpu") -> Iterator[None]:
    """Score in ``precision``, restoring torch's global settings afterwards.

    ``fp32``: IEEE float32 matrix products and convolutions. On CUDA this also switches off
    the TensorFloat-32 convolutions that PyTorch's cuDNN uses by default, so GPU scores match
    CPU scores to float32 rounding. ``tf32``: TensorFloat-32 matrix products and
    convolutions on CUDA (Ampere and later; 10-bit mantissa inputs, float32 accumulation);
    on CPU it is fp32. ``bf16``: autocast to bfloat16 (on CPU and CUDA), with the operations
    that autocast keeps in float32 (norms, softmax, reductions) left there.
    Opt-in speed against exactness: ``tests/benchmarks/gpu_check.py`` reports the score
    differences and AUC changes each one causes.
    """
    import torch

    cuda = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = [c.fp32_precision for c in cuda]
    wanted = "tf32" if precision == "tf32" else "ieee"
    try:
        for c in cuda:
            c.fp32_precision = wanted
        if precision == "bf16":
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        for c, value in zip(cuda, before):
            c.fp32_precision = value


class TrainingSet:
    """Labelled training samples with lazy decoding (``image(i)``), for ``fit``.

    ``loader`` turns a sample into an RGB image (the decode step of the data protocol in
    force); samples that cannot be decoded are listed in ``failures`` by the trainer.
    """

    def __init__(self, samples: Sequence[Sample], loader: Callable[[Sample], Image.Image]):
        self.samples = list(samples)
        self.loader = loader

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def image(self, i: int) -> Image.Image:
        return self.loader(self.samples[i])


class BaseDetector:
    """Common plumbing; see :class:`harness.api.Detector` for the contract."""

    name: str = ""
    threshold: float = 0.5
    #: parameters the engine passes to Ray when placing this detector's actor
    num_gpus: float = 0.0

    def __init__(self, **params: Any):
        self.params = dict(params)
        for key, value in params.items():
            setattr(self, key, value)

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def load(self, device: str = "cpu") -> None:
        self.device = device

    def preprocess(self, image: Image.Image) -> Any:
        return image

    def score_batch(self, items: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError

    def score(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.asarray(self.score_batch([self.preprocess(im) for im in images]), dtype=np.float64)

    def _require_checkpoint(self, key: str = "checkpoint") -> Path:
        value = getattr(self, key, None)
        if not value:
            raise CheckpointError(
                f"detector {self.name!r} needs `{key} = PATH`; train one with "
                f"`exifbench train {self.name} --config TRAIN.toml --out DIR`"
            )
        path = Path(value).expanduser()
        if not path.exists():
            raise CheckpointError(f"detector {self.name!r}: checkpoint {str(path)!r} does not exist")
        return path
