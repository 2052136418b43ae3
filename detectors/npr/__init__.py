"""``npr``: Tan et al., "Rethinking the Up-Sampling Operations in CNN-based Generative Network
for Generalizable Deepfake Detection", CVPR 2024 (github.com/chuangchuangtan/NPR-DeepfakeDetection).

Plugin registration only; the model lives in :mod:`detectors.npr.model` and is imported lazily.
"""
from __future__ import annotations

from harness.api import DetectorSpec
from harness.hookspecs import hookimpl

#: tiny and fast (CPU, seconds) for the conformance kit; not a benchmark configuration
TEST_PARAMS = {"preset": "cpu-small", "load_size": None, "train_crop": 64, "epochs": 6, "batch_size": 16,
               "lr": 1e-3, "decay_every": None, "val_fraction": 0.0}


def memory(params) -> tuple[float, float]:
    """Peak bytes of scoring one image: the model, plus per input pixel the residual and the
    network's first activations at native size (measured with
    ``tests/benchmarks/bench_memory.py --per-pixel``); a ``crop`` fixes the input."""
    base = 60 * 2 ** 20
    return (base + 260 * 224 * 224, 0.0) if params.get("crop") else (base, 260.0)


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="npr",
            approach="cnn",
            summary="reduced ResNet on neighbouring-pixel residuals x - up2(down2(x)) (NPR)",
            paper="Tan et al., Rethinking the Up-Sampling Operations in CNN-based Generative Network "
                  "for Generalizable Deepfake Detection, CVPR 2024",
            factory="detectors.npr.model:NPRDetector",
            score_is_probability=True,
            path_params={"checkpoint": (), "init": ()},
            defaults={"preset": "paper"},
            memory="detectors.npr:memory",
            trainable=True,
            test_params=TEST_PARAMS,
        )
    ]
