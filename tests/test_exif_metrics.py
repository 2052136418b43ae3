"""``ap_real_positive``: AP with the real class positive (the SDAIE authors' one-class convention)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from harness.metrics import evaluate, generator_means
from harness.stats import Bootstrap
from tests.test_metrics_intervals import _scores


def test_ap_real_positive_is_sklearns_ap_of_the_flipped_problem_with_an_interval():
    scores = _scores({"oc": 1.0})
    ev = evaluate(scores, Bootstrap(300, 0.95, 0))
    for _, row in ev.metrics.iterrows():
        part = scores[scores["generator"].isin(["real", row["generator"]])]
        expected = average_precision_score(part["label"] == 0, -part["score"])
        assert row["ap_real_positive"] == pytest.approx(expected)
        assert row["ap_real_positive"] != pytest.approx(row["ap"])  # a different number, not AP again
        assert row["ap_real_positive_lo"] <= row["ap_real_positive"] <= row["ap_real_positive_hi"]
        assert row["ap_real_positive_hi"] - row["ap_real_positive_lo"] > 0.01
    means = generator_means(ev)
    assert np.isfinite(means[["ap_real_positive", "ap_real_positive_lo", "ap_real_positive_hi"]].to_numpy()).all()


def test_ap_real_positive_without_bootstrap_is_a_point_value():
    m = evaluate(_scores({"oc": 0.5})).metrics
    assert "ap_real_positive" in m and "ap_real_positive_lo" not in m
    assert m["ap_real_positive"].between(0, 1).all()
