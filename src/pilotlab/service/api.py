"""The JSON API (``/api``): what the command line's registry commands call over HTTP.

Every route answers JSON; a refusal is ``{"error": "..."}`` with a 4xx status. Writes need an
API token (``Authorization: Bearer plt_...``) or a browser session plus its CSRF token in the
``X-CSRF-Token`` header.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from pilotlab.service.actions import AllocationUpload, Service, ServiceError, Upload
from pilotlab.service.auth import Principal, csrf_ok
from pilotlab.service.web import REPORT_CSP, principal_of, service_of

__all__ = ["router"]

router = APIRouter(prefix="/api")

_SHA = r"^[0-9a-f]{64}$"
_TIME_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


_M = TypeVar("_M", bound=_Body)


class PilotFile(_Body):
    """A pilot file as sent by the command line: its parsed content and name."""

    pilot: dict[str, Any] = Field(description="The pilot file's content (YAML parsed to JSON).")
    source: str = Field("pilot.yaml", max_length=300, description="The file's name, for messages.")
    plan_sha256: str | None = Field(None, pattern=_SHA, description="The plan's hash as sent.")


class RegisterBody(PilotFile):
    data_seen: bool = False
    organisation: str | None = Field(None, max_length=64)
    visibility: Literal["organisation", "shared", "public"] = "organisation"


class AmendBody(PilotFile):
    reason: str = Field(max_length=5000)
    data_seen: bool = False


class StatusBody(_Body):
    status: str = Field(max_length=20)


class AccessBody(_Body):
    visibility: Literal["organisation", "shared", "public"]
    shared_with: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=200
    )
    organisation: str | None = Field(None, max_length=64)


class OrganisationBody(_Body):
    slug: str = Field(max_length=64)
    name: str = Field(max_length=200)


class PersonBody(_Body):
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    role: Literal["reader", "editor", "administrator"]
    organisation: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=1024)


class PasswordResetBody(_Body):
    password: str = Field(
        min_length=12, max_length=1024, description="A one-time password to give them privately."
    )


class PasswordChangeBody(_Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(min_length=12, max_length=1024)


class TokenBody(_Body):
    label: str = Field("API token", max_length=100)
    expires_at: str | None = Field(
        None, pattern=_TIME_UTC, description="UTC, e.g. 2027-01-31T00:00:00Z"
    )


class AllocationBody(PilotFile):
    """An allocation drawn by ``pilotlab randomise``, with the pilot file it was drawn for."""

    allocation: dict[str, Any] = Field(description="allocation.json as written.")
    allocation_sha256: str = Field(pattern=_SHA, description="The allocation's own hash.")
    scheme: str = Field(min_length=1, max_length=40)
    seed: int = Field(ge=0, le=2**63 - 1)
    n_units: int = Field(ge=1, le=10**9)
    data_sha256: str | None = Field(None, pattern=_SHA)
    reason: str | None = Field(None, max_length=5000)


class RunMeta(_Body):
    data_sha256: str | None = Field(None, pattern=_SHA)
    software: dict[str, Any] = Field(default_factory=dict)
    started_at: str | None = Field(None, pattern=_TIME_UTC)
    finished_at: str | None = Field(None, pattern=_TIME_UTC)


def _caller(request: Request) -> Principal:
    return principal_of(request)


def _writer(request: Request) -> Principal:
    """The caller of a write; a browser session must send its CSRF token."""
    principal = principal_of(request)
    if principal.csrf is not None and not csrf_ok(principal, request.headers.get("x-csrf-token")):
        raise ServiceError(403, "a write from a browser session needs its X-CSRF-Token header")
    return principal


def _svc(request: Request) -> Service:
    return service_of(request)


Caller = Annotated[Principal, Depends(_caller)]
Writer = Annotated[Principal, Depends(_writer)]
Svc = Annotated[Service, Depends(_svc)]


@router.get("/me", summary="Who the caller is")
def me(svc: Svc, who: Caller) -> dict[str, Any]:
    return {
        "person": who.person.to_dict() if who.person else None,
        "role": who.role,
        "token_id": who.token_id,
    }


@router.get("/pilots", summary="Pilots the caller may see (pilotlab list [--metric])")
def list_pilots(
    svc: Svc,
    who: Caller,
    metric: Annotated[
        str, Query(max_length=200, description="only pilots with an outcome naming this metric")
    ] = "",
) -> list[dict[str, Any]]:
    return svc.list_pilots(who, metric)


@router.get("/portfolio", summary="Portfolio rows, with the page's filters")
def portfolio(
    svc: Svc,
    who: Caller,
    q: Annotated[str, Query(max_length=200)] = "",
    organisation: Annotated[str, Query(max_length=64)] = "",
    policy_area: Annotated[str, Query(max_length=200)] = "",
    metric: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    evidence_level: Annotated[str, Query(max_length=8)] = "",
) -> list[dict[str, Any]]:
    filters = {
        "q": q,
        "organisation": organisation,
        "policy_area": policy_area,
        "metric": metric,
        "status": status,
        "evidence_level": evidence_level,
    }
    return svc.portfolio(who, filters)


@router.get("/records", summary="Latest evidence record of every visible pilot")
def records(svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return svc.portfolio_records(who)


@router.post("/pilots", status_code=201, summary="Register a pilot (pilotlab register)")
def register(body: RegisterBody, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.register(
        who,
        body.pilot,
        body.source,
        data_seen=body.data_seen,
        plan_sha256=body.plan_sha256,
        organisation=body.organisation,
        visibility=body.visibility,
    )


@router.post("/plan-status", summary="Compare a pilot file's plan with the registered versions")
def plan_status(body: PilotFile, svc: Svc, who: Caller) -> dict[str, Any]:
    return svc.plan_status(who, body.pilot, body.source)


@router.get("/pilots/{pilot_id}", summary="A pilot's record, versions, runs, status changes")
def show(pilot_id: str, svc: Svc, who: Caller) -> dict[str, Any]:
    return svc.show(who, pilot_id)


@router.post("/pilots/{pilot_id}/amend", summary="A new plan version (pilotlab amend)")
def amend(pilot_id: str, body: AmendBody, svc: Svc, who: Writer) -> dict[str, Any]:
    if str(body.pilot.get("id")) != pilot_id:
        raise ServiceError(422, f"the pilot file is for '{body.pilot.get('id')}', not '{pilot_id}'")
    return svc.amend(
        who, body.pilot, body.source, body.reason, data_seen=body.data_seen,
        plan_sha256=body.plan_sha256,
    )  # fmt: skip


@router.post("/pilots/{pilot_id}/status", summary="Set a pilot's status (pilotlab status)")
def set_status(pilot_id: str, body: StatusBody, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.set_status(who, pilot_id, body.status)


@router.put("/pilots/{pilot_id}/access", summary="Who owns and may see a pilot")
def set_access(pilot_id: str, body: AccessBody, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.set_access(who, pilot_id, body.visibility, body.shared_with, body.organisation)


@router.get("/pilots/{pilot_id}/allocations", summary="A pilot's registered allocations")
def allocations(pilot_id: str, svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return svc.pilot_allocations(who, pilot_id)


@router.post(
    "/pilots/{pilot_id}/allocations",
    status_code=201,
    summary="Record a randomised pilot's allocation (pilotlab randomise)",
)
def record_allocation(pilot_id: str, body: AllocationBody, svc: Svc, who: Writer) -> dict[str, Any]:
    if str(body.pilot.get("id")) != pilot_id:
        raise ServiceError(422, f"the pilot file is for '{body.pilot.get('id')}', not '{pilot_id}'")
    upload = AllocationUpload(
        document=body.allocation,
        allocation_sha256=body.allocation_sha256,
        scheme=body.scheme,
        seed=body.seed,
        n_units=body.n_units,
        data_sha256=body.data_sha256,
        reason=body.reason,
    )
    return svc.record_allocation(who, body.pilot, body.source, body.plan_sha256, upload)


@router.get("/pilots/{pilot_id}/cycle-chain", summary="Earlier cycles of a pilot's learning chain")
def cycle_chain(pilot_id: str, svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return svc.pilot_cycle_chain(who, pilot_id)


_RUN_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["pilot", "evidence"],
                    "properties": {
                        "pilot": {"type": "string", "description": "PilotFile as JSON"},
                        "meta": {"type": "string", "description": "RunMeta as JSON"},
                        "evidence": {"type": "string", "format": "binary"},
                        "report": {"type": "string", "format": "binary"},
                        "table": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            }
        },
    }
}


async def _form(request: Request, svc: Service, files: int) -> Any:
    try:
        return await request.form(max_files=files, max_fields=20, max_part_size=1024**2 * 2)
    except MultiPartException as exc:
        raise ServiceError(400, f"the upload is not valid multipart form data: {exc}") from None
    except ClientDisconnect:
        raise ServiceError(400, "the client went away before the upload was complete") from None


def _json_field(form: Any, name: str, required: bool = True) -> Any:
    value = form.get(name)
    if value is None:
        if required:
            raise ServiceError(422, f"the upload has no '{name}' field")
        return {}
    if isinstance(value, UploadFile):
        raise ServiceError(422, f"'{name}' must be a form field, not a file")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ServiceError(422, f"the '{name}' field is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ServiceError(422, f"the '{name}' field must be a JSON object")
    return parsed


def _model(cls: type[_M], data: Any, what: str) -> _M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise ServiceError(422, f"the '{what}' field is not valid: {problems}") from None


async def _file(form: Any, name: str, limit: int, required: bool) -> bytes | None:
    value = form.get(name)
    if value is None:
        if required:
            raise ServiceError(422, f"the upload has no '{name}' file")
        return None
    if not isinstance(value, UploadFile):
        return str(value).encode("utf-8")
    data = await value.read(limit + 1)
    if len(data) > limit:
        raise ServiceError(413, f"the '{name}' file is larger than {limit:,} bytes")
    return bytes(data)


@router.post(
    "/pilots/{pilot_id}/runs",
    status_code=201,
    summary="Record a run: evidence record, report and tables (pilotlab run)",
    openapi_extra=_RUN_FORM,
)
async def record_run(pilot_id: str, request: Request) -> dict[str, Any]:
    svc = service_of(request)
    who = await run_in_threadpool(_writer, request)
    lim = svc.limits
    form = await _form(request, svc, lim.tables + 2)
    try:
        pilot = _model(PilotFile, _json_field(form, "pilot"), "pilot")
        meta = _model(RunMeta, _json_field(form, "meta", required=False), "meta")
        if str(pilot.pilot.get("id")) != pilot_id:
            raise ServiceError(
                422, f"the pilot file is for '{pilot.pilot.get('id')}', not '{pilot_id}'"
            )
        evidence = await _file(form, "evidence", lim.evidence, True)
        report = await _file(form, "report", lim.report, False)
        tables = []
        for item in form.getlist("table"):
            if not isinstance(item, UploadFile):
                raise ServiceError(422, "each 'table' must be a file")
            data = await item.read(lim.table + 1)
            if len(data) > lim.table:
                raise ServiceError(
                    413, f"table {item.filename!r} is larger than {lim.table:,} bytes"
                )
            tables.append((item.filename or "", bytes(data)))
    finally:
        await form.close()
    assert evidence is not None
    upload = Upload(
        evidence=evidence,
        report=report,
        tables=tables,
        data_sha256=meta.data_sha256,
        software=meta.software,
        started_at=meta.started_at,
        finished_at=meta.finished_at,
    )
    result: dict[str, Any] = await run_in_threadpool(
        svc.record_run, who, pilot.pilot, pilot.source, upload, pilot.plan_sha256
    )
    return result


@router.get("/pilots/{pilot_id}/runs/{run_id}", summary="One run with its evidence record")
def run(pilot_id: str, run_id: str, svc: Svc, who: Caller) -> dict[str, Any]:
    return svc.run(who, pilot_id, run_id)


@router.get("/pilots/{pilot_id}/runs/{run_id}/files/{name:path}", summary="A file of a run")
def run_file(pilot_id: str, run_id: str, name: str, svc: Svc, who: Caller) -> Response:
    media_type, content = svc.run_file(who, pilot_id, run_id, name)
    return file_response(media_type, content, name)


def file_response(media_type: str, content: bytes, name: str) -> Response:
    """A stored file: HTML only inside the sandboxing policy; everything else as a download."""
    headers = {"content-security-policy": REPORT_CSP}
    if media_type != "text/html":
        safe = name.rsplit("/", 1)[-1].replace('"', "")
        headers["content-disposition"] = f'attachment; filename="{safe}"'
    charset = (
        "; charset=utf-8" if media_type.startswith("text/") or media_type.endswith("json") else ""
    )
    return Response(content, media_type=f"{media_type}{charset}", headers=headers)


@router.get("/export", summary="evidence.jsonl and evidence.csv of the visible pilots")
def export(svc: Svc, who: Caller) -> dict[str, Any]:
    return svc.export(who)


@router.post(
    "/import",
    summary="Import an export of another registry (pilotlab import)",
    description=(
        "Multipart form: `file` (evidence.jsonl or evidence.json), optional `visibility` "
        "(organisation, the default; shared; public) and, with `shared`, one `shared_with` "
        "field per organisation. The records are owned by the importing organisation."
    ),
)
async def import_(request: Request) -> dict[str, Any]:
    svc = service_of(request)
    who = await run_in_threadpool(_writer, request)
    form = await _form(request, svc, 1)
    try:
        item = form.get("file")
        if not isinstance(item, UploadFile):
            raise ServiceError(
                422, "the upload has no 'file' file (evidence.jsonl or evidence.json)"
            )
        data = await item.read(svc.limits.import_file + 1)
        name = item.filename or "evidence.jsonl"
        visibility = form.get("visibility") or "organisation"
        shared = [str(v).strip() for v in form.getlist("shared_with") if str(v).strip()]
        if not isinstance(visibility, str) or any(isinstance(v, UploadFile) for v in shared):
            raise ServiceError(422, "'visibility' and 'shared_with' must be form fields")
    finally:
        await form.close()
    result: dict[str, Any] = await run_in_threadpool(
        svc.import_records, who, bytes(data), name, visibility, shared
    )
    return result


@router.get("/synthesis", summary="Framework metrics and how many visible pilots report each")
def synthesis_metrics(request: Request, svc: Svc, who: Caller) -> list[dict[str, Any]]:
    from pilotlab.service.synthesis import metric_rows

    return [r.to_dict() for r in metric_rows(svc, who, request.app.state.frameworks)]


@router.get(
    "/synthesis/{framework}/{code}",
    summary="One metric pooled over the visible evidence (synthesis.json)",
)
def synthesis_record(
    framework: str,
    code: str,
    request: Request,
    svc: Svc,
    who: Caller,
    method: Annotated[str, Query(max_length=20)] = "reml",
    scale: Annotated[str, Query(max_length=20)] = "units",
) -> dict[str, Any]:
    from pilotlab.service.synthesis import pool_metric, too_few

    pooled = pool_metric(
        svc, who, request.app.state.frameworks, f"{framework}/{code}", method=method, scale=scale
    )
    if pooled.synthesis is None:
        raise ServiceError(404, too_few(pooled))
    return pooled.synthesis.to_dict()


@router.get("/head", summary="The registry's chain head, SEQ:SHA256")
def head(svc: Svc, who: Caller) -> dict[str, str]:
    return {"head": svc.head(who)}


@router.get("/organisations", summary="Organisations")
def organisations(svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return svc.list_organisations(who)


@router.post("/organisations", status_code=201, summary="Create an organisation (administrators)")
def add_organisation(body: OrganisationBody, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.add_organisation(who, body.slug, body.name)


@router.get("/people", summary="People (administrators)")
def people(svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return svc.list_people(who)


@router.post("/people", status_code=201, summary="Add a person (administrators)")
def add_person(body: PersonBody, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.add_person(
        who, email=body.email, name=body.name, role=body.role,
        organisation=body.organisation, password=body.password,
    )  # fmt: skip


@router.post("/people/{person_id}/disable", summary="Disable a person at once (administrators)")
def disable_person(person_id: int, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.set_disabled(who, person_id, True)


@router.post("/people/{person_id}/enable", summary="Enable a disabled person (administrators)")
def enable_person(person_id: int, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.set_disabled(who, person_id, False)


@router.post(
    "/people/{person_id}/password",
    summary="Reset a person's password to a one-time one they must change (administrators)",
)
def reset_password(
    person_id: int, body: PasswordResetBody, svc: Svc, who: Writer
) -> dict[str, Any]:
    return svc.reset_password(who, person_id, body.password)


@router.post("/me/password", status_code=204, summary="Change your own password")
def change_password(body: PasswordChangeBody, request: Request, svc: Svc, who: Writer) -> Response:
    from pilotlab.service.auth import SESSION_COOKIE, sha256_hex

    secret = request.cookies.get(SESSION_COOKIE) if who.csrf is not None else None
    svc.change_password(
        who, body.current_password, body.new_password, sha256_hex(secret) if secret else None
    )
    return Response(status_code=204)


@router.get("/tokens", summary="The caller's API tokens (never their secrets)")
def tokens(svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return svc.list_tokens(who)


@router.post("/tokens", status_code=201, summary="A new API token (shown once)")
def add_token(body: TokenBody, svc: Svc, who: Writer) -> dict[str, Any]:
    return svc.create_token(who, body.label, body.expires_at)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: str, svc: Svc, who: Writer) -> Response:
    svc.revoke_token(who, token_id)
    return Response(status_code=204)


@router.get("/audit", summary="The audit log, newest first (administrators)")
def audit(
    svc: Svc, who: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    return svc.audit(who, limit)
