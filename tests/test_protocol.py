"""Cross-generator protocols: train-on-each and leave-one-out over three tiny generators,
their matrices, heatmaps and summary, a re-run that trains and scores nothing, honest
thresholds, and the config and data errors that stop a protocol before any training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.api import ConfigError
from harness.data.layouts import read_binary_folders
from harness.protocol import load_protocol, run_protocol
from harness.protocol.design import check_disjoint, training_sets
from tests.helpers import write_binary_folders, write_protocol_config

GENERATORS = ("gana", "ganb", "ganc")
#: npr's CPU preset cut to one short epoch: the pipeline is under test, not the detector
NPR = {"name": "npr", "preset": "cpu-small", "load_size": 64, "train_crop": 32, "epochs": 1, "batch_size": 16,
       "val_fraction": 0.0}
SPECTRUM = {"name": "spectrum", "n_bins": 32}


def datasets(train: Path, test: Path) -> list[dict]:
    return [{"name": "train", "role": "train", "layout": "binary-folders", "root": train},
            {"name": "test", "role": "test", "layout": "binary-folders", "root": test}]


def write_protocol(path: Path, kind: str, train: Path, test: Path, detectors: list[dict], **protocol) -> Path:
    return write_protocol_config(path, protocol={"kind": kind, **protocol}, datasets=datasets(train, test),
                                 detectors=detectors, run={"seed": 0}, metrics={"bootstrap": 200})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("protocol_data")
    return (write_binary_folders(tmp / "train", generators=GENERATORS, n=6, seed=0),
            write_binary_folders(tmp / "test", generators=GENERATORS, n=6, seed=50))


@pytest.fixture(scope="module")
def train_on_each(data, tmp_path_factory, ray_session):
    """One protocol run and its re-run on the same cache (the module's own)."""
    tmp = tmp_path_factory.mktemp("protocol")
    config = load_protocol(write_protocol(tmp / "protocol.toml", "train-on-each", *data, [SPECTRUM, NPR],
                                          metrics=["auc", "ap", "bal_acc"]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXIFBENCH_CACHE", str(tmp / "cache"))
        first = run_protocol(config, tmp / "first", quiet=True)
        again = run_protocol(config, tmp / "again", quiet=True)
    return tmp, first, again


@pytest.mark.ray
def test_train_on_each_trains_every_detector_on_every_generator(train_on_each):
    tmp, first, _ = train_on_each
    jobs = json.loads((tmp / "first" / "protocol.json").read_text())["jobs"]
    assert first.jobs == first.trained == 6
    assert {(j["detector"], j["train"]) for j in jobs} == {(d, g) for d in ("spectrum", "npr") for g in GENERATORS}
    assert all(j["generators"] == [j["train"]] and j["n_real"] == 6 and j["n_fake"] == 6 for j in jobs)
    assert all(j["trained"] and j["device"] == "cpu" for j in jobs)


@pytest.mark.ray
def test_matrix_has_a_cell_per_model_test_generator_and_metric_with_intervals(train_on_each):
    tmp, _, _ = train_on_each
    matrix = pd.read_csv(tmp / "first" / "matrix.csv")
    assert len(matrix) == 2 * 3 * 3 * 3
    assert set(matrix["metric"]) == {"auc", "ap", "bal_acc"}
    assert matrix["in_distribution"].tolist() == (matrix["train"] == matrix["test_generator"]).tolist()
    assert matrix["value"].notna().all() and (matrix["lo"] <= matrix["value"] + 1e-12).all()
    assert (matrix["value"] <= matrix["hi"] + 1e-12).all()
    assert set(zip(matrix["n_real"], matrix["n_fake"])) == {(6, 6)}


@pytest.mark.ray
def test_outputs_are_written_with_a_heatmap_per_metric(train_on_each):
    tmp, _, _ = train_on_each
    for name in ("matrix.csv", "summary.csv", "matrix.md", "matrix.html", "protocol.json", "sweep/scores.parquet",
                 "heatmap-auc.png", "heatmap-ap.png", "heatmap-bal_acc.png"):
        assert (tmp / "first" / name).is_file(), name
    assert (tmp / "first" / "heatmap-auc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp / "first" / "matrix.md").read_text()
    assert "## auc: spectrum" in md and "## bal_acc: npr" in md and "In-distribution versus cross-generator" in md
    assert "data:image/png;base64," in (tmp / "first" / "matrix.html").read_text()


@pytest.mark.ray
def test_summary_means_the_diagonal_and_the_off_diagonal_cells(train_on_each):
    tmp, _, _ = train_on_each
    matrix = pd.read_csv(tmp / "first" / "matrix.csv")
    summary = pd.read_csv(tmp / "first" / "summary.csv")
    assert len(summary) == 2 * 3
    for row in summary.to_dict("records"):
        cells = matrix[(matrix["detector"] == row["detector"]) & (matrix["metric"] == row["metric"])]
        diagonal = cells[cells["train"] == cells["test_generator"]]["value"]
        off = cells[cells["train"] != cells["test_generator"]]["value"]
        assert (row["n_in_distribution"], row["n_cross_generator"]) == (3, 6)
        assert row["in_distribution"] == pytest.approx(diagonal.mean())
        assert row["cross_generator"] == pytest.approx(off.mean())
        assert row["gap"] == pytest.approx(diagonal.mean() - off.mean())
        assert row["in_distribution_lo"] <= row["in_distribution"] <= row["in_distribution_hi"]
        assert row["gap_lo"] <= row["gap_hi"]


@pytest.mark.ray
def test_a_rerun_trains_nothing_and_scores_nothing(train_on_each):
    tmp, first, again = train_on_each
    assert (again.trained, again.scored) == (0, 0) and again.jobs == 6 and again.cells == first.cells > 0
    record = json.loads((tmp / "again" / "protocol.json").read_text())
    assert not any(j["trained"] for j in record["jobs"]) and record["scoring"]["cached"] == first.cells
    pd.testing.assert_frame_equal(pd.read_csv(tmp / "again" / "matrix.csv"), pd.read_csv(tmp / "first" / "matrix.csv"))


@pytest.mark.ray
def test_threshold_metrics_use_the_detectors_own_threshold(train_on_each):
    """bal_acc recomputed from the scores at the threshold recorded with them (the
    detector's, 0.5 for these probability detectors), not one tuned on the test images."""
    tmp, _, _ = train_on_each
    scores = pd.read_parquet(tmp / "first" / "sweep" / "scores.parquet")
    matrix = pd.read_csv(tmp / "first" / "matrix.csv")
    assert set(scores["threshold"]) == {0.5}
    for row in matrix[matrix["metric"] == "bal_acc"].to_dict("records"):
        part = scores[scores["detector"] == f"{row['detector']}@{row['train']}"]
        real = part[(part["label"] == 0) & (part["subset"] == row["test_generator"])]["score"].to_numpy()
        fake = part[part["generator"] == row["test_generator"]]["score"].to_numpy()
        assert row["value"] == pytest.approx((np.mean(real <= 0.5) + np.mean(fake > 0.5)) / 2)


@pytest.mark.ray
def test_leave_one_out_trains_on_the_other_generators_and_tests_the_one_left_out(data, tmp_path):
    config = load_protocol(write_protocol(tmp_path / "loo.toml", "leave-one-out", *data, [SPECTRUM],
                                          metrics=["auc"]))
    result = run_protocol(config, tmp_path / "run", quiet=True)
    jobs = json.loads((tmp_path / "run" / "protocol.json").read_text())["jobs"]
    assert result.trained == 3
    assert {j["train"]: tuple(j["generators"]) for j in jobs} == {
        "all-but-gana": ("ganb", "ganc"), "all-but-ganb": ("gana", "ganc"), "all-but-ganc": ("gana", "ganb")}
    assert all(j["n_real"] == 12 and j["n_fake"] == 12 for j in jobs)
    matrix = pd.read_csv(tmp_path / "run" / "matrix.csv")
    held_out = matrix["train"] == "all-but-" + matrix["test_generator"]
    assert (~matrix["in_distribution"]).tolist() == held_out.tolist()
    summary = pd.read_csv(tmp_path / "run" / "summary.csv").iloc[0]
    assert (summary["n_in_distribution"], summary["n_cross_generator"]) == (6, 3)
    assert summary["cross_generator"] == pytest.approx(matrix[held_out]["value"].mean())


# --- what stops a protocol before any training -------------------------------------------

def test_a_generators_reals_are_its_subset_of_the_training_reals(data):
    train = read_binary_folders(data[0], dataset="train")
    sets = training_sets("train-on-each", train)
    assert [s.name for s in sets] == list(GENERATORS)
    for s in sets:
        assert {x.subset for x in s.samples} == {s.name}
        assert {x.generator for x in s.samples if x.label == 1} == {s.name}


def test_test_images_that_were_trained_on_are_refused(data):
    train = read_binary_folders(data[0], dataset="train")
    with pytest.raises(ConfigError, match="also in the training data"):
        check_disjoint(train, train[:3])


def test_leave_one_out_refuses_a_generator_the_test_data_lacks(data):
    train = read_binary_folders(data[0], dataset="train")
    with pytest.raises(ConfigError, match="no generated images of \\['ganc'\\]"):
        training_sets("leave-one-out", train, test_generators=["gana", "ganb"])


def test_unknown_training_generators_are_refused(data):
    train = read_binary_folders(data[0], dataset="train")
    with pytest.raises(ConfigError, match="ganz"):
        training_sets("train-on-each", train, wanted=["gana", "ganz"])


@pytest.fixture
def untrainable():
    """A registered detector that cannot be trained."""
    from harness import plugins
    from harness.api import DetectorSpec
    from harness.hookspecs import hookimpl

    class Fixed:
        @hookimpl
        def exifbench_detectors(self):
            return [DetectorSpec("fixed", "test", "not trainable", "", "detectors.spectrum.model:SpectrumDetector")]

    plugins.plugin_manager().register(Fixed(), name="fixed")
    plugins.detectors.cache_clear()
    yield "fixed"
    plugins.plugin_manager().unregister(name="fixed")
    plugins.detectors.cache_clear()


@pytest.mark.parametrize("change, message", [
    (lambda c: c["protocol"].update(kind="leave-two-out"), "kind = 'leave-two-out'"),
    (lambda c: c["datasets"][1].pop("role"), "role = None"),
    (lambda c: c["datasets"][1].update(role="train"), "no \\[\\[datasets\\]\\] table has role = \"test\""),
    (lambda c: c["detectors"].append({"name": "fixed"}), "fixed is not trainable"),
    (lambda c: c["detectors"][0].update(checkpoint="ckpt"), "trains its own checkpoints"),
    (lambda c: c["protocol"].update(metrics=["eer"]), "metrics \\['eer'\\] unknown"),
])
def test_bad_protocol_configs_are_refused_with_the_fix(tmp_path, data, untrainable, change, message):
    config = {"protocol": {"kind": "train-on-each"}, "datasets": datasets(*data), "detectors": [dict(SPECTRUM)]}
    change(config)
    with pytest.raises(ConfigError, match=message):
        load_protocol(write_protocol_config(tmp_path / "p.toml", **config))


def test_the_command_reports_a_bad_config_with_exit_code_2(tmp_path, data, capsys):
    from harness.cli import main

    train_only = datasets(*data)[:1]
    path = write_protocol_config(tmp_path / "p.toml", protocol={"kind": "leave-one-out"}, datasets=train_only,
                                 detectors=[SPECTRUM])
    assert main(["protocol", str(path), "--out", str(tmp_path / "out")]) == 2
    assert 'no [[datasets]] table has role = "test"' in capsys.readouterr().err


def test_a_grid_gives_a_matrix_and_a_heatmap_per_perturbation(tmp_path):
    """From a scores table alone (no training): two models, two generators, two perturbations."""
    from harness.protocol.matrix import Model, matrix_table, summary_table
    from harness.protocol.render import write_outputs
    from harness.stats import Bootstrap

    rng = np.random.default_rng(0)
    rows = []
    for alias in ("d@a", "d@b"):
        for pert in ("none", "jpeg(quality=50)"):
            for gen in ("a", "b"):
                for i in range(8):
                    for label in (0, 1):
                        rows.append({"detector": alias, "dataset": "t", "generator": gen if label else "real",
                                     "subset": gen, "sample_id": f"{gen}{label}{i}", "label": label,
                                     "perturbation": pert, "score": rng.normal(label), "error": None,
                                     "threshold": 0.5})
    models = [Model("d@a", "d", "a", ("a",)), Model("d@b", "d", "b", ("b",))]
    matrix, replicates = matrix_table(pd.DataFrame(rows), models, ["auc"], Bootstrap(50, 0.95, 0))
    summary = summary_table(matrix, replicates, 0.95)
    files = write_outputs(matrix, summary, ["a", "b"], tmp_path, kind="train-on-each", bootstrap=50, ci=0.95)
    assert len(matrix) == 2 * 2 * 2 and len(summary) == 2
    assert {p.name for p in files} >= {"heatmap-auc-none.png", "heatmap-auc-jpeg_quality=50.png"}
    md = (tmp_path / "matrix.md").read_text()
    assert "## auc: d at none" in md and "## auc: d at jpeg(quality=50)" in md
