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


def test_a_misspelled_hook_implementation_is_an_error_naming_its_plugin(monkeypatch):
    import pluggy

    from harness.hookspecs import hookimpl

    class Misspelled:
        @hookimpl
        def exifbench_detector(self):  # the hook is exifbench_detectors
            return []

    original = pluggy.PluginManager.load_setuptools_entrypoints

    def load_and_add(pm, group, name=None):
        count = original(pm, group, name)
        pm.register(Misspelled(), name="misspelled-plugin")
        return count

    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", load_and_add)
    plugins.reset()
    try:
        with pytest.raises(ExifbenchError, match="misspelled-plugin.*exifbench_detector"):
            plugins.plugin_manager()
    finally:
        monkeypatch.undo()
        plugins.reset()


def test_a_perturbation_validator_is_a_field_of_its_spec():
    from harness.api import ConfigError
    from harness.chains import expand

    resize = plugins.perturbations()["resize"]
    assert resize.check is not None and not hasattr(resize.apply, "check")
    with pytest.raises(ConfigError, match="exactly one of scale"):
        expand("resize(scale=0.5, size=64)")


# --- cache keys: every parameter that names a file is hashed, whatever the plugin ----------

class FileWeightedDetector:
    """A third-party-style detector whose weights parameter is named like no built-in's."""

    threshold = 0.5

    def __init__(self, coefficients: str | None = None, gain: float = 1.0):
        self.coefficients, self.gain = coefficients, gain

    def load(self, device: str = "cpu") -> None:
        import numpy as np

        self.weight_ = float(np.load(self.coefficients)[0])

    def preprocess(self, image):
        import numpy as np

        return float(np.asarray(image.convert("L"), dtype=np.float64).std())

    def score_batch(self, items):
        import numpy as np

        return np.asarray(items, dtype=np.float64) * self.weight_ * self.gain

    def score(self, images):
        return self.score_batch([self.preprocess(i) for i in images])


@pytest.fixture
def outside_detector():
    """``filedet`` (undeclared weights parameter) and ``filedet-declared`` registered by a
    plugin defined here, as a third-party package would register them."""
    from harness.hookspecs import hookimpl

    factory = f"{__name__}:FileWeightedDetector"

    class Outside:
        @hookimpl
        def exifbench_detectors(self):
            return [DetectorSpec("filedet", "test", "", "", factory),
                    DetectorSpec("filedet-declared", "test", "", "", factory, path_params={"coefficients": ()})]

    pm = plugins.plugin_manager()
    pm.register(Outside(), name="outside")
    plugins.detectors.cache_clear()
    try:
        yield
    finally:
        pm.unregister(name="outside")
        plugins.detectors.cache_clear()


def _sweep_config(tmp_path, detector: str, coefficients: str):
    from harness.config import load_sweep
    from tests.helpers import write_binary_folders

    data = write_binary_folders(tmp_path / "data", generators=("g",), n=2)
    path = tmp_path / "sweep.toml"
    path.write_text(f'[[datasets]]\nname = "d"\nlayout = "binary-folders"\nroot = "{data}"\n'
                    f'[[detectors]]\nname = "{detector}"\ncoefficients = "{coefficients}"\n')
    return load_sweep(path)


@pytest.mark.parametrize("detector", ["filedet", "filedet-declared"])
def test_rewriting_the_weights_of_an_outside_detector_in_place_recomputes_its_cells(tmp_path, outside_detector,
                                                                                    detector):
    import numpy as np

    from harness.engine.plan import make_plan
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import _missing

    np.save(tmp_path / "w.npy", np.array([1.0]))
    config = _sweep_config(tmp_path, detector, "w.npy")  # relative: read from the config's folder
    assert config.detectors[0].param_dict["coefficients"] == str(tmp_path / "w.npy")
    plan = make_plan(config)
    assert plan.detectors[0].weights_sha256
    cache = ScoreCache(None)
    cache.put_many((c.key, 1.0, None) for c in plan.cells)
    assert _missing(make_plan(config), cache, retry_errors=False)[0] == []

    np.save(tmp_path / "w.npy", np.array([2.0]))  # retrained into the same path
    replanned = make_plan(config)
    missing, needed = _missing(replanned, cache, retry_errors=False)
    assert len(missing) == len(plan.cells) > 0 and needed == [0]
    assert replanned.detectors[0].weights_sha256 != plan.detectors[0].weights_sha256


def test_a_declared_path_parameter_that_does_not_exist_stops_the_plan(tmp_path, outside_detector):
    from harness.api import ConfigError
    from harness.engine.plan import make_plan

    config = _sweep_config(tmp_path, "filedet-declared", "missing.npy")
    assert config.detectors[0].param_dict["coefficients"] == str(tmp_path / "missing.npy")
    with pytest.raises(ConfigError, match="coefficients.*no such file"):
        make_plan(config)


def test_a_documented_special_value_is_not_a_path(tmp_path):
    from harness.config import load_sweep
    from harness.engine.plan import weights_sha256

    (tmp_path / "d").mkdir()
    path = tmp_path / "sweep.toml"
    path.write_text(f'[[datasets]]\nname = "d"\nlayout = "real-only"\nroot = "{tmp_path / "d"}"\n'
                    '[[detectors]]\nname = "exif-oc"\nbackbone = "random"\n')
    params = load_sweep(path).detectors[0].param_dict
    assert params["backbone"] == "random"
    assert weights_sha256(params, plugins.detectors()["exif-oc"].path_params) == ""


def test_every_builtin_declares_its_path_parameters():
    declared = {name: dict(spec.path_params) for name, spec in plugins.detectors().items() if spec.trainable}
    assert all("checkpoint" in d for name, d in declared.items() if name in
               {"spectrum", "cnnspot", "npr", "univfd", "exif-oc", "exif-bc"}), declared


def test_a_detector_version_is_part_of_the_cache_key(tmp_path):
    """Changing a detector's code (its spec's version) invalidates its cached scores; an
    unversioned spec keeps the keys it had."""
    import numpy as np

    from harness.engine.plan import _plan_detector
    from harness.config import DetectorConfig
    from harness.hookspecs import hookimpl

    factory = f"{__name__}:FileWeightedDetector"

    class Versions:
        @hookimpl
        def exifbench_detectors(self):
            return [DetectorSpec("det-v1", "test", "", "", factory, version="1"),
                    DetectorSpec("det-v2", "test", "", "", factory, version="2"),
                    DetectorSpec("det-none", "test", "", "", factory)]

    np.save(tmp_path / "w.npy", np.array([1.0]))
    pm = plugins.plugin_manager()
    pm.register(Versions(), name="versions")
    plugins.detectors.cache_clear()
    try:
        params = {"coefficients": str(tmp_path / "w.npy")}
        keys = {n: _plan_detector(DetectorConfig(n, params)).key for n in ("det-v1", "det-v2", "det-none")}
        import hashlib

        planned = _plan_detector(DetectorConfig("det-none", params))
        unversioned = hashlib.sha256(f"det-none|{planned.params_hash}|{planned.weights_sha256}".encode()).hexdigest()
    finally:
        pm.unregister(name="versions")
        plugins.detectors.cache_clear()
    assert len(set(keys.values())) == 3 and keys["det-none"] == unversioned
