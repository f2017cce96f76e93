"""The `engine` and `engine_forest` steps. `engine`: the feature engine's RTL for the simulator's population, fed the simulated
history from empty state (the windows' reach before the test period, or `engine.warm_up_days`)
and the whole test period through cocotb, one op per clock. Every transaction's features are
checked against the op-level reference, and the test period's against the software engine over
the whole history (and against the data step's inputs when the run's features are streaming).
`engine_forest`: the same replay through the engine in front of the forest firmware, every score
checked too (the test period's against the forest's golden model, conifer's emulation)."""

from __future__ import annotations

import numpy as np

from fraudfpga.errors import FlowError
from fraudfpga.hls.artifacts import FOREST_FIXED, FOREST_GOLDEN
from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.models.features import FEATURE_COLUMNS, SECONDS_PER_DAY
from fraudfpga.models.streaming import (ECP5_85F_BLOCK_RAM_BITS, simulated_history,
                                        streaming_features, to_model_units)
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import (ENGINE_DIR, ENGINE_FOREST_DIR, ENGINE_FOREST_RESULTS, ENGINE_PNR,
                        ENGINE_PNR_DIR, ENGINE_RESULTS)
from .engine_reference import expected_outputs, op_stream
from .engine_rtl import TEMPLATE, EngineParameters
from .engine_sim import build_engine, replay, replay_axis

AXIS_BACKPRESSURE_OPS = 100_000  # ops sent through the AXI4-Stream top under backpressure (from the
# start of the replay: the state depends on every op before; the first labels come after the delay)


class EngineReplay:
    """A run's op stream for the engine (the warm-up days and the test period of the simulated
    history) and its reference outputs, checked against the whole history's software engine."""

    def __init__(self, run: RunFolder, cfg):
        from fraudfpga.models.dataset import PreparedData

        data_cfg, engine_cfg = cfg["data"], cfg["engine"]
        if data_cfg["source"] != "simulator":
            raise FlowError(f"the feature engine needs card, terminal, time and amount per "
                            f"transaction: data.source={data_cfg['source']} has no card and "
                            "terminal history (use data.source=simulator)")
        self.data = PreparedData(run.root)
        raw, test = simulated_history(data_cfg, self.data.parts["test"]["TRANSACTION_ID"].to_numpy())
        delay, extra = data_cfg["feature_delay_days"], data_cfg["streaming_extra_day"]
        population = data_cfg["simulator"]
        self.params = EngineParameters(engine_cfg["cards"] or population["n_customers"],
                                       engine_cfg["terminals"] or population["n_terminals"],
                                       delay, extra)
        day = raw["seconds"] // SECONDS_PER_DAY
        self.warm_days = engine_cfg["warm_up_days"] or self.params.terminal_days
        self.start = int(np.searchsorted(day, day[test[0]] - self.warm_days, side="left"))
        window = {k: v[self.start:int(test[-1]) + 1] for k, v in raw.items()}
        self.ops = op_stream(window["seconds"], window["card"], window["terminal"],
                             window["cents"], window["fraud"], delay)
        self.expected = expected_outputs(self.ops, self.params)
        self.test = test - self.start  # the test transactions' rows in the replay's outputs

        # the test period from the truncated replay must be the whole history's
        whole = streaming_features(raw["seconds"], raw["card"], raw["terminal"],
                                   raw["cents"] / 100.0, raw["fraud"], delay, extra)
        whole_test = np.column_stack([whole.values[name][test] for name in FEATURE_COLUMNS])
        replayed_test = to_model_units(self.expected.features[self.test])
        self.differ_from_history = int((replayed_test != whole_test).any(axis=1).sum())
        if self.differ_from_history:
            raise FlowError(f"the engine's warm-up of {self.warm_days} days leaves "
                            f"{self.differ_from_history} test "
                            "transactions with other inputs than the whole history's: raise "
                            "engine.warm_up_days")
        self.differ_from_data = None
        if data_cfg["features"] == "streaming":
            inputs = self.data.parts["test"][FEATURE_COLUMNS].to_numpy(np.float64)
            self.differ_from_data = int((replayed_test != inputs).any(axis=1).sum())
            if self.differ_from_data:
                raise FlowError(f"{self.differ_from_data} test transactions' inputs from the "
                                "engine differ from the data step's")

    def summary(self, metadata: dict, results: dict) -> dict:
        state_bits = metadata["state"]["card_state_bits"] + metadata["state"]["terminal_state_bits"]
        return {
            "kind": "measured in simulation (cocotb, one op per clock)",
            "top": metadata["top"], "parameters": metadata["parameters"],
            "latency_cycles": results["latency_cycles"],
            "ops": results["ops"], "transactions": results["transactions"],
            "labels": results["labels"], "warm_up_days": self.warm_days,
            "test_transactions": int(self.test.size),
            "mismatches": results["mismatch_count"], "in_order": results["in_order"],
            "lost": results["lost"], "duplicated": results["duplicated"],
            "features_checked": results["features_checked"],
            "scores_checked": results["scores_checked"],
            "score_mismatches": results["score_mismatches"],
            "counters": results["counters"], "counters_ok": results["counters_ok"],
            "ops_per_cycle": results["ops_per_cycle"],
            "test_inputs_differing_from_whole_history": self.differ_from_history,
            "test_inputs_differing_from_data_step": self.differ_from_data,
            "state": {**metadata["state"], "bits": state_bits,
                      "vs_ecp5_85f_block_ram": state_bits / ECP5_85F_BLOCK_RAM_BITS},
            "simulator": results["simulator"], "simulator_version": results["simulator_version"],
            "simulation_seconds": results["stream_seconds"],
        }


