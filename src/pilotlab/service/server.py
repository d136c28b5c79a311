"""``pilotlab serve``: run the service with uvicorn, and create the first administrator.

On a service with no administrator, either ``$PILOTLAB_ADMIN_EMAIL`` and
``$PILOTLAB_ADMIN_PASSWORD`` (and optionally ``$PILOTLAB_ADMIN_ORGANISATION``) create one at
start-up without printing anything secret, or a random one-time setup code is made and printed
once, with the address of the setup page; it is kept only in this process's memory, works once,
and a restart makes a new one. Nothing else secret is ever printed or logged: uvicorn's access
log shows paths, never headers, cookies or bodies.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from pilotlab.exceptions import PilotlabError
from pilotlab.registry import Registry
from pilotlab.service.actions import Service, ServiceError

__all__ = ["serve"]

ENV_ADMIN_EMAIL = "PILOTLAB_ADMIN_EMAIL"
ENV_ADMIN_PASSWORD = "PILOTLAB_ADMIN_PASSWORD"
ENV_ADMIN_ORG = "PILOTLAB_ADMIN_ORGANISATION"


def first_administrator(service: Service, say: Callable[[str], None], base: str) -> str | None:
    """Create the first administrator from the environment, or return a one-time setup code
    (``None`` when an administrator exists)."""
    if service.has_administrator():
        return None
    email, password = os.environ.get(ENV_ADMIN_EMAIL), os.environ.get(ENV_ADMIN_PASSWORD)
    if email and password:
        org = os.environ.get(ENV_ADMIN_ORG, "administration")
        try:
            service.create_first_administrator(
                email=email, name=email.split("@")[0], password=password,
                organisation=org, organisation_name=org,
            )  # fmt: skip
        except ServiceError as exc:
            raise PilotlabError(
                f"${ENV_ADMIN_EMAIL}/${ENV_ADMIN_PASSWORD}: {exc.message}"
            ) from None
        say(f"Created the first administrator, {email}, from ${ENV_ADMIN_EMAIL}.")
        return None
    code = secrets.token_urlsafe(18)
    say(
        "This service has no administrator yet. To create one, open\n"
        f"  {base}/setup?code={code}\n"
        "This one-time code is printed only now, is kept only in this process's memory and "
        "stops working once used or when the service stops. (Or set "
        f"${ENV_ADMIN_EMAIL} and ${ENV_ADMIN_PASSWORD} before starting.)"
    )
    return code


def serve(
    registry_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    say: Callable[[str], None] = print,
    public_url: str | None = None,
) -> None:
    """Run the service until interrupted."""
    import uvicorn

    from pilotlab.service.app import create_app
    from pilotlab.service.auth import ENV_ARGON2, argon2_profile

    if argon2_profile() == "test":
        say(
            f"Warning: ${ENV_ARGON2}=test makes cheap password and token hashes, for test "
            "suites only; unset it for a real service."
        )
    reg = Registry(registry_url)
    base = public_url or f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    service_probe = Service(reg)
    code = first_administrator(service_probe, say, base)
    app = create_app(reg, public_name=base, setup_code=code)
    say(f"pilotlab evidence service on {reg.display_url}, at {base} (Ctrl+C stops it).")
    try:
        uvicorn.run(
            app, host=host, port=port, log_level="warning", access_log=False,
            proxy_headers=False, server_header=False,
        )  # fmt: skip
    finally:
        reg.close()
