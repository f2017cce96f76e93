"""The report's section on transaction to decision: the time from a raw transaction (card,
terminal, time, amount) to the decision, the card and terminal windows included, where a run
computed its features with the streaming engine (`make decision`). Measured figures beside cited
anchors, each labelled as what it is."""

from __future__ import annotations

from fraudfpga.gpu_baseline.artifacts import TRANSACTION_DECISION
from fraudfpga.runfolder import RunFolder

from .common import load

INPUTS = (TRANSACTION_DECISION,)
TITLE = "Transaction to decision"
# Cited, not measured here (issue 30's sources): an online feature store's lookup of the card's
# and the terminal's windows, and a GPU's batch-1 floor.
ANCHORS = (
    ("online feature store lookup (Feast + Redis)", "under 1.5 ms p99 (Feast's own benchmark); "
     "2-5 ms p99 (its tuning guides)", "cited, not measured here"),
    ("GPU batch-1 floor (empty kernel launch + synchronise)", "7.2 us on a V100, 9.7 us on an "
     "A100 (CSCS ReFrame reference values)", "cited, not measured here"),
)


def section(run: RunFolder, forest_fpga: dict | None) -> list[tuple]:
    if TRANSACTION_DECISION not in run.optional_inputs:
        why = run.stale_inputs.get(TRANSACTION_DECISION)
        return [(TITLE, [f"Left out: {TRANSACTION_DECISION} {why}"], None, None)] if why else []
    m = load(run, TRANSACTION_DECISION)
    total, engine, model = m["transaction_to_decision"], m["engine"], m["model"]
    rows = [
        [f"CPU ({m['machine']}): streaming engine + forest in ONNX Runtime, batch 1",
         f"p50 {total['p50_us']:.1f} us, p99 {total['p99_us']:.1f} us "
         f"(engine p50 {engine['p50_us']:.1f} us, input preparation p50 "
         f"{m['input_preparation']['p50_us']:.1f} us, model p50 {model['p50_us']:.1f} us); "
         f"{m['transactions_per_s']:,.0f} transactions/s in one thread", m["kind"]],
        ["FPGA: feature engine + forest",
         "not built yet: the feature engine's RTL comes next; the forest alone takes "
         + (f"{forest_fpga['latency_ns']:.0f} ns" if forest_fpga else "(its place and route is "
            "not in this run)"), "the model's latency only, not transaction to decision"],
        *[list(anchor) for anchor in ANCHORS],
    ]
    text = [f"From the raw transaction to the decision, the card's and the terminal's windows "
            f"included: {m['transactions']:,} test transactions replayed one at a time in time "
            f"order after a warm-up of {m['warm_up']['transactions']:,} earlier ones; the replayed "
            "inputs equal the data step's on every transaction and "
            f"{m['checks']['decisions_differing_from_scikit_learn_batch']} decisions differ from "
            "the batch scores."]
    return [(TITLE, text, ["platform", "transaction -> decision", "kind"], rows)]
