"""Event log: who changed what, and when, per request, route, plan or user."""

from __future__ import annotations

import json

import streamlit as st

from app_pages.common import pack, require_page, unit_of_work
from dispatch.auth import Principal, Role
from dispatch.services.audit import ENTITY_TYPES, actors, details_text, event_log, in_words
from dispatch.text import csv_bytes

#: How the log's columns are headed on the page.
COLUMN_LABELS = {"event": "#", "at": "when", "actor": "who", "entity_type": "entity",
                 "entity_id": "id", "action": "what happened", "details": "details"}

principal = require_page(Role.ADMIN, Role.SUPERVISOR)
city = pack()
st.title("Event log")
st.caption("Every state change, append-only: nobody can edit or delete an entry.")

with unit_of_work() as uow:
    people = actors(uow)
PERIODS = {"Last 7 days": 7, "Last 30 days": 30, "Last 365 days": 365, "All time": None}
LIMIT = 500
cols = st.columns(4)
entity_type = cols[0].selectbox("Entity", ["(any)", *ENTITY_TYPES])
key = cols[1].text_input("Id (request id such as 1-1523590121, plan or route number)")
actor = cols[2].selectbox("Who", ["(anyone)", *people],
                          format_func=lambda a: a if a == "(anyone)" else Principal.who(a))
period = cols[3].selectbox("When", list(PERIODS), key="event_log_period")
with unit_of_work() as uow:
    frame = event_log(uow, entity_type=None if entity_type == "(any)" else entity_type,
                      entity_key=key or None, actor=None if actor == "(anyone)" else actor,
                      days=PERIODS[period], limit=LIMIT)
if frame.empty:
    st.info("No event matches." + ("" if PERIODS[period] is None
                                   else " Older entries: choose All time under When."))
    st.stop()
if len(frame) == LIMIT:
    st.caption(f"The newest {LIMIT} matching entries; narrow the filters for older ones.")
frame = frame.assign(
    at=frame["at"].map(lambda t: t.astimezone(city.timezone).strftime("%Y-%m-%d %H:%M:%S")))
# people read words; the download keeps the log's own names and JSON for other tools
shown = frame.assign(
    actor=frame["actor"].map(Principal.who),
    action=frame["action"].map(in_words),
    entity_type=frame["entity_type"].map(in_words),
    details=frame["details"].map(details_text),
).rename(columns=COLUMN_LABELS)
frame = frame.assign(details=frame["details"].map(lambda d: json.dumps(d, ensure_ascii=False)))
st.dataframe(shown, hide_index=True, width="stretch")
st.download_button("Download CSV", csv_bytes(frame),
                   "events.csv", "text/csv")
