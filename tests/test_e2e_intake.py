"""Intake in headless Chromium: the Save confirmation is where the eye is, and a double
click on *Save* makes one request (issue 13, "Intake a call taker can trust").

AppTest cannot tell where on the screen a message lands, nor send two clicks before the
first run has come back; a browser can. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatch.cli import main
from dispatch.store import UnitOfWork, make_engine
from tests.e2e_helpers import dashboard, idle, locate_on_intake, open_page, shot

pytestmark = pytest.mark.browser
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14.csv"
DESK = {"width": 1400, "height": 900}


def _seed(url: str) -> None:
    tmp = Path(url.removeprefix("sqlite:///")).parent
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp / "r.csv")]) == 0
    assert main(["--db", url, "users", "create", "sup", "--role", "supervisor"]) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-intake') / 'intake.db'}"
    with dashboard(url, _seed) as base:
        yield base, url



def _intakes(url: str) -> list[tuple[str, str]]:
    with UnitOfWork(make_engine(url)) as uow:
        return [(r.external_id, r.address) for r in uow.requests.query()
                if r.source == "intake"]


def test_a_double_click_on_save_makes_one_request_and_says_so_in_view(
    browser: Any, served: tuple[str, str]
) -> None:
    base, url = served
    page = open_page(browser, base, "sup", "Intake", DESK)
    locate_on_intake(page, "532 N VIRGIL AVE", "90004")
    page.get_by_label("Caller name").fill("Ana Caller")
    idle(page)
    before = _intakes(url)
    save = page.get_by_role("button", name="Save request")
    save.scroll_into_view_if_needed()
    save.dblclick()
    confirmation = page.get_by_test_id("stAlert").filter(has_text="CS-")
    confirmation.first.wait_for()
    idle(page)
    page.wait_for_timeout(1500)  # let a second save, if any, reach the database
    idle(page)
    shot(page, "intake-saved")
    made = [r for r in _intakes(url) if r not in before]
    assert len(made) == 1, made
    external_id = made[0][0]
    # the confirmation names the request and is on screen, where the Save button was
    box = confirmation.filter(has_text=external_id).first.bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= DESK["height"], box
    assert page.get_by_test_id("stToast").filter(has_text=external_id).count() >= 1
    page.context.close()
