"""The spectrum detector's fast feature equals the authors' step-by-step computation."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detectors.spectrum.model import _ring_operator, azimuthal_average, spectrum_feature, spectrum_feature_reference


@pytest.mark.parametrize("shape", [(384, 512), (256, 256), (255, 257), (333, 100), (7, 9), (2, 300), (1, 50)])
@pytest.mark.parametrize("n_bins,kind", [(64, "cubic"), (300, "cubic"), (80, "linear")])
def test_fast_feature_equals_the_reference(shape, n_bins, kind):
    rng = np.random.default_rng(sum(shape) + n_bins)
    image = Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    fast, ref = spectrum_feature(image, n_bins, kind), spectrum_feature_reference(image, n_bins, kind)
    assert fast.shape == ref.shape == (n_bins,)
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-6)


def test_ring_operator_on_the_half_plane_is_the_azimuthal_average_of_the_full_plane():
    import scipy.fft

    rng = np.random.default_rng(0)
    grey = rng.normal(100, 30, (48, 70))
    full = np.log(np.abs(np.fft.fftshift(np.fft.fft2(grey))) + 1)
    half = np.log(np.abs(scipy.fft.rfft2(grey)) + 1)
    np.testing.assert_allclose(_ring_operator(48, 70) @ half.ravel(), azimuthal_average(full), rtol=1e-12)
