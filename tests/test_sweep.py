"""Integration: a sweep on a tiny generated dataset, through Ray, end to end."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from harness.config import load_sweep
from harness.data.layouts import read_binary_folders
from harness.engine.score_cache import ScoreCache
from harness.engine.sweep import run_sweep
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

GRID = ["none", "jpeg(quality=[90,50])", "blur(sigma=1)"]

pytestmark = pytest.mark.ray  # one sweep on the session's Ray serves every test


@pytest.fixture(scope="module")
def sweep_setup(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    data = write_binary_folders(tmp_path / "data", generators=("gana", "ganb"), n=4)
    (data / "gana" / "1_fake" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (data / "ganb" / "0_real" / "empty.jpg").write_bytes(b"")
    ckpt = spectrum_checkpoint(tmp_path, n_bins=64, n=12, seed=5)
    config = write_sweep_config(tmp_path / "sweep.toml", run={"seed": 0},
                                datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
                                detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 64}], grid=GRID)
    return load_sweep(config), tmp_path


@pytest.fixture(scope="module")
def swept(sweep_setup, ray_session):
    """One sweep, computed once for the module; tests read its outputs."""
    config, tmp = sweep_setup
    cache = ScoreCache(tmp / "scores.sqlite")
    result = run_sweep(config, tmp / "run", quiet=True, cache=cache)
    return config, tmp, cache, result


def test_sweep_writes_one_row_per_cell_with_errors_for_bad_files(swept):
    config, tmp, _, result = swept
    scores = pd.read_parquet(tmp / "run" / "scores.parquet")
    n_samples = len(read_binary_folders(config.datasets[0].root))
    assert len(scores) == n_samples * 4 == result.total
    bad = scores[scores["path"].str.endswith(("broken.png", "empty.jpg"))]
    assert len(bad) == 8 and bad["error"].str.startswith("decode:").all()
    assert scores[~scores.index.isin(bad.index)]["score"].notna().all()
    for name in ("metrics.csv", "run.json", "leaderboard.md", "leaderboard.csv", "leaderboard.html", "heatmap.png",
                 "robustness_jpeg.png", "robustness_blur.png"):
        assert (tmp / "run" / name).is_file(), name


def test_metrics_csv_equals_scikit_learn_recomputed_from_scores_parquet(swept):
    config, tmp, _, _ = swept
    scores = pd.read_parquet(tmp / "run" / "scores.parquet")
    metrics = pd.read_csv(tmp / "run" / "metrics.csv")
    assert len(metrics) == 2 * 4
    for row in metrics.itertuples():
        part = scores[(scores["perturbation"] == row.perturbation) & (scores["subset"] == row.generator)
                      & scores["error"].isna()]
        assert row.ap == pytest.approx(average_precision_score(part["label"], part["score"]), abs=1e-12)
        assert row.auc == pytest.approx(roc_auc_score(part["label"], part["score"]), abs=1e-12)


def test_rerun_is_served_from_the_cache_with_identical_rows(swept):
    config, tmp, cache, first = swept
    second = run_sweep(config, tmp / "b", quiet=True, cache=cache, leaderboard=False)
    assert first.computed == first.total and second.computed == 0 and second.cached == second.total
    cols = ["sample_id", "perturbation", "score", "error"]
    a = pd.read_parquet(tmp / "run" / "scores.parquet")[cols]
    b = pd.read_parquet(tmp / "b" / "scores.parquet")[cols]
    pd.testing.assert_frame_equal(a, b)


def test_run_json_records_provenance(swept):
    config, tmp, _, _ = swept
    record = json.loads((tmp / "run" / "run.json").read_text())
    assert record["seed"] == 0 and record["versions"]["torch"]
    assert record["detectors"][0]["weights_sha256"] and record["datasets"][0]["n_samples"] > 0
    assert [p["spec"] for p in record["perturbations"]] == ["none", "jpeg(quality=90)", "jpeg(quality=50)",
                                                            "blur(sigma=1.0)"]


def test_metrics_csv_counts_and_accuracies_equal_hand_counts_from_scores_parquet(swept):
    """Each generator's fakes against the reals of its own folder, counted by hand at the
    detector's threshold ("score > threshold" is generated); failed cells only counted."""
    config, tmp, _, _ = swept
    scores = pd.read_parquet(tmp / "run" / "scores.parquet")
    metrics = pd.read_csv(tmp / "run" / "metrics.csv")
    assert sorted(zip(metrics["generator"], metrics["perturbation"])) == sorted(
        (g, p) for g in ("gana", "ganb") for p in ("none", "jpeg(quality=90)", "jpeg(quality=50)", "blur(sigma=1.0)"))
    for row in metrics.itertuples():
        part = scores[(scores["perturbation"] == row.perturbation) & (scores["subset"] == row.generator)]
        ok = part[part["error"].isna()]
        threshold = float(part["threshold"].iloc[0])
        real, fake = ok[ok["label"] == 0], ok[ok["label"] == 1]
        real_right, fake_right = int((real["score"] <= threshold).sum()), int((fake["score"] > threshold).sum())
        # four good images of each class per generator, and one broken file (broken.png, empty.jpg)
        assert (row.n_real, row.n_fake, row.n_failed) == (len(real), len(fake), len(part) - len(ok)) == (4, 4, 1)
        assert row.threshold == threshold
        assert row.real_acc == pytest.approx(real_right / len(real), abs=1e-12)
        assert row.fake_acc == pytest.approx(fake_right / len(fake), abs=1e-12)
        assert row.acc == pytest.approx((real_right + fake_right) / len(ok), abs=1e-12)
        assert row.bal_acc == pytest.approx((real_right / len(real) + fake_right / len(fake)) / 2, abs=1e-12)


