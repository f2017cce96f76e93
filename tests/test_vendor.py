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


def test_vendor_step_with_a_tool_on_path(tiny_copy, tmp_path, monkeypatch):
    """With a vendor tool on PATH the step runs hls4ml's build and writes the parsed figures.

    No vendor tool can run here: the build is replaced by copying real report files to where
    C synthesis writes them, so the step's own logic (detection, conversion from the saved
    configuration, parsing, vendor.json) runs for real.
    """
    import json

    from fraudfpga.config import load_config
    from fraudfpga.hls import flow
    from fraudfpga.registry import STEPS, run_step
    from fraudfpga.runfolder import RunFolder

    fake = tmp_path / "bin" / "vitis_hls"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    builds = []

    def fake_build(hls_model, synth_cfg, progress=print):
        builds.append(synth_cfg)
        project = Path(hls_model.config.get_output_dir())
        laid_out = hls4ml_layout(tmp_path / "layout")
        shutil.copytree(laid_out / "myproject_prj", project / "myproject_prj", dirs_exist_ok=True)
        shutil.copy(laid_out / "vivado_synth.rpt", project / "vivado_synth.rpt")

    monkeypatch.setattr(flow, "run_vendor_build", fake_build)
    run = RunFolder.open(tiny_copy.parent, "tiny", [])
    before = {p: p.read_bytes() for p in run.path("hls/project").rglob("*") if p.is_file()}
    assert run_step(run, STEPS["synth_vendor"], progress=lambda _: None)
    assert run.entry("synth_vendor")["parts"]["environment"] == {"vendor_tool": "vitis_hls"}
    assert builds == [load_config(None)["hls"]["vendor"]]
    # The vendor build works on its own copy: the hls step's project is untouched.
    assert {p: p.read_bytes() for p in run.path("hls/project").rglob("*") if p.is_file()} == before
    vendor = json.loads(run.path("synth/vendor.json").read_text())
    assert vendor["status"] == "ok" and vendor["tool"] == "vitis_hls"
    assert vendor["latency_cycles"] == {"min": 10, "max": 10}
    assert vendor["resources"]["LUT"] == 2532
