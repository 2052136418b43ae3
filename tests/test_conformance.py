"""Every registered detector passes the conformance kit (parametrised over the registry)."""
from __future__ import annotations

import pytest

from harness.plugins import detectors
from harness.testing import ConformanceError, check_detector


@pytest.mark.parametrize("name", list(detectors()))
def test_registered_detector_conforms(name, tmp_path):
    check_detector(name, workdir=tmp_path)


def test_the_kit_catches_a_detector_whose_scores_point_the_wrong_way(tmp_path, monkeypatch):
    from detectors.spectrum.model import SpectrumDetector

    monkeypatch.setattr(SpectrumDetector, "score_batch", lambda self, items: -_orig(self, items))
    with pytest.raises(ConformanceError, match="higher means generated"):
        check_detector("spectrum", workdir=tmp_path)


def _orig(self, items):
    import numpy as np

    x = np.stack(items).astype(np.float64)
    return 1.0 / (1.0 + np.exp(-(x @ self.coef_.T + self.intercept_)[:, 0]))
