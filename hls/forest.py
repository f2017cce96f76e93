"""Decision forests as firmware, through conifer (the fastmachinelearning decision-forest
converter, hls4ml's sibling).

conifer converts the trained forest into its ensemble form; its C++ backend (`conifer.h`,
ap_fixed arithmetic) is the forest's golden model, as hls4ml's C simulation is the network's.
`FixedForest` holds the same forest as integer codes: the comparisons and leaf values the RTL
generator needs, and an independent numpy reference that must equal the golden model.

Arithmetic of conifer's C++ emulation (conifer 1.11, `backends/cpp/include/conifer.h`), which
the reference and the RTL follow:
- an input and a threshold are `input_t` (ap_fixed<W,I>); a split sends `x <= threshold` left
  (scikit-learn's convention) or `x < threshold` (XGBoost's); the threshold is cast from double
  with ap_fixed's default truncation. On the input grid both become `code(x) <= c` with one
  integer c per split, which is the form the reference and the RTL keep;
- a leaf value and the ensemble's initial prediction (XGBoost's base score as a logit) are cast
  to `score_t` by truncation and summed in `score_t` (wrapping; the score type is chosen from
  the converted forest so that no partial sum can wrap);
- what the sum means depends on the converter (`SCORE_SENSES`): conifer's scikit-learn
  converter keeps, per leaf, class 0's probability divided by the number of trees (the sum is
  the mean probability of a genuine transaction); its XGBoost converter keeps the leaf margins
  (the sum is the fraud logit).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fraudfpga.errors import FlowError

from .fixed import FixedType

LEAF = -2  # scikit-learn's and conifer's marker of a leaf's feature


@dataclass(frozen=True)
class ScoreSense:
    """What the firmware's output value v means, as functions of it."""
    probability: Callable[[np.ndarray], np.ndarray]  # v -> fraud probability
    output: Callable[[np.ndarray], np.ndarray]  # fraud probability -> v (the inverse)
    fraud_linear: Callable[[np.ndarray], np.ndarray]  # v -> a fraud score affine in v


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1 - 1e-16)
    return np.log(p) - np.log1p(-p)


SCORE_SENSES = {
    "genuine probability": ScoreSense(lambda v: 1.0 - v, lambda p: 1.0 - p, lambda v: 1.0 - v),
    "fraud margin": ScoreSense(_sigmoid, _logit, lambda v: v),
    "fraud probability": ScoreSense(lambda v: np.asarray(v, dtype=np.float64),
                                    lambda p: np.asarray(p, dtype=np.float64), lambda v: v),
}


class ForestConversionError(FlowError):
    """A model the forest firmware cannot take; the message names the model, tree or node."""


def score_type(bound: float, frac_bits: int) -> FixedType:
    """conifer's score_t for sums of magnitude at most `bound` (the initial prediction plus every
    tree's largest leaf magnitude): enough integer bits, sign included, that no partial sum
    wraps. A random forest's leaves are probabilities / trees (bound 1: two integer bits)."""
    integer = max(2, math.floor(math.log2(bound)) + 2) if bound > 0 else 2
    return FixedType(frac_bits + integer, integer, True, "TRN", "WRAP")


def sum_bound(ensemble: dict) -> float:
    """The largest magnitude any partial sum of the ensemble can reach."""
    return (sum(abs(v) for v in ensemble.get("init_predict", [0.0])[:1]) +
            sum(max(abs(v) for f, v in zip(tree["feature"], tree["value"]) if f == LEAF)
                for (tree,) in ensemble["trees"]))


