"""``spectrum``: the spectral baseline of Durall et al., CVPR 2020.

Plugin registration only; the model lives in :mod:`detectors.spectrum.model` and is
imported lazily.
"""
from __future__ import annotations

from harness.api import DetectorSpec
from harness.hookspecs import hookimpl


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="spectrum",
            approach="spectral",
            summary="azimuthally averaged log power spectrum + logistic regression",
            paper="Durall et al., Watch your Up-Convolution, CVPR 2020",
            factory="detectors.spectrum.model:SpectrumDetector",
            score_is_probability=True,
            path_params={"checkpoint": ()},
            defaults={"n_bins": 300, "interpolation": "cubic", "C": 1.0},
            trainable=True,
            test_params={"n_bins": 64},
        )
    ]
