"""Intervals and paired comparisons of a scores table (harness.metrics with a bootstrap)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.metrics import compare_detectors, evaluate
from harness.stats import Bootstrap


def _scores(detectors: dict[str, float], generators=(("g1", 30), ("g2", 40)), n_real=40, seed=0,
            dataset="zoo") -> pd.DataFrame:
    """Scores of detectors with a given signal on the same images; a shared latent makes
    their scores of one image correlated, as real detectors' are."""
    rng = np.random.default_rng(seed)
    images = [("real", f"r{i}", 0) for i in range(n_real)]
    images += [(g, f"{g}-{i}", 1) for g, n in generators for i in range(n)]
    latent = rng.normal(0, 1, len(images))
    rows = []
    for det, signal in detectors.items():
        noise = rng.normal(0, 0.5, len(images))
        for (gen, sid, label), z, e in zip(images, latent, noise):
            rows.append({"detector": det, "dataset": dataset, "generator": gen, "subset": "", "perturbation": "none",
                         "sample_id": sid, "label": label, "score": z + e + signal * label, "error": None,
                         "threshold": 0.5})
    return pd.DataFrame(rows)


def test_every_row_has_an_interval_around_its_metric():
    ev = evaluate(_scores({"a": 1.0}), Bootstrap(500, 0.95, 0))
    m = ev.metrics
    for name in ("ap", "auc", "bal_acc", "real_acc", "fake_acc", "tpr_at_5fpr"):
        assert (m[f"{name}_lo"] <= m[name] + 1e-9).all() and (m[name] <= m[f"{name}_hi"] + 1e-9).all(), name
        assert (m[f"{name}_hi"] - m[f"{name}_lo"] > 0.01).all(), name
    assert (m["auc_delong_lo"] < m["auc"]).all() and (m["auc"] < m["auc_delong_hi"]).all()
    assert m["ap_chance"].tolist() == pytest.approx([30 / 70, 40 / 80])


def test_reals_shared_by_generator_rows_are_resampled_jointly():
    ev = evaluate(_scores({"a": 1.0}), Bootstrap(200, 0.95, 0))
    g1, g2 = ev.replicates[("a", "zoo", "g1", "none")], ev.replicates[("a", "zoo", "g2", "none")]
    assert np.array_equal(g1["real_acc"], g2["real_acc"])
    assert not np.array_equal(g1["fake_acc"], g2["fake_acc"])


def test_intervals_do_not_change_the_point_metrics_and_zero_replicates_turns_them_off():
    frame = _scores({"a": 1.0, "b": 0.2})
    with_ci, without = evaluate(frame, Bootstrap(100, 0.95, 0)).metrics, evaluate(frame, None).metrics
    assert "auc_lo" not in without and evaluate(frame, Bootstrap(0)).metrics.columns.tolist() == without.columns.tolist()
    pd.testing.assert_frame_equal(with_ci[without.columns], without)


def test_too_few_reals_leave_the_tpr_at_a_low_fpr_blank():
    m = evaluate(_scores({"a": 1.0}, n_real=40), Bootstrap(50, 0.95, 0)).metrics
    assert m["tpr_at_1fpr"].isna().all() and m["tpr_at_1fpr_lo"].isna().all()  # 40 < 100 reals
    assert m["tpr_at_5fpr"].notna().all()  # 40 >= 20 reals
    m = evaluate(_scores({"a": 1.0}, n_real=120), None).metrics
    assert m["tpr_at_1fpr"].notna().all()


def test_a_real_only_dataset_gives_a_false_positive_row():
    frame = _scores({"a": 1.0}, generators=())
    m = evaluate(frame, Bootstrap(200, 0.95, 0)).metrics
    assert m["generator"].tolist() == ["real"] and m["n_real"].tolist() == [40] and m["n_fake"].tolist() == [0]
    expected = float(np.mean(frame["score"] <= 0.5))
    assert m["real_acc"].iloc[0] == pytest.approx(expected)
    assert m["real_acc_lo"].iloc[0] < expected < m["real_acc_hi"].iloc[0]
    assert np.isnan(m["auc"].iloc[0])


def test_failed_cells_are_left_out_of_the_row_and_of_its_resampling():
    frame = _scores({"a": 1.0})
    frame.loc[frame.index[:3], ["score", "error"]] = [np.nan, "decode: truncated"]
    m = evaluate(frame, Bootstrap(100, 0.95, 0)).metrics
    assert m["n_failed"].tolist() == [3, 3] and m["n_real"].tolist() == [37, 37]
    assert m["auc_lo"].notna().all()


def test_a_row_whose_every_cell_failed_has_counts_and_no_metrics(tmp_path):
    from harness.metrics import write_tables

    frame = _scores({"a": 1.0, "b": 1.0})
    frame.loc[frame["detector"] == "b", ["score", "error"]] = [np.nan, "decode: took longer than 1 s"]
    m = evaluate(frame, Bootstrap(100, 0.95, 0)).metrics.set_index(["detector", "generator"])
    assert m.loc["b", "n_failed"].tolist() == [70, 80] and m.loc["b", "n_real"].tolist() == [0, 0]
    assert m.loc["b", ["auc", "auc_lo", "auc_hi", "real_acc_lo", "auc_delong_hi"]].isna().all().all()
    assert m.loc["a", "auc_lo"].notna().all()
    paths = write_tables(frame, tmp_path, Bootstrap(100, 0.95, 0))  # means and comparisons too
    means = pd.read_csv(paths[1]).query("group == 'all'").set_index("detector")
    assert np.isnan(means.loc["b", "auc"]) and means.loc["a", "auc"] > 0.5


