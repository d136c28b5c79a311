"""Who is asking, and what they may do.

Passwords and API tokens are stored only as argon2id hashes (``argon2-cffi``'s RFC 9106 low-memory
profile: 3 passes over 64 MiB). ``$PILOTLAB_ARGON2_PROFILE=test`` switches new hashes to the
cheapest parameters argon2 allows, for test suites only: such hashes protect nothing. An API token is ``plt_<id>_<secret>``: the id (public, 12 hex characters) finds the
row, the argon2 hash checks the whole token. Checking an argon2 hash takes tens of milliseconds
by design, so a token that checked out is remembered in memory for a minute, keyed by the
SHA-256 of the token (never the token itself); revoking a token clears it at once.

A browser session is a random 256-bit secret in an HttpOnly, SameSite=Lax cookie; the database
keeps only its SHA-256 (a secret of that entropy needs no slow hash) and the session's CSRF
token, which every form carries back.

Roles: ``reader`` reads what is visible to them; ``editor`` also registers pilots for their own
organisation and changes that organisation's pilots; ``administrator`` does anything. A pilot
is visible to its own organisation, to the organisations it is shared with (visibility
``shared``), to everyone (``public``), and always to administrators.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from pilotlab.exceptions import PilotlabError
from pilotlab.registry.accounts import Access, Accounts, Person

__all__ = [
    "SESSION_COOKIE",
    "Principal",
    "TokenCache",
    "can_edit",
    "can_register",
    "can_see",
    "hash_secret",
    "new_session_secret",
    "new_token",
    "parse_token",
    "sha256_hex",
    "verify_secret",
]

SESSION_COOKIE = "pilotlab_session"
SESSION_HOURS = 12
_TOKEN = re.compile(r"^plt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
#: The environment variable that chooses the argon2 parameters of new hashes.
ENV_ARGON2 = "PILOTLAB_ARGON2_PROFILE"
_HASHERS = {
    "strong": PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY),
    "test": PasswordHasher.from_parameters(profiles.CHEAPEST),
}
_CACHE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a person (signed in, or through one of their tokens), or anonymous."""

    person: Person | None = None
    token_id: str | None = None
    csrf: str | None = None  # the session's CSRF token (browser sessions only)

    @property
    def signed_in(self) -> bool:
        """Whether the caller is a person."""
        return self.person is not None

    @property
    def role(self) -> str:
        """``anonymous``, ``reader``, ``editor`` or ``administrator``."""
        return self.person.role if self.person is not None else "anonymous"

    @property
    def is_admin(self) -> bool:
        """Whether the caller is an administrator."""
        return self.role == "administrator"


ANONYMOUS = Principal()


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def argon2_profile() -> str:
    """``strong`` (the default) or ``test`` (``$PILOTLAB_ARGON2_PROFILE``, for test suites).

    Raises
    ------
    PilotlabError
        The variable names another profile.
    """

    name = os.environ.get(ENV_ARGON2, "").strip() or "strong"
    if name not in _HASHERS:
        raise PilotlabError(
            f"${ENV_ARGON2}: found {name!r}; allowed: strong (the default) or test (cheap "
            "hashes for test suites only); unset it in production"
        )
    return name


def hash_secret(secret: str) -> str:
    """The argon2id hash of a password or token (parameters: :func:`argon2_profile`)."""
    return _HASHERS[argon2_profile()].hash(secret)


def verify_secret(stored: str | None, secret: str) -> bool:
    """Whether ``secret`` matches the stored argon2 hash (False for no hash)."""
    if not stored:
        return False
    try:
        # the parameters are read from the stored hash itself
        return _HASHERS["strong"].verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str]:
    """A fresh API token and its public id."""
    token_id = secrets.token_hex(6)
    return f"plt_{token_id}_{secrets.token_urlsafe(32)}", token_id


def parse_token(token: str) -> str | None:
    """The public id of a well-formed token, else ``None``."""
    m = _TOKEN.match(token.strip())
    return m.group(1) if m else None


def new_session_secret() -> str:
    """A random session secret for the cookie."""
    return secrets.token_urlsafe(32)


