"""Interruption: a sweep killed about half way (SIGKILL, or Ctrl-C) and run again ends with
the rows of an uninterrupted run, no cell missing or duplicated."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.config import load_sweep
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

COLS = ["detector", "sample_id", "perturbation", "score", "error"]
N_IMAGES = 2 * 2 * 60
GRID = ["none", "jpeg(quality=70)", "resize(scale=0.5)"]

# every test here compares with the uninterrupted run on the session's Ray; the children
# that are interrupted start a Ray of their own, in their own process
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine_resume")
    data = write_binary_folders(tmp / "data", generators=("gana", "ganb"), n=60)
    ckpt = spectrum_checkpoint(tmp, n_bins=32, n=8, seed=3)
    # Small chunks (two images each), so that cells are committed often.
    return write_sweep_config(tmp / "sweep.toml", run={"seed": 0, "batch_size": 6},
                              datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
                              detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 32}], grid=GRID)


@pytest.fixture(scope="module")
def uninterrupted(config, ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    run_sweep(load_sweep(config), out, quiet=True, cache=ScoreCache(out / "scores.sqlite"), leaderboard=False)
    return rows(out)


def rows(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "scores.parquet")[COLS]
    return frame.sort_values(COLS[:3]).reset_index(drop=True)


def committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:  # the sweep has not created the table yet
        return 0


def interrupt_half_way(config: Path, cache: Path, out: Path, sig: int) -> tuple[int, int, str]:
    """Run ``exifbench sweep`` in a child process and send ``sig`` once half the cells are in."""
    env = {**os.environ, "EXIFBENCH_CACHE": str(cache)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", str(config), "--out", str(out),
                             "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db, total = cache / "scores.sqlite", N_IMAGES * 3
    deadline = time.monotonic() + 240
    while committed(db) < total // 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    at_signal = committed(db)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    return at_signal, proc.returncode, stderr


# a child process starts its own Ray: about 30 s on a 2-core machine (the must-show runs in CI)
def test_sweep_killed_half_way_resumes_to_the_uninterrupted_rows(config, uninterrupted, tmp_path):
    at_kill, code, _ = interrupt_half_way(config, tmp_path / "cache", tmp_path / "killed", signal.SIGKILL)
    total = N_IMAGES * 3
    assert code == -signal.SIGKILL and 0 < at_kill < total, (at_kill, code)
    kept = committed(tmp_path / "cache" / "scores.sqlite")
    resumed = run_sweep(load_sweep(config), tmp_path / "resumed", quiet=True,
                        cache=ScoreCache(tmp_path / "cache" / "scores.sqlite"), leaderboard=False)
    assert (resumed.cached, resumed.computed) == (kept, total - kept)
    again = rows(tmp_path / "resumed")
    assert not again.duplicated(COLS[:3]).any() and len(again) == total
    pd.testing.assert_frame_equal(again, uninterrupted)


@pytest.mark.slow  # a second child process and Ray start, about 30 s
def test_ctrl_c_stops_cleanly_and_keeps_the_finished_cells(config, uninterrupted, tmp_path):
    at_signal, code, stderr = interrupt_half_way(config, tmp_path / "cache", tmp_path / "stopped", signal.SIGINT)
    assert code == 130 and "interrupted" in stderr, stderr[-2000:]
    kept = committed(tmp_path / "cache" / "scores.sqlite")
    assert at_signal <= kept < N_IMAGES * 3
    resumed = run_sweep(load_sweep(config), tmp_path / "resumed", quiet=True,
                        cache=ScoreCache(tmp_path / "cache" / "scores.sqlite"), leaderboard=False)
    assert resumed.cached == kept
    pd.testing.assert_frame_equal(rows(tmp_path / "resumed"), uninterrupted)
