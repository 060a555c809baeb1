"""What every page shares: the engine, the city pack, the unit of work.

Cached with ``st.cache_resource`` so that reruns do not reload the city pack or
reconnect to the database on every click.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.services.users import end_session, resume_session, session_expired
from dispatch.store import UnitOfWork, default_url, is_initialised, make_engine, utcnow

DEFAULT_CITY = "los_angeles"


def city_name() -> str:
    """Return the city pack the dashboard runs on (``$CURBSIDE_CITY``, else Los Angeles)."""
    return os.environ.get("CURBSIDE_CITY", DEFAULT_CITY)


@st.cache_resource(show_spinner="Loading the city pack…")
def get_pack(name: str) -> CityPack:
    """Return the (immutable) city pack, loaded once per process."""
    return load_city_pack(name)


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    """Return the engine for ``url``, created once per process."""
    return make_engine(url)


def pack() -> CityPack:
    """Return the current city pack."""
    return get_pack(city_name())


def engine() -> Engine:
    """Return the engine of the configured database; stop the page if it is not set up."""
    url = default_url()
    eng = get_engine(url)
    if not is_initialised(eng):
        st.error(
            "The database is not initialised yet. Run `make run` (or "
            f"`dispatch --city {city_name()} init --demo`) and reload this page."
        )
        st.stop()
    return eng


PRINCIPAL_KEY = "curbside_principal"
LAST_SEEN_KEY = "curbside_last_seen"


#: URL parameter holding the browser session's token, so a reload keeps people signed in.
TOKEN_PARAM = "s"
TOKEN_KEY = "curbside_session_token"
REFRESH_KEY = "curbside_session_refreshed"
#: How often an active browser session's "last seen" is written to the database.
REFRESH_EVERY = timedelta(minutes=5)


def current_principal() -> Principal | None:
    """Return who is signed in, or ``None`` (also after the session timed out).

    A new browser session (a reload, a new tab) finds its sign-in again through the
    session token in the URL, as long as it has not been idle for longer than the
    session timeout.
    """
    principal = st.session_state.get(PRINCIPAL_KEY)
    if principal is None:
        return _resume_from_url()
    last_seen = st.session_state.get(LAST_SEEN_KEY)
    if last_seen is not None and session_expired(last_seen):
        sign_out("Your session timed out; please sign in again.")
        return None
    now = utcnow()
    st.session_state[LAST_SEEN_KEY] = now
    token = st.session_state.get(TOKEN_KEY)
    if token:
        if st.query_params.get(TOKEN_PARAM) != token:
            st.query_params[TOKEN_PARAM] = token
        if now - st.session_state.get(REFRESH_KEY, now) > REFRESH_EVERY:
            with UnitOfWork(engine(), actor="session") as uow:
                resume_session(uow, token)
            st.session_state[REFRESH_KEY] = now
    return principal if isinstance(principal, Principal) else None


def _resume_from_url() -> Principal | None:
    token = st.query_params.get(TOKEN_PARAM)
    if not token:
        return None
    with UnitOfWork(engine(), actor="session") as uow:
        principal = resume_session(uow, token)
    if principal is None:
        del st.query_params[TOKEN_PARAM]
        st.session_state["signin_message"] = "Your session ended; please sign in again."
        return None
    sign_in(principal, token)
    return principal


def sign_in(principal: Principal, token: str | None = None) -> None:
    """Remember ``principal`` for this browser session (and its token in the URL)."""
    now = utcnow()
    st.session_state[PRINCIPAL_KEY] = principal
    st.session_state[LAST_SEEN_KEY] = now
    st.session_state[REFRESH_KEY] = now
    if token:
        st.session_state[TOKEN_KEY] = token
        st.query_params[TOKEN_PARAM] = token


def sign_out(message: str | None = None) -> None:
    """Forget who is signed in; the session token stops working."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        with UnitOfWork(engine(), actor="session") as uow:
            end_session(uow, token)
    for key in (PRINCIPAL_KEY, LAST_SEEN_KEY, TOKEN_KEY, REFRESH_KEY):
        st.session_state.pop(key, None)
    if TOKEN_PARAM in st.query_params:
        del st.query_params[TOKEN_PARAM]
    if message:
        st.session_state["signin_message"] = message


def require_page(*roles: Role) -> Principal:
    """Stop the page unless the signed-in person has one of ``roles``."""
    principal = current_principal()
    if principal is None:
        st.error("Please sign in.")
        st.stop()
    if principal.role not in roles:
        st.error(f"This page is not available to the {principal.role.value} role.")
        st.stop()
    return principal


def unit_of_work(actor: str | None = None) -> UnitOfWork:
    """Return a new unit of work acting as the signed-in person.

    Services check that person's role. Without a signed-in person (the sign-in page
    itself) the unit of work acts under ``actor`` with no role at all, so any service
    that checks a role refuses it.
    """
    principal = current_principal()
    return UnitOfWork(engine(), actor=principal or Principal(actor or "anonymous",
                                                            Role.ANONYMOUS))


@st.cache_resource(show_spinner="Loading the address reference…")
def get_geocoder(name: str) -> Any:
    """Return the city's offline geocoder (loaded once per process), or ``None``."""
    from dispatch.errors import DispatchError
    from dispatch.services.geocoding import city_geocoder

    try:
        return city_geocoder(get_pack(name))
    except DispatchError:
        return None
