"""The input contract of an imported model: how the host turns a raw value of each of the user's
columns into the integer code the firmware compares, and how the model's thresholds become
comparisons of codes.

The arithmetic, stated so that a host in C, Java or Python reproduces every code bit for bit
(IEEE 754 binary64, round to nearest even, no fused multiply-add):

    d    = (x - offset[i]) * 2**shift[i]     # one rounded subtraction; the power of two is exact
    code = clamp(round_half_even(d), -2**(bits-1), 2**(bits-1) - 1)

C: `nearbyint((x - offset) * ldexp(1.0, shift))` in the default rounding mode; Java:
`Math.rint((x - offset) * Math.scalb(1.0, shift))`; Python: `round((x - offset) *
math.ldexp(1.0, shift))`. NaN is not a value the firmware takes: the host must impute it before
scoring (the flow refuses NaN in the data, naming the column and row). Offsets are written both
as decimal (shortest round-trip) and as C99 hexadecimal floats.

A split `x < t` (or `x <= t`) becomes `code <= c` with c the largest code whose centre lies on
the split's left side: u = (t - offset) * 2**shift, c = ceil(u) - 1 (or floor(u)). A raw value
within half a code of t may take the other branch: the flow counts those rows. A split whose c
lies outside the code range sends every code one way and is removed; distinct thresholds that
land on one c collapse into one comparator: both are counted and reported.

Scaling in float32 (as the toolkit's own network path does) is not used here: on a ULB-sized
CSV one test row in 71,203 landed one code away from the float64 result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fraudfpga.models.loaders import DataError

from .fixed import FixedType
from .imported_models import LEAF, RawEnsemble

QUANTILE = 0.001  # the code range covers the 0.1 %-99.9 % of the training values and every threshold


@dataclass
class InputContract:
    features: list[str]
    bits: int
    offset: np.ndarray  # float64, one per input
    shift: np.ndarray  # int64: scale = 2**shift

    @property
    def code_type(self) -> FixedType:
        """The firmware's input type: integer codes (no fractional bits), saturated."""
        return FixedType(self.bits, self.bits, True, "RND_CONV", "SAT")

    def scaled(self, raw: np.ndarray) -> np.ndarray:
        return (np.asarray(raw, dtype=np.float64) - self.offset) * np.ldexp(1.0, self.shift)

    def codes(self, raw: np.ndarray, where: str = "data") -> np.ndarray:
        """The codes of rows of raw values (the contract's arithmetic, vectorised)."""
        raw = check_finite(raw, self.features, where)
        t = self.code_type
        return np.clip(np.rint(self.scaled(raw)), t.min_code, t.max_code).astype(np.int64)

    def beyond_range(self, raw: np.ndarray) -> np.ndarray:
        """(rows, inputs): whether each value lies beyond the code range (clamped)."""
        t = self.code_type
        rounded = np.rint(self.scaled(raw))
        return (rounded < t.min_code) | (rounded > t.max_code)

    def saturated(self, raw: np.ndarray) -> dict[str, int]:
        """Per input, the rows whose value lies beyond the code range (clamped)."""
        counts = self.beyond_range(raw).sum(axis=0)
        return {name: int(n) for name, n in zip(self.features, counts) if n}

    def split_code(self, feature: int, threshold: float, strict: bool) -> int:
        u = (threshold - self.offset[feature]) * math.ldexp(1.0, int(self.shift[feature]))
        return math.ceil(u) - 1 if strict else math.floor(u)

    def to_dict(self) -> dict:
        t = self.code_type
        return {
            "features": self.features, "bits": self.bits,
            "code_range": [t.min_code, t.max_code],
            "offset": [float(v) for v in self.offset],
            "offset_hex": [float(v).hex() for v in self.offset],
            "shift": [int(v) for v in self.shift],
            "arithmetic": "code = clamp(round_half_even((x - offset) * 2**shift), code_range) "
                          "in IEEE 754 binary64; NaN refused",
            "reference": "input_contract_reference.py beside this file (Python, no dependencies)",
        }

    @classmethod
    def from_dict(cls, data: dict) -> "InputContract":
        return cls(list(data["features"]), int(data["bits"]),
                   np.array([float.fromhex(v) for v in data["offset_hex"]]),
                   np.array(data["shift"], dtype=np.int64))


def check_finite(raw: np.ndarray, features: list[str], where: str = "data") -> np.ndarray:
    """The rows as float64; NaN or an infinity is refused naming the column and the row."""
    raw = np.asarray(raw, dtype=np.float64)
    bad = ~np.isfinite(raw)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise DataError(f"{where}: column {features[col]!r} row {row} is {raw[row, col]}: the "
                        f"firmware takes no missing or infinite values ({int(bad.sum())} such "
                        "values); impute them before scoring")
    return raw


