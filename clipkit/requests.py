"""Data-subject requests: the register (access, erasure, objection), deadlines, and the access bundle.

Every request gets a due date one month after receipt (GDPR Art. 12(3)):
the same day next month, or that month's last day when it has no such day
(31 January → 28/29 February). It may be extended once by two further
months. Each step — open, extend, close, a bundle written — is a log event
that names the request id and the party's opaque ref, never the person.

A request for someone clipkit has never heard of is allowed: the answer
is then "we hold no data about you". Opening it creates a ``parties`` row
(via :func:`clipkit.parties.ensure`) so the request, and any calls imported
later, tie to the same person. That row holds only a keyed pseudonym and a
two-character label; erasing the person removes it like any other.

Requests have no foreign key to ``parties``: the register entry outlives an
erased person's row (it is the proof the request was answered), keeping
only its kind, dates, status and the now-unresolvable ref; the free-text
fields are cleared by :mod:`clipkit.erasure`.
"""

from __future__ import annotations

import calendar
import html
import json
import os
import secrets
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog, coaching, consent, library, parties, withdrawal
from .audio import ChannelMap
from .db import now_iso, transaction
from .errors import BadInput, NotFound, PolicyRefusal
from .home import Home

KINDS = ("access", "erasure", "objection")
ROLES = parties.ROLES
#: a request is "due-soon" when this many days or fewer are left
DUE_SOON_DAYS = 7
STATUSES = ("open", "due-soon", "overdue", "closed")
BUNDLE_FORMAT = "clipkit-access-bundle/1"

migrations = Migrations("clipkit.requests")


