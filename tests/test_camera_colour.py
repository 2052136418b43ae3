"""The simulator's colour maths gives the numbers of its former hand-written code.

The constants below were produced by that code (Kim et al. 2002's Planckian-locus fit typed
out, the Rec. 709 and Rec. 601 weights as literals) before colour-science replaced it.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness.data.camera import pipeline as isp
from harness.data.camera.render import metered_luminance

#: kelvin -> linear-sRGB gains relative to daylight (G = 1); 1500 and 30000 K are clipped to the fit's range
GAINS = {
    1500: (5.370514869689941, 1.0, -0.07444126158952713),
    2000: (3.6838791370391846, 1.0, 0.0293735358864069),
    2700: (2.262077569961548, 1.0, 0.22766971588134766),
    3300: (1.763418197631836, 1.0, 0.38205260038375854),
    4000: (1.445570707321167, 1.0, 0.548471212387085),
    4500: (1.2977567911148071, 1.0, 0.6562535166740417),
    5500: (1.1109219789505005, 1.0, 0.8437507152557373),
    6500: (1.000348687171936, 1.0, 0.9994338154792786),
    8500: (0.8789242506027222, 1.0, 1.2364469766616821),
    30000: (0.6951926350593567, 1.0, 1.8540319204330444),
}
#: kelvin -> CIE xy on the Planckian locus
LOCUS = {
    2000: (0.5269025875, 0.41326488475771883),
    2700: (0.4593139523446629, 0.41066024937841794),
    4000: (0.38052828281249995, 0.3767335309611144),
    5500: (0.33233627332832455, 0.3410394564362569),
    8500: (0.2908183856299613, 0.29993820432357443),
}
#: EXIF MeteringMode -> metered luminance of the image below
METERED = {1: 0.4861733913421631, 2: 0.5088539123535156, 3: 0.5920796990394592, 5: 0.47233307361602783,
           6: 0.60980224609375}
RENDERED = [[[64, 136, 255], [228, 68, 195], [201, 99, 251], [74, 178, 208]],
            [[173, 208, 235], [255, 135, 224], [242, 148, 0], [255, 141, 146]],
            [[253, 203, 179], [255, 21, 254], [182, 69, 245], [255, 111, 225]]]


@pytest.mark.parametrize("kelvin", sorted(GAINS))
def test_illuminant_gains_are_those_of_the_former_code(kelvin):
    np.testing.assert_allclose(isp.illuminant_gains(kelvin), GAINS[kelvin], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kelvin", sorted(LOCUS))
def test_colour_sciences_kang_2002_locus_is_the_kim_et_al_fit_the_simulator_used(kelvin):
    from colour.temperature import CCT_to_xy_Kang2002

    np.testing.assert_allclose(CCT_to_xy_Kang2002(kelvin), LOCUS[kelvin], rtol=1e-12)


@pytest.mark.parametrize("mode", sorted(METERED))
def test_metered_luminance_is_that_of_the_former_code(mode):
    lin = np.random.default_rng(3).random((6, 8, 3)).astype(np.float32)
    assert metered_luminance(lin, mode) == pytest.approx(METERED[mode], rel=1e-6)


def test_rendered_output_is_that_of_the_former_code():
    linear = np.random.default_rng(3).random((3, 4, 3)).astype(np.float32)
    out = isp.render_output(linear, contrast=0.2, saturation=1.3, sharpen_amount=0.0, sharpen_radius=1.0)
    assert out.tolist() == RENDERED
