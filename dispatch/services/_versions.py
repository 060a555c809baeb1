"""Optimistic locking as people see it: "changed by X at T, reload"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatch.errors import ConcurrentEditError
from dispatch.store import UnitOfWork


def check_version(
    uow: UnitOfWork, entity_type: str, row: Any, expected_version: int | None, label: str,
) -> None:
    """Raise :class:`ConcurrentEditError` when ``row`` changed since the caller read it.

    Parameters
    ----------
    uow
        The unit of work (to find who changed it last, from the event log).
    entity_type
        Event-log name of the entity (``plan``, ``request``).
    row
        The stored row, with ``id`` and ``version``.
    expected_version
        The version the caller saw; ``None`` skips the check (command line, jobs).
    label
        How people call the row (``plan 3``, ``request 1-1523590121``).
    """
    if expected_version is None or row.version == expected_version:
        return
    who, when = last_change(uow, entity_type, row.id)
    raise ConcurrentEditError(
        f"{label} was changed by {who} at {when} (version {row.version}, you had "
        f"{expected_version}); reload and try again"
    )


def last_change(uow: UnitOfWork, entity_type: str, entity_id: int | str) -> tuple[str, str]:
    """Return who last changed an entity and when, from the event log."""
    last = uow.events.last_for_entity(entity_type, entity_id)
    if last is None:
        return "someone", "an unknown time"
    return last.actor, f"{last.at:%Y-%m-%d %H:%M:%S} UTC"


def check_versions(
    uow: UnitOfWork, rows: list[Any], expected: Mapping[int, int] | None,
) -> None:
    """Check the versions of several requests the caller saw (``{pk: version}``)."""
    if not expected:
        return
    for row in rows:
        check_version(uow, "request", row, expected.get(row.id),
                      f"request {row.external_id}")
