"""Persistence of Curbside: SQLAlchemy models, migrations and the unit of work.

This is the only package that imports sqlalchemy.
"""

from sqlalchemy import Engine

from dispatch.store.db import default_url, is_initialised, make_engine, migrate
from dispatch.store.uow import PlanVersions, RequestFilter, UnitOfWork, utcnow

__all__ = [
    "Engine",
    "PlanVersions",
    "RequestFilter",
    "UnitOfWork",
    "default_url",
    "is_initialised",
    "make_engine",
    "migrate",
    "utcnow",
]
