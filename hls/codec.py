"""Host-side mapping between transactions and the firmware's fixed-point buses.

raw features -> scaled features (the run's scaler) -> input codes (the input quantizer's
rounding and saturation, as QKeras computes it) ... firmware ... output codes -> logit ->
score (sigmoid). The C simulation, the RTL testbench and the report all use this module.
"""

from __future__ import annotations

import numpy as np

from fraudfpga.models.split import Scaler

from .fixed import FixedType


class FirmwareCodec:
    def __init__(self, scaler: Scaler, input_type: FixedType, output_type: FixedType):
        self.scaler = scaler
        self.input_type = input_type
        self.output_type = output_type

    @property
    def features(self) -> list[str]:
        return self.scaler.features

    def codes_from_scaled(self, scaled: np.ndarray) -> np.ndarray:
        scaled = np.asarray(scaled, dtype=np.float64)
        bad = ~np.isfinite(scaled)
        if bad.any():
            row, col = (int(i[0]) for i in np.nonzero(bad))
            raise ValueError(f"feature {self.features[col]!r} in row {row} is {scaled[row, col]}; "
                             "the firmware needs finite inputs")
        return self.input_type.codes_from_float(scaled)

    def saturated(self, scaled: np.ndarray) -> dict[str, int]:
        """How many values of each feature the input type clips (information for the report)."""
        rounded = self.input_type.round_codes(np.asarray(scaled, dtype=np.float64))
        counts = ((rounded < self.input_type.min_code) | (rounded > self.input_type.max_code)).sum(0)
        return {name: int(c) for name, c in zip(self.features, counts) if c}

    def logits(self, output_codes: np.ndarray) -> np.ndarray:
        return self.output_type.to_float(np.asarray(output_codes)[:, 0])
