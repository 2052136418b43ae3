"""The sweep engine at scale, without Ray: cells and keys made on demand, look-ups in
blocks, ``scores.parquet`` written in row groups, chunks cut by a pixel budget."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from harness.config import load_sweep
from harness.engine import sweep as sweep_mod
from harness.engine.execute import chunk_work
from harness.engine.plan import CellGrid, MissingCells, make_plan
from harness.engine.score_cache import ScoreCache, cell_key
from harness.plugins import perturbations
from tests.helpers import write_binary_folders, write_sweep_config

GRID = ["none", "jpeg(quality=[90,50])", "noise(sigma=2)"]


def _config(tmp_path: Path, seed: int = 3):
    root = write_binary_folders(tmp_path / "data", n=4)
    return load_sweep(write_sweep_config(
        tmp_path / "sweep.toml", run={"seed": seed},
        datasets=[{"name": "d", "layout": "binary-folders", "root": str(root)}],
        detectors=[{"name": "spectrum", "n_bins": 16}, {"name": "spectrum", "n_bins": 32, "alias": "s32"}],
        grid=GRID))


def test_cells_are_made_on_demand_with_the_keys_of_cell_key(tmp_path):
    config = _config(tmp_path)
    plan = make_plan(config)
    reg = perturbations()
    assert isinstance(plan.cells, CellGrid)
    assert len(plan.cells) == len(plan.samples) * 4 * 2 == 16 * 8
    cells = list(plan.cells)
    expected = []
    for s in plan.samples:  # the order and keys of the former eager plan
        for c in plan.chains:
            seed = 3 if any(reg[st.name].stochastic for st in c.steps) else None
            for i, d in enumerate(plan.detectors):
                expected.append((cell_key(d.key, s.sample_id, c.spec, c.version(reg), seed), s.sample_id, c.spec, i))
    assert [(c.key, c.sample.sample_id, c.chain.spec, c.detector) for c in cells] == expected
    assert plan.cells[5] == cells[5] and plan.cells[-1] == cells[-1] and plan.cells[3:6] == cells[3:6]
    with pytest.raises(IndexError):
        plan.cells[len(cells)]
    # the stochastic chain's keys follow the seed; the deterministic ones do not
    other = make_plan(replace(config, run=replace(config.run, seed=4)))
    changed = {c.chain.spec for a, c in zip(cells, other.cells) if a.key != c.key}
    assert changed == {"noise(sigma=2.0)"}


def test_missing_cells_come_by_sample_in_size_order_and_chunks_respect_a_pixel_budget(tmp_path):
    plan = make_plan(_config(tmp_path))
    sizes = [(32, 32), (64, 64), (16, 16), (64, 32)] * 4
    samples = tuple(replace(s, width=w, height=h) for s, (w, h) in zip(plan.samples, sizes))
    grid = CellGrid(samples, plan.chains, plan.detectors, plan.seed)
    mask = np.zeros(len(grid), bool)
    mask[::3] = True  # some cells of every sample, of both detectors
    missing = MissingCells(grid, mask)
    assert len(missing) == int(mask.sum()) and missing.detector_indices() == (0, 1)
    assert sorted(c.key for c in missing) == sorted(c.key for c, m in zip(grid, mask) if m)
    pixels = [c.sample.width * c.sample.height for c in missing]
    assert pixels == sorted(pixels)
    # one chain of a 64 x 64 image is 4,096 pixels: a budget of 10,000 holds at most 2 chains of one
    for chunk in chunk_work(missing, 100, pixels_per_chunk=10_000):
        cost = sum(w.width * w.height * len(w.jobs) for w in chunk)
        assert cost <= 10_000 or len(chunk) == 1
    assert sum(len(j) for chunk in chunk_work(missing, 100, 10_000) for w in chunk for _, j in w.jobs) == len(missing)
    assert max(len(c) for c in chunk_work(missing, 3)) == 3
    assert MissingCells(grid, np.zeros(len(grid), bool)).n_samples == 0


def test_missing_mask_looks_up_in_blocks_and_retries_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "LOOKUP_CELLS", 7)
    plan = make_plan(_config(tmp_path))
    cache = ScoreCache(None)
    cells = list(plan.cells)
    cache.put_many([(c.key, 0.5, None) for c in cells[::2]] + [(cells[1].key, None, "decode: bad")])
    mask = sweep_mod.missing_mask(plan, cache, retry_errors=False)
    assert mask.tolist() == [i % 2 == 1 and i != 1 for i in range(len(cells))]
    assert sweep_mod.missing_mask(plan, cache, retry_errors=True)[1]


def test_a_cached_sweep_writes_scores_in_row_groups_equal_to_row_by_row(tmp_path, monkeypatch):
    """No Ray: every cell and threshold is cached. The file is written one block at a time
    and equals the rows built one by one, in plan order."""
    monkeypatch.setattr(sweep_mod, "LOOKUP_CELLS", 16)
    config = _config(tmp_path)
    config = replace(config, metrics=replace(config.metrics, bootstrap=0))
    plan = make_plan(config)
    cache = ScoreCache(tmp_path / "scores.sqlite")
    cells = list(plan.cells)
    cache.put_many((c.key, None if i % 5 == 0 else 0.01 * i, "x" if i % 5 == 0 else None) for i, c in enumerate(cells))
    cache.put_threshold(plan.detectors[0].key, 0.25)
    cache.put_threshold(plan.detectors[1].key, 0.75)
    result = sweep_mod.run_sweep(config, tmp_path / "out", cache=cache, quiet=True, leaderboard=False)
    assert (result.computed, result.cached, result.failed) == (0, len(cells), len(cells[::5]))
    path = tmp_path / "out" / "scores.parquet"
    assert pq.ParquetFile(path).num_row_groups == len(cells) // 16
    frame = pd.read_parquet(path)
    reg = perturbations()
    rows = []
    for i, c in enumerate(cells):
        d, s = plan.detectors[c.detector], c.sample
        rows.append((result.run_id, d.display_name, d.params_hash, d.weights_sha256, s.dataset, s.generator, s.family,
                     s.subset, s.split, s.sample_id, s.path, s.label, c.chain.spec, c.chain.version(reg),
                     None if i % 5 == 0 else 0.01 * i, "x" if i % 5 == 0 else None, 0.25 if c.detector == 0 else 0.75))
    expected = pd.DataFrame(rows, columns=sweep_mod.SCORE_COLUMNS).astype({"score": "float64", "label": "int64"})
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert list(frame.columns) == sweep_mod.SCORE_COLUMNS
    assert frame["score"].dtype == np.float64 and frame["label"].dtype == np.int64
    assert (tmp_path / "out" / "metrics.csv").is_file()
