"""Text made safe for the places it goes: spreadsheets."""

from __future__ import annotations

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """Return ``value`` made safe for spreadsheets.

    Text starting with ``= + - @`` (or a tab/carriage return) is prefixed with a single
    quote so that Excel and LibreOffice show it instead of evaluating it (OWASP "CSV
    injection"). Numbers are left alone.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value
