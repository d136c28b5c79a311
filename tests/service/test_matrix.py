"""Every role x every endpoint x every visibility: allowed or refused, from one table.

``SEES`` says who may read a pilot of place A under each visibility and ``EDITS`` who may change
it; the expected status of every request is derived from those two lines alone: a read is 200
if the caller sees the pilot, else 404; a write is 401 for an anonymous caller, 404 if the
caller cannot see the pilot, 403 if they see it but may not change it, else 2xx.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pilotlab.registry import Registry
from tests.service.conftest import build_world, with_metric
from tests.support.registry import make_evidence, make_spec, registry_url  # noqa: F401

ROLES = ("anonymous", "reader_a", "editor_a", "editor_b", "reader_dept", "admin")
SEES = {
    "organisation": {"reader_a", "editor_a", "admin"},
    "shared": {"reader_a", "editor_a", "admin", "reader_dept"},  # shared with the department
    "public": set(ROLES),
}
EDITS = {"editor_a", "admin"}

SPEC = make_spec()
PILOT = {"pilot": SPEC.model_dump(mode="json", exclude_unset=True), "source": "pilot.yaml"}


def _requests(run_id: str) -> dict[str, tuple[str, str, dict]]:
    pid = SPEC.id
    return {
        "show": ("read", "GET", {"url": f"/api/pilots/{pid}"}),
        "page": ("read", "GET", {"url": f"/pilots/{pid}"}),
        "run": ("read", "GET", {"url": f"/api/pilots/{pid}/runs/{run_id}"}),
        "evidence": ("read", "GET", {"url": f"/pilots/{pid}/runs/{run_id}/evidence.json"}),
        "report": ("read", "GET", {"url": f"/pilots/{pid}/runs/{run_id}/report.html"}),
        "plan-status": ("read", "POST", {"url": "/api/plan-status", "json": PILOT}),
        "allocations": ("read", "GET", {"url": f"/api/pilots/{pid}/allocations"}),
        "cycle-chain": ("read", "GET", {"url": f"/api/pilots/{pid}/cycle-chain"}),
        "record-allocation": (
            "write",
            "POST",
            {
                "url": f"/api/pilots/{pid}/allocations",
                "json": {
                    **PILOT,
                    "allocation": {"units": []},
                    "allocation_sha256": "ALLOCSHA",  # one per caller: each draw is new
                    "scheme": "complete",
                    "seed": 7,
                    "n_units": 24,
                    "reason": "redrawn",
                },
            },
        ),
        "amend": (
            "write",
            "POST",
            {"url": f"/api/pilots/{pid}/amend", "json": {**PILOT, "reason": "refresh"}},
        ),
        "status": (
            "write",
            "POST",
            {"url": f"/api/pilots/{pid}/status", "json": {"status": "live"}},
        ),
        "access": (
            "write",
            "PUT",
            {
                "url": f"/api/pilots/{pid}/access",
                "json": {"visibility": "VIS", "shared_with": ["department"]},
            },
        ),
        "record-run": (
            "write",
            "POST",
            {
                "url": f"/api/pilots/{pid}/runs",
                "data": {"pilot": json.dumps(PILOT)},
                "files": [
                    (
                        "evidence",
                        (
                            "evidence.json",
                            json.dumps(with_metric(make_evidence(SPEC))).encode(),
                            "application/json",
                        ),
                    )
                ],
            },
        ),
    }


def _other_registry_export(tmp_path: Path) -> Path:
    """evidence.jsonl of one pilot of another registry, reporting the framework metric."""
    with Registry(f"sqlite:///{tmp_path / 'other.db'}", name="Other place") as other:
        spec = make_spec("other-pilot")
        other.register(spec)
        other.record_run(spec, with_metric(make_evidence(spec, -0.2)), None, {})
        other.export(tmp_path / "other")
    return tmp_path / "other" / "evidence.jsonl"


def expected(role: str, visibility: str, kind: str) -> int:
    sees = role in SEES[visibility]
    if kind == "read":
        return 200 if sees else 404
    if role == "anonymous":
        return 401
    if not sees:
        return 404
    return 200 if role in EDITS else 403


@pytest.mark.parametrize("visibility", list(SEES))
def test_authorisation_matrix(visibility: str, registry_url: str, tmp_path: Path) -> None:  # noqa: F811
    world = build_world(registry_url)
    try:
        a = world.as_("editor_a")
        assert a.post("/api/pilots", json={**PILOT, "visibility": visibility}).status_code == 201
        if visibility == "shared":
            a.put(
                f"/api/pilots/{SPEC.id}/access",
                json={"visibility": "shared", "shared_with": ["department"]},
            )
        got = a.post(
            f"/api/pilots/{SPEC.id}/runs",
            data={"pilot": json.dumps(PILOT)},
            files=[
                (
                    "evidence",
                    ("evidence.json", json.dumps(with_metric(make_evidence(SPEC))).encode(), "x"),
                ),
                ("report", ("report.html", b"<!doctype html><title>r</title>", "text/html")),
            ],
        )
        run_id = got.json()["run_id"]
        failures = []
        for role in ROLES:
            client = world.as_(role)
            for name, (kind, method, kwargs) in _requests(run_id).items():
                sha = hashlib.sha256(role.encode()).hexdigest()
                kw = json.loads(
                    json.dumps({k: v for k, v in kwargs.items() if k != "files"})
                    .replace('"VIS"', json.dumps(visibility))
                    .replace('"ALLOCSHA"', json.dumps(sha))
                )
                if "files" in kwargs:
                    kw["files"] = kwargs["files"]
                response = client.request(method, **kw)
                want = expected(role, visibility, kind)
                status = response.status_code
                ok = (200 <= status < 300) if want == 200 else status == want
                if not ok:
                    failures.append(
                        f"{role} {name}: {status} (expected {want}) {response.text[:120]}"
                    )
        assert failures == []
        # the listing agrees with the table too
        for role in ROLES:
            ids = [p["id"] for p in world.as_(role).get("/api/pilots").json()]
            assert ids == ([SPEC.id] if role in SEES[visibility] else []), role
        # a record imported from another registry with this visibility follows the same table:
        # in the portfolio (marked imported, with its source), the records and the synthesis
        export = _other_registry_export(tmp_path)
        form = {"visibility": visibility}
        if visibility == "shared":
            form["shared_with"] = "department"
        with export.open("rb") as fh:
            got = a.post("/api/import", data=form, files={"file": ("evidence.jsonl", fh, "x")})
        assert got.status_code == 200, got.text
        assert got.json()["visibility"] == visibility
        for role in ROLES:
            client, sees = world.as_(role), role in SEES[visibility]
            rows = client.get("/api/portfolio").json()
            imported = [r for r in rows if r["imported"]]
            assert [(r["id"], r["source"]) for r in imported] == (
                [("other-pilot", "Other place")] if sees else []
            ), role
            records = {r["pilot"]["id"] for r in client.get("/api/records").json()}
            assert ("other-pilot" in records) == sees, role
            page = client.get("/")
            assert page.status_code == 200
            assert ("imported from Other place" in page.text) == sees, role
            # both pilots report the metric: a synthesis only for those who see both
            metrics = {m["ref"]: m["pilots"] for m in client.get("/api/synthesis").json()}
            assert metrics["local/claimant_rate"] == (2 if sees else 0), role
            pooled = client.get("/api/synthesis/local/claimant_rate")
            assert pooled.status_code == (200 if sees else 404), (role, pooled.text)
            assert client.get("/synthesis/local/claimant_rate").status_code == 200
            assert client.get("/synthesis").status_code == 200
    finally:
        world.registry.close()
