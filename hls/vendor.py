"""Vendor HLS synthesis (Vitis HLS / Vivado HLS) when installed, and its report parsing.

No vendor tool exists on machines without a licence; then nothing is run and no vendor
figure is written. The report parsing is tested on real Vivado HLS report files.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

VENDOR_TOOLS = ("vitis_hls", "vitis-run", "vivado_hls")


def find_vendor_tool() -> str | None:
    return next((tool for tool in VENDOR_TOOLS if shutil.which(tool)), None)


def _number(text):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def _csynth_xml(project_dir: Path, project: str) -> Path | None:
    found = sorted(Path(project_dir).glob(f"{project}_prj/*/syn/report/{project}_csynth.xml"))
    return found[0] if found else None


def parse_vendor_reports(project_dir: Path, project: str = "myproject") -> dict:
    """Latency, II, clock and resources from the HLS reports in `project_dir`.

    Figures come from hls4ml's report reader (`hls4ml.report.parse_vivado_report`); the tool
    version and part, which it does not return, are read from the same csynth XML.
    """
    import hls4ml

    project_dir = Path(project_dir)
    xml_path = _csynth_xml(project_dir, project)
    if xml_path is None:
        raise FileNotFoundError(f"{project_dir}: no {project}_prj/<solution>/syn/report/"
                                f"{project}_csynth.xml (did C synthesis run?)")
    parsed = hls4ml.report.parse_vivado_report(str(project_dir)) or {}
    csynth = parsed.get("CSynthesisReport")
    if not csynth:
        raise ValueError(f"{project_dir}: hls4ml could not read the C synthesis report")
    root = ET.parse(xml_path).getroot()
    result = {
        "kind": "estimated by the vendor HLS tool (C synthesis report)",
        "tool_version": root.findtext("ReportVersion/Version"),
        "part": root.findtext("UserAssignments/Part"),
        "top": root.findtext("UserAssignments/TopModelName"),
        "report": str(xml_path.relative_to(project_dir)),
        "latency_cycles": {"min": _number(csynth.get("BestLatency")),
                           "max": _number(csynth.get("WorstLatency"))},
        "initiation_interval_cycles": {"min": _number(csynth.get("IntervalMin")),
                                       "max": _number(csynth.get("IntervalMax"))},
        "clock_ns": {"target": _number(csynth.get("TargetClockPeriod")),
                     "estimated": _number(csynth.get("EstimatedClockPeriod"))},
        "resources": {key: _number(csynth.get(key))
                      for key in ("LUT", "FF", "DSP", "BRAM_18K", "URAM") if key in csynth},
        "available": {key[len("Available"):]: _number(value) for key, value in csynth.items()
                      if key.startswith("Available")},
    }
    vsynth = parsed.get("VivadoSynthReport")
    if vsynth:
        result["vivado_synthesis"] = {
            "kind": "estimated by Vivado logic synthesis (post-synthesis utilization)",
            "resources": {("DSP" if key.startswith("DSP") else key): _number(value)
                          for key, value in vsynth.items()},
        }
    return result


def run_vendor_build(hls_model, synth_cfg: dict, progress=print) -> None:
    """hls4ml's build: C synthesis, optionally export and Vivado synthesis."""
    progress(f"[synth] running vendor HLS through hls4ml (csim={synth_cfg['csim']}, "
             f"export={synth_cfg['export']}, vsynth={synth_cfg['vsynth']})")
    hls_model.build(reset=False, csim=synth_cfg["csim"], synth=True, cosim=False,
                    validation=False, export=synth_cfg["export"], vsynth=synth_cfg["vsynth"])
