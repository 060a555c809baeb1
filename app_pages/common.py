"""What every page shares: the engine, the city pack, the unit of work.

Cached with ``st.cache_resource`` so that reruns do not reload the city pack or
reconnect to the database on every click.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.services.users import session_expired
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


def current_principal() -> Principal | None:
    """Return who is signed in, or ``None`` (also after the session timed out)."""
    principal = st.session_state.get(PRINCIPAL_KEY)
    if principal is None:
        return None
    last_seen = st.session_state.get(LAST_SEEN_KEY)
    if last_seen is not None and session_expired(last_seen):
        sign_out("Your session timed out; please sign in again.")
        return None
    st.session_state[LAST_SEEN_KEY] = utcnow()
    return principal if isinstance(principal, Principal) else None


def sign_in(principal: Principal) -> None:
    """Remember ``principal`` for this browser session."""
    st.session_state[PRINCIPAL_KEY] = principal
    st.session_state[LAST_SEEN_KEY] = utcnow()


def sign_out(message: str | None = None) -> None:
    """Forget who is signed in."""
    for key in (PRINCIPAL_KEY, LAST_SEEN_KEY):
        st.session_state.pop(key, None)
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
    from dispatch.services.geocoding import pack_offline_geocoder

    try:
        return pack_offline_geocoder(get_pack(name))
    except DispatchError:
        return None
