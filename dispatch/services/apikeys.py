"""API keys: accounts of role ``api`` for Open311 clients, and the keys they present.

An API key belongs to an account whose role is :attr:`~dispatch.auth.Role.API`: it may
submit requests through the Open311 API (:func:`dispatch.services.open311.submit_request`)
and nothing else, and it can never sign in to the dashboard (it has no password). Only a
SHA-256 hash of each key is stored (keys are 32 random bytes, so a slow hash adds
nothing); the key is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.auth import Principal, Role, public, service
from dispatch.errors import AuthenticationError, NotFoundError, ValidationError
from dispatch.store import UnitOfWork, utcnow

#: Every key starts so (and a leaked one is easy to search for).
KEY_PREFIX = "cs_"
#: Characters of a key shown to admins to tell keys apart.
SHOWN_CHARS = 10
#: Submissions a key may make per minute unless its admin says otherwise.
DEFAULT_RATE_PER_MIN = 60
MAX_RATE_PER_MIN = 10_000
#: Not a password hash: an API account cannot sign in with any password.
NO_PASSWORD = "!api-key-account"
#: How stale ``last_used_at`` may get before a use writes it again.
TOUCH_EVERY = timedelta(minutes=1)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: the only moment its text is known."""

    username: str
    key: str
    prefix: str
    rate_per_min: int


@dataclass(frozen=True)
class ApiKeyInfo:
    """What an admin sees of a key (never the key)."""

    username: str
    prefix: str
    rate_per_min: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ApiClient:
    """Who presented a key: the account's principal and the key's rate."""

    principal: Principal
    key_id: int
    prefix: str
    rate_per_min: int


def key_hash(key: str) -> str:
    """Return the stored form of a key (SHA-256, hex)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@service(Role.ADMIN, action="manage API keys", writes=True)
def create_api_key(uow: UnitOfWork, name: str, *, rate_per_min: int = DEFAULT_RATE_PER_MIN,
                   ) -> IssuedKey:
    """Make a key for the API account ``name`` (made too, if new); return it once.

    Raises
    ------
    ValidationError
        For a bad name or rate, or a name that belongs to a person's account.
    """
    name = name.strip().lower()
    if not _NAME.match(name):
        raise ValidationError(
            f"API account name {name!r} must be 2-64 characters of a-z, 0-9, '.', '_', '@' "
            "or '-'")
    if not 1 <= rate_per_min <= MAX_RATE_PER_MIN:
        raise ValidationError(f"rate {rate_per_min} per minute is out of range; expected 1 to "
                              f"{MAX_RATE_PER_MIN}")
    uow.lock("users")
    now = utcnow()
    user = uow.users.by_username(name)
    if user is None:
        uow.users.add(username=name, password_hash=NO_PASSWORD, role=Role.API.value,
                      crew_name=None, created_at=now)
        uow.events.append("user", name, "created", {"role": Role.API.value, "crew": None})
    elif user.role != Role.API.value:
        raise ValidationError(f"account {name!r} is a {user.role} account, not an API account; "
                              "choose another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key[:SHOWN_CHARS]
    uow.api_keys.add(username=name, key_hash=key_hash(key), prefix=prefix,
                     rate_per_min=rate_per_min, created_at=now)
    uow.events.append("user", name, "api_key_created", {"prefix": prefix,
                                                        "rate_per_min": rate_per_min})
    uow.commit()
    return IssuedKey(name, key, prefix, rate_per_min)


@service(Role.ADMIN, action="manage API keys", writes=True)
def revoke_api_key(uow: UnitOfWork, prefix: str) -> int:
    """Revoke the keys whose shown prefix is ``prefix``; return how many.

    Raises
    ------
    NotFoundError
        When no live key has that prefix.
    """
    now = utcnow()
    count = 0
    for row in uow.api_keys.by_prefix(prefix.strip()):
        if row.revoked_at is None:
            row.revoked_at = now
            uow.events.append("user", row.username, "api_key_revoked", {"prefix": row.prefix})
            count += 1
    if not count:
        raise NotFoundError(f"no live API key starts with {prefix.strip()!r}; "
                            "'dispatch api-keys list' shows them")
    uow.commit()
    return count


@service(Role.ADMIN, action="manage API keys")
def list_api_keys(uow: UnitOfWork) -> list[ApiKeyInfo]:
    """Return every key's account, prefix, rate and use (admins only)."""
    return [ApiKeyInfo(r.username, r.prefix, r.rate_per_min, r.created_at, r.last_used_at,
                       r.revoked_at) for r in uow.api_keys.all()]


@public("an API client proves who it is with its key, before anything else is read")
def authenticate_api_key(uow: UnitOfWork, key: str, *, now: datetime | None = None,
                         ) -> ApiClient:
    """Return the client a key belongs to.

    Raises
    ------
    AuthenticationError
        For a missing, unknown or revoked key, or a disabled account (one sentence
        that does not say which).
    """
    refused = AuthenticationError("api_key is missing, unknown or revoked")
    key = (key or "").strip()
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise refused
    now = now or utcnow()
    row = uow.api_keys.by_hash(key_hash(key))
    user = uow.users.by_username(row.username) if row is not None else None
    if (row is None or row.revoked_at is not None or user is None or not user.active
            or user.role != Role.API.value):
        raise refused
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        uow.begin_write()
        fresh = uow.api_keys.by_hash(key_hash(key))
        if fresh is not None:
            fresh.last_used_at = now
            uow.commit()
    return ApiClient(Principal(row.username, Role.API), row.id, row.prefix, row.rate_per_min)
