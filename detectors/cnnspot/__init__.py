"""``cnnspot``: Wang et al., "CNN-generated images are surprisingly easy to spot... for now",
CVPR 2020 (github.com/PeterWang512/CNNDetection).

Plugin registration only; the model lives in :mod:`detectors.cnnspot.model` and is imported
lazily. The CNNDetection recipe it shares with ``npr`` and ``univfd`` lives in
:mod:`harness.recipes.cnndetection`.
"""
from __future__ import annotations

from harness.api import DetectorSpec
from harness.hookspecs import hookimpl

#: tiny and fast (CPU, seconds) for the conformance kit; not a benchmark configuration
TEST_PARAMS = {"preset": "cpu-small", "load_size": None, "train_crop": 64, "aug_prob": 0.0,
               "epochs": 8, "batch_size": 8, "lr": 1e-3, "patience": None, "val_fraction": 0.0}


def memory(params) -> tuple[float, float]:
    """Peak bytes of scoring one image: the model and its buffers, plus per input pixel the
    ResNet's widest activations at native size (no resize; measured with
    ``tests/benchmarks/bench_memory.py --per-pixel``); a ``crop`` fixes the input."""
    base = (200 if params.get("preset", "paper") == "paper" else 80) * 2 ** 20
    return (base + 240 * 224 * 224, 0.0) if params.get("crop") else (base, 240.0)


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="cnnspot",
            approach="cnn",
            summary="ResNet-50, one logit, trained with blur+JPEG augmentation (CNNDetection)",
            paper="Wang et al., CNN-generated images are surprisingly easy to spot... for now, CVPR 2020",
            factory="detectors.cnnspot.model:CNNSpotDetector",
            score_is_probability=True,
            path_params={"checkpoint": (), "init": ()},
            defaults={"preset": "paper"},
            memory="detectors.cnnspot:memory",
            trainable=True,
            test_params=TEST_PARAMS,
        )
    ]
