"""Curbside dispatch: domain model, importers, planning, services, CLI and the store."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    try:
        return version("curbside")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


#: The installed Curbside release (from the package metadata).
__version__ = _version()
