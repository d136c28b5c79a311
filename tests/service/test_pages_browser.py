"""The service's pages in headless Chromium against a real ``pilotlab serve``: signed in through
the form (no JavaScript needed), each page checked with axe-core for WCAG 2.2 A and AA."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilotlab.registry.remote import RemoteRegistry
from tests.report.test_browser import AXE, FLAGS, WCAG_TAGS, _unavailable
from tests.service.test_server import PASSWORD, Server, _session
from tests.support.registry import make_evidence, make_spec

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        _unavailable("headless Chromium not installed (Debian packages chromium, chromium-driver)")
    if not AXE.is_file():
        _unavailable(f"axe-core not installed at {AXE}")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pilotlab-chromium-")
    opts = webdriver.ChromeOptions()
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--window-size=1100,1400")
    opts.binary_location = chromium
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _axe(driver: Any) -> list[dict[str, Any]]:
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


def _wait_for(driver: Any, text: str) -> None:
    """Wait for the page a form led to (signing in checks an argon2 hash: slow by design)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: text in d.page_source)


def _check(driver: Any, url: str) -> None:
    driver.get(url)
    violations = _axe(driver)
    assert violations == [], [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in violations
    ]


def test_pages_pass_axe_and_work_without_javascript(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    srv = Server(
        f"sqlite:///{tmp_path / 'registry.db'}", tmp_path,
        {"PILOTLAB_ADMIN_EMAIL": "admin@example.gov.uk", "PILOTLAB_ADMIN_PASSWORD": PASSWORD},
    )  # fmt: skip
    try:
        admin, _ = _session(srv.base, "admin@example.gov.uk")
        token = admin.post("/api/tokens", json={"label": "t"}).json()["token"]
        admin.close()
        spec, other = make_spec(), make_spec("second-pilot", policy_area="health", status="planned")
        out = tmp_path / "out"
        (out / "tables").mkdir(parents=True)
        (out / "report.html").write_text(
            "<!doctype html><html lang='en'><title>r</title><p>ok</p></html>"
        )
        (out / "tables" / "results.csv").write_text("a,b\n1,2\n")
        with RemoteRegistry(srv.base, token) as r:
            r.register(spec)
            r.register(other)
            r.amend(make_spec(design={"estimator": "twfe", "alpha": 0.05}), reason="fixed effects")
            r.record_run(
                make_spec(design={"estimator": "twfe", "alpha": 0.05}),
                make_evidence(make_spec(design={"estimator": "twfe", "alpha": 0.05})),
                None, {}, outputs=out,
            )  # fmt: skip
        driver.delete_all_cookies()
        _check(driver, f"{srv.base}/")  # anonymous: nothing public yet
        _check(driver, f"{srv.base}/sign-in")
        driver.find_element(By.ID, "email").send_keys("admin@example.gov.uk")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        _wait_for(driver, "Account (admin@example.gov.uk")
        _check(driver, f"{srv.base}/")
        assert "second-pilot" in driver.page_source
        _check(driver, f"{srv.base}/?policy_area=health&status=planned")
        assert "1 of 2 pilots match" in driver.page_source
        _check(driver, f"{srv.base}/pilots/{spec.id}")
        assert "fixed effects" in driver.page_source and "Report" in driver.page_source
        # a form without JavaScript: make the pilot public
        driver.find_element(By.CSS_SELECTOR, "input[name=visibility][value=public]").click()
        driver.find_element(By.XPATH, "//button[text()='Save who may see it']").click()
        _wait_for(driver, "Visibility changed")
        _check(driver, f"{srv.base}/account")
        _check(driver, f"{srv.base}/admin")
        _check(driver, f"{srv.base}/pilots/no-such-pilot")
        driver.delete_all_cookies()
        driver.get(f"{srv.base}/")
        assert spec.id in driver.page_source and "second-pilot" not in driver.page_source
    finally:
        srv.stop()
