"""Headless Chromium with axe-core, shared by the browser tests (reports on disk, service pages).

Needs the Debian packages ``chromium`` and ``chromium-driver`` and axe-core from npm
(``bash tests/browser/setup.sh`` installs all three). A test using :func:`chromium` is skipped
with the reason when they are absent, except on CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable(reason: str) -> None:
    """Skip (or, on CI, fail) because a piece of the browser set-up is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required on CI: run tests/browser/setup.sh)")
    pytest.skip(f"{reason}; run `bash tests/browser/setup.sh` to enable the browser tests")


@contextmanager
def chromium(log_network: bool = False) -> Iterator[Any]:
    """A headless Chromium WebDriver in a throwaway profile, 1100 x 1400 pixels
    (``log_network``: keep the performance and console logs, to see every request)."""
    chromium_bin, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium_bin or not chromedriver:
        unavailable("headless Chromium not installed (Debian packages chromium, chromium-driver)")
    if not AXE.is_file():
        unavailable(f"axe-core not installed at {AXE}")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pilotlab-chromium-")
    opts = webdriver.ChromeOptions()
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--window-size=1100,1400")
    opts.binary_location = chromium_bin
    if log_network:
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """The WCAG 2.2 A and AA violations axe-core finds on the page the driver shows."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    driver.set_script_timeout(60)
    raw = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations))).catch(e => done('ERROR ' + e));",
        WCAG_TAGS,
    )
    assert not raw.startswith("ERROR"), raw
    return list(json.loads(raw))
