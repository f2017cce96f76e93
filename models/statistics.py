"""Statistics over training seeds and a card-level bootstrap of the test period.

The bootstrap resamples cards (with all their transactions), not single transactions: a card's
transactions are not independent, and Card Precision@k ranks cards. One resample gives each card
a multiplicity; every metric is then computed with those weights, for every model and seed, and
averaged over the seeds, so an interval is the interval of the seed-mean. With every weight at
one, the weighted metrics equal `metrics.evaluate` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import card_precision_missing

METRICS = ("auc_roc", "average_precision", "card_precision", "precision", "recall",
           "false_positive_rate")


class RankedScores:
    """One model's test scores, sorted once: rows grouped by equal score, highest first."""

    def __init__(self, score: np.ndarray):
        score = np.asarray(score, dtype=np.float64)
        distinct, group = np.unique(-score, return_inverse=True)
        self.group = group.ravel()  # rank of each row's score among the distinct scores
        self.n_groups = distinct.size


def weighted_ap_auc(ranked: RankedScores, label: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Average Precision (as scikit-learn: sum of precision x recall steps over the distinct
    thresholds) and AUC ROC (trapezoids, ties counted half), with row weights."""
    tp = np.cumsum(np.bincount(ranked.group, weight * label, ranked.n_groups))
    fp = np.cumsum(np.bincount(ranked.group, weight * (1 - label), ranked.n_groups))
    positives, negatives = tp[-1], fp[-1]
    precision = tp / np.maximum(tp + fp, 1e-300)
    recall_step = np.diff(tp, prepend=0.0) / positives
    ap = float(np.sum(recall_step * precision))
    tpr = np.concatenate([[0.0], tp / positives])
    fpr = np.concatenate([[0.0], fp / negatives])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return ap, auc


def weighted_operating(alert: np.ndarray, label: np.ndarray, weight: np.ndarray) -> dict:
    tp = float(np.sum(weight * alert * label))
    fp = float(np.sum(weight * alert * (1 - label)))
    fn = float(np.sum(weight * (1 - alert) * label))
    tn = float(np.sum(weight * (1 - alert) * (1 - label)))
    return {"precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0}


@dataclass
class DayCards:
    card: np.ndarray   # card index (into the test period's cards), sorted
    score: np.ndarray  # the card's highest score that day
    label: np.ndarray  # 1 if any of its transactions that day is a fraud


def day_tables(day: np.ndarray, card_index: np.ndarray, label: np.ndarray,
               score: np.ndarray) -> list[DayCards]:
    tables = []
    for d in np.unique(day):
        rows = day == d
        cards, inverse = np.unique(card_index[rows], return_inverse=True)
        best = np.full(cards.size, -np.inf)
        np.maximum.at(best, inverse, score[rows])
        fraud = np.zeros(cards.size)
        np.maximum.at(fraud, inverse, label[rows].astype(np.float64))
        tables.append(DayCards(cards, best, fraud))
    return tables


def weighted_card_precision(tables: list[DayCards], card_weight: np.ndarray, k: int) -> float:
    """Card Precision@k (see `metrics.card_precision_at_k`) with each card present
    `card_weight` times."""
    detected = np.zeros(card_weight.size, dtype=bool)
    per_day = []
    for table in tables:
        keep = ~detected[table.card] & (card_weight[table.card] > 0)
        cards, score, fraud = table.card[keep], table.score[keep], table.label[keep]
        order = np.argsort(-score, kind="stable")
        copies = np.repeat(order, card_weight[cards[order]].astype(np.int64))[:k]
        per_day.append(float(fraud[copies].sum()) / k)
        detected[cards[copies[fraud[copies] == 1]]] = True
    return float(np.mean(per_day)) if per_day else float("nan")


class TestPeriod:
    """The test transactions and, per model and seed, the pre-sorted scores and the alerts.

    Without card ids each transaction is its own resampling unit and Card Precision@k is left
    out (`metric_names`, `not_available`)."""

    def __init__(self, label: np.ndarray, day: np.ndarray | None, card: np.ndarray | None,
                 top_k: int):
        self.label = np.asarray(label, dtype=np.float64)
        self.not_available = {}
        if (why := card_precision_missing(day, card)) is not None:
            self.not_available["card_precision"] = why
        self.unit = "transactions" if card is None else "cards"
        if card is None:
            card = np.arange(self.label.size)
        self.day = np.zeros(self.label.size, dtype=np.int64) if day is None else np.asarray(day)
        cards, self.card_index = np.unique(np.asarray(card), return_inverse=True)
        self.card_index = self.card_index.ravel()
        self.n_cards = cards.size
        self.top_k = top_k
        self.metric_names = tuple(m for m in METRICS if m not in self.not_available)

    def prepare(self, score: np.ndarray, threshold: float) -> dict:
        score = np.asarray(score, dtype=np.float64)
        prepared = {"ranked": RankedScores(score), "alert": (score > threshold).astype(np.float64)}
        if "card_precision" in self.metric_names:
            prepared["days"] = day_tables(self.day, self.card_index, self.label, score)
        return prepared

    def metrics(self, prepared: dict, card_weight: np.ndarray) -> dict:
        weight = card_weight[self.card_index]
        ap, auc = weighted_ap_auc(prepared["ranked"], self.label, weight)
        result = {"auc_roc": auc, "average_precision": ap,
                  **weighted_operating(prepared["alert"], self.label, weight)}
        if "days" in prepared:
            result["card_precision"] = weighted_card_precision(prepared["days"], card_weight,
                                                               self.top_k)
        return result


def bootstrap(period: TestPeriod, models: dict[str, list[dict]], resamples: int, seed: int,
              progress=print) -> dict[str, dict[str, np.ndarray]]:
    """Per model and metric, the seed-mean of each resample (`models`: per model, one
    `period.prepare(...)` per seed)."""
    rng = np.random.default_rng(seed)
    values = {name: {m: np.empty(resamples) for m in period.metric_names} for name in models}
    for b in range(resamples):
        card_weight = rng.multinomial(period.n_cards, np.full(period.n_cards, 1 / period.n_cards))
        card_weight = card_weight.astype(np.float64)
        for name, seeds in models.items():
            per_seed = [period.metrics(prepared, card_weight) for prepared in seeds]
            for metric in period.metric_names:
                values[name][metric][b] = np.mean([m[metric] for m in per_seed])
        if (b + 1) % max(resamples // 5, 1) == 0:
            progress(f"[quality] bootstrap {b + 1}/{resamples}")
    return values


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return float(low), float(high)
