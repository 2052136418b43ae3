"""Uncertainty of metrics: the bootstrap agrees with scikit-learn, covers what it should,
and paired comparisons find planted differences without inventing them."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from harness.metrics import binary_metrics
from harness.stats import (Bootstrap, bootstrap_p_value, delong, delong_paired, holm, percentile_interval,
                           replicate_metrics)


def _scores(n_real, n_fake, shift, seed, ties=False):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(0, 1, n_real), rng.normal(shift, 1, n_fake)
    if ties:
        real, fake = np.round(real, 1), np.round(fake, 1)
    return real, fake


@pytest.mark.parametrize("ties", [False, True])
def test_unit_weights_give_exactly_the_point_metrics(ties):
    real, fake = _scores(57, 43, 0.8, seed=1, ties=ties)
    reps = replicate_metrics(real, fake, np.ones((1, 57)), np.ones((1, 43)), threshold=0.3)
    labels = np.r_[np.zeros(57), np.ones(43)]
    expected = binary_metrics(labels, np.r_[real, fake], 0.3)
    assert reps["auc"][0] == pytest.approx(roc_auc_score(labels, np.r_[real, fake]), abs=1e-12)
    assert reps["ap"][0] == pytest.approx(average_precision_score(labels, np.r_[real, fake]), abs=1e-12)
    for name in ("acc", "real_acc", "fake_acc", "bal_acc", "tpr_at_1fpr", "tpr_at_5fpr"):
        assert reps[name][0] == pytest.approx(expected[name], abs=1e-12), name


def test_integer_weights_equal_repeating_the_images():
    real, fake = _scores(10, 12, 0.5, seed=2, ties=True)
    rng = np.random.default_rng(0)
    wr, wf = rng.integers(0, 3, 10), rng.integers(0, 3, 12)
    reps = replicate_metrics(real, fake, wr[None].astype(float), wf[None].astype(float), 0.0)
    r, f = np.repeat(real, wr), np.repeat(fake, wf)
    labels = np.r_[np.zeros(len(r)), np.ones(len(f))]
    assert reps["auc"][0] == pytest.approx(roc_auc_score(labels, np.r_[r, f]), abs=1e-12)
    assert reps["ap"][0] == pytest.approx(average_precision_score(labels, np.r_[r, f]), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, np.r_[r, f])
    assert reps["tpr_at_5fpr"][0] == pytest.approx(tpr[fpr <= 0.05].max(), abs=1e-12)


def test_a_perfect_detector_has_degenerate_intervals_at_one():
    boot = Bootstrap(n_boot=200, seed=0)
    reps = replicate_metrics(np.zeros(40), np.ones(40), boot.weights("r", 40), boot.weights("f", 40), 0.5)
    for name in ("auc", "ap", "bal_acc", "real_acc", "fake_acc", "tpr_at_5fpr"):
        assert percentile_interval(reps[name], 0.95) == (1.0, 1.0), name


def test_weights_depend_only_on_seed_and_stratum():
    a, b = Bootstrap(n_boot=50, seed=3), Bootstrap(n_boot=50, seed=3)
    assert np.array_equal(a.weights("zoo|real|", 30), b.weights("zoo|real|", 30))
    assert not np.array_equal(a.weights("zoo|real|", 30), a.weights("zoo|fake|x", 30))
    assert (a.weights("s", 30).sum(axis=1) == 30).all()


def test_random_scores_give_auc_intervals_that_cover_one_half():
    boot = Bootstrap(n_boot=300, seed=0)
    covered, ap_mid = [], []
    for row in range(200):
        real, fake = _scores(32, 40, 0.0, seed=100 + row)
        reps = replicate_metrics(real, fake, boot.weights(f"r{row}", 32), boot.weights(f"f{row}", 40), 0.0)
        lo, hi = percentile_interval(reps["auc"], 0.95)
        covered.append(lo <= 0.5 <= hi)
        ap_mid.append(np.mean(percentile_interval(reps["ap"], 0.95)))
    assert np.mean(covered) >= 0.9
    assert abs(np.mean(ap_mid) - 40 / 72) < 0.05  # AP's chance level is the share of fakes


def test_bootstrap_interval_of_a_known_auc_covers_it_about_95_percent_of_the_time():
    """200 draws from two normals with a known AUC = Phi(shift / sqrt 2)."""
    from scipy.stats import norm

    shift = 1.0
    true_auc = norm.cdf(shift / np.sqrt(2))
    boot = Bootstrap(n_boot=400, seed=1)
    hits = 0
    for draw in range(200):
        real, fake = _scores(60, 60, shift, seed=1000 + draw)
        reps = replicate_metrics(real, fake, boot.weights(f"r{draw}", 60), boot.weights(f"f{draw}", 60), 0.0)
        lo, hi = percentile_interval(reps["auc"], 0.95)
        hits += lo <= true_auc <= hi
    assert 0.90 <= hits / 200 <= 0.99


def test_delong_matches_scikit_learn_and_the_bootstrap_standard_error():
    real, fake = _scores(80, 70, 0.7, seed=5)
    auc, se, lo, hi = delong(real, fake)
    labels = np.r_[np.zeros(80), np.ones(70)]
    assert auc == pytest.approx(roc_auc_score(labels, np.r_[real, fake]), abs=1e-12)
    boot = Bootstrap(n_boot=2000, seed=0)
    reps = replicate_metrics(real, fake, boot.weights("r", 80), boot.weights("f", 70), 0.0)
    assert se == pytest.approx(np.std(reps["auc"]), rel=0.15)
    assert lo < auc < hi


def _paired(n, delta_shift, seed):
    """Two detectors on the same images: b's signal weaker than a's."""
    rng = np.random.default_rng(seed)
    latent_r, latent_f = rng.normal(0, 1, n // 2), rng.normal(1.2, 1, n // 2)
    a = (latent_r + rng.normal(0, 0.3, n // 2), latent_f + rng.normal(0, 0.3, n // 2))
    b = (latent_r + rng.normal(0, 0.3 + delta_shift, n // 2), latent_f + rng.normal(0, 0.3 + delta_shift, n // 2))
    return a, b


def test_a_planted_difference_of_ten_points_of_auc_is_found_on_1000_images_not_on_30():
    for n, significant in ((1000, True), (30, False)):
        a, b = _paired(n, 1.06, seed=7)
        boot = Bootstrap(n_boot=1000, seed=0)
        wr, wf = boot.weights("r", n // 2), boot.weights("f", n // 2)
        ra = replicate_metrics(a[0], a[1], wr, wf, 0.0)
        rb = replicate_metrics(b[0], b[1], wr, wf, 0.0)
        delta, _, p = delong_paired(np.vstack([a[0], b[0]]), np.vstack([a[1], b[1]]))
        if n == 1000:
            assert 0.07 < delta < 0.15  # the planted difference
        p_boot = bootstrap_p_value(ra["auc"] - rb["auc"])
        assert (p < 0.01) == significant and (p_boot < 0.01) == significant, (n, delta, p, p_boot)


def test_holm_adjusts_and_keeps_nan():
    out = holm([0.01, 0.04, float("nan"), 0.03])
    assert np.isnan(out[2]) and out[0] == pytest.approx(0.03) and out[1] == pytest.approx(0.06)
