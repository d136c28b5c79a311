"""The server-rendered pages: usable without JavaScript, every form carrying its CSRF token.

The portfolio (search and filters), a page per pilot (plan versions and what changed, deviations,
allocation when randomised, runs with their report and evidence record), sign-in, the first
administrator's setup, the account page (API tokens) and the administration page (organisations,
people, the audit log).
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pilotlab.registry import STATUSES
from pilotlab.registry.accounts import ROLES, VISIBILITIES
from pilotlab.service.actions import ServiceError
from pilotlab.service.auth import (
    SESSION_COOKIE,
    SESSION_HOURS,
    Principal,
    csrf_ok,
    new_session_secret,
    session_expiry,
    sha256_hex,
    verify_secret,
)
from pilotlab.service.throttle import SignInThrottle
from pilotlab.service.web import principal_of, service_of

__all__ = ["error_page", "router"]

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).resolve().parent
_FILTERS = ("q", "organisation", "policy_area", "metric", "status", "evidence_level")
_LEVELS = {
    "1": "1: weakest",
    "2": "2",
    "3": "3",
    "4": "4",
    "5": "5: strongest",
    "none": "no run yet",
}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


def _render(
    request: Request, template: str, status: int = 200, principal: Principal | None = None,
    **values: Any,
) -> HTMLResponse:  # fmt: skip
    who = principal if principal is not None else _who(request)
    html = (
        _env()
        .get_template(template)
        .render(who=who, csrf=who.csrf or "", path=request.url.path, **values)
    )
    return HTMLResponse(html, status_code=status)


def _who(request: Request) -> Principal:
    try:
        return principal_of(request)
    except ServiceError:
        return Principal()


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page."""
    titles = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 413: "Too large"}
    title = titles.get(status, "Something is wrong" if status < 500 else "The service failed")
    return _render(
        request, "error.html.j2", status=status, principal=_who(request), title=title,
        message=message, status_code=status,
    )  # fmt: skip


async def _form(request: Request, principal: Principal) -> dict[str, str]:
    """A posted form's fields, after checking its CSRF token and origin."""
    try:
        form = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
    except Exception:
        raise ServiceError(
            400, "the form could not be read; reload the page and try again"
        ) from None
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    _same_origin(request)
    if not csrf_ok(principal, fields.get("csrf")):
        raise ServiceError(
            403,
            "the form has expired or was not sent from this site; reload the page and try again",
        )
    return fields


