"""The train step: QKeras model, float twin and gradient-boosted reference on one split."""

from __future__ import annotations

import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

from fraudfpga.kerasenv import keras, set_seeds

from .metrics import evaluate, threshold_at_fpr


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
                     progress):
    """Early stopping on validation Average Precision, restoring the best epoch's weights."""
    k = keras()

    class AveragePrecisionStopping(k.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best_ap, self.best_epoch, self.best_weights, self.history = -1.0, -1, None, []

        def on_epoch_end(self, epoch, logs=None):
            scores = self.model.predict(valid_x, batch_size=8192, verbose=0).ravel()
            ap = float(average_precision_score(valid_y, scores))
            self.history.append({"epoch": epoch + 1, "loss": float(logs["loss"]), "valid_ap": ap})
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


def fit_network(model, train_x, train_y, valid_x, valid_y, train_cfg: dict, seed: int,
                name: str, progress=print) -> dict:
    set_seeds(seed)
    k = keras()
    model.compile(optimizer=k.optimizers.Adam(train_cfg["learning_rate"]),
                  loss=k.losses.BinaryCrossentropy(from_logits=True))
    stopper = make_ap_callback(valid_x, valid_y, train_cfg["patience"], name, progress)
    started = time.perf_counter()
    model.fit(train_x, train_y.astype(np.float32), epochs=train_cfg["epochs"],
              batch_size=train_cfg["batch_size"], shuffle=True, verbose=0,
              class_weight=class_weights(train_y, train_cfg["class_weight"]), callbacks=[stopper])
    return {"best_epoch": stopper.best_epoch, "best_valid_ap": stopper.best_ap,
            "epochs_run": len(stopper.history), "history": stopper.history,
            "seconds": round(time.perf_counter() - started, 2)}


def fit_gbdt(train_x, train_y, gbdt_cfg: dict, seed: int) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(random_state=seed, **gbdt_cfg)
    return model.fit(train_x, train_y)


def score_network(model, x: np.ndarray) -> np.ndarray:
    return model.predict(x, batch_size=8192, verbose=0).ravel().astype(np.float64)


def score_gbdt(model, x: np.ndarray) -> np.ndarray:
    return model.predict_proba(x)[:, 1]


def model_metrics(valid_y, valid_score, test_y, test_score, day, card, eval_cfg: dict) -> dict:
    """Test-set metrics at the threshold giving the target false-positive rate on validation."""
    threshold = threshold_at_fpr(valid_y, valid_score, eval_cfg["target_fpr"])
    return evaluate(test_y, test_score, threshold, day, card, eval_cfg["top_k"])
