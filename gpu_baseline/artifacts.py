"""Files the baseline step writes in the run folder."""

BASELINE = "baseline/results.json"
