"""A file that takes too long to read or decode becomes an error row, never a stalled actor:
``[run] decode_timeout_s`` bounds each file in the sweep's pipeline actors."""
from __future__ import annotations

import signal
import time

import pandas as pd
import pytest
from PIL import Image

from harness.api import ConfigError, DecodeError
from harness.config import load_sweep
from harness.data import decode
from harness.engine.plan import make_plan
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from harness.engine.work import prepare
from tests.helpers import noise_image, spectrum_checkpoint, write_sweep_config


def test_time_limit_stops_a_slow_block_and_leaves_a_fast_one_alone():
    start = time.monotonic()
    with pytest.raises(DecodeError, match=r"took longer than 0.2 s"):
        with decode.time_limit(0.2, "slow.jpg"):
            time.sleep(5)
    assert time.monotonic() - start < 2
    with decode.time_limit(5):
        x = sum(range(1000))
    assert x == 499500 and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with decode.time_limit(0):  # 0: no limit
        time.sleep(0.01)


def test_time_limit_restores_a_timer_set_by_the_caller():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with decode.time_limit(0.5):
            time.sleep(0.05)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0.5 < left < 1.0  # the caller's timer runs on, less the time spent inside
        time.sleep(left + 0.2)
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _config(tmp_path, **run):
    root = tmp_path / "data"
    for i, label in enumerate(("0_real", "1_fake")):
        (root / "gen" / label).mkdir(parents=True, exist_ok=True)
        noise_image((96, 64), seed=i).save(root / "gen" / label / f"{i}.png")
    ckpt = spectrum_checkpoint(tmp_path / "ckpt", n_bins=16)
    return load_sweep(write_sweep_config(tmp_path / "sweep.toml", run={"seed": 0, **run},
                                         datasets=[{"name": "d", "layout": "binary-folders", "root": str(root)}],
                                         detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 16}],
                                         grid=["none", "jpeg(quality=80)"]))


def test_a_slow_decode_becomes_an_error_row_for_each_of_its_cells(tmp_path, monkeypatch):
    """Plain loop: the slow file's cells (every chain) are error rows; the other file is prepared."""
    plan = make_plan(_config(tmp_path))
    defs = [(d.name, dict(d.params)) for d in plan.detectors]
    slow = plan.samples[0].path
    real_decode = decode.decode_bytes

    def sometimes_slow(data, apply_orientation=False, path=None):
        if str(path) == str(slow):
            time.sleep(10)
        return real_decode(data, apply_orientation, path)

    monkeypatch.setattr(decode, "decode_bytes", sometimes_slow)
    from harness.engine.execute import chunk_work

    (chunk,) = chunk_work(plan.cells, 32)
    start = time.monotonic()
    (keys, items), errors = prepare(chunk, 0, defs, decode_timeout=0.3)
    assert time.monotonic() - start < 5
    assert len(errors) == 2 and all(e.startswith("decode: took longer than 0.3 s") for _, e in errors)
    assert len(keys) == len(items) == 2 and not set(keys) & {k for k, _ in errors}


def test_the_config_checks_the_limit(tmp_path):
    assert load_sweep(_config_file(tmp_path)).run.decode_timeout_s == 60.0
    for bad in (-1, "nan", "inf"):
        with pytest.raises(ConfigError, match="decode_timeout_s"):
            load_sweep(_config_file(tmp_path, decode_timeout_s=float(bad)))


def _config_file(tmp_path, **run):
    return write_sweep_config(tmp_path / "c.toml", run=run,
                              datasets=[{"name": "d", "layout": "binary-folders", "root": str(tmp_path)}],
                              detectors=[{"name": "spectrum"}], grid=["none"])


@pytest.mark.ray
def test_the_limit_holds_inside_the_sweeps_pipeline_actors(tmp_path):
    """Ray runs an actor's calls on its main thread, where the timer works: with a limit far
    below any decode, every cell is an error row that names it; ``--retry-errors`` with the
    default limit then scores them all."""
    config = _config(tmp_path, decode_timeout_s=1e-6)
    cache = ScoreCache(tmp_path / "scores.sqlite")
    result = run_sweep(config, tmp_path / "run1", quiet=True, cache=cache, leaderboard=False)
    rows = pd.read_parquet(result.out / "scores.parquet")
    assert len(rows) == 4 and rows["score"].isna().all()
    assert rows["error"].str.startswith("decode: took longer than 1e-06 s").all()
    again = run_sweep(_config(tmp_path), tmp_path / "run2", quiet=True, cache=cache, leaderboard=False,
                      retry_errors=True)
    rows = pd.read_parquet(again.out / "scores.parquet")
    assert rows["error"].isna().all() and rows["score"].notna().all()
