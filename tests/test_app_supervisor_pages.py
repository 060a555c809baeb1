"""The supervisor pages (intake, triage), driven through Streamlit's AppTest page by page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from signin import sign_in_at
from streamlit.testing.v1 import AppTest

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.model import Channel
from dispatch.services.requests import IntakeForm, create_request, set_priority
from dispatch.store import UnitOfWork, make_engine
from dispatch.store.models import RequestRow

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
# Two real request positions of the seed file (district 13 and 14), lon, lat.
WESTMORELAND = (-118.2877979, 34.07243977)  # 132 S WESTMORELAND AVE, 90004


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("supervisor")
    url = f"sqlite:///{tmp / 'app.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(DATA / "workflow" / "la_day_cd13_cd14.csv"),
                 "--rejects", str(tmp / "r.csv")]) == 0
    return url


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    return load_city_pack("los_angeles")


SUPERVISOR = Principal("ana", Role.SUPERVISOR)


def _page(name: str, url: str, monkeypatch: pytest.MonkeyPatch,
          principal: Principal | None = SUPERVISOR) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app_pages" / name), default_timeout=60)
    if principal is not None:  # signed in, as the sign-in page leaves it
        sign_in_at(at, url, principal)
    return at


def _row(url: str, pk: int) -> RequestRow:
    with UnitOfWork(make_engine(url)) as uow:
        row = uow.requests.get(pk)
        assert row is not None
        return row


def _open_request(url: str, city, category: str, lon: float, lat: float) -> int:  # type: ignore[no-untyped-def]
    """An open request taken through the intake service (the seed file is all closed)."""
    with UnitOfWork(make_engine(url), actor="test") as uow:
        return create_request(uow, city, IntakeForm(category=category, address="test",
                                                    lon=lon, lat=lat))


def _new_pk(url: str, before: set[int]) -> int:
    with UnitOfWork(make_engine(url)) as uow:
        pks = {r.id for r in uow.requests.query()} - before
    assert len(pks) == 1
    return pks.pop()


def _table(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The shown table that has ``column`` (display-only tables carry no key)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1
    return found[0]


def _pks(url: str) -> set[int]:
    with UnitOfWork(make_engine(url)) as uow:
        return {r.id for r in uow.requests.query()}


# --------------------------------------------------------------------------- access


@pytest.mark.parametrize(
    ("name", "principal", "message"),
    [("intake.py", None, "Please sign in."),
     ("intake.py", Principal("crew1", Role.CREW, crew="BOS-1"), "not available to the crew"),
     ("triage.py", Principal("mo", Role.MANAGER), "not available to the manager role")],
)
def test_supervisor_pages_are_for_supervisors(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, name: str,
    principal: Principal | None, message: str,
) -> None:
    at = _page(name, seeded_url, monkeypatch, principal).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert not at.button and not at.dataframe


# --------------------------------------------------------------------------- phone intake


def test_phone_intake_saves_a_pinned_request(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("intake.py", seeded_url, monkeypatch).run()
    assert not at.exception
    # the category list starts with the routable categories
    assert at.selectbox(key="intake_category").options[:3] == [
        "Bulky items", "Graffiti removal", "Illegal dumping (abandoned trash)"]
    assert at.selectbox(key="intake_channel").value == Channel.PHONE.value
    at.selectbox(key="intake_category").set_value("dead_animal_removal")
    at.text_input(key="intake_address").input("532 N VIRGIL AVE")
    at.text_input(key="intake_name").input("Ana Caller")
    at.text_input(key="intake_phone").input("213-555-0100")
    at.text_area(key="intake_description").input("cat on the sidewalk")
    # the pin as a map click leaves it (no browser here)
    at.session_state["intake_pin"] = {"lon": -118.2866321, "lat": 34.08037098,
                                      "precision": "manual", "confidence": 1.0,
                                      "matched_address": None, "how": "map click"}
    at.run()
    before = _pks(seeded_url)
    at.button(key="intake_save").click().run()
    assert not at.exception
    assert not at.error
    pk = _new_pk(seeded_url, before)
    row = _row(seeded_url, pk)
    assert any(row.external_id in s.value.replace("\\", "") for s in at.success)
    assert (row.channel, row.status, row.category) == ("phone", "new", "dead_animal_removal")
    assert (row.lon, row.lat) == (-118.2866321, 34.08037098)
    assert row.geocode_precision == "manual" and row.district == "13"
    assert (row.caller_name, row.caller_phone) == ("Ana Caller", "213-555-0100")
    # the caller's fields are cleared for the next call
    assert at.text_input(key="intake_name").value == ""
    assert "intake_pin" not in at.session_state


def test_nearby_duplicate_is_offered_and_linked(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, city  # type: ignore[no-untyped-def]
) -> None:
    original = _open_request(seeded_url, city, "illegal_dumping", *WESTMORELAND)
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.selectbox(key="intake_category").set_value("illegal_dumping")
    at.text_input(key="intake_address").input("130 S Westmoreland Ave")
    at.session_state["intake_pin"] = {"lon": WESTMORELAND[0] + 0.0002, "lat": WESTMORELAND[1],
                                      "precision": "manual", "confidence": 1.0,
                                      "matched_address": None, "how": "map click"}
    at.run()
    assert not at.exception
    link = at.radio(key="intake_link")
    # a choice is shown made: a new request (no option was marked before)
    assert link.value == 0 and link.options[0] == "a new request"
    assert any("within 75 m" in w.value for w in at.warning)
    assert any("duplicate of" in o for o in link.options)
    before = _pks(seeded_url)
    link.set_value(original).run()
    at.button(key="intake_save").click().run()
    assert not at.exception and not at.error
    row = _row(seeded_url, _new_pk(seeded_url, before))
    assert row.status == "duplicate"
    assert row.duplicate_of_id == original
    assert _row(seeded_url, original).status == "new"


def test_locate_shows_precision_honestly(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.text_input(key="intake_address").input("MAIN ST")
    at.button(key="intake_locate").click().run()
    assert not at.exception
    assert any("street only, house not known" in w.value and "not a house-level" in w.value
               for w in at.warning)
    at.text_input(key="intake_address").input("16815 W VANOWEN ST")
    at.text_input(key="intake_zip").input("91406")
    at.button(key="intake_locate").click().run()
    assert any("16815 W VANOWEN ST, 91406" in s.value and "— house number," in s.value
               for s in at.success)
    pin = at.session_state["intake_pin"]
    assert (pin["lon"], pin["lat"], pin["precision"]) == (-118.4994716, 34.19402846, "point")


def test_locate_names_the_reference_by_its_label_not_its_code(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 13, polish: labels instead of codes everywhere ("from requests" before)
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.text_input(key="intake_address").input("16815 W VANOWEN ST")
    at.text_input(key="intake_zip").input("91406")
    at.button(key="intake_locate").click().run()
    found = [s.value for s in at.success if "16815 W VANOWEN ST" in s.value]
    assert len(found) == 1
    assert "from MyLA311 requests of 1" in found[0]  # the label, Markdown-escaped
    assert "from requests" not in found[0]


def test_locate_without_an_address_reference_asks_for_a_click(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app_pages.common

    monkeypatch.setattr(app_pages.common, "get_geocoder", lambda name: None)
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.text_input(key="intake_address").input("16815 W VANOWEN ST")
    at.button(key="intake_locate").click().run()
    assert not at.exception
    assert any("type the address and click the map" in i.value for i in at.info)
    assert "intake_pin" not in at.session_state


def test_intake_errors_from_services_are_shown(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.session_state["intake_pin"] = {"lon": -74.006, "lat": 40.7128, "precision": "manual",
                                      "confidence": 1.0, "matched_address": None,
                                      "how": "map click"}
    before = _pks(seeded_url)
    at.run()
    at.button(key="intake_save").click().run()
    assert any("outside City of Los Angeles" in e.value for e in at.error)
    assert _pks(seeded_url) == before


# --------------------------------------------------------------------------- issue 13

# 1120 W 28th St (ZIP 90007), a known address point of the reference, lon, lat
W_28TH = (-118.2846101, 34.02923977)
# Pasadena City Hall, well outside the Los Angeles city limit, lon, lat
PASADENA_CITY_HALL = (-118.1445, 34.1478)


def _flat(at: AppTest) -> list[object]:
    """The page's elements in the order they are drawn."""
    return list(at.main)


