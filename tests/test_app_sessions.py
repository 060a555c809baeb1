"""Sessions in the dashboard: a tab ends at its next click once signed out or disabled,
and a pasted link carries no sign-in (cases 10 and 11 of the state issue, on 3559f86:
a signed-out or disabled tab kept recording crew actions for up to 30 minutes, and a
``?s=<token>`` link signed another browser in as the supervisor)."""

from __future__ import annotations

from pathlib import Path

import pytest
from signin import TEST_PASSWORD, session_token
from streamlit.testing.v1 import AppTest

from app_pages.common import PRINCIPAL_KEY, TOKEN_KEY
from dispatch.auth import Principal, Role
from dispatch.cli import main
from dispatch.services.users import set_active
from dispatch.store import UnitOfWork, make_engine

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "import"
SUPERVISOR = Principal("sam", Role.SUPERVISOR)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("sessions")
    url = f"sqlite:///{tmp / 'app.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(DATA / "myla311_2020_sample.csv"),
                 "--no-geocode", "--rejects", str(tmp / "r.csv")]) == 0
    return url


def _tab(url: str, monkeypatch: pytest.MonkeyPatch, token: str | None = None) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    if token is not None:
        at.session_state[TOKEN_KEY] = token  # as a reload finds it in the cookie
    return at


def _signed_in(at: AppTest) -> bool:
    return bool(at.title) and at.title[0].value != "Sign in to Curbside"


def test_signing_out_in_one_tab_ends_the_other_at_its_next_click(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = session_token(url, SUPERVISOR)
    first, second = _tab(url, monkeypatch, token).run(), _tab(url, monkeypatch, token).run()
    assert _signed_in(first) and _signed_in(second)
    first.sidebar.button[0].click().run()  # "Sign out"
    assert not _signed_in(first)
    second.run()  # the other tab's next click
    assert not _signed_in(second)
    assert PRINCIPAL_KEY not in second.session_state
    assert any("session ended" in i.value for i in second.info)


def test_disabling_an_account_ends_its_open_tabs(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crew = Principal("kim", Role.CREW, "NC-bulky-1")
    tab = _tab(url, monkeypatch, session_token(url, crew)).run()
    assert tab.title[0].value == "My route today"
    engine = make_engine(url)
    with UnitOfWork(engine, actor="cli:admin") as uow:
        set_active(uow, "kim", False)
    engine.dispose()
    tab.run()
    assert not _signed_in(tab)


def test_a_pasted_link_signs_nobody_in(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    token = session_token(url, SUPERVISOR)
    mine = _tab(url, monkeypatch, token).run()
    assert _signed_in(mine)
    assert "s" not in mine.query_params and token not in str(dict(mine.query_params))
    # another browser opens a link with the token in it: nothing
    other = _tab(url, monkeypatch)
    other.query_params["s"] = token
    other.run()
    assert not _signed_in(other)


def test_signing_in_sets_the_cookie_and_no_url_token(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURBSIDE_PASSWORD", TEST_PASSWORD)
    assert main(["--db", url, "users", "create", "lee", "--role", "supervisor"]) == 0
    at = _tab(url, monkeypatch).run()
    at.text_input[0].set_value("lee")
    at.text_input[1].set_value(TEST_PASSWORD)
    at.button[0].click().run()
    assert _signed_in(at)
    assert not at.query_params
    # the page wrote the session cookie through a same-origin script
    scripts = [str(e.proto) for e in at.get("iframe")] if at.get("iframe") else []
    assert any("curbside_session" in s and "SameSite=Strict" in s for s in scripts), scripts


def test_a_database_not_set_up_is_named_until_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page says what to run, and works once that was run (the set-up is checked
    once per process and database, not on every query)."""
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    at = _tab(fresh, monkeypatch).run()
    assert any("not initialised yet" in e.value for e in at.error)
    assert main(["--db", fresh, "init"]) == 0
    at = _tab(fresh, monkeypatch, session_token(fresh, SUPERVISOR)).run()
    assert not at.error and _signed_in(at)
    calls: list[object] = []
    import app_pages.common as common

    real = common.is_initialised
    monkeypatch.setattr(common, "is_initialised", lambda e: calls.append(e) or real(e))
    at.run()
    assert _signed_in(at) and calls == []


def test_the_demo_sign_in_names_crew_accounts_that_exist(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint named ``crew-nc-bulky-1``, an account the demo never made."""
    import re

    from dispatch.citypack import load_city_pack
    from dispatch.services.users import DEMO_PASSWORD, authenticate, ensure_demo_accounts

    engine = make_engine(url)
    with UnitOfWork(engine, actor=Principal("root", Role.ADMIN)) as uow:
        ensure_demo_accounts(uow, load_city_pack("los_angeles"))
    monkeypatch.setenv("CURBSIDE_DEMO", "1")
    at = _tab(url, monkeypatch).run()
    hint = next(c.value for c in at.caption if "Demo database" in c.value)
    named = re.findall(r"`(crew-[\w-]+)`", hint)
    assert len(named) >= 3, hint
    for username in named:
        with UnitOfWork(engine, actor="test") as uow:
            principal = authenticate(uow, username, DEMO_PASSWORD, source="test")
        assert principal.role is Role.CREW and principal.crew, username
    engine.dispose()
