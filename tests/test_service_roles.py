"""Every public service checks its caller first: found by introspection, called as nobody.

Case 12 of the state issue (fails on 3559f86): ``planning.save_plan`` saved an assigned
plan for a crew member, and ``candidate_requests``, ``urgent_candidates``,
``nearby_open`` and ``route_view`` answered anonymous callers. Here every public
function of every ``dispatch.services`` module whose first parameter is the unit of work
must carry a role guard (:func:`dispatch.auth.service`) or say why anyone may call it
(:func:`dispatch.auth.public`); then each guarded one is called as an anonymous caller
and as a crew member, with a unit of work that has no database behind it, so a service
that reads anything before it checks the role fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest

import dispatch.services
from dispatch.auth import PUBLIC_ATTR, ROLES_ATTR, Principal, Role
from dispatch.errors import AccessDeniedError


class NoDatabase:
    """A unit of work that knows who is acting and fails on any use of the store."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def begin_write(self) -> None:
        raise AssertionError("the service started a transaction before checking the role")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the service used uow.{name} before checking the role")


def _services() -> list[tuple[str, Callable[..., Any]]]:
    out = []
    for info in pkgutil.iter_modules(dispatch.services.__path__):
        if info.name.startswith("_"):
            continue  # helpers the services share, never called from outside
        module = importlib.import_module(f"dispatch.services.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "uow":
                out.append((f"{info.name}.{name}", fn))
    return out


SERVICES = _services()
ANONYMOUS = Principal("anonymous", Role.ANONYMOUS)
CREW = Principal("joe", Role.CREW, "NC-bulky-1")


def test_the_services_were_found() -> None:
    names = {n for n, _ in SERVICES}
    # the ones the issue names, so that a rename cannot empty this test
    for expected in ("planning.candidate_requests", "planning.urgent_candidates",
                     "requests.nearby_open", "workflow.route_view", "workflow.assign_plan",
                     "imports.import_requests", "users.authenticate"):
        assert expected in names
    assert len(SERVICES) > 50
    assert not any(n.endswith(".save_plan") for n in names), "save_plan is internal now"


@pytest.mark.parametrize(("name", "fn"), SERVICES, ids=[n for n, _ in SERVICES])
def test_every_service_is_guarded_or_says_why_not(name: str, fn: Callable[..., Any]) -> None:
    roles = getattr(fn, ROLES_ATTR, None)
    why = getattr(fn, PUBLIC_ATTR, None)
    assert roles is not None or why, f"{name} checks nobody"
    assert not (roles is not None and why), f"{name} is both guarded and public"


GUARDED = [(n, f) for n, f in SERVICES if getattr(f, ROLES_ATTR, None) is not None]


def _call(fn: Callable[..., Any], principal: Principal) -> None:
    params = list(inspect.signature(fn).parameters.values())[1:]
    args = [object() for p in params if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    fn(NoDatabase(principal), *args)


@pytest.mark.parametrize(("name", "fn"), GUARDED, ids=[n for n, _ in GUARDED])
def test_an_anonymous_caller_is_refused_first(name: str, fn: Callable[..., Any]) -> None:
    with pytest.raises(AccessDeniedError):
        _call(fn, ANONYMOUS)


#: Services a crew member may call (they check the crew itself inside: a crew member
#: asking about another crew is refused, see test_workflow and test_app_crew).
NOT_FOR_CREWS = [(n, f) for n, f in GUARDED if Role.CREW not in getattr(f, ROLES_ATTR)]


@pytest.mark.parametrize(("name", "fn"), NOT_FOR_CREWS, ids=[n for n, _ in NOT_FOR_CREWS])
def test_a_crew_member_is_refused_first(name: str, fn: Callable[..., Any]) -> None:
    with pytest.raises(AccessDeniedError):
        _call(fn, CREW)


def test_crew_services_are_few_and_named() -> None:
    crew_ok = sorted(n for n, f in GUARDED if Role.CREW in getattr(f, ROLES_ATTR))
    assert crew_ok == sorted([
        "clock.clock_info", "planning.default_plan_date", "queries.store_version",
        "routesheets.crew_map_geojson", "routesheets.export_day_routes",
        "routesheets.crews_on_day", "routesheets.newest_plan_date",
        "workflow.acknowledge_route_change", "workflow.attach_photo",
        "workflow.cannot_complete", "workflow.complete_stop", "workflow.crew_route",
        "workflow.record_arrival", "workflow.undo_stop",
    ])
