"""The distribution: a built wheel holds the code and the package data, and an install of it
finds the catalogue, the leaderboard spec and the perturbation suites without the source tree."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "detectors", "perturbations")
#: source folder -> where its data lands in the wheel (pyproject.toml, [tool.setuptools.package-dir])
DATA = {"datasets": "harness/_catalogue", "leaderboards": "harness/_leaderboards"}


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the project (a build writes build/ beside its sources)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in (*PACKAGES, *DATA):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(out), str(src)])
    (built,) = out.glob("exifbench-*.whl")
    return built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_the_wheel_holds_every_catalogue_file_the_zoo_recipe_the_leaderboard_spec_and_the_suites(wheel):
    expected = {f"{DATA['datasets']}/{p.name}" for p in (ROOT / "datasets").iterdir() if p.is_file()}
    expected |= {f"{DATA['leaderboards']}/{p.name}" for p in (ROOT / "leaderboards").glob("*.toml")}
    expected |= {"perturbations/suites.toml"}
    assert {f"{DATA['datasets']}/zoo.toml", f"{DATA['datasets']}/zoo_curation.csv",
            f"{DATA['leaderboards']}/default.toml"} <= expected
    assert sorted(expected - _names(wheel)) == []


def test_the_wheel_holds_every_module_of_the_source_tree(wheel):
    """pyproject.toml lists the packages by name: a new subpackage must be added there."""
    modules = {p.relative_to(ROOT).as_posix() for name in PACKAGES for p in (ROOT / name).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert sorted(modules - _names(wheel)) == []


def test_the_reference_renderings_stay_out_of_the_wheel(wheel):
    assert not [n for n in _names(wheel) if "/demo/" in n or n.endswith(".png")]


_PROBE = """
import json, sys
import harness
from harness.data.catalogue import load_catalogue
from harness.data.zoo import datasets_dir, load_recipe
from harness.leaderboard.render import DEFAULT_SPEC_PATH, LeaderboardSpec, load_spec
from perturbations.suites import exifbench_perturbation_suites
print(json.dumps({
    "harness": harness.__file__,
    "catalogue": sorted(load_catalogue()),
    "catalogue_folder": str(datasets_dir() / "zoo.toml"),
    "zoo_recipe": sorted(load_recipe()),
    "curation": (datasets_dir() / "zoo_curation.csv").is_file(),
    "spec": str(DEFAULT_SPEC_PATH),
    "default_spec": load_spec() == LeaderboardSpec(),
    "suites": sorted(s.name for s in exifbench_perturbation_suites()),
}))
"""


def test_an_installed_wheel_finds_its_data_without_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
          str(wheel)])
    # PYTHONPATH comes before the editable install of this checkout; the working folder is not the checkout
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)}
    found = json.loads(_run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env).stdout)
    from harness.data.catalogue import load_catalogue
    from perturbations.suites import exifbench_perturbation_suites

    for key in ("harness", "catalogue_folder", "spec"):
        assert found[key].startswith(str(target)), (key, found[key])
    assert found["catalogue"] == sorted(load_catalogue())
    assert "recipe" in found["zoo_recipe"] and found["curation"] and found["default_spec"]
    assert found["suites"] == sorted(s.name for s in exifbench_perturbation_suites())
