"""Curbside dashboard: the entry point (``streamlit run streamlit_app.py``)."""

from __future__ import annotations

import streamlit as st

from app_pages.common import pack

st.set_page_config(page_title="Curbside", page_icon="🧹", layout="wide")

city = pack()
with st.sidebar:
    st.markdown(f"**Curbside** · {city.display_name}")
    if not city.has_districts:
        st.warning(city.districts_note, icon=":material/info:")

pages = {
    "Requests": [
        st.Page("app_pages/requests_map.py", title="Requests map", icon=":material/map:",
                default=True),
    ],
    "Supervisor": [
        st.Page("app_pages/needs_location.py", title="Needs location",
                icon=":material/wrong_location:"),
        st.Page("app_pages/plan.py", title="Plan and assign", icon=":material/route:"),
    ],
}
st.navigation(pages).run()
