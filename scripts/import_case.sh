#!/bin/bash
# The import's measured cases (docs/import.md): a model trained outside the toolkit on a
# 60,000-row CSV with the ULB schema (29 features): 300 trees of depth 6 (XGBoost, or LightGBM
# with its default 31 leaves), or a Keras float network (Normalization, 29-32-16-1, ReLU,
# sigmoid); imported with 12-bit inputs, verified in cocotb on every test row and placed and
# routed on the LFE5U-85F.
#   scripts/import_case.sh xgboost|lightgbm|keras
# IMPORT_SETTINGS adds --set options to the import (default for keras: 8-bit weights, 12-bit
# layer outputs, the measured place-and-route case; "" keeps imported.weight_bits=12, data_bits=16).
# Run from the repository root after `make setup`; writes fpga_projects/import_<kind>/.
set -euo pipefail
KIND=${1:?usage: scripts/import_case.sh xgboost|lightgbm|keras}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-fpga_projects}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=import_$KIND
CSV=$OUT/import_300_trees.csv
case $KIND in xgboost) EXT=json ;; lightgbm) EXT=txt ;; keras) EXT=keras ;;
  *) echo "scripts/import_case.sh: unknown case $KIND (xgboost, lightgbm, keras)" >&2; exit 2 ;; esac
MODEL=$OUT/$RUN.$EXT
if [ "$KIND" = keras ]; then
  IMPORT_SETTINGS=${IMPORT_SETTINGS---set imported.weight_bits=8 --set imported.data_bits=12}
fi
D="--set data.source=ulb_csv --set data.path=$CSV --set split.mode=fraction"
$PY - "$CSV" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from realdata import write_ulb_like
write_ulb_like(Path(sys.argv[1]), rows=60000, fraud_rate=0.005, seed=3)
PY
$PY -m fraudfpga.cli data --run $RUN --projects-dir "$OUT" $D
$PY - "$OUT/$RUN/data" "$MODEL" "$KIND" <<'PY'
import json, sys, time
import pandas as pd
data, model_path, kind = sys.argv[1:4]
columns = json.load(open(f"{data}/summary.json"))["features"]
train = pd.concat([pd.read_parquet(f"{data}/train.parquet"), pd.read_parquet(f"{data}/valid.parquet")])
started = time.time()
if kind == "xgboost":
    import xgboost
    model = xgboost.XGBClassifier(n_estimators=300, max_depth=6, learning_rate=0.1,
                                  tree_method="hist", n_jobs=2).fit(train[columns], train["label"])
    model.save_model(model_path)  # JSON (by the file name's .json)
elif kind == "lightgbm":
    import lightgbm
    model = lightgbm.LGBMClassifier(n_estimators=300, max_depth=6, num_leaves=31,
                                    learning_rate=0.1, n_jobs=2,
                                    verbose=-1).fit(train[columns], train["label"])
    model.booster_.save_model(model_path)  # LightGBM's text format
else:
    import numpy as np
    import fraudfpga.kerasenv  # noqa: F401  (TensorFlow's settings before it is imported)
    import keras
    keras.utils.set_random_seed(0)
    x, y = train[columns].to_numpy(np.float32), train["label"].to_numpy()
    norm = keras.layers.Normalization()
    norm.adapt(x)
    model = keras.Sequential([keras.Input((len(columns),)), norm,
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    weight = {0: 1.0, 1: float(len(y) / max(y.sum(), 1)) ** 0.5}  # the imbalance, softened
    model.fit(x, y, epochs=20, batch_size=256, class_weight=weight, verbose=0)
    model.save(model_path)  # Keras 3's .keras archive
print(f"trained {kind} on {len(train):,} rows in {time.time() - started:.1f} s")
PY
$PY -m fraudfpga.cli step imported --run $RUN --projects-dir "$OUT" --reconfigure $D \
  --set imported.model="$MODEL" --set "firmware.families=[network,imported]" ${IMPORT_SETTINGS:-}
for step in imported_rtl imported_sim imported_pnr; do
  $PY -m fraudfpga.cli step $step --run $RUN --projects-dir "$OUT"
done
