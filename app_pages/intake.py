"""Intake: take a request by phone (with a pin and a duplicate check), or upload a file."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

# Run directly (`streamlit run app_pages/<page>.py`, AppTest.from_file) the script's own
# folder is on sys.path, not the repository root that holds app_pages/ and dispatch/.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typing import Any

import folium
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import get_geocoder, pack, require_page, streets_url, unit_of_work
from dispatch.auth import SUPERVISING
from dispatch.errors import DispatchError, ImportFormatError
from dispatch.importers.generic_csv import OPTIONAL, REQUIRED, ColumnMapping
from dispatch.model import Channel, is_routable
from dispatch.services.imports import import_requests
from dispatch.services.intake import (
    CLICK_ADDRESS_RADIUS_M,
    ClickAddress,
    address_at_click,
    check_upload_size,
    click_lonlat,
    geocode_address,
    guess_mapping,
    located_outside_city,
    preview_upload,
    save_upload,
    upload_format,
)
from dispatch.services.requests import (
    DUPLICATE_RADIUS_M,
    IntakeForm,
    NearbyRequest,
    create_request,
    nearby_open,
)
from geo.geocoding import Geocoder, GeocodeResult, precision_label
from geo.map_assets import use_local_assets
from geo.maps import base_map, district_layer, draggable_pin

st.set_page_config(page_title="Intake · Curbside", layout="wide")
principal = require_page(*SUPERVISING)
city = pack()
ss = st.session_state
NOT_MAPPED = "(not in this file)"


def _geocoder(city_name: str) -> Geocoder | None:
    """Return the city's geocoder (shared by the pages, loaded once), or ``None``."""
    geocoder: Geocoder | None = get_geocoder(city_name)
    return geocoder


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def _md(text: object) -> str:
    """Return text from files or callers as literal Markdown (labels render Markdown)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def _source(name: str) -> str:
    """Name the reference source(s) an address match rests on, as the city pack labels them."""
    return city.reference_source_label(name, attribution=False)


def _local(ts: Any) -> str:
    return str(ts.astimezone(city.timezone).strftime("%Y-%m-%d %H:%M"))


# --------------------------------------------------------------------------- callbacks


def _set_pin(lon: float, lat: float, precision: str, confidence: float,
             matched: str | None, how: str) -> None:
    ss["intake_pin"] = {"lon": lon, "lat": lat, "precision": precision,
                        "confidence": confidence, "matched_address": matched, "how": how}


def _locate() -> None:
    """Geocode the typed address and put the pin on the answer (if it is in the city)."""
    address, zipcode = ss.get("intake_address", ""), ss.get("intake_zip", "")
    match = geocode_address(_geocoder(city.name), address, zipcode)
    ss["intake_match"] = match
    ss["intake_error"] = None  # a Save refused before stood for the last address
    ss["intake_nearest"] = None
    ss["intake_candidate"] = None
    ss["intake_outside"] = located_outside_city(city, _geocoder(city.name), address, zipcode,
                                                match)
    if ss["intake_outside"] is not None:
        ss.pop("intake_pin", None)  # a place outside the city is no pin of a request
        return
    if match is not None and match.lon is not None and match.lat is not None:
        _set_pin(match.lon, match.lat, str(match.precision), match.confidence,
                 match.matched_address, "address")


def _choose_candidate() -> None:
    """Move the pin to the candidate the call taker chose."""
    match: GeocodeResult | None = ss.get("intake_match")
    index = ss.get("intake_candidate")
    if match is None or index is None:
        return
    c = match.candidates[index]
    _set_pin(c.lon, c.lat, str(c.precision), c.confidence, c.matched_address, "candidate")


def _clear_pin() -> None:
    for key in ("intake_pin", "intake_match", "intake_nearest", "intake_outside",
                "intake_error"):
        ss.pop(key, None)


#: "Save as" a new request (no request has key 0). ``None`` would show no choice made.
NEW_REQUEST = 0

#: The form's widgets: what the call taker typed and chose.
FORM_KEYS = ("intake_category", "intake_address", "intake_zip", "intake_description",
             "intake_name", "intake_phone", "intake_email", "intake_channel", "intake_link")


def _submission(pin: dict[str, Any] | None) -> tuple[str, bool]:
    """Return the form's submission token, and whether this form was saved with it already.

    A token stays with the form it was saved with: a second *Save* of the same fields
    (a double click, whose second click may carry the fields as they were before the
    form was cleared) reuses it, so the service gives back the same request. Other
    fields, or another pin, are a new form and get a new token.
    """
    fields = {key: ss.get(key) for key in FORM_KEYS}
    held = ss.get("intake_submission")
    if held is not None and held["fields"] is not None and (
            held["fields"] != fields or (pin is not None and pin != held["pin"])):
        held = None  # that form was saved: this is the next one
    if held is None:
        held = {"token": uuid.uuid4().hex, "fields": None, "pin": None}
        ss["intake_submission"] = held
    return str(held["token"]), held["fields"] is not None


def _save() -> None:
    """Save the request (new, or linked as a duplicate) once; clear the caller's fields."""
    pin = ss.get("intake_pin") or {}
    link = ss.get("intake_link") or None  # NEW_REQUEST: linked to nothing
    token, repeated = _submission(ss.get("intake_pin"))
    fields = {key: ss.get(key) for key in FORM_KEYS}
    try:
        form = IntakeForm(
            category=ss["intake_category"],
            address=ss.get("intake_address", ""),
            lon=pin.get("lon"),
            lat=pin.get("lat"),
            channel=Channel(ss.get("intake_channel", Channel.PHONE.value)),
            description=ss.get("intake_description", ""),
            caller_name=ss.get("intake_name", ""),
            caller_phone=ss.get("intake_phone", ""),
            caller_email=ss.get("intake_email", ""),
            zipcode=ss.get("intake_zip", ""),
            geocode_precision=pin.get("precision", "manual"),
            geocode_confidence=float(pin.get("confidence", 1.0)),
            matched_address=pin.get("matched_address"),
        )
        with unit_of_work() as uow:
            pk = create_request(uow, city, form, duplicate_of=link, submission=token,
                                geocoder=_geocoder(city.name))
            row = uow.requests.get(pk)
            request_id = row.external_id if row is not None else str(pk)
            original = uow.requests.get(link) if link is not None else None
    except DispatchError as err:
        ss["intake_error"] = str(err)
        return
    ss["intake_error"] = None
    if not repeated:  # the token now stands for this form
        ss["intake_submission"] = {"token": token, "fields": fields,
                                   "pin": ss.get("intake_pin")}
    if repeated:
        ss["intake_saved"] = (f"Request **{_md(request_id)}** (#{pk}) was already saved from "
                              "this form; nothing new was saved.")
    else:
        ss["intake_saved"] = (
            f"Saved request **{_md(request_id)}** (#{pk})"
            + (f" as a duplicate of {_md(original.external_id)}." if original is not None
               else ".")
        )
    for key in ("intake_address", "intake_zip", "intake_description", "intake_name",
                "intake_phone", "intake_email"):
        ss[key] = ""
    ss["intake_link"] = NEW_REQUEST
    ss.pop("intake_address_from_click", None)
    _clear_pin()


