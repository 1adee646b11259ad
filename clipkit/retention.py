"""Retention: keep-until dates per purpose, legal holds, purge, and the one deletion path.

A recording's ``retention_until`` is the latest date over the purposes it
serves (``home.config["retention_days"]``): every recording is kept for
``quality``; one with a clip still in use (not withdrawn) also for
``training``. The date (:func:`clipkit.library.retention_due`) is recomputed when clips are added
or removed, and
:func:`purge` recomputes every date before it deletes, so a clip withdrawn
elsewhere, or a shortened rule in ``config.json``, takes effect at the next
purge. A recording on legal hold (``hold_reason`` set) is never deleted.

:func:`delete_recordings` is the only code that deletes a recording; purge
and erasure (:mod:`clipkit.erasure`) both use it. Its order is chosen for
crash safety:

1. one transaction deletes the rows (recording, clips, tags, renderings),
   writes the log event and records every file to delete in
   ``pending_deletions``;
2. then the files are unlinked, each queue row removed after its file;
3. any later purge or erasure first finishes the queue (:func:`finish_pending`).

Rows first, files last: after a crash at any point the library is whole —
no row ever points at a file that is gone — and every orphaned file is
named in the queue, so a rerun removes it. Files first would leave rows
whose audio is missing (a "half-deleted" recording that still lists,
renders and exports until someone notices).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog, coaching, copies, library, notes, store
from .db import checkpoint_and_vacuum, now_iso, transaction
from .errors import BadInput
from .home import Home

migrations = Migrations("clipkit.retention")

#: a scratch file older than this is a leftover of a crashed process, never work in progress
STALE_SCRATCH_S = 3600
_CHUNK = 500
# withdrawal reasons that are codes, not typed text (older rows kept typed text in this column)
_CODES = ("objection_made", "consent_withdrawn", "erasure", "party_merge", "manual", "[cleared at erasure]")


@migrations()
def m001_pending_deletions(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE pending_deletions (
            path TEXT PRIMARY KEY,          -- relative to the data home
            sha256 TEXT,                    -- to find stray copies of the same bytes in tmp/
            queued_at TEXT NOT NULL
        )
        """
    )


@migrations()
def m002_scrub_pending(db: Database) -> None:
    # one row while deleted rows may still sit in free pages or the -wal file:
    # written with the deletion, removed once scrub_database succeeded, so a
    # scrub that another reader made "busy" is repeated by the next run
    db.execute("CREATE TABLE scrub_pending (id INTEGER PRIMARY KEY CHECK (id = 1), since TEXT NOT NULL)")


# ---------------------------------------------------------------- dates


