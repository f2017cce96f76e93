"""The data, train (the networks) and references steps."""

from __future__ import annotations

import json

from fraudfpga.optional import figure
from fraudfpga.registry import Step, register
from fraudfpga.schema import register_names_check
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (DATA_SUMMARY, FLOAT_MODEL, MODEL_METRICS, MODEL_SUMMARY, NETWORK_METRICS,
                        NETWORK_TEST_SCORES, NETWORK_VALID_SCORES, QKERAS_MODEL, REFERENCE_MODELS,
                        REFERENCE_SEARCH, SCALER, SPLIT_FILES, SPLIT_PARTS, TEST_SCORES,
                        VALID_SCORES)
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


def _score_frames(data, trained: dict) -> tuple:
    """The test-set scores (with the columns the report groups by) and the validation scores
    of the selection fits, one column per model."""
    import pandas as pd

    test = pd.DataFrame({"label": data.labels("test"),
                         **{f"score_{k}": t.scores["test"] for k, t in trained.items()}})
    for column in ("day", "card", "TRANSACTION_ID"):
        values = data.column("test", column)
        if values is not None:
            test[column] = values
    valid = pd.DataFrame({"label": data.labels("valid"),
                          **{k: t.selection_valid_score for k, t in trained.items()}})
    return test, valid


def _metrics(data, trained: dict, cfg, run: RunFolder) -> dict:
    return {
        "split": json.loads(run.path(DATA_SUMMARY).read_text())["split"],
        "test_period": data.test_period(),
        "protocol": PROTOCOLS[cfg["train"]["refit"]],
        "labels": {name: LABELS.get(name) or t.record["label"] for name, t in trained.items()},
        "operating": {name: t.operating for name, t in trained.items()},
        "models": {name: t.metrics for name, t in trained.items()},
    }


def _print_metrics(trained: dict, top_k: int, progress) -> None:
    for name, t in trained.items():
        m = t.metrics
        progress(f"[train] {name:<14} test AP {figure(m, 'average_precision', '.4f')}  AUC ROC "
                 f"{figure(m, 'auc_roc', '.4f')}  CP@{top_k} "
                 f"{figure(m, f'card_precision_at_{top_k}', '.3f')}")


def train_network_models(run: RunFolder, cfg, progress=print) -> None:
    """The networks alone, so that the network's firmware (and its place and route, the
    longest step) starts while the references are still being searched."""
    from .dataset import PreparedData
    from .network import model_summary
    from .train import train_networks

    data = PreparedData(run.root)
    trained = train_networks(data, cfg, cfg["seed"], progress=progress)
    for name, path in (("qkeras", QKERAS_MODEL), ("float", FLOAT_MODEL)):
        with atomic_path(run.path(path)) as tmp:
            trained[name].model.save(tmp, save_format="h5")
    summaries = {"qkeras": model_summary(trained["qkeras"].model, cfg["model"]),
                 "float": model_summary(trained["float"].model, None)}
    write_json(run.path(MODEL_SUMMARY), {"models": summaries, "training": {
        name: t.record for name, t in trained.items()}})
    test, valid = _score_frames(data, trained)
    for frame, path in ((test, NETWORK_TEST_SCORES), (valid, NETWORK_VALID_SCORES)):
        with atomic_path(run.path(path)) as tmp:
            frame.to_parquet(tmp, index=False)
    write_json(run.path(NETWORK_METRICS), _metrics(data, trained, cfg, run))
    _print_metrics(trained, cfg["evaluation"]["top_k"], progress)


def train_reference_models(run: RunFolder, cfg, progress=print) -> None:
    """The tuned tree references; then every model's scores and metrics in one place (networks
    first), which the report and the steps comparing models read."""
    import joblib
    import pandas as pd

    from .dataset import PreparedData
    from .train import NETWORKS, train_references

    data = PreparedData(run.root)
    references = train_references(data, cfg, cfg["seed"], progress=progress)
    with atomic_path(run.path(REFERENCE_MODELS)) as tmp:
        joblib.dump({name: t.model for name, t in references.items()}, tmp)
    write_json(run.path(REFERENCE_SEARCH), {name: t.record for name, t in references.items()})

    test, valid = _score_frames(data, references)
    networks = json.loads(run.path(NETWORK_METRICS).read_text())
    for frame, networks_path, path in ((test, NETWORK_TEST_SCORES, TEST_SCORES),
                                       (valid, NETWORK_VALID_SCORES, VALID_SCORES)):
        combined = pd.read_parquet(run.path(networks_path))
        for column in [c for c in frame.columns if c not in combined.columns]:
            combined[column] = frame[column].to_numpy()
        with atomic_path(run.path(path)) as tmp:
            combined.to_parquet(tmp, index=False)
    metrics = _metrics(data, references, cfg, run)
    write_json(run.path(MODEL_METRICS), {
        **metrics, "networks": list(NETWORKS), "scores": "networks: logit; references: probability",
        **{key: {**networks[key], **metrics[key]} for key in ("labels", "operating", "models")},
    })
    _print_metrics(references, cfg["evaluation"]["top_k"], progress)


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
    help="train the QKeras model and its float twin",
    reads=("seed", "model", "train", "evaluation"),
    inputs=(*DATA_FILES, DATA_SUMMARY),
    outputs=(QKERAS_MODEL, FLOAT_MODEL, MODEL_SUMMARY, NETWORK_TEST_SCORES, NETWORK_VALID_SCORES,
             NETWORK_METRICS),
    body=train_network_models, code=("fraudfpga.models",)))

register(Step(
    name="references", command="train",
    help="search and fit the tree references; every model's test scores and metrics",
    reads=("seed", "train.refit", "references", "evaluation"),
    inputs=(*DATA_FILES, DATA_SUMMARY, NETWORK_TEST_SCORES, NETWORK_VALID_SCORES, NETWORK_METRICS),
    outputs=(REFERENCE_MODELS, REFERENCE_SEARCH, TEST_SCORES, VALID_SCORES, MODEL_METRICS),
    body=train_reference_models, code=("fraudfpga.models",),
    # Beside the network's firmware, whose place and route (the longest step) keeps a core.
    background=True, niceness=5))
