from __future__ import annotations

import pytest

from harness import plugins
from harness.api import DetectorSpec, ExifbenchError, UnknownNameError
from harness.plugins import Registry


def _spec(name: str) -> DetectorSpec:
    return DetectorSpec(name, "x", "", "", "detectors.spectrum.model:SpectrumDetector")


def test_registry_refuses_duplicate_names_and_names_both_plugins():
    reg = Registry("detector", [("plugin-a", _spec("same"))])
    with pytest.raises(ExifbenchError, match="plugin-a.*plugin-b"):
        reg.add(_spec("same"), owner="plugin-b")


def test_registry_suggests_the_closest_name_for_a_typo():
    reg = Registry("detector", [("p", _spec("spectrum")), ("p", _spec("cnnspot"))])
    with pytest.raises(UnknownNameError, match="did you mean 'spectrum'"):
        reg["spektrum"]


def test_builtins_arrive_through_the_entry_point_group():
    pm = plugins.plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"spectrum", "jpeg", "blur", "resize", "none", "layouts"} <= names


def test_registries_hold_the_built_in_plugins():
    assert "spectrum" in plugins.detectors()
    assert {"none", "jpeg", "blur", "resize"} <= set(plugins.perturbations())
    assert {"binary-folders", "manifest", "real-only"} <= set(plugins.layouts())
    assert "spectrum" in plugins.trainers()


def test_a_third_party_plugin_registers_through_the_same_hooks():
    from harness.hookspecs import hookimpl

    class Extra:
        @hookimpl
        def exifbench_detectors(self):
            return [_spec("extra-detector")]

    pm = plugins.plugin_manager()
    pm.register(Extra(), name="extra")
    try:
        plugins.detectors.cache_clear()
        assert plugins.detectors().owner("extra-detector") == "extra"
    finally:
        pm.unregister(name="extra")
        plugins.detectors.cache_clear()
