from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from harness.metrics import binary_metrics, compute_metrics, equal_error_rate, tpr_at_fpr


def test_ap_and_auc_are_scikit_learns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    m = binary_metrics(y, s, threshold=0.5)
    assert m["ap"] == pytest.approx(average_precision_score(y, s))
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))


def test_accuracies_use_the_detectors_threshold_strictly_above():
    m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.5, 0.5, 0.9]), threshold=0.5)
    assert (m["real_acc"], m["fake_acc"], m["acc"], m["bal_acc"]) == (1.0, 0.5, 0.75, 0.75)


def test_eer_of_a_perfect_and_of_an_inverted_detector():
    assert binary_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3]), 1.5)["eer"] == 0.0
    assert binary_metrics(np.array([0, 0, 1, 1]), np.array([3, 2, 1, 0]), 1.5)["eer"] == 1.0


def test_eer_interpolates_between_roc_points():
    fpr, tpr = np.array([0.0, 0.0, 0.5, 1.0]), np.array([0.0, 0.5, 0.75, 1.0])
    assert equal_error_rate(fpr, tpr) == pytest.approx(1 / 3)


def test_tpr_at_fpr_takes_the_best_point_within_the_budget():
    assert tpr_at_fpr(np.array([0, 0.01, 0.2]), np.array([0.3, 0.6, 0.9]), 0.05) == 0.6


def test_metrics_are_nan_when_a_class_is_missing():
    m = binary_metrics(np.array([1, 1]), np.array([0.9, 0.8]), 0.5)
    assert np.isnan(m["ap"]) and m["fake_acc"] == 1.0


def _frame(rows):
    cols = ["detector", "dataset", "generator", "subset", "perturbation", "label", "score", "error", "threshold"]
    return pd.DataFrame(rows, columns=cols)


def test_fakes_are_compared_with_the_reals_of_their_own_subset():
    rows = [("d", "x", "real", "a", "none", 0, 0.1, None, 0.5), ("d", "x", "a", "a", "none", 1, 0.9, None, 0.5),
            ("d", "x", "real", "b", "none", 0, 0.95, None, 0.5), ("d", "x", "b", "b", "none", 1, 0.2, None, 0.5)]
    m = compute_metrics(_frame(rows)).set_index("generator")
    assert m.loc["a", "auc"] == 1.0 and m.loc["b", "auc"] == 0.0
    assert m.loc["a", "n_real"] == 1


def test_failed_cells_are_excluded_and_counted():
    rows = [("d", "x", "real", "", "none", 0, 0.1, None, 0.5), ("d", "x", "g", "", "none", 1, 0.9, None, 0.5),
            ("d", "x", "g", "", "none", 1, None, "decode: empty file", 0.5)]
    m = compute_metrics(_frame(rows)).iloc[0]
    assert (m["n_fake"], m["n_failed"]) == (1, 1)


def _rows(generator: str, reals: list[float], fakes: list[float], threshold: float = 0.5) -> list[tuple]:
    return ([("d", "x", "real", generator, "none", 0, s, None, threshold) for s in reals]
            + [("d", "x", generator, generator, "none", 1, s, None, threshold) for s in fakes])


def test_hand_made_score_tables_give_their_known_metrics():
    """Separated scores: AUC and AP 1; reversed: AUC 0; all tied: AUC 0.5 and AP the share of
    fakes; accuracies counted by hand at the threshold 0.5 (equal to it counts as real)."""
    rows = (_rows("separated", [0.1, 0.2, 0.3], [0.6, 0.7, 0.8, 0.9])
            + _rows("reversed", [0.7, 0.8, 0.9], [0.1, 0.2, 0.5, 0.6])
            + _rows("tied", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]))
    m = compute_metrics(_frame(rows)).set_index("generator")
    assert (m.loc["separated", "auc"], m.loc["separated", "ap"], m.loc["separated", "eer"]) == (1.0, 1.0, 0.0)
    assert (m.loc["reversed", "auc"], m.loc["tied", "auc"]) == (0.0, 0.5)
    assert m.loc["tied", "ap"] == pytest.approx(4 / 7)
    assert m.loc["separated", ["real_acc", "fake_acc", "acc", "bal_acc"]].tolist() == [1.0, 1.0, 1.0, 1.0]
    # reversed: no real below 0.5; one fake (0.6) above it
    assert m.loc["reversed", ["real_acc", "fake_acc"]].tolist() == [0.0, 0.25]
    assert m.loc["reversed", "acc"] == pytest.approx(1 / 7) and m.loc["reversed", "bal_acc"] == 0.125
    # tied at the threshold: every image is called real
    assert m.loc["tied", ["real_acc", "fake_acc"]].tolist() == [1.0, 0.0]
    assert m.loc["tied", "acc"] == pytest.approx(3 / 7) and m.loc["tied", "bal_acc"] == 0.5
    assert m.loc["separated", "oracle_acc_test_tuned"] == 1.0 and m.loc["tied", "oracle_acc_test_tuned"] == 4 / 7
    assert m[["n_real", "n_fake", "n_failed"]].values.tolist() == [[3, 4, 0]] * 3
