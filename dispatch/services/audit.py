"""The event log as people read it: per request, route, plan or user.

Read only: the log has no update or delete path in the services, and the database
refuses both (triggers installed by the first migration).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pandas as pd

from dispatch.auth import SUPERVISING, service
from dispatch.errors import ValidationError
from dispatch.store import UnitOfWork

#: How far past the store's clock a window of the log reaches (app instances' clocks).
WINDOW_SLACK = timedelta(minutes=5)

#: Entity types that appear in the log.
ENTITY_TYPES = ("request", "plan", "route", "stop", "crew", "user", "import", "city")


def in_words(code: str) -> str:
    """Return a log code (an action, an entity type, a detail's name) as words.

    >>> in_words("updated_by_import")
    'updated by import'
    """
    return code.replace("_", " ")


def details_text(details: Any) -> str:
    """Return an event's details as ``name: value`` pairs, the names in words.

    >>> details_text({"changed_crews": ["A", "B"], "reason": "blocked"})
    'changed crews: ["A", "B"]; reason: blocked'
    """
    if not isinstance(details, dict):
        return "" if not details else json.dumps(details, ensure_ascii=False)
    return "; ".join(f"{in_words(str(k))}: "
                     + (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
                     for k, v in details.items())


@service(*SUPERVISING, action="read the event log")
def resolve_entity(uow: UnitOfWork, entity_type: str, key: str) -> str:
    """Return the log's id of an entity typed by people (a request's city id -> key).

    A request id used by several sources resolves to the first stored one.
    """
    key = key.strip()
    if entity_type == "request" and key and not key.isdigit():
        found = uow.requests.by_external_id(key)
        if found:
            return str(found[0].id)
    return key


@service(*SUPERVISING, action="read the event log")
def event_log(
    uow: UnitOfWork,
    *,
    entity_type: str | None = None,
    entity_key: str | None = None,
    actor: str | None = None,
    days: int | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Return matching events, newest first: when (UTC), who, what entity, what changed.

    One bounded SQL read (column-wise): by entity, actor and, with ``days``, only the
    last ``days`` days up to now by the store's clock; at most ``limit`` rows. ``entity_key``
    without ``entity_type`` is a request's city id, or a number any entity may have.
    """
    if days is not None and days < 1:
        raise ValidationError(f"got days={days}; expected at least 1 day, or None for all")
    entity_id = None
    if entity_key and entity_key.strip():
        if entity_type:
            entity_id = resolve_entity(uow, entity_type, entity_key)
        else:
            # no entity chosen: a request's city id names that request; a number
            # (a plan, a route, a request's key) matches every entity type with it
            entity_id = resolve_entity(uow, "request", entity_key)
            if entity_id != entity_key.strip():
                entity_type = "request"
    now = uow.now()
    since = None if days is None else now - timedelta(days=days)
    # a window ends now by the store's clock (a few minutes later, for the clocks of
    # several app instances): a demo replaying a past day does not show at the top of
    # "the last 7 days" its own import, stamped years after the day it replays
    until = None if days is None else now + WINDOW_SLACK
    frame = uow.stats.events(entity_type=entity_type or None,
                             entity_ids=None if entity_id is None else [entity_id],
                             actor=actor or None, since=since, until=until, limit=limit)
    return frame[
        ["event", "at", "actor", "entity_type", "entity_id", "action", "details"]]


@service(*SUPERVISING, action="read the event log")
def actors(uow: UnitOfWork) -> list[str]:
    """Return everyone who appears in the log."""
    return uow.events.actors()
