"""The consent and objection register: an append-only history per party and purpose.

Every statement a person makes about the use of their voice is one row in
``consent_events``: consent given or withdrawn, objection made or withdrawn,
with when it takes effect, when we recorded it, how it reached us, who
recorded it, a free note and optional evidence (a moment in a recording).
SQLite triggers refuse to change or delete a row, with one exception: once
the person's ``parties`` row is gone (erasure deletes it first), their
history may be deleted too, so erasure leaves nothing behind.

``consent_status`` is a projection of the history: one row per party and
purpose, recomputed in the same transaction as each new event and rebuildable
from the history at any time (:func:`rebuild`) with the same result.

Status counts only events whose effective time has come, in order of
effective time, then of recording (``seq``). A future-dated event is stored
and shown, and takes effect when its time comes: the projection notes the
earliest pending time, and :func:`current` recomputes a row whose pending
time has passed.

Parties appear only by their opaque ``ref``; the audit log gets the ref and
the purpose, never notes.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog, parties, withdrawal
from .db import now_iso, transaction, utc_iso
from .errors import BadInput, NotFound
from .home import Home

PURPOSES = ("training", "quality", "dispute")
EVENTS = ("consent_given", "consent_withdrawn", "objection_made", "objection_withdrawn")
CHANNELS = ("in_call", "phone", "email", "letter", "web")
# events that stop use of the voice for a purpose: for training they recall clips
STOPPING_EVENTS = ("consent_withdrawn", "objection_made")
MAX_NOTE = 2000

migrations = Migrations("clipkit.consent")


@migrations()
def m001_consent(db: Database) -> None:
    # No foreign key to parties: erasure deletes the parties row before the
    # history, and a key would refuse that order. record() checks the party.
    # No key to recordings either: evidence must outlive an erased recording
    # without an UPDATE (which the trigger refuses) to null it.
    db.execute(
        f"""
        CREATE TABLE consent_events (
            seq INTEGER PRIMARY KEY,
            party_ref TEXT NOT NULL,
            purpose TEXT NOT NULL CHECK (purpose IN ({", ".join(repr(p) for p in PURPOSES)})),
            event TEXT NOT NULL CHECK (event IN ({", ".join(repr(e) for e in EVENTS)})),
            effective_at TEXT NOT NULL,     -- UTC ISO 8601, comparable as text
            recorded_at TEXT NOT NULL,
            channel TEXT CHECK (channel IS NULL OR channel IN ({", ".join(repr(c) for c in CHANNELS)})),
            recorded_by TEXT NOT NULL,
            note TEXT,
            evidence_recording_id INTEGER,
            evidence_s REAL
        )
        """
    )
    db.execute("CREATE INDEX consent_events_party ON consent_events(party_ref, purpose, effective_at, seq)")
    db.execute(
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        "BEGIN SELECT RAISE(ABORT, 'the consent history is append-only: events cannot be changed'); END"
    )
    db.execute(
        "CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events "
        "WHEN EXISTS (SELECT 1 FROM parties WHERE ref = OLD.party_ref) "
        "BEGIN SELECT RAISE(ABORT, 'the consent history is append-only: events cannot be deleted "
        "while the party exists'); END"
    )
    db.execute(
        """
        CREATE TABLE consent_status (
            party_ref TEXT NOT NULL,
            purpose TEXT NOT NULL,
            consent TEXT NOT NULL,          -- none | given | withdrawn
            consent_at TEXT,                -- effective time of the event that set it
            objection TEXT NOT NULL,        -- none | active | withdrawn
            objection_at TEXT,
            events INTEGER NOT NULL,        -- events in effect
            last_seq INTEGER NOT NULL,      -- newest event in effect
            pending_at TEXT,                -- earliest future effective time, if any
            PRIMARY KEY (party_ref, purpose)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX consent_status_objection ON consent_status(purpose, objection)")


@migrations()
def m002_merged_from(db: Database) -> None:
    # an event copied from a party that was merged into this one (clipkit party merge)
    # keeps the sequence number it had there; adding a column changes no existing row
    db.execute("ALTER TABLE consent_events ADD COLUMN merged_from_seq INTEGER")


# ---------------------------------------------------------------- helpers


def parse_evidence(text: str) -> dict:
    """Parse ``RECORDING_ID@SECONDS`` (e.g. ``12@33.5``) into ``{"recording_id", "seconds"}``.

    Raises
    ------
    BadInput
        If the text is not of that form.
    """
    left, sep, right = str(text).strip().partition("@")
    try:
        if not sep:
            raise ValueError
        rec, sec = int(left), float(right)
    except ValueError:
        raise BadInput(f"--evidence {text!r} must be RECORDING_ID@SECONDS, e.g. 12@33.5") from None
    return {"recording_id": rec, "seconds": sec}


def _validate_evidence(db: Database, evidence: dict, party_ref: str | None) -> tuple[int, float]:
    try:
        rec_id, seconds = int(evidence["recording_id"]), float(evidence["seconds"])
    except (KeyError, TypeError, ValueError):
        raise BadInput("evidence must give a recording id and a time in seconds") from None
    row = db.execute(
        "SELECT duration_s, caller_ref, agent_ref FROM recordings WHERE id = ?", [rec_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"evidence: no recording with id {rec_id}")
    duration, caller_ref, agent_ref = row
    if not (0 <= seconds <= duration):  # also false for NaN
        raise BadInput(f"evidence: {seconds:g} s is outside recording {rec_id} (0–{duration:.2f} s)")
    if party_ref not in (caller_ref, agent_ref):
        raise BadInput(f"evidence: the party is not the caller or agent of recording {rec_id}")
    return rec_id, round(seconds, 3)


def _validate(purpose: str, event: str, channel: str | None, actor: str, note: str | None) -> None:
    if purpose not in PURPOSES:
        raise BadInput(f"--purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    if event not in EVENTS:
        raise BadInput(f"event {event!r} is not one of {', '.join(EVENTS)}")
    if channel is not None and channel not in CHANNELS:
        raise BadInput(f"--channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if not actor or not str(actor).strip():
        raise BadInput("--actor must name who records the event")
    if note is not None and len(note) > MAX_NOTE:
        raise BadInput(f"--note is {len(note)} characters; at most {MAX_NOTE} are allowed")


def _event_row(row: tuple) -> dict:
    keys = ("seq", "party_ref", "purpose", "event", "effective_at", "recorded_at", "channel",
            "recorded_by", "note", "evidence_recording_id", "evidence_s", "merged_from_seq")
    out = dict(zip(keys, row))
    rec, sec = out.pop("evidence_recording_id"), out.pop("evidence_s")
    out["evidence"] = None if rec is None else {"recording_id": rec, "seconds": sec}
    return out


_EVENT_COLUMNS = ("seq, party_ref, purpose, event, effective_at, recorded_at, channel, recorded_by, note, "
                  "evidence_recording_id, evidence_s, merged_from_seq")


def fold(events: list[dict], *, party_ref: str, purpose: str, now: str) -> dict:
    """The status one party has for one purpose, from their events for it.

    Only events with ``effective_at <= now`` count, in order of effective
    time, then ``seq``. Returns the projection row.
    """
    row = {"party_ref": party_ref, "purpose": purpose, "consent": "none", "consent_at": None,
           "objection": "none", "objection_at": None, "events": 0, "last_seq": 0, "pending_at": None}
    for e in sorted(events, key=lambda e: (e["effective_at"], e["seq"])):
        if e["effective_at"] > now:
            if row["pending_at"] is None:
                row["pending_at"] = e["effective_at"]
            continue
        kind = e["event"]
        if kind in ("consent_given", "consent_withdrawn"):
            row["consent"] = "given" if kind == "consent_given" else "withdrawn"
            row["consent_at"] = e["effective_at"]
        else:
            row["objection"] = "active" if kind == "objection_made" else "withdrawn"
            row["objection_at"] = e["effective_at"]
        row["events"] += 1
        row["last_seq"] = max(row["last_seq"], e["seq"])
    return row


def _events(db: Database, party_ref: str, purpose: str | None = None) -> list[dict]:
    sql = f"SELECT {_EVENT_COLUMNS} FROM consent_events WHERE party_ref = ?"
    params: list = [party_ref]
    if purpose is not None:
        sql += " AND purpose = ?"
        params.append(purpose)
    return [_event_row(r) for r in db.execute(sql + " ORDER BY effective_at, seq", params)]


def _project(db: Database, party_ref: str, purpose: str, now: str) -> dict:
    row = fold(_events(db, party_ref, purpose), party_ref=party_ref, purpose=purpose, now=now)
    db["consent_status"].upsert(row, pk=("party_ref", "purpose"))
    return row


def _public(row: dict) -> dict:
    return {k: row[k] for k in ("consent", "consent_at", "objection", "objection_at", "pending_at")}


# ---------------------------------------------------------------- API


def record(
    db: Database,
    *,
    party_ref: str,
    purpose: str,
    event: str,
    actor: str,
    home: Home,
    channel: str | None = None,
    note: str | None = None,
    evidence: dict | None = None,
    effective: str | None = None,
) -> dict:
    """Append one consent/objection event and update the party's status.

    In one transaction: the event, the status projection, the log entry and
    (for ``consent_withdrawn`` / ``objection_made`` on ``training``) the
    recall of every clip the party is heard in
    (:func:`clipkit.withdrawal.recall_party`). A recall happens when the event is
    recorded, even if it takes effect later: we never keep publishing a voice
    after being told to stop.

    Parameters
    ----------
    party_ref : str
        Opaque ref of an existing party.
    purpose : str
        ``training``, ``quality`` or ``dispute``.
    event : str
        One of :data:`EVENTS`.
    actor : str
        Who records it.
    home : Home
        The data home; its retention rules recompute the recordings'
        keep-until dates in the same transaction (when a recall withdraws
        clips).
    channel : str, optional
        How it reached us: one of :data:`CHANNELS`.
    note : str, optional
        Free text (kept here, never copied into the log).
    evidence : dict, optional
        ``{"recording_id": int, "seconds": float}``: where in a call the
        person said it; the party must be a party of that recording.
    effective : str, optional
        ISO 8601 time the event takes effect (default: now).

    Returns
    -------
    dict
        The event (with ``seq``), the resulting ``status`` for the purpose and
        the ``recall`` result (or None).

    Raises
    ------
    BadInput
        For an unknown purpose, event, channel, bad time or bad evidence.
    NotFound
        If the party or the evidence recording does not exist.
    """
    _validate(purpose, event, channel, actor, note)
    effective_at = utc_iso(effective, name="--effective")
    parties.get(db, party_ref)
    ev_rec = ev_s = None
    if evidence is not None:
        ev_rec, ev_s = _validate_evidence(db, evidence, party_ref)
    note = (note or "").strip() or None

    with transaction(db):
        now = now_iso()
        row = {
            "party_ref": party_ref, "purpose": purpose, "event": event,
            "effective_at": effective_at or now, "recorded_at": now, "channel": channel,
            "recorded_by": actor.strip(), "note": note,
            "evidence_recording_id": ev_rec, "evidence_s": ev_s,
        }
        seq = db["consent_events"].insert(row).last_pk
        status = _project(db, party_ref, purpose, now)
        auditlog.append(
            db, kind=f"consent.{event}", actor=actor.strip(),
            data={"party": party_ref, "purpose": purpose, "event_seq": seq, "effective_at": row["effective_at"]},
        )
        recall = None
        if purpose == "training" and event in STOPPING_EVENTS:
            recall = withdrawal.recall_party(db, party_ref, actor=actor.strip(), reason=event, home=home)
    out = {"seq": seq, **row}
    rec, sec = out.pop("evidence_recording_id"), out.pop("evidence_s")
    out["evidence"] = None if rec is None else {"recording_id": rec, "seconds": sec}
    out["status"] = _public(status)
    out["recall"] = recall
    return out


def current(db: Database, party_ref: str, *, now: str | None = None) -> dict[str, dict]:
    """The party's status for every purpose: ``{purpose: {"consent", "objection", ...}}``.

    ``consent`` is ``none`` / ``given`` / ``withdrawn``; ``objection`` is
    ``none`` / ``active`` / ``withdrawn``. A party with no events has
    ``none`` for both. Rows with a pending event whose time has come are
    recomputed from the history (without writing).
    """
    now = now or now_iso()
    out = {p: _public(fold([], party_ref=party_ref, purpose=p, now=now)) for p in PURPOSES}
    for r in db.query("SELECT * FROM consent_status WHERE party_ref = ?", [party_ref]):
        if r["pending_at"] is not None and r["pending_at"] <= now:
            r = fold(_events(db, party_ref, r["purpose"]), party_ref=party_ref, purpose=r["purpose"], now=now)
        out[r["purpose"]] = _public(r)
    return out


def history(db: Database, party_ref: str) -> list[dict]:
    """Every event of a party, all purposes, in recording order (``seq``)."""
    return [
        _event_row(r)
        for r in db.execute(f"SELECT {_EVENT_COLUMNS} FROM consent_events WHERE party_ref = ? ORDER BY seq", [party_ref])
    ]


def rebuild(db: Database, *, actor: str = "system") -> int:
    """Recompute the whole status projection from the history; returns the rows written.

    The result equals what the incremental updates produced (as of now): the
    projection holds nothing the history does not.
    """
    with transaction(db):
        now = now_iso()
        db.execute("DELETE FROM consent_status")
        pairs = db.execute("SELECT DISTINCT party_ref, purpose FROM consent_events ORDER BY party_ref, purpose").fetchall()
        for ref, purpose in pairs:
            _project(db, ref, purpose, now)
        auditlog.append(db, kind="consent.rebuild", actor=actor, data={"rows": len(pairs)})
    return len(pairs)


def status_rows(db: Database) -> list[dict]:
    """The raw projection table, ordered; for comparing before and after :func:`rebuild`."""
    return list(db.query("SELECT * FROM consent_status ORDER BY party_ref, purpose"))


def take_over(db: Database, from_ref: str, into_ref: str, *, now: str) -> int:
    """Copy every event of ``from_ref`` to ``into_ref`` (for a merge), keeping their times; returns how many.

    The copies keep effective and recording times, channel, author, note and
    evidence, and name the event they came from (``merged_from_seq``), so the
    merged history folds exactly as both histories together. Call inside the
    merge's transaction, then delete the merged party and :func:`forget` it.
    """
    rows = list(db.query("SELECT * FROM consent_events WHERE party_ref = ? ORDER BY seq", [from_ref]))
    for r in rows:
        old = r.pop("seq")
        r.update(party_ref=into_ref, merged_from_seq=old)
        db["consent_events"].insert(r)
    for (purpose,) in db.execute("SELECT DISTINCT purpose FROM consent_events WHERE party_ref = ? ORDER BY 1",
                                 [into_ref]).fetchall():
        _project(db, into_ref, purpose, now)
    return len(rows)


def forget(db: Database, party_ref: str) -> int:
    """Delete a party's history and status; for erasure, after the parties row is deleted.

    Returns the number of events deleted.

    Raises
    ------
    sqlite3.IntegrityError
        (from the trigger) if the party row still exists.
    """
    with transaction(db):
        n = db.execute("DELETE FROM consent_events WHERE party_ref = ?", [party_ref]).rowcount
        db.execute("DELETE FROM consent_status WHERE party_ref = ?", [party_ref])
    return n


# ---------------------------------------------------------------- identifiers


def resolve_party(db: Database, home: Home, identifier: str, *, create: bool) -> dict:
    """The party row for an external identifier (phone, customer or employee number).

    With ``create``, an unknown identifier becomes a new party: a consent or
    objection may arrive before any of the person's calls is imported.
    Call inside a transaction when ``create`` is set.

    Raises
    ------
    NotFound
        If ``create`` is false and no party has that identifier.
    """
    region = home.config["phone_region"]
    secret = home.secret()
    if create:
        return parties.ensure(db, secret, identifier, region=region, now=now_iso())
    return parties.lookup(db, secret, identifier, region=region)


def reach(db: Database, home: Home, party: dict, identifier: str) -> dict:
    """Whether an event for this party reaches anyone heard in a recording, and who else it may mean.

    Returns ``{"new_party": bool, "recordings": n, "possible_matches": [{"ref", "label", "recordings"}]}``.
    ``new_party`` is true when the identifier matches nobody heard in any
    recording: an objection recorded for it withdraws nothing today, which
    staff must be told (a mistyped number is a silent failure otherwise).
    ``possible_matches`` are parties stored under another spelling of the same
    phone number (see :func:`clipkit.parties.alternative_forms`).
    """
    def heard(ref: str) -> int:
        return db.execute("SELECT count(*) FROM recordings WHERE caller_ref = ? OR agent_ref = ?",
                          [ref, ref]).fetchone()[0]

    n = heard(party["ref"])
    matches = []
    for row in parties.possible_matches(db, home.secret(), identifier, region=home.config["phone_region"]):
        if row["ref"] != party["ref"]:
            matches.append({"ref": row["ref"], "label": row["label"], "recordings": heard(row["ref"])})
    return {"new_party": n == 0, "recordings": n, "possible_matches": matches}


def reach_warning(found: dict) -> str | None:
    """A plain sentence for :func:`reach`'s result, or None when the identifier reaches someone heard."""
    if not found["new_party"]:
        return None
    text = ("this identifier matches nobody heard in any recording, so the event withdraws no clip today; "
            "check the number (it will apply to calls imported later under the same identifier)")
    if found["possible_matches"]:
        who = ", ".join(f"{m['label']} (party {m['ref']}, {m['recordings']} call(s))" for m in found["possible_matches"])
        text += (f"; the same number written another way belongs to {who} — if it is the same person, "
                 "join the two with 'party merge'")
    return text


def record_for(db: Database, home: Home, identifier: str, **kwargs) -> dict:
    """:func:`record` for an external identifier, creating the party if unknown.

    Everything is validated before the party is created, so a rejected event
    leaves no new party behind.

    Parameters
    ----------
    db : Database
        The open clipkit database.
    home : Home
        The data home: its key and phone region resolve the identifier, and
        its retention rules recompute the recordings' keep-until dates in the
        same transaction.
    identifier : str
        Phone, customer or employee number.
    **kwargs
        The other keyword arguments of :func:`record` (not ``party_ref`` or
        ``home``).

    Returns
    -------
    dict
        As :func:`record`, plus the party's ``label`` and :func:`reach`'s
        ``new_party``, ``recordings`` and ``possible_matches``, and
        ``warning`` (a sentence, or None).
    """
    _validate(kwargs.get("purpose"), kwargs.get("event"), kwargs.get("channel"), kwargs.get("actor"), kwargs.get("note"))
    utc_iso(kwargs.get("effective"), name="--effective")
    evidence = kwargs.get("evidence")
    if evidence is not None:
        try:
            known = resolve_party(db, home, identifier, create=False)["ref"]
        except NotFound:
            known = None  # a new party is in no recording; the check below says so
        _validate_evidence(db, evidence, known)
    with transaction(db):
        party = resolve_party(db, home, identifier, create=True)
        out = record(db, party_ref=party["ref"], home=home, **kwargs)
        found = reach(db, home, party, identifier)
    out["label"] = party["label"]
    out.update(found)
    out["warning"] = reach_warning(found)
    return out
