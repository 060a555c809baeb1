"""Labels, not codes: no page shows a category's code where the city pack gives it a label.

Issue 13 saw raw codes like ``bulky_items`` on the pages. Every page a supervisor, a
manager and a crew can open is rendered through AppTest on a worked day (the CD 13/14
sample planned and assigned), and every piece of text it shows (markdown, captions,
metrics, tables, chart-free downloads aside, and the options of its widgets) is searched
for the pack's category codes. Codes stay what the code uses; people read labels.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from signin import page_test, sign_in_at
from streamlit.testing.v1 import AppTest

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.planning import Plan, Reason, ReasonKind, Stop
from dispatch.planning.plan import Unplanned
from dispatch.services.planning import _explain_untrusted
from dispatch.services.requests import IntakeForm, create_request
from dispatch.store import UnitOfWork, make_engine
from geo.geocoding import PRECISION_LABELS, Candidate, GeocodeResult, Precision, precision_label

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14.csv"
CITY = load_city_pack("los_angeles")
#: the codes a person must never read: those whose label differs from the code
CODES = sorted(code for code, cat in CITY.categories.items() if cat.label != code)
#: in prose, only codes no sentence would use (``bulky_items``); a one-word code such as
#: ``other`` is looked for where a whole value stands alone: an option or a table cell
_PROSE_RE = re.compile(r"(?<![\w/.-])(" + "|".join(
    re.escape(c) for c in CODES if "_" in c) + r")(?![\w/.-])")


def _pages() -> list[tuple[str, Role]]:
    """Every page of ``streamlit_app.PAGES`` with one role allowed to open it."""
    source = (ROOT / "streamlit_app.py").read_text(encoding="utf-8")
    pages = re.findall(r'"(app_pages/\w+\.py)"', source)
    out = []
    for path in pages:
        if path.endswith("sign_in.py"):
            continue
        role = Role.CREW if path.endswith("crew.py") else Role.SUPERVISOR
        if any(path.endswith(p) for p in ("hotspots.py", "kpis.py", "monthly_report.py")):
            role = Role.MANAGER
        out.append((path, role))
    return out


@pytest.fixture(scope="module")
def worked_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A store with the sample day planned and assigned, and one crew on it."""
    tmp = tmp_path_factory.mktemp("labels")
    url = f"sqlite:///{tmp / 'labels.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp / "r.csv")]) == 0
    assert main(["--db", url, "clock", "set", "2020-01-03T07:00"]) == 0
    assert main(["--db", url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--assign"]) == 0
    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        plan = uow.plans.for_date("los_angeles", dt.date(2020, 1, 3))[0]
        crew = next(r.crew_name for r in plan.routes if r.stops)
    engine.dispose()
    yield url, crew


def _texts(at: AppTest) -> Iterator[tuple[str, str]]:
    """(where, text) for the page's prose: markdown, captions, metrics, alerts."""
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning",
                 "success", "error", "text", "code", "latex"):
        for el in getattr(at, kind, []):
            yield kind, str(el.value)
    for m in at.metric:
        yield "metric", f"{m.label} {m.value}"
    for kind in ("selectbox", "multiselect", "radio"):
        for w in getattr(at, kind, []):
            yield f"{kind} {w.label!r} label", str(w.label)


def _walk(node: Any) -> Iterator[Any]:
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        yield child
        yield from _walk(child)


def _map_texts(at: AppTest) -> Iterator[tuple[str, str]]:
    """(where, text) for what a map's popups, tooltips and legend say.

    The map is a component whose payload is HTML and script, several times escaped.
    A code may be a key in its script; it is shown where it stands as text: after a tag
    (``>bulky_items``) or a label (``category: bulky_items``).
    """
    for el in _walk(at._tree):
        if getattr(el, "type", "") != "component_instance":
            continue
        payload = str(el.proto).replace("\\", "\\")
        payload = re.sub(r"\\+u003c", "<", re.sub(r"\\+u003e", ">", payload))
        payload = re.sub(r"\\+", "", payload)
        for m in re.finditer(r"(?:>|: |· )\s*([a-z][a-z0-9_]*)", payload):
            yield "map", m.group(1)


def _values(at: AppTest) -> Iterator[tuple[str, str]]:
    """(where, value) for every widget option and every text cell of every table."""
    for kind in ("selectbox", "multiselect", "radio"):
        for w in getattr(at, kind, []):
            for option in w.options:
                yield f"{kind} {w.label!r}", str(option)
    for kind in ("dataframe", "table"):
        for el in getattr(at, kind, []):
            frame: Any = el.value
            if isinstance(frame, pd.DataFrame):
                for col in frame.columns:
                    yield f"{kind} columns", str(col)
                    if frame[col].dtype == object:
                        for value in frame[col].dropna().unique()[:500]:
                            yield f"{kind} column {col!r}", str(value)


@pytest.mark.parametrize(("path", "role"), _pages(), ids=lambda v: str(v))
def test_no_page_shows_a_category_code(
    path: str, role: Role, worked_day: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, crew = worked_day
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    principal = Principal(f"labels-{role.value}", role,
                          crew=crew if role is Role.CREW else None)
    sign_in_at(at, url, principal)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    seen = [(where, m.group(1)) for where, text in _texts(at)
            for m in _PROSE_RE.finditer(text)]
    seen += [(where, value) for where, value in [*_values(at), *_map_texts(at)]
             if value in CODES or _PROSE_RE.search(value)]
    assert not seen, f"{path} shows codes: {sorted(set(seen))[:10]}"


# --------------------------------------------------------------------------- precisions

#: the stored precision codes; a page shows :attr:`Precision.label` instead
PRECISION_CODES = "|".join(re.escape(p.value) for p in Precision)
#: a code where the old pages put one: backticked (`point`), after a dash, "precision"
#: or a candidate's number ("— interpolated,", "1. street"), or in parentheses ("(zip,")
_RAW_PRECISION = re.compile(
    r"(?:`|— |precision |\b\d+\. |\()(" + PRECISION_CODES + r")(?=[`,;)<\"']|\\|$)")


def test_every_precision_has_a_label() -> None:
    assert set(PRECISION_LABELS) == set(Precision)
    labels = [p.label for p in Precision]
    assert all(labels) and len(set(labels)) == len(labels)
    assert not [p for p in Precision if p.label == p.value]
    assert precision_label(None) == Precision.NONE.label
    assert precision_label("interpolated") == Precision.INTERPOLATED.label


def _page(name: str, url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return page_test(name, url, monkeypatch, Principal("labels-precision", Role.SUPERVISOR))


def _raw_precisions(at: AppTest) -> list[tuple[str, str]]:
    """(where, code) for every raw precision code the page shows."""
    seen = [(where, m.group(1)) for where, text in _texts(at)
            for m in _RAW_PRECISION.finditer(text)]
    for where, value in _values(at):
        if where.endswith("columns"):  # a header (``zip``) names a column, not a precision
            continue
        if value in {p.value for p in Precision} or _RAW_PRECISION.search(value):
            seen.append((where, value))
    for el in _walk(at._tree):
        if getattr(el, "type", "") == "component_instance":  # the map's tooltips, popups
            seen += [("map", m.group(1)) for m in _RAW_PRECISION.finditer(str(el.proto))]
    return seen


@pytest.mark.parametrize(
    ("address", "zipcode", "precision"),
    [("MAIN ST", "", Precision.STREET), ("16815 W VANOWEN ST", "91406", Precision.POINT)],
)
def test_intake_shows_precision_labels_not_codes(
    address: str, zipcode: str, precision: Precision, worked_day: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13: Intake said "precision `interpolated`, confidence 85%"."""
    at = _page("intake.py", worked_day[0], monkeypatch).run()
    at.text_input(key="intake_address").input(address)
    at.text_input(key="intake_zip").input(zipcode)
    at.button(key="intake_locate").click().run()
    assert not at.exception
    found = [a.value for a in [*at.success, *at.warning] if "Found" in a.value]
    assert found and precision.label in found[0] and re.search(r"confidence \d+%", found[0])
    assert at.session_state["intake_pin"]["precision"] == precision.value  # stored as is
    assert not _raw_precisions(at), _raw_precisions(at)


def test_intake_lists_candidates_with_labels(
    worked_day: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("intake.py", worked_day[0], monkeypatch).run()
    at.session_state["intake_match"] = GeocodeResult(
        "100 MAIN ST", -118.25, 34.05, Precision.INTERPOLATED, 0.6, "100 N MAIN ST, 90012",
        candidates=(Candidate(-118.25, 34.05, "100 N MAIN ST, 90012", Precision.INTERPOLATED,
                              0.6),
                    Candidate(-118.27, 33.75, "100 S MAIN ST, 90731", Precision.STREET, 0.3)))
    at.run()
    assert not at.exception
    picker = at.selectbox(key="intake_candidate")
    shown = list(picker.options)  # as the call taker reads them
    assert Precision.INTERPOLATED.label in shown[0] and "confidence 60%" in shown[0]
    assert Precision.STREET.label in shown[1] and "confidence 30%" in shown[1]
    assert not [s for s in shown if _RAW_PRECISION.search(s)], shown
    assert not _raw_precisions(at), _raw_precisions(at)


def test_needs_location_shows_precision_labels_and_percentages(
    worked_day: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the queue showed ``interpolated``, ``none`` and confidence ``0.85``."""
    url = worked_day[0]
    with UnitOfWork(make_engine(url), actor="test") as uow:
        pk = create_request(uow, CITY, IntakeForm(
            category="bulky_items", address="1046 W 37TH ST", zipcode="90007",
            lon=None, lat=None, geocode_precision="none", geocode_confidence=0.0,
        ))  # fmt: skip
    at = _page("needs_location.py", url, monkeypatch).run()
    assert not at.exception
    queue = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert set(queue["precision"]) <= set(PRECISION_LABELS.values())
    mine = queue[queue["address"] == "1046 W 37TH ST"].iloc[0]
    assert (mine["precision"], mine["confidence"]) == (Precision.NONE.label, "0%")
    assert all(re.fullmatch(r"\d+%|—", c) for c in queue["confidence"])
    row = int(queue.index[queue["address"] == "1046 W 37TH ST"][0])
    at.session_state["needs_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    lines = [m.value for m in at.markdown if m.value.startswith("**1.**")]
    assert lines and Precision.INTERPOLATED.label in lines[0]
    assert re.search(r"confidence \d+%", lines[0])
    assert not _raw_precisions(at), _raw_precisions(at)
    at.button(key=f"use_{pk}_0").click().run()
    assert not at.exception
    assert any(Precision.INTERPOLATED.label in s.value for s in at.success)
    assert not _raw_precisions(at), _raw_precisions(at)
    with UnitOfWork(make_engine(url)) as uow:  # the event keeps the code
        fixes = [e for e in uow.events.for_entity("request", pk) if e.action == "location_fixed"]
        assert fixes and fixes[0].details["how"] == "candidate (interpolated)"


def test_triage_shows_precision_labels(
    worked_day: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("triage.py", worked_day[0], monkeypatch).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert len(table) and set(table["precision"]) <= set(PRECISION_LABELS.values())


def test_a_plan_says_why_a_position_is_untrusted_in_words() -> None:
    """The plan's reason for a weak position read "precision street, confidence 0.40"."""
    stop = Stop(request_id="R-1", category="bulky_items", district="13", lon=None, lat=None,
                service_s=600)
    plan = Plan(date=dt.date(2020, 1, 3), city="los_angeles", tz="America/Los_Angeles",
                seed=0, unplanned=[Unplanned(stop, Reason(ReasonKind.NO_LOCATION, ""))])
    reason = _explain_untrusted(plan, {"R-1": ("street", 0.4)}).unplanned[0].reason
    assert reason.kind is ReasonKind.NEEDS_LOCATION
    assert Precision.STREET.label in reason.detail and "confidence 40%" in reason.detail
    assert not _RAW_PRECISION.search(reason.detail) and "precision street" not in reason.detail