def snap_thresholds(ensemble: dict, in_type: FixedType) -> dict:
    """The ensemble with every threshold moved to a value of the input grid that splits the grid
    as the trained threshold does: for `x < t` the smallest grid value >= t, for `x <= t` the
    largest <= t. conifer casts thresholds by truncation, which moves an off-grid `<` split by
    one code (the source of the XGBoost prediction disagreements conifer warns about); the
    snapped ensemble is the same model on every input the firmware can receive."""
    scale = 2.0 ** in_type.frac
    below = ensemble.get("splitting_convention", "<=") == "<"
    trees = []
    for (tree,) in ensemble["trees"]:
        threshold = np.asarray(tree["threshold"], dtype=np.float64) * scale
        snapped = (np.ceil(threshold) if below else np.floor(threshold)) / scale
        split = np.asarray(tree["feature"]) != LEAF
        trees.append([tree | {"threshold": np.where(split, snapped, tree["threshold"]).tolist()}])
    return ensemble | {"trees": trees}
def input_type(bits: int, integer: int) -> FixedType:
    """The forest's input_t, also its threshold_t (conifer's C++ backend needs them equal):
    the scaled features rounded half to even and saturated, as the network's input quantizer."""
    return FixedType(bits, integer, True, "RND_CONV", "SAT")


def conifer_precision(t: FixedType) -> str:
    """The ap_fixed type conifer's emulation uses for `t` (default truncation and wrapping:
    conifer casts thresholds and leaf values with them)."""
    return f"ap_fixed<{t.width},{t.integer}>"


