"""Bulk work that outlives the browser tab: a job row, a worker thread in the server, progress in the row.

Anonymizing fifty clips takes minutes. A page that renders them inside its
own script run stops showing progress when the tab closes, and the user can
not tell what happened. Here the page :func:`submit` s a job and
:func:`start` s it on a daemon thread of the app's server process, which has
its own database connection; the thread writes its progress and, at the end,
its per-item results into the ``jobs`` row. Any page (or a new tab) reads the
row.

A job is one call of ordinary library code (the renderer), so everything it
does is logged and checked as usual; the job itself only records who asked,
what, how far it got and what came out. The work must be safe to run again:
rendering skips clips whose current rendering is up to date, so a job that
was *interrupted* (the server stopped: its heartbeat went stale, see
:func:`reconcile`) is finished by submitting the same items again.

This is not a scheduler: one thread per job, started by the person who asked
for it. Archives bigger than one machine use Dask (:mod:`clipkit.analysis`).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .db import now_iso, transaction
from .errors import ClipkitError, NotFound

migrations = Migrations("clipkit.jobs")

STATES = ("queued", "running", "done", "failed", "interrupted")
STALE_S = 60.0  # a running job whose heartbeat is older than this lost its process
_BEAT_S = 2.0


@migrations()
def m001_jobs(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,            -- render
            actor TEXT NOT NULL,
            params TEXT NOT NULL,          -- JSON: what was asked (clip ids, method); no free text
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'interrupted')),
            total INTEGER NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            results TEXT,                  -- JSON list, when done
            error TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            heartbeat REAL                 -- unix time of the worker's last sign of life
        )
        """
    )
    db.execute("CREATE INDEX jobs_actor ON jobs(actor, id)")


def submit(db: Database, *, kind: str, actor: str, params: dict, total: int) -> int:
    """Record a queued job; returns its id."""
    with transaction(db):
        return db["jobs"].insert({"kind": kind, "actor": actor, "params": json.dumps(params, sort_keys=True),
                                  "state": "queued", "total": int(total), "done": 0, "created_at": now_iso(),
                                  "heartbeat": time.time()}).last_pk


def get(db: Database, job_id: int) -> dict:
    """One job with ``params`` and ``results`` decoded; an interrupted one says so (see :func:`reconcile`)."""
    reconcile(db)
    row = db.execute("SELECT * FROM jobs WHERE id = ?", [int(job_id)]).fetchone()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return _decode(dict(zip([c[0] for c in db.execute("SELECT * FROM jobs LIMIT 0").description], row)))


def _decode(row: dict) -> dict:
    row["params"] = json.loads(row["params"])
    row["results"] = json.loads(row["results"]) if row["results"] else None
    return row


def recent(db: Database, *, actor: str, limit: int = 10) -> list[dict]:
    """The actor's newest jobs, newest first."""
    reconcile(db)
    return [_decode(r) for r in db.query("SELECT * FROM jobs WHERE actor = ? ORDER BY id DESC LIMIT ?",
                                         [actor, int(limit)])]


def reconcile(db: Database, *, now: float | None = None) -> int:
    """Mark running or queued jobs whose worker stopped beating as ``interrupted``; returns how many."""
    now = time.time() if now is None else now
    with transaction(db):
        return db.execute("UPDATE jobs SET state = 'interrupted', finished_at = ? WHERE state IN ('queued', 'running') "
                          "AND heartbeat < ?", [now_iso(), now - STALE_S]).rowcount


def _update(db: Database, job_id: int, **fields) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    with transaction(db):
        db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id])


def run(open_db: Callable[[], Database], job_id: int, work: Callable[[Database, Callable[[int, int], None]], list]) -> None:
    """Do a job in this thread: ``work(db, progress)`` returns the per-item results (JSON-able)."""
    db = open_db()
    stop = threading.Event()

    def beat() -> None:  # alive even while one long item renders
        beat_db = open_db()
        try:
            while not stop.wait(10.0):
                _update(beat_db, job_id, heartbeat=time.time())
        finally:
            beat_db.close()

    beater = threading.Thread(target=beat, name=f"clipkit-job-{job_id}-beat", daemon=True)
    try:
        _update(db, job_id, state="running", heartbeat=time.time())
        beater.start()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            t = time.time()
            if t - last[0] >= _BEAT_S or done >= total:
                last[0] = t
                _update(db, job_id, done=int(done), total=int(total), heartbeat=t)

        results = work(db, progress)
        row = db.execute("SELECT total FROM jobs WHERE id = ?", [job_id]).fetchone()
        _update(db, job_id, state="done", done=row[0] if row else len(results), results=json.dumps(results),
                finished_at=now_iso(), heartbeat=time.time())
    except ClipkitError as e:
        _update(db, job_id, state="failed", error=str(e), finished_at=now_iso(), heartbeat=time.time())
    except Exception as e:  # noqa: BLE001 - a worker thread must record why it stopped, not die silently
        traceback.print_exc()
        _update(db, job_id, state="failed", error=f"unexpected error ({type(e).__name__})", finished_at=now_iso(),
                heartbeat=time.time())
    finally:
        stop.set()
        if beater.is_alive():
            beater.join(timeout=15)
        db.close()


def start(open_db: Callable[[], Database], job_id: int, work) -> threading.Thread:
    """Run the job on a daemon thread of this process (it outlives the page that asked for it)."""
    t = threading.Thread(target=run, args=(open_db, job_id, work), name=f"clipkit-job-{job_id}", daemon=True)
    t.start()
    return t
