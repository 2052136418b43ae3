"""Fixtures and hooks only (shared builders are in ``tests/helpers.py``): an isolated cache
folder per test, a tiny generated dataset, the plugin registries as installed, and one Ray.

Ray: every test that starts or uses Ray is marked ``ray`` and runs on the one local Ray of
the ``ray_session`` fixture (a test that uses the fixture gets the mark; a marked test gets
the fixture). A test without the mark that calls ``harness.runtime.ensure_ray`` fails,
saying so: no test starts a Ray of its own, whose CPU count would then depend on which test
happened to run first.
"""
from __future__ import annotations

import functools
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import start_local_ray, write_binary_folders

# Property-based tests (tests/test_fuzz_*.py): ~50 examples each by default, so the suite
# stays fast; EXIFBENCH_FUZZ=fuzz runs thousands (EXIFBENCH_FUZZ_EXAMPLES sets how many).
settings.register_profile("default", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=int(os.environ.get("EXIFBENCH_FUZZ_EXAMPLES", "5000")),
                          deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
settings.load_profile(os.environ.get("EXIFBENCH_FUZZ", "default"))


#: node id of the running test when it is not marked ``ray``; None while Ray is allowed
_test_without_ray: str | None = None
_guarded: list[tuple[object, object]] = []  # (module, the ensure_ray it held)


def pytest_configure(config):
    """Every ``ensure_ray`` of the harness (``from harness.runtime import ensure_ray`` binds
    it in other modules too) becomes one that refuses while an unmarked test runs."""
    import harness.parallel  # noqa: F401  (binds ensure_ray at import: import it before the swap)
    from harness import runtime

    original = runtime.ensure_ray

    @functools.wraps(original)
    def ensure_ray(*args, **kwargs):
        if _test_without_ray is not None:
            raise AssertionError(f"{_test_without_ray} starts Ray: mark it @pytest.mark.ray "
                                 "(it then runs on the ray_session fixture's Ray)")
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "ensure_ray", None) is original:
            _guarded.append((module, original))
            module.ensure_ray = ensure_ray


def pytest_unconfigure(config):
    for module, original in _guarded:
        module.ensure_ray = original
    _guarded.clear()


def pytest_collection_modifyitems(items):
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.ray)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Set before any fixture of the test, module-scoped ones included."""
    global _test_without_ray
    _test_without_ray = None if item.get_closest_marker("ray") else item.nodeid


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder, so no test sees another's cached scores."""
    monkeypatch.setenv("EXIFBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return write_binary_folders(tmp_path / "data")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (starting Ray costs seconds)."""
    from harness.runtime import shutdown

    ray = start_local_ray()
    yield ray
    shutdown()


@pytest.fixture(autouse=True)
def ray_for_marked_tests(request):
    """A test marked ``ray`` runs on the session's Ray even when it names no fixture that
    starts it (a test that calls ``parallel_map`` itself)."""
    if request.node.get_closest_marker("ray"):
        request.getfixturevalue("ray_session")


@pytest.fixture(autouse=True)
def plugins_as_installed():
    """After each test the registries hold the installed plugins again, whatever the test
    registered: a registry cached with a test's plugin would leak into the tests after it."""
    yield
    from harness import plugins

    if plugins.plugin_manager.cache_info().currsize == 0:
        return
    installed = _installed_plugins()
    registered = {name for name, _ in plugins.plugin_manager().list_name_plugin()}
    if registered != installed or _registries_name_other_plugins(installed):
        plugins.reset()


@functools.lru_cache(maxsize=1)
def _installed_plugins() -> frozenset[str]:
    from harness import hookspecs

    return frozenset(ep.name for ep in entry_points(group=hookspecs.PROJECT))


def _registries_name_other_plugins(installed: frozenset[str]) -> bool:
    from harness import plugins

    for registry in (plugins.detectors, plugins.perturbations, plugins.suites, plugins.layouts, plugins.trainers):
        if registry.cache_info().currsize and any(registry().owner(n) not in installed | {"?"} for n in registry()):
            return True
    return False
