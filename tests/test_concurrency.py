"""Several ``exifbench sweep`` processes sharing one cache folder (``EXIFBENCH_CACHE``).

The processes are real subprocesses started at the same moment on overlapping configs (the
same detector, dataset and some perturbations in common), so they look up, compute and commit
the same cells at once. Each must finish, give the rows a single run gives, and leave the
cache consistent: every cell of the union of their plans stored once, no other row, and the
SQLite file passing its integrity check. The derived files (``metrics.csv`` and the
leaderboard's plots, cached by content) are written by both at once too.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.config import load_sweep
from harness.engine.plan import make_plan
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

COLS = ["detector", "dataset", "sample_id", "perturbation", "path", "score", "error", "threshold"]
GRIDS = {"a": ["none", "jpeg(quality=70)"], "b": ["jpeg(quality=70)", "resize(scale=0.5)"],
         "c": ["none", "jpeg(quality=70)", "resize(scale=0.5)"]}

pytestmark = pytest.mark.ray  # the single runs that give the expected rows use the session's Ray


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("concurrency")
    data = write_binary_folders(tmp / "data", n=8)
    ckpt = spectrum_checkpoint(tmp, n_bins=16, n=8, seed=1)
    return {name: write_sweep_config(tmp / f"{name}.toml", run={"seed": 0, "batch_size": 4, "cpu_actors": 1},
                                     datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
                                     detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 16}], grid=grid)
            for name, grid in GRIDS.items()}


@pytest.fixture(scope="module")
def single(configs, ray_session, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Each config run alone, on a cache of its own."""
    out = {}
    for name, config in configs.items():
        folder = tmp_path_factory.mktemp(f"single-{name}")
        run_sweep(load_sweep(config), folder, quiet=True, cache=ScoreCache(folder / "scores.sqlite"),
                  leaderboard=False)
        out[name] = rows(folder)
    return out


def rows(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "scores.parquet")[COLS]
    return frame.sort_values(COLS[:4]).reset_index(drop=True)


def start_sweeps(configs: dict[str, Path], names: list[str], cache: Path, tmp: Path,
                 address: str | None) -> dict[str, subprocess.Popen]:
    env = {**os.environ, "EXIFBENCH_CACHE": str(cache)}
    env.pop("RAY_ADDRESS", None)
    extra = ["--address", address] if address else []
    return {name: subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", str(configs[name]), "--out",
                                    str(tmp / f"run-{name}"), "--quiet", *extra], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in names}


def finish(procs: dict[str, subprocess.Popen], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        try:
            _, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            raise
        assert proc.returncode == 0, f"sweep {name} failed:\n{stderr[-3000:]}"


def check_cache(cache: Path, configs: dict[str, Path], names: list[str]) -> None:
    """The cache holds exactly the union of the plans' cells, each once, with a score."""
    expected = {c.key for name in names for c in make_plan(load_sweep(configs[name])).cells}
    with sqlite3.connect(cache / "scores.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = con.execute("SELECT key, score, error FROM scores").fetchall()
    keys = [k for k, _, _ in stored]
    assert len(keys) == len(set(keys)) == len(expected) and set(keys) == expected
    assert all(score is not None and error is None for _, score, error in stored)
    metrics = list((cache / "derived" / "metrics").iterdir())
    assert metrics and not [m.name for m in metrics if m.name.startswith(".")], metrics  # no staging left


def check_runs(tmp: Path, names: list[str], single: dict[str, pd.DataFrame]) -> None:
    for name in names:
        pd.testing.assert_frame_equal(rows(tmp / f"run-{name}"), single[name], obj=f"sweep {name}", check_dtype=False)
        assert (tmp / f"run-{name}" / "leaderboard.md").is_file()


def test_sweeps_joining_one_ray_share_one_cache(configs, single, ray_session, tmp_path):
    """Three processes at once, joining the session's Ray (one pipeline actor each)."""
    names = ["a", "b", "c"]
    address = ray_session.get_runtime_context().gcs_address
    finish(start_sweeps(configs, names, tmp_path / "cache", tmp_path, address))
    check_runs(tmp_path, names, single)
    check_cache(tmp_path / "cache", configs, names)


@pytest.mark.slow  # two Rays starting at once on 2 cores: a minute or more (and their start can time out
def test_sweeps_each_with_its_own_ray_share_one_cache(configs, single, tmp_path):  # on an overloaded machine)
    """Two processes at once, each starting a local Ray of its own, as two users would."""
    names = ["a", "c"]
    finish(start_sweeps(configs, names, tmp_path / "cache", tmp_path, None))
    check_runs(tmp_path, names, single)
    check_cache(tmp_path / "cache", configs, names)


# --- exifbench score -------------------------------------------------------------------------

SCORE_COLS = ["path", "sha256", "detector", "perturbation", "score", "threshold", "decision", "error"]


def score_args(configs: dict[str, Path], paths: list[Path], out: Path) -> list[str]:
    """``exifbench score`` with the detector and perturbations of config ``c``."""
    ckpt = load_sweep(configs["c"]).detectors[0].param_dict["checkpoint"]
    return ["score", *map(str, paths), "--detector", "spectrum", "--param", f"checkpoint={ckpt}",
            "--param", "n_bins=16", "--perturb", "jpeg(quality=70)", "--perturb", "resize(scale=0.5)",
            "--out", str(out), "--quiet"]


def score_rows(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)[SCORE_COLS]
    return frame.sort_values(["path", "detector", "perturbation"]).reset_index(drop=True)


def test_scores_of_overlapping_folders_share_one_cache(configs, single, ray_session, tmp_path):
    """Two ``exifbench score`` processes at once (one folder, and the folder above it): each
    gives the scores the sweep of the same detector gave those files alone."""
    data = Path(load_sweep(configs["c"]).datasets[0].root)
    inputs = {"one": [data / "gana"], "all": [data]}
    env = {**os.environ, "EXIFBENCH_CACHE": str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    address = ["--address", ray_session.get_runtime_context().gcs_address]
    procs = {name: subprocess.Popen([sys.executable, "-m", "harness.cli",
                                     *score_args(configs, paths, tmp_path / f"run-{name}.csv"), *address],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, paths in inputs.items()}
    finish(procs)
    swept = single["c"].set_index(["path", "perturbation"])
    for name, paths in inputs.items():
        got = score_rows(tmp_path / f"run-{name}.csv")
        files = sorted({str(p) for folder in paths for p in folder.rglob("*.png")})
        assert sorted(got["path"].unique()) == files and got["error"].isna().all()
        assert set(got["perturbation"]) == {"jpeg(quality=70)", "resize(scale=0.5)"}
        want = swept.loc[list(zip(got["path"], got["perturbation"])), "score"].to_numpy()
        assert (got["score"].to_numpy() == want).all(), f"score {name}"
    every = score_rows(tmp_path / "run-all.csv")
    with sqlite3.connect(tmp_path / "cache" / "scores.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in con.execute("SELECT key FROM scores")]
    assert len(keys) == len(set(keys)) == every[["sha256", "detector", "perturbation"]].drop_duplicates().shape[0]
