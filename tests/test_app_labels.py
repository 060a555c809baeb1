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
from signin import sign_in_at
from streamlit.testing.v1 import AppTest

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.store import UnitOfWork, make_engine

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
