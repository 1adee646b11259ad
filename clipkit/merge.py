"""Join two parties that compliance knows are one person (``clipkit party merge``).

A person can end up as two parties: a number typed in another country's
national format (``0470 12 34 56`` vs ``+32 470 12 34 56``), or parties
created before clipkit cleaned identifiers the way it does now (a number
pasted with invisible bidi marks or an en-dash became a party of its own).
Canonical identifiers are never stored, so such parties cannot be joined
automatically; an officer who knows they are one person merges them.

In one transaction, :func:`merge` moves everything of party B into party A:

- every recording B is caller or agent of now names A;
- B's consent and objection history is copied to A with its original times
  (each copy names the event it came from), and A's status is recomputed
  from the joined history;
- B's requests and notes now belong to A; B's pseudonym (and those of
  parties merged into B earlier) becomes an alias of A, so B's identifier
  finds A from now on;
- B's parties row and history are deleted (B's ref is then unknown, as
  after an erasure; the log keeps the merge entry that names both refs);
- when the joined history has an active objection to training, or consent
  for training withdrawn, every clip A is heard in is withdrawn, exactly as
  for a new objection, and the earlier exports that held them are listed.

Clips rendered before the merge keep the pseudo-voice they were rendered
with (B's keyed voice) until they are rendered again; new renderings use
A's voice. The reason is a note (:mod:`clipkit.notes`), not log text.
"""

from __future__ import annotations

from sqlite_utils import Database

from . import auditlog, consent, notes, parties, withdrawal
from .db import now_iso, transaction
from .errors import BadInput, NotFound
from .home import Home


def _party(db: Database, ref: str, name: str) -> dict:
    ref = (ref or "").strip().lower()
    if not ref:
        raise BadInput(f"{name} must name a party reference (as 'clipkit status' shows it)")
    try:
        return parties.get(db, ref)
    except NotFound:
        raise NotFound(f"{name}: no party with reference {ref!r} (erased, merged earlier, or mistyped)") from None


def plan(db: Database, into_ref: str, from_ref: str) -> dict:
    """What merging ``from_ref`` into ``into_ref`` would move (nothing is changed).

    Raises
    ------
    BadInput
        For the same ref twice, a party whose erasure is under way, or a call
        between the two (one person cannot be both caller and agent of it).
    NotFound
        For an unknown ref.
    """
    a = _party(db, into_ref, "the party to keep")
    b = _party(db, from_ref, "the party to merge")
    if a["ref"] == b["ref"]:
        raise BadInput(f"both references name the same party {a['ref']}")
    for row in (a, b):
        if db.execute("SELECT 1 FROM erasure_jobs WHERE party_ref = ?", [row["ref"]]).fetchone():
            raise BadInput(f"party {row['ref']} is being erased; finish the erasure before merging")
    both = db.execute(
        """SELECT id FROM recordings WHERE (caller_ref = ? AND agent_ref = ?) OR (caller_ref = ? AND agent_ref = ?)
           ORDER BY id LIMIT 1""", [a["ref"], b["ref"], b["ref"], a["ref"]]).fetchone()
    if both:
        raise BadInput(f"recording {both[0]} has one of them as caller and the other as agent; "
                       "two parties of one call cannot be the same person")
    recordings = [r[0] for r in db.execute(
        "SELECT id FROM recordings WHERE caller_ref = ? OR agent_ref = ? ORDER BY id", [b["ref"], b["ref"]])]
    events = db.execute("SELECT count(*) FROM consent_events WHERE party_ref = ?", [b["ref"]]).fetchone()[0]
    reqs = db.execute("SELECT count(*) FROM requests WHERE party_ref = ?", [b["ref"]]).fetchone()[0]
    return {"into": a, "from": b, "recordings": recordings, "events": events, "requests": reqs}


def merge(db: Database, home: Home, *, into_ref: str, from_ref: str, reason: str, actor: str) -> dict:
    """Merge party ``from_ref`` into ``into_ref`` (see the module docstring).

    Parameters
    ----------
    into_ref, from_ref : str
        Party references (``clipkit status`` shows them); the first is kept.
    reason : str
        Why they are one person (stored as a note, cleared if the person is erased).
    actor : str
        Who merges (logged).

    Returns
    -------
    dict
        ``{"party", "merged", "label", "recordings": [ids moved], "events": n, "requests": n,
        "status": {purpose: {...}}, "recall": {"clips", "exports"} or None}``.

    Raises
    ------
    BadInput, NotFound
        As :func:`plan`, or for an empty reason; nothing is changed.
    """
    reason = notes.clean(reason, name="the reason for the merge")
    if not actor or not str(actor).strip():
        raise BadInput("say who merges the parties")
    actor = str(actor).strip()
    with transaction(db):
        work = plan(db, into_ref, from_ref)
        a, b = work["into"]["ref"], work["from"]["ref"]
        now = now_iso()
        db.execute("UPDATE recordings SET caller_ref = ? WHERE caller_ref = ?", [a, b])
        db.execute("UPDATE recordings SET agent_ref = ? WHERE agent_ref = ?", [a, b])
        copied = consent.take_over(db, b, a, now=now)
        db.execute("UPDATE requests SET party_ref = ? WHERE party_ref = ?", [a, b])
        db.execute("UPDATE party_aliases SET ref = ? WHERE ref = ?", [a, b])
        db["party_aliases"].insert({"pseudonym": work["from"]["pseudonym"], "ref": a, "merged_at": now})
        notes.relink_party(db, b, a)
        # the history of b may go only once its parties row is gone (the append-only trigger)
        db.execute("DELETE FROM parties WHERE ref = ?", [b])
        consent.forget(db, b)
        note_id = notes.add(db, kind="party.merge", text=reason, actor=actor, parties_=[a])
        auditlog.append(db, kind="party.merge", actor=actor, data={
            "into": a, "from": b, "recordings": work["recordings"], "events": copied,
            "requests": work["requests"], "reason_note": note_id,
        })
        status = consent.current(db, a, now=now)
        training = status["training"]
        recall = None
        if training["objection"] == "active" or training["consent"] == "withdrawn":
            recall = withdrawal.recall_party(db, a, actor=actor, reason="party_merge", home=home)
    return {"party": a, "merged": b, "label": work["into"]["label"], "recordings": work["recordings"],
            "events": copied, "requests": work["requests"],
            "status": {p: {k: v for k, v in s.items()} for p, s in status.items()}, "recall": recall}
