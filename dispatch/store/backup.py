"""Backup and restore of the embedded SQLite database (online, consistent copies).

PostgreSQL deployments back up with PostgreSQL's own tools (``pg_dump``); these
functions refuse other engines with a message saying so.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from dispatch.errors import ValidationError

_SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_path(engine: Engine) -> Path:
    """Return the file of a SQLite engine; refuse any other database."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        raise ValidationError(
            f"backup and restore handle the embedded SQLite database; this is "
            f"{engine.dialect.name} - use pg_dump/pg_restore for PostgreSQL"
        )
    return Path(engine.url.database)


def backup(engine: Engine, out: Path) -> int:
    """Write a consistent copy of the database to ``out`` while it is in use.

    Uses SQLite's online backup API, so writers may keep working. Returns the size
    of the copy in bytes.
    """
    src_path = sqlite_path(engine)
    if not src_path.exists():
        raise ValidationError(f"database file {src_path} does not exist")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with sqlite3.connect(src_path) as src, sqlite3.connect(tmp) as dst:
        src.backup(dst)
    tmp.replace(out)
    return out.stat().st_size


def restore(engine: Engine, backup_file: Path) -> Path:
    """Replace the database with ``backup_file``; return where the old one was kept.

    The backup is checked first (a SQLite file holding Curbside's tables and passing
    ``PRAGMA integrity_check``); the current database is kept next to it as
    ``*.before-restore``.
    """
    dst_path = sqlite_path(engine)
    if not backup_file.is_file():
        raise ValidationError(f"backup {backup_file} does not exist")
    with backup_file.open("rb") as fh:
        if fh.read(16) != _SQLITE_MAGIC:
            raise ValidationError(f"{backup_file} is not a SQLite database")
    try:
        with sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True) as check:
            tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master")}
            healthy = check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError as err:
        raise ValidationError(f"{backup_file} is not a readable SQLite database: {err}") from None
    if not {"requests", "events", "plans", "alembic_version"} <= tables:
        raise ValidationError(f"{backup_file} is not a Curbside database (tables missing)")
    if not healthy:
        raise ValidationError(f"{backup_file} fails SQLite's integrity check")
    engine.dispose()
    kept = dst_path.with_name(dst_path.name + ".before-restore")
    if dst_path.exists():
        shutil.copy2(dst_path, kept)
    with sqlite3.connect(backup_file) as src, sqlite3.connect(dst_path) as dst:
        src.backup(dst)
    return kept
