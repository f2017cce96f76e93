"""What a sweep trial builds and measures for each firmware family: the flow's own steps for
that family (from its contract), the validation AP of its model (the search objective) over
training seeds, and for a front design its model's test AP over more seeds.

A family reads only some configuration keys (its steps declare them), so a searched key the
family does not read is dropped from its trials' settings: two trials that differ only there
are one design, one trial folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from fraudfpga.models.artifacts import MODEL_SUMMARY, NETWORK_METRICS
from fraudfpga.runfolder import RunFolder
from fraudfpga.sim.artifacts import FOREST_FIRMWARE, NETWORK_FIRMWARE, Firmware

# (run, count, log) -> one AP per training seed: the run's seed, then seed + 1, ...
SeedAPs = Callable[[RunFolder, int, Callable[[str], None]], list]


@dataclass(frozen=True)
class SearchFamily:
    firmware: Firmware
    valid_aps: SeedAPs  # validation AP of the family's model (the search objective)
    test_aps: SeedAPs  # test AP of the family's model (a front design's check over seeds)
    firmware_metrics: str  # the producer's metrics file, and the firmware's entry in it
    firmware_entry: str
    model_label: str

    @property
    def name(self) -> str:
        return self.firmware.name

    @property
    def search_steps(self) -> tuple[str, ...]:
        return ("data", *self.firmware.producer, self.firmware.step("synth_yosys"))

    def verify_steps(self, place_and_route: bool) -> tuple[str, ...]:
        return self.firmware.step("sim"), *((self.firmware.step("pnr"),) if place_and_route else ())

    def reads(self) -> set[str]:
        """The configuration keys (or sections) the family's steps read."""
        from fraudfpga.pipeline import STEPS

        return {key for step in (*self.search_steps, *self.verify_steps(True))
                for key in STEPS[step].reads}

    def reads_key(self, key: str) -> bool:
        return any(key == read or key.startswith(read + ".") for read in self.reads())

    def firmware_test_ap(self, run: RunFolder) -> float | None:
        metrics = json.loads(run.path(self.firmware_metrics).read_text())
        return metrics[self.firmware_entry]["average_precision"]


def _more_networks(run: RunFolder, count: int, log) -> list:
    """The QKeras model trained for `count` more training seeds (seed + 1, ...) with the run's
    settings: the `Trained` results."""
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.train import TrainingData, train_network

    if not count:
        return []
    split = TrainingData(PreparedData(run.root), run.config["train"]["refit"])
    return [train_network("qkeras", split, run.config, run.config["seed"] + offset, log)
            for offset in range(1, count + 1)]


def _network_valid_aps(run: RunFolder, count: int, log) -> list:
    summary = json.loads(run.path(MODEL_SUMMARY).read_text())
    return [summary["training"]["qkeras"]["best_valid_ap"],
            *(t.record["best_valid_ap"] for t in _more_networks(run, count - 1, log))]


def _network_test_aps(run: RunFolder, count: int, log) -> list:
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.metrics import average_precision

    labels = PreparedData(run.root).labels("test")
    metrics = json.loads(run.path(NETWORK_METRICS).read_text())
    return [metrics["models"]["qkeras"]["average_precision"],
            *(average_precision(labels, t.scores["test"])
              for t in _more_networks(run, count - 1, log))]


def _more_forests(run: RunFolder, count: int, log) -> list[dict]:
    from fraudfpga.hls.forest_flow import seed_aps
    from fraudfpga.models.dataset import PreparedData

    if not count:
        return []
    seeds = [run.config["seed"] + offset for offset in range(1, count + 1)]
    log(f"[sweep] forests for training seeds {seeds}")
    return seed_aps(PreparedData(run.root), run.config, seeds)


def _forest_metrics(run: RunFolder) -> dict:
    return json.loads(run.path("forest/metrics.json").read_text())


def _forest_valid_aps(run: RunFolder, count: int, log) -> list:
    return [_forest_metrics(run)["selection"]["valid_average_precision"],
            *(r["valid_ap"] for r in _more_forests(run, count - 1, log))]


def _forest_test_aps(run: RunFolder, count: int, log) -> list:
    return [_forest_metrics(run)["forest_float"]["average_precision"],
            *(r["test_ap"] for r in _more_forests(run, count - 1, log))]


FAMILIES = {f.name: f for f in (
    SearchFamily(NETWORK_FIRMWARE, _network_valid_aps, _network_test_aps, "hls/metrics.json",
                 "firmware", "QKeras network"),
    SearchFamily(FOREST_FIRMWARE, _forest_valid_aps, _forest_test_aps, "forest/metrics.json",
                 "forest_firmware", "tree ensemble (forest.model) on the input grid"),
)}
