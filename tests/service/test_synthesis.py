"""Evidence across places in the service: metric list, pooled page, full report and JSON, each
computed from only what the caller may see."""

from __future__ import annotations

import json

import jsonschema
import pytest

from pilotlab.synthesis import load_schema
from tests.service.conftest import World, with_metric
from tests.support.registry import make_evidence, make_spec

URL = "/synthesis/local/claimant_rate"


def _pilot(world: World, who: str, pilot_id: str, estimate: float, visibility: str) -> None:
    spec = make_spec(pilot_id)
    body = {"pilot": spec.model_dump(mode="json", exclude_unset=True), "source": "pilot.yaml"}
    c = world.as_(who)
    assert c.post("/api/pilots", json={**body, "visibility": visibility}).status_code == 201
    record = with_metric(make_evidence(spec, estimate))
    got = c.post(
        f"/api/pilots/{pilot_id}/runs",
        data={"pilot": json.dumps(body)},
        files=[("evidence", ("evidence.json", json.dumps(record).encode(), "application/json"))],
    )
    assert got.status_code == 201, got.text


@pytest.fixture
def places(world: World) -> World:
    _pilot(world, "editor_a", "pa-one", -0.5, "public")
    _pilot(world, "editor_a", "pa-two", -0.3, "organisation")
    _pilot(world, "editor_b", "pb-one", -0.1, "organisation")
    return world


def _count(world: World, who: str) -> int:
    rows = world.as_(who).get("/api/synthesis").json()
    return next(r["pilots"] for r in rows if r["ref"] == "local/claimant_rate")


def test_each_caller_pools_only_what_they_may_see(places: World) -> None:
    w = places
    assert {who: _count(w, who) for who in ("anonymous", "reader_a", "editor_b", "admin")} == {
        "anonymous": 1, "reader_a": 2, "editor_b": 2, "admin": 3,
    }  # fmt: skip
    schema = load_schema()
    want = {
        "reader_a": ({"pa-one", "pa-two"}, -0.4),
        "admin": ({"pa-one", "pa-two", "pb-one"}, -0.3),
    }
    for who, (ids, estimate) in want.items():
        got = w.as_(who).get(f"/api{URL}")
        assert got.status_code == 200, got.text
        record = got.json()
        jsonschema.validate(record, schema)
        assert {s["id"] for s in record["studies"]} == ids
        assert record["k"] == len(ids)
        assert record["estimate"] == pytest.approx(estimate)
        page = w.as_(who).get(URL)
        assert page.status_code == 200
        assert ("What the pilots show together" in page.text and "pb-one" not in page.text) or (
            who == "admin"
        )
        full = w.as_(who).get(f"{URL}/report.html")
        assert full.status_code == 200
        assert full.headers["content-security-policy"].startswith("sandbox;")
        assert "Evidence across places" in full.text
    # editor B sees its own pilot and the public one, never place A's private one
    studies = w.as_("editor_b").get(f"/api{URL}").json()["studies"]
    assert {s["id"] for s in studies} == {"pa-one", "pb-one"}


def test_fewer_than_two_visible_estimates_is_a_plain_page_not_an_error(places: World) -> None:
    page = places.as_("anonymous").get(URL)
    assert page.status_code == 200
    assert "Only one of the pilots you may see reports this metric" in page.text
    assert "nothing to pool" in page.text
    api = places.as_("anonymous").get(f"/api{URL}")
    assert api.status_code == 404 and "only one estimate" in api.json()["error"]
    none = places.as_("anonymous").get("/synthesis/local/persistent_absence")
    assert none.status_code == 200 and "None of the pilots you may see" in none.text
    assert places.as_("anonymous").get(f"{URL}/report.html").status_code == 404


def test_an_unknown_metric_or_option_is_a_clear_refusal(places: World) -> None:
    c = places.as_("admin")
    got = c.get("/api/synthesis/local/no_such_metric")
    assert got.status_code == 404 and "no_such_metric" in got.json()["error"]
    assert c.get("/synthesis/nope/claimant_rate").status_code == 404
    bad = c.get(f"/api{URL}", params={"method": "magic"})
    assert bad.status_code == 422 and "method" in bad.json()["error"]
    pct = c.get(f"/api{URL}", params={"scale": "percent", "method": "dl"})
    assert pct.status_code == 200 and pct.json()["scale"] == "percent"


def test_the_portfolio_links_to_the_synthesis_pages(places: World) -> None:
    page = places.as_("anonymous").get("/")
    assert 'href="/synthesis"' in page.text
    listing = places.as_("anonymous").get("/synthesis")
    assert listing.status_code == 200 and f'href="{URL}"' in listing.text
