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
            path_params={"checkpoint": ()},
            defaults={"C": 1.0, "jpeg_quality_from": "pixels"},
            trainable=True,
            control="shortcut probe: sees only processing history (JPEG grid and quality, high frequencies, "
                    "resampling, size)",
        )
    ]
