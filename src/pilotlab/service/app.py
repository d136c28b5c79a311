"""The web application: security headers and limits on every response, who is asking, errors.

``create_app(registry_url)`` returns the ASGI application (FastAPI): the JSON API under
``/api`` (OpenAPI document at ``/api/openapi.json``) and the server-rendered pages.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pilotlab import __version__
from pilotlab.frameworks import load_frameworks
from pilotlab.registry import Registry
from pilotlab.service.actions import Service, ServiceError
from pilotlab.service.throttle import SignInThrottle
from pilotlab.service.web import PAGE_CSP, SECURITY_HEADERS, Guard

__all__ = ["create_app"]

log = logging.getLogger("pilotlab.service")


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", "text/html"
    )


def create_app(
    registry: str | Registry | None = None,
    *,
    public_name: str | None = None,
    setup_code: str | None = None,
) -> FastAPI:
    """The evidence service on a registry (URL, open registry, or the default registry).

    Parameters
    ----------
    registry
        A database URL or an open :class:`~pilotlab.registry.Registry` (default: the one the
        command line uses, ``$PILOTLAB_REGISTRY_URL`` or ``.pilotlab/registry.db``).
    public_name
        How messages name this service to callers (default: ``this service``).
    setup_code
        The one-time code that lets the first administrator be created at ``/setup``
        (``pilotlab serve`` makes one when the service has no administrator yet).
    """
    from pilotlab.service import api, pages

    reg = registry if isinstance(registry, Registry) else Registry(registry)
    service = Service(reg, public_name or "this service")
    app = FastAPI(
        title="pilotlab evidence service",
        version=__version__,
        description=(
            "Register pilots and their analysis plans, record runs with their evidence records "
            "and reports, and read what you may see. Send an API token as "
            "`Authorization: Bearer plt_...` (create one on your account page)."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.service = service
    app.state.frameworks = load_frameworks()  # shipped and $PILOTLAB_FRAMEWORKS: the metrics
    app.state.setup_code = setup_code
    app.state.sign_in_throttle = SignInThrottle()  # in memory, per process
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        if _wants_html(request):
            return pages.error_page(request, exc.status, exc.message)
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors()[:20]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        message = "the request is not valid: " + "; ".join(problems)
        if _wants_html(request):
            return pages.error_page(request, 422, message)
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail) if exc.status_code != 404 else "no such page"
        if _wants_html(request):
            return pages.error_page(request, exc.status_code, message)
        return JSONResponse({"error": message}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error(
            "unexpected error on %s %s: %s", request.method, request.url.path, type(exc).__name__
        )
        message = "the service failed on this request; nothing was written; try again"
        # Sent outside the middleware: the security headers are added here.
        headers = {k.decode(): v.decode() for k, v in SECURITY_HEADERS.items()}
        headers |= {"content-security-policy": PAGE_CSP, "cache-control": "no-store"}
        response: Response
        if _wants_html(request):
            response = pages.error_page(request, 500, message)
        else:
            response = JSONResponse({"error": message}, status_code=500)
        response.headers.update(headers)
        return response

    @app.get("/healthz", include_in_schema=False)
    def _health() -> HTMLResponse:
        return HTMLResponse("ok", media_type="text/plain")

    app.add_middleware(Guard, max_body=service.limits.body)
    return app
