"""Copies of a person's audio that clipkit wrote outside the store: export folders and access bundles.

An export folder holds anonymized clips (still pseudonymised personal data);
an access bundle holds the person's own raw voice and a summary naming
them. Both are written where the officer or trainer asked — the app writes
them inside the home (``exports/``, ``bundles/``), the CLI anywhere — and
both are registered (``export_items`` with the recording each file is a
voice of, ``bundles`` with the recordings it holds), so erasure and purge
delete clipkit's own copies wherever they are, through the same queue as
the store's files (:mod:`clipkit.retention`).

What leaves clipkit's reach — a zip downloaded to someone's laptop, a
folder a recipient copied — is not: those are listed for recall instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from sqlite_utils import Database


def _ids(values: Iterable[int]) -> list[int]:
    return sorted({int(v) for v in values})


def plan(db: Database, *, recording_ids: Iterable[int] = (), party_ref: str | None = None) -> dict:
    """Copies holding these recordings' audio (or, with ``party_ref``, that person's bundles) still on disk.

    Returns ``{"exports": [{"export_id", "clip_id", "path"}], "bundles": [{"id", "path"}]}``:
    only copies not deleted yet and whose files still exist.
    """
    recs = _ids(recording_ids)
    exports, bundles = [], []
    if recs:
        marks = ",".join("?" * len(recs))
        for eid, cid, folder, file in db.execute(
            f"""SELECT i.export_id, i.clip_id, e.folder, i.file FROM export_items i JOIN exports e ON e.id = i.export_id
                WHERE i.erased_at IS NULL AND i.recording_id IN ({marks}) ORDER BY i.export_id, i.clip_id""", recs,
        ):
            path = Path(folder) / file
            if path.exists():
                exports.append({"export_id": eid, "clip_id": cid, "path": str(path)})
    wanted = set(recs)
    for bid, path, holds, owner in db.execute(
        "SELECT id, path, recordings, party_ref FROM bundles WHERE erased_at IS NULL ORDER BY id"
    ):
        if (party_ref is not None and owner == party_ref) or wanted & set(json.loads(holds)):
            if Path(path).exists():
                bundles.append({"id": bid, "path": path})
    return {"exports": exports, "bundles": bundles}


def queue(db: Database, found: dict, *, now: str) -> int:
    """Queue every copy in ``found`` (from :func:`plan`) for deletion and mark it erased; returns how many.

    Call inside the deleting transaction: the queue (``pending_deletions``)
    is worked off by :func:`clipkit.retention.finish_pending`, so a crash
    between rows and files leaves nothing a rerun does not finish.
    """
    n = 0
    for item in found["exports"]:
        db.execute("INSERT OR IGNORE INTO pending_deletions (path, sha256, queued_at) VALUES (?, NULL, ?)",
                   [item["path"], now])
        db.execute("UPDATE export_items SET erased_at = ? WHERE export_id = ? AND clip_id = ?",
                   [now, item["export_id"], item["clip_id"]])
        n += 1
    for item in found["bundles"]:
        db.execute("INSERT OR IGNORE INTO pending_deletions (path, sha256, queued_at) VALUES (?, NULL, ?)",
                   [item["path"], now])
        db.execute("UPDATE bundles SET erased_at = ? WHERE id = ?", [now, item["id"]])
        n += 1
    return n