@migrations()
def m001_requests(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('access', 'erasure', 'objection')),
            party_ref TEXT NOT NULL,        -- opaque; no foreign key, see module docstring
            role TEXT NOT NULL CHECK (role IN ('caller', 'agent')),
            received_at TEXT NOT NULL,
            original_due TEXT NOT NULL,     -- YYYY-MM-DD, last day to answer
            due TEXT NOT NULL,              -- original_due, or the extended date
            extended_at TEXT,
            extended_by TEXT,
            extension_reason TEXT,
            channel TEXT,
            note TEXT,
            opened_by TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            outcome TEXT
        )
        """
    )
    db.execute("CREATE INDEX requests_party ON requests(party_ref, kind)")
    db.execute("CREATE INDEX requests_due ON requests(closed_at, due)")


@migrations()
def m002_erasure_jobs(db: Database) -> None:
    # an erasure in progress: written before anything is deleted, removed with the party row,
    # so a rerun after a crash still knows which exports to recall
    db.execute(
        """
        CREATE TABLE erasure_jobs (
            party_ref TEXT PRIMARY KEY,
            request_id INTEGER,
            started_at TEXT NOT NULL,
            started_by TEXT NOT NULL,
            exports TEXT NOT NULL DEFAULT '[]',  -- JSON: earlier exports to recall
            recordings INTEGER NOT NULL DEFAULT 0,  -- deleted so far, over every run
            clips INTEGER NOT NULL DEFAULT 0,
            renderings INTEGER NOT NULL DEFAULT 0
        )
        """
    )


@migrations()
def m003_bundles(db: Database) -> None:
    # every access bundle written, so erasure and purge can find and delete
    # the copies of audio and identifiers it holds, wherever it was written
    db.execute(
        """
        CREATE TABLE bundles (
            id INTEGER PRIMARY KEY,
            party_ref TEXT NOT NULL,        -- whose bundle it is
            request_id INTEGER,
            path TEXT NOT NULL UNIQUE,      -- absolute path of the bundle folder
            recordings TEXT NOT NULL,       -- JSON list of recording ids whose audio it holds
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX bundles_party ON bundles(party_ref)")


@migrations()
def m004_bundle_erased(db: Database) -> None:
    db.execute("ALTER TABLE bundles ADD COLUMN erased_at TEXT")  # when clipkit deleted its copy


# ---------------------------------------------------------------- dates


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day if it has no such day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(received: date) -> date:
    """Art. 12(3): one month after receipt (31 Jan → 28/29 Feb)."""
    return add_months(received, 1)


def extended_due_date(original_due: date) -> date:
    """Two further months, counted from the original due date.

    Never later than three months from receipt (31 Jan: 28 Apr, not 30 Apr),
    so the register errs on the early side.
    """
    return add_months(original_due, 2)


def _today(now: str | datetime | None) -> date:
    if now is None:
        return datetime.now(timezone.utc).date()
    if isinstance(now, datetime):
        return now.date()
    return datetime.fromisoformat(library.parse_time(now, name="--now")).date()


def status_of(row: dict, *, today: date) -> str:
    """``closed``, ``overdue`` (past the due day), ``due-soon`` (≤ 7 days left) or ``open``."""
    if row["closed_at"]:
        return "closed"
    left = (date.fromisoformat(row["due"]) - today).days
    if left < 0:
        return "overdue"
    if left <= DUE_SOON_DAYS:
        return "due-soon"
    return "open"


# ---------------------------------------------------------------- validation


def party_argument(*, caller: str | None, agent: str | None, required: bool = True) -> tuple[str | None, str | None]:
    """``(identifier, role)`` from ``--caller``/``--agent``; exactly one may be given.

    Raises
    ------
    BadInput
        If both are given, or neither while ``required``.
    """
    given = [(v, r) for v, r in ((caller, "caller"), (agent, "agent")) if v is not None]
    if len(given) > 1:
        raise BadInput("give either --caller or --agent, not both: a request is made by one person")
    if not given:
        if required:
            raise BadInput("say whose request it is with --caller ID or --agent ID")
        return None, None
    ident, role = given[0]
    if not str(ident).strip():
        raise BadInput(f"--{role} must not be empty")
    return ident, role


def _text(value: str | None, *, name: str, required: bool = False, limit: int = 2000) -> str | None:
    return library.clean_text(value, name=name, limit=limit, required=required)


# ---------------------------------------------------------------- register


def get(db: Database, request_id: int) -> dict:
    """One request row plus its derived ``status``.

    Raises
    ------
    NotFound
        If there is no such request.
    """
    rows = list(db.query("SELECT * FROM requests WHERE id = ?", [request_id]))
    if not rows:
        raise NotFound(f"no request with id {request_id}")
    row = rows[0]
    row["status"] = status_of(row, today=_today(None))
    return row


def open_request(
    db: Database,
    home: Home,
    *,
    kind: str,
    identifier: str,
    role: str,
    received: str | None = None,
    channel: str | None = None,
    note: str | None = None,
    actor: str,
) -> dict:
    """Register a request; its due date is one month after ``received`` (default: now).

    Parameters
    ----------
    kind
        ``access``, ``erasure`` or ``objection``.
    identifier, role
        The person's phone or customer number and whether they are a caller or an agent.
    received
        ISO 8601 date or time the request arrived; a date-only value means that day.

    Returns
    -------
    dict
        The row as :func:`listing` shows it, plus ``label``.

    Raises
    ------
    BadInput
        For an unknown kind or role, an empty identifier, a bad or future date,
        or a request of the same kind already open for this person (a second
        letter about the same request is answered by the open one).
    """
    if kind not in KINDS:
        raise BadInput(f"request kind {kind!r} is not one of {', '.join(KINDS)}")
    if role not in ROLES:
        raise BadInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    received_iso = library.parse_time(received, name="--received") or now_iso()
    received_at = datetime.fromisoformat(received_iso)
    if received_at > datetime.now(timezone.utc) + timedelta(minutes=5):
        raise BadInput(f"--received {received} is in the future")
    channel = _text(channel, name="--channel", limit=100)
    note = _text(note, name="--note")
    secret = home.secret()
    region = home.config["phone_region"]
    parties.canonical_identifier(identifier, region=region)  # BadInput for an empty id, before writing
    due = due_date(received_at.date()).isoformat()
    now = now_iso()
    with transaction(db):
        party = parties.ensure(db, secret, identifier, region=region, now=now)
        same = find_open(db, party["ref"], kind)
        if same:
            raise BadInput(f"this person already has an open {kind} request (request {same['id']}, due {same['due']}); "
                           "answer, extend or close that one instead of registering it twice")
        request_id = db["requests"].insert({
            "kind": kind, "party_ref": party["ref"], "role": role, "received_at": received_at.isoformat(),
            "original_due": due, "due": due, "channel": channel, "note": note,
            "opened_by": actor, "opened_at": now,
        }).last_pk
        auditlog.append(db, kind="request.open", actor=actor,
                        data={"request": request_id, "kind": kind, "party": party["ref"], "due": due})
    return _public(get(db, request_id), label=party["label"])


def extend(db: Database, request_id: int, *, reason: str, actor: str, now: str | None = None) -> dict:
    """Extend a request's deadline once by two months (Art. 12(3)); the reason is stored, not logged.

    Raises
    ------
    NotFound
        If there is no such request.
    BadInput
        For an empty reason or a closed request.
    PolicyRefusal
        For a second extension, or once the first month has passed (the
        person must be told of an extension within it). Logged.
    """
    reason = _text(reason, name="--reason", required=True)
    row = get(db, request_id)
    if row["closed_at"]:
        raise BadInput(f"request {request_id} was closed on {row['closed_at'][:10]}; a closed request cannot be extended")
    today = _today(now)
    refusal = None
    if row["extended_at"]:
        refusal = ("already_extended",
                   f"request {request_id} was already extended on {row['extended_at'][:10]} (due {row['due']}); "
                   "Art. 12(3) allows one extension of two months")
    elif today > date.fromisoformat(row["original_due"]):
        refusal = ("too_late",
                   f"request {request_id} was due on {row['original_due']}; an extension must be announced to the "
                   "person within the first month, so it can no longer be extended")
    if refusal:
        auditlog.append(db, kind="request.extend", actor=actor,
                        data={"request": request_id, "decision": "refused", "reason": refusal[0]})
        raise PolicyRefusal(refusal[1], reasons=[refusal[0]])
    new_due = extended_due_date(date.fromisoformat(row["original_due"])).isoformat()
    with transaction(db):
        db["requests"].update(request_id, {"due": new_due, "extended_at": now_iso(), "extended_by": actor,
                                           "extension_reason": reason})
        auditlog.append(db, kind="request.extend", actor=actor, data={"request": request_id, "due": new_due})
    return _public(get(db, request_id))


def close(db: Database, request_id: int, *, outcome: str, actor: str) -> dict:
    """Record what was done for a request and when, and close it.

    Raises
    ------
    NotFound
        If there is no such request.
    BadInput
        For an empty outcome, or a request already closed.
    """
    outcome = _text(outcome, name="--outcome", required=True)
    row = get(db, request_id)
    if row["closed_at"]:
        raise BadInput(f"request {request_id} is already closed (on {row['closed_at'][:10]}: {row['outcome']})")
    with transaction(db):
        _close(db, request_id, outcome=outcome, actor=actor)
    return _public(get(db, request_id))


def _close(db: Database, request_id: int, *, outcome: str, actor: str) -> None:
    """Close inside the caller's transaction (access and erasure close their request with their work)."""
    db["requests"].update(request_id, {"closed_at": now_iso(), "closed_by": actor, "outcome": outcome})
    kind = db.execute("SELECT kind FROM requests WHERE id = ?", [request_id]).fetchone()[0]
    auditlog.append(db, kind="request.close", actor=actor, data={"request": request_id, "kind": kind})


def _public(row: dict, *, label: str | None = None) -> dict:
    out = {"id": row["id"], "kind": row["kind"], "party": row["party_ref"], "received": row["received_at"],
           "due": row["due"], "status": row["status"], "extended": bool(row["extended_at"]),
           "closed_at": row["closed_at"], "outcome": row["outcome"]}
    if label is not None:
        out["label"] = label
    return out


def listing(db: Database, *, overdue: bool = False, party_ref: str | None = None,
            now: str | datetime | None = None) -> list[dict]:
    """Requests, open ones first by due date, then closed ones newest first.

    ``party`` is the opaque ref and ``label`` the short display label (None
    once the person was erased); the identifier is never shown.
    """
    today = _today(now)
    where, params = [], []
    if party_ref is not None:
        where.append("r.party_ref = ?")
        params.append(party_ref)
    sql = ("SELECT r.*, p.label AS label FROM requests r LEFT JOIN parties p ON p.ref = r.party_ref"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY r.closed_at IS NOT NULL, CASE WHEN r.closed_at IS NULL THEN r.due END, r.closed_at DESC, r.id")
    out = []
    for row in db.query(sql, params):
        row["status"] = status_of(row, today=today)
        if overdue and row["status"] != "overdue":
            continue
        out.append(_public(row) | {"label": row["label"]})
    return out


def find_open(db: Database, party_ref: str, kind: str) -> dict | None:
    """The oldest open request of ``kind`` for a party, or None."""
    rows = list(db.query(
        "SELECT id FROM requests WHERE party_ref = ? AND kind = ? AND closed_at IS NULL ORDER BY received_at, id LIMIT 1",
        [party_ref, kind]))
    return get(db, rows[0]["id"]) if rows else None


def matching_request(db: Database, party_ref: str, kind: str, request_id: int | None) -> dict | None:
    """The request a piece of work answers: the one named, else the party's oldest open one of that kind.

    Raises
    ------
    NotFound
        If ``request_id`` does not exist.
    BadInput
        If the named request is of another kind or another person.
    """
    if request_id is None:
        return find_open(db, party_ref, kind)
    row = get(db, request_id)
    if row["kind"] != kind:
        raise BadInput(f"request {request_id} is an {row['kind']} request, not an {kind} request")
    if row["party_ref"] != party_ref:
        raise BadInput(f"request {request_id} was made by another person than the one given")
    return row


def resolve_party(db: Database, home: Home, identifier: str) -> dict:
    """The party row for an identifier, with a message that helps the officer when there is none.

    Raises
    ------
    NotFound
        If no party has that identifier (saying so when they were erased earlier).
    """
    secret, region = home.secret(), home.config["phone_region"]
    try:
        return parties.lookup(db, secret, identifier, region=region)
    except NotFound:
        if parties.is_suppressed(db, secret, identifier, region=region):
            raise NotFound("no data is stored about this person: they were erased earlier at their request "
                           "(nothing left)") from None
        raise NotFound("no data is stored about this person (no calls, no requests); register the request with "
                       "'clipkit request open' to record the answer 'no data'") from None


# ---------------------------------------------------------------- access bundle


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def exports_by_clip(db: Database, clip_ids: list[int]) -> tuple[dict[int, list[dict]], list[dict]]:
    """For each clip, the exports it went out in (time, recipient); and all those exports."""
    if not clip_ids:
        return {}, []
    found = _jsonable(withdrawal.exports_containing(db, clip_ids))
    per_clip: dict[int, list[dict]] = {}
    for e in found:
        for cid in e["clip_ids"]:
            per_clip.setdefault(int(cid), []).append(
                {"export": e["export_id"], "at": e["at"], "recipient": e["recipient"]})
    return per_clip, found


def _consent_record(db: Database, party_ref: str) -> dict:
    return {"history": _jsonable(consent.history(db, party_ref)), "current": _jsonable(consent.current(db, party_ref))}


def _party_recordings(db: Database, party_ref: str) -> list[dict]:
    return list(db.query(
        "SELECT * FROM recordings WHERE caller_ref = ? OR agent_ref = ? ORDER BY recorded_at, id", [party_ref, party_ref]))


def _write_own_channel(src: Path, dst: Path, channel: int) -> None:
    """Write one channel of ``src`` to ``dst`` as FLAC, block by block (a 4-hour call stays small in memory)."""
    info = sf.info(str(src))
    subtype = "PCM_24" if info.subtype in ("PCM_24", "PCM_32", "FLOAT", "DOUBLE") else "PCM_16"
    with sf.SoundFile(str(src)) as fin, sf.SoundFile(str(dst), "w", samplerate=fin.samplerate, channels=1,
                                                      format="FLAC", subtype=subtype) as fout:
        for block in fin.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
            fout.write(np.clip(block[:, channel], -1.0, 1.0))


def gather(db: Database, home: Home, party: dict) -> dict:
    """Everything clipkit holds about one party, as the access bundle reports it (no audio)."""
    ref = party["ref"]
    recordings, clips = [], []
    for rec in _party_recordings(db, ref):
        role = "caller" if rec["caller_ref"] == ref else "agent"
        rec_clips = library.list_clips(db, recording_id=rec["id"], limit=1_000_000)[0]
        recordings.append({
            "id": rec["id"], "recorded_at": rec["recorded_at"], "duration_s": round(rec["duration_s"], 3),
            "your_role": role, "channels": rec["channels"], "channel_map": rec["channel_map"],
            "legal_basis": rec["basis"], "notice_heard": rec["notice"],
            # computed now, like the purposes: a clip withdrawn since the stored date was set
            # shortens it (purge stores it), and the person must see one consistent answer
            "purposes": library.retention_purposes(db, rec),
            "retention_until": library.retention_due(db, home, rec),
            "legal_hold": bool(rec["hold_reason"]), "hold_reason": rec["hold_reason"],
            "clips": len(rec_clips),
        })
        for c in sorted(rec_clips, key=lambda c: c["id"]):
            clips.append({"id": c["id"], "recording_id": rec["id"], "title": c["title"], "tags": c["tags"],
                          "note": c["note"], "start_s": c["start_s"], "end_s": c["end_s"], "status": c["status"],
                          "created_at": c["created_at"]})
    per_clip, _ = exports_by_clip(db, [c["id"] for c in clips])
    for c in clips:
        c["exported"] = per_clip.get(c["id"], [])
    own_requests = [
        {"id": r["id"], "kind": r["kind"], "received": r["received_at"], "due": r["due"],
         "status": status_of(r, today=_today(None)), "closed_at": r["closed_at"], "outcome": r["outcome"],
         "channel": r["channel"], "note": r["note"]}
        for r in db.query("SELECT * FROM requests WHERE party_ref = ? ORDER BY received_at, id", [ref])
    ]
    # exports_checked: always true; kept so summary.json has the fields earlier bundles had
    return {"recordings": recordings, "clips": clips, "consent": _consent_record(db, ref),
            "exports_checked": True, "requests": own_requests,
            # an agent's coaching reviews (scores, comments, their replies) are data about them too
            "reviews": _jsonable(coaching.for_access_bundle(db, ref))}


def access_bundle(
    db: Database,
    home: Home,
    *,
    identifier: str,
    role: str,
    to: str | os.PathLike,
    request_id: int | None = None,
    include_other_party: bool = False,
    actor: str,
) -> dict:
    """Write an Art. 15 access bundle for one person into a new subfolder of ``to``.

    The folder holds, per recording they are a party to, their own channel
    as FLAC (the other voice is someone else's data, Art. 15(4)) — or the
    stored file when the recording is mixed or ``include_other_party`` —
    plus ``summary.json`` and ``index.html`` (Dutch and English). It is
    written in a temp folder beside it and renamed into place, so a reader
    never sees half a bundle. The matching open access request is closed.

    Returns
    -------
    dict
        ``{"path", "request", "recordings", "clips", "exports", "closed_request"}``.

    Raises
    ------
    BadInput
        For ``to`` inside the data home or not a folder, a bundle folder that
        already exists (never overwritten), a request of another kind/person.
    NotFound
        If nothing at all is stored about the person.
    """
    if role not in ROLES:
        raise BadInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    if to is None or not str(to).strip():
        raise BadInput("--to must name a folder (outside the data home) to write the bundle into")
    dest = Path(to).expanduser().resolve()
    if home.contains(dest) and not home.outbox(dest):
        raise BadInput(f"--to {dest} is inside the data home; write the bundle somewhere you will hand over from "
                       f"(or into its {home.bundles_dir.name}/ folder)")
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"--to {dest} exists and is not a folder")
    party = resolve_party(db, home, identifier)
    request = matching_request(db, party["ref"], "access", request_id)
    stamp = datetime.now(timezone.utc)
    name = f"access-request-{request['id']}" if request else f"access-{party['ref'][:8]}-{stamp:%Y%m%d}"
    final = dest / name
    if final.exists():
        raise BadInput(f"{final} already exists; clipkit never overwrites a bundle — move it away or pick another folder")

    facts = gather(db, home, party)
    outcome = (f"access bundle handed over: {len(facts['recordings'])} recording(s), "
               f"{len(facts['clips'])} clip(s)")
    if request and not request["closed_at"]:
        # this bundle is the answer: the person reads "answered", not "overdue"
        for q in facts["requests"]:
            if q["id"] == request["id"]:
                q.update(status="closed", closed_at=stamp.isoformat(), outcome=outcome)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{name}.{secrets.token_hex(4)}.partial"
    tmp.mkdir()
    try:
        audio_dir = tmp / "recordings"
        audio_dir.mkdir()
        for rec in facts["recordings"]:
            stored = library.get_recording(db, rec["id"])
            src = library.recording_path(home, stored)
            cmap = ChannelMap.from_text(stored["channel_map"])
            base = f"{rec['recorded_at'][:10]}_recording-{rec['id']}"
            if cmap.mixed or include_other_party:
                out = audio_dir / f"{base}_whole{src.suffix}"
                shutil.copyfile(src, out)
                rec["file_contains"] = "mixed" if cmap.mixed else "both_parties"
            else:
                out = audio_dir / f"{base}_own-voice.flac"
                _write_own_channel(src, out, cmap.caller if rec["your_role"] == "caller" else cmap.agent)
                rec["file_contains"] = "own_channel"
            rec["file"] = f"recordings/{out.name}"
        summary = {
            "format": BUNDLE_FORMAT, "created_at": stamp.isoformat(),
            "request": None if request is None else {
                "id": request["id"], "received": request["received_at"], "due": request["due"]},
            "person": {"reference": party["ref"], "label": party["label"]},
            **facts,
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        (tmp / "index.html").write_text(render_html(summary))
        if final.exists():  # someone else wrote it meanwhile; still never overwrite
            raise BadInput(f"{final} already exists; clipkit never overwrites a bundle")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts = {"recordings": len(facts["recordings"]), "clips": len(facts["clips"]),
              "exports": sum(len(c["exported"]) for c in facts["clips"])}
    closed = False
    try:
        with transaction(db):
            bundle_id = db["bundles"].insert({
                "party_ref": party["ref"], "request_id": request["id"] if request else None, "path": str(final),
                "recordings": json.dumps([r["id"] for r in facts["recordings"]]), "created_at": now_iso(),
                "created_by": actor}).last_pk
            auditlog.append(db, kind="request.access", actor=actor,
                            data={"request": request["id"] if request else None, "party": party["ref"],
                                  "bundle": bundle_id, **counts})
            if request and not request["closed_at"]:
                _close(db, request["id"], actor=actor, outcome=outcome)
                closed = True
    except BaseException:
        # a bundle must never exist without its log entry
        shutil.rmtree(final, ignore_errors=True)
        raise
    return {"path": str(final), "bundle_id": bundle_id, "request": request["id"] if request else None,
            "closed_request": closed, **counts}


def bundle_files(db: Database, bundle_id: int) -> tuple[Path, list[Path]]:
    """A bundle's folder and every file in it (for a download).

    Raises
    ------
    NotFound
        For an unknown bundle or one deleted since (by erasure or purge).
    """
    row = db.execute("SELECT path FROM bundles WHERE id = ?", [bundle_id]).fetchone()
    if row is None or not Path(row[0]).is_dir():
        raise NotFound(f"no access bundle {bundle_id} (it was never written, or deleted since)")
    folder = Path(row[0])
    return folder, sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------- index.html


_CONTAINS = {
    "own_channel": ("Alleen uw eigen stem (uw kanaal van het gesprek).",
                    "Only your own voice (your channel of the call)."),
    "mixed": ("Het hele gesprek: beide stemmen staan op één spoor en zijn niet te scheiden.",
              "The whole call: both voices share one track and cannot be separated."),
    "both_parties": ("Het hele gesprek zoals opgeslagen, met beide stemmen.",
                     "The whole call as stored, with both voices."),
}
_PURPOSE = {"quality": ("kwaliteitscontrole", "quality control"),
            "training": ("training van medewerkers", "staff training"),
            "dispute": ("afhandeling van geschillen", "handling disputes")}
_EVENT = {"consent_given": ("u gaf toestemming", "you gave consent"),
          "consent_withdrawn": ("u trok uw toestemming in", "you withdrew your consent"),
          "objection_made": ("u maakte bezwaar", "you objected"),
          "objection_withdrawn": ("u trok uw bezwaar in", "you withdrew your objection")}
_CHANNEL = {"in_call": ("tijdens het gesprek", "during the call"), "phone": ("telefonisch", "by phone"),
            "email": ("per e-mail", "by email"), "letter": ("per brief", "by letter"),
            "web": ("via de website", "through the website")}
_CONSENT_NOW = {"given": ("toestemming gegeven", "consent given"),
                "withdrawn": ("toestemming ingetrokken", "consent withdrawn")}
_OBJECTION_NOW = {"active": ("bezwaar van kracht", "objection in force"),
                  "withdrawn": ("bezwaar ingetrokken", "objection withdrawn")}
_KIND = {"access": ("inzage", "access"), "erasure": ("wissen", "erasure"), "objection": ("bezwaar", "objection")}
_STATUS = {"draft": ("concept", "draft"), "anonymized": ("geanonimiseerd", "anonymized"),
           "approved": ("goedgekeurd", "approved"), "withdrawn": ("ingetrokken", "withdrawn")}


def _fmt_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def render_html(summary: dict) -> str:
    """A plain-language page, Dutch first then English, of what ``summary.json`` holds."""
    e = html.escape
    recs, clips, requests_ = summary["recordings"], summary["clips"], summary["requests"]

    def section(lang: int) -> str:
        nl = lang == 0
        t = (lambda a, b: a if nl else b)
        parts = [f"<h2>{t('Nederlands', 'English')}</h2>"]
        parts.append("<p>" + t(
            "Dit is een overzicht van alle gegevens die wij over u bewaren in ons systeem voor opgenomen "
            "klantgesprekken (clipkit), zoals u heeft gevraagd (artikel 15 AVG).",
            "This is an overview of all the data we keep about you in our system for recorded support calls "
            "(clipkit), as you asked (Article 15 GDPR).") + "</p>")
        if not recs and not clips:
            parts.append("<p><strong>" + t("Wij bewaren geen opnames of fragmenten van u.",
                                           "We keep no recordings or clips of you.") + "</strong></p>")
        if recs:
            parts.append(f"<h3>{t('Opnames', 'Recordings')} ({len(recs)})</h3><ul>")
            for r in recs:
                purposes = ", ".join(_PURPOSE.get(p, (p, p))[lang] for p in r["purposes"])
                hold = (t(" Deze opname wordt langer bewaard vanwege een juridische procedure",
                          " This recording is kept longer because of a legal matter")
                        + (f" ({e(r['hold_reason'])})" if r["hold_reason"] else "") + ".") if r["legal_hold"] else ""
                parts.append(
                    f"<li><strong>{e(r['recorded_at'][:10])}</strong>, {t('duur', 'length')} {_fmt_duration(r['duration_s'])}"
                    f" — {t('u was de', 'you were the')} {t('beller', 'caller') if r['your_role'] == 'caller' else t('medewerker', 'agent')}."
                    f" {t('Bewaard voor', 'Kept for')}: {e(purposes)}; {t('tot', 'until')} {e(r['retention_until'][:10])}"
                    + (t(" (deze termijn is voorbij: de opname wordt binnenkort verwijderd)",
                         " (this period is over: the recording will be deleted shortly)")
                       if r["retention_until"][:10] < summary["created_at"][:10] and not r["legal_hold"] else "")
                    + f".{hold}"
                    f" {e(_CONTAINS[r['file_contains']][lang])}"
                    f' <a href="{e(r["file"])}">{e(r["file"])}</a></li>')
            parts.append("</ul>")
        if clips:
            parts.append(f"<h3>{t('Fragmenten uit deze opnames', 'Clips cut from these recordings')} ({len(clips)})</h3><ul>")
            for c in clips:
                tags = ", ".join(c["tags"])
                exported = "; ".join(f"{e(str(x['at'] or '')[:10])} → {e(str(x['recipient'] or '?'))}" for x in c["exported"])
                parts.append(
                    f"<li>“{e(c['title'])}” — {t('opname', 'recording')} {c['recording_id']}, "
                    f"{c['start_s']:.1f}–{c['end_s']:.1f} s, {t('status', 'status')}: {e(_STATUS.get(c['status'], (c['status'],) * 2)[lang])}"
                    + (f", {t('labels', 'tags')}: {e(tags)}" if tags else "")
                    + (f". {t('Gedeeld met', 'Shared with')}: {exported}" if exported else f". {t('Niet gedeeld', 'Not shared')}")
                    + ".</li>")
            parts.append("</ul>")
        consent_rec = summary["consent"]
        parts.append(f"<h3>{t('Toestemming en bezwaar', 'Consent and objection')}</h3>")
        if not consent_rec["history"]:
            parts.append("<p>" + t("Er is niets vastgelegd.", "Nothing is recorded.") + "</p>")
        else:
            now_lines = []
            for purpose, st in (consent_rec.get("current") or {}).items():
                states = [x[lang] for x in (_CONSENT_NOW.get(st.get("consent")), _OBJECTION_NOW.get(st.get("objection")))
                          if x]
                if states:
                    now_lines.append(f"<li>{e(_PURPOSE.get(purpose, (purpose, purpose))[lang])}: {e(', '.join(states))}</li>")
            if now_lines:
                parts.append(f"<p>{t('Zo staat het nu:', 'Where things stand now:')}</p><ul>" + "".join(now_lines) + "</ul>")
            parts.append(f"<p>{t('Wat u ons liet weten:', 'What you told us:')}</p><ul>")
            for h in consent_rec["history"]:
                what = _EVENT.get(h["event"], (h["event"], h["event"]))[lang]
                purpose = _PURPOSE.get(h["purpose"], (h["purpose"], h["purpose"]))[lang]
                objection = h["event"].startswith("objection")
                line = (f"{e(str(h['effective_at'])[:10])}: {e(what)} "
                        f"{t('tegen gebruik voor', 'to use for') if objection else t('voor', 'for')} {e(purpose)}")
                if h.get("channel"):
                    line += f" ({e(_CHANNEL.get(h['channel'], (h['channel'], h['channel']))[lang])})"
                ev = h.get("evidence")
                if ev:
                    line += (f"; {t('vastgelegd in opname', 'recorded in recording')} {e(str(ev['recording_id']))} "
                             f"{t('op', 'at')} {_fmt_duration(float(ev['seconds']))}")
                if h.get("note"):
                    line += f". {t('Notitie', 'Note')}: {e(str(h['note']))}"
                parts.append(f"<li>{line}.</li>")
            parts.append("</ul>")
        reviews = summary.get("reviews") or []
        if reviews:
            parts.append(f"<h3>{t('Coachingsgesprekken over uw gesprekken', 'Coaching reviews of your calls')} "
                         f"({len(reviews)})</h3><ul>")
            for rv in reviews:
                scores = ", ".join(f"{e(k)} {v}" for k, v in sorted(rv["scores"].items()))
                parts.append(
                    f"<li>{t('gesprek', 'call')} {rv['recording_id']} ({e(rv['month'])}), {t('status', 'status')}: "
                    f"{e(rv['status'])}" + (f"; {t('scores', 'scores')}: {scores}" if scores else "")
                    + (f"; {t('opmerkingen', 'comments')}: " + " · ".join(
                        f"{_fmt_duration(c['at_s'])} {e(c['text'])}" for c in rv["comments"]) if rv["comments"] else "")
                    + (f"; {t('uw reactie', 'your reply')}: {e(rv['reply'])}" if rv.get("reply") else "") + "</li>")
            parts.append("</ul>")
        parts.append(f"<h3>{t('Uw verzoeken', 'Your requests')}</h3><ul>")
        for q in requests_:
            kind = _KIND.get(q["kind"], (q["kind"], q["kind"]))[lang]
            if q["status"] == "closed":
                state = t("afgehandeld", "answered") + (f" {e(str(q['closed_at'])[:10])}" if q.get("closed_at") else "")
            else:
                state = t("in behandeling, antwoord uiterlijk", "in progress, to be answered by") + f" {e(q['due'])}"
            parts.append(f"<li>{e(q['received'][:10])}: {t('verzoek om', 'request for')} {e(kind)} — {state}</li>")
        parts.append("</ul>")
        parts.append(f"<h3>{t('Uw rechten', 'Your rights')}</h3><p>" + t(
            "U kunt ons vragen gegevens te verbeteren of te wissen, en bezwaar maken tegen gebruik voor training. "
            "Opnames worden niet gebruikt voor geautomatiseerde besluiten. Bent u het niet met ons eens, dan kunt u "
            "een klacht indienen bij de Autoriteit Persoonsgegevens (autoriteitpersoonsgegevens.nl).",
            "You can ask us to correct or erase data, and object to use for training. Recordings are not used for "
            "automated decisions. If you disagree with us, you can complain to the Dutch Data Protection Authority "
            "(Autoriteit Persoonsgegevens, autoriteitpersoonsgegevens.nl).") + "</p>")
        return "\n".join(parts)

    created = e(summary["created_at"][:10])
    return (
        "<!doctype html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\">"
        "<title>Inzageverzoek / Access request</title></head><body>\n"
        f"<h1>Uw gegevens / Your data</h1><p>{created}</p>\n"
        + "<section lang=\"nl\">\n" + section(0) + "\n</section>\n<hr>\n<section lang=\"en\">\n" + section(1)
        + "\n</section>\n</body></html>\n"
    )
