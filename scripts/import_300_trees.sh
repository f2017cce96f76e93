#!/bin/bash
# The import's measured cases (docs/import.md): a model of 300 trees of depth 6 (XGBoost, or
# LightGBM with its default 31 leaves), trained outside the toolkit on a 60,000-row CSV with the ULB schema
# (29 features), imported with 12-bit inputs, verified in cocotb on every test row and placed
# and routed on the LFE5U-85F.
#   scripts/import_300_trees.sh xgboost|lightgbm
# Run from the repository root after `make setup`; writes fpga_projects/import_<kind>/.
set -euo pipefail
KIND=${1:?usage: scripts/import_300_trees.sh xgboost|lightgbm}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-fpga_projects}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=import_$KIND
CSV=$OUT/import_300_trees.csv
MODEL=$OUT/$RUN.$([ "$KIND" = xgboost ] && echo json || echo txt)
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
else:
    import lightgbm
    model = lightgbm.LGBMClassifier(n_estimators=300, max_depth=6, num_leaves=31,
                                    learning_rate=0.1, n_jobs=2,
                                    verbose=-1).fit(train[columns], train["label"])
    model.booster_.save_model(model_path)  # LightGBM's text format
print(f"trained 300 {kind} trees on {len(train):,} rows in {time.time() - started:.1f} s")
PY
$PY -m fraudfpga.cli step imported --run $RUN --projects-dir "$OUT" --reconfigure $D \
  --set imported.model="$MODEL" --set "firmware.families=[network,imported]"
for step in imported_rtl imported_sim imported_pnr; do
  $PY -m fraudfpga.cli step $step --run $RUN --projects-dir "$OUT"
done
