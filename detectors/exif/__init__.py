"""``exif-oc``, ``exif-bc`` and the ``exif-backbone`` trainer: SDAIE, Zhong et al.,
"Self-Supervised AI-Generated Image Detection: A Camera Metadata Perspective", IEEE TPAMI
(upstream: github.com/Ekko-zn/SDAIE).

Plugin registration only; models live in the submodules and are imported lazily.

``test_params`` are a tiny configuration for the conformance kit: ``backbone="random"``
fits on a seeded, randomly initialised 4-channel backbone with 16 px tiles (its weights are
stored in the checkpoint folder); such a detector is a smoke test, not a detector.
"""
from __future__ import annotations

from harness.api import DetectorSpec, TrainerSpec
from harness.hookspecs import hookimpl

PAPER = "Zhong et al., Self-Supervised AI-Generated Image Detection: A Camera Metadata Perspective, IEEE TPAMI"
_TINY = {"backbone": "random", "width": 4, "patch_size": 16}


def memory(params) -> tuple[float, float, float]:
    """Peak bytes of scoring one image: every tile as float32 and the tiling's copies and the
    backbone's passes over chunks of tiles grow with the pixels (about 120 bytes per pixel),
    and the set transformer's full attention over the image's T tiles with their square:
    4 heads x (scores, scaled, softmax) x float32 leave about 32 bytes per pair of tiles
    alive, T = pixels / patch_size^2 (up to ``max_tiles``). Measured with
    ``tests/benchmarks/bench_memory.py --per-pixel 1 4`` (16-px tiles: 498 MiB at 1 Mpx, 7,509
    MiB at 4 Mpx, the growth of a square)."""
    patch = float(params.get("patch_size", 64))
    return 120 * 2 ** 20, 120.0, 32.0 / patch ** 4


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="exif-oc",
            approach="exif",
            summary="EXIF-pretext features + 5-component Gaussian mixture on real photos (one-class); "
                    "threshold_rule='heldout' and covariance='auto' for few photos",
            paper=PAPER,
            factory="detectors.exif.oc:ExifOneClassDetector",
            path_params={"checkpoint": (), "backbone": ("random",)},
            memory="detectors.exif:memory",
            defaults={"tiling": "center", "n_components": 5, "quantile": 0.02, "covariance": "full",
                      "threshold_rule": "in-sample", "folds": 10, "gmm_dtype": "float64"},
            trainable=True,
            test_params={**_TINY, "n_components": 2},
        ),
        DetectorSpec(
            name="exif-bc",
            approach="exif",
            summary="binary classifier of the SDAIE architecture, distilled from the EXIF-pretext backbone",
            paper=PAPER,
            factory="detectors.exif.bc:ExifBinaryDetector",
            score_is_probability=True,
            path_params={"checkpoint": (), "backbone": ("random",)},
            memory="detectors.exif:memory",
            # batch_size: the authors' global batch, 100 images per GPU x 8 GPUs
            defaults={"tiling": "center", "epochs": 15, "batch_size": 800, "lr": 1e-3, "alpha": 0.05},
            trainable=True,
            test_params={**_TINY, "epochs": 6, "batch_size": 4, "n_crops": 8, "lr": 3e-3, "augment": False},
        ),
    ]


@hookimpl
def exifbench_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            name="exif-backbone",
            summary="SDAIE self-supervised EXIF pretext training (categorical CE + Thurstone ranking)",
            factory="detectors.exif.pretext:ExifBackboneTrainer",
            defaults={"preset": "paper"},
        )
    ]
