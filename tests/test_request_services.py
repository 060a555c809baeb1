"""Intake, triage actions, personal data: request services on a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import AccessDeniedError, DispatchError, InvalidTransitionError
from dispatch.model import Channel
from dispatch.services import requests as rs
from dispatch.store import UnitOfWork

pytestmark = pytest.mark.db
SUPERVISOR = Principal("ana", Role.SUPERVISOR)
# City Hall, 200 N Spring St (council district 14)
CITY_HALL = (-118.2427, 34.0537)


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _form(**kw: object) -> rs.IntakeForm:
    values: dict[str, object] = dict(
        category="graffiti_removal", address="200 N SPRING ST", lon=CITY_HALL[0],
        lat=CITY_HALL[1], description="tag on the wall", caller_name="Rosa Diaz",
        caller_phone="213-555-0100", channel=Channel.PHONE)
    values.update(kw)
    return rs.IntakeForm(**values)  # type: ignore[arg-type]


def test_intake_saves_a_located_request_with_its_district(db: Connection, la: CityPack) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        pk = rs.create_request(uow, la, _form())
        row = uow.requests.get(pk)
        assert row is not None
        assert (row.channel, row.status, row.district) == ("phone", "new", "14")
        assert row.external_id.startswith("CS-")
        assert [e.actor for e in uow.events.for_entity("request", pk)] == ["supervisor:ana"]


def test_nearby_open_request_is_offered_and_linked_as_duplicate(
    db: Connection, la: CityPack
) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        first = rs.create_request(uow, la, _form())
        near = rs.nearby_open(uow, "graffiti_removal", CITY_HALL[0] + 0.0003, CITY_HALL[1])
        assert [n.pk for n in near] == [first]
        assert 20 < near[0].distance_m < 40
        assert rs.nearby_open(uow, "bulky_items", *CITY_HALL) == []
        second = rs.create_request(uow, la, _form(), duplicate_of=first)
        row = uow.requests.get(second)
        assert row is not None and (row.status, row.duplicate_of_id) == ("duplicate", first)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"category": "unicorns"}, "not one of"),
        ({"address": "", "lon": None, "lat": None}, "no pin"),
        ({"lon": -74.0, "lat": 40.7}, "outside"),
        ({"lon": float("nan")}, "not a finite"),
        ({"description": "x" * 4001}, "at most 4000"),
    ],
)
def test_intake_refuses_bad_input(
    db: Connection, la: CityPack, change: dict[str, object], message: str
) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow, pytest.raises(DispatchError, match=message):
        rs.create_request(uow, la, _form(**change))


def test_bulk_actions(db: Connection, la: CityPack) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        a = rs.create_request(uow, la, _form())
        b = rs.create_request(uow, la, _form(address="201 N SPRING ST"))
        assert rs.change_category(uow, la, [a, b], "illegal_dumping") == 2
        assert rs.set_priority(uow, [a], 2) == 1
        with pytest.raises(DispatchError, match="reason"):
            rs.cancel(uow, [b], "   ")
        assert rs.cancel(uow, [b], "resident withdrew") == 1
        with pytest.raises(InvalidTransitionError, match="already cancelled"):
            rs.cancel(uow, [b], "again")
        row = uow.requests.get(a)
        assert row is not None and (row.category, row.priority) == ("illegal_dumping", 2)
        actions = [e.action for e in uow.events.for_entity("request", b)]
        assert actions == ["created", "category_changed", "cancelled"]


def test_personal_data_only_for_supervisors_and_erased_after_retention(
    db: Connection, la: CityPack
) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        pk = rs.create_request(uow, la, _form())
        assert rs.caller_details(uow, pk)["phone"] == "213-555-0100"
    for role, crew in ((Role.MANAGER, None), (Role.CREW, "NC-bulky-1")):
        with UnitOfWork(db, actor=Principal("x", role, crew)) as uow:
            with pytest.raises(AccessDeniedError):
                rs.caller_details(uow, pk)
            with pytest.raises(AccessDeniedError):
                rs.create_request(uow, la, _form())
    with UnitOfWork(db) as uow:
        assert rs.anonymise_personal_data(uow, 0) == 0  # still open: kept
        rs.cancel(uow, [pk], "duplicate call")
        row = uow.requests.get(pk)
        assert row is not None and row.closed_at is not None
        row.closed_at = row.closed_at - timedelta(days=100)
        uow.commit()
    with UnitOfWork(db) as uow:
        assert rs.anonymise_personal_data(uow, 90) == 1
        assert rs.caller_details(uow, pk) == {"name": None, "phone": None, "email": None}


# --------------------------------------------------------------------------- issue 13: intake

# Pasadena City Hall (100 N Garfield Ave), well outside the Los Angeles city limit
PASADENA_CITY_HALL = (-118.1445, 34.1478)


def _count(uow: UnitOfWork) -> int:
    return int(uow.requests.count())


def test_the_same_submission_token_saves_one_request(db: Connection, la: CityPack) -> None:
    """Case 13.2: a double click on Save made two requests; one form is one request."""
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        before = _count(uow)
        first = rs.create_request(uow, la, _form(), submission="form-1")
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        # the second click may carry the form as it was, or already cleared: same answer
        again = rs.create_request(uow, la, _form(), submission="form-1")
        cleared = rs.create_request(uow, la, _form(address="", lon=None, lat=None),
                                    submission="form-1")
        assert again == cleared == first
        assert _count(uow) == before + 1
        other = rs.create_request(uow, la, _form(), submission="form-2")
        assert other != first and _count(uow) == before + 2


def test_the_database_refuses_a_submission_token_twice(db: Connection, la: CityPack) -> None:
    """The token's key holds across app instances: a second claim of it is refused."""
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        pk = rs.create_request(uow, la, _form(), submission="form-3")
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        uow.begin_write()
        assert not uow.requests.claim_submission("form-3", pk, uow.now(), "other")
        assert uow.requests.submitted("form-3") == pk


