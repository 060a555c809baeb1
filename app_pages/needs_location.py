"""Needs location: requests the geocoder could not place at a house, fixed by a supervisor."""

from __future__ import annotations

from typing import Any

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import get_geocoder, pack, require_page, streets_url, unit_of_work
from dispatch.auth import Role
from dispatch.errors import DispatchError
from dispatch.model import ROUTABLE_PRECISIONS
from dispatch.services.geocoding import needs_location, needs_location_count
from dispatch.services.requests import fix_location
from geo.geocoding import Candidate, Precision, describe_method, precision_label
from geo.map_assets import use_local_assets
from geo.maps import base_map, district_layer, draggable_pin

principal = require_page(Role.ADMIN, Role.SUPERVISOR)
city = pack()
geocoder = get_geocoder(city.name)
st.title("Needs location")
st.caption(
    "Open requests whose position is missing or only known to the street or ZIP code. "
    "Crews are only routed to requests located at a house, an intersection, or by hand."
)

if "flash" in st.session_state:
    st.success(st.session_state.pop("flash"))

with unit_of_work() as uow:
    rows = needs_location(uow)
    waiting = needs_location_count(uow) if rows else 0
if not rows:
    st.success("Every open request has a trustworthy location.")
    st.stop()


def _percent(confidence: float | None) -> str:
    """Return a stored confidence (0 to 1) as people read it: ``85%`` (``—`` if none)."""
    return "—" if confidence is None else f"{confidence:.0%}"


table = pd.DataFrame([{
    "pk": r.id, "request": r.external_id,
    "category": city.category_labels.get(r.category, r.category), "address": r.address,
    "zip": r.zipcode, "precision": precision_label(r.geocode_precision),
    "confidence": _percent(r.geocode_confidence), "district": r.district,
} for r in rows])
st.metric("Waiting for a location", f"{waiting:,}")
if waiting > len(table):
    st.caption(f"The oldest {len(table):,} are listed; each one fixed makes room for the next.")
picked = st.dataframe(table.drop(columns=["pk"]), hide_index=True, on_select="rerun",
                      selection_mode="single-row", key="needs_table")
selected = picked.selection.rows if picked is not None else []
index = selected[0] if selected else 0
row = rows[index]
st.subheader(f"{row.external_id} · {row.address or '(no address)'}")


#: Candidates trusted as the supervisor's own fix: a known house, or a pin on the map.
MANUAL_PRECISIONS = frozenset({Precision.POINT, Precision.INTERPOLATED})


def _save(lon: float, lat: float, how: str, matched: str | None,
          precision: str = "manual", confidence: float = 1.0, shown: str | None = None) -> None:
    """Record the fix (``how`` is stored as it is); the message says ``shown`` (or ``how``)."""
    try:
        with unit_of_work() as uow:
            district = fix_location(uow, city, row.id, lon, lat, how=how, matched_address=matched,
                                    precision=precision, confidence=confidence)
    except DispatchError as err:
        st.error(str(err))
        return
    st.session_state["flash"] = (f"{row.external_id} located ({shown or how})"
                                 + (f", district {district}" if district else ""))
    st.rerun()


candidates: list[Candidate] = []
if geocoder is None:
    st.warning("This city ships no address reference: click the map to place the request.")
else:
    text = st.text_input("Address to try", value=row.address, key=f"addr_{row.id}")
    result = geocoder.lookup(text, row.zipcode or None)
    if result.lon is not None and result.lat is not None:
        candidates.append(Candidate(result.lon, result.lat, result.matched_address,
                                    result.precision, result.confidence, result.source))
        how = describe_method(result.method)
        if how:
            st.caption(f"How the first candidate was found: {how}.")
    candidates += [c for c in result.candidates
                   if (c.lon, c.lat) != (result.lon, result.lat)]
    if not candidates:
        st.info("No candidate for this text. Retype the address or click the map.")


def _source_text(source: str) -> str:
    """Name the reference layer(s) a candidate rests on, for the supervisor."""
    if not source:
        return "no address point of its own (street lines, number grid or ZIP centre)"
    return city.reference_source_label(source, attribution=False)


for i, cand in enumerate(candidates):
    cols = st.columns([4, 1])
    cols[0].write(f"**{i + 1}.** {cand.matched_address} — {precision_label(cand.precision)}, "
                  f"confidence {_percent(cand.confidence)}, source: {_source_text(cand.source)}")
    if Precision(cand.precision) not in ROUTABLE_PRECISIONS:
        # a street or ZIP centre would leave the request here anyway: offer no *Use*
        cols[1].caption("Too vague to route: click the map")
        continue
    if cols[1].button("Use", key=f"use_{row.id}_{i}"):
        # a house-level candidate becomes the supervisor's fix; an intersection keeps its
        # own precision and confidence
        kept: dict[str, Any] = ({} if Precision(cand.precision) in MANUAL_PRECISIONS else
                                {"precision": str(cand.precision),
                                 "confidence": float(cand.confidence)})
        # the event keeps the code (``candidate (interpolated)``); the message the label
        _save(cand.lon, cand.lat, f"candidate ({cand.precision})", cand.matched_address,
              shown=f"candidate: {precision_label(cand.precision)}", **kept)

bounds = list(city.boundary.bounds)
fmap = base_map(bounds, streets_url=streets_url(city))
if city.has_districts and city.districts is not None:
    district_layer(city.districts).add_to(fmap)
for i, cand in enumerate(candidates):
    # folium wants (lat, lon): (lon, lat) -> (lat, lon)
    tip = f"{i + 1}. {precision_label(cand.precision)}"
    folium.Marker([cand.lat, cand.lon], tooltip=tip,
                  popup=folium.Popup(folium.Html(tip, script=False)),
                  icon=folium.DivIcon(html=f'<div style="font:bold 14px sans-serif;'
                                           f'color:#c0392b">{i + 1}</div>')).add_to(fmap)
if candidates:
    lats = [c.lat for c in candidates]
    lons = [c.lon for c in candidates]
    fmap.fit_bounds([[min(lats) - 0.005, min(lons) - 0.005], [max(lats) + 0.005,
                                                               max(lons) + 0.005]])
pin_key = f"pin_{row.id}"
pin = st.session_state.get(pin_key)
if pin is not None:
    # the pin the supervisor placed with the last click or drop, kept as (lon, lat)
    draggable_pin(fmap, pin[0], pin[1])
st.caption("Click the map to place your pin, or drag the pin to move it.")
clicked = st_folium(use_local_assets(fmap), height=460, use_container_width=True,
                    returned_objects=["last_clicked"], key=f"fix_map_{row.id}")
point = (clicked or {}).get("last_clicked")
if point:
    # st_folium reports the click (or the pin's drop, fired as a click) as
    # {"lat": ..., "lng": ...}: (lat, lon) -> (lon, lat)
    click = (float(point["lng"]), float(point["lat"]))
    if click != st.session_state.get(f"click_{row.id}"):
        # a new click: the pin goes there, and the map is drawn again with it
        st.session_state[f"click_{row.id}"] = st.session_state[pin_key] = click
        st.rerun()
if pin is not None:
    lon, lat = pin
    nearest = geocoder.reverse_lookup(lon, lat) if geocoder is not None else None
    label = (f"nearest address {nearest.matched_address} ({nearest.distance_m:.0f} m)"
             if nearest is not None and nearest.distance_m is not None else "no address nearby")
    st.write(f"Clicked {lat:.5f}, {lon:.5f} — {label}")
    if st.button("Place the request here", type="primary"):
        _save(lon, lat, "map click", nearest.matched_address if nearest else None)
