"""The service's pages in headless Chromium against a real ``pilotlab serve``: signed in through
the form (no JavaScript needed), each page checked with axe-core for WCAG 2.2 A and AA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilotlab.registry.remote import RemoteRegistry
from tests.service.conftest import with_metric
from tests.service.test_server import PASSWORD, Server, _session
from tests.support.browser import axe_violations, chromium
from tests.support.registry import make_evidence, make_spec

pytestmark = [pytest.mark.browser, pytest.mark.heavy]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium() as drv:
        yield drv


def _axe(driver: Any) -> list[dict[str, Any]]:
    return axe_violations(driver)


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
        made = admin.post(
            "/api/people",
            json={"email": "reader@example.gov.uk", "name": "R", "role": "reader",
                  "organisation": None, "password": PASSWORD},
        )  # fmt: skip
        assert made.status_code == 201, made.text
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
                with_metric(make_evidence(make_spec(design={"estimator": "twfe", "alpha": 0.05}))),
                None, {}, outputs=out,
            )  # fmt: skip
            r.record_run(other, with_metric(make_evidence(other, -0.2)), None, {})
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
        # evidence across places: the metric list, the pooled page and the full report
        _check(driver, f"{srv.base}/synthesis")
        assert "Claimant" in driver.page_source
        _check(driver, f"{srv.base}/synthesis/local/claimant_rate")
        assert "What the pilots show together" in driver.page_source
        # the full page is the report `pilotlab synthesise` writes (checked with axe in
        # tests/report/test_browser.py), served in a sandbox where no script runs
        driver.get(f"{srv.base}/synthesis/local/claimant_rate/report.html")
        assert "Evidence across places" in driver.title
        _check(driver, f"{srv.base}/account")
        _check(driver, f"{srv.base}/account/password")
        _check(driver, f"{srv.base}/admin")
        assert "Reset the password" in driver.page_source
        _check(driver, f"{srv.base}/pilots/no-such-pilot")
        driver.delete_all_cookies()
        driver.get(f"{srv.base}/")
        assert spec.id in driver.page_source and "second-pilot" not in driver.page_source
        # anonymous: one public estimate, so nothing to pool, said plainly
        _check(driver, f"{srv.base}/synthesis/local/claimant_rate")
        assert "nothing to pool" in driver.page_source
    finally:
        srv.stop()
