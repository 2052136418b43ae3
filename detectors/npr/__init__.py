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
            trainable=True,
            test_params=TEST_PARAMS,
        )
    ]
