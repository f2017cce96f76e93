"""The `engine` step: the feature engine's RTL for the simulator's population, fed the simulated
history from empty state (the windows' reach before the test period, or `engine.warm_up_days`)
and the whole test period through cocotb, one op per clock. Every transaction's features are
checked against the op-level reference, and the test period's against the software engine over
the whole history (and against the data step's inputs when the run's features are streaming)."""

from __future__ import annotations

import numpy as np

from fraudfpga.errors import FlowError
from fraudfpga.models.artifacts import DATA_SUMMARY, SPLIT_FILES
from fraudfpga.models.features import FEATURE_COLUMNS, SECONDS_PER_DAY
from fraudfpga.models.streaming import (ECP5_85F_BLOCK_RAM_BITS, simulated_history,
                                        streaming_features, to_model_units)
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import ENGINE_DIR, ENGINE_RESULTS
from .engine_reference import expected_outputs, op_stream
from .engine_rtl import TEMPLATE, EngineParameters
from .engine_sim import build_engine, replay


def verify_engine(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData

    data_cfg, engine_cfg = cfg["data"], cfg["engine"]
    if data_cfg["source"] != "simulator":
        raise FlowError(f"the feature engine needs card, terminal, time and amount per "
                        f"transaction: data.source={data_cfg['source']} has no card and terminal "
                        "history (use data.source=simulator)")
    data = PreparedData(run.root)
    raw, test = simulated_history(data_cfg, data.parts["test"]["TRANSACTION_ID"].to_numpy())
    delay, extra = data_cfg["feature_delay_days"], data_cfg["streaming_extra_day"]
    population = data_cfg["simulator"]
    params = EngineParameters(engine_cfg["cards"] or population["n_customers"],
                              engine_cfg["terminals"] or population["n_terminals"], delay, extra)
    day = raw["seconds"] // SECONDS_PER_DAY
    warm_days = engine_cfg["warm_up_days"] or params.terminal_days
    start = int(np.searchsorted(day, day[test[0]] - warm_days, side="left"))
    stop = int(test[-1]) + 1
    window = {k: v[start:stop] for k, v in raw.items()}
    ops = op_stream(window["seconds"], window["card"], window["terminal"], window["cents"],
                    window["fraud"], delay)
    expected = expected_outputs(ops, params)

    # the test period from the truncated replay must be the whole history's
    whole = streaming_features(raw["seconds"], raw["card"], raw["terminal"],
                               raw["cents"] / 100.0, raw["fraud"], delay, extra)
    whole_test = np.column_stack([whole.values[name][test] for name in FEATURE_COLUMNS])
    replayed_test = to_model_units(expected.features[test - start])
    differ_history = int((replayed_test != whole_test).any(axis=1).sum())
    if differ_history:
        raise FlowError(f"the engine's warm-up of {warm_days} days leaves {differ_history} test "
                        "transactions with other inputs than the whole history's: raise "
                        "engine.warm_up_days")
    differ_data = None
    if data_cfg["features"] == "streaming":
        inputs = data.parts["test"][FEATURE_COLUMNS].to_numpy(np.float64)
        differ_data = int((replayed_test != inputs).any(axis=1).sum())

    folder = run.path(ENGINE_DIR)
    sim = cfg["rtl"]["simulator"]
    progress(f"[engine] {params.cards:,} cards, {params.terminals:,} terminals; replaying "
             f"{warm_days} days before the test period and its {test.size:,} transactions")
    metadata = build_engine(folder, params, sim, progress)
    results = replay(folder, metadata, ops, sim, "replay", expected=expected, progress=progress)
    state_bits = metadata["state"]["card_state_bits"] + metadata["state"]["terminal_state_bits"]
    summary = {
        "kind": "measured in simulation (cocotb, one op per clock)",
        "parameters": metadata["parameters"], "latency_cycles": results["latency_cycles"],
        "ops": results["ops"], "transactions": results["transactions"],
        "labels": results["labels"], "warm_up_days": warm_days,
        "test_transactions": int(test.size),
        "mismatches": results["mismatch_count"], "in_order": results["in_order"],
        "lost": results["lost"], "duplicated": results["duplicated"],
        "counters": results["counters"], "counters_ok": results["counters_ok"],
        "ops_per_cycle": results["ops_per_cycle"],
        "test_inputs_differing_from_whole_history": differ_history,
        "test_inputs_differing_from_data_step": differ_data,
        "state": {**metadata["state"], "bits": state_bits,
                  "vs_ecp5_85f_block_ram": state_bits / ECP5_85F_BLOCK_RAM_BITS},
        "simulator": results["simulator"], "simulator_version": results["simulator_version"],
        "simulation_seconds": results["stream_seconds"],
    }
    write_json(run.path(ENGINE_RESULTS), summary)
    if results["testbench_failures"] or results["mismatch_count"] or not results["counters_ok"]:
        raise FlowError(f"the feature engine's RTL differs from the reference: "
                        f"{results['mismatch_count']} transactions, counters "
                        f"{'equal' if results['counters_ok'] else 'differ'} "
                        f"(see {run.path(ENGINE_RESULTS)} and {folder / 'replay'})")
    progress(f"[engine] {results['transactions']:,} transactions and {results['labels']:,} fraud "
             f"labels, one per clock: every feature bit-exact, in order, latency "
             f"{results['latency_cycles']} cycles; counters {results['counters']}"
             + ("" if differ_data is None else f"; {differ_data} test rows differ from the data "
                                               "step's inputs"))
    if differ_data:
        raise FlowError(f"{differ_data} test transactions' inputs from the engine differ from "
                        "the data step's")


register(Step(
    name="engine", command="engine",
    help="the feature engine's RTL (card and terminal state on the chip) fed the simulated "
         "history and the test period through cocotb, one op per clock; every feature checked "
         "bit for bit (not part of `all`)",
    reads=("data", "engine", "rtl.simulator"),
    inputs=(*SPLIT_FILES.values(), DATA_SUMMARY), outputs=(ENGINE_RESULTS,), body=verify_engine,
    code=("fraudfpga.sim.engine_flow", "fraudfpga.sim.engine_rtl", "fraudfpga.sim.engine_sim",
          "fraudfpga.sim.engine_reference", "fraudfpga.sim.engine_testbench",
          "fraudfpga.models.streaming", "fraudfpga.models.simulator"),
    external_inputs=lambda cfg: [str(TEMPLATE)], in_all=False))