def test_comparisons_find_a_real_difference_and_pair_the_images():
    frame = _scores({"strong": 2.0, "weak": 0.3}, generators=(("g1", 200), ("g2", 200)), n_real=300)
    table = compare_detectors(frame, Bootstrap(500, 0.95, 0))
    per_gen = table[table["generator"] != "mean"]
    assert len(per_gen) == 2 and (per_gen["detector_a"] == "strong").all()
    assert (per_gen["delta_auc_lo"] > 0).all() and (per_gen["p_auc_holm"] < 0.01).all()
    assert (per_gen["n_real"] == 300).all() and per_gen["n_fake"].tolist() == [200, 200]
    mean = table[table["generator"] == "mean"].iloc[0]
    assert mean["generators"] == "g1,g2" and mean["p_auc_method"] == "bootstrap" and mean["delta_auc_lo"] > 0
    assert mean["delta_auc"] == pytest.approx(per_gen["delta_auc"].mean())


def test_comparisons_of_equal_detectors_are_not_significant():
    frame = _scores({"a": 0.8, "b": 0.8}, seed=3)
    table = compare_detectors(frame, Bootstrap(500, 0.95, 0))
    assert (table["p_auc_holm"] > 0.05).all() and (table["delta_auc_lo"] < 0).all() and (table["delta_auc_hi"] > 0).all()


def test_means_over_generators_split_seen_from_unseen_with_intervals():
    from harness.metrics import generator_means

    ev = evaluate(_scores({"a": 1.0}, generators=(("g1", 30), ("g2", 40), ("g3", 35))), Bootstrap(200, 0.95, 0))
    means = generator_means(ev, {"a": ["g1"]}).set_index("group")
    assert means.loc["all", "generators"] == "g1,g2,g3" and means.loc["seen", "generators"] == "g1"
    assert means.loc["unseen", "generators"] == "g2,g3"
    rows = ev.metrics.set_index("generator")
    assert means.loc["unseen", "auc"] == pytest.approx(rows.loc[["g2", "g3"], "auc"].mean())
    assert means.loc["unseen", "auc_lo"] < means.loc["unseen", "auc"] < means.loc["unseen", "auc_hi"]
    # a mean over two generators is tighter than either generator's own interval
    width = means.loc["all", "auc_hi"] - means.loc["all", "auc_lo"]
    assert width < (rows["auc_hi"] - rows["auc_lo"]).min()


def test_calibration_of_probability_detectors_with_intervals_and_reliability_bins():
    from sklearn.metrics import brier_score_loss

    from harness.metrics import reliability

    frame = _scores({"prob": 1.0, "other": 1.0})
    frame["score"] = 1 / (1 + np.exp(-frame["score"]))  # a probability
    m = evaluate(frame, Bootstrap(200, 0.95, 0), probabilities={"prob"}).metrics.set_index(["detector", "generator"])
    part = frame[(frame["detector"] == "prob") & frame["generator"].isin(["real", "g1"])]
    assert m.loc[("prob", "g1"), "brier"] == pytest.approx(brier_score_loss(part["label"], part["score"]))
    assert m.loc[("prob", "g1"), "brier_lo"] < m.loc[("prob", "g1"), "brier"] < m.loc[("prob", "g1"), "brier_hi"]
    assert 0 < m.loc[("prob", "g1"), "ece"] < 1 and m.loc[("prob", "g1"), "ece_lo"] <= m.loc[("prob", "g1"), "ece"]
    assert np.isnan(m.loc[("other", "g1"), "brier"]) and np.isnan(m.loc[("other", "g1"), "ece_hi"])
    bins = reliability(frame, {"prob"})
    assert set(bins["detector"]) == {"prob"} and bins["n"].sum() == (frame["detector"] == "prob").sum()
    assert ((bins["mean_score"] >= bins["bin_lo"]) & (bins["mean_score"] <= bins["bin_hi"])).all()


def test_tables_computed_slice_by_slice_equal_the_whole_tables(tmp_path):
    """A sweep's tables are computed one (dataset, perturbation) slice at a time; they equal
    the tables of the whole scores table, Holm adjustment over all comparisons included."""
    from harness.metrics import slices, write_tables

    parts = []
    for k, (dataset, pert) in enumerate([("zoo", "none"), ("zoo", "jpeg(quality=50)"), ("other", "none"),
                                         ("other", "jpeg(quality=50)")]):
        part = _scores({"a": 1.0, "b": 0.5, "c": 0.0}, seed=k, dataset=dataset).assign(perturbation=pert)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    failed = frame["sample_id"].isin(["r0", "g1-3"])  # a file that fails in every perturbation
    frame.loc[failed, ["score", "error"]] = [np.nan, "decode: truncated"]
    frame = frame.sample(frac=1.0, random_state=0, ignore_index=True)  # row order does not matter either
    (tmp_path / "whole").mkdir()
    (tmp_path / "sliced").mkdir()
    boot = Bootstrap(200, 0.95, 0)
    whole = write_tables(frame, tmp_path / "whole", boot, {"a": ["g1"]}, ["b"])
    sliced = write_tables(slices(frame), tmp_path / "sliced", boot, {"a": ["g1"]}, ["b"])
    for w, s in zip(whole, sliced):
        assert w.read_text() == s.read_text(), w.name
    comparisons = pd.read_csv(whole[2])
    assert len(comparisons) > 20 and comparisons["perturbation"].nunique() == 2