def test_a_detector_scored_on_part_of_the_grid(tmp_path, ray_session):
    """``[[detectors]] perturbations``: a control scored on the clean images only. Its cells
    are those chains' alone, the other detector's cells and keys are as in a full sweep, and
    the metrics, run.json and leaderboard name what each row was scored on."""
    from harness.api import ConfigError
    from harness.engine.plan import make_plan

    data = write_binary_folders(tmp_path / "data", generators=("gana",), n=4)
    ckpt = spectrum_checkpoint(tmp_path / "a", n_bins=32, n=8, seed=1)
    other = spectrum_checkpoint(tmp_path / "b", n_bins=16, n=8, seed=2)
    dets = [{"name": "spectrum", "checkpoint": ckpt, "n_bins": 32},
            {"name": "spectrum", "alias": "clean only", "checkpoint": other, "n_bins": 16, "control": "fewer bins",
             "perturbations": ["none", "jpeg(quality=50)"]}]

    def config(detectors, grid=GRID):
        return load_sweep(write_sweep_config(tmp_path / "s.toml", run={"seed": 0}, grid=grid, detectors=detectors,
                                             datasets=[{"name": "d", "layout": "binary-folders", "root": data}]))

    plan = make_plan(config(dets))
    full = make_plan(config(dets[:1]))
    n = len(plan.samples)
    assert len(plan.cells) == n * (len(GRID) + 1 + 2) and plan.detectors[1].chains == ("none", "jpeg(quality=50)")
    assert {k for i in range(n) for k in full.cells.keys_of(i)} < {k for i in range(n) for k in plan.cells.keys_of(i)}
    result = run_sweep(config(dets), tmp_path / "run", quiet=True, cache=ScoreCache(tmp_path / "c.sqlite"))
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert len(scores) == result.total == len(plan.cells) and scores["score"].notna().all()
    got = scores.groupby("detector")["perturbation"].unique().map(sorted).to_dict()
    assert got == {"spectrum": sorted(["none", "jpeg(quality=90)", "jpeg(quality=50)", "blur(sigma=1.0)"]),
                   "clean only": ["jpeg(quality=50)", "none"]}
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert set(metrics.loc[metrics["detector"] == "clean only", "perturbation"]) == {"none", "jpeg(quality=50)"}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["detectors"][1]["perturbations"] == ["none", "jpeg(quality=50)"]
    assert "clean only" in (tmp_path / "run" / "leaderboard.md").read_text()
    with pytest.raises(ConfigError, match=r"perturbations \['resize\(scale=0.5\)'\] are not in the sweep's grid"):
        make_plan(config([{**dets[1], "perturbations": ["resize(scale=0.5)"]}]))
    with pytest.raises(ConfigError, match="must be a list of spec strings"):
        config([{**dets[1], "perturbations": "none"}])
