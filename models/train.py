"""Training of every model on one split: the QKeras network, its float twin and the tuned tree
references, each with its operating threshold and test-set metrics.

Protocol (train.refit, the default): settings (the networks' epoch count, the references'
parameters and round count) are chosen on the validation window with models fitted on the
training days before it; the chosen settings are then refitted on the whole training period.
`models/operating.py` says how the refitted models' thresholds are set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from fraudfpga.kerasenv import keras, set_seeds

from . import compression
from .dataset import PreparedData
from .loaders import DataError
from .metrics import evaluate
from .network import build_float_model, build_qkeras_model
from .operating import operating_point
from .references import reference
from .references.search import fit_final, search_rows, tune

NETWORKS = {"qkeras": build_qkeras_model, "float": build_float_model}


def class_weights(labels: np.ndarray, policy: str) -> dict[int, float] | None:
    ratio = float((labels == 0).sum()) / max(int((labels == 1).sum()), 1)
    if policy == "none":
        return None
    if policy == "balanced":
        return {0: 1.0, 1: ratio}
    if policy == "balanced_sqrt":
        return {0: 1.0, 1: float(np.sqrt(ratio))}
    raise ValueError(f"train.class_weight={policy!r}: expected none, balanced or balanced_sqrt")


def make_ap_callback(valid_x: np.ndarray, valid_y: np.ndarray, patience: int, name: str,
                     progress, first_epoch: int = 1):
    """Early stopping on validation Average Precision, restoring the best epoch's weights; the
    epochs before `first_epoch` (a pruning schedule still ramping up) are neither candidates
    nor counted towards the patience."""
    k = keras()

    class AveragePrecisionStopping(k.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best_ap, self.best_epoch, self.best_weights, self.history = -1.0, -1, None, []

        def on_epoch_end(self, epoch, logs=None):
            scores = self.model.predict(valid_x, batch_size=8192, verbose=0).ravel()
            ap = float(average_precision_score(valid_y, scores))
            self.history.append({"epoch": epoch + 1, "loss": float(logs["loss"]), "valid_ap": ap})
            if epoch + 1 < first_epoch:
                progress(f"[train] {name} epoch {epoch + 1:>3} loss {logs['loss']:.4f} "
                         f"valid AP {ap:.4f} (pruning until epoch {first_epoch})")
                return
            if ap > self.best_ap:
                self.best_ap, self.best_epoch = ap, epoch + 1
                self.best_weights = self.model.get_weights()
            progress(f"[train] {name} epoch {epoch + 1:>3} loss {logs['loss']:.4f} "
                     f"valid AP {ap:.4f} (best {self.best_ap:.4f} @ {self.best_epoch})")
            if epoch + 1 - self.best_epoch >= patience:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return AveragePrecisionStopping()


def _fit(model, x, y, epochs: int, train_cfg: dict, seed: int, callbacks=(), targets=None):
    """Fit on `targets` (default: the labels `y`); class weights follow the labels."""
    set_seeds(seed)
    k = keras()
    model.compile(optimizer=k.optimizers.Adam(train_cfg["learning_rate"]),
                  loss=k.losses.BinaryCrossentropy(from_logits=True))
    weights = class_weights(y, train_cfg["class_weight"])
    model.fit(x, (y if targets is None else targets).astype(np.float32), epochs=epochs,
              batch_size=train_cfg["batch_size"], shuffle=True, verbose=0,
              sample_weight=None if weights is None else np.where(y == 1, weights[1], weights[0]),
              callbacks=list(callbacks))


class Compression:
    """How one network is trained smaller (models/compression.py): pruning and distillation."""

    def __init__(self, train_cfg: dict, applies: bool):
        self.sparsity = train_cfg["prune_sparsity"] if applies else 0.0
        self.distill = train_cfg["distill_weight"] if applies else 0.0
        self.epochs = train_cfg["epochs"]
        self.batch_size = train_cfg["batch_size"]

    def first_epoch(self) -> int:
        return compression.prune_epochs(self.epochs) if self.sparsity else 1

    def fit(self, model, x, y, epochs: int, train_cfg: dict, seed: int, callbacks=(),
            targets=None):
        """Fit (pruned when asked) and return the plain model."""
        if not self.sparsity:
            _fit(model, x, y, epochs, train_cfg, seed, callbacks, targets)
            return model
        steps = -(-len(y) // self.batch_size)
        pruned, step = compression.with_pruning(model, self.sparsity, self.epochs, steps)
        _fit(pruned, x, y, epochs, train_cfg, seed, [step, *callbacks], targets)
        return compression.strip_pruning(pruned)


def fit_network(model, train_x, train_y, valid_x, valid_y, train_cfg: dict, seed: int,
                name: str, progress=print, compress: Compression | None = None,
                targets=None):
    """Fit with early stopping on validation AP; the best epoch's weights are kept. Returns
    the fitted model and its record."""
    compress = compress or Compression(train_cfg, False)
    stopper = make_ap_callback(valid_x, valid_y, train_cfg["patience"], name, progress,
                               compress.first_epoch())
    started = time.perf_counter()
    model = compress.fit(model, train_x, train_y, train_cfg["epochs"], train_cfg, seed, [stopper],
                         targets)
    return model, {"best_epoch": stopper.best_epoch, "best_valid_ap": stopper.best_ap,
                   "epochs_run": len(stopper.history), "history": stopper.history,
                   "rows": int(len(train_y)), "seconds": round(time.perf_counter() - started, 2)}


def score_network(model, x: np.ndarray) -> np.ndarray:
    return model.predict(x, batch_size=8192, verbose=0).ravel().astype(np.float64)


@dataclass
class Trained:
    """One model: the final fit, its scores, how it was chosen and its operating point."""
    model: Any
    record: dict
    scores: dict[str, np.ndarray]          # part -> scores of the final fit
    selection_valid_score: np.ndarray      # validation scores of the fit without that window
    operating: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


class TrainingData:
    """The split as arrays: fit (before the validation window), valid, delay, test, and the
    whole training period for refits."""

    def __init__(self, data: PreparedData, refit: bool):
        self.data = data
        self.x = {part: data.inputs(part) for part in ("train", "valid", "delay", "test")}
        self.y = {part: data.labels(part) for part in ("train", "valid")}
        self.refit = refit
        if refit and len(self.x["delay"]) == 0:
            raise DataError(
                "train.refit=true needs unlabeled transactions between the training period and "
                "the test to set the refitted models' operating threshold (book mode with "
                "split.delay_days >= 1); this split has none: set train.refit=false")
        if refit:
            self.final_x = np.concatenate([self.x["train"], self.x["valid"]])
            self.final_y = np.concatenate([self.y["train"], self.y["valid"]])
        else:
            self.final_x, self.final_y = self.x["train"], self.y["train"]

    def score_parts(self, score) -> dict[str, np.ndarray]:
        parts = ("valid", "delay", "test") if self.refit else ("valid", "test")
        return {part: np.asarray(score(self.x[part]), dtype=np.float64) for part in parts}

    def finish(self, trained: Trained, eval_cfg: dict) -> Trained:
        """Operating point and test metrics of a trained model."""
        trained.operating = operating_point(self.y["valid"], trained.selection_valid_score,
                                            eval_cfg["target_fpr"],
                                            trained.scores.get("delay") if self.refit else None)
        trained.metrics = evaluate(self.data.labels("test"), trained.scores["test"],
                                   trained.operating["threshold"], self.data.column("test", "day"),
                                   self.data.column("test", "card"), eval_cfg["top_k"])
        return trained


def _teacher_targets(split: TrainingData, cfg, seed: int, progress) -> tuple[dict, tuple]:
    """Distillation targets: a float teacher (train.teacher_hidden) fitted like the networks;
    its probabilities on the selection fit's rows and, after its own refit, on the whole
    training period, mixed with the labels."""
    teacher_cfg = {**cfg["model"], "hidden": cfg["train"]["teacher_hidden"]}
    weight = cfg["train"]["distill_weight"]
    fitted = _train_selection_and_final(build_float_model, teacher_cfg, split, cfg["train"], seed,
                                        "teacher", progress, Compression(cfg["train"], False))
    teacher, record, selection = fitted
    probability = lambda m, x: 1 / (1 + np.exp(-score_network(m, x)))  # noqa: E731
    fit_targets = compression.soft_targets(split.y["train"], probability(selection, split.x["train"]),
                                           weight)
    final_targets = compression.soft_targets(split.final_y, probability(teacher, split.final_x),
                                             weight)
    return ({"hidden": teacher_cfg["hidden"], "parameters": int(teacher.count_params()),
             "best_valid_ap": record["best_valid_ap"], "best_epoch": record["best_epoch"]},
            (fit_targets, final_targets))


def _train_selection_and_final(build, model_cfg: dict, split: TrainingData, train_cfg: dict,
                               seed: int, name: str, progress, compress: Compression,
                               targets: tuple | None = None):
    """The selection fit (early stopping on the validation window) and, with refit, the final
    fit on the whole training period for the chosen epoch count. Returns (final model, record,
    selection model)."""
    n_inputs = split.x["train"].shape[1]
    set_seeds(seed)  # the initial weights depend on it
    model = build(n_inputs, model_cfg)
    progress(f"[train] {name}: {model.count_params()} parameters, {len(split.y['train']):,} "
             f"rows before the validation window")
    fit_targets, final_targets = targets or (None, None)
    selection, record = fit_network(model, split.x["train"], split.y["train"], split.x["valid"],
                                    split.y["valid"], train_cfg, seed, name, progress, compress,
                                    fit_targets)
    model = selection
    if split.refit:
        started = time.perf_counter()
        set_seeds(seed)
        model = compress.fit(build(n_inputs, model_cfg), split.final_x, split.final_y,
                             record["best_epoch"], train_cfg, seed, targets=final_targets)
        record["refit"] = {"epochs": record["best_epoch"], "rows": int(len(split.final_y)),
                           "seconds": round(time.perf_counter() - started, 2)}
        progress(f"[train] {name}: refitted on the whole training period "
                 f"({len(split.final_y):,} rows, {record['best_epoch']} epochs)")
    return model, record, selection


def train_network(name: str, split: TrainingData, cfg, seed: int, progress=print) -> Trained:
    """One network; the QKeras one (the firmware) is pruned and distilled as configured."""
    train_cfg = cfg["train"]
    compress = Compression(train_cfg, applies=name == "qkeras")
    teacher, targets = (_teacher_targets(split, cfg, seed, progress) if compress.distill
                        else (None, None))
    model, record, selection = _train_selection_and_final(
        NETWORKS[name], cfg["model"], split, train_cfg, seed, name, progress, compress, targets)
    if name == "qkeras":
        record["compression"] = {
            "prune_sparsity": compress.sparsity, "distill_weight": compress.distill,
            "teacher": teacher, "kernel_sparsity": compression.kernel_sparsity(model)}
    return Trained(model, record, split.score_parts(lambda x: score_network(model, x)),
                   score_network(selection, split.x["valid"]))


def train_reference(name: str, split: TrainingData, settings: dict, seed: int,
                    params: dict | None = None, progress=print) -> Trained:
    """Tune (or, given `params` from an earlier search, only fit) and refit one reference."""
    ref = reference(name)
    if params is None:
        search = tune(ref, split.x["train"], split.y["train"], split.x["valid"], split.y["valid"],
                      settings, seed, progress)
        selection = search.pop("selection_model")
    else:  # fitted on the rows a search trial of these settings fitted on
        rows = search_rows(split.x["train"], split.y["train"], settings["search_rows"], seed)
        selection, _ = ref.fit(params, rows.x, rows.y, seed, settings, weight=rows.weight)
        search = {"params": params, "reused": True}
    selection_valid_score = np.asarray(ref.score(selection, split.x["valid"]), np.float64)
    model = fit_final(ref, search["params"], split.final_x, split.final_y, seed, settings, progress)
    return Trained(model, {"label": ref.label, **search, "final_rows": int(len(split.final_y))},
                   split.score_parts(lambda x: ref.score(model, x)), selection_valid_score)


def train_networks(data: PreparedData, cfg, seed: int, progress=print) -> dict[str, Trained]:
    """The QKeras network and its float twin, each with its operating point and test metrics."""
    split = TrainingData(data, cfg["train"]["refit"])
    trained = {name: train_network(name, split, cfg, seed, progress) for name in NETWORKS}
    for model in trained.values():
        split.finish(model, cfg["evaluation"])
    return trained


def train_references(data: PreparedData, cfg, seed: int, reference_params: dict | None = None,
                     progress=print) -> dict[str, Trained]:
    """The tuned tree references (references.models), each with its operating point and test
    metrics; `reference_params` (from an earlier search) skips their searches."""
    split = TrainingData(data, cfg["train"]["refit"])
    trained = {}
    for name in cfg["references"]["models"]:
        progress(f"[train] {name}: {'fitting the searched settings' if reference_params else 'tuning'}"
                 f" on {len(split.y['train']):,} rows, validation AP")
        trained[name] = train_reference(name, split, cfg["references"], seed,
                                        (reference_params or {}).get(name), progress)
    for model in trained.values():
        split.finish(model, cfg["evaluation"])
    return trained


def train_all(data: PreparedData, cfg, seed: int, reference_params: dict | None = None,
              progress=print) -> dict[str, Trained]:
    """Every model of the run, in report order: networks first, then the references."""
    return {**train_networks(data, cfg, seed, progress),
            **train_references(data, cfg, seed, reference_params, progress)}
