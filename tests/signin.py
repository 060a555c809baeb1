"""Sign a principal in for an AppTest the way the dashboard does: a real session token.

The pages trust nobody by their session state alone: every run checks the session token
against the database. Tests therefore create the account and open a session for it, and
hand the page the token (as a reload would find it in the cookie).
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app_pages.common import TOKEN_KEY
from dispatch.auth import Principal
from dispatch.services.users import create_user, start_session
from dispatch.store import UnitOfWork, make_engine

TEST_PASSWORD = "test-password-123"


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
