"""Local accounts: create, sign in (with lockout), list, disable, change password."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from dispatch.auth import (
    Principal,
    Role,
    hash_password,
    needs_rehash,
    public,
    service,
    verify_password,
)
from dispatch.citypack import CityPack
from dispatch.errors import AuthenticationError, NotFoundError, ValidationError
from dispatch.store import UnitOfWork, utcnow

#: Failed sign-ins from one source for one username before that source must wait.
MAX_FAILURES_PER_ACCOUNT = 5
#: Failed sign-ins from one source, any username, before that source must wait.
MAX_FAILURES_PER_SOURCE = 20
#: The window failures are counted in (and how long a throttled source waits at most).
THROTTLE_WINDOW = timedelta(minutes=15)
#: A signed-in session ends after this long without activity.
SESSION_TIMEOUT = timedelta(minutes=30)
#: How stale a session's "last seen" may get before a request writes it again.
TOUCH_EVERY = timedelta(minutes=1)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
#: Cost of checking a password for an account that does not exist, so that timing does
#: not tell which usernames exist.
_DUMMY_HASH = hash_password("not-a-real-password-at-all")


@service(Role.ADMIN, action="create accounts", writes=True)
def create_user(
    uow: UnitOfWork, username: str, password: str, role: Role, *, crew: str | None = None,
    pack: CityPack | None = None,
) -> int:
    """Create an account (only an admin, or the command line, may)."""
    if role is Role.ANONYMOUS:
        raise ValidationError("an account needs a role: admin, supervisor, crew or manager")
    if role is Role.API:
        raise ValidationError("API accounts have keys, not passwords: make one with "
                              "'dispatch api-keys create NAME'")
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise ValidationError(
            f"username {username!r} must be 2-64 characters of a-z, 0-9, '.', '_', '@' or '-'")
    if role is Role.CREW:
        if not crew:
            raise ValidationError(f"crew member {username!r} needs --crew NAME")
        if pack is not None:
            pack.crew(crew)  # raises for an unknown crew
    elif crew:
        raise ValidationError(
            f"only crew members belong to a crew; {username!r} is {role.value}")
    uow.lock("users")
    if uow.users.by_username(username) is not None:
        raise ValidationError(f"account {username!r} already exists")
    row = uow.users.add(username=username, password_hash=hash_password(password),
                        role=role.value, crew_name=crew, created_at=utcnow())
    uow.events.append("user", username, "created", {"role": role.value, "crew": crew})
    uow.commit()
    return row.id


@public("signing in is how an anonymous caller becomes someone", writes=True)
def authenticate(
    uow: UnitOfWork, username: str, password: str, *, source: str = "unknown",
    now: datetime | None = None,
) -> Principal:
    """Check a sign-in; return the principal or raise :class:`AuthenticationError`.

    Guessing is throttled per source (the browser's address): after
    :data:`MAX_FAILURES_PER_ACCOUNT` wrong passwords for one username, or
    :data:`MAX_FAILURES_PER_SOURCE` for any, that source waits up to
    :data:`THROTTLE_WINDOW`. Accounts are never locked, so nobody can lock an admin out
    from elsewhere, and every answer reads the same whether the username exists or not.

    Parameters
    ----------
    uow
        Unit of work (the failure record is committed).
    username, password
        What was typed.
    source
        Where the attempt came from (an IP address; ``unknown`` if not known).
    now
        The time (tests).
    """
    now = now or utcnow()
    username = username.strip().lower()[:64]
    source = (source or "unknown")[:64]
    since = now - THROTTLE_WINDOW
    per_account = uow.users.failures(source=source, since=since, username=username)
    per_source = uow.users.failures(source=source, since=since)
    if per_account >= MAX_FAILURES_PER_ACCOUNT or per_source >= MAX_FAILURES_PER_SOURCE:
        oldest = uow.users.oldest_failure(
            source=source, since=since,
            username=username if per_account >= MAX_FAILURES_PER_ACCOUNT else None)
        wait = THROTTLE_WINDOW - (now - oldest) if oldest is not None else THROTTLE_WINDOW
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        verify_password(_DUMMY_HASH, password)  # the same cost as a real check
        raise AuthenticationError(
            f"too many failed sign-ins from this device; wait {minutes} min and try again")
    row = uow.users.by_username(username)
    if row is not None and row.role == Role.API.value:
        row = None  # API accounts hold keys, never sign in to the dashboard
    ok = verify_password(row.password_hash if row is not None and row.active else _DUMMY_HASH,
                         password)
    if row is None or not row.active or not ok:
        uow.users.add_failure(username or "(empty)", source, now)
        uow.users.prune_failures(now - 4 * THROTTLE_WINDOW)
        uow.events.append("user", username or "(empty)", "sign_in_failed", {"source": source})
        uow.commit()
        raise AuthenticationError("wrong username or password")
    row.last_login_at = now
    if needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
    uow.events.append("user", username, "signed_in", {"source": source})
    uow.commit()
    return Principal(row.username, Role(row.role), row.crew_name)


def session_expired(last_seen: datetime, now: datetime | None = None) -> bool:
    """Return whether a session idle since ``last_seen`` has timed out."""
    return (now or utcnow()) - last_seen > SESSION_TIMEOUT


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@public("signing in opens the session", writes=True)
def start_session(uow: UnitOfWork, principal: Principal) -> str:
    """Open a browser session for a signed-in person; return its token.

    The dashboard keeps the token in a cookie so that a page reload finds the session
    again (never in the URL: a pasted link carries no sign-in); only a hash of it is
    stored.
    """
    if principal.role in (Role.ANONYMOUS, Role.API):
        raise AuthenticationError(f"a caller of role {principal.role.value} has no dashboard "
                                  "session to open")
    user = uow.users.by_username(principal.username)
    if user is None or not user.active or Role(user.role) is not principal.role:
        raise AuthenticationError(f"account {principal.username!r} cannot sign in")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    uow.users.add_session(_token_hash(token), principal.username, now)
    uow.commit()
    return token


@public("every page checks its session token before anything else")
def resume_session(uow: UnitOfWork, token: str, *, now: datetime | None = None,
                   ) -> Principal | None:
    """Return who a session token belongs to, or ``None`` (unknown, timed out, disabled).

    The dashboard calls this on every action, so a tab ends at its next click once its
    session was signed out (in any tab) or its account disabled. A timed-out session is
    deleted; a live one is refreshed at most once a minute.
    """
    now = now or utcnow()
    row = uow.users.session_by_hash(_token_hash(token))
    if row is None:
        return None
    user = uow.users.by_username(row.username)
    if session_expired(row.last_seen_at, now) or user is None or not user.active:
        uow.begin_write()
        row = uow.users.session_by_hash(_token_hash(token))
        if row is not None:
            uow.users.drop_session(row)
            uow.commit()
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        uow.begin_write()
        row = uow.users.session_by_hash(_token_hash(token))
        if row is None:
            return None
        row.last_seen_at = now
        uow.commit()
    return Principal(user.username, Role(user.role), user.crew_name)


@public("signing out needs only the session's own token", writes=True)
def end_session(uow: UnitOfWork, token: str) -> None:
    """Sign a browser session out (its token stops working)."""
    row = uow.users.session_by_hash(_token_hash(token))
    if row is not None:
        uow.users.drop_session(row)
        uow.events.append("user", row.username, "signed_out", {})
        uow.commit()


@service(Role.ADMIN, action="change accounts", writes=True)
def set_active(uow: UnitOfWork, username: str, active: bool) -> None:
    """Enable or disable an account (admins only).

    Disabling ends every open session of the account at once: its tabs are signed out
    at their next click.
    """
    row = uow.users.by_username(username)
    if row is None:
        raise NotFoundError(f"account {username!r} does not exist")
    row.active = active
    ended = 0 if active else uow.users.drop_sessions_of(username)
    uow.events.append("user", username, "enabled" if active else "disabled",
                      {"sessions_ended": ended})
    uow.commit()


@service(Role.ADMIN, action="list accounts")
def list_users(uow: UnitOfWork) -> list[Any]:
    """Return every account (admins only)."""
    return uow.users.all()


#: Demo accounts made by ``dispatch init --demo`` (never in production: see README).
DEMO_PASSWORD = "curbside-demo"


def demo_accounts(pack: CityPack) -> list[tuple[str, Role, str | None]]:
    """Return the demo accounts of ``pack``: ``(username, role, crew)``.

    One account per role, and one crew account for the first crew of each skill (the
    sign-in page of a demo names these).
    """
    wanted: list[tuple[str, Role, str | None]] = [
        ("admin", Role.ADMIN, None),
        ("supervisor", Role.SUPERVISOR, None),
        ("manager", Role.MANAGER, None),
    ]
    seen: set[tuple[str, ...]] = set()
    for crew in pack.crews:
        if crew.categories not in seen:
            seen.add(crew.categories)
            wanted.append((f"crew-{crew.name.lower()}", Role.CREW, crew.name))
    return wanted


@service(Role.ADMIN, action="create accounts")
def ensure_demo_accounts(uow: UnitOfWork, pack: CityPack) -> list[str]:
    """Create the demo accounts that do not exist yet; return the names created.

    They are :func:`demo_accounts`.
    """
    made = []
    for username, role, crew_name in demo_accounts(pack):
        if uow.users.by_username(username) is None:
            create_user(uow, username, DEMO_PASSWORD, role, crew=crew_name)
            made.append(username)
    return made


@public("the city's identity provider already proved who the person is", writes=True)
def principal_for_identity(uow: UnitOfWork, email: str | None) -> Principal:
    """Map a person signed in with the city's identity provider to their account.

    Used with Streamlit's OpenID Connect sign-in (``st.login``): the provider proves
    who the person is; the role comes from the Curbside account whose username is
    that e-mail address (created by an admin with ``dispatch users create``).
    """
    if not email:
        raise AuthenticationError("the identity provider gave no e-mail address")
    row = uow.users.by_username(email.strip().lower())
    if row is None or not row.active or row.role == Role.API.value:
        uow.events.append("user", email.strip().lower(), "sign_in_failed",
                          {"why": "no account for identity"})
        uow.commit()
        raise AuthenticationError(
            f"{email} has no active Curbside account; ask an admin to create one")
    row.last_login_at = utcnow()
    uow.events.append("user", row.username, "signed_in", {"via": "oidc"})
    uow.commit()
    return Principal(row.username, Role(row.role), row.crew_name)
