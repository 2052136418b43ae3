"""Every registered detector passes the conformance kit (parametrised over the registry), and
the kit catches a detector that breaks each of its rules.

The broken detectors are the registered ``spectrum`` with one method wrapped around its own
(never a copy of its scoring), so the kit alone decides what it measures.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness.api import CheckpointError
from harness.plugins import detectors
from harness.testing import ConformanceError, check_detector
from detectors.spectrum.model import SpectrumDetector


@pytest.mark.parametrize("name", list(detectors()))
def test_registered_detector_conforms(name, tmp_path):
    check_detector(name, workdir=tmp_path)


def _inverted(score_batch):
    return lambda self, items: -score_batch(self, items)


def _noisy(score_batch):
    rng = np.random.default_rng(0)
    return lambda self, items: score_batch(self, items) + rng.normal(0, 1e-3, len(items))


def _batch_dependent(score_batch):
    return lambda self, items: score_batch(self, items) + 1e-3 * len(items)


def _accepts_any_checkpoint(load):
    def load_anything(self, device="cpu"):
        try:
            load(self, device)
        except CheckpointError:
            self.coef_, self.intercept_ = np.zeros((1, self.n_bins)), np.zeros(1)
    return load_anything


BREACHES = {  # rule the kit names -> (method, how it is broken)
    "higher means generated": ("score_batch", _inverted),
    "determinism": ("score_batch", _noisy),
    "batch invariance": ("score_batch", _batch_dependent),
    "wrong checkpoint refused": ("load", _accepts_any_checkpoint),
}


@pytest.mark.parametrize("rule", sorted(BREACHES))
def test_the_kit_catches_a_detector_that_breaks_the_rule(rule, tmp_path, monkeypatch):
    method, breach = BREACHES[rule]
    monkeypatch.setattr(SpectrumDetector, method, breach(getattr(SpectrumDetector, method)))
    with pytest.raises(ConformanceError, match=f"breaks rule '{rule}"):
        check_detector("spectrum", workdir=tmp_path)


def test_the_kit_catches_scores_that_are_not_score_batch_of_preprocess(tmp_path, monkeypatch):
    score = SpectrumDetector.score
    monkeypatch.setattr(SpectrumDetector, "score", lambda self, images: score(self, images) + 1e-3)
    with pytest.raises(ConformanceError, match=r"breaks rule 'score == score_batch\(preprocess\)'"):
        check_detector("spectrum", workdir=tmp_path)