@dataclass
class FixedForest:
    """The forest as integer codes: per tree, node arrays in conifer's order (feature, threshold
    code, children, leaf value code)."""

    n_inputs: int
    input_type: FixedType
    output_type: FixedType
    trees: list[dict]  # {"feature", "threshold", "left", "right", "value"}: lists of ints
    score_sense: str = "genuine probability"

    def __post_init__(self):
        if self.score_sense not in SCORE_SENSES:
            raise ValueError(f"score_sense {self.score_sense!r}: expected one of "
                             f"{sorted(SCORE_SENSES)}")

    @property
    def n_outputs(self) -> int:
        return 1

    @classmethod
    def from_conifer(cls, ensemble: dict, in_type: FixedType, out_type: FixedType,
                     score_sense: str = "genuine probability",
                     name: str = "forest") -> "FixedForest":
        """Codes of conifer's ensemble dictionary, cast as its C++ emulation casts them; a
        threshold outside the input type's range (the split would move on the input grid) is
        refused with its tree and node. A `<` split becomes `code <= c - 1` (c the cast
        threshold's code); the initial prediction's code is added to every leaf of the first
        tree (the same sum: the score type does not wrap)."""
        if ensemble.get("norm", 1) != 1 or len(ensemble["trees"][0]) != 1:
            raise ForestConversionError(
                f"{name}: conifer ensemble with norm {ensemble.get('norm')} and "
                f"{len(ensemble['trees'][0])} outputs per tree; the forest firmware takes one "
                "output and norm 1")
        strict = ensemble.get("splitting_convention", "<=") == "<"
        scale = 2.0 ** out_type.frac
        init = int(math.floor(ensemble.get("init_predict", [0.0])[0] * scale))
        trees = []
        for t, (tree,) in enumerate(ensemble["trees"]):
            feature = np.asarray(tree["feature"], dtype=np.int64)
            threshold = np.asarray(tree["threshold"], dtype=np.float64)
            split = feature != LEAF
            codes = np.zeros(feature.size, dtype=np.int64)
            raw = np.floor(threshold[split] * 2.0 ** in_type.frac)
            outside = ((raw < in_type.min_code + strict) | (raw > in_type.max_code))
            if outside.any():
                node = int(np.flatnonzero(split)[np.flatnonzero(outside)[0]])
                raise ForestConversionError(
                    f"{name}: tree {t} node {node}: threshold {threshold[node]:.6g} on input "
                    f"{int(feature[node])} lies outside {in_type} "
                    f"[{in_type.to_float(in_type.min_code)}, {in_type.to_float(in_type.max_code)}]:"
                    " the split would move on the input grid; give the inputs more integer bits")
            codes[split] = raw.astype(np.int64) - strict
            value = out_type.overflow_codes(
                np.floor(np.asarray(tree["value"], dtype=np.float64) * scale).astype(np.int64))
            value[split] = 0
            if t == 0:
                value[~split] += init
            trees.append({"feature": feature.tolist(), "threshold": codes.tolist(),
                          "left": list(tree["children_left"]), "right": list(tree["children_right"]),
                          "value": value.tolist()})
        return cls(int(ensemble["n_features"]), in_type, out_type, trees, score_sense)

    def comparisons(self) -> list[tuple[int, int]]:
        """The distinct (input, threshold code) pairs: each is one comparator in the RTL."""
        return sorted({(f, t) for tree in self.trees
                       for f, t in zip(tree["feature"], tree["threshold"]) if f != LEAF})

    def nodes(self) -> int:
        return sum(sum(1 for f in tree["feature"] if f != LEAF) for tree in self.trees)

    def max_depth(self) -> int:
        def depth(tree, node=0):
            if tree["feature"][node] == LEAF:
                return 0
            return 1 + max(depth(tree, tree["left"][node]), depth(tree, tree["right"][node]))
        return max(depth(tree) for tree in self.trees)

    def check_input_codes(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_inputs:
            raise ValueError(f"expected input codes of shape (rows, {self.n_inputs}), got {codes.shape}")
        t = self.input_type
        bad = (codes < t.min_code) | (codes > t.max_code)
        if bad.any():
            row, col = (int(i[0]) for i in np.nonzero(bad))
            raise ValueError(f"input code {codes[row, col]} (row {row}, input {col}) is outside {t}")
        return codes.astype(np.int64)

    def tree_values(self, codes: np.ndarray) -> np.ndarray:
        """Each tree's leaf value code for each row: (rows, trees)."""
        codes = self.check_input_codes(codes)
        rows = np.arange(codes.shape[0])
        out = np.empty((codes.shape[0], len(self.trees)), dtype=np.int64)
        for index, tree in enumerate(self.trees):
            feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
            left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
            node = np.zeros(codes.shape[0], dtype=np.int64)
            active = feature[node] != LEAF
            while active.any():
                at = node[active]
                goes_left = codes[rows[active], feature[at]] <= threshold[at]
                node[active] = np.where(goes_left, left[at], right[at])
                active = feature[node] != LEAF
            out[:, index] = np.asarray(tree["value"])[node]
        return out

    def forward(self, codes: np.ndarray) -> np.ndarray:
        """Output codes (rows, 1): the tree values summed in the score type."""
        return self.output_type.overflow_codes(self.tree_values(codes).sum(axis=1))[:, None]

    @property
    def sense(self) -> ScoreSense:
        return SCORE_SENSES[self.score_sense]

    def fraud_scores(self, output_codes: np.ndarray) -> np.ndarray:
        """The host's fraud probability from the firmware's output codes (1 - the mean genuine
        probability of a random forest, exact in float64; the sigmoid of a boosted forest's
        margin)."""
        return self.sense.probability(self.output_type.to_float(np.asarray(output_codes)[:, 0]))

    def to_dict(self) -> dict:
        return {"n_inputs": self.n_inputs, "input_type": str(self.input_type),
                "output_type": str(self.output_type), "score_sense": self.score_sense,
                "trees": self.trees}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, data: dict) -> "FixedForest":
        return cls(data["n_inputs"], FixedType.parse(data["input_type"]),
                   FixedType.parse(data["output_type"]), data["trees"], data["score_sense"])

    @classmethod
    def load(cls, path: Path) -> "FixedForest":
        return cls.from_dict(json.loads(Path(path).read_text()))


def threshold_vectors(forest: FixedForest, seed: int) -> np.ndarray:
    """Inputs at every threshold and one step either side: one row per (comparison, offset),
    the compared input at threshold + offset, the others random codes."""
    rng = np.random.default_rng(seed)
    t = forest.input_type
    pairs = forest.comparisons()
    rows = rng.integers(t.min_code, t.max_code + 1, (3 * len(pairs), forest.n_inputs))
    for i, (feature, threshold) in enumerate(pairs):
        for k, offset in enumerate((-1, 0, 1)):
            rows[3 * i + k, feature] = np.clip(threshold + offset, t.min_code, t.max_code)
    return rows.astype(np.int64)