def fit_contract(raw_train: np.ndarray, features: list[str], bits: int,
                 thresholds: list[np.ndarray] | None = None) -> InputContract:
    """Per input, an offset (the middle of its range) and the largest power-of-two scale that
    fits the range into `bits`: the range covers the training values between the 0.1 % and
    99.9 % quantiles and, for trees, every threshold the model has on that input."""
    limit = (1 << (bits - 1)) - 1
    offsets, shifts = [], []
    for i in range(raw_train.shape[1]):
        low, high = np.quantile(raw_train[:, i], [QUANTILE, 1 - QUANTILE])
        if thresholds is not None and thresholds[i].size:
            low, high = min(low, thresholds[i].min()), max(high, thresholds[i].max())
        half = (high - low) / 2
        offsets.append((low + high) / 2)
        shift = math.floor(math.log2(limit / half)) if half > 0 else 0
        while half * 2.0 ** shift > limit:  # log2 rounding
            shift -= 1
        shifts.append(shift)
    return InputContract(list(features), bits, np.array(offsets, dtype=np.float64),
                         np.array(shifts, dtype=np.int64))


def thresholds_per_input(ensemble: RawEnsemble) -> list[np.ndarray]:
    """Every threshold of the ensemble, by input."""
    return [np.concatenate([tree.threshold[tree.feature == i] for tree in ensemble.trees])
            for i in range(ensemble.n_features)]


@dataclass
class CodeSpaceForest:
    """The imported ensemble with every split as `code <= c` (conifer's dictionary, ready for
    its C++ emulation), and what the mapping changed."""
    ensemble: dict
    decided_by_range: int  # splits removed: every code goes one way
    collapsed: dict[str, int]  # per input, distinct thresholds that share a code with another


def to_code_space(raw: RawEnsemble, contract: InputContract) -> CodeSpaceForest:
    t = contract.code_type
    decided = 0
    codes_of: dict[int, dict[int, set[float]]] = {}
    trees = []
    for tree in raw.trees:
        feature, threshold, left, right, value = [], [], [], [], []

        def copy(node: int) -> int:
            nonlocal decided
            while tree.feature[node] != LEAF:
                f = int(tree.feature[node])
                c = contract.split_code(f, float(tree.threshold[node]), bool(tree.strict[node]))
                if t.min_code <= c < t.max_code:
                    break
                decided += 1
                node = int(tree.right[node] if c < t.min_code else tree.left[node])
            index = len(feature)
            for column in (feature, threshold, left, right, value):
                column.append(0)
            if tree.feature[node] == LEAF:
                feature[index], left[index], right[index] = LEAF, -1, -1
                value[index] = float(tree.value[node])
                return index
            f = int(tree.feature[node])
            c = contract.split_code(f, float(tree.threshold[node]), bool(tree.strict[node]))
            codes_of.setdefault(f, {}).setdefault(c, set()).add(float(tree.threshold[node]))
            feature[index], threshold[index] = f, float(c)
            left[index] = copy(int(tree.left[node]))
            right[index] = copy(int(tree.right[node]))
            return index

        copy(0)
        weight = [[int(f == i) for i in range(raw.n_features)] for f in feature]  # conifer's
        trees.append([{"feature": feature, "threshold": threshold, "children_left": left,
                       "children_right": right, "value": value, "weight": weight}])
    depth = max(_depth(tree[0]) for tree in trees)
    ensemble = {"max_depth": depth, "n_trees": len(trees), "n_classes": 2,
                "n_features": raw.n_features, "trees": trees,
                "init_predict": [raw.init, raw.init], "norm": 1, "library": "fraudfpga-import",
                "splitting_convention": "<=",
                "feature_map": {name: i for i, name in enumerate(contract.features)}}
    collapsed = {contract.features[f]: sum(len(raws) - 1 for raws in by_code.values())
                 for f, by_code in codes_of.items()}
    return CodeSpaceForest(ensemble, decided, {k: v for k, v in collapsed.items() if v})


def _depth(tree: dict, node: int = 0) -> int:
    if tree["feature"][node] == LEAF:
        return 0
    return 1 + max(_depth(tree, tree["children_left"][node]),
                   _depth(tree, tree["children_right"][node]))


def raw_leaf_values(raw: RawEnsemble, x: np.ndarray) -> np.ndarray:
    """(rows, trees): the leaf value each tree gives each row in the library's own comparison."""
    x = np.asarray(x, dtype=raw.input_dtype)
    return np.stack([tree.value[tree.leaves(x)] for tree in raw.trees], axis=1)
