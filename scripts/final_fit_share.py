"""The random forest's final fit on a share of the genuine rows (docs/models.md, "The random
forest's final fit at scale"): a run's chosen settings refitted on its whole training period with
every fraud and each given share of the genuine rows (weighted by the inverse share, as
`references.final_sample` draws them; 1 = every row), printing the fit time and the test AP.

    .venv/bin/python scripts/final_fit_share.py fpga_projects/ulb 1,0.5,0.2913 [settings.json]

settings.json: a file with the settings under "params" (default: the run's
models/references.json, its random forest's). One JSON line per share.
"""

import json
import sys
import time
from pathlib import Path

from sklearn.metrics import average_precision_score

from fraudfpga.config import load_config
from fraudfpga.models.dataset import PreparedData
from fraudfpga.models.references import reference
from fraudfpga.models.references.search import fit_final
from fraudfpga.models.train import TrainingData


def main(root: Path, shares: list[float], settings_file: Path | None) -> None:
    cfg = load_config(root / "config.yaml")
    chosen = json.loads((settings_file or root / "models/references.json").read_text())
    params = chosen["params"] if settings_file else chosen["random_forest"]["params"]
    split = TrainingData(PreparedData(root), cfg["train"]["refit"])
    forest = reference("random_forest")
    for share in shares:
        started = time.perf_counter()
        model = fit_final(forest, params, split.final_x, split.final_y, cfg["seed"],
                          cfg["references"], print, share)
        ap = average_precision_score(split.data.labels("test"), forest.score(model, split.x["test"]))
        print(json.dumps({"share": share, "rows_of": len(split.final_y), "params": params,
                          "test_ap": round(float(ap), 4),
                          "fit_s": round(time.perf_counter() - started, 1)}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), [float(s) for s in sys.argv[2].split(",")],
         Path(sys.argv[3]) if len(sys.argv) == 4 else None)
