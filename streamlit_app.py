"""Curbside dashboard: the entry point (``streamlit run streamlit_app.py``).

Only the sign-in page is reachable until someone signs in; then the navigation holds
the pages of that person's role, and every page checks the role again.
"""

from __future__ import annotations

import streamlit as st

from app_pages.common import (
    PAGE_ICON,
    current_principal,
    pack,
    settle_heap,
    sign_out,
    unit_of_work,
    write_cookie,
)
from dispatch import logs
from dispatch.auth import Role

logs.configure(default="INFO")

st.set_page_config(page_title="Curbside", page_icon=PAGE_ICON,
                   layout="wide")

city = pack()
principal = current_principal()
write_cookie()

SUPERVISORS = {Role.ADMIN, Role.SUPERVISOR}
READERS = {Role.ADMIN, Role.SUPERVISOR, Role.MANAGER}
CREWS = {Role.ADMIN, Role.SUPERVISOR, Role.CREW}

#: (section, file, title, icon, roles)
PAGES = [
    ("Requests", "app_pages/requests_map.py", "Requests map", ":material/map:", READERS),
    ("Supervisor", "app_pages/intake.py", "Intake", ":material/call:", SUPERVISORS),
    ("Supervisor", "app_pages/triage.py", "Triage", ":material/checklist:", SUPERVISORS),
    ("Supervisor", "app_pages/needs_location.py", "Needs location",
     ":material/wrong_location:", SUPERVISORS),
    ("Supervisor", "app_pages/plan.py", "Plan and assign", ":material/route:", SUPERVISORS),
    ("Supervisor", "app_pages/board.py", "Live board", ":material/dashboard:", SUPERVISORS),
    ("Supervisor", "app_pages/route_sheets.py", "Route sheets", ":material/print:", SUPERVISORS),
    ("Supervisor", "app_pages/event_log.py", "Event log", ":material/history:", SUPERVISORS),
    ("Crew", "app_pages/crew.py", "My route today", ":material/local_shipping:", CREWS),
    ("Managers", "app_pages/hotspots.py", "Hot spots", ":material/local_fire_department:",
     READERS),
    ("Managers", "app_pages/kpis.py", "Service KPIs", ":material/monitoring:", READERS),
    ("Managers", "app_pages/monthly_report.py", "Monthly report", ":material/summarize:",
     READERS),
]

with st.sidebar:
    st.markdown(f"**Curbside** · {city.display_name}")
    if not city.has_districts:
        st.warning(city.districts_note, icon=":material/info:")
    if principal is not None:
        st.caption(f"Signed in as **{principal.username}** ({principal.role.value}"
                   + (f", {principal.crew}" if principal.crew else "") + ")")
        from dispatch.services.clock import clock_info

        with unit_of_work() as uow:
            clock = clock_info(uow)
        if clock.replaying:
            st.info(f"Demo: replaying {clock.now.astimezone(city.timezone):%A %d %B %Y}, "
                    f"{clock.now.astimezone(city.timezone):%H:%M}", icon=":material/history:")
        if st.button("Sign out", icon=":material/logout:"):
            sign_out("Signed out.")
            st.rerun()

if principal is None:
    nav = st.navigation([st.Page("app_pages/sign_in.py", title="Sign in",
                                 icon=":material/login:")])
else:
    sections: dict[str, list[st.Page]] = {}
    for section, path, title, icon, roles in PAGES:
        if principal.role in roles:
            sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon))
    nav = st.navigation(sections)
try:
    nav.run()
finally:
    settle_heap(nav.url_path)