def _raise_on_mismatch(results: dict, where) -> None:
    if results["testbench_failures"] or results["mismatch_count"] or not results["counters_ok"]:
        raise FlowError(f"the RTL differs from the reference: {results['mismatch_count']} "
                        f"transactions, counters "
                        f"{'equal' if results['counters_ok'] else 'differ'} (see {where})")


def verify_engine(run: RunFolder, cfg, progress=print) -> None:
    replayed = EngineReplay(run, cfg)
    params = replayed.params
    folder = run.path(ENGINE_DIR)
    sim = cfg["rtl"]["simulator"]
    progress(f"[engine] {params.cards:,} cards, {params.terminals:,} terminals; replaying "
             f"{replayed.warm_days} days before the test period and its "
             f"{replayed.test.size:,} transactions")
    metadata = build_engine(folder, params, sim, progress, ops=len(replayed.ops))
    results = replay(folder, metadata, replayed.ops, sim, "replay", expected=replayed.expected,
                     progress=progress)
    write_json(run.path(ENGINE_RESULTS), replayed.summary(metadata, results))
    _raise_on_mismatch(results, folder / "replay")
    progress(f"[engine] {results['transactions']:,} transactions and {results['labels']:,} fraud "
             f"labels, one per clock: every feature bit-exact, in order, latency "
             f"{results['latency_cycles']} cycles; counters {results['counters']}"
             + ("" if replayed.differ_from_data is None else
                "; the test period's inputs equal the data step's"))


