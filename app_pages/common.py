"""What every page shares: the engine, the city pack, the unit of work.

Cached with ``st.cache_resource`` so that reruns do not reload the city pack or
reconnect to the database on every click.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import streamlit as st

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, default_city_pack, load_city_pack
from dispatch.services.users import end_session, resume_session
from dispatch.store import Engine, UnitOfWork, default_url, is_initialised, make_engine, utcnow

#: Pages whose first run in this process is over (see :func:`settle_heap`).
_SETTLED: set[str] = set()


def settle_heap(page: str) -> None:
    """Keep what this process loaded for ``page`` out of the garbage collector's way.

    A dashboard process holds a few hundred thousand long-lived objects (the modules,
    the city pack, the cached engine), and each of Python's full collections walks them
    all: about 0.13 s each in the plan page's process, and an edit of a 2,000-stop plan
    allocates enough to start one or two. After a page's first run in the process, what
    is alive is frozen once (``gc.freeze``), so later full collections walk only what
    came after (a few hundredths of a second). Each page settles once, so what one run
    leaves alive at that moment stays for the process's life: once per page at most.
    """
    if page in _SETTLED:
        return
    _SETTLED.add(page)
    gc.collect()
    gc.freeze()


def city_name() -> str:
    """Return the city pack the dashboard runs on (``$CURBSIDE_CITY``, else the default)."""
    return default_city_pack()


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


#: Databases this process found set up: a schema does not go away, and checking it
#: took a query and a connection for every unit of work (13 in a run of the plan page).
_INITIALISED: set[str] = set()


def engine() -> Engine:
    """Return the engine of the configured database; stop the page if it is not set up."""
    url = default_url()
    eng = get_engine(url)
    if url not in _INITIALISED:
        if not is_initialised(eng):
            st.error(
                "The database is not initialised yet. Run `make run` (or "
                f"`dispatch --city {city_name()} init --demo`) and reload this page."
            )
            st.stop()
        _INITIALISED.add(url)
    return eng


PRINCIPAL_KEY = "curbside_principal"
LAST_SEEN_KEY = "curbside_last_seen"

#: Cookie holding the browser session's token, so that a reload keeps people signed in.
#: Never the URL: a pasted link carries no sign-in.
COOKIE = "curbside_session"
TOKEN_KEY = "curbside_session_token"
#: Session-state key of a cookie the next run writes (set) or clears ("").
COOKIE_PENDING_KEY = "curbside_cookie_pending"


def _cookie_token() -> str | None:
    try:
        cookies = st.context.cookies
    except Exception:
        return None
    value = cookies.get(COOKIE) if cookies is not None else None
    return str(value) if value else None


def client_source() -> str:
    """Return where this browser connects from (its IP address), for sign-in throttling."""
    try:
        ip = st.context.ip_address
    except Exception:
        ip = None
    return str(ip) if ip else "unknown"


def write_cookie() -> None:
    """Set or clear the session cookie in the browser, when a sign-in or out asked to.

    The cookie is written by a tiny same-origin script (``SameSite=Strict``, the
    session's lifetime, ``Secure`` over HTTPS). Call once per page run (the entry point
    does).
    """
    pending = st.session_state.pop(COOKIE_PENDING_KEY, None)
    if pending is None:
        return
    import json

    from streamlit.components.v1 import html

    from dispatch.services.users import SESSION_TIMEOUT

    max_age = int(SESSION_TIMEOUT.total_seconds()) * 16 if pending else 0
    value = json.dumps(pending)
    html(
        "<script>(function(){var s=location.protocol==='https:'?';Secure':'';"
        f"document.cookie='{COOKIE}='+encodeURIComponent({value})+"
        f"';Path=/;Max-Age={max_age};SameSite=Strict'+s;}})();</script>",
        height=0,
    )


def current_principal() -> Principal | None:
    """Return who is signed in, or ``None``.

    Every run checks the browser session against the database, so a tab ends at its
    next click once it was signed out (here or in another tab), its account disabled,
    or it sat idle past the session timeout. A new browser session (a reload, a new tab)
    finds its sign-in again through the session cookie.
    """
    token = st.session_state.get(TOKEN_KEY) or _cookie_token()
    if not token:
        if st.session_state.get(PRINCIPAL_KEY) is not None:
            _forget("Your session ended; please sign in again.")
        return None
    with UnitOfWork(engine(), actor="session") as uow:
        principal = resume_session(uow, token)
    if principal is None:
        had = st.session_state.get(PRINCIPAL_KEY) is not None
        _forget("Your session ended; please sign in again." if had else None)
        st.session_state[COOKIE_PENDING_KEY] = ""
        return None
    st.session_state[PRINCIPAL_KEY] = principal
    st.session_state[TOKEN_KEY] = token
    st.session_state[LAST_SEEN_KEY] = utcnow()
    return principal


def _forget(message: str | None) -> None:
    for key in (PRINCIPAL_KEY, LAST_SEEN_KEY, TOKEN_KEY):
        st.session_state.pop(key, None)
    if message:
        st.session_state["signin_message"] = message


def sign_in(principal: Principal, token: str) -> None:
    """Remember ``principal`` for this browser session, and its token in a cookie."""
    st.session_state[PRINCIPAL_KEY] = principal
    st.session_state[LAST_SEEN_KEY] = utcnow()
    st.session_state[TOKEN_KEY] = token
    st.session_state[COOKIE_PENDING_KEY] = token


def sign_out(message: str | None = None) -> None:
    """Forget who is signed in; the session token stops working in every tab."""
    token = st.session_state.get(TOKEN_KEY) or _cookie_token()
    if token:
        with UnitOfWork(engine(), actor="session") as uow:
            end_session(uow, token)
    _forget(message)
    st.session_state[COOKIE_PENDING_KEY] = ""


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


#: Where Streamlit serves ``static/`` (``server.enableStaticServing``).
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
#: The tab's icon, shipped: a ``:material/...:`` icon is fetched from Google's font
#: servers, which an offline service center cannot reach (a console error on every page).
PAGE_ICON = str(STATIC_DIR / "curbside-icon.png")


def streets_url(city: CityPack) -> str | None:
    """Return the URL of the city's offline street lines, if they were built.

    ``dispatch geo build-streets`` writes ``static/streets/<city>.json``; maps draw it
    when their tiles cannot load.
    """
    if (STATIC_DIR / "streets" / f"{city.name}.json").is_file():
        return f"/app/static/streets/{city.name}.json"
    return None


def _first_click_count_zero() -> None:
    """Make streamlit-folium's first answer match what the browser sends (no extra run).

    The map's browser side compares what it would send with the default it was given
    and sends only a change. It counts object clicks from 0, while the Python default
    says ``None``: every newly drawn map (opening a page, choosing a route) sent that
    one change as soon as it was ready, and Streamlit ran the page, or the map's
    fragment, once more for nothing: about a third of a second of "Running" on the
    plan page. With the default at 0 the two agree, so nothing is sent until a click.
    """
    import streamlit_folium

    component = streamlit_folium._component_func
    if getattr(component, "curbside_fixed", False):
        return

    def fixed(*args: Any, default: Any = None, **kwargs: Any) -> Any:
        if isinstance(default, dict) and default.get("last_object_clicked_count", 0) is None:
            default = {**default, "last_object_clicked_count": 0}
        return component(*args, default=default, **kwargs)

    fixed.curbside_fixed = True  # type: ignore[attr-defined]
    streamlit_folium._component_func = fixed


_first_click_count_zero()
