"""The data and train steps."""

from __future__ import annotations

import json

from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (DATA_SUMMARY, FLOAT_MODEL, GBDT_MODEL, MODEL_METRICS, MODEL_SUMMARY,
                        QKERAS_MODEL, SCALER, SPLIT_FILES, SPLIT_PARTS, TEST_SCORES)

DATA_FILES = (*SPLIT_FILES.values(), SCALER)


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
               "split_mode": cfg["split"]["mode"], "split": split.summary()}
    write_json(run.path(DATA_SUMMARY), summary)
    progress(f"[data] {len(features)} features: {', '.join(features)}")
    for name, part in summary["split"].items():
        progress(f"[data] {name:<5} {part['rows']:>8,} rows, {part['frauds']:>5,} frauds "
                 f"({part['fraud_rate']:.2%})")


def train_models(run: RunFolder, cfg, progress=print) -> None:
    import joblib
    import pandas as pd

    from fraudfpga.kerasenv import set_seeds

    from .dataset import PreparedData
    from .network import build_float_model, build_qkeras_model, model_summary
    from .train import fit_gbdt, fit_network, model_metrics, score_gbdt, score_network

    data = PreparedData(run.root)
    train_x, train_y = data.inputs("train"), data.labels("train")
    valid_x, valid_y = data.inputs("valid"), data.labels("valid")
    test_x, test_y = data.inputs("test"), data.labels("test")
    day, card = data.column("test", "day"), data.column("test", "card")
    n_inputs = train_x.shape[1]
    seed, evaluation = cfg["seed"], cfg["evaluation"]

    builders = {"qkeras": (build_qkeras_model, QKERAS_MODEL),
                "float": (build_float_model, FLOAT_MODEL)}
    networks, training, metrics, scores = {}, {}, {}, {}
    for name, (build, path) in builders.items():
        set_seeds(seed)  # the initial weights depend on it
        model = networks[name] = build(n_inputs, cfg["model"])
        progress(f"[train] {name}: {model.count_params()} parameters, "
                 f"{len(train_y):,} training rows")
        training[name] = fit_network(model, train_x, train_y, valid_x, valid_y, cfg["train"],
                                     seed, name, progress)
        valid_score, scores[name] = score_network(model, valid_x), score_network(model, test_x)
        metrics[name] = model_metrics(valid_y, valid_score, test_y, scores[name], day, card,
                                      evaluation)
        with atomic_path(run.path(path)) as tmp:
            model.save(tmp, save_format="h5")
    progress("[train] gbdt: HistGradientBoosting")
    gbdt = fit_gbdt(train_x, train_y, cfg["gbdt"], seed)
    scores["gbdt"] = score_gbdt(gbdt, test_x)
    metrics["gbdt"] = model_metrics(valid_y, score_gbdt(gbdt, valid_x), test_y, scores["gbdt"],
                                    day, card, evaluation)
    with atomic_path(run.path(GBDT_MODEL)) as tmp:
        joblib.dump(gbdt, tmp)

    summaries = {"qkeras": model_summary(networks["qkeras"], cfg["model"]),
                 "float": model_summary(networks["float"], None)}
    write_json(run.path(MODEL_SUMMARY), {"models": summaries, "training": training})
    score_frame = pd.DataFrame({"label": test_y, **{f"score_{k}": v for k, v in scores.items()}})
    for column in ("day", "card", "TRANSACTION_ID"):
        values = data.column("test", column)
        if values is not None:
            score_frame[column] = values
    with atomic_path(run.path(TEST_SCORES)) as tmp:
        score_frame.to_parquet(tmp, index=False)
    write_json(run.path(MODEL_METRICS), {
        "split": json.loads(run.path(DATA_SUMMARY).read_text())["split"],
        "test_period": data.test_period(),
        "operating_point": f"threshold at {evaluation['target_fpr']:.2%} false-positive "
                           "rate on the validation window",
        "scores": "networks: logit; gbdt: probability",
        "models": metrics,
    })


register(Step(
    name="data", command="data",
    help="simulate (or load) transactions, compute features, split in time, fit the scaler",
    reads=("seed", "data", "split"), inputs=(), outputs=(*DATA_FILES, DATA_SUMMARY),
    body=prepare_data, code=("fraudfpga.models",),
    external_inputs=lambda cfg: [cfg["data"]["path"]] if cfg["data"]["source"] != "simulator"
    else []))

register(Step(
    name="train", command="train",
    help="train the QKeras model, its float twin and the gradient-boosted reference",
    reads=("seed", "model", "train", "gbdt", "evaluation"), inputs=(*DATA_FILES, DATA_SUMMARY),
    outputs=(QKERAS_MODEL, FLOAT_MODEL, GBDT_MODEL, MODEL_SUMMARY, TEST_SCORES, MODEL_METRICS),
    body=train_models, code=("fraudfpga.models",)))