def _parse_now(now: str | datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(library.parse_time(now, name="--now"))


# ---------------------------------------------------------------- holds


def _change_hold(db: Database, recording_id: int, *, hold: bool, reason: str, actor: str) -> tuple[dict, str]:
    """Set (``hold``) or release a recording's legal hold, logged; returns the recording as it was and the reason."""
    reason = library.clean_text(reason, name="--reason", limit=500, required=True,
                                hint=": say why (e.g. 'complaint 2026-114, keep until settled')")
    recording = library.get_recording(db, recording_id)
    if hold and recording["hold_reason"]:
        raise BadInput(
            f"recording {recording_id} is already on hold ({recording['hold_reason']!r}); release it first to change the reason"
        )
    if not hold and not recording["hold_reason"]:
        raise BadInput(f"recording {recording_id} is not on hold")
    with transaction(db):
        db.execute("UPDATE recordings SET hold_reason = ? WHERE id = ?", [reason if hold else None, recording_id])
        auditlog.append(db, kind="hold.set" if hold else "hold.release", actor=actor, data={"recording": recording_id})
    return recording, reason


def set_hold(db: Database, recording_id: int, *, reason: str, actor: str) -> dict:
    """Put a recording on legal hold: purge and erasure keep it until the hold is released.

    The reason is stored on the recording, not in the log (it may name a
    person); the log records who set the hold on which recording, and when.

    Raises
    ------
    NotFound
        If the recording does not exist.
    BadInput
        For an empty reason, or a recording already on hold.
    """
    _, reason = _change_hold(db, recording_id, hold=True, reason=reason, actor=actor)
    return {"recording": recording_id, "hold": True, "reason": reason}


def release_hold(db: Database, recording_id: int, *, reason: str, actor: str) -> dict:
    """Release a legal hold. An open erasure request waiting on it is named in the result.

    Raises
    ------
    NotFound
        If the recording does not exist.
    BadInput
        For an empty reason, or a recording not on hold.
    """
    recording, _ = _change_hold(db, recording_id, hold=False, reason=reason, actor=actor)
    waiting = [
        r[0] for r in db.execute(
            """SELECT id FROM requests WHERE kind = 'erasure' AND closed_at IS NULL
               AND party_ref IN (?, ?) ORDER BY id""",
            [recording["caller_ref"], recording["agent_ref"]],
        )
    ]
    return {"recording": recording_id, "hold": False, "erasure_requests_waiting": waiting}


# ---------------------------------------------------------------- deletion


def _chunks(ids: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def derived(db: Database, recording_ids: Sequence[int]) -> dict:
    """What deleting these recordings removes: clip ids, renderings (path, sha256) and files."""
    recs, clip_ids, renderings = [], [], []
    for chunk in _chunks(list(recording_ids)):
        recs += list(db.query(f"SELECT id, path, sha256 FROM recordings WHERE id IN ({_marks(len(chunk))})", chunk))
        clip_ids += [r[0] for r in db.execute(
            f"SELECT id FROM clips WHERE recording_id IN ({_marks(len(chunk))}) ORDER BY id", chunk)]
    for chunk in _chunks(clip_ids):
        renderings += list(db.query(
            f"SELECT id, clip_id, path, sha256 FROM renderings WHERE clip_id IN ({_marks(len(chunk))})", chunk))
    files = [(r["path"], r["sha256"]) for r in recs] + [(r["path"], r["sha256"]) for r in renderings]
    # a coaching review's audio of these calls (the review itself stays, as the agent's record)
    files += coaching.files_of_recordings(db, [r["id"] for r in recs])
    return {"recordings": [r["id"] for r in recs], "clips": clip_ids, "renderings": renderings, "files": files,
            "copies": copies.plan(db, recording_ids=[r["id"] for r in recs])}


def delete_recordings(
    db: Database, home: Home, recording_ids: Sequence[int], *, actor: str, kind: str, data: dict | None = None,
    with_rows: Callable[[dict], None] | None = None,
) -> dict:
    """Delete recordings and everything derived from them: clips, tags, renderings, and their files.

    The only deletion path for recordings (purge and erasure share it). Rows
    go first, with the log event ``kind`` and the file queue, in one
    transaction; then the files (see the module docstring for why).
    Recordings that no longer exist are skipped, so a rerun is harmless.

    Parameters
    ----------
    recording_ids
        Recordings to delete. The caller decides about holds.
    kind, data
        The log event written with the deletion; ``data`` must hold refs,
        ids and counts only. Ids and counts of what was deleted are added.
    with_rows
        Called with the counts inside the deleting transaction, so a caller's
        own bookkeeping commits (or not) together with the deletion.

    Returns
    -------
    dict
        ``{"recordings": [ids], "clips": n, "renderings": n, "files": n}``.
    """
    now = now_iso()
    with transaction(db):
        # inside the write lock, so nothing is added to these recordings between look and delete
        plan = derived(db, recording_ids)
        if plan["recordings"]:
            db["pending_deletions"].insert_all(
                [{"path": p, "sha256": s, "queued_at": now} for p, s in plan["files"]], ignore=True)
            for chunk in _chunks([r["id"] for r in plan["renderings"]]):
                db.execute(f"DELETE FROM renderings WHERE id IN ({_marks(len(chunk))})", chunk)
            for chunk in _chunks(plan["recordings"]):
                # clips and clip_tags go by ON DELETE CASCADE; the FTS triggers follow the clips
                db.execute(f"DELETE FROM clips WHERE recording_id IN ({_marks(len(chunk))})", chunk)
                db.execute(f"DELETE FROM recordings WHERE id IN ({_marks(len(chunk))})", chunk)
            # clipkit's own copies of these calls outside the store (export files, access bundles) go too
            n_copies = copies.queue(db, plan["copies"], now=now)
            coaching.recordings_deleted(db, plan["recordings"], now=now)
            # free text about these calls (why someone listened, why a clip was withdrawn) goes with them
            notes.scrub(db, recording_ids=plan["recordings"])
            db.execute(f"UPDATE clip_withdrawals SET reason = ? WHERE reason NOT IN ({_marks(len(_CODES))}) "
                       f"AND clip_id IN (SELECT value FROM json_each(?))",
                       [notes.CLEARED, *_CODES, json.dumps(plan["clips"])])
            mark_scrub_pending(db)
            event = dict(data or {})
            event.update(recordings=plan["recordings"], clips=len(plan["clips"]), renderings=len(plan["renderings"]),
                         copies=n_copies)
            auditlog.append(db, kind=kind, actor=actor, data=event)
            if with_rows is not None:
                with_rows(event)
    removed = finish_pending(db, home)
    return {"recordings": plan["recordings"], "clips": len(plan["clips"]),
            "renderings": len(plan["renderings"]), "files": removed, "copies": plan["copies"]}


def _unlink_file(path: Path) -> None:
    """Remove one file, or a registered copy's folder (an access bundle); a seam for tests that inject a crash."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _scratch_files(home: Home) -> list[Path]:
    """Loose files that may hold stray copies of audio: left in tmp/ or renders/ by older versions.

    Scratch folders of live processes are theirs; those of dead ones are
    removed by :func:`clipkit.store.reconcile` before this is asked.
    """
    out = [p for p in home.tmp_dir.iterdir() if p.is_file()] if home.tmp_dir.exists() else []
    renders = home.audio_dir / "renders"
    if renders.exists():
        out += [p for p in renders.glob(".*.tmp*") if p.is_file()]
    return out


def finish_pending(db: Database, home: Home) -> int:
    """Unlink every file queued for deletion; returns how many queue entries were finished.

    Idempotent: a file already gone counts as done. A queued path that a
    row refers to again (the same bytes imported anew) is dropped from the
    queue without touching the file. Scratch files with the same bytes as a
    queued file, and scratch files left behind by crashed processes, are
    removed too, so no copy survives in ``tmp/``.
    """
    store.reconcile(db, home)
    queued = list(db.query("SELECT path, sha256 FROM pending_deletions ORDER BY path"))
    if not queued:
        return 0
    shas = {q["sha256"] for q in queued if q["sha256"]}
    for q in queued:
        in_use = any(db.execute(f"SELECT 1 FROM {t} WHERE path = ?", [q["path"]]).fetchone()
                     for t in store.STORE_TABLES)
        if not in_use:
            path = home.root / q["path"]  # an absolute path (a copy outside the store) stays as it is
            _unlink_file(path)
            if path.parent.parent == home.audio_dir:
                try:
                    path.parent.rmdir()  # the empty shard folder; it names a hash prefix
                except OSError:
                    pass
    cutoff = time.time() - STALE_SCRATCH_S
    for path in _scratch_files(home):
        try:
            stale = path.stat().st_mtime < cutoff
            if stale or _sha256_file(path) in shas:
                _unlink_file(path)
        except FileNotFoundError:
            continue
    # queue rows last: a crash above leaves them, and the next run repeats the (idempotent) unlinks
    with transaction(db):
        for chunk in _chunks([q["path"] for q in queued]):
            db.execute(f"DELETE FROM pending_deletions WHERE path IN ({_marks(len(chunk))})", chunk)
    return len(queued)


def mark_scrub_pending(db: Database) -> None:
    """Note, inside a deleting transaction, that :func:`scrub_database` must run (see m002)."""
    db.execute("INSERT OR IGNORE INTO scrub_pending (id, since) VALUES (1, ?)", [now_iso()])


def scrub_pending(db: Database) -> bool:
    """Whether deleted rows may still be in the database files (an earlier scrub did not finish)."""
    return db.execute("SELECT 1 FROM scrub_pending").fetchone() is not None


def scrub_database(db: Database) -> None:
    """Keep deleted rows out of the database files: merge the full-text index, checkpoint, VACUUM.

    FTS5 keeps a deleted clip's words in old index segments until they are
    merged; ``optimize`` merges them. ``secure_delete`` zeroes freed pages;
    the checkpoint and VACUUM then clear the ``-wal`` file and free pages.
    If another reader keeps it busy, :class:`~clipkit.errors.DatabaseBusy`
    is raised and the pending mark stays: the next erasure or purge repeats it.
    """
    if db["clips_fts"].exists():
        with transaction(db):
            db.execute("INSERT INTO clips_fts(clips_fts) VALUES('optimize')")
    checkpoint_and_vacuum(db)
    with transaction(db):
        db.execute("DELETE FROM scrub_pending")


# ---------------------------------------------------------------- purge


def purge(db: Database, home: Home, *, now: str | datetime | None = None, dry_run: bool = False,
          actor: str = "cli") -> dict:
    """Delete every recording past its retention date that is not on hold, with all derived data.

    Retention dates are recomputed first (see module docstring). Idempotent:
    a second run finds nothing; a run after a crash first finishes the
    interrupted deletion.

    Parameters
    ----------
    now
        The moment to judge retention at (ISO 8601; default: now). Lets an
        officer preview a future purge with ``dry_run``.

    Returns
    -------
    dict
        ``{"now", "dry_run", "deleted": [{"id", "recorded_at", "retention_until"}],
        "kept_on_hold": [ids past retention but held], "clips", "renderings", "files"}``.
    """
    moment = _parse_now(now)
    finished = 0 if dry_run else finish_pending(db, home)
    due, held = [], []
    updates = []
    for rec in db.query("SELECT id, recorded_at, retention_until, hold_reason FROM recordings ORDER BY id"):
        until = library.retention_due(db, home, rec)
        if until != rec["retention_until"]:
            updates.append((until, rec["id"]))
        # compared as times, not text: dates carry the call's own UTC offset
        if datetime.fromisoformat(until) <= moment:
            (held if rec["hold_reason"] else due).append(
                {"id": rec["id"], "recorded_at": rec["recorded_at"], "retention_until": until})
    out = {"now": moment.isoformat(), "dry_run": dry_run, "deleted": due, "kept_on_hold": [h["id"] for h in held],
           "clips": 0, "renderings": 0, "files": 0, "unfinished_files_completed": finished}
    old_reviews = coaching.expired(db, home, now=moment.isoformat())
    out["reviews"] = len(old_reviews)
    if dry_run:
        plan = derived(db, [d["id"] for d in due])
        out.update(clips=len(plan["clips"]), renderings=len(plan["renderings"]), files=len(plan["files"]),
                   file_paths=[path for path, _ in plan["files"]], orphans=store.orphans(db, home),
                   copies=plan["copies"])
        return out
    if old_reviews:
        # coaching reviews are kept review_retention_days, whatever happens to their call
        with transaction(db):
            coaching.delete_reviews(db, old_reviews, now=now_iso())
            mark_scrub_pending(db)
            auditlog.append(db, kind="retention.reviews", actor=actor, data={"reviews": old_reviews})
        finish_pending(db, home)
    if updates:
        with transaction(db):
            db.conn.executemany("UPDATE recordings SET retention_until = ? WHERE id = ?", updates)
    ids = [d["id"] for d in due]
    if ids:
        res = delete_recordings(db, home, ids, actor=actor, kind="retention.purge",
                                data={"kept_on_hold": out["kept_on_hold"], "now": out["now"]})
        out.update(clips=res["clips"], renderings=res["renderings"], files=res["files"], copies=res["copies"])
    else:
        auditlog.append(db, kind="retention.purge", actor=actor,
                        data={"recordings": [], "clips": 0, "renderings": 0, "kept_on_hold": out["kept_on_hold"],
                              "now": out["now"]})
    out["orphans_removed"] = store.sweep(db, home)
    if ids or finished or old_reviews or out["orphans_removed"] or scrub_pending(db):
        scrub_database(db)
    return out

