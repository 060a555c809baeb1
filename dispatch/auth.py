"""Who is acting: roles, principals and the checks services make.

Pure: password hashing uses argon2 (argon2-cffi); nothing here touches the database.
Services read the acting :class:`Principal` from their unit of work and call
:func:`require` before they read or change anything a role may not.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dispatch.errors import AccessDeniedError, ValidationError


class Role(enum.StrEnum):
    """What a person may do."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    CREW = "crew"
    MANAGER = "manager"
    #: A program holding an API key (an Open311 client): may submit requests, never sign
    #: in to the dashboard.
    API = "api"
    #: Not signed in: may only sign in.
    ANONYMOUS = "anonymous"


#: Roles that may see residents' personal data (caller name, phone, email).
PII_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})
#: Roles that run the day: intake, triage, planning, assignment.
SUPERVISING = (Role.ADMIN, Role.SUPERVISOR)
#: Roles that may read dashboards and reports.
READING = (Role.ADMIN, Role.SUPERVISOR, Role.MANAGER)


@dataclass(frozen=True)
class Principal:
    """The person (or program) acting.

    Parameters
    ----------
    username
        Account name; ``system`` for the command line and jobs.
    role
        The account's role.
    crew
        For crew members, the crew whose route they work.
    """

    username: str
    role: Role
    crew: str | None = None

    def __post_init__(self) -> None:
        if self.role is Role.CREW and not self.crew:
            raise ValidationError(f"crew member {self.username!r} has no crew")

    @property
    def actor(self) -> str:
        """Return the name written into the event log, e.g. ``supervisor:ana``."""
        return f"{self.role.value}:{self.username}"

    @staticmethod
    def who(actor: str) -> str:
        """Return who an event-log actor (``role:name``, see :attr:`actor`) was, for people.

        >>> Principal.who("supervisor:ana"), Principal.who("cli:import"), Principal.who("x")
        ('ana', 'the command line (import)', 'x')
        """
        kind, sep, name = actor.partition(":")
        if not sep:
            return actor
        return f"the command line ({name})" if kind == "cli" else name

    @property
    def sees_personal_data(self) -> bool:
        """Return whether residents' contact details may be shown to this principal."""
        return self.role in PII_ROLES


#: The command line and background jobs: whoever can run them owns the database.
SYSTEM = Principal("system", Role.ADMIN)


def require(principal: Principal, *roles: Role, action: str = "do this") -> None:
    """Raise :class:`AccessDeniedError` unless ``principal`` has one of ``roles``."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise AccessDeniedError(
            f"{principal.actor} may not {action}; it needs the role {allowed}"
        )


def require_crew(principal: Principal, crew: str, action: str = "see this route") -> None:
    """Let supervisors and admins through; a crew member only for their own crew."""
    if principal.role in SUPERVISING:
        return
    if principal.role is Role.CREW and principal.crew == crew:
        return
    raise AccessDeniedError(f"{principal.actor} may not {action} of crew {crew}")


class Acting(Protocol):
    """What a service receives first: a unit of work that knows who is acting."""

    @property
    def principal(self) -> Principal:
        """Return who is acting."""
        ...

    def begin_write(self) -> None:
        """Start the transaction that will write (taking the write lock up front)."""
        ...


_P = ParamSpec("_P")
_R = TypeVar("_R")
_U = TypeVar("_U", bound=Acting)

#: Attribute a guarded service carries: the roles that may call it.
ROLES_ATTR = "__curbside_roles__"
#: Attribute of a service anyone may call (signing in), with the reason.
PUBLIC_ATTR = "__curbside_public__"

#: Every role except ``anonymous``, for services any signed-in person may call.
SIGNED_IN = (Role.ADMIN, Role.SUPERVISOR, Role.MANAGER, Role.CREW)
#: Roles that work a route (supervisors act on a crew's behalf).
WORKING = (Role.ADMIN, Role.SUPERVISOR, Role.CREW)


def service(
    *roles: Role, action: str, writes: bool = False
) -> Callable[[Callable[Concatenate[_U, _P], _R]], Callable[Concatenate[_U, _P], _R]]:
    """Guard a public service function: check the caller's role before anything else.

    Parameters
    ----------
    roles
        The roles that may call it.
    action
        What the caller is doing, for the refusal (``assign plans``).
    writes
        The service writes: after the check it starts the write transaction
        (:meth:`~dispatch.store.UnitOfWork.begin_write`) before its first read.

    Examples
    --------
    >>> @service(Role.ADMIN, Role.SUPERVISOR, action="assign plans", writes=True)
    ... def assign_plan(uow, plan_id): ...  # doctest: +SKIP
    """
    allowed = frozenset(roles)
    if not allowed:
        raise ValidationError(f"service guard for {action!r} names no role")

    def decorate(fn: Callable[Concatenate[_U, _P], _R]) -> Callable[Concatenate[_U, _P], _R]:
        @functools.wraps(fn)
        def guarded(uow: _U, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            require(uow.principal, *roles, action=action)
            if writes:
                uow.begin_write()
            return fn(uow, *args, **kwargs)

        setattr(guarded, ROLES_ATTR, allowed)
        return guarded

    return decorate


def public(
    reason: str, *, writes: bool = False
) -> Callable[[Callable[Concatenate[_U, _P], _R]], Callable[Concatenate[_U, _P], _R]]:
    """Mark a service anyone may call, such as signing in; ``reason`` says why."""

    def decorate(fn: Callable[Concatenate[_U, _P], _R]) -> Callable[Concatenate[_U, _P], _R]:
        @functools.wraps(fn)
        def open_call(uow: _U, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            if writes:
                uow.begin_write()
            return fn(uow, *args, **kwargs)

        setattr(open_call, PUBLIC_ATTR, reason)
        return open_call

    return decorate


_HASHER = PasswordHasher()
#: Shortest password accepted.
MIN_PASSWORD_CHARS = 10


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password`` (refusing short ones)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError(
            f"password has {len(password)} characters; at least {MIN_PASSWORD_CHARS}"
        )
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Return whether ``password`` matches ``password_hash``."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Return whether the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(password_hash)
