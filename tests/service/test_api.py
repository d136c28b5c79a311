"""The JSON API through an in-process HTTP client, as the command line and scripts use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilotlab.exceptions import RegistryError
from pilotlab.registry.tables import audit_log, run_files, runs
from tests.service.conftest import PASSWORD, World
from tests.support.registry import count_rows, make_evidence, make_spec

REPORT = (
    b"<!doctype html><html lang='en'><head><title>r</title></head><body><p>ok</p></body></html>"
)


def _outputs(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    (out / "report.html").write_bytes(REPORT)
    (out / "tables" / "results.csv").write_text("outcome,estimate\nclaimant_rate,-0.42\n")
    return out


def _count(world: World, table) -> int:
    import sqlalchemy as sa

    with world.registry.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_place_registers_runs_and_shares_and_others_see_only_what_they_may(
    world: World, tmp_path: Path
) -> None:
    spec = make_spec()
    with world.remote("editor_a") as a:
        v = a.register(spec)
        assert v.version == 1
        run = a.record_run(
            spec, make_evidence(spec), "d" * 64, {"pilotlab": "0.1.0"}, outputs=_outputs(tmp_path)
        )
        assert a.plan_status(spec).matches_registered
        assert [p.id for p in a.list_pilots()] == [spec.id]
    with world.remote("reader_a") as r:
        assert r.show(spec.id).runs[0].run_id == run.run_id
        with pytest.raises(RegistryError, match="you may not"):
            r.set_status(spec.id, "completed")
    with world.remote("editor_b") as b:
        assert b.list_pilots() == []
        with pytest.raises(
            RegistryError, match="not registered in http://testserver, or you may not"
        ):
            b.show(spec.id)
        with pytest.raises(RegistryError, match="or you may not see it"):
            b.amend(make_spec(design={"estimator": "twfe"}), reason="take it over")
    assert world.remote("anonymous").list_pilots() == []

    # shared with the department: its reader sees it, place B still does not
    got = world.as_("editor_a").put(
        f"/api/pilots/{spec.id}/access",
        json={"visibility": "shared", "shared_with": ["department"]},
    )
    assert got.status_code == 200, got.text
    assert [p.id for p in world.remote("reader_dept").list_pilots()] == [spec.id]
    assert world.remote("editor_b").list_pilots() == []

    # the report is served inside a sandbox; the tables as downloads
    page = world.as_("reader_dept").get(f"/pilots/{spec.id}")
    assert page.status_code == 200 and "report.html" in page.text
    report = world.as_("reader_dept").get(f"/pilots/{spec.id}/runs/{run.run_id}/report.html")
    assert report.content == REPORT
    assert report.headers["content-security-policy"].startswith("sandbox;")
    table = world.as_("reader_dept").get(
        f"/api/pilots/{spec.id}/runs/{run.run_id}/files/tables/results.csv"
    )
    assert table.headers["content-disposition"].startswith("attachment")

    # every write is in the audit log with who and which token
    audit = world.as_("admin").get("/api/audit").json()
    actions = [(e["action"], e["person_email"], e["token_id"] is not None) for e in audit]
    assert ("register", "editor_a@example.gov.uk", True) in actions
    assert ("run", "editor_a@example.gov.uk", True) in actions
    assert ("access", "editor_a@example.gov.uk", True) in actions
    run_entry = next(e for e in audit if e["action"] == "run")
    assert run_entry["detail"]["run_id"] == run.run_id
    assert run_entry["registry_seq"] is not None
    assert world.as_("editor_a").get("/api/audit").status_code == 403
    assert world.registry.verify() == []


def test_export_and_import_through_the_service(world: World, tmp_path: Path) -> None:
    spec = make_spec()
    with world.remote("editor_a") as a:
        a.register(spec)
        a.record_run(spec, make_evidence(spec), None, {})
        summary = a.export(tmp_path / "export")
    assert summary.records == 1 and summary.rows == 2
    line = json.loads((tmp_path / "export" / "evidence.jsonl").read_text())
    assert line["provenance"]["registry_url"] == "http://testserver"  # never the database URL
    assert world.remote("editor_b").export(tmp_path / "b").records == 0
    # a record from another registry, imported by place B: visible to place B only
    from pilotlab.registry import Registry

    with Registry(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other_spec = make_spec("other-pilot")
        other.register(other_spec)
        other.record_run(other_spec, make_evidence(other_spec), None, {})
        other.export(tmp_path / "other")
    with world.remote("editor_b") as b:
        s = b.import_records(tmp_path / "other" / "evidence.jsonl")
        assert (s.read, s.imported) == (1, 1)
        assert [r["pilot"]["id"] for r in b.portfolio_records()] == ["other-pilot"]
    assert [r["pilot"]["id"] for r in world.remote("editor_a").portfolio_records()] == [spec.id]
    with pytest.raises(RegistryError, match="editors and administrators only"):
        world.remote("reader_a").import_records(tmp_path / "other" / "evidence.jsonl")


def test_an_import_can_be_shared_from_the_client(world: World, tmp_path: Path) -> None:
    from pilotlab.registry import Registry

    with Registry(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other_spec = make_spec("shared-pilot")
        other.register(other_spec)
        other.record_run(other_spec, make_evidence(other_spec), None, {})
        other.export(tmp_path / "other")
    export = tmp_path / "other" / "evidence.jsonl"
    with world.remote("editor_b") as b:
        s = b.import_records(export, shared_with=("place-a",), visibility="shared")
        assert s.imported == 1
    seen = [r["pilot"]["id"] for r in world.remote("editor_a").portfolio_records()]
    assert seen == ["shared-pilot"]
    assert world.remote("anonymous").portfolio_records() == []
    with pytest.raises(RegistryError, match="only with visibility 'shared'"):
        world.remote("editor_b").import_records(export, visibility="public", shared_with=("x",))


def test_import_visibility_needs_a_service(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pilotlab.cli import cli

    url = f"sqlite:///{tmp_path / 'r.db'}"
    for extra in (["--visibility", "public"], ["--share-with", "place-a"]):
        res = CliRunner().invoke(
            cli, ["import", str(tmp_path / "x.jsonl"), "--registry", url, *extra]
        )
        assert res.exit_code == 1 and "apply to imports through an evidence service" in res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize(
    ("what", "status", "message"),
    [
        ("bad_json_field", 422, "is not valid JSON"),
        ("no_evidence", 422, "has no 'evidence' file"),
        ("not_an_evidence_record", 422, "not a valid evidence record"),
        ("nan", 422, "not valid JSON"),
        ("hostile_table_name", 422, "is not allowed"),
        ("report_not_html", 415, "not an HTML document"),
        ("wrong_plan_hash", 422, "not the"),
        ("other_pilot", 422, "is for"),
        ("too_large", 413, "limit"),
        ("garbage_multipart", 422, "has no 'pilot' field"),
    ],
)
def test_bad_uploads_are_refused_with_a_clear_4xx_and_write_nothing(
    world: World, what: str, status: int, message: str
) -> None:
    spec = make_spec()
    world.remote("editor_a").register(spec)
    before = count_rows(world.registry)
    files_before, audit_before = _count(world, run_files), _count(world, audit_log)
    pilot = {"pilot": spec.model_dump(mode="json", exclude_unset=True), "source": "pilot.yaml"}
    evidence = json.dumps(make_evidence(spec)).encode()
    data = {"pilot": json.dumps(pilot)}
    files: list = [("evidence", ("evidence.json", evidence, "application/json"))]
    client = world.as_("editor_a")
    kwargs: dict = {}
    if what == "bad_json_field":
        data["pilot"] = "{not json"
    elif what == "no_evidence":
        files = [("report", ("report.html", REPORT, "text/html"))]
    elif what == "not_an_evidence_record":
        files = [("evidence", ("evidence.json", b'{"schema": "pilotlab.evidence/1"}', "x"))]
    elif what == "nan":
        files = [("evidence", ("evidence.json", evidence.replace(b"-0.42", b"NaN"), "x"))]
    elif what == "hostile_table_name":
        files.append(("table", ("../../etc/passwd.csv\x00", b"a,b\n", "text/csv")))
    elif what == "report_not_html":
        files.append(("report", ("report.html", b"\x89PNG....", "image/png")))
    elif what == "wrong_plan_hash":
        data["pilot"] = json.dumps({**pilot, "plan_sha256": "0" * 64})
    elif what == "other_pilot":
        other = make_spec("another")
        data["pilot"] = json.dumps({"pilot": other.model_dump(mode="json"), "source": "p.yaml"})
    elif what == "too_large":
        files.append(("report", ("report.html", b"<html>" + b" " * (65 * 1024**2), "text/html")))
    if what == "garbage_multipart":
        kwargs = {
            "content": b"--x\r\nnonsense",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        }
        got = client.post(f"/api/pilots/{spec.id}/runs", **kwargs)
    else:
        got = client.post(f"/api/pilots/{spec.id}/runs", data=data, files=files)
    assert got.status_code == status, got.text
    assert message in got.json()["error"]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert count_rows(world.registry) == before
    assert (_count(world, run_files), _count(world, audit_log)) == (files_before, audit_before)


def test_security_headers_on_every_response_and_no_500_for_hostile_paths(world: World) -> None:
    paths = [
        "/", "/api/pilots", "/nowhere", "/pilots/%00%ff", "/api/pilots/x/runs/y",
        "/api/pilots/x/runs/%00/files/a", "/pilots/" + "x" * 5000, "/static/style.css",
        "/api/openapi.json", "/?organisation=%00&metric=%ff",
    ]  # fmt: skip
    for path in paths:
        got = world.client.get(path)
        assert got.status_code < 500, path
        for header in (
            "content-security-policy",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
        ):
            assert header in got.headers, (path, header)
    assert (
        world.client.get("/api/pilots", headers={"authorization": "Bearer nonsense"}).status_code
        == 401
    )
    doc = world.client.get("/api/openapi.json").json()
    assert "/api/pilots/{pilot_id}/runs" in doc["paths"]
    assert world.client.post(
        "/api/pilots", content=b"{", headers={"content-type": "application/json"}
    ).status_code in (401, 422)
    hostile = world.client.post("/sign-in", data={"email": "a\x00@b.c", "password": "x"})
    assert hostile.status_code == 401


def test_sign_in_sets_a_safe_cookie_and_forms_need_their_csrf_token(world: World) -> None:
    c = world.as_("anonymous")
    bad = c.post(
        "/sign-in", data={"email": "editor_a@example.gov.uk", "password": "wrong password!"}
    )
    assert bad.status_code == 401 and "do not match" in bad.text
    got = c.post(
        "/sign-in", data={"email": "editor_a@example.gov.uk", "password": PASSWORD},
        follow_redirects=False,
    )  # fmt: skip
    assert got.status_code == 303
    cookie = got.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    account = c.get("/account")
    assert "editor_a@example.gov.uk" in account.text
    # a form without the session's CSRF token is refused
    elsewhere = c.post(
        "/account/tokens", data={"label": "x"}, headers={"origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text
    no_csrf = c.post("/account/tokens", data={"label": "x"})
    assert no_csrf.status_code == 403 and "expired" in no_csrf.text
    import re

    csrf = re.search(r'name="csrf" value="([^"]+)"', account.text).group(1)
    made = c.post("/account/tokens", data={"label": "laptop", "csrf": csrf})
    assert made.status_code == 200 and "plt_" in made.text
    # API writes with the cookie need the CSRF header too
    assert c.post("/api/tokens", json={"label": "x"}).status_code == 403
    assert (
        c.post("/api/tokens", json={"label": "x"}, headers={"x-csrf-token": csrf}).status_code
        == 201
    )


def test_a_revoked_token_stops_working_at_once(world: World) -> None:
    c = world.as_("editor_a")
    assert c.get("/api/me").json()["role"] == "editor"
    token_id = c.get("/api/me").json()["token_id"]
    assert c.delete(f"/api/tokens/{token_id}").status_code == 204
    assert c.get("/api/me").status_code == 401


def test_secrets_are_stored_only_as_argon2_hashes(world: World) -> None:
    import sqlalchemy as sa

    with world.registry.engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT secret_hash FROM api_tokens")).scalars().all()
        passwords = conn.execute(sa.text("SELECT password_hash FROM people")).scalars().all()
        dump = "\n".join(str(r) for r in conn.execute(sa.text("SELECT * FROM audit_log")))
    assert all(h.startswith("$argon2id$") for h in [*hashes, *passwords])
    for token in world.tokens.values():
        assert token not in dump and token.split("_", 2)[2] not in "".join(hashes)
    assert PASSWORD not in dump


def test_runs_table_is_untouched_by_a_refused_run(world: World) -> None:
    spec = make_spec()
    world.remote("editor_a").register(spec)
    with pytest.raises(RegistryError, match="you may not"):
        world.remote("reader_a").record_run(spec, make_evidence(spec), None, {})
    assert _count(world, runs) == 0


def test_pilotlab_run_records_its_report_tables_and_evidence_in_the_service(
    world: World, tmp_path: Path
) -> None:
    import warnings

    from pilotlab.engine import run_pilot
    from pilotlab.simulate import make_pilot_panel
    from pilotlab.spec import load_pilot
    from tests.support import pilot_dict, write_pilot

    sim = make_pilot_panel(30, 8, 6, 4, effect=-0.5, seed=3)
    raw = pilot_dict(
        treatment={"units": list(sim.treated_units), "start": sim.start},
        design={"estimator": "twfe", "robustness": []},
    )
    path = write_pilot(tmp_path / "pilot", raw, sim.data)
    with world.remote("editor_a") as remote:
        remote.register(load_pilot(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            done = run_pilot(path, tmp_path / "out", registry=remote)
        assert done.recorded
        history = remote.show("test-pilot")
    assert [r.run_id for r in history.runs] == [done.run_id]
    shown = world.as_("reader_a").get("/api/pilots/test-pilot").json()
    names = [f["name"] for f in shown["files"][done.run_id]]
    assert "report.html" in names and any(n.startswith("tables/") for n in names)
    report = world.as_("reader_a").get(f"/pilots/test-pilot/runs/{done.run_id}/report.html")
    assert report.content == (tmp_path / "out" / "report.html").read_bytes()
    evidence = world.as_("reader_a").get(f"/pilots/test-pilot/runs/{done.run_id}/evidence.json")
    assert evidence.json()["plan"]["registered"] is True


def test_first_start_without_an_administrator_offers_a_one_time_setup_code(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from pilotlab.registry import Registry
    from pilotlab.service import create_app
    from pilotlab.service.actions import Service
    from pilotlab.service.server import first_administrator

    with Registry(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        said: list[str] = []
        code = first_administrator(Service(reg), said.append, "http://127.0.0.1:8000")
        assert code is not None and f"/setup?code={code}" in said[0]
        client = TestClient(create_app(reg, setup_code=code))
        form = {
            "name": "Ada", "email": "ada@example.gov.uk", "password": PASSWORD,
            "organisation": "department", "organisation_name": "The Department",
        }  # fmt: skip
        assert client.post("/setup", data={**form, "code": "guess"}).status_code == 403
        assert client.post("/setup", data={**form, "code": code}).status_code == 200
        again = client.post("/setup", data={**form, "code": code, "email": "eve@example.gov.uk"})
        assert again.status_code in (403, 404)
        assert first_administrator(Service(reg), said.append, "x") is None  # one exists now
        assert client.get("/setup").status_code == 404


def test_the_pilot_page_shows_registered_allocations(world: World, monkeypatch) -> None:
    spec = make_spec()
    world.remote("editor_a").register(spec)
    page = world.as_("reader_a").get(f"/pilots/{spec.id}")
    assert "No randomised allocation is recorded" in page.text
    row = {"version": 1, "recorded_at": "2026-01-01T00:00:00.000000Z", "scheme": "stratified",
           "seed": 20260101, "n_units": 40, "allocation_sha256": "a" * 64, "reason": None}  # fmt: skip
    monkeypatch.setattr(type(world.registry), "allocations", lambda self, pid: [row], raising=False)
    page = world.as_("reader_a").get(f"/pilots/{spec.id}")
    assert "stratified" in page.text and "20260101" in page.text


def test_list_by_metric_through_the_service_matches_outcome_metrics(world: World) -> None:
    """`pilotlab list --metric` through a service matches the outcomes' framework metrics, as
    a database registry does (not the outcome column names), among the pilots one may see."""
    measured = [
        {"column": "claimant_rate", "metric": "local/claimant_rate", "primary": True,
         "better": "lower", "mde": 0.5},
    ]  # fmt: skip
    with world.remote("editor_a") as a:
        a.register(make_spec("with-metric", outcomes=measured))
        a.register(make_spec("column-only"))  # an outcome column claimant_rate, no metric
    with world.remote("editor_b") as b:
        b.register(make_spec("b-with-metric", outcomes=measured))
    with world.remote("editor_a") as a:
        assert [p.id for p in a.pilots_with_metric("local/claimant_rate")] == ["with-metric"]
        assert [p.id for p in a.pilots_with_metric("claimant_rate")] == ["with-metric"]
        assert a.pilots_with_metric("local/employment_rate") == []
    with world.remote("admin") as admin:
        both = [p.id for p in admin.pilots_with_metric("local/claimant_rate")]
        assert both == ["b-with-metric", "with-metric"]
        assert world.registry.pilots_with_metric("local/claimant_rate") == (
            admin.pilots_with_metric("local/claimant_rate")
        )
