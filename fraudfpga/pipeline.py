"""The flow: every stage's steps, registered by importing the stage, plus user steps.

Stages register their steps in their `flow` module. Packages can add steps through the
`fraudfpga.steps` entry-point group (each entry point is a module that calls
`fraudfpga.registry.register` when imported).
"""

from __future__ import annotations

from importlib import metadata

# Registration order is the order of the flow where the data dependencies leave a choice.
import fraudfpga.models.flow  # noqa: F401, I001  (registers data, train)
import fraudfpga.hls.flow  # noqa: F401  (registers hls, synth_vendor)
import fraudfpga.hls.forest_flow  # noqa: F401  (registers forest)
import fraudfpga.hls.imported_flow  # noqa: F401  (registers imported)
import fraudfpga.hls.imported_explain  # noqa: F401  (registers imported_explain)
import fraudfpga.hls.forest_explain  # noqa: F401  (registers forest_explain)
import fraudfpga.sim.flow  # noqa: F401  (registers rtl, sim, synth_yosys, pnr)
import fraudfpga.sim.forest_rtl  # noqa: F401  (registers forest_rtl)
import fraudfpga.sim.imported_rtl  # noqa: F401  (registers imported_rtl)
import fraudfpga.sim.engine_flow  # noqa: F401  (registers engine)
import fraudfpga.fusion  # noqa: F401  (registers fusion)
import fraudfpga.sim.interface_study  # noqa: F401  (registers interface_study)
import fraudfpga.gpu_baseline.flow  # noqa: F401  (registers baseline)
import fraudfpga.gpu_baseline.transaction_decision  # noqa: F401  (registers transaction_decision)
import fraudfpga.quality  # noqa: F401  (registers quality)
import fraudfpga.report  # noqa: F401  (registers report)
from fraudfpga.models.artifacts import MODEL_METRICS
from fraudfpga.report import run_metrics

from .registry import STEPS, Checker, Step, commands, ordered_steps
from .runfolder import RunFolder

for _entry in metadata.entry_points(group="fraudfpga.steps"):
    _entry.load()


def steps_of(command: str, config: dict | None = None) -> list[Step]:
    """The steps a CLI command or make target runs (`all`: every step with in_all); with a
    run's `config`, only those of the firmware families it builds."""
    steps = ([s for s in ordered_steps() if s.in_all] if command == "all"
             else commands()[command])
    return [s for s in steps if config is None or s.builds(config)]


def print_metrics(run: RunFolder, progress=print) -> None:
    """The test-set metrics table; the firmware's rows only while their steps are current."""
    from fraudfpga.models.metrics import format_table, strongest_reference

    if not run.path(MODEL_METRICS).is_file():
        return
    checker = Checker(run)
    metrics = run_metrics(run, firmware=checker.state(STEPS["hls"]).current,
                          forest_rows=STEPS["forest"].builds(run.config)
                          and checker.state(STEPS["forest"]).current)
    models = metrics["models"]
    progress(f"\nTest-set metrics, {metrics['test_period']} ({run.path(MODEL_METRICS)})\n"
             + format_table(models, run.config["evaluation"]["top_k"]))
    ap = {k: v["average_precision"] for k, v in models.items()}
    if ap["qkeras"] is None or ap["float"] is None:
        return  # AP undefined on this test set: the table says why
    line = f"QKeras AP - float AP = {ap['qkeras'] - ap['float']:+.4f}"
    strongest = strongest_reference(metrics)
    mine = ap.get("firmware", ap["qkeras"])
    if strongest and mine is not None:
        line += (f"; {'firmware' if 'firmware' in ap else 'QKeras'} AP - strongest reference "
                 f"({strongest}) AP = {mine - ap[strongest]:+.4f}")
    progress(line)
