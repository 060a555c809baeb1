"""Local accounts: create, sign in (with lockout), list, disable, change password."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from dispatch.auth import (
    Principal,
    Role,
    hash_password,
    needs_rehash,
    require,
    verify_password,
)
from dispatch.citypack import CityPack
from dispatch.errors import AuthenticationError, DispatchError, NotFoundError
from dispatch.store import UnitOfWork, utcnow
from dispatch.store.models import SessionRow, UserRow

#: Failed sign-ins in a row before an account is locked.
MAX_FAILED_ATTEMPTS = 5
#: How long a locked account stays locked.
LOCKOUT = timedelta(minutes=15)
#: A signed-in session ends after this long without activity.
SESSION_TIMEOUT = timedelta(minutes=30)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
#: Cost of checking a password for an account that does not exist, so that timing does
#: not tell which usernames exist.
_DUMMY_HASH = hash_password("not-a-real-password-at-all")


def create_user(
    uow: UnitOfWork, username: str, password: str, role: Role, *, crew: str | None = None,
    pack: CityPack | None = None,
) -> int:
    """Create an account (only an admin, or the command line, may)."""
    require(uow.principal, Role.ADMIN, action="create accounts")
    if role is Role.ANONYMOUS:
        raise DispatchError("an account needs a role: admin, supervisor, crew or manager")
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise DispatchError(
            f"username {username!r} must be 2-64 characters of a-z, 0-9, '.', '_', '@' or '-'")
    if role is Role.CREW:
        if not crew:
            raise DispatchError(f"crew member {username!r} needs --crew NAME")
        if pack is not None:
            pack.crew(crew)  # raises for an unknown crew
    elif crew:
        raise DispatchError(f"only crew members belong to a crew; {username!r} is {role.value}")
    if uow.users.by_username(username) is not None:
        raise DispatchError(f"account {username!r} already exists")
    row = uow.users.add(UserRow(
        username=username, password_hash=hash_password(password), role=role.value,
        crew_name=crew, active=True, failed_attempts=0, created_at=utcnow(),
    ))
    uow.events.append("user", username, "created", {"role": role.value, "crew": crew})
    uow.commit()
    return row.id


def authenticate(
    uow: UnitOfWork, username: str, password: str, *, now: datetime | None = None
) -> Principal:
    """Check a sign-in; return the principal or raise :class:`AuthenticationError`.

    After :data:`MAX_FAILED_ATTEMPTS` wrong passwords in a row the account is locked for
    :data:`LOCKOUT`. Messages never say whether the username exists.
    """
    now = now or utcnow()
    username = username.strip().lower()
    row = uow.users.by_username(username)
    if row is None or not row.active:
        verify_password(_DUMMY_HASH, password)
        uow.events.append("user", username or "(empty)", "sign_in_failed",
                          {"why": "unknown or disabled"})
        uow.commit()
        raise AuthenticationError("wrong username or password")
    if row.locked_until is not None and row.locked_until > now:
        uow.events.append("user", username, "sign_in_refused", {"why": "locked"})
        uow.commit()
        minutes = max(1, int((row.locked_until - now).total_seconds() // 60))
        raise AuthenticationError(
            f"account locked after {MAX_FAILED_ATTEMPTS} failed sign-ins; try again in "
            f"{minutes} min or ask an admin")
    if not verify_password(row.password_hash, password):
        row.failed_attempts += 1
        details: dict[str, object] = {"failed_attempts": row.failed_attempts}
        if row.failed_attempts >= MAX_FAILED_ATTEMPTS:
            row.locked_until = now + LOCKOUT
            details["locked_until"] = row.locked_until.isoformat()
        uow.events.append("user", username, "sign_in_failed", details)
        uow.commit()
        raise AuthenticationError("wrong username or password")
    row.failed_attempts = 0
    row.locked_until = None
    row.last_login_at = now
    if needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
    uow.events.append("user", username, "signed_in", {})
    uow.commit()
    return Principal(row.username, Role(row.role), row.crew_name)


def session_expired(last_seen: datetime, now: datetime | None = None) -> bool:
    """Return whether a session idle since ``last_seen`` has timed out."""
    return (now or utcnow()) - last_seen > SESSION_TIMEOUT


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(uow: UnitOfWork, principal: Principal) -> str:
    """Open a browser session for a signed-in person; return its token.

    The dashboard keeps the token in its URL so that a page reload finds the session
    again; only a hash of it is stored.
    """
    token = secrets.token_urlsafe(24)
    now = utcnow()
    uow.users.add_session(SessionRow(token_hash=_token_hash(token), username=principal.username,
                                     created_at=now, last_seen_at=now))
    uow.commit()
    return token


def resume_session(uow: UnitOfWork, token: str, *, now: datetime | None = None,
                   ) -> Principal | None:
    """Return who a session token belongs to, or ``None`` (unknown, timed out, disabled).

    A timed-out session is deleted; a live one is refreshed.
    """
    now = now or utcnow()
    row = uow.users.session_by_hash(_token_hash(token))
    if row is None:
        return None
    user = uow.users.by_username(row.username)
    if session_expired(row.last_seen_at, now) or user is None or not user.active:
        uow.users.drop_session(row)
        uow.commit()
        return None
    row.last_seen_at = now
    uow.commit()
    return Principal(user.username, Role(user.role), user.crew_name)


def end_session(uow: UnitOfWork, token: str) -> None:
    """Sign a browser session out (its token stops working)."""
    row = uow.users.session_by_hash(_token_hash(token))
    if row is not None:
        uow.users.drop_session(row)
        uow.events.append("user", row.username, "signed_out", {})
        uow.commit()


def set_active(uow: UnitOfWork, username: str, active: bool) -> None:
    """Enable or disable an account (admins only); enabling also lifts a lockout."""
    require(uow.principal, Role.ADMIN, action="change accounts")
    row = uow.users.by_username(username)
    if row is None:
        raise NotFoundError(f"account {username!r} does not exist")
    row.active = active
    if active:
        row.failed_attempts, row.locked_until = 0, None
    uow.events.append("user", username, "enabled" if active else "disabled", {})
    uow.commit()


def list_users(uow: UnitOfWork) -> list[UserRow]:
    """Return every account (admins only)."""
    require(uow.principal, Role.ADMIN, action="list accounts")
    return uow.users.all()


#: Demo accounts made by ``dispatch init --demo`` (never in production: see README).
DEMO_PASSWORD = "curbside-demo"


def ensure_demo_accounts(uow: UnitOfWork, pack: CityPack) -> list[str]:
    """Create the demo accounts that do not exist yet; return the names created.

    One account per role, and one crew account for the first crew of each skill.
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
    made = []
    for username, role, crew_name in wanted:
        if uow.users.by_username(username) is None:
            create_user(uow, username, DEMO_PASSWORD, role, crew=crew_name)
            made.append(username)
    return made


def principal_for_identity(uow: UnitOfWork, email: str | None) -> Principal:
    """Map a person signed in with the city's identity provider to their account.

    Used with Streamlit's OpenID Connect sign-in (``st.login``): the provider proves
    who the person is; the role comes from the Curbside account whose username is
    that e-mail address (created by an admin with ``dispatch users create``).
    """
    if not email:
        raise AuthenticationError("the identity provider gave no e-mail address")
    row = uow.users.by_username(email.strip().lower())
    if row is None or not row.active:
        uow.events.append("user", email.strip().lower(), "sign_in_failed",
                          {"why": "no account for identity"})
        uow.commit()
        raise AuthenticationError(
            f"{email} has no active Curbside account; ask an admin to create one")
    row.last_login_at = utcnow()
    uow.events.append("user", row.username, "signed_in", {"via": "oidc"})
    uow.commit()
    return Principal(row.username, Role(row.role), row.crew_name)
