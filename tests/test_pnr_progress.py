"""Place and route shows what nextpnr is doing: the stage and its figures read from the log
while it runs; the ECP5 harness puts the clock on a primary clock pin; placer and router come
from the configuration."""

import sys
import textwrap

from fraudfpga.sim.pnr import family, nextpnr_options
from fraudfpga.sim.pnr.progress import phase, run_watched

ROUTER2 = """Info: Running router2...
Info: Setting up routing resources...
Info:     iter=1 wires=259373 overused=23872 overuse=28418 archfail=NA
Info:     iter=2 wires=268306 overused=15508 overuse=16841 archfail=NA
"""
ROUTER1 = """Info: Routing..
Info:            |   (re-)routed arcs  |   delta    | remaining|       time spent     |
Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|
Info:      86000 |    25690      60309 |  299   701 |     40099|       1.73     241.17|
"""
PLACER = """Info: Running main analytical placer, max placement attempts per cell = 6306576.
Info:     at iteration #7, type ALL: wirelen solved = 15946, spread = 48607, legal = 49818; time = 0.34s
"""
STATIC = """Info: Running Static placer...
Info: overlap: COMB=99.7%, FF=98.1%, RAM=0.0%, MUL=0.0%
Info: iter=204 steplen=0.654024 a=104.158005 penalty=[0.01, 0.01, 0.01, 0.01]
Info:    update_chains distance 95.49
"""
ANNEALING = """Info: Running simulated annealing placer for refinement.
Info:   at iteration #15: temp = 0.000000, timing cost = 2083, wirelen = 36058
"""


def test_the_stage_and_its_figures_come_from_the_log():
    assert phase(ROUTER2) == ("routing (router2)", "iteration 2, 15,508 overused wires")
    assert phase(ROUTER1) == ("routing (router1)", "86,000 arc routings, 40,099 arcs remaining")
    assert phase(PLACER) == ("placing (analytic HeAP)", "iteration 7")
    assert phase(STATIC) == ("placing (static, electrostatic)", "iteration 204")
    assert phase(STATIC.splitlines()[1]) == ("placing (static, electrostatic)",
                                             "logic overlap 99.7 %")
    assert phase(ANNEALING) == ("placing (annealing refinement)",
                                "iteration 15, wirelength 36,058")
    assert phase("Info: Packing IOs..") == ("packing", "")
    assert phase("nothing yet") is None


def test_a_running_tool_reports_each_stage_with_the_log_path(tmp_path):
    log = tmp_path / "nextpnr.log"
    script = tmp_path / "fake_nextpnr.py"
    stages = [PLACER, ANNEALING, ROUTER2]
    script.write_text(textwrap.dedent(f"""
        import time
        for chunk in {stages!r}:
            with open({str(log)!r}, "a") as handle:
                handle.write(chunk)
            time.sleep(0.6)
    """))
    lines = []
    watched = run_watched([sys.executable, str(script)], tmp_path, log, lines.append, "top seed 1",
                          every_s=30, poll_s=0.2)
    assert watched.returncode == 0
    reported = "\n".join(lines)
    for stage in ("placing (analytic HeAP)", "placing (annealing refinement)", "routing (router2)"):
        assert f"[pnr] top seed 1: {stage}" in reported
    assert f"(log: {log})" in lines[-1] and " s (log" in lines[-1]


def test_ecp5_clock_on_a_primary_clock_pin_and_options_from_the_configuration():
    ecp5 = family("ecp5")
    constraints = ecp5.constraints()
    assert 'LOCATE COMP "clk" SITE "G2";' in constraints
    assert all(f'"{port}"' in constraints for port in ("rst", "serial_in", "serial_valid",
                                                       "serial_out"))
    options = nextpnr_options(ecp5, {"placer": "static", "router": "router2",
                                     "router1_budget": 0})
    assert (options.placer, options.router) == ("static", "router2")
    default = nextpnr_options(ecp5, {"placer": "default", "router": "default",
                                     "router1_budget": 300_000})
    assert (default.placer, default.router, default.router1_budget) == (
        "default", "router1", 300_000)  # the placer is the family's for the netlist's size


def test_the_default_placer_follows_the_netlists_size():
    def usage(cells):
        return {"TRELLIS_COMB": {"used": cells, "available": 83_640}}

    ecp5, nexus = family("ecp5"), family("nexus")
    assert [ecp5.placer_for(usage(n)) for n in (2_159, 9_999, 10_000, 23_419)] == [
        "heap", "heap", "static", "static"]
    assert nexus.placer_for({"OXIDE_COMB": {"used": 30_000, "available": 32_000}}) == "heap"


def _router1_log(points):
    return "Info: Routing..\n" + "".join(
        f"Info: {done:>10} | {done // 3:>8} {done - done // 3:>10} |  300   700 | {left:>9}|"
        f"       1.00      10.00|\n" for done, left in points)


def test_router1_is_given_up_when_its_projection_exceeds_the_budget():
    from fraudfpga.sim.pnr.progress import Router1Projection

    # The default network on the LFE5U-85F: 67,865 arcs left at 1,000, 54,817 at 40,000.
    default = _router1_log([(1000, 67865), (20000, 60878), (40000, 54817)])
    # The 29-input network: 95,384 at 1,000, 91,885 at 20,000, 88,545 at 40,000.
    wide = _router1_log([(1000, 95384), (20000, 91885), (40000, 88545)])
    projection = Router1Projection(300_000)
    assert projection.check(0.0, default) is None
    reason = projection.check(0.0, wide)
    assert reason and "88,545 arcs left after 40,000 arc routings" in reason
    assert "fpga.router1_budget = 300,000" in reason
    assert projection.check(0.0, wide.replace("40000 |", "30000 |")) is None  # too early
    assert Router1Projection(10_000_000).check(0.0, wide) is None