def verify_engine_forest(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.hls.codec import FirmwareCodec
    from fraudfpga.hls.forest import FixedForest
    from fraudfpga.hls.forest_flow import forest_input_type

    from .engine_forest import RawCodes, raw_forest, write_engine_forest_rtl
    from .forest_rtl import ForestPipeline

    if cfg["data"]["features"] != "streaming":
        raise FlowError("the engine in front of the forest needs a forest trained on what the "
                        "engine computes: set data.features=streaming (the data and forest steps "
                        "rerun)")
    replayed = EngineReplay(run, cfg)
    forest = FixedForest.load(run.path(FOREST_FIXED))
    codec = FirmwareCodec(replayed.data.scaler, forest_input_type(cfg["forest"]), None)
    codes = RawCodes(codec)
    scores = forest.forward(codes.all(replayed.expected.features))[:, 0]
    golden = np.load(run.path(FOREST_GOLDEN))["test_output_codes"][:, 0]
    differ_golden = int((scores[replayed.test] != golden).sum())
    if differ_golden:
        raise FlowError(f"the forest on the engine's inputs differs from its golden model "
                        f"(conifer's emulation) on {differ_golden} test transactions")
    moved = raw_forest(forest, codes)
    differ_moved = int((moved.forward(replayed.expected.features)[:, 0] != scores).sum())
    if differ_moved:
        raise FlowError(f"the forest with thresholds on the engine's integers scores "
                        f"{differ_moved} transactions otherwise than on the input codes")
    forest_cfg = cfg["forest"]
    pipeline = ForestPipeline(forest_cfg["tree_stages"], forest_cfg["adder_levels"],
                              forest_cfg["fanout_trees"])
    folder = run.path(ENGINE_FOREST_DIR)
    sim = cfg["rtl"]["simulator"]
    progress(f"[engine] the engine in front of the forest firmware ({len(forest.trees)} trees; "
             f"{len(forest.comparisons()):,} distinct comparisons of input codes, "
             f"{len(moved.comparisons()):,} of the engine's integers); replaying "
             f"{len(replayed.ops):,} ops")
    metadata = build_engine(folder, replayed.params, sim, progress,
                            write=lambda rtl: write_engine_forest_rtl(
                                rtl, replayed.params, moved, pipeline), ops=len(replayed.ops))
    results = replay(folder, metadata, replayed.ops, sim, "replay", expected=replayed.expected,
                     scores=scores, progress=progress)
    _raise_on_mismatch(results, folder / "replay")
    axis = {}
    axis_ops = len(replayed.ops) if cfg["engine"]["axis_ops"] == "all" else \
        min(len(replayed.ops), cfg["engine"]["axis_ops"])
    for name, count, input_pause, ready_pause in (
            ("axis_full_rate", axis_ops, 0.0, 0.0),
            ("axis_backpressure", min(axis_ops, AXIS_BACKPRESSURE_OPS), 0.2, 0.5)):
        part = replayed.ops.head(count)
        figures = replay_axis(folder, metadata, part, sim, name,
                              expected_outputs(part, replayed.params),
                              scores[:part.transactions], input_pause, ready_pause,
                              seed=cfg["rtl"]["axis_seeds"][0], progress=progress)
        axis[name] = {k: figures[k] for k in (
            "ops", "transactions", "labels", "delivered", "in_order", "lost", "duplicated",
            "reordered",
            "mismatch_count", "counters_ok", "input_pause", "ready_pause", "ops_per_cycle",
            "first_result_latency_cycles", "stream_seconds", "testbench_failures")}
        if figures["testbench_failures"] or figures["mismatch_count"] or not figures["in_order"]:
            write_json(run.path(ENGINE_FOREST_RESULTS), {"axis": axis})
            raise FlowError(f"the AXI4-Stream top of the engine + forest failed {name}: "
                            f"{figures['mismatch_count']} results differ, in order: "
                            f"{figures['in_order']} (see {folder / name})")
    summary = replayed.summary(metadata, results)
    summary.update({"axis": axis, "axis_top": metadata["axis"]["top"],
                    "forest": metadata["forest"],
                    "engine_latency_cycles": metadata["engine_latency_cycles"],
                    "forest_latency_cycles": metadata["forest_latency_cycles"],
                    "test_scores_differing_from_golden": differ_golden})
    write_json(run.path(ENGINE_FOREST_RESULTS), summary)
    progress(f"[engine] engine + forest: {results['transactions']:,} transactions and "
             f"{results['labels']:,} fraud labels, one per clock: every feature and every score "
             f"bit-exact, in order; the test period's scores are the forest's golden "
             f"(conifer's emulation); latency {results['latency_cycles']} cycles "
             f"({metadata['engine_latency_cycles']} engine + "
             f"{metadata['forest_latency_cycles']} forest); AXI4-Stream top: "
             + "; ".join(f"{a['ops']:,} ops, tready low {a['ready_pause']:.0%}, input gaps "
                         f"{a['input_pause']:.0%} ({a['labels']:,} labels): 0 lost, duplicated or "
                         "reordered"
                         for a in axis.values()))


def place_and_route_engine_forest(run: RunFolder, cfg, progress=print) -> None:
    """The engine + forest top as deployed (id, flags and score out; the features stay inside)
    for `engine.pnr_cards` x `engine.pnr_terminals` records, placed and routed on fpga.family."""
    from fraudfpga.hls.codec import FirmwareCodec
    from fraudfpga.hls.forest import FixedForest
    from fraudfpga.hls.forest_flow import forest_input_type
    from fraudfpga.models.split import Scaler

    from .engine_forest import RawCodes, raw_forest, write_engine_forest_rtl
    from .engine_rtl import engine_interface
    from .forest_rtl import ForestPipeline
    from .pnr import family, nextpnr_options, place_and_route

    data_cfg, engine_cfg, forest_cfg, fpga = cfg["data"], cfg["engine"], cfg["forest"], cfg["fpga"]
    if data_cfg["features"] != "streaming":
        raise FlowError("the engine in front of the forest needs a forest trained on what the "
                        "engine computes: set data.features=streaming")
    import json

    scaler = Scaler.from_dict(json.loads(run.path(SCALER).read_text()))
    codes = RawCodes(FirmwareCodec(scaler, forest_input_type(forest_cfg), None))
    moved = raw_forest(FixedForest.load(run.path(FOREST_FIXED)), codes)
    params = EngineParameters(engine_cfg["pnr_cards"], engine_cfg["pnr_terminals"],
                              data_cfg["feature_delay_days"], data_cfg["streaming_extra_day"])
    folder = run.path(ENGINE_PNR_DIR)
    metadata = write_engine_forest_rtl(
        folder / "rtl", params, moved,
        ForestPipeline(forest_cfg["tree_stages"], forest_cfg["adder_levels"],
                       forest_cfg["fanout_trees"]), features_out=False)
    fam = family(fpga["family"])
    progress(f"[engine] placing and routing the engine ({params.cards:,} cards, "
             f"{params.terminals:,} terminals) + forest on {fpga['family']}")
    result = place_and_route(fam, fpga["device"], folder / "rtl", metadata, folder,
                             forest_cfg["target_mhz"], fpga["seed"], progress,
                             iface=engine_interface(metadata),
                             options=nextpnr_options(fam, fpga),
                             extra={"parameters": metadata["parameters"],
                                    "state": metadata["state"], "forest": metadata["forest"],
                                    "engine_latency_cycles": metadata["engine_latency_cycles"],
                                    "forest_latency_cycles": metadata["forest_latency_cycles"]})
    write_json(run.path(ENGINE_PNR), result)
    used = result["utilization"]
    progress(f"[engine] engine + forest on {result['device']}: Fmax {result['fmax_mhz']:.1f} MHz "
             f"placed and routed; latency {result['latency_cycles']} cycles = "
             f"{result['latency_ns']:.0f} ns, one transaction per clock; "
             + ", ".join(f"{name} {u['used']:,}/{u['available']:,}" for name, u in used.items()
                         if name in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                                     "OXIDE_COMB", "OXIDE_FF", "OXIDE_EBR", "LRAM_CORE")))


