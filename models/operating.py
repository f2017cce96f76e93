"""The operating threshold of a model: where its alerts start.

A model fitted without the validation window takes the threshold that gives
evaluation.target_fpr on the validation window (labels known, out of sample).

A model refitted on the whole training period has seen the validation window, so its own
validation scores would set a threshold in sample. Instead the selection fit (same settings,
without the validation window) gives the share of validation transactions alerted at the
target false-positive rate, and the refitted model's threshold alerts that same share of the
delay period's transactions: those between training and test, whose labels are not used.
"""

from __future__ import annotations

import numpy as np

from .metrics import threshold_at_fpr, threshold_at_share

VALIDATION = "target false-positive rate on the validation window"
DELAY_ALERT_RATE = ("the selection fit's alert rate at the target false-positive rate, set on "
                    "the delay period's unlabeled transactions")


def operating_point(valid_y, selection_valid_score, target_fpr: float,
                    delay_score: np.ndarray | None = None) -> dict:
    """The threshold, the rule that set it and the alert rate it came from."""
    threshold = threshold_at_fpr(valid_y, selection_valid_score, target_fpr)
    alert_rate = float(np.mean(np.asarray(selection_valid_score) > threshold))
    point = {"rule": VALIDATION, "target_fpr": target_fpr, "alert_rate": alert_rate,
             "threshold": threshold}
    if delay_score is None:
        return point
    return point | {"rule": DELAY_ALERT_RATE, "calibration_rows": int(len(delay_score)),
                    "threshold": threshold_at_share(np.asarray(delay_score), alert_rate)}


def same_rule(reference_point: dict, valid_y, valid_score, delay_score) -> dict:
    """The operating point of a model derived from another (the firmware of the QKeras model),
    set by the rule and alert rate of the model it was derived from."""
    if reference_point["rule"] == VALIDATION:
        return operating_point(valid_y, valid_score, reference_point["target_fpr"])
    return reference_point | {"threshold": threshold_at_share(np.asarray(delay_score),
                                                             reference_point["alert_rate"])}
