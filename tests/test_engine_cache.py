"""The content cache: a sweep computes only the cells the cache lacks, and starts no Ray
when nothing is missing."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from harness.config import load_sweep
from harness.engine.score_cache import ScoreCache
from harness.engine.plan import make_plan
from harness.engine.sweep import run_sweep
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

COLS = ["detector", "sample_id", "perturbation", "score", "error"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine_cache")
    data = write_binary_folders(tmp / "data", generators=("gana", "ganb"), n=3)
    ckpt = spectrum_checkpoint(tmp, n_bins=32, n=8, seed=2)
    return tmp, data, ckpt


def write_config(tmp, data, ckpt, grid: list[str], detectors=({"alias": "spec32", "n_bins": 32},), name="sweep.toml"):
    return load_sweep(write_sweep_config(
        tmp / name, run={"seed": 0, "batch_size": 8},
        datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
        detectors=[{"name": "spectrum", "checkpoint": ckpt, **d} for d in detectors], grid=grid))


def rows(run_dir) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "scores.parquet")[COLS]
    return frame.sort_values(COLS[:3]).reset_index(drop=True)


BASE_GRID = ["none", "jpeg(quality=[90,70])"]


@pytest.fixture(scope="module")
def base(setup, ray_session):
    """One computed sweep; each test starts from a copy of its cache."""
    tmp, data, ckpt = setup
    cache = ScoreCache(tmp / "base.sqlite")
    result = run_sweep(write_config(tmp, data, ckpt, BASE_GRID, name="base.toml"), tmp / "base", quiet=True,
                       cache=cache, leaderboard=False)
    cache.close()  # folds the write-ahead log into the file, so a plain copy is complete
    assert result.computed == result.total == 12 * 3
    return tmp / "base.sqlite", rows(tmp / "base")


def copy_of(base_db: Path, tmp_path: Path) -> ScoreCache:
    shutil.copy(base_db, tmp_path / "scores.sqlite")
    return ScoreCache(tmp_path / "scores.sqlite")


@pytest.mark.ray
def test_rerun_into_another_out_scores_nothing_and_starts_no_ray(setup, base, tmp_path, monkeypatch):
    tmp, data, ckpt = setup

    def no_ray(*args, **kwargs):
        raise AssertionError("a fully cached sweep started Ray")

    monkeypatch.setattr("harness.runtime.ensure_ray", no_ray)
    again = run_sweep(write_config(tmp, data, ckpt, BASE_GRID, name="rerun.toml"), tmp_path / "again", quiet=True,
                      cache=copy_of(base[0], tmp_path), leaderboard=False)
    assert (again.computed, again.cached) == (0, again.total)
    pd.testing.assert_frame_equal(rows(tmp_path / "again"), base[1])
    assert json.loads((tmp_path / "again" / "run.json").read_text())["cells"]["computed"] == 0


@pytest.mark.ray
def test_adding_a_jpeg_level_computes_only_that_levels_cells(setup, base, tmp_path):
    tmp, data, ckpt = setup
    cache = copy_of(base[0], tmp_path)
    before = len(cache)
    grown = write_config(tmp, data, ckpt, ["none", "jpeg(quality=[90,70,50])"], name="grown.toml")
    result = run_sweep(grown, tmp_path / "grown", quiet=True, cache=cache, leaderboard=False)
    assert (result.computed, result.cached) == (12, 36)  # 12 images x 1 new level x 1 detector
    assert len(cache) - before == 12
    new = rows(tmp_path / "grown")
    assert set(new[new["perturbation"] == "jpeg(quality=50)"]["sample_id"]) == set(new["sample_id"])
    pd.testing.assert_frame_equal(new[new["perturbation"] != "jpeg(quality=50)"].reset_index(drop=True), base[1])


@pytest.mark.ray
def test_adding_a_detector_computes_and_loads_only_the_new_one(setup, base, tmp_path):
    tmp, data, ckpt = setup
    two = write_config(tmp, data, ckpt, BASE_GRID, name="two.toml",
                       detectors=({"alias": "spec32", "n_bins": 32}, {"alias": "spec32-C", "n_bins": 32, "C": 0.5}))
    result = run_sweep(two, tmp_path / "two", quiet=True, cache=copy_of(base[0], tmp_path), leaderboard=False)
    assert (result.computed, result.cached) == (36, 36)
    engine = json.loads((tmp_path / "two" / "run.json").read_text())["engine"]
    assert list(engine["actors"]) == ["spec32-C"]  # the cached detector's model was never loaded


def test_cell_keys_follow_content_not_labels_or_placement(setup, tmp_path):
    tmp, data, ckpt = setup
    other = spectrum_checkpoint(tmp_path, n_bins=32, n=8, seed=9)
    grid = ["none", "noise(sigma=2)"]

    def keys(checkpoint, seed=0, **extra):
        config = write_config(tmp, data, checkpoint, grid, name="keys.toml",
                              detectors=({"alias": "x", "n_bins": 32, **extra},))
        return {(c.sample.sample_id, c.chain.spec): c.key for c in make_plan(replace(config, run=replace(
            config.run, seed=seed))).cells}

    same = keys(ckpt)
    assert keys(ckpt, num_gpus=0.5, actors=2) == same   # placement is not content
    assert set(keys(other).values()).isdisjoint(same.values())  # other weights, other cells
    reseeded = keys(ckpt, seed=1)
    assert all((reseeded[k] == v) == (k[1] == "none") for k, v in same.items())  # only noise is seeded


@pytest.mark.ray
def test_metrics_of_unchanged_rows_are_copied_and_changed_rows_recomputed(setup, base, tmp_path, monkeypatch):
    from harness import metrics
    from harness.engine.sweep import write_metrics
    from harness.stats import Bootstrap

    frame = pd.read_parquet(setup[0] / "base" / "scores.parquet")
    cache = ScoreCache(tmp_path / "scores.sqlite")
    first, again, changed_dir = (tmp_path / name for name in ("first", "again", "changed"))
    for folder in (first, again, changed_dir):
        folder.mkdir()
    write_metrics(frame, first, cache)
    calls = []
    real, evaluate = metrics.compute_metrics, metrics.evaluate
    monkeypatch.setattr(metrics, "evaluate", lambda *a, **k: calls.append(1) or evaluate(*a, **k))
    write_metrics(frame.assign(run_id="another run"), again, cache)
    for name in ("metrics.csv", "comparisons.csv"):
        assert calls == [] and (again / name).read_bytes() == (first / name).read_bytes()
    changed = frame.copy()
    changed.loc[0, "score"] = 1.0 - changed.loc[0, "score"]
    write_metrics(changed, changed_dir, cache)
    assert len(calls) == len(frame[["dataset", "perturbation"]].drop_duplicates())  # recomputed, slice by slice
    expected = real(changed, Bootstrap(1000, 0.95, 0))
    pd.testing.assert_frame_equal(pd.read_csv(changed_dir / "metrics.csv").drop(columns="seen"), expected,
                                  check_dtype=False, check_exact=False)


def test_planning_and_rendering_import_no_torch_scikit_learn_or_matplotlib():
    """A fully cached re-run stays fast because planning, the registries, metrics and the
    leaderboard (with its plots cached) import none of the heavy libraries."""
    import subprocess
    import sys

    code = ("import sys; import harness.engine.sweep, harness.engine.plan, harness.leaderboard, harness.metrics; "
            "from harness.plugins import detectors, perturbations, layouts; detectors(); perturbations(); layouts(); "
            "print(sorted(m for m in ('torch', 'torchvision', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
