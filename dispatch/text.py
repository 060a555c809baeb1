"""Text made safe for the places it goes: spreadsheets."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: A plain decimal number, signed or not: a spreadsheet reads it as a number, never runs it.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise_formula(value: object) -> object:
    """Return ``value`` made safe for spreadsheets.

    Text starting with ``= + - @`` (or a tab/carriage return) is prefixed with a single
    quote so that Excel and LibreOffice show it instead of evaluating it (OWASP "CSV
    injection"). Numbers are left alone, and so is text that is a plain number such as a
    negative longitude (``-118.45``), which cannot run.
    """
    if (isinstance(value, str) and value.startswith(_FORMULA_PREFIXES)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with every text cell and column name neutralised.

    For every table a person downloads as CSV (:func:`csv_bytes`).
    """
    safe = frame.map(neutralise_formula)
    safe.columns = [neutralise_formula(c) for c in frame.columns]
    return safe


def csv_bytes(frame: pd.DataFrame, **to_csv: Any) -> bytes:
    """Return ``frame`` as UTF-8 CSV without its index, spreadsheet formulas neutralised."""
    to_csv.setdefault("index", False)
    return str(neutralise_frame(frame).to_csv(**to_csv)).encode("utf-8")
