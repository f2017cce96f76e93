"""`fraudfpga publish`: the documentation's figures of a run come from its result files."""

import json

from conftest import cli


def test_publish_writes_the_answer_and_step_times_from_the_run(tiny_copy, tmp_path, capsys):
    docs = tmp_path / "docs"
    (docs / "results").mkdir(parents=True)
    projects = str(tiny_copy.parent)
    assert cli("publish", "--run", "tiny", "--projects-dir", projects, "--docs", str(docs),
               settings=[]) == 0
    page = (docs / "results" / "tiny-run.md").read_text()
    report = (tiny_copy / "report/report.md").read_text()
    verdict = report.split("## The answer\n", 1)[1].split("\n## ", 1)[0].strip()
    assert verdict in page  # the report's own words and table, not a retyped copy
    assert "fraudfpga publish --run tiny" in page and "cores" in page
    manifest = json.loads((tiny_copy / "manifest.json").read_text())
    for step, entry in manifest["steps"].items():
        assert f"| `{step}` |" in page
        assert entry["cpu_seconds"] >= 0
    assert manifest["steps"]["train"]["cpu_seconds"] > 1  # fitting networks and forests
    assert "| step | time | CPU |" in page and "all steps together" in page
    if (tiny_copy / "report/first_screen.png").exists():  # Chromium installed
        assert (docs / "images/first_screen.png").read_bytes() == \
            (tiny_copy / "report/first_screen.png").read_bytes()
        assert "](../images/first_screen.png)" in page


def test_publish_refuses_a_stale_report_and_a_missing_run(tiny_copy, tmp_path, capsys):
    docs = tmp_path / "docs"
    (docs / "results").mkdir(parents=True)
    (tiny_copy / "report/report.md").write_text("# edited by hand\n")
    projects = str(tiny_copy.parent)
    assert cli("publish", "--run", "tiny", "--projects-dir", projects, "--docs", str(docs),
               settings=[]) == 2
    err = capsys.readouterr().err
    assert "the report of run 'tiny' is out of date" in err and "fraudfpga report --run tiny" in err
    assert not (docs / "results" / "tiny-run.md").exists()
    assert cli("publish", "--run", "nothing", "--projects-dir", projects, "--docs", str(docs),
               settings=[]) == 2
    assert "no run there" in capsys.readouterr().err
