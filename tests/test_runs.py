"""Several runs: compared side by side (paired where they share images) and merged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.leaderboard.runs import compare_runs
from harness.stats import Bootstrap


def _run(folder, detector: str, signal: float, prefix: str = "", n: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for label, gen in ((0, "real"), (1, "g1")):
        for i in range(n):
            rows.append({"run_id": folder.name, "detector": detector, "dataset": "d", "generator": gen, "subset": "",
                         "perturbation": "none", "sample_id": f"{prefix}{gen}{i}", "label": label,
                         "score": rng.normal(signal * label, 1), "error": None, "threshold": 0.5})
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "scores.parquet", index=False)
    return folder


def test_a_better_rerun_of_a_detector_on_the_same_images_is_a_paired_positive_difference(tmp_path):
    a, b = _run(tmp_path / "a", "det", 0.3, seed=1), _run(tmp_path / "b", "det", 1.5, seed=2)
    table = compare_runs([a, b], Bootstrap(300, 0.95, 0))
    row = table[table["generator"] == "g1"].iloc[0]
    assert row["paired"] and row["run_a"] == "a" and row["run_b"] == "b"
    assert row["delta_auc"] == pytest.approx(row["auc_b"] - row["auc_a"])
    assert 0 < row["delta_auc_lo"] < row["delta_auc"] < row["delta_auc_hi"] and row["p_auc"] < 0.01


def test_runs_without_shared_images_are_compared_unpaired(tmp_path):
    a = _run(tmp_path / "a", "det", 1.5, prefix="x", seed=1)
    b = _run(tmp_path / "b", "det", 0.3, prefix="y", seed=2)
    row = compare_runs([a, b], Bootstrap(300, 0.95, 0)).iloc[0]
    assert not row["paired"] and row["delta_auc_hi"] < 0 < row["n_real"]


def test_a_detector_added_later_in_its_own_run_merges_into_one_leaderboard(tmp_path):
    a, b = _run(tmp_path / "a", "first", 1.0, seed=1), _run(tmp_path / "b", "second", 0.2, seed=2)
    assert main(["leaderboard", str(a), str(b), "--out", str(tmp_path / "merged"), "--bootstrap", "100"]) == 0
    metrics = pd.read_csv(tmp_path / "merged" / "metrics.csv")
    assert set(metrics["detector"]) == {"first", "second"} and "auc_lo" in metrics
    comparisons = pd.read_csv(tmp_path / "merged" / "comparisons.csv")
    assert comparisons[["detector_a", "detector_b"]].values.tolist() == [["first", "second"]]
    assert (tmp_path / "merged" / "leaderboard.md").is_file()


def test_merging_needs_an_output_folder(tmp_path, capsys):
    a, b = _run(tmp_path / "a", "first", 1.0), _run(tmp_path / "b", "second", 0.2)
    assert main(["leaderboard", str(a), str(b)]) == 2
    assert "--out" in capsys.readouterr().err


def test_compare_writes_markdown_and_csv(tmp_path, capsys):
    a, b = _run(tmp_path / "a", "det", 0.3, seed=1), _run(tmp_path / "b", "det", 1.5, seed=2)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--bootstrap", "100"]) == 0
    assert "run b - run a" in capsys.readouterr().out
    assert (tmp_path / "cmp.md").is_file() and len(pd.read_csv(tmp_path / "cmp.csv")) == 1
