"""Sign a principal in for an AppTest the way the dashboard does: a real session token.

The pages trust nobody by their session state alone: every run checks the session token
against the database. Tests therefore create the account and open a session for it, and
hand the page the token (as a reload would find it in the cookie).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages.common import TOKEN_KEY
from dispatch.auth import Principal
from dispatch.services.users import create_user, start_session
from dispatch.store import UnitOfWork, make_engine

TEST_PASSWORD = "test-password-123"
ROOT = Path(__file__).resolve().parents[1]


def session_token(url: str, principal: Principal) -> str:
    """Create ``principal``'s account if missing and return a new session token."""
    engine = make_engine(url)
    try:
        with UnitOfWork(engine, actor="test") as uow:
            if uow.users.by_username(principal.username) is None:
                create_user(uow, principal.username, TEST_PASSWORD, principal.role,
                            crew=principal.crew)
        with UnitOfWork(engine, actor="test") as uow:
            return start_session(uow, principal)
    finally:
        engine.dispose()


def sign_in_at(at: AppTest, url: str, principal: Principal) -> AppTest:
    """Put a live session of ``principal`` into ``at``; return ``at``."""
    at.session_state[TOKEN_KEY] = session_token(url, principal)
    return at


def page_test(name: str, url: str, monkeypatch: pytest.MonkeyPatch, principal: Principal,
              *, timeout_s: float = 60) -> AppTest:
    """Return an AppTest of ``app_pages/<name>`` on the database at ``url``, signed in.

    The page runs as Streamlit runs it: from the repository root with the root on
    ``sys.path`` (run directly, a page's own folder is there instead).
    """
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", [str(ROOT), *sys.path])
    at = AppTest.from_file(str(ROOT / "app_pages" / name), default_timeout=timeout_s)
    return sign_in_at(at, url, principal)
