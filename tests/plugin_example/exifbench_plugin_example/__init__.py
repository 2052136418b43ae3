"""An exifbench plugin: the ``hfstats`` detector and the ``posterize`` perturbation.

This module is what the ``exifbench`` entry point of ``pyproject.toml`` names: exifbench
imports it when it builds its registries and calls the hooks below. Keep it cheap to
import (the listing and a fully cached sweep import every plugin): the detector's module
is named by its factory string and imported only when a detector is created.
"""
from __future__ import annotations

from harness.api import DetectorSpec, ParamSpec, PerturbationSpec
from harness.hookspecs import hookimpl

from exifbench_plugin_example.posterize import posterize

__all__ = ["exifbench_detectors", "exifbench_perturbations"]


@hookimpl
def exifbench_detectors() -> list[DetectorSpec]:
    return [
        DetectorSpec(
            name="hfstats",
            approach="statistics",
            summary="logistic regression on three high-frequency image statistics (a plugin template)",
            paper="none: the template of a third-party exifbench plugin",
            factory="exifbench_plugin_example.detector:HFStatsDetector",
            defaults={"C": 1.0},
            trainable=True,
            test_params={},
            # `coefficients` names a checkpoint folder: declaring it makes planning refuse a
            # missing one before any compute (it is hashed by content either way).
            path_params={"coefficients": ()},
        )
    ]


@hookimpl
def exifbench_perturbations() -> list[PerturbationSpec]:
    return [
        PerturbationSpec(
            "posterize",
            posterize,
            params=(ParamSpec("bits", int, choices=tuple(range(1, 9))),),
            version="1",  # change it whenever the output changes: cached scores are keyed by it
            summary="keep the most significant bits of each channel",
            metadata="pixels only; no metadata",
            strength="bits",
        )
    ]
