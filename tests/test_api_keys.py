"""API keys: accounts of role ``api``, hashed keys, and nothing else they may do."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.errors import (
    AccessDeniedError,
    AuthenticationError,
    NotFoundError,
    ValidationError,
)
from dispatch.services import apikeys
from dispatch.services.exports import export_requests
from dispatch.services.requests import cancel
from dispatch.services.users import (
    authenticate,
    create_user,
    principal_for_identity,
    set_active,
    start_session,
)
from dispatch.store import UnitOfWork, utcnow
from dispatch.store.models import ApiKeyRow

pytestmark = pytest.mark.db


def test_a_key_is_shown_once_and_stored_as_a_hash(db: Connection) -> None:
    with UnitOfWork(db, actor="cli:test") as uow:
        issued = apikeys.create_api_key(uow, "FixMyStreet", rate_per_min=30)
    assert issued.username == "fixmystreet" and issued.key.startswith("cs_")
    assert len(issued.key) > 40 and issued.prefix == issued.key[:10]
    with UnitOfWork(db) as uow:
        (row,) = [r for r in uow.api_keys.all() if r.username == "fixmystreet"]
        user = uow.users.by_username("fixmystreet")
        stored = [str(getattr(row, c.key)) for c in ApiKeyRow.__table__.columns]
    assert row.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
    assert not any(issued.key in value for value in stored)
    assert user is not None and user.role == "api" and issued.key not in user.password_hash
    with UnitOfWork(db) as uow:
        client = apikeys.authenticate_api_key(uow, issued.key)
    assert client.principal == Principal("fixmystreet", Role.API)
    assert client.rate_per_min == 30
    with UnitOfWork(db) as uow:
        (row,) = [r for r in uow.api_keys.all() if r.username == "fixmystreet"]
    assert row.last_used_at is not None and utcnow() - row.last_used_at < timedelta(minutes=1)


@pytest.mark.parametrize("key", ["", "cs_", "cs_nope", "not-even-prefixed", "cs_" + "x" * 300])
def test_unknown_keys_are_refused_alike(db: Connection, key: str) -> None:
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError,
                                               match=r"^api_key is missing, unknown or revoked$"):
        apikeys.authenticate_api_key(uow, key)


def test_revoked_keys_and_disabled_accounts_are_refused(db: Connection) -> None:
    with UnitOfWork(db, actor="cli:test") as uow:
        first = apikeys.create_api_key(uow, "mark-a-spot")
    with UnitOfWork(db, actor="cli:test") as uow:
        second = apikeys.create_api_key(uow, "mark-a-spot")  # a second key, same account
    with UnitOfWork(db, actor="cli:test") as uow:
        assert apikeys.revoke_api_key(uow, first.prefix) == 1
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError):
        apikeys.authenticate_api_key(uow, first.key)
    with UnitOfWork(db) as uow:
        apikeys.authenticate_api_key(uow, second.key)
    with UnitOfWork(db, actor="cli:test") as uow, pytest.raises(NotFoundError,
                                                                 match="no live API key"):
        apikeys.revoke_api_key(uow, first.prefix)
    with UnitOfWork(db, actor="cli:test") as uow:
        set_active(uow, "mark-a-spot", False)
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError):
        apikeys.authenticate_api_key(uow, second.key)


def test_people_and_api_accounts_stay_apart(db: Connection) -> None:
    with UnitOfWork(db, actor="cli:test") as uow:
        create_user(uow, "ana", "a-long-password", Role.SUPERVISOR)
    with UnitOfWork(db, actor="cli:test") as uow, pytest.raises(
            ValidationError, match="'ana' is a supervisor account, not an API account"):
        apikeys.create_api_key(uow, "ana")
    with UnitOfWork(db, actor="cli:test") as uow, pytest.raises(
            ValidationError, match="dispatch api-keys create"):
        create_user(uow, "robot", "a-long-password", Role.API)
    with UnitOfWork(db, actor="cli:test") as uow:
        apikeys.create_api_key(uow, "robot@city.example")
    for password in ("", "!api-key-account", "a-long-password"):
        with UnitOfWork(db) as uow, pytest.raises(AuthenticationError):
            authenticate(uow, "robot@city.example", password, source="test")
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError):
        principal_for_identity(uow, "robot@city.example")
    with UnitOfWork(db) as uow, pytest.raises(AuthenticationError, match="role api"):
        start_session(uow, Principal("robot@city.example", Role.API))


def test_an_api_principal_may_submit_and_nothing_more(db: Connection, tmp_path: Path) -> None:
    robot = Principal("robot", Role.API)
    with UnitOfWork(db, robot) as uow, pytest.raises(AccessDeniedError, match="api:robot"):
        cancel(uow, [1], "no")
    with UnitOfWork(db, robot) as uow, pytest.raises(AccessDeniedError):
        export_requests(uow, load_city_pack("los_angeles"), "csv", tmp_path / "x.csv")
    with UnitOfWork(db, robot) as uow, pytest.raises(AccessDeniedError):
        apikeys.create_api_key(uow, "another")


def test_the_cli_makes_lists_and_revokes_keys(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    assert main(["--db", url, "init"]) == 0
    capsys.readouterr()
    assert main(["--db", url, "api-keys", "create", "fixmystreet", "--rate", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "API key for fixmystreet (5 submissions a minute); it is shown only now:"
    key = out[1]
    assert main(["--db", url, "api-keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{key[:10]}..." in listed and key not in listed and "unused" in listed
    assert main(["--db", url, "api-keys", "revoke", key[:10] + "..."]) == 0
    assert capsys.readouterr().out.strip() == "revoked 1 key"
    assert main(["--db", url, "api-keys", "revoke", key[:10]]) == 2
    assert "no live API key starts with" in capsys.readouterr().err
