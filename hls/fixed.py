"""Fixed-point types in hls4ml/ap_fixed notation and exact integer-code arithmetic.

A value is held as an integer code c with `frac` fractional bits: value = c * 2**-frac.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ROUNDING_MODES = ("TRN", "RND", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT")
_PATTERN = re.compile(
    r"^(?:ap_)?(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(?:AP_)?(\w+)\s*)?(?:,\s*(?:AP_)?(\w+)\s*)?"
    r"(?:,\s*(\d+)\s*)?>$")


@dataclass(frozen=True)
class FixedType:
    """ap_fixed<width, integer, rounding, overflow>; `integer` includes the sign bit."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self):
        if self.width < 1 or self.width > 62:
            raise ValueError(f"{self}: width must be between 1 and 62 bits")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"{self}: rounding {self.rounding} not supported "
                             f"(supported: {', '.join(ROUNDING_MODES)})")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"{self}: overflow mode {self.overflow} not supported "
                             f"(supported: {', '.join(OVERFLOW_MODES)})")

    @classmethod
    def parse(cls, text) -> "FixedType":
        """Parse 'fixed<8,4,RND_CONV,SAT>', 'ufixed<8,3>', 'ap_fixed<16,6,AP_TRN,AP_WRAP,0>'."""
        match = _PATTERN.match(str(text).replace(" ", ""))
        if not match:
            raise ValueError(f"not a fixed-point type: {text!r}")
        unsigned, width, integer, rounding, overflow, sat_bits = match.groups()
        if sat_bits not in (None, "0"):
            raise ValueError(f"{text}: saturation bits other than 0 are not supported")
        return cls(int(width), int(integer), not unsigned, rounding or "TRN", overflow or "WRAP")

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    def __str__(self) -> str:
        return f"{'' if self.signed else 'u'}fixed<{self.width},{self.integer},{self.rounding},{self.overflow}>"

    def overflow_codes(self, codes: np.ndarray) -> np.ndarray:
        """Apply this type's overflow mode to integer codes already at its `frac`."""
        if self.overflow == "SAT":
            return np.clip(codes, self.min_code, self.max_code)
        wrapped = codes & ((1 << self.width) - 1)
        if self.signed:
            wrapped = np.where(wrapped > self.max_code, wrapped - (1 << self.width), wrapped)
        return wrapped

    def cast_codes(self, codes: np.ndarray, frac_in: int) -> np.ndarray:
        """Cast integer codes with `frac_in` fractional bits to this type (round, then overflow)."""
        codes = np.asarray(codes, dtype=np.int64)
        shift = frac_in - self.frac
        if shift <= 0:
            _check_int64(codes, -shift, f"cast to {self}")
            result = codes << -shift
        else:
            floor = codes >> shift  # arithmetic shift: floor division by 2**shift
            remainder = codes - (floor << shift)
            half = 1 << (shift - 1)
            if self.rounding == "TRN":
                result = floor
            elif self.rounding == "RND":  # round half up (towards +inf)
                result = floor + (remainder >= half)
            else:  # RND_CONV: round half to even
                result = floor + ((remainder > half) | ((remainder == half) & (floor & 1 == 1)))
        return self.overflow_codes(result)

    def round_codes(self, values: np.ndarray) -> np.ndarray:
        """Real values -> codes rounded with this type's rounding, before overflow (float64)."""
        scaled = np.asarray(values, dtype=np.float64) * 2.0 ** self.frac
        if not np.isfinite(scaled).all():
            raise ValueError(f"{self}: cannot quantize NaN or infinite values")
        if self.rounding == "TRN":
            return np.floor(scaled)
        if self.rounding == "RND":
            return np.floor(scaled + 0.5)
        return np.rint(scaled)  # half to even

    def codes_from_float(self, values: np.ndarray) -> np.ndarray:
        """Quantize real values to codes with this type's rounding and overflow (exact in float64)."""
        limit = float(1 << 62)
        return self.overflow_codes(np.clip(self.round_codes(values), -limit, limit).astype(np.int64))

    def exact_codes(self, values: np.ndarray, what: str) -> np.ndarray:
        """Codes of values that must already be exact values of this type (weights, C-simulation
        outputs); anything else is an error naming `what`."""
        scaled = np.asarray(values, dtype=np.float64) * 2.0 ** self.frac
        codes = np.rint(scaled)
        if not np.array_equal(codes, scaled):
            raise ValueError(f"{what}: values are not representable in {self}")
        codes = codes.astype(np.int64)
        if codes.min(initial=0) < self.min_code or codes.max(initial=0) > self.max_code:
            raise ValueError(f"{what}: values exceed the range of {self}")
        return codes

    def from_bits(self, raw: np.ndarray) -> np.ndarray:
        """Codes from the `width`-bit patterns a bus carries (two's complement when signed)."""
        raw = np.asarray(raw, dtype=np.int64) & ((1 << self.width) - 1)
        if not self.signed:
            return raw
        return np.where(raw > self.max_code, raw - (1 << self.width), raw)

    def to_float(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, dtype=np.float64) * self.lsb


def pack_rows(codes: np.ndarray, width: int) -> list[int]:
    """Rows of codes -> bus values of `width` bits per element, element 0 in the least
    significant bits (the RTL's input packing)."""
    mask = (1 << width) - 1
    packed = np.zeros(len(codes), dtype=object)
    for i in range(codes.shape[1]):
        packed += (np.asarray(codes[:, i]).astype(object) & mask) << (i * width)
    return packed.tolist()


def _check_int64(codes: np.ndarray, left_shift: int, what: str) -> None:
    """Integer codes must stay within int64 (62 bits of magnitude) after a left shift."""
    peak = int(np.abs(codes).max(initial=0))
    if peak and peak.bit_length() + left_shift > 62:
        raise OverflowError(f"{what}: codes of {peak.bit_length() + left_shift} bits exceed the "
                            "62 bits the integer reference computes exactly")
