"""The report's section on transaction to decision: the time from a raw transaction (card,
terminal, time, amount) to the decision, the card and terminal windows included, where a run
computed its features with the streaming engine (`make decision` on the CPU, `make engine` and
`make engine-pnr` on the FPGA). Measured figures beside cited anchors, each labelled as what it
is; the answer on the first screen gets one line of it."""

from __future__ import annotations

from fraudfpga.gpu_baseline.artifacts import TRANSACTION_DECISION
from fraudfpga.runfolder import RunFolder
from fraudfpga.sim.artifacts import ENGINE_FOREST_RESULTS, ENGINE_PNR

from .common import load

INPUTS = (TRANSACTION_DECISION, ENGINE_FOREST_RESULTS, ENGINE_PNR)
TITLE = "Transaction to decision"
# Cited, not measured here (issue 30's sources): an online feature store's lookup of the card's
# and the terminal's windows, and a GPU's batch-1 floor.
FEATURE_STORE = ("online feature store lookup (Feast + Redis)", "under 1.5 ms p99 (Feast's own "
                 "benchmark); 2-5 ms p99 (its tuning guides)", "cited, not measured here")
GPU_FLOOR = ("GPU batch-1 floor (empty kernel launch + synchronise)", "7.2 us on a V100, 9.7 us "
             "on an A100 (CSCS ReFrame reference values)", "cited, not measured here")
ANCHORS = (FEATURE_STORE, GPU_FLOOR)


def _current(run: RunFolder, name: str) -> dict | None:
    return load(run, name) if name in run.optional_inputs else None


def _fpga(run: RunFolder, forest_fpga: dict | None) -> tuple[list[str], str | None]:
    """The FPGA row (platform, figure, kind): the engine + forest's cycles from its cocotb
    replay, and its clock where it was placed and routed, otherwise what is missing; and the
    answer's short form of it (None without a replay)."""
    replayed = _current(run, ENGINE_FOREST_RESULTS)
    placed = _current(run, ENGINE_PNR)
    forest_alone = (f"the forest alone takes {forest_fpga['latency_ns']:.0f} ns" if forest_fpga
                    else "the forest's place and route is not in this run")
    if replayed is None:
        return (["FPGA: feature engine + forest",
                 f"not in this run (`make engine`, with data.features=streaming); {forest_alone}",
                 "the model's latency only, not transaction to decision"], None)
    checked = (f"{replayed['transactions']:,} transactions and {replayed['labels']:,} labels "
               f"replayed, {replayed['mismatches']} feature and {replayed['score_mismatches']} "
               "score mismatches")
    # Every latency the replay saw (one for a pipeline of fixed depth).
    cycles = " or ".join(str(c) for c in replayed["latency_cycles"])
    if placed is None:
        return (["FPGA: feature engine + forest, state on the chip",
                 f"{cycles} cycles from the transaction's last input beat to its score "
                 f"({replayed['engine_latency_cycles']} engine + "
                 f"{replayed['forest_latency_cycles']} forest), one transaction per clock; not "
                 "placed and routed in this run (`make engine-pnr`)",
                 f"cycles measured in simulation ({checked})"],
                f"on the FPGA the feature engine + forest take {cycles} cycles (measured in "
                "simulation; not placed and routed in this run)")
    state, cycles = placed["parameters"], placed["latency_cycles"]
    return ([f"FPGA ({placed['device']}): feature engine + forest, state of "
             f"{state['cards']:,} cards and {state['terminals']:,} terminals on the chip",
             f"{placed['latency_ns']:.0f} ns = {cycles} cycles at {placed['fmax_mhz']:.1f} MHz, "
             "from the transaction's last input beat to its score, one transaction per clock "
             "(the host link not included)",
             f"cycles measured in simulation ({checked}); clock placed and routed by "
             f"{placed['tools']['nextpnr']}"],
            f"on the FPGA ({placed['device']}) the feature engine + forest take "
            f"{placed['latency_ns']:.0f} ns ({cycles} cycles measured in simulation at "
            f"{placed['fmax_mhz']:.1f} MHz placed and routed, the host link not included)")


def verdict_line(run: RunFolder) -> str | None:
    """The answer's line on transaction to decision, where the run measured one."""
    cpu = _current(run, TRANSACTION_DECISION)
    _, fpga = _fpga(run, None)
    if cpu is None and fpga is None:
        return None
    parts = [fpga] if fpga else []
    if cpu is not None:
        total = cpu["transaction_to_decision"]
        parts.append(f"on the CPU the compiled streaming engine + forest in ONNX Runtime take "
                     f"p50 {total['p50_us']:.1f} us, p99 {total['p99_us']:.1f} us (measured on "
                     f"{cpu['machine']})")
    return ("**Transaction to decision** (the card's and the terminal's windows included): "
            + "; ".join(parts) + f". For scale, an {FEATURE_STORE[0]} alone: under 1.5 ms to "
            f"5 ms p99 ({FEATURE_STORE[2]}).")


def section(run: RunFolder, forest_fpga: dict | None) -> list[tuple]:
    cpu = _current(run, TRANSACTION_DECISION)
    if cpu is None and _current(run, ENGINE_FOREST_RESULTS) is None:
        why = {p: run.stale_inputs[p] for p in INPUTS if p in run.stale_inputs}
        return [(TITLE, [f"Left out: {path} {reason}" for path, reason in why.items()], None,
                 None)] if why else []
    rows = []
    text = []
    if cpu is not None:
        total, engine, model = cpu["transaction_to_decision"], cpu["engine"], cpu["model"]
        rows.append(
            [f"CPU ({cpu['machine']}): streaming engine + forest in ONNX Runtime, batch 1",
             f"p50 {total['p50_us']:.1f} us, p99 {total['p99_us']:.1f} us "
             f"(engine p50 {engine['p50_us']:.1f} us, input preparation p50 "
             f"{cpu['input_preparation']['p50_us']:.1f} us, model p50 {model['p50_us']:.1f} us); "
             f"{cpu['transactions_per_s']:,.0f} transactions/s in one thread", cpu["kind"]])
        text.append(
            f"From the raw transaction to the decision, the card's and the terminal's windows "
            f"included: on the CPU {cpu['transactions']:,} test transactions replayed one at a "
            f"time in time order after a warm-up of {cpu['warm_up']['transactions']:,} earlier "
            "ones; the replayed inputs equal the data step's on every transaction and "
            f"{cpu['checks']['decisions_differing_from_scikit_learn_batch']} decisions differ "
            "from the batch scores.")
    rows.append(_fpga(run, forest_fpga)[0])
    rows += [list(anchor) for anchor in ANCHORS]
    return [(TITLE, text, ["platform", "transaction -> decision", "kind"], rows)]
