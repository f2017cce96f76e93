"""Fixed-point types: parsing, rounding and overflow on hand-computed values."""

import numpy as np
import pytest

from fraudfpga.hls.fixed import FixedType


def test_parse_hls4ml_and_ap_notations():
    t = FixedType.parse("fixed<8,4,RND_CONV,SAT>")
    assert (t.width, t.integer, t.signed, t.rounding, t.overflow) == (8, 4, True, "RND_CONV", "SAT")
    assert (t.frac, t.min_code, t.max_code) == (4, -128, 127)
    u = FixedType.parse("ufixed<8,3,RND,SAT,0>")
    assert (u.signed, u.min_code, u.max_code, u.frac) == (False, 0, 255, 5)
    assert FixedType.parse("ap_fixed<16,6,AP_TRN,AP_WRAP,0>") == FixedType(16, 6)
    assert FixedType.parse(str(t)) == t
    with pytest.raises(ValueError, match="not a fixed-point type"):
        FixedType.parse("float")
    with pytest.raises(ValueError, match="rounding RND_ZERO not supported"):
        FixedType.parse("fixed<8,4,RND_ZERO,SAT>")


@pytest.mark.parametrize("rounding, expected", [
    # value*4 (2 fractional bits in), to 0 fractional bits:
    #  -1.75 -1.5 -1.25 -0.5 0.5 1.5 2.5 1.25 1.75
    ("TRN", [-2, -2, -2, -1, 0, 1, 2, 1, 1]),
    ("RND", [-2, -1, -1, 0, 1, 2, 3, 1, 2]),
    ("RND_CONV", [-2, -2, -1, 0, 0, 2, 2, 1, 2]),
])
def test_rounding_modes(rounding, expected):
    codes = np.array([-7, -6, -5, -2, 2, 6, 10, 5, 7])  # quarters
    t = FixedType(8, 8, True, rounding, "SAT")
    assert t.cast_codes(codes, 2).tolist() == expected
    assert t.codes_from_float(codes / 4).tolist() == expected


def test_saturation_and_wrap():
    sat = FixedType(4, 4, True, "TRN", "SAT")
    wrap = FixedType(4, 4, True, "TRN", "WRAP")
    values = np.array([-9, -8, 7, 8, 9, 23])
    assert sat.cast_codes(values, 0).tolist() == [-8, -8, 7, 7, 7, 7]
    assert wrap.cast_codes(values, 0).tolist() == [7, -8, 7, -8, -7, 7]
    usat = FixedType(4, 2, False, "TRN", "SAT")
    assert usat.cast_codes(np.array([-3, 0, 15, 16]), 2).tolist() == [0, 0, 15, 15]
    # widening a type shifts codes left exactly
    assert FixedType(12, 4).cast_codes(np.array([3, -3]), 4).tolist() == [48, -48]


def test_codes_from_float_rejects_nan():
    with pytest.raises(ValueError, match="NaN or infinite"):
        FixedType(8, 4).codes_from_float(np.array([0.0, np.nan]))
