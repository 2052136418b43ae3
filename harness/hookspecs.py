"""Hook specifications of exifbench (pluggy project name ``"exifbench"``).

Each hook returns a list of specs; the plugin manager gathers the lists of every plugin
(built-in or third-party, all loaded from the ``exifbench`` entry-point group) into the
registries through ``pm.hook.<name>(...)``. Hooks are called with keyword arguments, so a
spec can grow arguments without breaking plugins that take fewer. A function marked
``@hookimpl`` whose name matches no spec here is an error naming its plugin.
"""
from __future__ import annotations

import pluggy

from harness.api import DetectorSpec, LayoutSpec, PerturbationSpec, SuiteSpec, TrainerSpec

__all__ = ["hookspec", "hookimpl", "exifbench_detectors", "exifbench_perturbations", "exifbench_perturbation_suites",
           "exifbench_dataset_layouts", "exifbench_trainers"]

PROJECT = "exifbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- detectors -------------------------------------------------------------------------
@hookspec
def exifbench_detectors() -> list[DetectorSpec]:
    """Return the detectors this plugin provides.

    Each :class:`~harness.api.DetectorSpec` names the detector (unique across all plugins),
    its approach, a one-line summary, the paper, a lazy ``"module:Class"`` factory, default
    parameters and whether it is trainable. Importing the plugin module must stay cheap:
    heavy imports belong in the factory's module. All results are collected.
    """


# --- perturbations ---------------------------------------------------------------------
@hookspec
def exifbench_perturbations() -> list[PerturbationSpec]:
    """Return the perturbation families this plugin provides.

    A perturbation is a pure function of (RGB image, parameters, ``numpy.random.Generator``)
    returning an RGB image. ``version`` must change whenever its output changes, since
    cached scores are keyed by it. All results are collected.
    """


@hookspec
def exifbench_perturbation_suites() -> list[SuiteSpec]:
    """Return named perturbation grids (e.g. the robustness grid of a published evaluation).

    Each :class:`~harness.api.SuiteSpec` has a unique name, a title, the source of its grid
    and its spec strings, which may name perturbations of any plugin. All results are
    collected.
    """


# --- data ------------------------------------------------------------------------------
@hookspec
def exifbench_dataset_layouts() -> list[LayoutSpec]:
    """Return the dataset layouts this plugin provides.

    A layout's ``read(root, dataset=..., **options)`` turns a folder (or a manifest file)
    into a list of :class:`~harness.api.Sample` records, with label 0 for real photographs
    and 1 for generated images. All results are collected.
    """


# --- training --------------------------------------------------------------------------
@hookspec
def exifbench_trainers() -> list[TrainerSpec]:
    """Return training jobs that are not detectors (e.g. a self-supervised backbone).

    ``exifbench train NAME`` accepts these names and the names of trainable detectors.
    All results are collected.
    """
