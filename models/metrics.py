"""Model-quality metrics: AUC ROC, Average Precision, Card Precision@k, operating point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudfpga.optional import NOT_AVAILABLE


def card_precision_at_k(day: np.ndarray, card: np.ndarray, label: np.ndarray,
                        score: np.ndarray, k: int = 100) -> float:
    """Mean over days of the fraction of frauds among the k highest-scored cards.

    Per day: cards detected on an earlier day (a fraud among that day's top k) are dropped,
    each card gets its maximum score and maximum label, cards are ranked by score.
    """
    frame = pd.DataFrame({"day": day, "card": card, "label": label, "score": score})
    detected: set = set()
    per_day = []
    for _, rows in frame.groupby("day", sort=True):
        rows = rows[~rows["card"].isin(detected)]
        cards = rows.groupby("card")[["score", "label"]].max()
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        hits = top.index[top["label"] == 1]
        per_day.append(len(hits) / k)
        detected.update(hits)
    return float(np.mean(per_day)) if per_day else float("nan")


def threshold_at_share(score: np.ndarray, share: float) -> float:
    """The smallest threshold above which (score > threshold) at most `share` of the scores lie."""
    ordered = np.sort(np.asarray(score))
    if ordered.size == 0:
        raise ValueError("no score to set a threshold on")
    allowed = int(np.floor(share * ordered.size))
    # Scores strictly above ordered[-allowed-1] are at most `allowed` rows.
    return float(ordered[ordered.size - allowed - 1])


def threshold_at_fpr(label: np.ndarray, score: np.ndarray, target_fpr: float) -> float:
    """The smallest threshold whose false-positive rate (score > threshold) is <= target."""
    genuine = np.asarray(score)[np.asarray(label) == 0]
    if genuine.size == 0:
        raise ValueError("no genuine transaction to set a false-positive rate on")
    return threshold_at_share(genuine, target_fpr)


def card_precision_missing(day: np.ndarray | None, card: np.ndarray | None) -> str | None:
    """Why Card Precision@k cannot be computed on this data, or None when it can."""
    absent = [name for name, values in (("card id", card), ("date", day)) if values is None]
    if not absent:
        return None
    return f"the data have no {' and no '.join(absent)} column; CP@k ranks cards per day"


def average_precision(label: np.ndarray, score: np.ndarray) -> float | None:
    """AP, or None where the labels hold one class (AP is undefined there)."""
    from sklearn.metrics import average_precision_score  # 0.9 s: not in every step's process

    label = np.asarray(label).astype(int)
    return float(average_precision_score(label, score)) if np.unique(label).size == 2 else None


def evaluate(label: np.ndarray, score: np.ndarray, threshold: float,
             day: np.ndarray | None = None, card: np.ndarray | None = None,
             top_k: int = 100) -> dict:
    """The metrics of one model's scores; a metric the data cannot give is None, with its
    reason under `not_available`."""
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

    label = np.asarray(label).astype(int)
    predicted = (np.asarray(score) > threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(label, predicted, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else None
    cp_key = f"card_precision_at_{top_k}"
    absent = {}
    if (why := card_precision_missing(day, card)) is not None:
        absent[cp_key] = why
    if np.unique(label).size < 2:
        one_class = f"the test set holds only {'frauds' if label.all() else 'genuine transactions'}"
        absent |= {key: one_class for key in ("auc_roc", "average_precision", cp_key)}
        if not tp + fn:
            absent["recall"] = one_class
    result = {
        "auc_roc": None if "auc_roc" in absent else float(roc_auc_score(label, score)),
        "average_precision": None if "average_precision" in absent
        else float(average_precision_score(label, score)),
        cp_key: None if cp_key in absent
        else float(card_precision_at_k(day, card, label, score, top_k)),
        "threshold": float(threshold),
        "precision": float(precision),
        "recall": None if recall is None else float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if recall and precision else 0.0,
        "false_positive_rate": float(fp / (fp + tn)) if fp + tn else 0.0,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
    if absent:
        result[NOT_AVAILABLE] = absent
    return result


# Rows of the metrics tables that are firmware (and the forest firmware's float forest), not
# tuned references.
FIRMWARE_ROWS = ("firmware", "forest_firmware", "forest_float", "imported_firmware",
                 "imported_library")


def strongest_reference(metrics: dict, key: str = "average_precision") -> str | None:
    """The reference with the highest test AP: the comparison least favourable to the
    networks (`metrics` as the train step writes it). References without the figure are
    left out."""
    references = [name for name in metrics["models"]
                  if name not in metrics["networks"] and name not in FIRMWARE_ROWS
                  and metrics["models"][name].get(key) is not None]
    return max(references, key=lambda n: metrics["models"][n][key]) if references else None


def format_table(rows: dict[str, dict], top_k: int = 100) -> str:
    """A plain-text table of the metrics of several models; an absent figure is "n/a", and the
    reasons follow the table."""
    cp = f"card_precision_at_{top_k}"
    header = f"{'model':<16} {'AUC ROC':>8} {'AP':>7} {f'CP@{top_k}':>7} {'thresh':>8} " \
             f"{'prec':>6} {'recall':>6} {'F1':>6} {'FPR':>6} {'TP':>5} {'FP':>6} {'FN':>5}"
    lines = [header, "-" * len(header)]
    reasons: dict[str, str] = {}
    for name, m in rows.items():
        c = m["confusion_matrix"]
        reasons |= m.get(NOT_AVAILABLE, {})

        def cell(key: str, spec: str) -> str:
            return "n/a" if m.get(key) is None else format(m[key], spec)

        lines.append(f"{name:<16} {cell('auc_roc', '.4f'):>8} {cell('average_precision', '.4f'):>7} "
                     f"{cell(cp, '.3f'):>7} {m['threshold']:>8.3f} {m['precision']:>6.3f} "
                     f"{cell('recall', '.3f'):>6} {m['f1']:>6.3f} {m['false_positive_rate']:>6.4f} "
                     f"{c['tp']:>5} {c['fp']:>6} {c['fn']:>5}")
    lines += [f"n/a {key.replace(f'card_precision_at_{top_k}', f'CP@{top_k}')}: {why}"
              for key, why in reasons.items()]
    return "\n".join(lines)
