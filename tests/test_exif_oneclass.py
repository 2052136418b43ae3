"""exif-oc's threshold rules and covariance types on synthetic Gaussians (no backbone)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import binom

from harness.api import ConfigError
from harness.plugins import detectors
from detectors.exif.oc import choose_covariance, fit_one_class, full_covariance_parameters
from tests.test_exif_training import _images, _memory_set

N, D, REPLICATES = 40, 36, 40


def _false_positives(rule: str, covariance: str) -> tuple[int, float]:
    """Over independent training sets of N photos, how many single fresh draws of the same
    distribution fall below the threshold: exactly Binomial(REPLICATES, target) when the
    rule keeps its promise."""
    hits, target = 0, float("nan")
    for r in range(REPLICATES):
        x = np.random.default_rng([7, r]).standard_normal((N + 1, D))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gmm, threshold, info = fit_one_class(x[:N], 5, covariance, rule, 0.02, folds=5)
        hits += int(gmm.score_samples(x[N:])[0] < threshold)
        target = info["target_fpr"]
    return hits, target


def test_heldout_threshold_keeps_its_false_positive_rate_and_in_sample_does_not():
    lo, hi = binom.interval(0.95, REPLICATES, 1 / (N + 1))
    heldout, target = _false_positives("heldout", "auto")
    assert target == pytest.approx(1 / (N + 1))  # k = round(0.02 x 41) = 1: the minimum of 40 held-out values
    assert lo <= heldout <= hi, (heldout, lo, hi)
    in_sample, target = _false_positives("in-sample", "auto")
    lo, hi = binom.interval(0.95, REPLICATES, target)
    assert in_sample > hi, (in_sample, lo, hi)  # the mixture fits its own photos better than fresh ones


def test_covariance_suited_to_the_photos_and_a_warning_for_a_degenerate_one():
    assert full_covariance_parameters(36) == 702 and full_covariance_parameters(528) == 528 * 531 // 2
    assert choose_covariance("auto", 40, 36) == "diag"
    assert choose_covariance("auto", 702, 36) == "full"
    with pytest.warns(RuntimeWarning, match="702 parameters per component"):
        assert choose_covariance("full", 40, 36) == "full"
    with pytest.raises(ConfigError, match="covariance"):
        choose_covariance("banded", 40, 36)


def test_float32_mixture_and_heldout_rule_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    reals, outliers = _images(rng, 24, noisy=False), _images(rng, 4, noisy=True)
    params = {**detectors()["exif-oc"].test_params, "n_components": 2, "covariance": "auto",
              "threshold_rule": "heldout", "folds": 4, "gmm_dtype": "float32"}
    folder = detectors()["exif-oc"].create(**params).fit(_memory_set(reals, [0] * len(reals)), tmp_path / "oc")
    det = detectors()["exif-oc"].create(**params, checkpoint=str(folder))
    det.load("cpu")
    assert det.gmm_.means_.dtype == np.float32 and det.gmm_.covariance_type == "diag"
    assert (det.score(outliers) > det.threshold).all()
    assert np.isfinite(det.threshold)


def test_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError, match="threshold_rule"):
        detectors()["exif-oc"].create(**detectors()["exif-oc"].test_params, threshold_rule="oracle")
