"""exifbench: a benchmark and evaluation harness for detectors of AI-generated images."""
from __future__ import annotations

from typing import Any

from harness.api import (
    CheckpointError,
    ConfigError,
    DecodeError,
    Detector,
    DetectorSpec,
    ExifbenchError,
    LayoutSpec,
    PerturbationSpec,
    Sample,
)
from harness.data.exif import read_exif
from harness.chains import perturb

# What a plugin author needs: the specs its hooks return, ``hookimpl`` to mark them, the
# records and errors, and the helpers (the conformance kit is ``harness.testing``).
__all__ = [
    "Sample", "Detector", "DetectorSpec", "PerturbationSpec", "ParamSpec", "SuiteSpec", "TrainerSpec", "LayoutSpec",
    "TrainingSet", "hookimpl", "ExifbenchError", "ConfigError", "CheckpointError", "DecodeError", "perturb",
    "read_exif", "load_detector",
]


def load_detector(name: str, device: str = "cpu", **params: Any) -> Detector:
    """Create a registered detector with ``params`` and load its weights on ``device``."""
    from harness.plugins import detectors

    detector = detectors()[name].create(**params)
    detector.load(device)
    return detector
