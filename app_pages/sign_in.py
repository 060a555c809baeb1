"""Sign in: local accounts (and, where configured, the city's identity provider)."""

from __future__ import annotations

import os

import streamlit as st

from app_pages.common import client_source, pack, sign_in, unit_of_work
from dispatch.auth import Role
from dispatch.errors import AuthenticationError
from dispatch.services.users import (
    DEMO_PASSWORD,
    authenticate,
    demo_accounts,
    principal_for_identity,
    start_session,
)

st.title("Sign in to Curbside")
if "signin_message" in st.session_state:
    st.info(st.session_state.pop("signin_message"))

if os.environ.get("CURBSIDE_OIDC") == "1":
    # The city's identity provider (configured in .streamlit/secrets.toml [auth]);
    # see docs/accounts.md. Off unless CURBSIDE_OIDC=1.
    if st.user.is_logged_in:
        try:
            with unit_of_work(actor="sign-in") as uow:
                who = principal_for_identity(uow, str(st.user.get("email") or ""))
                sign_in(who, start_session(uow, who))
        except AuthenticationError as err:
            st.error(str(err))
        else:
            st.rerun()
    st.button("Sign in with your city account", on_click=st.login, type="primary")
    st.divider()

with st.form("sign_in"):
    username = st.text_input("Username", autocomplete="username")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", type="primary")
if submitted:
    try:
        with unit_of_work(actor="sign-in") as uow:
            principal = authenticate(uow, username, password, source=client_source())
            token = start_session(uow, principal)
    except AuthenticationError as err:
        st.error(str(err))
    else:
        sign_in(principal, token)
        st.rerun()

if os.environ.get("CURBSIDE_DEMO") == "1":
    crews = [name for name, role, _ in demo_accounts(pack()) if role is Role.CREW]
    st.caption(
        "Demo database: sign in as `supervisor`, `manager`, `admin` or a crew account ("
        + ", ".join(f"`{name}`" for name in crews) + f"), password `{DEMO_PASSWORD}`."
    )
