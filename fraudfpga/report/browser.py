"""The report opened in a real browser: headless Chromium (Debian `chromium` and
`chromium-driver`) driven through Selenium at a reader's window size. It reports what a reader
would hit: images that do not load, console errors, content wider than the page, and where the
verdict ends; it can save the first screen as a PNG."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install chromium chromium-driver (make setup does it as root)"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def missing() -> str | None:
    """Why the page cannot be checked here, with the install command, or None."""
    for tool in (CHROMIUM, DRIVER):
        if not Path(tool).exists() and shutil.which(Path(tool).name) is None:
            return f"{Path(tool).name} not found ({INSTALL})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed (pip install selenium)"
    return None


def _tool(path: str) -> str:
    return path if Path(path).exists() else shutil.which(Path(path).name)


def check_page(page: Path, width: int = 1280, height: int = 900,
               screenshot: Path | None = None) -> dict:
    """Open `page` at width x height; return the broken images, the console errors, the page's
    and the window's widths, and the bottom of the verdict box in pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fraudfpga_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = _tool(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_tool(DRIVER)))
    try:
        driver.set_window_size(width, height)
        driver.get(Path(page).resolve().as_uri())
        state = driver.execute_script("""
            const images = Array.from(document.images);
            const verdict = document.getElementById('verdict');
            return {
              images: images.length,
              broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
              page_width: document.documentElement.scrollWidth,
              window_width: document.documentElement.clientWidth,
              verdict_bottom: verdict ? verdict.getBoundingClientRect().bottom : null,
              verdict_text: verdict ? verdict.innerText : ''};""")
        errors = [entry["message"] for entry in driver.get_log("browser")
                  if entry["level"] in ("SEVERE", "ERROR")]
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return state | {"console_errors": errors, "window": [width, height]}