# --------------------------------------------------------------------------- phone intake


def _clicked(lon: float, lat: float) -> None:
    """Place the pin where the map was clicked; fill in the address known right there.

    The address (and its ZIP) is filled in only from a known address within
    :data:`CLICK_ADDRESS_RADIUS_M` of the click, and only into an empty address field
    (or one an earlier click filled in); a click outside the city places no pin.
    """
    found = address_at_click(city, _geocoder(city.name), lon, lat)
    ss.pop("intake_match", None)  # the pin no longer stands for the typed address
    ss["intake_error"] = None  # nor does a Save refused before
    ss["intake_nearest"] = found
    ss["intake_outside"] = found.outside
    if found.outside is not None:
        ss.pop("intake_pin", None)
        return
    _set_pin(lon, lat, "manual", 1.0, None, "map click")
    typed = str(ss.get("intake_address", "")).strip()
    if found.near and (not typed or typed == ss.get("intake_address_from_click")):
        ss["intake_address_pending"] = found.address
        ss["intake_zip_pending"] = found.zipcode or ""
        ss["intake_address_from_click"] = found.address


def _intake_map(pin: dict[str, Any] | None, nearby: list[NearbyRequest]) -> folium.Map:
    """Map of the pin, the duplicate radius and the nearby open requests (no data text)."""
    if pin is not None:
        fmap = base_map(center=(pin["lon"], pin["lat"]), zoom_start=17,
                        streets_url=streets_url(city))
    else:
        fmap = base_map(bounds=list(city.boundary.bounds), streets_url=streets_url(city))
    if city.districts is not None:
        district_layer(city.districts).add_to(fmap)
    if pin is not None:
        # (lon, lat) -> (lat, lon) for Leaflet
        where = [pin["lat"], pin["lon"]]
        folium.Circle(where, radius=DUPLICATE_RADIUS_M, color="#888888", weight=1,
                      fill=False).add_to(fmap)
        # the pin can be dragged: a drop comes back as a click at the new spot
        draggable_pin(fmap, pin["lon"], pin["lat"])
    with unit_of_work() as uow:
        rows = {r.id: r for r in uow.requests.by_ids([n.pk for n in nearby])}
    for n in nearby:
        row = rows.get(n.pk)
        if row is not None and row.lon is not None and row.lat is not None:
            # (lon, lat) -> (lat, lon) for Leaflet
            folium.CircleMarker([row.lat, row.lon], radius=6, color="#333333", weight=1,
                                fill=True, fill_color="#ff9f1c", fill_opacity=0.9).add_to(fmap)
    return use_local_assets(fmap)


