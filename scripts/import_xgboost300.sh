#!/bin/bash
# The import's measured case (docs/import.md): an XGBoost model of 300 trees, depth 6, trained
# outside the toolkit on a 60,000-row CSV with the ULB schema (29 features), imported with
# 12-bit inputs, verified in cocotb on every test row and placed and routed on the LFE5U-85F.
# Run from the repository root after `make setup`; writes fpga_projects/import_xgboost300/.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-fpga_projects}
CSV=$OUT/import_xgboost300.csv
MODEL=$OUT/import_xgboost300.json
D="--set data.source=ulb_csv --set data.path=$PWD/$CSV --set split.mode=fraction"
$PY - "$CSV" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from realdata import write_ulb_like
write_ulb_like(Path(sys.argv[1]), rows=60000, fraud_rate=0.005, seed=3)
PY
$PY -m fraudfpga.cli data --run import_xgboost300 --projects-dir "$OUT" $D
$PY - "$OUT/import_xgboost300/data" "$MODEL" <<'PY'
import json, sys, time
import pandas as pd, xgboost
data, model_path = sys.argv[1], sys.argv[2]
columns = json.load(open(f"{data}/summary.json"))["features"]
train = pd.concat([pd.read_parquet(f"{data}/train.parquet"), pd.read_parquet(f"{data}/valid.parquet")])
started = time.time()
model = xgboost.XGBClassifier(n_estimators=300, max_depth=6, learning_rate=0.1, tree_method="hist", n_jobs=2)
model.fit(train[columns], train["label"])
model.save_model(model_path)
print(f"trained 300 trees, depth 6, on {len(train):,} rows in {time.time() - started:.1f} s")
PY
$PY -m fraudfpga.cli step imported --run import_xgboost300 --projects-dir "$OUT" --reconfigure $D \
  --set imported.model="$PWD/$MODEL" --set "firmware.families=[network,imported]"
for step in imported_rtl imported_sim imported_pnr; do
  $PY -m fraudfpga.cli step $step --run import_xgboost300 --projects-dir "$OUT"
done