def _same_origin(request: Request) -> None:
    """Refuse a form posted from another site (the browser names it in ``Origin``)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if not hmac.compare_digest(origin.encode(), expected.encode()):
            raise ServiceError(403, "the form was sent from another site; use this site's pages")


def _lists(form: Any, key: str) -> list[str]:
    return [v for k, v in form if k == key and isinstance(v, str) and v]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/static/style.css")
def stylesheet() -> Response:
    css = (HERE / "static" / "style.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def portfolio_page(request: Request) -> HTMLResponse:
    svc, who = service_of(request), principal_of(request)
    filters = {k: str(request.query_params.get(k, ""))[:200] for k in _FILTERS}
    everything = svc.portfolio(who, {})
    rows = svc.portfolio(who, filters) if any(filters.values()) else everything
    options = {
        "organisation": sorted({r["organisation"] for r in everything if r["organisation"]}),
        "policy_area": sorted({r["policy_area"] for r in everything if r["policy_area"]}),
        "metric": sorted({m for r in everything for m in r["metrics"]}),
        "status": list(STATUSES),
        "evidence_level": list(_LEVELS),
    }
    return _render(
        request, "portfolio.html.j2", rows=rows, filters=filters, options=options,
        levels=_LEVELS, total=len(everything), filtered=any(filters.values()),
        export_query=urlencode({k: v for k, v in filters.items() if v}),
    )  # fmt: skip


@router.get("/pilots/{pilot_id}", response_class=HTMLResponse)
def pilot_page(pilot_id: str, request: Request) -> HTMLResponse:
    svc, who = service_of(request), principal_of(request)
    data = svc.show(who, pilot_id)
    organisations = [o.slug for o in svc.accounts.organisations()] if data["can_edit"] else []
    deviations = [v for v in data["versions"] if v["version"] > 1]
    return _render(
        request, "pilot.html.j2", p=data, record=data["record"], deviations=deviations,
        statuses=STATUSES, visibilities=VISIBILITIES, organisations=organisations,
        message=request.query_params.get("done", "")[:200],
    )  # fmt: skip


@router.get("/pilots/{pilot_id}/runs/{run_id}/report.html")
def report_page(pilot_id: str, run_id: str, request: Request) -> Response:
    from pilotlab.service.api import file_response

    media_type, content = service_of(request).run_file(
        principal_of(request), pilot_id, run_id, "report.html"
    )
    return file_response(media_type, content, "report.html")


@router.get("/pilots/{pilot_id}/runs/{run_id}/{name:path}")
def run_file_page(pilot_id: str, run_id: str, name: str, request: Request) -> Response:
    from pilotlab.service.api import file_response

    media_type, content = service_of(request).run_file(
        principal_of(request), pilot_id, run_id, name
    )
    return file_response(media_type, content, name)


@router.post("/pilots/{pilot_id}/status")
async def status_form(pilot_id: str, request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    form = await _form(request, who)
    await run_in_threadpool(svc.set_status, who, pilot_id, form.get("status", ""))
    return _see_other(f"/pilots/{quote(pilot_id, safe='')}?done=Status+changed")


@router.post("/pilots/{pilot_id}/access")
async def access_form(pilot_id: str, request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    await _form(request, who)
    raw = await request.form()
    shared = _lists(raw.multi_items(), "shared_with")
    await run_in_threadpool(
        svc.set_access, who, pilot_id, str(raw.get("visibility", "")), shared, None
    )
    return _see_other(f"/pilots/{quote(pilot_id, safe='')}?done=Visibility+changed")


# ---------------------------------------------------------------------- evidence across places


def _synthesis_query(request: Request) -> tuple[str, str, str]:
    method = str(request.query_params.get("method", "reml"))[:20]
    scale = str(request.query_params.get("scale", "units"))[:20]
    given = {k: v for k, v in (("method", method), ("scale", scale)) if request.query_params.get(k)}
    return method, scale, ("?" + urlencode(given)) if given else ""


@router.get("/synthesis", response_class=HTMLResponse)
def metrics_page(request: Request) -> HTMLResponse:
    from pilotlab.service.synthesis import metric_rows

    svc, who = service_of(request), principal_of(request)
    rows = metric_rows(svc, who, request.app.state.frameworks)
    return _render(request, "metrics.html.j2", rows=rows)


@router.get("/synthesis/{framework}/{code}", response_class=HTMLResponse)
def metric_page(framework: str, code: str, request: Request) -> HTMLResponse:
    from pilotlab.service.synthesis import pool_metric

    svc, who = service_of(request), principal_of(request)
    method, scale, query = _synthesis_query(request)
    pooled = pool_metric(
        svc, who, request.app.state.frameworks, f"{framework}/{code}", method=method, scale=scale
    )
    doc = pooled.document
    shown = ("summary", "estimates", "differ")
    sections = [s for s in doc.sections if s.id in shown] if doc is not None else []
    return _render(
        request, "metric.html.j2", m=pooled.metric, pooled=pooled, doc=doc, sections=sections,
        query=query,
    )  # fmt: skip


@router.get("/synthesis/{framework}/{code}/report.html")
def metric_report(framework: str, code: str, request: Request) -> Response:
    from pilotlab.service.api import file_response
    from pilotlab.service.synthesis import pool_metric, synthesis_html, too_few

    svc, who = service_of(request), principal_of(request)
    method, scale, _ = _synthesis_query(request)
    pooled = pool_metric(
        svc, who, request.app.state.frameworks, f"{framework}/{code}", method=method, scale=scale
    )
    if pooled.synthesis is None:
        raise ServiceError(404, too_few(pooled))
    return file_response("text/html", synthesis_html(pooled).encode("utf-8"), "synthesis.html")


# ---------------------------------------------------------------------- signing in


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return _render(request, "sign_in.html.j2", error="", email="")


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    svc = service_of(request)
    _same_origin(request)  # no signing in from another site's form (login CSRF)
    try:
        form = await request.form(max_files=0, max_fields=10, max_part_size=8 * 1024)
    except Exception:
        raise ServiceError(
            400, "the form could not be read; reload the page and try again"
        ) from None
    email, password = str(form.get("email", ""))[:254], str(form.get("password", ""))[:1024]
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    client = request.client.host if request.client else None
    wait = throttle.retry_after(email, client)
    if wait is not None:
        minutes = max(1, round(wait / 60))
        response = error_page(
            request, 429,
            "Too many failed sign-ins for this email address or from this network. Wait "
            f"{minutes} minute{'s' if minutes != 1 else ''} and try again, or ask an "
            "administrator to reset your password.",
        )  # fmt: skip
        response.headers["retry-after"] = str(wait)
        return response
    plain = email.strip() and not any(ord(ch) < 32 or ord(ch) == 127 for ch in email)
    found = await run_in_threadpool(svc.accounts.person_by_email, email) if plain else None
    ok = False
    if found is not None and not found[0].disabled:
        ok = await run_in_threadpool(verify_secret, found[1], password)
    else:  # the same work either way: no hint of which emails exist
        await run_in_threadpool(verify_secret, _dummy(), password)
    if not ok or found is None:
        throttle.failed(email, client)
        return _render(
            request, "sign_in.html.j2", status=401, principal=Principal(),
            error="That email and password do not match an account.", email=email,
        )  # fmt: skip
    throttle.succeeded(email)
    person = found[0]
    secret, csrf = new_session_secret(), new_session_secret()

    def work() -> None:
        with svc.accounts.write() as conn:
            svc.accounts.add_session(
                conn, secret_sha256=sha256_hex(secret), person_id=person.id, csrf=csrf,
                expires_at=session_expiry(),
            )  # fmt: skip
            svc.accounts.audit(
                conn, person=person, token_id=None, action="sign-in", target=person.email,
                detail={},
            )  # fmt: skip

    await run_in_threadpool(work)
    redirect = _see_other("/account/password" if person.must_change_password else "/")
    _set_cookie(request, redirect, secret)
    return redirect


@lru_cache(maxsize=1)
def _dummy() -> str:
    from pilotlab.service.auth import hash_secret

    return hash_secret(new_session_secret())


def _set_cookie(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    await _form(request, who)
    secret = request.cookies.get(SESSION_COOKIE, "")

    def work() -> None:
        with svc.accounts.write() as conn:
            svc.accounts.end_session(conn, sha256_hex(secret))
            svc.accounts.audit(
                conn, person=who.person, token_id=None, action="sign-out",
                target=who.person.email if who.person else None, detail={},
            )  # fmt: skip

    await run_in_threadpool(work)
    response = _see_other("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request) -> HTMLResponse:
    svc = service_of(request)
    if svc.has_administrator():
        raise ServiceError(404, "the service already has an administrator; sign in")
    return _render(
        request, "setup.html.j2", code=request.query_params.get("code", "")[:100], error=""
    )


@router.post("/setup")
async def setup(request: Request) -> Response:
    svc = service_of(request)
    _same_origin(request)
    expected = request.app.state.setup_code
    form = await request.form(max_files=0, max_fields=10, max_part_size=8 * 1024)
    code = str(form.get("code", ""))
    if not expected or not hmac.compare_digest(code.encode(), str(expected).encode()):
        raise ServiceError(403, "the setup code is not the one `pilotlab serve` printed")
    person = await run_in_threadpool(
        lambda: svc.create_first_administrator(
            email=str(form.get("email", "")),
            name=str(form.get("name", "")),
            password=str(form.get("password", "")),
            organisation=str(form.get("organisation", "")),
            organisation_name=str(form.get("organisation_name", "")),
        )
    )
    request.app.state.setup_code = None  # used once
    return _render(request, "setup_done.html.j2", principal=Principal(), person=person)


# ---------------------------------------------------------------------- account and admin


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request) -> HTMLResponse:
    svc, who = service_of(request), principal_of(request)
    if not who.signed_in:
        return _see_other("/sign-in")  # type: ignore[return-value]
    return _render(request, "account.html.j2", tokens=svc.list_tokens(who), new_token=None)


@router.post("/account/tokens")
async def token_form(request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    form = await _form(request, who)
    made = await run_in_threadpool(svc.create_token, who, form.get("label", "API token"))
    return _render(request, "account.html.j2", tokens=svc.list_tokens(who), new_token=made)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_form(token_id: str, request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    await _form(request, who)
    await run_in_threadpool(svc.revoke_token, who, token_id)
    return _see_other("/account")


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> HTMLResponse:
    svc, who = service_of(request), principal_of(request)
    return _render(
        request, "admin.html.j2", people=svc.list_people(who),
        organisations=svc.list_organisations(who), audit=svc.audit(who, 50), roles=ROLES,
        message=request.query_params.get("done", "")[:200],
    )  # fmt: skip


@router.post("/admin/organisations")
async def organisation_form(request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    form = await _form(request, who)
    await run_in_threadpool(svc.add_organisation, who, form.get("slug", ""), form.get("name", ""))
    return _see_other("/admin?done=Organisation+added")


@router.post("/admin/people")
async def person_form(request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    form = await _form(request, who)
    await run_in_threadpool(
        lambda: svc.add_person(
            who,
            email=form.get("email", ""),
            name=form.get("name", ""),
            role=form.get("role", ""),
            organisation=form.get("organisation") or None,
            password=form.get("password") or None,
        )
    )
    return _see_other("/admin?done=Person+added")


@router.post("/admin/people/{person_id}/disable")
async def disable_form(person_id: int, request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    await _form(request, who)
    await run_in_threadpool(svc.set_disabled, who, person_id, True)
    return _see_other("/admin?done=Person+disabled")


@router.post("/admin/people/{person_id}/enable")
async def enable_form(person_id: int, request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    await _form(request, who)
    await run_in_threadpool(svc.set_disabled, who, person_id, False)
    return _see_other("/admin?done=Person+enabled")


@router.post("/admin/people/{person_id}/password")
async def reset_form(person_id: int, request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    form = await _form(request, who)
    await run_in_threadpool(svc.reset_password, who, person_id, form.get("password", ""))
    return _see_other("/admin?done=Password+reset%3A+they+must+change+it+when+they+sign+in")


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request) -> Response:
    who = principal_of(request)
    if not who.signed_in:
        return _see_other("/sign-in")
    return _render(request, "password.html.j2", error="", done=False)


@router.post("/account/password")
async def password_form(request: Request) -> Response:
    svc, who = service_of(request), principal_of(request)
    form = await _form(request, who)
    secret = request.cookies.get(SESSION_COOKIE, "")
    try:
        await run_in_threadpool(
            svc.change_password, who, form.get("current_password", ""),
            form.get("new_password", ""), sha256_hex(secret),
        )  # fmt: skip
    except ServiceError as exc:
        return _render(
            request, "password.html.j2", status=exc.status, error=exc.message, done=False
        )
    request.scope.pop("pilotlab.principal", None)  # signed in as before, without the reset mark
    return _render(request, "password.html.j2", principal=_who(request), error="", done=True)
