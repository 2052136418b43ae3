"""The named perturbation suites of published evaluations (``suites.toml`` beside this module).

Each suite says where its grid comes from; ``exifbench list perturbations`` shows them and a
sweep config names one with ``[perturbations] suite = "NAME"``.
"""
from __future__ import annotations

from importlib.resources import files

from harness.api import SuiteSpec
from harness.chains import read_suites
from harness.hookspecs import hookimpl

__all__ = ["exifbench_perturbation_suites"]


@hookimpl
def exifbench_perturbation_suites() -> list[SuiteSpec]:
    resource = files(__package__) / "suites.toml"
    return read_suites(resource.read_text(), where=f"{__package__}/suites.toml")
