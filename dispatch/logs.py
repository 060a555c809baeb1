"""Logging: one structured line (JSON) per API request and per workflow event.

Every Curbside logger sits under ``curbside`` (``curbside.api`` for the Open311 server,
``curbside.events`` for the event log). :func:`configure` sends them to standard error,
one JSON object per line, at the level ``$CURBSIDE_LOG_LEVEL`` names (``DEBUG``,
``INFO``, ``WARNING``, ``ERROR``); each program passes its own default (the servers
``INFO``, the one-shot commands ``WARNING``).

A line looks like::

    {"ts": "2026-12-05T10:00:00.123Z", "level": "INFO", "logger": "curbside.api",
     "msg": "request", "method": "GET", "path": "/open311/v2/requests.json",
     "status": 200, "ms": 8.1, "client": "127.0.0.1"}
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from dispatch.errors import ValidationError

#: Environment variable holding the log level.
LEVEL_ENV = "CURBSIDE_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ROOT = "curbside"
#: Attribute of a log record holding its structured fields.
FIELDS_ATTR = "curbside_fields"


class JsonLineFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON (never a multi-line traceback)."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                doc.setdefault(str(key), value)
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            doc["error"] = f"{type(err).__name__}: {err}"
        return json.dumps(doc, ensure_ascii=False, default=str, separators=(", ", ": "))


def level_from_env(default: str = "INFO") -> int:
    """Return the level ``$CURBSIDE_LOG_LEVEL`` names, else ``default``.

    Raises
    ------
    ValidationError
        For a value that is not one of :data:`LEVELS`.
    """
    text = os.environ.get(LEVEL_ENV, "").strip().upper() or default.upper()
    if text not in LEVELS:
        raise ValidationError(
            f"{LEVEL_ENV}={os.environ.get(LEVEL_ENV)!r} is not a log level; expected one of "
            f"{', '.join(LEVELS)}")
    return int(logging.getLevelName(text))


def configure(default: str = "INFO", stream: TextIO | None = None) -> logging.Logger:
    """Send Curbside's loggers to ``stream`` (standard error) as JSON lines.

    Calling it again only changes the level (and the stream, if given).

    Parameters
    ----------
    default
        The level when ``$CURBSIDE_LOG_LEVEL`` is not set.
    stream
        Where the lines go (default ``sys.stderr``).

    Returns
    -------
    logging.Logger
        The ``curbside`` logger.
    """
    logger = logging.getLogger(ROOT)
    logger.setLevel(level_from_env(default))
    logger.propagate = False
    handler = next((h for h in logger.handlers if getattr(h, "_curbside", False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler._curbside = True  # type: ignore[attr-defined]
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
    elif stream is not None and isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)
    return logger


def get(name: str) -> logging.Logger:
    """Return the logger ``curbside.<name>``."""
    return logging.getLogger(f"{ROOT}.{name}")


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log ``message`` with structured ``fields`` (shown as keys of the JSON line)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={FIELDS_ATTR: fields})


#: Event-log actions written once per imported row: logged at DEBUG (the import's own
#: ``file_imported`` event sums them up at INFO).
BULK_ACTIONS = frozenset({"imported", "updated_by_import"})

_EVENTS = get("events")


def log_events(rows: list[dict[str, Any]]) -> None:
    """Log committed event-log rows, one line each (``entity``, ``id``, ``action`` ...)."""
    if not rows or not _EVENTS.isEnabledFor(logging.INFO):
        return
    for row in rows:
        level = logging.DEBUG if row.get("action") in BULK_ACTIONS else logging.INFO
        log(_EVENTS, level, "event", actor=row.get("actor"), entity=row.get("entity_type"),
            id=row.get("entity_id"), action=row.get("action"), details=row.get("details"))