def session_expiry() -> str:
    """When a session started now expires (ISO UTC)."""
    return (datetime.now(UTC) + timedelta(hours=SESSION_HOURS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TokenCache:
    """Tokens that checked out recently: SHA-256 of the token -> (person id, token id, until)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, str, float]] = {}
        self._checking: dict[str, threading.Lock] = {}

    def checking(self, digest: str) -> threading.Lock:
        """The lock held while one thread checks this token's hash: the other requests with
        the same token wait for that one check instead of each running argon2 (when the
        remembered check of a token many clients share expires, they all arrive at once)."""
        with self._lock:
            return self._checking.setdefault(digest, threading.Lock())

    def done_checking(self, digest: str) -> None:
        with self._lock:
            self._checking.pop(digest, None)

    def get(self, digest: str) -> tuple[int, str] | None:
        with self._lock:
            hit = self._known.get(digest)
            if hit is None or hit[2] < time.monotonic():
                self._known.pop(digest, None)
                return None
            return hit[0], hit[1]

    def put(self, digest: str, person_id: int, token_id: str) -> None:
        with self._lock:
            self._known[digest] = (person_id, token_id, time.monotonic() + _CACHE_SECONDS)

    def forget_person(self, person_id: int) -> None:
        with self._lock:
            for k in [k for k, v in self._known.items() if v[0] == person_id]:
                del self._known[k]

    def forget(self, token_id: str) -> None:
        with self._lock:
            for k in [k for k, v in self._known.items() if v[1] == token_id]:
                del self._known[k]


def _check_token(accounts: Accounts, token: str, token_id: str) -> tuple[int, str] | None:
    found = accounts.token(token_id)
    if found is None:
        return None
    info, stored = found
    if info.revoked_at is not None or (
        info.expires_at is not None and info.expires_at < _now_text()
    ):
        return None
    if not verify_secret(stored, token):
        return None
    return info.person_id, token_id


def principal_from_token(accounts: Accounts, cache: TokenCache, token: str) -> Principal | None:
    """The person a bearer token acts for; ``None`` if the token is unknown, revoked, expired,
    or its person disabled."""
    token_id = parse_token(token)
    if token_id is None:
        return None
    digest = sha256_hex(token)
    hit = cache.get(digest)
    if hit is None:
        gate = cache.checking(digest)
        with gate:
            hit = cache.get(digest)  # checked by another request meanwhile
            if hit is None:
                try:
                    hit = _check_token(accounts, token, token_id)
                finally:
                    cache.done_checking(digest)
                if hit is None:
                    return None
                cache.put(digest, *hit)
    person = accounts.person_by_id(hit[0])
    if person is None or person.disabled:
        return None
    return Principal(person=person, token_id=hit[1])


def principal_from_session(accounts: Accounts, secret: str) -> Principal | None:
    """The person a session cookie belongs to; ``None`` if unknown or expired."""
    found = accounts.session(sha256_hex(secret))
    if found is None:
        return None
    person_id, csrf, expires_at = found
    if expires_at < _now_text():
        return None
    person = accounts.person_by_id(person_id)
    if person is None or person.disabled:
        return None
    return Principal(person=person, csrf=csrf)


def csrf_ok(principal: Principal, sent: str | None) -> bool:
    """Whether a form's CSRF token is the session's."""
    return bool(principal.csrf and sent and hmac.compare_digest(principal.csrf, sent))


# ---------------------------------------------------------------------- rules


def can_see(principal: Principal, access: Access | None) -> bool:
    """Whether the caller may read a pilot with this owner and visibility."""
    if principal.is_admin:
        return True
    if access is None:  # registered outside the service: administrators only
        return False
    if access.visibility == "public":
        return True
    person = principal.person
    if person is None or person.organisation_id is None:
        return False
    if person.organisation_id == access.organisation_id:
        return True
    return access.visibility == "shared" and person.organisation_id in access.shared_with_ids


def can_edit(principal: Principal, access: Access | None) -> bool:
    """Whether the caller may amend the pilot, set its status, record runs and share it."""
    if principal.is_admin:
        return True
    person = principal.person
    return (
        person is not None
        and person.role == "editor"
        and access is not None
        and person.organisation_id is not None
        and person.organisation_id == access.organisation_id
    )


def can_register(principal: Principal) -> bool:
    """Whether the caller may register pilots (editors for their own organisation)."""
    person = principal.person
    if person is None:
        return False
    return person.role == "administrator" or (
        person.role == "editor" and person.organisation_id is not None
    )
