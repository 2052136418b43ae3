"""The spectrum detector's fast feature equals the authors' step-by-step computation."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from PIL import Image

from detectors.spectrum import model
from detectors.spectrum.model import _ring_operator, azimuthal_average, spectrum_feature, spectrum_feature_reference


@pytest.fixture
def empty_ring_cache(monkeypatch):
    """The ring-operator cache as in a new process: sizes other tests scored are not in it."""
    monkeypatch.setattr(model, "_RINGS", OrderedDict())
    monkeypatch.setattr(model, "_SEEN", OrderedDict())


@pytest.mark.parametrize("shape", [(384, 512), (256, 256), (255, 257), (333, 100), (7, 9), (2, 300), (1, 50)])
@pytest.mark.parametrize("n_bins,kind", [(64, "cubic"), (300, "cubic"), (80, "linear")])
def test_fast_feature_equals_the_reference(shape, n_bins, kind, empty_ring_cache):
    rng = np.random.default_rng(sum(shape) + n_bins)
    image = Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    ref = spectrum_feature_reference(image, n_bins, kind)
    for _ in range(2):  # the second image of a size takes the cached ring operator
        fast = spectrum_feature(image, n_bins, kind)
        assert fast.shape == ref.shape == (n_bins,)
        np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-6)
    if min(shape) >= 2:
        assert shape in model._RINGS


def test_the_ring_operator_is_built_for_the_second_image_of_a_size_and_kept_for_few_sizes(empty_ring_cache):
    rng = np.random.default_rng(1)
    sizes = [(40 + i, 50) for i in range(model.MAX_RINGS + 2)]
    for size in sizes:
        image = Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        spectrum_feature(image, 32)
        assert size not in model._RINGS  # first sight: step by step, nothing built
        spectrum_feature(image, 32)
        assert size in model._RINGS
    assert len(model._RINGS) == model.MAX_RINGS and sizes[0] not in model._RINGS


def test_ring_operator_on_the_half_plane_is_the_azimuthal_average_of_the_full_plane():
    import scipy.fft

    rng = np.random.default_rng(0)
    grey = rng.normal(100, 30, (48, 70))
    full = np.log(np.abs(np.fft.fftshift(np.fft.fft2(grey))) + 1)
    half = np.log(np.abs(scipy.fft.rfft2(grey)) + 1)
    np.testing.assert_allclose(_ring_operator(48, 70) @ half.ravel(), azimuthal_average(full), rtol=1e-12)
