"""``univfd``: Ojha et al., "Towards Universal Fake Image Detectors that Generalize Across
Generative Models", CVPR 2023 (github.com/WisconsinAIVision/UniversalFakeDetect).

Plugin registration only; the model lives in :mod:`detectors.univfd.model` and is imported
lazily, so this plugin registers even where the optional dependency open_clip is missing.
"""
from __future__ import annotations

from harness.api import DetectorSpec
from harness.hookspecs import hookimpl

#: tiny and fast (CPU, seconds) for the conformance kit: a bundled 2-layer CLIP config with
#: random weights (``random_clip_seed``) tests the wiring; it is not UnivFD's backbone
TEST_PARAMS = {"clip_model": "tiny-test-clip", "random_clip_seed": 0, "crop": 32, "load_size": None,
               "train_crop": 32, "aug_prob": 0.0, "views": 4, "epochs": 100, "batch_size": 8, "lr": 5e-2,
               "patience": None, "val_fraction": 0.0}


def memory(params) -> tuple[float, float]:
    """CLIP takes a fixed centre crop (``crop``, 224 by default): the memory does not grow
    with the image (the ViT-L/14 weights, about 1.2 GB in float32, and its activations)."""
    return 1600 * 2 ** 20, 0.0


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="univfd",
            approach="foundation",
            summary="linear probe on frozen CLIP ViT-L/14 image features (UnivFD); needs clip_weights",
            paper="Ojha et al., Towards Universal Fake Image Detectors that Generalize Across "
                  "Generative Models, CVPR 2023",
            factory="detectors.univfd.model:UnivFDDetector",
            score_is_probability=True,
            path_params={"checkpoint": (), "clip_weights": ()},
            memory="detectors.univfd:memory",
            defaults={},
            trainable=True,
            test_params=TEST_PARAMS,
        )
    ]
