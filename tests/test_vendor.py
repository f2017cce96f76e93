"""Vendor report parsing on real Vivado HLS 2020.1 reports (tests/fixtures/vendor-reports)."""

import shutil
from pathlib import Path

import pytest

from fraudfpga.hls.vendor import VENDOR_TOOLS, find_vendor_tool, parse_vendor_reports

FIXTURES = Path(__file__).parent / "fixtures" / "vendor-reports" / "vivado-hls-2020.1"


def hls4ml_layout(tmp_path, with_vivado=True):
    """Place the fixture files where an hls4ml Vivado project has them."""
    project = tmp_path / "project"
    report_dir = project / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    for name in ("myproject_csynth.rpt", "myproject_csynth.xml"):
        shutil.copy(FIXTURES / name, report_dir / name)
    shutil.copy(FIXTURES / "vivado_hls.app", project / "myproject_prj" / "vivado_hls.app")
    if with_vivado:
        shutil.copy(FIXTURES / "vivado_synth.rpt", project / "vivado_synth.rpt")
    # hls4ml writes this file into every project; its reader needs the two lines.
    (project / "project.tcl").write_text('set project_name "myproject"\nset backend "vivado"\n')
    return project


def test_parse_fixture_reports(tmp_path):
    figures = parse_vendor_reports(hls4ml_layout(tmp_path))
    assert figures["tool_version"] == "2020.1"
    assert figures["part"] == "xc7z020-clg400-1"
    assert figures["latency_cycles"] == {"min": 10, "max": 10}
    assert figures["initiation_interval_cycles"] == {"min": 8, "max": 8}
    assert figures["clock_ns"] == {"target": 5, "estimated": 4.049}
    assert figures["resources"] == {"LUT": 2532, "FF": 7969, "DSP": 73, "BRAM_18K": 0, "URAM": 0}
    assert figures["available"]["LUT"] == 53200
    assert figures["vivado_synthesis"]["resources"] == {"LUT": 1526, "FF": 2428, "BRAM_18K": 0,
                                                        "DSP": 66}
    assert "estimated" in figures["kind"]


def test_parse_without_vivado_synthesis(tmp_path):
    figures = parse_vendor_reports(hls4ml_layout(tmp_path, with_vivado=False))
    assert "vivado_synthesis" not in figures
    assert figures["resources"]["DSP"] == 73


def test_missing_report_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="did C synthesis run"):
        parse_vendor_reports(tmp_path / "empty")


def test_vendor_tool_detection_follows_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_vendor_tool() is None
    fake = tmp_path / VENDOR_TOOLS[2]
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_vendor_tool() == "vivado_hls"
