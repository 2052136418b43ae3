"""Pretext labels and losses of the EXIF detectors, against hand-computed values."""
from __future__ import annotations

import math

import torch

from detectors.exif.labels import CATEGORICAL, RANKING, build_vocabulary, encode_photo, pair_targets
from detectors.exif.losses import distillation_mse, masked_cross_entropy, pretext_loss, ranking_bce, \
    thurstone_probability
from detectors.exif.model import HEAD_SIZES


def test_head_order_matches_the_authors_head_sizes():
    assert sorted(CATEGORICAL) == [i for i, k in enumerate(HEAD_SIZES) if k > 1]
    assert all(HEAD_SIZES[i] == k for i, (_, k) in CATEGORICAL.items())
    assert sorted(RANKING) == [i for i, k in enumerate(HEAD_SIZES) if k == 1]
    assert list(RANKING.values())[:4] == ["FocalLength", "FNumber", "ExposureTime", "ISOSpeedRatings"]


def test_thurstone_probability_is_the_normal_cdf_of_the_difference():
    p = thurstone_probability(torch.tensor([1.5]), torch.tensor([1.0]))
    assert abs(float(p) - 0.6914624612740131) < 1e-6  # Φ(0.5)


def test_ranking_bce_equals_minus_log_phi():
    s1, s2 = torch.tensor([[1.5], [0.0]]), torch.tensor([[1.0], [1.0]])
    loss = ranking_bce(s1, s2, torch.tensor([1.0, 0.0]), torch.tensor([True, True]))
    # -log Φ(0.5) and -log(1 - Φ(-1)) = -log Φ(1)
    want = (-math.log(0.6914624612740131) - math.log(0.8413447460685429)) / 2
    assert abs(float(loss) - want) < 1e-6


def test_ranking_bce_ignores_masked_pairs():
    s1, s2 = torch.tensor([[1.5], [-9.0]]), torch.tensor([[1.0], [9.0]])
    loss = ranking_bce(s1, s2, torch.tensor([1.0, 1.0]), torch.tensor([True, False]))
    assert abs(float(loss) + math.log(0.6914624612740131)) < 1e-6


def test_cross_entropy_is_averaged_over_present_tags_only():
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    loss = masked_cross_entropy(logits, torch.tensor([0, 0]), torch.tensor([True, False]))
    assert abs(float(loss) - math.log(1 + math.exp(-2.0))) < 1e-6


def test_all_masked_term_is_zero():
    loss = masked_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([False, False]))
    assert float(loss) == 0.0


def test_vocabulary_keeps_most_frequent_values_and_maps_the_rest_to_other():
    exifs = [{"Make": "Canon"}] * 3 + [{"Make": "Nikon"}] * 2 + [{"Make": m} for m in "ABCDEFG"]
    vocab = build_vocabulary(exifs)
    assert vocab.classes["Make"][:2] == ("Canon", "Nikon") and len(vocab.classes["Make"]) == 6
    assert vocab.encode("Make", "Canon") == 0
    assert vocab.encode("Make", "G") == 6  # "other": the last of the 7 classes
    assert vocab.encode("Make", None) == -1


def test_missing_tags_mask_their_terms():
    vocab = build_vocabulary([{"Make": "Canon", "Flash": 16}])
    cats1, vals1 = encode_photo({"Make": "Canon", "FNumber": 2.8}, vocab)
    _, vals2 = encode_photo({"FNumber": 4.0, "FocalLength": 50.0}, vocab)
    target, mask = pair_targets(cats1[None], vals1[None], vals2[None])
    assert mask[0, 1] and not mask[0, 6]          # Make present, Flash missing
    assert mask[0, 2] and target[0, 2] == 0.0     # FNumber 2.8 < 4.0
    assert not mask[0, 0]                          # FocalLength missing in the first photo


def test_ties_count_as_greater_or_equal_unless_masked():
    vocab = build_vocabulary([{}])
    cats, vals = encode_photo({"ISOSpeedRatings": 100}, vocab)
    target, mask = pair_targets(cats[None], vals[None], vals[None])
    assert target[0, 4] == 1.0 and mask[0, 4]
    _, mask_t = pair_targets(cats[None], vals[None], vals[None], mask_ties=True)
    assert not mask_t[0, 4]


def test_pretext_loss_is_the_unweighted_sum_of_the_14_terms():
    torch.manual_seed(0)
    out1 = [torch.randn(3, k) for k in HEAD_SIZES]
    out2 = [torch.randn(3, k) for k in HEAD_SIZES]
    target = torch.tensor([[float(i % max(k, 2) if k > 1 else 1) for i, k in enumerate(HEAD_SIZES)]] * 3)
    mask = torch.ones(3, 14, dtype=torch.bool)
    total, terms = pretext_loss(out1, out2, target, mask)
    assert terms.shape == (14,) and abs(float(total) - float(terms.sum())) < 1e-5
    want0 = -torch.special.log_ndtr(out1[0][:, 0] - out2[0][:, 0]).mean()
    assert abs(float(terms[0]) - float(want0)) < 1e-6


def test_distillation_is_the_sum_of_five_mses():
    student = (torch.zeros(1),) + tuple(torch.zeros(2, 2) for _ in range(5))
    teacher = (torch.ones(1),) + tuple(torch.full((2, 2), float(i)) for i in range(1, 6))
    assert float(distillation_mse(student, teacher)) == 1 + 4 + 9 + 16 + 25
