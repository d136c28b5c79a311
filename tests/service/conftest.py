"""An in-process service with one administrator, two places and a department, and their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pilotlab.registry import Registry
from pilotlab.registry.remote import RemoteRegistry
from pilotlab.service import create_app
from pilotlab.service.auth import ENV_ARGON2
from tests.support.registry import registry_url  # noqa: F401  (fixture)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def _cheap_argon2() -> Iterator[None]:
    """Cheap argon2 hashes for these tests (the setting ``pilotlab serve`` documents); the
    servers these tests start inherit it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_ARGON2, "test")
        yield


@dataclass
class World:
    app: Any
    client: TestClient
    registry: Registry
    tokens: dict[str, str]

    def as_(self, who: str) -> TestClient:
        """A client sending ``who``'s token (``anonymous``: none)."""
        c = TestClient(self.app)
        if who != "anonymous":
            c.headers["authorization"] = f"Bearer {self.tokens[who]}"
        return c

    def remote(self, who: str) -> RemoteRegistry:
        return RemoteRegistry("https://testserver", self.tokens.get(who, ""), client=self.as_(who))


def build_world(url: str) -> World:
    reg = Registry(url)
    app = create_app(reg, public_name="http://testserver")
    svc = app.state.service
    admin = svc.create_first_administrator(
        email="admin@example.gov.uk", name="Admin", password=PASSWORD,
        organisation="department", organisation_name="The Department",
    )  # fmt: skip
    from pilotlab.service.auth import Principal

    root = Principal(person=admin)
    for slug in ("place-a", "place-b"):
        svc.add_organisation(root, slug, slug.title())
    people = {
        "editor_a": ("editor", "place-a"),
        "reader_a": ("reader", "place-a"),
        "editor_b": ("editor", "place-b"),
        "reader_dept": ("reader", "department"),
    }
    tokens = {"admin": svc.create_token(root, "tests")["token"]}
    for name, (role, org) in people.items():
        p = svc.add_person(
            root, email=f"{name}@example.gov.uk", name=name, role=role, organisation=org,
            password=PASSWORD,
        )  # fmt: skip
        person = svc.accounts.person_by_id(p["id"])
        tokens[name] = svc.create_token(Principal(person=person), "tests")["token"]
    return World(app, TestClient(app), reg, tokens)


@pytest.fixture
def world(registry_url: str) -> Iterator[World]:  # noqa: F811
    w = build_world(registry_url)
    try:
        yield w
    finally:
        w.registry.close()


def with_metric(record: dict[str, Any], ref: str = "local/claimant_rate") -> dict[str, Any]:
    """An evidence record whose ``claimant_rate`` result names a framework metric."""
    from pilotlab.frameworks import load_frameworks

    metric = load_frameworks(use_env=False).metric(ref).to_dict()
    for r in record["results"]:
        if r["outcome"] == "claimant_rate":
            r["metric"] = metric
    return record
