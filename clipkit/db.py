"""Open the SQLite database, apply every module's migrations, run write transactions.

Each module that owns tables declares its own ``sqlite_utils.Migrations`` set
(``migrations = Migrations("clipkit.library")``); :data:`MIGRATION_MODULES`
lists them in dependency order. Keeping a table's schema next to the code that
uses it lets a reader see both at once.
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlite_utils import Database

from .errors import BadInput, DatabaseBusy, DiskFull

if TYPE_CHECKING:
    from .home import Home

# parents before children: foreign keys point up this list
MIGRATION_MODULES = (
    "clipkit.parties",
    "clipkit.library",
    "clipkit.auditlog",
    "clipkit.consent",
    "clipkit.rendering",
    "clipkit.pseudovoices",
    "clipkit.export",
    "clipkit.users",
    "clipkit.requests",
    "clipkit.retention",
    "clipkit.notes",
    "clipkit.analysis",
    "clipkit.coaching",
    "clipkit.jobs",
    "clipkit.playlists",
)

BUSY_TIMEOUT_S = 15.0


def connect(home: "Home | None" = None, *, path: str | None = None, migrate: bool = True) -> Database:
    """Open the home's database with the pragmas clipkit relies on.

    WAL lets readers (the app) work while a writer (an import) runs;
    ``secure_delete`` overwrites freed pages so erased rows do not linger in
    the file; ``foreign_keys`` keeps clips from outliving their recording.
    ``path=":memory:"`` gives an in-memory database for tests.
    """
    target = path if path is not None else str(home.db_path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (sqlite-utils does too)
    conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    database = Database(conn)
    if home is not None:
        # the log's chain key; on the object, so every append and verify has it without a home argument
        database.log_key = home.log_key()
    try:
        if target != ":memory:":
            database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA foreign_keys=ON")
        database.execute("PRAGMA secure_delete=ON")
        database.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        if migrate:
            apply_migrations(database)
    except sqlite3.OperationalError as e:
        database.close()
        raise translate(e, target) from None
    return database


def apply_migrations(database: Database) -> None:
    for name in MIGRATION_MODULES:
        # by name, at call time: each of these modules imports this one
        migrations = importlib.import_module(name).migrations
        if migrations.pending(database):
            # under the write lock, so two processes starting at once do not
            # both create the same table; pending() is asked again inside it
            with transaction(database):
                migrations.apply(database)


def translate(error: sqlite3.OperationalError, where: str = "the database") -> Exception:
    """Turn SQLite's lock and disk-full errors into :class:`DatabaseBusy` / :class:`DiskFull`; leave others alone."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return DatabaseBusy(
            f"{where} is locked by another clipkit process; tried for {BUSY_TIMEOUT_S:.0f} s, try again later"
        )
    if "disk is full" in text or "disk i/o error" in text and "full" in text:
        return DiskFull("the disk holding the data home is full; free some space and run the command again "
                        "(the change was rolled back, nothing is lost)")
    return error


def health(path) -> str:
    """``PRAGMA quick_check`` of a database file: ``"ok"``, or what SQLite found wrong (first line)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return str(e)
    return str(row[0]) if row else "no answer"


@contextmanager
def _immediate(database: Database) -> Iterator[Database]:
    database.conn.execute("BEGIN IMMEDIATE")
    try:
        yield database
    except BaseException:
        database.rollback()
        raise
    else:
        database.conn.execute("COMMIT")


@contextmanager
def transaction(database: Database) -> Iterator[Database]:
    """One write transaction, taken with ``BEGIN IMMEDIATE``.

    Immediate, not deferred: code that reads then writes (the log's chain
    head, a status projection) must hold the write lock from the first read,
    or two processes could both extend the same head. Nested use becomes a
    savepoint inside the outer transaction.
    """
    if database.conn.in_transaction:
        with database.atomic():
            yield database
        return
    try:
        ctx = _immediate(database)
        ctx.__enter__()
    except sqlite3.OperationalError as e:
        raise translate(e) from None
    try:
        yield database
    except BaseException as e:
        ctx.__exit__(type(e), e, e.__traceback__)
        if isinstance(e, sqlite3.OperationalError):
            raise translate(e) from None
        raise
    else:
        try:
            ctx.__exit__(None, None, None)
        except sqlite3.OperationalError as e:
            raise translate(e) from None


def checkpoint_and_vacuum(database: Database, *, attempts: int = 20) -> None:
    """Push the WAL into the main file, truncate it, and rebuild the file.

    Erasure calls this so deleted rows survive neither in free pages nor in
    the ``-wal`` file. Other readers can make the checkpoint or VACUUM busy
    for a moment, so both are retried.
    """
    for step in ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
        for attempt in range(attempts):
            try:
                row = database.execute(step).fetchone()
                # wal_checkpoint returns (busy, log, checkpointed); busy=1 means readers held it
                if step.startswith("PRAGMA") and row and row[0]:
                    raise sqlite3.OperationalError("database is busy")
                break
            except sqlite3.OperationalError as e:
                if attempt == attempts - 1:
                    raise translate(e) from None
                time.sleep(0.1 * (attempt + 1))


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds and offset."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str, *, name: str) -> datetime:
    """Parse an ISO 8601 time given by a user; a naive time is taken as UTC.

    Raises
    ------
    BadInput
        Naming the option and the value.
    """
    try:
        t = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{name} {text!r} is not an ISO 8601 date/time (e.g. 2026-05-01T14:30:00+02:00)") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def utc_iso(text: str | None, *, name: str) -> str | None:
    """Parse an ISO 8601 time (naive = UTC) and return it in UTC, the form stored (see :func:`now_iso`).

    One form for every stored time makes text comparison equal time comparison.
    """
    if text is None:
        return None
    return parse_iso(text, name=name).astimezone(timezone.utc).isoformat(timespec="microseconds")
