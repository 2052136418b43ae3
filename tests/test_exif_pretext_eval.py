"""The held-out evaluation of a pretext backbone (detectors.exif.evaluate)."""
from __future__ import annotations

import numpy as np
import pytest

from harness.stats import Bootstrap
from harness.plugins import trainers
from detectors.exif.evaluate import categorical_accuracy, compare_pretext, evaluate_pretext, ranking_accuracy
from tests.helpers import exif_photo
from tests.test_exif_training import TINY, _set

ONES = np.ones((1, 6))


def test_ranking_accuracy_counts_ordered_pairs_and_half_for_tied_scores():
    values = np.array([1.0, 2.0, 3.0, 4.0, 4.0, np.nan])  # one tie of values (not a pair), one missing
    assert ranking_accuracy(np.array([1, 2, 3, 4, 5, 0.0]), values, ONES)[0] == 1.0
    assert ranking_accuracy(-np.array([1, 2, 3, 4, 5, 0.0]), values, ONES)[0] == 0.0
    assert ranking_accuracy(np.zeros(6), values, ONES)[0] == 0.5
    # scores 1,2,4,3 on values 1,2,3,4 (and 4 tied with the last): pairs (3,4) and (3,5) reversed of 9
    assert ranking_accuracy(np.array([1, 2, 4, 3, 3.5, 0.0]), values, ONES)[0] == pytest.approx(7 / 9)
    weights = Bootstrap(50).weights("x", 6)
    assert ranking_accuracy(np.array([1, 2, 3, 4, 5, 0.0]), values, weights)[~np.isnan(
        ranking_accuracy(np.array([1, 2, 3, 4, 5, 0.0]), values, weights))].min() == 1.0


def test_categorical_accuracy_ignores_unknown_targets():
    acc = categorical_accuracy(np.array([0, 1, 1, 2, 0, 0]), np.array([0, 1, 0, -1, -1, 0]), ONES)
    assert acc[0] == pytest.approx(3 / 4)


def _untrained(tmp_path, seed: int = 0):
    """12 EXIF photos and a 0-step backbone fitted on the first 6: (trainer, folder, photos)."""
    rng = np.random.default_rng(seed)
    photos = [exif_photo(tmp_path / f"p{i}.jpg", rng, ["Canon", "Nikon"][i % 2], [2.8, 4.0, 8.0][i % 3],
                         100 * (1 + i % 4)) for i in range(12)]
    trainer = trainers()["exif-backbone"].create(preset="cpu-small", steps=0, batch_pairs=2, n_crops=2, **TINY)
    return trainer, trainer.fit(_set(photos[:6], [0] * 6), tmp_path / "bb"), photos


def test_evaluate_pretext_reports_every_head_with_an_interval(tmp_path):
    _, folder, photos = _untrained(tmp_path)
    result = evaluate_pretext(folder, photos[6:], bootstrap=Bootstrap(200))
    table = result.table.set_index("tag")
    assert len(table) == 14
    assert table.loc["ISOSpeedRatings", "n_pairs"] == 13  # ISO 300, 400, 100, 200, 300, 400: 15 pairs, 2 tied
    assert table.loc["Make", "chance"] == 0.5 and table.loc["Make", "n_photos"] == 6
    ok = table.dropna(subset=["acc"])
    assert ((ok["acc_lo"] <= ok["acc"] + 1e-12) & (ok["acc"] <= ok["acc_hi"] + 1e-12)).all()
    assert "ISOSpeedRatings ranking accuracy" in result.summary()


def test_compare_pretext_pairs_two_backbones_on_the_same_resamples(tmp_path):
    trainer, folder, photos = _untrained(tmp_path, seed=1)
    other = trainer.fit(_set(photos[:6], [0] * 6), tmp_path / "bb1", seed=1)
    same = compare_pretext(folder, folder, photos[6:], bootstrap=Bootstrap(100)).set_index("tag").dropna()
    assert len(same) >= 4  # heads of tags the photos carry (the others have no accuracy)
    assert (same["delta"] == 0).all() and (same["delta_lo"] == 0).all() and (same["delta_hi"] == 0).all()
    table = compare_pretext(folder, other, photos[6:], bootstrap=Bootstrap(100)).set_index("tag")
    alone = [evaluate_pretext(f, photos[6:], bootstrap=Bootstrap(100)).table.set_index("tag") for f in (folder, other)]
    iso = table.loc["ISOSpeedRatings"]
    assert iso["acc"] == alone[0].loc["ISOSpeedRatings", "acc"]
    assert iso["acc_control"] == alone[1].loc["ISOSpeedRatings", "acc"]
    assert iso["delta"] == pytest.approx(iso["acc"] - iso["acc_control"])
    assert iso["delta_lo"] <= iso["delta"] + 1e-12 <= iso["delta_hi"] + 2e-12
