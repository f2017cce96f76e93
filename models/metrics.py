"""Model-quality metrics: AUC ROC, Average Precision, Card Precision@k, operating point."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score


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


def evaluate(label: np.ndarray, score: np.ndarray, threshold: float,
             day: np.ndarray | None = None, card: np.ndarray | None = None,
             top_k: int = 100) -> dict:
    label = np.asarray(label).astype(int)
    predicted = (np.asarray(score) > threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(label, predicted, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    result = {
        "auc_roc": float(roc_auc_score(label, score)),
        "average_precision": float(average_precision_score(label, score)),
        f"card_precision_at_{top_k}": (float(card_precision_at_k(day, card, label, score, top_k))
                                       if day is not None and card is not None else None),
        "threshold": float(threshold),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "false_positive_rate": float(fp / (fp + tn)) if fp + tn else 0.0,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
    return result


def strongest_reference(metrics: dict, key: str = "average_precision") -> str | None:
    """The reference with the highest test AP: the comparison least favourable to the
    networks (`metrics` as the train step writes it)."""
    references = [name for name in metrics["models"]
                  if name not in metrics["networks"] and name != "firmware"]
    return max(references, key=lambda n: metrics["models"][n][key]) if references else None


def format_table(rows: dict[str, dict], top_k: int = 100) -> str:
    """A plain-text table of the metrics of several models."""
    cp = f"card_precision_at_{top_k}"
    header = f"{'model':<14} {'AUC ROC':>8} {'AP':>7} {f'CP@{top_k}':>7} {'thresh':>8} " \
             f"{'prec':>6} {'recall':>6} {'F1':>6} {'FPR':>6} {'TP':>5} {'FP':>6} {'FN':>5}"
    lines = [header, "-" * len(header)]
    for name, m in rows.items():
        c = m["confusion_matrix"]
        cp_text = f"{m[cp]:.3f}" if m.get(cp) is not None else "n/a"
        lines.append(f"{name:<14} {m['auc_roc']:>8.4f} {m['average_precision']:>7.4f} {cp_text:>7} "
                     f"{m['threshold']:>8.3f} {m['precision']:>6.3f} {m['recall']:>6.3f} "
                     f"{m['f1']:>6.3f} {m['false_positive_rate']:>6.4f} {c['tp']:>5} {c['fp']:>6} "
                     f"{c['fn']:>5}")
    return "\n".join(lines)
