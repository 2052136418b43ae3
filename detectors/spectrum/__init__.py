"""``spectrum``: the spectral baseline of Durall et al., CVPR 2020.

Plugin registration only; the model lives in :mod:`detectors.spectrum.model` and is
imported lazily.
"""
from __future__ import annotations

from harness.api import DetectorSpec
from harness.hookspecs import hookimpl


def memory(params) -> tuple[float, float]:
    """Peak bytes of one image's feature: the grey image, its half-plane FFT and the cached
    ring operator of its size, about 70 bytes per pixel (measured with
    ``tests/benchmarks/bench_memory.py --per-pixel``)."""
    return 16 * 2 ** 20, 72.0


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
            memory="detectors.spectrum:memory",
            defaults={"n_bins": 300, "interpolation": "cubic", "C": 1.0},
            trainable=True,
            test_params={"n_bins": 64},
        )
    ]
