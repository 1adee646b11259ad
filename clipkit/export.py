"""Export approved, anonymized clips to a folder, manifest included.

One export is one folder ``DIR/<export id>/`` with the clips' anonymized audio
under opaque names and a ``manifest.json``. The steps, in this order:

1. Validate everything (clip ids exist, ``DIR`` is outside the data home).
   An unknown clip id fails here with :class:`NotFound` and is *not* logged:
   nothing was decided and nothing left.
2. In one transaction: gather each clip's facts, ask :func:`clipkit.policy.decide`,
   write the ``exports`` / ``export_items`` rows (state ``pending``) and the
   ``export.attempt`` log entry with every per-clip decision, then COMMIT.
   A refused attempt is therefore in the log before anyone is told.
3. Copy the current renderings into a hidden temp folder inside ``DIR``
   (verifying each file's sha256 while copying), write the manifest, rename
   the folder to its final name (atomic on one file system).
4. Mark the export ``complete`` and log ``export.complete``. If anything in
   step 3 fails, the temp folder is removed and ``export.failed`` is logged.
   If the database is busy at this point, the folder stays (it is final) and
   the next export settles the row (:func:`reconcile_pending`), as it does
   for a process killed between the rename and the log entry.

So after a crash there is either a complete folder or none; the log shows
``export.attempt`` and then ``export.complete`` or ``export.failed`` (a hard
kill in step 3 leaves only the attempt, the row ``pending`` and at most a
hidden ``.<id>.partial`` folder, never a visible export; an export started an
hour later settles it as failed and removes the partial folder).

Recall (:mod:`clipkit.withdrawal`): :func:`~clipkit.withdrawal.recall_party`
withdraws every clip a person is heard in, in the caller's transaction;
:func:`~clipkit.withdrawal.recalls` lists every earlier export that contained
a clip withdrawn after it was exported, so compliance can ask recipients to
delete those files. Their tables are created here, with the exports.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import struct
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import audio, auditlog, clipfacts, library, measured, notes, policy, pseudovoices, rendering
from .clipfacts import approval_blockers, clip_facts, decide  # noqa: F401  (part of this module's API)
from .db import now_iso, transaction
from .errors import BadAudio, BadInput, ClipkitError, DatabaseBusy, NotFound
from .home import Home

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "clipkit-export/1"
EXPORT_STATES = ("pending", "complete", "failed")
_CHUNK = 1 << 20

migrations = Migrations("clipkit.export")


@migrations()
def m001_exports(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE exports (
            id TEXT PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            recipient TEXT,
            folder TEXT NOT NULL,          -- absolute path of DIR/<id>
            decision TEXT NOT NULL CHECK (decision IN ('allowed', 'partial')),
            policy_version TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'complete', 'failed')),
            manifest_sha256 TEXT,
            finished_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX exports_at ON exports(at)")
    # No foreign key to clips: an export stays on record (for recalls and
    # access requests) after its clips are deleted or erased.
    db.execute(
        """
        CREATE TABLE export_items (
            export_id TEXT NOT NULL REFERENCES exports(id),
            clip_id INTEGER NOT NULL,
            file TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (export_id, clip_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX export_items_clip ON export_items(clip_id)")
    # When each clip was withdrawn and why; kept after the clip is gone, so an
    # erased person's exported clips still show up in recalls.
    db.execute(
        """
        CREATE TABLE clip_withdrawals (
            id INTEGER PRIMARY KEY,
            clip_id INTEGER NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX clip_withdrawals_clip ON clip_withdrawals(clip_id, at)")


@migrations()
def m002_withdrawal_notes(db: Database) -> None:
    # a withdrawal typed by hand keeps its words in a note (clipkit.notes), not here or in the log
    db.execute("ALTER TABLE clip_withdrawals ADD COLUMN note_id INTEGER")


@migrations()
def m003_item_recordings(db: Database) -> None:
    # which recording an exported file holds a voice of, so erasure and purge can find every copy
    # (kept after the clip is gone); erased_at: when clipkit deleted its own copy of the file
    db.execute("ALTER TABLE export_items ADD COLUMN recording_id INTEGER")
    db.execute("ALTER TABLE export_items ADD COLUMN erased_at TEXT")
    db.execute("UPDATE export_items SET recording_id = (SELECT recording_id FROM clips WHERE clips.id = clip_id)")
    db.execute("CREATE INDEX export_items_recording ON export_items(recording_id)")


@migrations()
def m004_recall_confirmations(db: Database) -> None:
    # a recipient confirmed deleting an export's recalled files: the recall leaves the list until a
    # clip of that export is withdrawn again after the confirmation
    db.execute(
        """
        CREATE TABLE recall_confirmations (
            id INTEGER PRIMARY KEY,
            export_id TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            note_id INTEGER
        )
        """
    )
    db.execute("CREATE INDEX recall_confirmations_export ON recall_confirmations(export_id, at)")


# ---------------------------------------------------------------- files


def plain_wav_info(path: Path) -> dict:
    """Check a WAV holds only ``fmt `` and ``data`` chunks of 16-bit PCM; return its format.

    Exports carry no metadata chunk (``LIST``/``INFO``, ``bext``, ``iXML``...)
    that could name a tool, a person or a time.

    Raises
    ------
    BadAudio
        If the file is not a plain 16-bit PCM WAV.
    """
    found = audio.wav_chunks(path)
    if found is None:
        raise BadAudio(f"{path.name}: not a RIFF/WAVE file")
    chunks = [cid for cid, _, _ in found]
    fmt, data_bytes = None, None
    for cid, offset, size in found:
        if cid == b"fmt ":
            with open(path, "rb") as f:
                f.seek(offset)
                fmt = f.read(size)
        elif cid == b"data":
            data_bytes = size
    if chunks != [b"fmt ", b"data"] or fmt is None or len(fmt) < 16:
        names = ", ".join(c.decode("latin-1").strip() for c in chunks)
        raise BadAudio(f"{path.name}: the WAV has chunks [{names}], expected only fmt and data")
    tag, channels, sr, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag != 1 or bits != 16:
        raise BadAudio(f"{path.name}: the WAV is not 16-bit PCM (format {tag}, {bits} bits)")
    frames = data_bytes // block_align if block_align else 0
    return {"sample_rate": sr, "channels": channels, "duration_s": round(frames / sr, 3) if sr else 0.0}


def _copy_verified(src: Path, dst: Path, expected_sha256: str) -> str:
    """Copy src to a new file dst (never overwriting), hashing on the way; fsynced.

    Raises
    ------
    ClipkitError
        If the bytes do not hash to ``expected_sha256`` (the rendering changed
        on disk since it was recorded).
    """
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    got = digest.hexdigest()
    if got != expected_sha256:
        raise ClipkitError(f"{src.name}: the rendered audio does not match its recorded checksum; render the clip again")
    return got


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_export_id() -> str:
    """A sortable, unguessable id: ``x20260512T143000Z-1a2b3c4d``."""
    return "x" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def _spans_text(n: int) -> str:
    return f"{n} span{'s' if n != 1 else ''} redacted"


# ---------------------------------------------------------------- export


def _validate_ids(clip_ids: Sequence) -> list[int]:
    if not clip_ids:
        raise BadInput("name at least one clip id to export")
    out: list[int] = []
    for cid in clip_ids:
        try:
            n = int(cid)
        except (TypeError, ValueError):
            raise BadInput(f"clip id {cid!r} is not a number") from None
        if n not in out:
            out.append(n)
    return out


def export_clips(
    db: Database,
    home: Home,
    clip_ids: Sequence[int],
    *,
    to: str | os.PathLike,
    actor: str,
    recipient: str | None = None,
    all_or_nothing: bool = False,
    allow_weak: bool = False,
) -> dict:
    """Export the clips the policy allows into ``to/<export id>/``.

    Parameters
    ----------
    clip_ids : sequence of int
        Clips to export (duplicates are ignored).
    to : path
        Folder for the export folder; created if missing; must be outside the data home.
    actor : str
        Who exports.
    recipient : str, optional
        Who receives the files (free text, recorded in the log and manifest).
    all_or_nothing : bool
        Export nothing if any clip is refused.
    allow_weak : bool
        Accept clips rendered with the weak ``pitch`` method (recorded per clip).

    Returns
    -------
    dict
        ``{"export_id", "decision", "path", "exported": [{"clip_id", "file", "sha256"}],
        "refused": [{"clip_id", "reasons": [{"code", "message"}]}], "withheld": [clip ids],
        "policy_version"}``. ``decision`` is ``allowed`` (all exported),
        ``partial`` or ``refused`` (nothing exported); ``path`` is None when
        nothing was exported.

    Raises
    ------
    BadInput
        For no clips, an empty actor, or ``to`` inside the data home (nothing logged).
    NotFound
        For an unknown clip id (nothing logged).
    ClipkitError
        If writing fails; nothing is left in ``to`` and ``export.failed`` is logged.
    """
    ids = _validate_ids(clip_ids)
    if not actor or not str(actor).strip():
        raise BadInput("--actor must name who exports")
    actor = str(actor).strip()
    recipient = " ".join(recipient.split()) if recipient else None
    if to is None or not str(to).strip():
        raise BadInput("--to must name a folder")
    dest = Path(to).expanduser()
    if home.contains(dest) and not home.outbox(dest):
        raise BadInput(f"--to {dest} is inside the data home {home.root}; exports go outside it, or into its "
                       f"{home.exports_dir.name}/ folder")
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"--to {dest} exists and is not a folder")
    for cid in ids:
        library.get_clip(db, cid)  # NotFound before anything is decided or logged
    reconcile_pending(db, actor=actor)

    export_id = new_export_id()
    final = dest.resolve() / export_id
    decisions: list[tuple[policy.Decision, policy.ClipFacts]] = []
    plan: list[dict] = []
    with transaction(db):
        # facts, decisions and the log entry share one write transaction: no
        # objection can slip in between deciding and recording the decision
        now = now_iso()
        for cid in ids:
            facts, current, clip = clipfacts.gather(db, cid, now=now)
            d = policy.decide(facts, now=now, allow_weak=allow_weak)
            decisions.append((d, facts))
            if d.allowed:
                plan.append({"clip": clip, "facts": facts, "rendering": current,
                             "file": secrets.token_hex(8) + ".wav", "sha256": current["sha256"]})
        refused = [d for d, _ in decisions if not d.allowed]
        withheld = [p["clip"]["id"] for p in plan] if (refused and all_or_nothing) else []
        writing = [] if withheld else plan
        overall = "refused" if not writing else ("partial" if refused else "allowed")
        files_by_clip = {p["clip"]["id"]: p for p in writing}
        log_decisions = []
        for d, facts in decisions:
            entry = {"clip": d.clip_id, "decision": "allowed" if d.allowed else "refused",
                     "reasons": d.codes, "parties": [p.ref for p in facts.parties]}
            if d.clip_id in withheld:
                entry["decision"] = "withheld"
                entry["reasons"] = ["all_or_nothing"]
            if d.weak_allowed:
                entry["weak_allowed"] = True
            if d.clip_id in files_by_clip:
                entry["file"] = files_by_clip[d.clip_id]["file"]
                entry["sha256"] = files_by_clip[d.clip_id]["sha256"]
            log_decisions.append(entry)
        if writing:
            db["exports"].insert({
                "id": export_id, "at": now, "actor": actor, "recipient": recipient, "folder": str(final),
                "decision": overall, "policy_version": policy.POLICY_VERSION, "state": "pending",
            })
            db["export_items"].insert_all(
                [{"export_id": export_id, "clip_id": p["clip"]["id"], "file": p["file"], "sha256": p["sha256"],
                  "recording_id": p["clip"]["recording_id"]}
                 for p in writing]
            )
        # the recipient is typed text: a note, not log text
        recipient_note = None if recipient is None else notes.add(db, kind="export.recipient", text=recipient,
                                                                  actor=actor)
        auditlog.append(db, kind="export.attempt", actor=actor, data={
            "export_id": export_id, "recipient_note": recipient_note, "clips": ids, "decision": overall,
            "decisions": log_decisions, "policy_version": policy.POLICY_VERSION,
            "all_or_nothing": bool(all_or_nothing), "allow_weak": bool(allow_weak),
        })

    result = {
        "export_id": export_id, "decision": overall, "path": None, "policy_version": policy.POLICY_VERSION,
        "exported": [],
        "refused": [{"clip_id": d.clip_id, "reasons": [r.as_dict() for r in d.reasons]} for d in refused],
        "withheld": withheld,
    }
    if not writing:
        return result

    try:
        manifest_sha = _write_folder(home, dest, final, export_id, writing, now=now, actor=actor,
                                     recipient=recipient, allow_weak=allow_weak)
    except BaseException as e:
        error = e if isinstance(e, ClipkitError) else None
        _mark_failed(db, export_id, actor=actor, error=type(e).__name__)
        if error is None and isinstance(e, Exception):
            raise ClipkitError(
                f"export {export_id} failed ({e}); nothing was exported and the log says so"
            ) from e
        raise
    try:
        _mark_complete(db, export_id, actor=actor, files=len(writing), manifest_sha=manifest_sha)
    except DatabaseBusy as e:
        # the folder is final (the rename is the commit point); only the log lags
        raise DatabaseBusy(
            f"export {export_id} was written to {final}, but {e}; the next export records it as complete"
        ) from None
    result["path"] = str(final)
    result["exported"] = [{"clip_id": p["clip"]["id"], "file": p["file"], "sha256": p["sha256"]} for p in writing]
    return result


def _mark_complete(db: Database, export_id: str, *, actor: str, files: int, manifest_sha: str,
                   reconciled: bool = False) -> bool:
    """Mark a pending export complete and log it, once (False when another run did it first)."""
    with transaction(db):
        cur = db.execute(
            "UPDATE exports SET state = 'complete', manifest_sha256 = ?, finished_at = ? WHERE id = ? AND state = 'pending'",
            [manifest_sha, now_iso(), export_id])
        if not cur.rowcount:
            return False
        data = {"export_id": export_id, "files": files, "manifest_sha256": manifest_sha}
        if reconciled:
            data["reconciled"] = True
        auditlog.append(db, kind="export.complete", actor=actor, data=data)
    return True


def _mark_failed(db: Database, export_id: str, *, actor: str, error: str) -> bool:
    """Mark a pending export failed and log ``error`` (a type name, never a message), once."""
    with transaction(db):
        cur = db.execute("UPDATE exports SET state = 'failed', finished_at = ? WHERE id = ? AND state = 'pending'",
                         [now_iso(), export_id])
        if not cur.rowcount:
            return False
        auditlog.append(db, kind="export.failed", actor=actor, data={"export_id": export_id, "error": error})
    return True


#: a pending export without its folder is taken as interrupted after this long
#: (younger ones may still be copying in another process)
STALE_PENDING_S = 3600


def reconcile_pending(db: Database, *, actor: str, now: datetime | None = None) -> list[dict]:
    """Settle exports left ``pending``: complete when their folder exists, failed when long abandoned.

    An export whose folder was renamed into place but whose completion could
    not be written (database busy, or a kill right after the rename) is
    complete: the manifest's sha256 is taken from the folder. One with no
    folder, started more than STALE_PENDING_S ago, was interrupted while
    copying: its hidden ``.<id>.partial`` folder is removed and it is logged
    as failed. Returns ``[{"export_id", "state"}]`` for what changed.
    """
    moment = now or datetime.now(timezone.utc)
    out = []
    for row in db.query("SELECT id, at, folder FROM exports WHERE state = 'pending' ORDER BY at, id"):
        folder = Path(row["folder"])
        manifest = folder / MANIFEST
        if manifest.is_file():
            sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
            files = db.execute("SELECT count(*) FROM export_items WHERE export_id = ?", [row["id"]]).fetchone()[0]
            if _mark_complete(db, row["id"], actor=actor, files=files, manifest_sha=sha, reconciled=True):
                out.append({"export_id": row["id"], "state": "complete"})
        elif (moment - datetime.fromisoformat(row["at"])).total_seconds() > STALE_PENDING_S:
            shutil.rmtree(folder.parent / f".{row['id']}.partial", ignore_errors=True)
            if _mark_failed(db, row["id"], actor=actor, error="interrupted"):
                out.append({"export_id": row["id"], "state": "failed"})
    return out


def _write_folder(home: Home, dest: Path, final: Path, export_id: str, items: list[dict], *, now: str,
                  actor: str, recipient: str | None, allow_weak: bool) -> str:
    """Write the files into a hidden temp folder next to ``final`` and rename it; returns the manifest's sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{export_id}.partial"
    tmp.mkdir()  # fails if it exists: never write into someone else's folder
    try:
        files = []
        for p in items:
            src = rendering.rendering_path(home, p["rendering"])
            info = plain_wav_info(src)
            _copy_verified(src, tmp / p["file"], p["sha256"])
            clip = p["clip"]
            entry = {
                "file": p["file"], "sha256": p["sha256"], "bytes": (tmp / p["file"]).stat().st_size,
                "duration_s": info["duration_s"], "sample_rate": info["sample_rate"], "channels": info["channels"],
                "tags": clip["tags"], "redactions": _spans_text(len(clip["redactions"])),
            }
            if p["facts"].rendering_method not in policy.STRONG_METHODS:
                entry["weak_anonymization"] = True
            entry["anonymization"] = p["rendering"]["method_version"]
            entry["caller_voice"] = p["rendering"]["caller_voice"]
            files.append(entry)
        # what is known about each anonymizer version in the package: measured figures, or "not measured"
        claims = {}
        for p in items:
            r = p["rendering"]
            if r["method_version"] not in claims:
                c = measured.claim(r["method"], r["method_version"])
                claims[r["method_version"]] = {k: c[k] for k in ("method", "version", "measured", "summary",
                                                                 "statement", "figures")}
        manifest = {
            "format": MANIFEST_FORMAT, "export_id": export_id, "created_at": now, "actor": actor,
            "recipient": recipient, "policy_version": policy.POLICY_VERSION,
            "anonymization": list(claims.values()),
            "caller_voice": {m: pseudovoices.describe(m) for m in sorted({f["caller_voice"] for f in files})},
            "note": "Anonymized voices remain pseudonymised personal data: handle them under the GDPR.",
            "files": files,
        }
        body = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        with open(tmp / MANIFEST, "xb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():
            raise ClipkitError(f"{final} already exists; an export folder is never overwritten")
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------- withdraw, recall


def get_export(db: Database, export_id: str) -> dict:
    """One export with all its files.

    Raises
    ------
    NotFound
        If there is no export with that id (a refused attempt has none: see the log).
    """
    row = db.execute("SELECT * FROM exports WHERE id = ?", [export_id]).fetchone()
    if row is None:
        raise NotFound(f"no export with id {export_id!r}")
    cols = [d[0] for d in db.execute("SELECT * FROM exports LIMIT 0").description]
    out = dict(zip(cols, row))
    out["files"] = [
        {"clip_id": c, "file": f, "sha256": s}
        for c, f, s in db.execute("SELECT clip_id, file, sha256 FROM export_items WHERE export_id = ? ORDER BY clip_id",
                                  [export_id])
    ]
    return out
