"""The tiny run's report in headless Chromium at 1280 x 900: every image loads, no console
error, nothing wider than the page, the verdict on the first screen. Skipped, with the install
command, where Chromium is absent."""

import pytest

from fraudfpga.report import browser

WHY = browser.missing()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"headless Chromium: {WHY}")


def test_the_report_reads_in_a_browser_with_the_verdict_on_the_first_screen(tiny_run, tmp_path):
    state = browser.check_page(tiny_run / "report/index.html", screenshot=tmp_path / "shot.png")
    assert state["images"] >= 5 and state["broken"] == []
    assert state["console_errors"] == []
    assert state["page_width"] <= state["window_width"]
    assert state["verdict_bottom"] is not None and state["verdict_bottom"] <= 900
    for question in ("Model:", "Latency:", "Load:", "Trust:", "GPU:"):
        assert question in state["verdict_text"]
    assert (tmp_path / "shot.png").read_bytes().startswith(b"\x89PNG")
    assert (tiny_run / "report/first_screen.png").stat().st_size > 10000  # make report saved it


def test_a_broken_image_a_console_error_and_a_wide_table_are_caught(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<!DOCTYPE html><html><body><h1>x</h1><img src='missing.png'>"
                    "<div style='width:3000px'>wide</div><script>console.error('boom')</script>"
                    "</body></html>")
    state = browser.check_page(page)
    assert state["broken"] and state["console_errors"]
    assert state["page_width"] > state["window_width"] and state["verdict_bottom"] is None