def _show_match(match: GeocodeResult | None) -> None:
    """Say honestly what the geocoder found (and refuse a place outside the city)."""
    if ss.get("intake_outside"):
        # once on the page: after a refused Save the same reason stands under the button
        if ss.get("intake_error") != ss["intake_outside"]:
            st.error(f"Not taken: {_md(ss['intake_outside'])}.")
        return
    if "intake_match" not in ss:
        return
    if match is None:
        st.info(f"{city.display_name} has no address reference loaded: type the address "
                "and click the map to place the pin.")
        return
    if not match.located:
        st.warning(f"Address not found ({_md(repr(match.query))}): check the spelling or the ZIP, "
                   "or click the map to place the pin.")
        return
    text = (f"Found **{_md(match.matched_address)}** — {match.precision.label}, "
            f"confidence {match.confidence:.0%}"
            + (f", from {_md(_source(match.source))}" if match.source else ""))
    if is_routable(match.precision, match.confidence) and not match.candidates:
        st.success(text)
    else:
        st.warning(text + ". This is not a house-level match: confirm the spot by "
                   "clicking the map.")
    if len(match.candidates) > 1:
        st.selectbox(
            f"{len(match.candidates)} places fit this address — which one?",
            options=list(range(len(match.candidates))), index=None, key="intake_candidate",
            format_func=lambda i: (f"{_md(match.candidates[i].matched_address)} "
                                   f"({precision_label(match.candidates[i].precision)}, "
                                   f"confidence {match.candidates[i].confidence:.0%}"
                                   + (f", {_md(_source(match.candidates[i].source))}"
                                      if match.candidates[i].source else "") + ")"),
            on_change=_choose_candidate,
        )


