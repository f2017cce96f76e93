"""The data and train steps."""

from __future__ import annotations

import json

from fraudfpga.optional import figure
from fraudfpga.registry import Step, register
from fraudfpga.schema import register_names_check
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (DATA_SUMMARY, FLOAT_MODEL, MODEL_METRICS, MODEL_SUMMARY, QKERAS_MODEL,
                        REFERENCE_MODELS, REFERENCE_SEARCH, SCALER, SPLIT_FILES, SPLIT_PARTS,
                        TEST_SCORES, VALID_SCORES)
from .references import known_references

DATA_FILES = (*SPLIT_FILES.values(), SCALER)
DATA_CODE = ("fraudfpga.models.artifacts", "fraudfpga.models.dataset", "fraudfpga.models.features",
             "fraudfpga.models.loaders", "fraudfpga.models.simulator", "fraudfpga.models.split",
             "fraudfpga.models.streaming")


def prepare_data(run: RunFolder, cfg, progress=print) -> None:
    from .dataset import check_extreme_values, load_frame, split_frame
    from .split import Scaler

    frame = load_frame(cfg, progress)
    split = split_frame(frame, cfg)
    features = frame.attrs["feature_columns"]
    scaler = Scaler.fit(split.train, features)
    check_extreme_values(split, scaler, cfg["data"]["max_abs_scaled"], frame.attrs["source"])
    for name in SPLIT_PARTS:
        with atomic_path(run.path(SPLIT_FILES[name])) as tmp:
            getattr(split, name).to_parquet(tmp, index=False)
    write_json(run.path(SCALER), scaler.to_dict())
    summary = {"source": cfg["data"]["source"], "rows": int(len(frame)),
               "frauds": int(frame["label"].sum()), "features": features,
               "split_mode": cfg["split"]["mode"], "split": split.summary(),
               **({"streaming": frame.attrs["streaming"]} if "streaming" in frame.attrs else {})}
    write_json(run.path(DATA_SUMMARY), summary)
    progress(f"[data] {len(features)} features: {', '.join(features)}")
    for name, part in summary["split"].items():
        progress(f"[data] {name:<5} {part['rows']:>8,} rows, {part['frauds']:>5,} frauds "
                 f"({part['fraud_rate']:.2%})")


def train_models(run: RunFolder, cfg, progress=print) -> None:
    import joblib
    import pandas as pd

    from .dataset import PreparedData
    from .network import model_summary
    from .train import NETWORKS, train_all

    data = PreparedData(run.root)
    trained = train_all(data, cfg, cfg["seed"], progress=progress)
    for name, path in (("qkeras", QKERAS_MODEL), ("float", FLOAT_MODEL)):
        with atomic_path(run.path(path)) as tmp:
            trained[name].model.save(tmp, save_format="h5")
    references = {name: t for name, t in trained.items() if name not in NETWORKS}
    with atomic_path(run.path(REFERENCE_MODELS)) as tmp:
        joblib.dump({name: t.model for name, t in references.items()}, tmp)
    write_json(run.path(REFERENCE_SEARCH), {name: t.record for name, t in references.items()})

    summaries = {"qkeras": model_summary(trained["qkeras"].model, cfg["model"]),
                 "float": model_summary(trained["float"].model, None)}
    write_json(run.path(MODEL_SUMMARY), {"models": summaries, "training": {
        name: trained[name].record for name in NETWORKS}})
    score_frame = pd.DataFrame({"label": data.labels("test"),
                                **{f"score_{k}": t.scores["test"] for k, t in trained.items()}})
    for column in ("day", "card", "TRANSACTION_ID"):
        values = data.column("test", column)
        if values is not None:
            score_frame[column] = values
    with atomic_path(run.path(TEST_SCORES)) as tmp:
        score_frame.to_parquet(tmp, index=False)
    with atomic_path(run.path(VALID_SCORES)) as tmp:  # fitted without this window: for stacking
        pd.DataFrame({"label": data.labels("valid"),
                      **{k: t.selection_valid_score for k, t in trained.items()}}).to_parquet(
            tmp, index=False)
    write_json(run.path(MODEL_METRICS), {
        "split": json.loads(run.path(DATA_SUMMARY).read_text())["split"],
        "test_period": data.test_period(),
        "protocol": PROTOCOLS[cfg["train"]["refit"]],
        "labels": {name: LABELS.get(name) or t.record["label"] for name, t in trained.items()},
        "networks": list(NETWORKS),
        "scores": "networks: logit; references: probability",
        "operating": {name: t.operating for name, t in trained.items()},
        "models": {name: t.metrics for name, t in trained.items()},
    })
    top_k = cfg["evaluation"]["top_k"]
    for name, t in trained.items():
        m = t.metrics
        progress(f"[train] {name:<14} test AP {figure(m, 'average_precision', '.4f')}  AUC ROC "
                 f"{figure(m, 'auc_roc', '.4f')}  CP@{top_k} "
                 f"{figure(m, f'card_precision_at_{top_k}', '.3f')}")


LABELS = {"qkeras": "QKeras", "float": "float twin"}
PROTOCOLS = {
    True: "settings chosen on the validation window (models fitted on the training days before "
          "it), then refitted on the whole training period",
    False: "fitted on the training days before the validation window; the validation window "
           "only chooses settings",
}


register_names_check("references.models", "tree reference", known_references)

register(Step(
    name="data", command="data",
    help="simulate (or load) transactions, compute features, split in time, fit the scaler",
    reads=("data", "split"), inputs=(), outputs=(*DATA_FILES, DATA_SUMMARY),
    body=prepare_data, code=DATA_CODE,
    external_inputs=lambda cfg: [cfg["data"]["path"]] if cfg["data"]["source"] != "simulator"
    else []))

register(Step(
    name="train", command="train",
    help="train the QKeras model, its float twin and the tuned tree references",
    reads=("seed", "model", "train", "references", "evaluation"),
    inputs=(*DATA_FILES, DATA_SUMMARY),
    outputs=(QKERAS_MODEL, FLOAT_MODEL, REFERENCE_MODELS, REFERENCE_SEARCH, MODEL_SUMMARY,
             TEST_SCORES, VALID_SCORES, MODEL_METRICS),
    body=train_models, code=("fraudfpga.models",)))
