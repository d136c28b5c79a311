"""Open the rendered reports in headless Chromium, as a reader would.

Each report is loaded from disk; the test takes a screenshot, runs axe-core (injected into the
page) and fails on any WCAG 2.2 A/AA violation, checks that no request left the page, prints it to
A4 PDF, and checks that hostile text from the pilot file did nothing.

The browser set-up (Chromium, chromedriver, axe-core) is ``tests/support/browser.py``: skipped
with the reason when a piece is absent, except on CI (``CI=true``), where that is a failure. Set ``PILOTLAB_SCREENSHOTS=<dir>``
to keep the screenshots.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilotlab.evidence import evidence_json
from pilotlab.report import portfolio_from_paths, render_portfolio, render_report
from tests.support import report as ex
from tests.support.browser import axe_violations, chromium

pytestmark = [pytest.mark.browser, pytest.mark.heavy]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium(log_network=True) as drv:
        yield drv


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every example rendered: simulated examples, hostile text, the shipped pilots, a portfolio."""
    base = tmp_path_factory.mktemp("browser")
    out: dict[str, Path] = {}
    for name, make in ex.EXAMPLES.items():
        out[name] = render_report(make(), base / name / "report.html")
    out["hostile"] = render_report(ex.common(hostile=True), base / "hostile" / "report.html")
    from pilotlab import load_pilot

    for pilot in sorted((ROOT / "pilots").glob("*/pilot.yaml")):
        if load_pilot(pilot).status == "planned":
            continue  # nothing to estimate yet (a power-planning example)
        ev = ex.shipped(pilot.parent.name)
        folder = base / f"pilot-{pilot.parent.name}"
        out[f"pilot-{pilot.parent.name}"] = render_report(ev, folder / "report.html")
        (folder / "evidence.json").write_text(evidence_json(ev), encoding="utf-8")
    runs = [p.parent for k, p in out.items() if k.startswith("pilot-")]
    out["portfolio"] = render_portfolio(portfolio_from_paths(runs), base / "index.html")
    # evidence across places: value for money, the gap map and the synthesis page
    from pilotlab.engine.synthesise import run_synthesis
    from tests.support.synthesis import EXTERNAL_CSV, write_places

    places = write_places(base / "places")
    out["value-for-money"] = places[0].parent / "report.html"
    out["portfolio-gap-map"] = render_portfolio(
        portfolio_from_paths([p.parent for p in places]), base / "places" / "index.html"
    )
    (base / "external.csv").write_text(
        EXTERNAL_CSV + f"hostile,local/claimant_rate,-0.2,0.3,{ex.SCRIPT},,,\n", encoding="utf-8"
    )
    run = run_synthesis(
        "local/claimant_rate", places, out=base / "synthesis", external=base / "external.csv"
    )
    out["synthesis"] = run.out_dir / "synthesis.html"
    from pilotlab.engine.randomise import randomise_pilot

    done = randomise_pilot(
        ROOT / "pilots" / "schools-stepped" / "pilot.yaml",
        base / "allocation",
        registry=f"sqlite:///{base / 'registry.db'}",
    )
    out["allocation"] = done.html_path
    return out


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _open(driver: Any, path: Path) -> None:
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())


def _axe(driver: Any) -> list[dict[str, Any]]:
    return axe_violations(driver)


NAMES = [
    *ex.EXAMPLES,
    "hostile",
    "pilot-employment-support",
    "pilot-family-hubs",
    "pilot-schools-stepped",
    "portfolio",
    "allocation",
    "value-for-money",
    "portfolio-gap-map",
    "synthesis",
]

#: Width of the printable area of A4 with the report's 16 mm side margins, in CSS pixels.
A4_PRINT_WIDTH = round((210 - 2 * 16) / 25.4 * 96)

_TOO_WIDE = """
return Array.from(document.querySelectorAll('table')).filter(t => {
  const box = t.parentElement;
  return t.getBoundingClientRect().width > box.getBoundingClientRect().width + 1
      || t.scrollWidth > t.getBoundingClientRect().width + 1;
}).map(t => t.id);
"""


def _too_wide_tables(driver: Any, width: int, print_media: bool) -> list[str]:
    """Tables wider than their container at ``width`` px (screen or print emulation)."""
    driver.set_window_size(width, 1400)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print" if print_media else ""})
    try:
        return list(driver.execute_script(_TOO_WIDE))
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        driver.set_window_size(1100, 1400)