def _phone_intake() -> None:
    """Draw the call taker's form."""
    if ss.get("intake_address_pending") is not None:
        ss["intake_address"] = ss.pop("intake_address_pending")
    if ss.get("intake_zip_pending") is not None:
        ss["intake_zip"] = ss.pop("intake_zip_pending")

    routable = [c for c in city.categories.values() if c.routable]
    others = [c for c in city.categories.values() if not c.routable]
    labels = city.category_labels
    category = st.selectbox("Category", options=[c.code for c in routable + others],
                            format_func=lambda code: labels[code], key="intake_category")
    left, mid, right = st.columns([6, 2, 1.4], vertical_alignment="bottom")
    left.text_input("Address", key="intake_address", placeholder="e.g. 16815 W Vanowen St")
    mid.text_input("ZIP", key="intake_zip", max_chars=10)
    right.button("Locate", on_click=_locate, key="intake_locate", width="stretch")
    _show_match(ss.get("intake_match"))

    pin: dict[str, Any] | None = ss.get("intake_pin")
    nearby: list[NearbyRequest] = []
    if pin is not None and category:
        with unit_of_work() as uow:
            nearby = nearby_open(uow, category, pin["lon"], pin["lat"])

    out = st_folium(_intake_map(pin, nearby), key="intake_map", height=420,
                    use_container_width=True, returned_objects=["last_clicked"])
    click = (out or {}).get("last_clicked")
    # st_folium gives Leaflet's {"lat", "lng"}: click_lonlat does (lat, lon) -> (lon, lat)
    point = click_lonlat(click)
    if point is not None and click != ss.get("intake_click_seen"):
        ss["intake_click_seen"] = click
        _clicked(*point)
        st.rerun()

    if pin is None:
        st.caption("No pin yet: press **Locate** or click the map where the problem is.")
    else:
        nearest = ss.get("intake_nearest")
        how = pin.get("how", "")
        line = f"Pin ({how}): lon {pin['lon']:.5f}, lat {pin['lat']:.5f}"
        if how == "map click" and isinstance(nearest, ClickAddress):
            found = nearest.nearest
            if nearest.near and found is not None:
                line += (f" — nearest address **{_md(found.matched_address)}**, "
                         f"{found.distance_m or 0:.0f} m away")
            elif found is None:
                line += " — no address reference: type the address"
            else:
                line += (f" — no known address within {CLICK_ADDRESS_RADIUS_M:.0f} m of the "
                         "pin: type the address"
                         + (f" (nearest: {_md(found.matched_address)}, "
                            f"{found.distance_m:.0f} m away)"
                            if found.located and found.distance_m is not None else ""))
        st.caption(line)
        st.button("Remove pin", on_click=_clear_pin, key="intake_clear_pin")

    st.text_area("Description", key="intake_description", max_chars=4000, height=90)
    c1, c2, c3, c4 = st.columns(4)
    c1.text_input("Caller name", key="intake_name")
    c2.text_input("Caller phone", key="intake_phone")
    c3.text_input("Caller email", key="intake_email")
    c4.selectbox("Channel", options=[c.value for c in Channel], key="intake_channel",
                 index=[c.value for c in Channel].index(Channel.PHONE.value),
                 format_func=lambda v: Channel(v).label)

    choices: list[int] = [NEW_REQUEST]
    if nearby:
        st.warning(f"{len(nearby)} open {labels[category].lower()} request(s) within "
                   f"{DUPLICATE_RADIUS_M:.0f} m of the pin — maybe the same problem.")
        choices += [n.pk for n in nearby]
    by_pk = {n.pk: n for n in nearby}
    if ss.get("intake_link") not in choices:
        ss["intake_link"] = NEW_REQUEST
    st.radio(
        "Save as", options=choices, key="intake_link",
        format_func=lambda pk: "a new request" if pk == NEW_REQUEST else (
            f"duplicate of {_md(by_pk[pk].request_id)} — "
            f"{_md(by_pk[pk].address) or 'no address'}, "
            f"{by_pk[pk].distance_m:.0f} m away, requested {_local(by_pk[pk].requested_at)}"),
    )
    st.button("Save request", type="primary", on_click=_save, key="intake_save")
    # the outcome of Save where the eye is: right under the button, and as a toast
    if ss.get("intake_saved"):
        saved = ss.pop("intake_saved")
        st.success(saved, icon="✅")
        st.toast(saved, icon="✅")
    if ss.get("intake_error"):
        st.error(ss["intake_error"])


# --------------------------------------------------------------------------- upload


def _mapping(header: list[str]) -> ColumnMapping | None:
    """Column mapping widgets for a generic CSV; ``None`` until the required ones are set."""
    st.info("This CSV is not a MyLA311 export: say which column holds which field.")
    guess = guess_mapping(header)
    options = [NOT_MAPPED, *header]
    columns: dict[str, str] = {}
    grid = st.columns(3)
    for i, name in enumerate((*REQUIRED, *OPTIONAL)):
        label = name.replace("_", " ") + (" (required)" if name in REQUIRED else "")
        default = guess.get(name)
        chosen = grid[i % 3].selectbox(
            label, options=options, key=f"upload_map_{name}",
            index=options.index(default) if default in options else 0)
        if chosen != NOT_MAPPED:
            columns[name] = chosen
    source = st.text_input("Source name recorded on the requests", value="upload",
                           key="upload_source", max_chars=32)
    missing = [n for n in REQUIRED if n not in columns]
    if missing:
        st.warning(f"Choose the columns for {', '.join(missing)}.")
        return None
    try:
        return ColumnMapping(columns=columns, source=source.strip() or "csv")
    except ImportFormatError as err:
        st.error(str(err))
        return None


