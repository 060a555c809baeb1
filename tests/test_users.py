"""Accounts: argon2 hashes, roles, lockout, and the role checks of the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from dispatch.auth import Principal, Role, hash_password, require_crew, verify_password
from dispatch.errors import AccessDeniedError, AuthenticationError, DispatchError
from dispatch.services.users import (
    MAX_FAILURES_PER_ACCOUNT,
    MAX_FAILURES_PER_SOURCE,
    THROTTLE_WINDOW,
    authenticate,
    create_user,
    list_users,
    session_expired,
    set_active,
)
from dispatch.store import UnitOfWork, utcnow

PASSWORD = "correct horse battery"


def test_hash_is_argon2_and_verifies() -> None:
    digest = hash_password(PASSWORD)
    assert digest.startswith("$argon2id$")
    assert verify_password(digest, PASSWORD)
    assert not verify_password(digest, PASSWORD + "!")
    assert not verify_password("not a hash", PASSWORD)


def test_short_password_is_refused() -> None:
    with pytest.raises(DispatchError, match="at least"):
        hash_password("short")


@settings(max_examples=5, deadline=None)
@given(st.text(min_size=10, max_size=30))
def test_any_long_password_round_trips(password: str) -> None:
    assert verify_password(hash_password(password), password)


@pytest.mark.parametrize(
    ("principal", "crew", "allowed"),
    [
        (Principal("ana", Role.SUPERVISOR), "NC-bulky-1", True),
        (Principal("root", Role.ADMIN), "NC-bulky-1", True),
        (Principal("joe", Role.CREW, "NC-bulky-1"), "NC-bulky-1", True),
        (Principal("joe", Role.CREW, "NC-bulky-1"), "NC-bulky-2", False),
        (Principal("mia", Role.MANAGER), "NC-bulky-1", False),
    ],
)
def test_who_sees_which_route(principal: Principal, crew: str, allowed: bool) -> None:
    if allowed:
        require_crew(principal, crew)
    else:
        with pytest.raises(AccessDeniedError):
            require_crew(principal, crew)


@pytest.mark.db
def test_sign_in_and_throttling_per_source(db: Connection) -> None:
    with UnitOfWork(db, actor="cli") as uow:
        create_user(uow, "Ana", PASSWORD, Role.SUPERVISOR)
    with UnitOfWork(db) as uow:
        principal = authenticate(uow, "ana", PASSWORD, source="10.0.0.1")
        assert principal == Principal("ana", Role.SUPERVISOR)
        assert principal.actor == "supervisor:ana"
    now = utcnow()
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        with UnitOfWork(db) as uow, pytest.raises(AuthenticationError, match="wrong"):
            authenticate(uow, "ana", "wrong password!", source="6.6.6.6", now=now)
    # the guessing source must wait, even with the right password ...
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError, match="too many"):
        authenticate(uow, "ana", PASSWORD, source="6.6.6.6", now=now)
    # ... but the account is not locked: Ana signs in from her own desk
    with UnitOfWork(db) as uow:
        assert authenticate(uow, "ana", PASSWORD, source="10.0.0.1", now=now).role \
            is Role.SUPERVISOR
    with UnitOfWork(db) as uow:
        later = now + THROTTLE_WINDOW + timedelta(seconds=1)
        assert authenticate(uow, "ana", PASSWORD, source="6.6.6.6", now=later).role \
            is Role.SUPERVISOR
        actions = [e.action for e in uow.events.for_entity("user", "ana")]
        assert actions.count("sign_in_failed") == MAX_FAILURES_PER_ACCOUNT


@pytest.mark.db
def test_throttling_says_nothing_about_which_accounts_exist(db: Connection) -> None:
    """Case 13 (fails on 3559f86): the lockout message named existing accounts only."""
    with UnitOfWork(db, actor="cli") as uow:
        create_user(uow, "admin", PASSWORD, Role.ADMIN)
    now = utcnow()
    answers = {}
    for name in ("admin", "nobody-here"):
        for _ in range(MAX_FAILURES_PER_ACCOUNT):
            with UnitOfWork(db) as uow, pytest.raises(AuthenticationError) as err:
                authenticate(uow, name, "wrong password!", source="6.6.6.6", now=now)
            assert str(err.value) == "wrong username or password"
        with UnitOfWork(db) as uow, pytest.raises(AuthenticationError) as err:
            authenticate(uow, name, "wrong password!", source="6.6.6.6", now=now)
        answers[name] = str(err.value)
    assert answers["admin"] == answers["nobody-here"]
    assert "admin" not in answers["admin"]


@pytest.mark.db
def test_one_source_spraying_many_names_is_throttled(db: Connection) -> None:
    now = utcnow()
    for i in range(MAX_FAILURES_PER_SOURCE):
        with UnitOfWork(db) as uow, pytest.raises(AuthenticationError, match="wrong"):
            authenticate(uow, f"user{i}", "wrong password!", source="6.6.6.6", now=now)
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError, match="too many"):
        authenticate(uow, "someone-else", "wrong password!", source="6.6.6.6", now=now)


@pytest.mark.db
def test_unknown_user_gets_the_same_message(db: Connection) -> None:
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError) as err:
        authenticate(uow, "nobody", PASSWORD)
    assert str(err.value) == "wrong username or password"


@pytest.mark.db
def test_only_admins_manage_accounts(db: Connection) -> None:
    with UnitOfWork(db) as uow:
        create_user(uow, "joe", PASSWORD, Role.CREW, crew="NC-bulky-1")
    supervisor = Principal("ana", Role.SUPERVISOR)
    with UnitOfWork(db, actor=supervisor) as uow, pytest.raises(AccessDeniedError):
        create_user(uow, "eve", PASSWORD, Role.ADMIN)
    with UnitOfWork(db, actor=supervisor) as uow, pytest.raises(AccessDeniedError):
        list_users(uow)
    with UnitOfWork(db) as uow:
        set_active(uow, "joe", False)
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError):
        authenticate(uow, "joe", PASSWORD)


@pytest.mark.parametrize(
    ("username", "role", "crew", "message"),
    [
        ("x", Role.SUPERVISOR, None, "2-64 characters"),
        ("joe", Role.CREW, None, "needs --crew"),
        ("ana", Role.SUPERVISOR, "NC-bulky-1", "only crew members"),
    ],
)
@pytest.mark.db
def test_bad_accounts_are_refused(
    db: Connection, username: str, role: Role, crew: str | None, message: str
) -> None:
    with UnitOfWork(db) as uow, pytest.raises(DispatchError, match=message):
        create_user(uow, username, PASSWORD, role, crew=crew)


def test_session_timeout() -> None:
    now = utcnow()
    assert not session_expired(now - timedelta(minutes=5), now)
    assert session_expired(now - timedelta(hours=2), now)


@pytest.mark.db
def test_identity_provider_users_map_to_their_account(db: Connection) -> None:
    from dispatch.services.users import principal_for_identity

    with UnitOfWork(db) as uow:
        create_user(uow, "Ana@Example.gov", PASSWORD, Role.SUPERVISOR)
    with UnitOfWork(db) as uow:
        assert principal_for_identity(uow, "ana@example.gov") == Principal(
            "ana@example.gov", Role.SUPERVISOR)
        with pytest.raises(AuthenticationError, match="no active Curbside account"):
            principal_for_identity(uow, "stranger@example.gov")
        with pytest.raises(AuthenticationError):
            principal_for_identity(uow, None)


@pytest.mark.db
def test_browser_sessions_survive_a_reload_until_idle_or_signed_out(db: Connection) -> None:
    from dispatch.services.users import (
        SESSION_TIMEOUT,
        end_session,
        resume_session,
        start_session,
    )

    with UnitOfWork(db) as uow:
        create_user(uow, "joe", PASSWORD, Role.CREW, crew="NC-bulky-1")
    joe = Principal("joe", Role.CREW, "NC-bulky-1")
    with UnitOfWork(db) as uow:
        token = start_session(uow, joe)
        assert len(token) >= 32
        assert resume_session(uow, token) == joe
        assert resume_session(uow, token + "x") is None
        later = utcnow() + SESSION_TIMEOUT + timedelta(minutes=1)
        assert resume_session(uow, token, now=later) is None  # idle too long: gone
        assert resume_session(uow, token) is None
        again = start_session(uow, joe)
        end_session(uow, again)
        assert resume_session(uow, again) is None
        third = start_session(uow, joe)
        set_active(uow, "joe", False)
        assert resume_session(uow, third) is None  # disabled accounts lose their sessions