def test_a_save_that_loses_the_race_gives_the_winners_request(
    db: Connection, la: CityPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance stored the token between our check and our insert: one row."""
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        winner = rs.create_request(uow, la, _form(), submission="form-4")
        before = _count(uow)
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        real = uow.requests.submitted
        calls: list[str] = []

        def not_yet(token: str) -> int | None:  # the check ran before the winner committed
            calls.append(token)
            return None if len(calls) == 1 else real(token)

        monkeypatch.setattr(uow.requests, "submitted", not_yet)
        assert rs.create_request(uow, la, _form(), submission="form-4") == winner
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        assert _count(uow) == before


@pytest.mark.parametrize("token", ["", "   ", "x" * 65])
def test_a_bad_submission_token_is_refused(db: Connection, la: CityPack, token: str) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow, pytest.raises(DispatchError,
                                                                 match="submission token"):
        rs.create_request(uow, la, _form(), submission=token)


def test_a_pin_outside_the_city_is_refused_with_the_reason(
    db: Connection, la: CityPack
) -> None:
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        before = _count(uow)
        with pytest.raises(DispatchError, match=r"outside City of Los Angeles.*city limit"):
            rs.create_request(uow, la, _form(address="100 N Garfield Ave",
                                             lon=PASADENA_CITY_HALL[0],
                                             lat=PASADENA_CITY_HALL[1]))
        assert _count(uow) == before


@pytest.mark.parametrize(("address", "zipcode"), [
    ("100 E Colorado Blvd, Pasadena, CA 91101", ""),  # the ZIP in the text
    ("100 E Colorado Blvd", "91101"),                 # the ZIP in its field
    ("1 W Colorado Blvd", "91105"),
])
def test_a_pasadena_address_placed_in_eagle_rock_is_refused(
    db: Connection, la: CityPack, address: str, zipcode: str
) -> None:
    """Case 13.4: the LA geocoder put a Pasadena address on Eagle Rock's Colorado Blvd."""
    from dispatch.services.geocoding import city_geocoder

    geocoder = city_geocoder(la)
    assert geocoder is not None
    match = geocoder.lookup(address, zipcode or None)
    assert match.lon is not None and match.lat is not None
    assert la.within_city([match.lon], [match.lat])[0]  # the position alone is inside
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        before = _count(uow)
        with pytest.raises(DispatchError, match="not a ZIP of City of Los Angeles"):
            rs.create_request(uow, la, _form(address=address, zipcode=zipcode, lon=match.lon,
                                             lat=match.lat), geocoder=geocoder)
        assert _count(uow) == before
        # an address of the city, with its ZIP, still goes through
        assert rs.create_request(uow, la, _form(zipcode="90012"), geocoder=geocoder)
