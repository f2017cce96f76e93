"""The report's provenance: the machine, the tools and versions, and each step's command and
time, from the run's manifest."""

from __future__ import annotations


def section(manifest: dict, baseline: dict, sim: dict, yosys: dict) -> tuple:
    device = baseline["device"]
    steps = manifest["steps"]
    versions = next(iter(steps.values()))["versions"]
    rows = [["baseline device", f"{device['name']} ({device['label']})"],
            ["host CPU", f"{device['host_cpu']}, {device['host_cores']} cores ({device['host']})"],
            ["TensorFlow", f"{device['tensorflow']} (built for CUDA {device.get('cuda_build')}, "
                           f"cuDNN {device.get('cudnn_build')}); GPU driver "
                           f"{device.get('driver') or 'n/a'}"],
            ["simulator", sim["simulator_version"]],
            ["Yosys", yosys["tool_version"].split(" (")[0]],
            *[[k, v] for k, v in versions.items()],
            *[[f"step {name}", f"{entry.get('started', '?')} to {entry.get('finished', '?')}: "
                               f"{entry.get('command', '')}"] for name, entry in steps.items()]]
    return ("Provenance", ["Every step's inputs, outputs, configuration and code are recorded "
                           "in manifest.json; a figure of a step that is out of date is left "
                           "out and named."], ["item", "value"], rows)
