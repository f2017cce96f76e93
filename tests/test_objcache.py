"""Verilator's runtime objects are compiled once per compiler, flags and source, then reused;
every other compile command runs as given."""

import os
import stat

from fraudfpga.sim import objcache


def fake_compiler(folder):
    """A 'compiler' that writes the object and its .d, and counts its compiles."""
    script = folder / "cxx"
    script.write_text("#!/bin/sh\n"
                      "[ \"$1\" = --version ] && { echo 'fake c++ 1.0'; exit 0; }\n"
                      "echo compiled >> \"$COUNT\"\n"
                      "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n"
                      "echo \"object of $1\" > \"$out\"; echo \"${out%.o}.o: $1\" > \"${out%.o}.d\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_runtime_objects_are_reused_and_other_commands_pass_through(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COUNT", str(tmp_path / "count"))
    cxx = fake_compiler(tmp_path)
    source = tmp_path / "verilated.cpp"
    source.write_text("// runtime\n")
    for build in ("a", "b"):
        (tmp_path / build).mkdir()
        monkeypatch.chdir(tmp_path / build)
        assert objcache.main([cxx, "-Os", "-c", "-o", "verilated.o", str(source)]) == 0
        assert (tmp_path / build / "verilated.o").read_text() == f"object of {source}\n"
        assert (tmp_path / build / "verilated.d").is_file()
    assert (tmp_path / "count").read_text().count("compiled") == 1  # the second build reused it
    monkeypatch.chdir(tmp_path / "b")
    assert objcache.main([cxx, "-O0", "-c", "-o", "verilated.o", str(source)]) == 0  # other flags
    source.write_text("// another Verilator\n")
    assert objcache.main([cxx, "-Os", "-c", "-o", "verilated.o", str(source)]) == 0  # other source
    design = tmp_path / "Vtop__ALL.cpp"
    design.write_text("// design\n")
    for _ in range(2):
        assert objcache.main([cxx, "-Os", "-c", "-o", "Vtop__ALL.o", str(design)]) == 0
    assert (tmp_path / "count").read_text().count("compiled") == 5
    assert len(os.listdir(tmp_path / "cache/fraudfpga/verilator-runtime")) == 3
