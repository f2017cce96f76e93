"""The engine steps on a run of their own (`make engine`): the feature engine, then the engine in
front of the run's forest, each replayed through cocotb; a run with offline features refused.
A module of its own so that pytest-xdist runs it beside test_engine.py."""

import json

from test_engine import needs_verilator


@needs_verilator
def test_make_engine_on_a_small_streaming_run(tmp_path, capsys):
    """The engine steps on a run of their own: the engine alone, then in front of the run's
    forest; a run with offline features is refused by the forest one, by name."""
    from conftest import TINY, cli

    projects = str(tmp_path)
    streaming = [*TINY, "data.features=streaming", "engine.axis_ops=3000"]
    for command in ("data", "forest"):
        assert cli(command, "--run", "s", "--projects-dir", projects, settings=streaming) == 0
    assert cli("engine", "--run", "s", "--projects-dir", projects, settings=streaming) == 0
    engine = json.loads((tmp_path / "s" / "engine" / "results.json").read_text())
    both = json.loads((tmp_path / "s" / "engine" / "forest_results.json").read_text())
    for result in (engine, both):
        assert result["mismatches"] == 0 and result["in_order"] and result["counters_ok"]
        assert result["test_inputs_differing_from_data_step"] == 0
        assert result["transactions"] > result["test_transactions"] > 1000
    assert both["scores_checked"] and both["score_mismatches"] == 0
    assert both["test_scores_differing_from_golden"] == 0
    assert both["latency_cycles"] == [both["engine_latency_cycles"] + both["forest_latency_cycles"]]
    for axis in both["axis"].values():
        assert axis["ops"] == 3000 and axis["mismatch_count"] == 0 and axis["in_order"]
        assert axis["lost"] == axis["duplicated"] == axis["reordered"] == 0
    # The report's transaction-to-decision row and the answer's line read the replay.
    from types import SimpleNamespace

    from fraudfpga.report import transaction
    from fraudfpga.sim.artifacts import ENGINE_FOREST_RESULTS

    run = SimpleNamespace(optional_inputs={ENGINE_FOREST_RESULTS}, stale_inputs={},
                          path=lambda name: tmp_path / "s" / name)
    (_, _, _, rows), = transaction.section(run, None)
    fpga = next(row for row in rows if row[0].startswith("FPGA"))
    assert f"{both['latency_cycles'][0]} cycles from the transaction's last input beat" in fpga[1]
    assert "not placed and routed in this run (`make engine-pnr`)" in fpga[1]
    assert f"{both['transactions']:,} transactions" in fpga[2] and "0 feature and 0 score" in fpga[2]
    assert f"take {both['latency_cycles'][0]} cycles" in transaction.verdict_line(run)
    capsys.readouterr()
    for command in ("data", "forest"):
        assert cli(command, "--run", "o", "--projects-dir", projects) == 0
    assert cli("step", "engine_forest", "--run", "o", "--projects-dir", projects) == 2
    assert "set data.features=streaming" in capsys.readouterr().err