@pytest.mark.parametrize("name", NAMES)
def test_report_in_a_real_browser(name: str, driver: Any, reports: dict[str, Path]) -> None:
    if name not in reports:
        pytest.skip(f"{name} is not among the shipped example pilots")
    path = reports[name]
    _open(driver, path)
    # no request left the page: only the file itself was fetched, nothing else was attempted
    page = path.resolve().as_uri()
    requests = _requests(driver)
    assert [u for u in requests if u != page and not u.startswith("data:")] == []
    resources = driver.execute_script("return performance.getEntriesByType('resource').length")
    assert resources == 0
    # readable: the headline is there and every chart rendered with a size
    assert driver.find_element("css selector", "h1").text
    sizes = driver.execute_script(
        "return Array.from(document.querySelectorAll('svg')).map("
        "s => [s.getBoundingClientRect().width, s.getBoundingClientRect().height])"
    )
    assert sizes and all(w > 200 and h > 50 for w, h in sizes)
    # accessibility: no WCAG 2.2 A/AA violation
    violations = _axe(driver)
    assert violations == [], json.dumps(
        [
            {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:3]]}
            for v in violations
        ],
        indent=1,
    )
    # no table clipped: none wider than its container at 1,280 px, nor in print on A4
    assert _too_wide_tables(driver, 1280, print_media=False) == []
    assert _too_wide_tables(driver, A4_PRINT_WIDTH, print_media=True) == []
    # a screenshot a person can look at
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1100, min(int(height) + 50, 16000))
    png = base64.b64decode(driver.get_screenshot_as_base64())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    keep = os.environ.get("PILOTLAB_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{name}.png").write_bytes(png)
    driver.set_window_size(1100, 1400)


def test_hostile_text_is_inert_in_the_browser(driver: Any, reports: dict[str, Path]) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    _open(driver, reports["hostile"])
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    counts = driver.execute_script(
        "return [document.querySelectorAll('img').length, document.scripts.length,"
        " document.querySelectorAll('[onerror]').length]"
    )
    assert counts == [0, 0, 0]
    assert ex.SCRIPT in driver.title
    body = driver.find_element("css selector", "body").text
    assert ex.SCRIPT in body and "<img src=x onerror=alert(1)>" in body


def test_prints_to_a4(driver: Any, reports: dict[str, Path]) -> None:
    from selenium.webdriver.common.print_page_options import PrintOptions

    _open(driver, reports["three_outcomes"])
    opts = PrintOptions()
    opts.page_width, opts.page_height = 21.0, 29.7
    pdf = base64.b64decode(driver.print_page(opts))
    assert pdf[:5] == b"%PDF-"
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 4 <= pages <= 40


def test_main_part_prints_to_a_few_pages(driver: Any, reports: dict[str, Path]) -> None:
    """The main part (before the technical annex) of a shipped pilot's report prints short."""
    from selenium.webdriver.common.print_page_options import PrintOptions

    name = "pilot-employment-support"
    if name not in reports:
        pytest.skip(f"{name} is not among the shipped example pilots")
    _open(driver, reports[name])
    driver.execute_script("document.getElementById('annex').remove()")
    opts = PrintOptions()
    opts.page_width, opts.page_height = 21.0, 29.7
    pdf = base64.b64decode(driver.print_page(opts))
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 2 <= pages <= 10, pages


def test_the_width_check_can_fail(driver: Any, tmp_path: Path) -> None:
    """A table too wide for its container is reported, on screen and in print."""
    bad = tmp_path / "wide.html"
    cells = "".join(f"<td>{'x' * 40}{i}</td>" for i in range(12))
    bad.write_text(
        "<!DOCTYPE html><html><head><title>x</title><style>td{white-space:nowrap}</style></head>"
        f'<body><div style="width:600px"><table id="wide"><tr>{cells}</tr></table></div>'
        "</body></html>",
        encoding="utf-8",
    )
    _open(driver, bad)
    assert _too_wide_tables(driver, 1280, print_media=False) == ["wide"]
    assert _too_wide_tables(driver, A4_PRINT_WIDTH, print_media=True) == ["wide"]


def test_the_checks_can_fail(driver: Any, tmp_path: Path) -> None:
    """The harness itself: axe reports a low-contrast, unlabelled page and a fetched image."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body><main>"
        '<p style="color:#bbb;background:#fff">faint text</p><input type="text">'
        '<img src="https://example.invalid/x.png"></main></body></html>',
        encoding="utf-8",
    )
    _open(driver, bad)
    ids = {v["id"] for v in _axe(driver)}
    assert {"color-contrast", "image-alt", "label"} <= ids
    assert any(u.startswith("https://example.invalid") for u in _requests(driver))
