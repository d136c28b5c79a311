"""The remembered token checks: many requests with one token whose check is not remembered (yet,
or any more) run argon2 once between them, not once each."""

from __future__ import annotations

import threading

import pytest

from pilotlab.service import auth
from tests.service.conftest import World


def test_concurrent_requests_with_one_token_check_its_hash_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = world.app.state.service
    token = world.tokens["editor_a"]
    calls, start = [], threading.Barrier(8)
    real = auth.verify_secret

    def counting(stored: str | None, secret: str) -> bool:
        calls.append(secret)
        start_check.wait(5)  # every other request arrives while this check runs
        return real(stored, secret)

    start_check = threading.Event()
    monkeypatch.setattr(auth, "verify_secret", counting)
    svc.tokens = auth.TokenCache()  # nothing remembered: as when the remembered check expires
    got: list[object] = []

    def request() -> None:
        start.wait(5)
        got.append(auth.principal_from_token(svc.accounts, svc.tokens, token))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for _ in range(5000):  # until the first check is under way and the others wait for it
        if calls and len(svc.tokens._checking) == 1:
            break
        threading.Event().wait(0.001)
    start_check.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(got) == 8 and all(p.person.email == "editor_a@example.gov.uk" for p in got)
    # a wrong token is still refused, and checked each time (nothing remembered for it)
    bad = token[:-4] + "AAAA"
    assert auth.principal_from_token(svc.accounts, svc.tokens, bad) is None
    assert auth.principal_from_token(svc.accounts, svc.tokens, bad) is None
    assert len(calls) == 3
