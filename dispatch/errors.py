"""Errors raised by :mod:`dispatch`.

Messages say what came in and what was expected, naming the file, line and
field where there is one.
"""

from __future__ import annotations


class DispatchError(Exception):
    """Base class of every error raised by :mod:`dispatch`."""


class CityPackError(DispatchError):
    """A city pack (``data/cities/*.toml``) is missing, malformed or inconsistent."""


class ImportFormatError(DispatchError):
    """An input file cannot be read at all (not CSV/JSON, unknown layout)."""


class NotFoundError(DispatchError):
    """A request, crew, plan or route named by the caller does not exist."""


class InvalidTransitionError(DispatchError):
    """A status change that the workflow does not allow (e.g. closing a cancelled request)."""


class PlanningError(DispatchError):
    """A planning problem cannot be built or solved from the given inputs."""


class AccessDeniedError(DispatchError):
    """The caller may not see or change this (e.g. a crew asking for another crew's route)."""


class ConcurrentEditError(DispatchError):
    """Somebody else changed the same thing first; the caller must reload and retry."""


class AuthenticationError(DispatchError):
    """A sign-in failed: unknown user, wrong password, locked or disabled account."""


class ValidationError(DispatchError, ValueError):
    """A value the caller gave is not acceptable (empty, too long, out of range ...)."""


class StoreBusyError(ConcurrentEditError):
    """The database stayed busy with another writer for too long; nothing was saved."""


class StoreUnavailableError(DispatchError):
    """The database cannot be reached (server down, wrong URL, unreadable file)."""
