"""The random-forest reference's final fit (models/references/random_forest.py) with given
settings on a run's whole training period, for each number of split bins and seed asked for:
fit time and test AP, one JSON line each (docs/models.md, "The random forest").

    .venv/bin/python scripts/histogram_forest.py fpga_projects/ulb 256,8192 [0,1] [settings.json]

settings.json: a file with the settings under "params" or under "random_forest" → "params"
(default: the run's models/references.json, its random forest's).
"""

import json
import sys
import time
from pathlib import Path

from sklearn.metrics import average_precision_score

from fraudfpga.config import load_config
from fraudfpga.models.artifacts import REFERENCE_SEARCH
from fraudfpga.models.dataset import PreparedData
from fraudfpga.models.references import reference
from fraudfpga.models.train import TrainingData


def main(run: Path, bins: list[int], seeds: list[int], settings_file: Path | None) -> None:
    cfg = load_config(run / "config.yaml")
    chosen = json.loads((settings_file or run / REFERENCE_SEARCH).read_text())
    params = chosen["params"] if "params" in chosen else chosen["random_forest"]["params"]
    forest = reference("random_forest")
    split = TrainingData(PreparedData(run), cfg["train"]["refit"])
    test_labels = split.data.labels("test")
    for count in bins:
        settings = dict(cfg["references"], forest_bins=count)
        for seed in seeds:
            started = time.perf_counter()
            model, _ = forest.fit(forest.final(params, settings), split.final_x, split.final_y,
                                  seed, settings)
            seconds = time.perf_counter() - started
            ap = average_precision_score(test_labels, forest.score(model, split.x["test"]))
            print(json.dumps({"bins": count, "seed": seed, "rows": int(len(split.final_y)),
                              "fit_s": round(seconds, 1), "test_ap": round(float(ap), 4)}),
                  flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [int(b) for b in sys.argv[2].split(",")],
         [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0],
         Path(sys.argv[4]) if len(sys.argv) > 4 else None)