def _pinned_call(at: AppTest, address: str, name: str) -> None:
    at.selectbox(key="intake_category").set_value("dead_animal_removal")
    at.text_input(key="intake_address").input(address)
    at.text_input(key="intake_name").input(name)
    at.session_state["intake_pin"] = {"lon": -118.2866321, "lat": 34.08037098,
                                      "precision": "manual", "confidence": 1.0,
                                      "matched_address": None, "how": "map click"}
    at.run()


def test_the_save_confirmation_is_under_the_button_and_a_toast(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 13.1: the confirmation was above the visible screen, and the form cleared."""
    at = _page("intake.py", seeded_url, monkeypatch).run()
    _pinned_call(at, "532 N VIRGIL AVE", "Ana Caller")
    before = _pks(seeded_url)
    at.button(key="intake_save").click().run()
    assert not at.exception and not at.error
    row = _row(seeded_url, _new_pk(seeded_url, before))
    elements = _flat(at)
    save = next(i for i, e in enumerate(elements) if getattr(e, "key", None) == "intake_save")
    shown = elements[save + 1]
    assert type(shown).__name__ == "Success"
    assert row.external_id in str(getattr(shown, "value", "")).replace("\\", "")
    assert any(row.external_id in t.value.replace("\\", "") for t in at.toast)


def test_a_double_click_on_save_makes_one_request(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 13.2: the second click of a double click can carry the form as it was.

    The browser sends the fields it shows with each click; a second click sent before
    the cleared form came back brings the old fields again (not the pin, which is no
    field). That second save must not make a second request.
    """
    at = _page("intake.py", seeded_url, monkeypatch).run()
    _pinned_call(at, "532 N VIRGIL AVE", "Double Click")
    before = _pks(seeded_url)
    at.button(key="intake_save").click().run()
    first = _new_pk(seeded_url, before)
    # the second click, with the fields as the browser still showed them
    at.text_input(key="intake_address").input("532 N VIRGIL AVE")
    at.text_input(key="intake_name").input("Double Click")
    at.button(key="intake_save").click().run()
    assert not at.exception and not at.error
    assert _new_pk(seeded_url, before) == first
    external_id = _row(seeded_url, first).external_id
    assert any(external_id in s.value.replace("\\", "") and "already saved" in s.value
               for s in at.success)
    # the next call is a new form: it is saved as a new request
    _pinned_call(at, "530 N VIRGIL AVE", "Next Caller")
    at.button(key="intake_save").click().run()
    assert not at.exception and not at.error
    assert len(_pks(seeded_url) - before) == 2


class FakeMap:
    """Stands in for the st_folium component (the browser's map): reports one click."""

    def __init__(self) -> None:
        self.click: dict[str, float] | None = None

    def __call__(self, *args: object, **kwargs: object) -> dict[str, object]:
        # Leaflet's order: (lon, lat) -> {"lat", "lng"}
        return {"last_clicked": self.click}

    def at(self, lon: float, lat: float) -> None:
        self.click = {"lat": lat, "lng": lon}


@pytest.fixture
def fake_map(monkeypatch: pytest.MonkeyPatch) -> FakeMap:
    import streamlit_folium

    fake = FakeMap()
    monkeypatch.setattr(streamlit_folium, "st_folium", fake)
    return fake


def test_a_map_click_fills_in_the_address_only_within_50_m(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, fake_map: FakeMap
) -> None:
    """Case 13.3: a click filled in an address 731 m away and kept the old ZIP."""
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.text_input(key="intake_zip").input("91406").run()
    fake_map.at(-118.2851, 34.0224)  # ~758 m from 1120 W 28TH ST
    at.run()
    assert not at.exception and not at.error
    pin = at.session_state["intake_pin"]
    assert (pin["lon"], pin["lat"], pin["how"]) == (-118.2851, 34.0224, "map click")
    assert at.text_input(key="intake_address").value == ""
    assert at.text_input(key="intake_zip").value == "91406"
    assert any("no known address within 50 m" in c.value for c in at.caption)
    fake_map.at(W_28TH[0] + 0.0001, W_28TH[1])  # ~9 m from it
    at.run()
    assert not at.exception and not at.error
    assert at.text_input(key="intake_address").value == "1120 W 28TH ST"
    assert at.text_input(key="intake_zip").value == "90007"
    assert any("1120 W 28TH ST" in c.value.replace("\\", "") for c in at.caption)


def test_a_map_click_outside_the_city_is_refused(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, fake_map: FakeMap
) -> None:
    at = _page("intake.py", seeded_url, monkeypatch).run()
    fake_map.at(*PASADENA_CITY_HALL)
    at.run()
    assert not at.exception
    assert "intake_pin" not in at.session_state
    assert len(at.error) == 1 and "outside City of Los Angeles" in at.error[0].value
    assert "city limit" in at.error[0].value


@pytest.mark.parametrize(("address", "reason"), [
    # case 13.4: a Pasadena address was taken into Los Angeles and placed in Eagle Rock
    ("100 E Colorado Blvd, Pasadena, CA 91101", "91101 of '100 E Colorado Blvd, Pasadena, "
     "CA 91101' is not a ZIP of City of Los Angeles"),
    # the walk of issue 13: without its ZIP it became Venice's Garfield Ave
    ("100 N GARFIELD AVE, PASADENA", "is in Pasadena, which is not part of City of Los "
     "Angeles"),
])
def test_an_address_in_another_city_is_refused_with_the_reason(
    address: str, reason: str, seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.text_input(key="intake_address").input(address)
    at.button(key="intake_locate").click().run()
    assert not at.exception
    assert "intake_pin" not in at.session_state
    assert len(at.error) == 1 and reason in at.error[0].value.replace("\\", ""), \
        at.error[0].value
    before = _pks(seeded_url)
    at.button(key="intake_save").click().run()  # the service refuses it too
    assert not at.exception
    assert any(reason in e.value.replace("\\", "") for e in at.error)
    assert _pks(seeded_url) == before


def _carrying(at: AppTest, message: str) -> list[str]:
    """The text of every element on the page that carries ``message``."""
    kinds = ("markdown", "caption", "info", "warning", "success", "error", "toast", "text")
    return [str(el.value) for kind in kinds for el in getattr(at, kind, [])
            if message in str(el.value).replace("\\", "")]


@pytest.mark.parametrize(
    ("address", "zipcode"),
    [("100 E Colorado Blvd, Pasadena, CA 91101", ""), ("100 E Colorado Blvd", "91101")],
)
def test_the_outside_the_city_refusal_is_shown_once(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, address: str, zipcode: str
) -> None:
    """Issue 13: after Locate and Save, a Pasadena address was refused twice on the page."""
    message = "not a ZIP of City of Los Angeles"
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.text_input(key="intake_address").input(address)
    at.text_input(key="intake_zip").input(zipcode)
    at.button(key="intake_locate").click().run()
    assert len(_carrying(at, message)) == 1
    before = _pks(seeded_url)
    at.button(key="intake_save").click().run()
    assert not at.exception and _pks(seeded_url) == before
    assert len(_carrying(at, message)) == 1, _carrying(at, message)
    at.run()  # and stays once
    assert len(_carrying(at, message)) == 1, _carrying(at, message)
    # an address of the city next: the old refusal is gone
    at.text_input(key="intake_address").input("16815 W VANOWEN ST")
    at.text_input(key="intake_zip").input("91406")
    at.button(key="intake_locate").click().run()
    assert not at.exception and not _carrying(at, message) and not at.error


def test_a_second_upload_of_the_same_file_says_nothing_is_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 13.5: the preview said "Will be imported 23" for rows already stored."""
    url = f"sqlite:///{tmp_path / 'upload.db'}"  # its own store: the others stay as seeded
    assert main(["--db", url, "init"]) == 0
    data = (DATA / "import" / "myla311_2020_sample.csv").read_bytes()
    at = _page("intake.py", url, monkeypatch).run()
    at.file_uploader(key="upload_file").set_value(("sample.csv", data, "text/csv")).run()
    assert not at.exception and not at.error
    first = {m.label: m.value for m in at.metric}
    assert (first["New"], first["Changed"], first["Unchanged"]) == ("23", "0", "0")
    at.button(key="upload_import").click().run()
    assert not at.exception and not at.error
    again = _page("intake.py", url, monkeypatch).run()
    again.file_uploader(key="upload_file").set_value(("sample.csv", data, "text/csv")).run()
    assert not again.exception and not again.error
    metrics = {m.label: m.value for m in again.metric}
    assert (metrics["New"], metrics["Changed"], metrics["Unchanged"]) == ("0", "0", "23")
    assert next(b for b in again.button if b.key == "upload_import").disabled
    for p in (ROOT / "var" / "uploads").iterdir():  # leave no test files behind
        if p.name.endswith("-sample.csv") and p.read_bytes() == data:
            p.unlink()


# --------------------------------------------------------------------------- upload


def test_upload_preview_lists_the_rejects_before_importing(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (DATA / "import" / "myla311_broken.csv").read_bytes()
    at = _page("intake.py", seeded_url, monkeypatch).run()
    before = _pks(seeded_url)
    at.file_uploader(key="upload_file").set_value(("myla311_broken.csv", data, "text/csv"))
    at.run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Rows read": "10", "New": "5", "Changed": "0", "Unchanged": "0",
                       "Rejected": "5", "Without coordinates": "0"}
    rejects = _table(at, "stage")
    parse = rejects[rejects["stage"] == "parse"]
    assert parse["line"].tolist() == [3, 4, 5, 8]
    assert parse["field"].tolist() == ["createddate", "srnumber", "requesttype", "latitude"]
    assert rejects[rejects["stage"] == "location"]["line"].tolist() == [6]
    assert len(_table(at, "request id")) == 5
    assert _pks(seeded_url) == before  # the preview wrote nothing

    at.button(key="upload_import").click().run()
    assert not at.exception and not at.error
    assert any("imported 5, updated 0, unchanged 0, rejected 5" in s.value for s in at.success)
    assert len(_pks(seeded_url) - before) == 5
    saved = [p for p in (ROOT / "var" / "uploads").iterdir()
             if p.name.endswith("-myla311_broken.csv") and p.read_bytes() == data]
    assert saved
    for p in saved:  # leave no test files behind in var/uploads
        p.unlink()


def test_upload_of_a_generic_csv_asks_for_a_mapping(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (DATA / "import" / "webform.csv").read_bytes()
    at = _page("intake.py", seeded_url, monkeypatch).run()
    at.file_uploader(key="upload_file").set_value(("webform.csv", data, "text/csv")).run()
    assert not at.exception and not at.error
    # guessed from the header
    assert at.selectbox(key="upload_map_external_id").value == "ticket"
    assert at.selectbox(key="upload_map_lat").value == "y"
    rejects = _table(at, "stage")
    assert rejects["line"].tolist() == [4]
    at.selectbox(key="upload_map_external_id").set_value("(not in this file)").run()
    assert any("external_id" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "upload_import"]


def test_unreadable_upload_is_one_clear_error(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (DATA / "import" / "not_a_table.zip").read_bytes()
    at = _page("intake.py", seeded_url, monkeypatch).run()
    before = _pks(seeded_url)
    at.file_uploader(key="upload_file").set_value(("requests.csv", data, "text/csv")).run()
    assert not at.exception
    assert len(at.error) == 1 and "ZIP archive" in at.error[0].value
    assert not [b for b in at.button if b.key == "upload_import"]
    assert _pks(seeded_url) == before


# --------------------------------------------------------------------------- triage


def test_triage_filter_then_cancel_with_a_reason(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, city  # type: ignore[no-untyped-def]
) -> None:
    keep = _open_request(seeded_url, city, "graffiti_removal", -118.2866321, 34.08037098)
    target = _open_request(seeded_url, city, "bulky_items", -118.2094, 34.0452)  # district 14
    at = _page("triage.py", seeded_url, monkeypatch).run()
    assert not at.exception
    at.sidebar.multiselect(key="triage_districts").set_value(["14"])
    at.sidebar.multiselect(key="triage_categories").set_value(["bulky_items"]).run()
    table = at.dataframe(key="triage_table_0").value
    assert _row(seeded_url, target).external_id in table["request id"].tolist()
    assert _row(seeded_url, keep).external_id not in table["request id"].tolist()
    assert set(table["district"]) == {"14"}
    row_index = table["request id"].tolist().index(_row(seeded_url, target).external_id)
    at.session_state["triage_table_0"] = {
        "selection": {"rows": [row_index], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert any("1 selected" in m.value for m in at.markdown)

    # no reason: refused, nothing changes
    cancel_button = next(b for b in at.button if b.label == "Cancel 1")
    cancel_button.click().run()
    assert any("reason" in e.value for e in at.error)
    assert _row(seeded_url, target).status == "new"

    at.text_area(key="triage_reason").input("resident moved the couch inside")
    next(b for b in at.button if b.label == "Cancel 1").click().run()
    assert not at.exception
    assert _row(seeded_url, target).status == "cancelled"
    assert _row(seeded_url, keep).status == "new"
    assert any("1 request(s) cancelled" in t.value for t in at.toast)
    with UnitOfWork(make_engine(seeded_url)) as uow:
        events = uow.events.for_entity("request", target)
    cancelled = [e for e in events if e.action == "cancelled"]
    assert cancelled and cancelled[0].details == {"reason": "resident moved the couch inside"}
    assert cancelled[0].actor == "supervisor:ana"
    # the cancelled request left the open list (the only one of this filter)
    assert any("No open request matches" in i.value for i in at.info)
    assert not any("selected:" in m.value for m in at.markdown)


def test_the_event_log_reads_in_words(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 13, polish: the log showed entity_type, file_imported and JSON keys
    at = _page("event_log.py", seeded_url, monkeypatch).run()
    assert not at.exception
    (table,) = [d.value for d in at.dataframe]
    assert list(table.columns) == ["#", "when", "who", "entity", "id", "what happened",
                                   "details"]
    assert "file imported" in set(table["what happened"])
    for column in ("entity", "what happened"):
        assert not any("_" in v for v in table[column]), column
    names = {part.split(": ", 1)[0] for d in table["details"] for part in d.split("; ") if d}
    assert names and not any("_" in n for n in names), names
    # who, without the log's role prefix ("cli:import" is "the command line (import)")
    assert not any(w.startswith(("cli:", "supervisor:", "crew:")) for w in table["who"])
    assert "the command line (import)" in set(table["who"])


def test_a_triage_pick_changes_only_the_selected_layer_of_the_map(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, city  # type: ignore[no-untyped-def]
) -> None:
    """Issue 13's walk: each pick redrew the map at the whole city, losing the zoom."""
    import json

    def args(at: AppTest) -> dict[str, Any]:
        (el,) = [el for el in _walk(at._tree)
                 if getattr(el, "type", "") == "component_instance"]
        return dict(json.loads(el.proto.json_args))

    pk = _open_request(seeded_url, city, "graffiti_removal", -118.2830, 34.0760)
    at = _page("triage.py", seeded_url, monkeypatch).run()
    before = args(at)
    at.session_state["triage_picks"] = [pk]  # what a map click leaves
    at.run()
    assert not at.exception
    after = args(at)
    # the map itself is the same one (its frame stays, with its view); only the
    # layer of picks is new
    assert {k: v for k, v in after.items() if k != "feature_group"} == \
        {k: v for k, v in before.items() if k != "feature_group"}
    assert "#ffd400" in str(after["feature_group"])  # triage.HIGHLIGHT
    assert "#ffd400" not in str(before.get("feature_group"))


def test_triage_events_and_priority_for_one_request(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, city  # type: ignore[no-untyped-def]
) -> None:
    pk = _open_request(seeded_url, city, "graffiti_removal", -118.2830, 34.0760)
    at = _page("triage.py", seeded_url, monkeypatch).run()
    at.session_state["triage_picks"] = [pk]  # what a map click leaves
    at.run()
    assert not at.exception
    events = _table(at, "action")
    assert events["action"].tolist() == ["created"]
    at.radio(key="triage_priority").set_value(2)
    next(b for b in at.button if b.label == "Set priority of 1").click().run()
    assert not at.exception
    assert _row(seeded_url, pk).priority == 2
    assert any("urgent" in t.value for t in at.toast)

    # mark it a duplicate of another request, chosen by its request id
    original = _open_request(seeded_url, city, "graffiti_removal", -118.2831, 34.0761)
    original_id = _row(seeded_url, original).external_id
    at.session_state["triage_picks"] = [pk]
    at.run()
    at.text_input(key="triage_original").input("NOPE-1")
    next(b for b in at.button if b.label == "Mark 1 as duplicate").click().run()
    assert any("no request has the id 'NOPE-1'" in e.value for e in at.error)
    at.text_input(key="triage_original").input(original_id)
    next(b for b in at.button if b.label == "Mark 1 as duplicate").click().run()
    assert not at.exception and not at.error
    row = _row(seeded_url, pk)
    assert (row.status, row.duplicate_of_id) == ("duplicate", original)


def test_triage_refuses_to_overwrite_a_change_made_meanwhile(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, city  # type: ignore[no-untyped-def]
) -> None:
    pk = _open_request(seeded_url, city, "illegal_dumping", -118.2840, 34.0770)
    at = _page("triage.py", seeded_url, monkeypatch).run()
    at.session_state["triage_picks"] = [pk]
    at.run()
    with UnitOfWork(make_engine(seeded_url), actor="supervisor:bo") as uow:
        set_priority(uow, [pk], 1)  # somebody else, after the page was drawn
    at.text_area(key="triage_reason").input("duplicate call")
    next(b for b in at.button if b.label == "Cancel 1").click().run()
    assert not at.exception
    assert any("was changed by supervisor:bo" in e.value for e in at.error)
    assert _row(seeded_url, pk).status == "new"


# ----------------------------------------------------------------- needs location


def test_needs_location_offers_a_candidate_and_records_the_fix(
    seeded_url: str, city, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    # a phoned-in request on a numbered street the 2020 reference does not know there
    with UnitOfWork(make_engine(seeded_url), actor="test") as uow:
        pk = create_request(uow, city, IntakeForm(
            category="bulky_items", address="1046 W 37TH ST", zipcode="90007",
            lon=None, lat=None, geocode_precision="none", geocode_confidence=0.0,
        ))  # fmt: skip
    at = _page("needs_location.py", seeded_url, monkeypatch).run()
    assert not at.exception
    assert at.title[0].value == "Needs location"
    queue = _table(at, "precision")
    assert "1046 W 37TH ST" in set(queue["address"])
    first = queue.index[queue["address"] == "1046 W 37TH ST"][0]
    assert first == 0  # the only open request without a location
    lines = [m.value for m in at.markdown if m.value.startswith("**1.**")]
    assert lines and ("1046 W 37TH ST, 90007 — house number, estimated between known numbers"
                      in lines[0])
    # each candidate names the reference layer it rests on (the neighbours' points here)
    assert "source: MyLA311 requests of 1-3 January 2020" in lines[0]
    assert any("numbered streets either side" in c.value for c in at.caption)
    at.button(key=f"use_{pk}_0").click().run()
    assert not at.exception
    assert any("located (candidate: house number, estimated" in s.value for s in at.success)
    with UnitOfWork(make_engine(seeded_url)) as uow:
        row = uow.requests.get(pk)
        assert row is not None and row.lon is not None and row.district is not None
        fixes = [e for e in uow.events.for_entity("request", pk) if e.action == "location_fixed"]
        assert fixes and fixes[0].details["how"] == "candidate (interpolated)"


def test_needs_location_offers_no_use_for_a_zip_centre(
    seeded_url: str, city, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Typing `nowhere at all` offered a ZIP-centre candidate with a *Use* button, which
    could only leave the request in the queue (issue 13): now it is listed, not offered."""
    with UnitOfWork(make_engine(seeded_url), actor="test") as uow:
        pk = create_request(uow, city, IntakeForm(
            category="graffiti_removal", address="nowhere at all", zipcode="90007",
            lon=None, lat=None, geocode_precision="none", geocode_confidence=0.0,
        ))  # fmt: skip
    at = _page("needs_location.py", seeded_url, monkeypatch).run()
    queue = _table(at, "precision")
    row = int(queue.index[queue["address"] == "nowhere at all"][0])
    at.session_state["needs_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception
    lines = [m.value for m in at.markdown if m.value.startswith("**1.**")]
    assert lines and "— ZIP code only, street not known" in lines[0]
    assert not [b for b in at.button if b.key and b.key.startswith(f"use_{pk}_")]
    assert any("Too vague to route" in c.value for c in at.caption)


# ----------------------------------------------------------------- requests map


def _map_html(at: AppTest) -> str:
    """The folium HTML the page hands the map component (unescaped once)."""
    found = [str(el.proto) for el in _walk(at._tree)
             if getattr(el, "type", "") == "component_instance"]
    assert len(found) == 1
    return found[0].replace("\\\\", "\\").replace('\\"', '"')


def _walk(node):  # type: ignore[no-untyped-def]
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        yield child
        yield from _walk(child)


def test_the_requests_map_has_the_offline_streets_and_one_layer_control(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the Requests map drew no offline streets and showed two layer controls."""
    at = _page("requests_map.py", seeded_url, monkeypatch).run()
    assert not at.exception
    assert int(at.metric[1].value.replace(",", "")) > 0  # the requests themselves, drawn
    page = _map_html(at)
    assert "/app/static/streets/los_angeles.json" in page and "tileerror" in page
    assert page.count("L.control.layers(") == 1
