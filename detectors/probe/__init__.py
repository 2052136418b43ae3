"""``probe``: the shortcut probe, a control for any benchmark.

It sees only an image's processing history, never its content: JPEG 8x8 grid blockiness,
estimated JPEG quality, high-frequency energy ratio, resampling periodicity, width and
height, and a logistic regression on them. A probe that separates real from generated
images says that the benchmark can be solved by file history: the leaderboard shows it as
a labelled control row, and ``exifbench data check`` runs it cross-validated on the data.

Plugin registration only; the features and the model live in :mod:`detectors.probe.model`.
"""
from __future__ import annotations

from harness.api import DetectorSpec
from harness.hookspecs import hookimpl


def memory(params) -> tuple[float, float]:
    """Peak bytes of one image's features: a few grey and residual planes, about 11 bytes
    per pixel (measured with ``tests/benchmarks/bench_memory.py --per-pixel``)."""
    return 16 * 2 ** 20, 12.0


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="probe",
            approach="history",
            summary="shortcut probe: JPEG grid and quality, high-frequency energy, resampling, size + logistic regression",
            paper="control (exifbench): a benchmark solvable by processing history alone",
            factory="detectors.probe.model:ProbeDetector",
            score_is_probability=True,
            # 2: blockiness by Fan and de Queiroz's cross difference; 3: the JPEG ghost's error
            # on blocks without clipped colours (harness.data.shortcut)
            version="3",
            path_params={"checkpoint": ()},
            defaults={"C": 1.0, "jpeg_quality_from": "pixels"},
            memory="detectors.probe:memory",
            trainable=True,
            control="shortcut probe: sees only processing history (JPEG grid and quality, high frequencies, "
                    "resampling, size)",
        )
    ]