def _upload() -> None:
    """Upload a file, preview what it would do, then import it."""
    upload = st.file_uploader("Request file: MyLA311 CSV, Open311 JSON or another CSV",
                              type=["csv", "json"], key="upload_file")
    if upload is None:
        st.caption("Files up to 50 MB; larger exports go through `dispatch import`.")
        return
    try:
        check_upload_size(upload.size, upload.name)
        data = upload.getvalue()
        fmt, header = upload_format(data, upload.name)
    except ImportFormatError as err:
        st.error(f"Nothing imported: {err}")
        return
    mapping = None
    if fmt == "csv":
        mapping = _mapping(header)
        if mapping is None:
            return
    try:
        with unit_of_work() as uow:
            preview = preview_upload(data, upload.name, city, fmt=fmt, mapping=mapping,
                                     uow=uow)
    except ImportFormatError as err:
        st.error(f"Nothing imported: {err}")
        return

    st.subheader(f"Preview of {_md(upload.name)} ({preview.format})")
    cols = st.columns(6)
    cols[0].metric("Rows read", f"{preview.rows_read:,}")
    cols[1].metric("New", f"{preview.new:,}")
    cols[2].metric("Changed", f"{preview.changed:,}")
    cols[3].metric("Unchanged", f"{preview.unchanged:,}")
    cols[4].metric("Rejected", f"{preview.rejected:,}")
    cols[5].metric("Without coordinates", f"{preview.without_position:,}")
    if preview.without_position:
        st.caption("Rows without coordinates are geocoded during the import"
                   + ("" if _geocoder(city.name) is not None else
                      " — but this city has no address reference, so they stay off the map")
                   + ".")
    if preview.rejected:
        st.markdown(f"**Rejected rows** ({len(preview.parse_rejects)} unreadable, "
                    f"{len(preview.location_rejects)} outside the city)")
        st.dataframe(preview.rejects_frame(), hide_index=True, width="stretch",
                     key="upload_rejects")
    if preview.to_import:
        st.markdown(f"**First rows to import** ({min(len(preview.first_rows), preview.to_import)}"
                    f" of {preview.to_import:,})")
        st.dataframe(preview.first_rows, hide_index=True, width="stretch",
                     key="upload_first_rows")
    st.caption("Requests already stored (same source and id) are updated, not duplicated; "
               "unchanged ones are those whose source says the same as when they were "
               "stored.")
    work = preview.new + preview.changed
    if st.button(f"Import {work:,} new or changed requests", type="primary",
                 key="upload_import", disabled=work == 0):
        bar = st.progress(0.0, text="Importing…")

        def progress(done: int, total: int) -> None:
            """Show how far the import is (it stores the file chunk by chunk)."""
            bar.progress(min(done / max(total, 1), 1.0),
                         text=f"Imported {done:,} of {total:,} rows")

        try:
            path = save_upload(data, upload.name)
            with unit_of_work() as uow:
                summary = import_requests(uow, path, city, fmt=fmt, mapping=mapping,
                                          geocoder=_geocoder(city.name), progress=progress)
        except DispatchError as err:
            bar.empty()
            st.error(f"Import stopped: {err}")
            return
        bar.empty()
        st.success(f"{_md(upload.name)}: {summary.line()}"
                   + (f"; {summary.geocoded} geocoded" if summary.geocoded else "")
                   + (f"; {summary.unlocated} without a position" if summary.unlocated else ""))
        extra = [r for r in summary.rejects if r.line not in {x.line for x in preview.rejects}]
        for r in extra:
            st.warning(f"line {r.line}, {_md(r.field)}: {_md(r.reason)}")


st.title("Intake")
phone_tab, upload_tab = st.tabs(["Phone intake", "Upload file"])
with phone_tab:
    _phone_intake()
with upload_tab:
    _upload()
