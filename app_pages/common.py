"""What every page shares: the engine, the city pack, the unit of work.

Cached with ``st.cache_resource`` so that reruns do not reload the city pack or
reconnect to the database on every click.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from dispatch.citypack import CityPack, load_city_pack
from dispatch.store import UnitOfWork, default_url, is_initialised, make_engine

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


def unit_of_work(actor: str = "dashboard") -> UnitOfWork:
    """Return a new unit of work on the configured database."""
    return UnitOfWork(engine(), actor=actor)


@st.cache_resource(show_spinner="Loading the address reference…")
def get_geocoder(name: str) -> Any:
    """Return the city's offline geocoder (loaded once per process), or ``None``."""
    from dispatch.errors import DispatchError
    from dispatch.services.geocoding import pack_offline_geocoder

    try:
        return pack_offline_geocoder(get_pack(name))
    except DispatchError:
        return None
