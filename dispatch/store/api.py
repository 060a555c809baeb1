"""Repositories of the Open311 API: bounded request reads, receipts and API keys.

Every read here is one bounded SQL statement (a page of at most the caller's limit, or
the rows of a few hundred ids at a time); nothing loads the whole history. Residents'
contact details are never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.store.models import ApiKeyRow, EventRow, ReceiptRow, RequestRow

#: Columns an Open311 answer is made of (no personal data).
PUBLIC_COLUMNS = (
    "id", "source", "external_id", "service_code", "category", "description", "address",
    "zipcode", "lon", "lat", "status", "status_owner", "requested_at", "updated_at",
    "closed_at", "expected_at", "service_date", "assigned_org", "duplicate_of_id", "extra",
)

#: Event-log actions that say why a request closed, with a reason in their details.
CLOSING_ACTIONS = ("cancelled", "closed_not_fixed")

_CHUNK = 900


@dataclass(frozen=True)
class Open311Filter:
    """The filters of an Open311 ``GET requests``; ``None`` means no filter.

    ``requested_until`` is inclusive, as the specification's ``end_date``.
    """

    external_ids: Sequence[str] | None = None
    categories: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    requested_from: datetime | None = None
    requested_until: datetime | None = None


def _columns() -> list[Any]:
    return [getattr(RequestRow, name) for name in PUBLIC_COLUMNS]


class Open311Repository:
    """Reads of requests as the Open311 API shows them, and the receipts it hands out."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def page(self, flt: Open311Filter, *, offset: int, limit: int) -> list[Any]:
        """Return at most ``limit`` requests matching ``flt``, newest first, from ``offset``.

        Each row has the :data:`PUBLIC_COLUMNS` as attributes.
        """
        stmt = select(*_columns())
        if flt.external_ids is not None:
            stmt = stmt.where(RequestRow.external_id.in_(list(flt.external_ids)))
        if flt.categories is not None:
            stmt = stmt.where(RequestRow.category.in_(list(flt.categories)))
        if flt.statuses is not None:
            stmt = stmt.where(RequestRow.status.in_(list(flt.statuses)))
        if flt.requested_from is not None:
            stmt = stmt.where(RequestRow.requested_at >= flt.requested_from)
        if flt.requested_until is not None:
            stmt = stmt.where(RequestRow.requested_at <= flt.requested_until)
        stmt = (stmt.order_by(RequestRow.requested_at.desc(), RequestRow.id.desc())
                .offset(max(offset, 0)).limit(max(limit, 0)))
        return list(self.session.execute(stmt))

    def by_external_id(self, external_id: str, limit: int = 10) -> list[Any]:
        """Return the requests (any source) whose id is ``external_id``, oldest first."""
        stmt = (select(*_columns()).where(RequestRow.external_id == external_id)
                .order_by(RequestRow.id).limit(limit))
        return list(self.session.execute(stmt))

    def external_ids(self, pks: Iterable[int]) -> dict[int, str]:
        """Return ``{id: external_id}`` of the given primary keys."""
        wanted = sorted(set(pks))
        out: dict[int, str] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for pk, external_id in self.session.execute(
                    select(RequestRow.id, RequestRow.external_id).where(RequestRow.id.in_(chunk))):
                out[int(pk)] = str(external_id)
        return out

    def closing_events(self, pks: Iterable[int]) -> dict[int, tuple[str, dict[str, Any]]]:
        """Return the newest closing event (action, details) of each of the given requests."""
        wanted = sorted({str(pk) for pk in pks})
        out: dict[int, tuple[str, dict[str, Any]]] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = self.session.execute(
                select(EventRow.entity_id, EventRow.action, EventRow.details)
                .where(EventRow.entity_type == "request", EventRow.entity_id.in_(chunk),
                       EventRow.action.in_(CLOSING_ACTIONS))
                .order_by(EventRow.id))
            for entity_id, action, details in rows:
                out[int(entity_id)] = (action, dict(details or {}))
        return out

    def add_receipt(self, token: str, request_id: int, at: datetime, by: str) -> None:
        """Remember the token handed out for a submitted request."""
        self.session.add(ReceiptRow(token=token, request_id=request_id, created_at=at,
                                    created_by=by[:64]))

    def receipt(self, token: str) -> tuple[str, str] | None:
        """Return ``(token, external_id)`` of a receipt, or ``None``."""
        row = self.session.execute(
            select(ReceiptRow.token, RequestRow.external_id)
            .join(RequestRow, RequestRow.id == ReceiptRow.request_id)
            .where(ReceiptRow.token == token)).first()
        return None if row is None else (str(row[0]), str(row[1]))


class ApiKeyRepository:
    """API keys (hashes only)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *, username: str, key_hash: str, prefix: str, rate_per_min: int,
            created_at: datetime) -> ApiKeyRow:
        """Add a key (its hash) and flush to get its id."""
        row = ApiKeyRow(username=username, key_hash=key_hash, prefix=prefix,
                        rate_per_min=rate_per_min, created_at=created_at)
        self.session.add(row)
        self.session.flush()
        return row

    def by_hash(self, key_hash: str) -> ApiKeyRow | None:
        """Return the key with this hash."""
        return self.session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))

    def by_prefix(self, prefix: str) -> list[ApiKeyRow]:
        """Return the keys whose shown prefix is ``prefix``."""
        return list(self.session.scalars(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix)
                                         .order_by(ApiKeyRow.id)))

    def all(self) -> list[ApiKeyRow]:
        """Return every key, by account then age."""
        return list(self.session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.username,
                                                                    ApiKeyRow.id)))
