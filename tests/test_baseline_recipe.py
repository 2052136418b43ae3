"""The CNNDetection recipe shared by the baselines: stopping rule, hold-out split,
augmentation, crops and the NPR residual."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from harness.recipes.cnndetection.recipe import (CNNDetectionAugment, center_crop, data_augment, random_crop,
                                                 trim_to_even)
from harness.recipes.cnndetection.training import EarlyStopping, Schedule, split_train_val, train_classifier
from detectors.npr.model import npr_residual


def _noise(size: int = 32, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_early_stopping_needs_an_improvement_of_at_least_its_margin():
    stopper = EarlyStopping(patience=2, min_improvement=0.001)
    assert stopper.step(0.80) and not stopper.step(0.8005) and stopper.step(0.802)
    assert not stopper.step(0.80) and not stopper.early_stop
    assert not stopper.step(0.80) and stopper.early_stop


def test_stalled_validation_divides_the_rate_by_ten_until_below_the_minimum():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = [torch.randn(2) for _ in range(8)]
    labels = np.array([0, 1] * 4)
    log = train_classifier(model, lambda i, r: x[i], labels, np.arange(8), x[:4], labels[:4],
                           Schedule(epochs=50, batch_size=4, lr=1e-4, patience=1, min_lr=1e-6), "cpu",
                           np.random.default_rng(0))
    np.testing.assert_allclose(sorted(set(log.lr), reverse=True), [1e-4, 1e-5, 1e-6])
    assert log.stopped_early


def test_npr_schedule_multiplies_the_rate_every_k_epochs():
    model = nn.Linear(2, 1)
    x = [torch.randn(2) for _ in range(4)]
    log = train_classifier(model, lambda i, r: x[i], np.array([0, 1, 0, 1]), np.arange(4), [], np.array([]),
                           Schedule(epochs=5, batch_size=4, lr=1.0, patience=None, decay_every=2, decay_factor=0.8),
                           "cpu", np.random.default_rng(0))
    np.testing.assert_allclose(log.lr, [1.0, 1.0, 1.0, 0.8, 0.8])


def test_hold_out_is_stratified_and_seeded():
    labels = np.array([0] * 10 + [1] * 30)
    train, val = split_train_val(labels, 0.1, seed=3)
    assert sorted(labels[val].tolist()) == [0, 1, 1, 1] and len(train) == 36
    assert np.array_equal(val, split_train_val(labels, 0.1, seed=3)[1])
    assert not np.array_equal(val, split_train_val(labels, 0.1, seed=4)[1])


def test_augmentation_is_reproducible_from_its_generator():
    cfg = CNNDetectionAugment(blur_prob=0.5, jpeg_prob=0.5)
    first = [np.asarray(data_augment(_noise(), cfg, np.random.default_rng(7))) for _ in range(2)]
    assert np.array_equal(first[0], first[1])


def test_blur_and_jpeg_change_the_image_when_drawn():
    blurred = np.asarray(data_augment(_noise(), CNNDetectionAugment(blur_prob=1.0, blur_sigma=(2.0, 2.0)),
                                      np.random.default_rng(0)), dtype=np.float64)
    assert blurred.std() < 0.5 * np.asarray(_noise(), dtype=np.float64).std()
    for method in ("cv2", "pil"):
        jpeg = data_augment(_noise(), CNNDetectionAugment(jpeg_prob=1.0, jpeg_quality=(30, 30), jpeg_methods=(method,)),
                            np.random.default_rng(0))
        assert jpeg.size == (32, 32) and not np.array_equal(np.asarray(jpeg), np.asarray(_noise()))


def test_crops_pad_small_images_with_zeros():
    small = _noise(10)
    assert center_crop(small, 16).size == (16, 16) and np.asarray(center_crop(small, 16))[0, 0].sum() == 0
    assert random_crop(small, 16, np.random.default_rng(0)).size == (16, 16)


def test_npr_residual_vanishes_on_nearest_upsampled_images_only():
    up = torch.from_numpy(np.asarray(_noise(16).resize((32, 32), Image.NEAREST), dtype=np.float32)).permute(2, 0, 1)
    assert npr_residual(up[None]).abs().max() == 0
    noisy = torch.from_numpy(np.asarray(_noise(32), dtype=np.float32)).permute(2, 0, 1)
    assert npr_residual(noisy[None]).abs().max() > 0


def test_odd_sizes_are_trimmed_to_even_for_npr():
    assert trim_to_even(_noise(33)).size == (32, 32)
