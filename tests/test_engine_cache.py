"""The content cache: a sweep computes only the cells the cache lacks, and starts no Ray
when nothing is missing."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.config import load_sweep
from harness.engine.cache import ScoreCache
from harness.engine.sweep import run_sweep
from harness.testing import synthetic_training_set
from harness.train.jobs import fit_locally
from tests.conftest import write_binary_folders

COLS = ["detector", "sample_id", "perturbation", "score", "error"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine_cache")
    data = write_binary_folders(tmp / "data", generators=("gana", "ganb"), n=3)
    train = synthetic_training_set(tmp / "train", n=8, seed=2)
    ckpt = fit_locally("spectrum", {"n_bins": 32}, train.samples, tmp / "ckpt")
    return tmp, data, ckpt


def write_config(tmp, data, ckpt, grid: str, detectors=({"label": "spec32", "n_bins": 32},), name="sweep.toml"):
    tables = "".join(
        f'[[detectors]]\nname = "spectrum"\ncheckpoint = "{ckpt}"\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in d.items()) for d in detectors)
    path = tmp / name
    path.write_text(f'[run]\nseed = 0\nbatch_size = 8\n[[datasets]]\nname = "tiny"\nlayout = "binary-folders"\n'
                    f'root = "{data}"\n{tables}[perturbations]\ngrid = {grid}\n')
    return load_sweep(path)


def rows(run_dir) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "scores.parquet")[COLS]
    return frame.sort_values(COLS[:3]).reset_index(drop=True)


def test_rerun_into_another_out_scores_nothing_and_starts_no_ray(setup, ray_session, tmp_path, monkeypatch):
    tmp, data, ckpt = setup
    config = write_config(tmp, data, ckpt, '["none", "jpeg(quality=80)"]', name="rerun.toml")
    cache = ScoreCache(tmp_path / "scores.sqlite")
    first = run_sweep(config, tmp_path / "a", quiet=True, cache=cache, leaderboard=False)

    def no_ray(*args, **kwargs):
        raise AssertionError("a fully cached sweep started Ray")

    monkeypatch.setattr("harness.engine.ray_runtime.ensure_ray", no_ray)
    second = run_sweep(config, tmp_path / "b", quiet=True, cache=cache, leaderboard=False)
    assert first.computed == first.total == 12 * 2
    assert (second.computed, second.cached) == (0, second.total)
    pd.testing.assert_frame_equal(rows(tmp_path / "a"), rows(tmp_path / "b"))
    assert json.loads((tmp_path / "b" / "run.json").read_text())["cells"]["computed"] == 0


def test_adding_a_jpeg_level_computes_only_that_levels_cells(setup, ray_session, tmp_path):
    tmp, data, ckpt = setup
    cache = ScoreCache(tmp_path / "scores.sqlite")
    small = write_config(tmp, data, ckpt, '["none", "jpeg(quality=[90,70])"]', name="small.toml")
    run_sweep(small, tmp_path / "a", quiet=True, cache=cache, leaderboard=False)
    before = len(cache)
    grown = write_config(tmp, data, ckpt, '["none", "jpeg(quality=[90,70,50])"]', name="grown.toml")
    result = run_sweep(grown, tmp_path / "b", quiet=True, cache=cache, leaderboard=False)
    assert (result.computed, result.cached) == (12, 36)  # 12 images x 1 new level x 1 detector
    assert len(cache) - before == 12
    new = rows(tmp_path / "b")
    assert set(new[new["perturbation"] == "jpeg(quality=50)"]["sample_id"]) == set(new["sample_id"])
    old = new[new["perturbation"] != "jpeg(quality=50)"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, rows(tmp_path / "a"))


def test_adding_a_detector_computes_and_loads_only_the_new_one(setup, ray_session, tmp_path):
    tmp, data, ckpt = setup
    cache = ScoreCache(tmp_path / "scores.sqlite")
    one = write_config(tmp, data, ckpt, '["none", "blur(sigma=1)"]', name="one.toml")
    run_sweep(one, tmp_path / "a", quiet=True, cache=cache, leaderboard=False)
    two = write_config(tmp, data, ckpt, '["none", "blur(sigma=1)"]', name="two.toml",
                       detectors=({"label": "spec32", "n_bins": 32}, {"label": "spec32-C", "n_bins": 32, "C": 0.5}))
    result = run_sweep(two, tmp_path / "b", quiet=True, cache=cache, leaderboard=False)
    assert (result.computed, result.cached) == (24, 24)
    engine = json.loads((tmp_path / "b" / "run.json").read_text())["engine"]
    assert list(engine["actors"]) == ["spec32-C"]  # the cached detector's model was never loaded


def test_a_different_checkpoint_is_a_different_detector(setup, ray_session, tmp_path):
    tmp, data, ckpt = setup
    cache = ScoreCache(tmp_path / "scores.sqlite")
    config = write_config(tmp, data, ckpt, '["none"]', name="ckpt-a.toml")
    run_sweep(config, tmp_path / "a", quiet=True, cache=cache, leaderboard=False)
    train = synthetic_training_set(tmp_path / "train", n=8, seed=9)
    other = fit_locally("spectrum", {"n_bins": 32}, train.samples, tmp_path / "ckpt")
    result = run_sweep(write_config(tmp, data, other, '["none"]', name="ckpt-b.toml"), tmp_path / "b", quiet=True,
                       cache=cache, leaderboard=False)
    assert result.computed == 12
