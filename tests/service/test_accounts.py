"""Accounts as administrators and people use them: sign-in throttling (with a test clock, no
sleeping), disabling and enabling people, password resets and changes, through the API and the
pages' forms."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from pilotlab.service.throttle import SignInThrottle
from tests.service.conftest import PASSWORD, World

NEW = "a brand new passphrase 42"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sign_in(world: World, email: str, password: str = PASSWORD) -> TestClient:
    c = TestClient(world.app, follow_redirects=False)
    c.last = c.post("/sign-in", data={"email": email, "password": password})  # type: ignore[attr-defined]
    return c


def _csrf(c: TestClient, path: str = "/account") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)


def _id(world: World, email: str) -> int:
    people = world.as_("admin").get("/api/people").json()
    return next(p["id"] for p in people if p["email"] == email)


@pytest.fixture
def clock(world: World) -> Clock:
    clock = Clock()
    world.app.state.sign_in_throttle = SignInThrottle(clock=clock)
    return clock


def test_repeated_failed_sign_ins_for_an_email_are_throttled(world: World, clock: Clock) -> None:
    email = "editor_a@example.gov.uk"
    for _ in range(5):
        assert _sign_in(world, email, "wrong password!").last.status_code == 401
    refused = _sign_in(world, email).last  # even the right password: not checked now
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 900
    assert "Too many failed sign-ins" in refused.text and "15 minutes" in refused.text
    clock.now += 600
    assert int(_sign_in(world, email).last.headers["retry-after"]) == 300
    # another email from the same address is not held back by this one
    assert _sign_in(world, "reader_a@example.gov.uk").last.status_code == 303
    clock.now += 301
    assert _sign_in(world, email).last.status_code == 303


def test_a_success_clears_the_email_and_one_address_is_throttled_across_emails(
    world: World, clock: Clock
) -> None:
    email = "reader_a@example.gov.uk"
    for _ in range(4):
        _sign_in(world, email, "wrong password!")
    assert _sign_in(world, email).last.status_code == 303
    for _ in range(4):
        assert _sign_in(world, email, "wrong password!").last.status_code == 401
    assert _sign_in(world, email).last.status_code == 303
    # 20 failures from one client address, over many emails: that address waits
    for i in range(20 - 8):
        _sign_in(world, f"nobody{i}@example.gov.uk", "wrong password!")
    got = _sign_in(world, "editor_b@example.gov.uk").last
    assert got.status_code == 429 and int(got.headers["retry-after"]) > 0


def test_an_administrator_disables_a_person_at_once_and_enables_them(world: World) -> None:
    admin, editor = world.as_("admin"), world.as_("editor_a")
    session = _sign_in(world, "editor_a@example.gov.uk")
    assert session.get("/api/me").json()["role"] == "editor"
    assert editor.get("/api/me").status_code == 200  # the token's check is now remembered
    pid = _id(world, "editor_a@example.gov.uk")
    assert world.as_("editor_b").post(f"/api/people/{pid}/disable").status_code == 403
    got = admin.post(f"/api/people/{pid}/disable")
    assert got.status_code == 200 and got.json()["disabled"] is True
    assert got.json()["sessions_ended"] == 1
    assert editor.get("/api/me").status_code == 401  # the token stops at once
    assert session.get("/api/me").json()["role"] == "anonymous"  # the session has ended
    assert _sign_in(world, "editor_a@example.gov.uk").last.status_code == 401
    audit = [(a["action"], a["target"]) for a in admin.get("/api/audit").json()]
    assert ("disable-person", "editor_a@example.gov.uk") in audit
    assert admin.post(f"/api/people/{pid}/enable").json()["disabled"] is False
    assert editor.get("/api/me").json()["role"] == "editor"
    assert ("enable-person", "editor_a@example.gov.uk") in [
        (a["action"], a["target"]) for a in admin.get("/api/audit").json()
    ]
    me = _id(world, "admin@example.gov.uk")
    refused = admin.post(f"/api/people/{me}/disable")
    assert refused.status_code == 422 and "yourself" in refused.json()["error"]
    assert admin.post("/api/people/99999/disable").status_code == 404


def test_the_admin_page_forms_disable_and_reset_with_their_csrf_token(world: World) -> None:
    admin = _sign_in(world, "admin@example.gov.uk")
    csrf = _csrf(admin, "/admin")
    pid = _id(world, "reader_a@example.gov.uk")
    forged = admin.post(f"/admin/people/{pid}/disable", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert world.as_("reader_a").get("/api/me").status_code == 200
    done = admin.post(f"/admin/people/{pid}/disable", data={"csrf": csrf})
    assert done.status_code == 303
    assert world.as_("reader_a").get("/api/me").status_code == 401
    assert "disabled" in admin.get("/admin").text
    admin.post(f"/admin/people/{pid}/enable", data={"csrf": csrf})
    # a one-time password: the person must change it before doing anything else
    reset = admin.post(
        f"/admin/people/{pid}/password", data={"csrf": csrf, "password": "one time code 1234"}
    )
    assert reset.status_code == 303
    assert _sign_in(world, "reader_a@example.gov.uk").last.status_code == 401  # old one gone
    person = _sign_in(world, "reader_a@example.gov.uk", "one time code 1234")
    assert person.last.headers["location"] == "/account/password"
    blocked = person.get("/")
    assert blocked.status_code == 403 and "/account/password" in blocked.text
    assert person.get("/api/pilots").status_code == 403
    form = person.get("/account/password")
    assert form.status_code == 200 and "An administrator reset your password" in form.text
    csrf_p = _csrf(person, "/account/password")
    wrong = person.post(
        "/account/password",
        data={"csrf": csrf_p, "current_password": "nope", "new_password": NEW},
    )
    assert wrong.status_code == 403 and "not right" in wrong.text
    ok = person.post(
        "/account/password",
        data={"csrf": csrf_p, "current_password": "one time code 1234", "new_password": NEW},
    )
    assert ok.status_code == 200 and "Your password is changed" in ok.text
    assert person.get("/").status_code == 200
    assert _sign_in(world, "reader_a@example.gov.uk", NEW).last.headers["location"] == "/"


def test_people_change_their_own_password_through_the_api(world: World) -> None:
    c = world.as_("editor_b")
    wrong = c.post("/api/me/password", json={"current_password": "x", "new_password": NEW})
    assert wrong.status_code == 403
    short = c.post("/api/me/password", json={"current_password": PASSWORD, "new_password": "s"})
    assert short.status_code == 422
    other = _sign_in(world, "editor_b@example.gov.uk")
    got = c.post("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert got.status_code == 204
    assert other.get("/api/me").json()["role"] == "anonymous"  # other sessions ended
    assert _sign_in(world, "editor_b@example.gov.uk").last.status_code == 401
    assert _sign_in(world, "editor_b@example.gov.uk", NEW).last.status_code == 303
    assert ("change-password", "editor_b@example.gov.uk") in [
        (a["action"], a["target"]) for a in world.as_("admin").get("/api/audit").json()
    ]
    # an administrator's reset through the API
    pid = _id(world, "editor_b@example.gov.uk")
    reset = world.as_("admin").post(f"/api/people/{pid}/password", json={"password": "x" * 12})
    assert reset.status_code == 200 and reset.json()["must_change_password"] is True
    assert (
        world.as_("editor_a")
        .post(f"/api/people/{pid}/password", json={"password": "x" * 12})
        .status_code
        == 403
    )


def test_hashes_are_strong_unless_the_test_profile_is_chosen(monkeypatch) -> None:
    from pilotlab.exceptions import PilotlabError
    from pilotlab.service.auth import ENV_ARGON2, hash_secret, verify_secret

    monkeypatch.setenv(ENV_ARGON2, "test")
    cheap = hash_secret("a secret of some length")
    assert cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    monkeypatch.delenv(ENV_ARGON2)
    strong = hash_secret("a secret of some length")
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106 low-memory
    assert verify_secret(cheap, "a secret of some length")  # each hash carries its parameters
    assert verify_secret(strong, "a secret of some length")
    monkeypatch.setenv(ENV_ARGON2, "fast")
    with pytest.raises(PilotlabError, match="PILOTLAB_ARGON2_PROFILE: found 'fast'"):
        hash_secret("x")