ENGINE_CODE = ("fraudfpga.sim.engine_flow", "fraudfpga.sim.engine_rtl", "fraudfpga.sim.engine_sim",
               "fraudfpga.sim.engine_reference", "fraudfpga.sim.engine_testbench",
               "fraudfpga.models.streaming", "fraudfpga.models.simulator")

register(Step(
    name="engine", command="engine",
    help="the feature engine's RTL (card and terminal state on the chip) fed the simulated "
         "history and the test period through cocotb, one op per clock; every feature checked "
         "bit for bit (not part of `all`)",
    reads=("data", "engine", "rtl.simulator"),
    inputs=(*SPLIT_FILES.values(), DATA_SUMMARY), outputs=(ENGINE_RESULTS,), body=verify_engine,
    code=ENGINE_CODE,
    external_inputs=lambda cfg: [str(TEMPLATE)], in_all=False))

register(Step(
    name="engine_forest", command="engine",
    help="the feature engine in front of the forest firmware (thresholds on the engine's "
         "integers) fed the simulated history and the test period through cocotb; every "
         "feature and score checked bit for bit (needs data.features=streaming; not part of "
         "`all`)",
    reads=("data", "engine", "rtl.simulator", "forest.input_bits", "forest.input_integer",
           "forest.tree_stages", "forest.adder_levels", "forest.fanout_trees", "rtl.axis_seeds"),
    inputs=(*SPLIT_FILES.values(), DATA_SUMMARY, SCALER, FOREST_FIXED, FOREST_GOLDEN),
    outputs=(ENGINE_FOREST_RESULTS,), body=verify_engine_forest,
    code=ENGINE_CODE + ("fraudfpga.sim.engine_forest", "fraudfpga.sim.forest_rtl",
                        "fraudfpga.hls.forest"),
    external_inputs=lambda cfg: [str(TEMPLATE)], family="forest", in_all=False))

register(Step(
    name="engine_pnr", command="engine-pnr",
    help="the engine in front of the forest firmware placed and routed on the open FPGA family "
         "(engine.pnr_cards x engine.pnr_terminals records in block RAM): Fmax, latency from "
         "transaction to score, block RAM (minutes; needs data.features=streaming; not part of "
         "`all`)",
    reads=("data", "engine.pnr_cards", "engine.pnr_terminals", "forest.input_bits",
           "forest.input_integer", "forest.tree_stages", "forest.adder_levels",
           "forest.fanout_trees", "forest.target_mhz", "fpga.family", "fpga.device", "fpga.seed",
           "fpga.placer", "fpga.router", "fpga.router1_budget"),
    inputs=(SCALER, FOREST_FIXED), outputs=(ENGINE_PNR,), body=place_and_route_engine_forest,
    code=ENGINE_CODE + ("fraudfpga.sim.engine_forest", "fraudfpga.sim.forest_rtl",
                        "fraudfpga.sim.pnr"),
    external_inputs=lambda cfg: [str(TEMPLATE)], family="forest", in_all=False,
    background=True))
