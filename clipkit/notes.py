"""Free text typed by staff (why raw audio was played, why a clip was withdrawn, why two parties were joined).

The hash-chained log is append-only and kept for years; free text does not
belong in it, because anyone can type a caller's phone number or name into
a reason, and an erasure must then be able to remove it. So the log entry
carries only a reason *code* and the id of a ``notes`` row; the text lives
here, linked to the parties and recordings it is about, and
:func:`scrub` clears it when those are erased or purged (the row stays, so
the log entry's reference still resolves, to "cleared at erasure").

:func:`scrub` also clears every note that mentions an identifier given to
it (in any spelling: see :func:`mentions`), so a number typed into the
reason of an unrelated play is found too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import parties
from .db import now_iso, transaction
from .errors import BadInput

CLEARED = "[cleared at erasure]"
MAX_NOTE = 500

migrations = Migrations("clipkit.notes")


@migrations()
def m001_notes(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,          -- what the text explains: play.raw, clip.withdraw, party.merge...
            text TEXT,                   -- NULL once scrubbed
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            scrubbed_at TEXT
        )
        """
    )
    # what a note is about: ('party', ref) or ('recording', id as text)
    db.execute(
        """
        CREATE TABLE note_links (
            note_id INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
            subject TEXT NOT NULL CHECK (subject IN ('party', 'recording')),
            key TEXT NOT NULL,
            PRIMARY KEY (subject, key, note_id)
        ) WITHOUT ROWID
        """
    )


def clean(text: str | None, *, name: str = "the reason", required: bool = True) -> str | None:
    """Free text with its runs of white space made one space.

    Raises
    ------
    BadInput
        When it is empty (and ``required``) or longer than :data:`MAX_NOTE`.
    """
    value = " ".join((text or "").split()) or None
    if value is None and required:
        raise BadInput(f"{name} must not be empty")
    if value is not None and len(value) > MAX_NOTE:
        raise BadInput(f"{name} is {len(value)} characters; at most {MAX_NOTE} are allowed")
    return value


def add(db: Database, *, kind: str, text: str, actor: str, parties_: Iterable[str] = (),
        recordings: Iterable[int] = ()) -> int:
    """Store one note (call inside the transaction that logs its id); returns the id."""
    with transaction(db):
        note_id = db["notes"].insert({"kind": kind, "text": text, "at": now_iso(), "actor": actor or "unknown",
                                      "scrubbed_at": None}).last_pk
        links = [{"note_id": note_id, "subject": "party", "key": str(r)} for r in dict.fromkeys(parties_)]
        links += [{"note_id": note_id, "subject": "recording", "key": str(int(r))} for r in dict.fromkeys(recordings)]
        if links:
            db["note_links"].insert_all(links, ignore=True)
    return note_id


def texts(db: Database, note_ids: Iterable[int]) -> dict[int, str]:
    """``{id: text}`` (:data:`CLEARED` for a scrubbed note)."""
    ids = sorted({int(i) for i in note_ids if i is not None})
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for nid, text in db.execute(f"SELECT id, text FROM notes WHERE id IN ({','.join('?' * len(chunk))})", chunk):
            out[nid] = CLEARED if text is None else text
    return out


def relink_party(db: Database, old_ref: str, new_ref: str) -> None:
    """Notes about a party merged into another now belong to the party it joined."""
    with transaction(db):
        db.execute("UPDATE OR IGNORE note_links SET key = ? WHERE subject = 'party' AND key = ?", [new_ref, old_ref])
        db.execute("DELETE FROM note_links WHERE subject = 'party' AND key = ?", [old_ref])


def _digit_forms(canonical: str) -> list[str]:
    """Digit runs a phone number shows up as in free text: international, national, and without trunk zero."""
    forms = {canonical.lstrip("+")}
    for alt in parties.alternative_forms(canonical):
        forms.add(alt.lstrip("+"))
    if canonical.startswith("+"):
        try:
            import phonenumbers

            nsn = phonenumbers.national_significant_number(phonenumbers.parse(canonical, None))
            forms.add(nsn)
        except Exception:  # not a parseable number: the forms above are all we have
            pass
    return sorted(f for f in forms if len(f) >= parties.MIN_PHONE_DIGITS)


def mentions(text: str, canonical: str) -> bool:
    """Whether free text mentions an identifier (given in canonical form), however it was written.

    Phone numbers are matched on their digits (separators, spaces and
    invisible characters in the text ignored; international, national and
    trunk-less forms); other identifiers on the cleaned, case-folded text.
    Errs on the side of a match: clearing one reason too many costs nothing.
    """
    cleaned = parties.clean_text(text).casefold()
    if canonical.lstrip("+").isdigit():
        digits = re.sub(r"[^0-9]", "", cleaned)
        return any(f in digits for f in _digit_forms(canonical))
    # a very short id ("e7") would match half the notes; such ids are found through their links only
    return len(canonical) >= 4 and canonical in " ".join(cleaned.split())


def scrub(db: Database, *, party_refs: Iterable[str] = (), recording_ids: Iterable[int] = (),
          identifiers: Iterable[str] = ()) -> int:
    """Clear the text of every note about these parties or recordings, or mentioning an identifier.

    ``identifiers`` are canonical forms (:func:`clipkit.parties.canonical_identifier`).
    Runs in the caller's transaction. Returns how many notes were cleared.
    """
    keys = [("party", str(r)) for r in party_refs] + [("recording", str(int(r))) for r in recording_ids]
    ids: set[int] = set()
    for subject, key in keys:
        ids.update(r[0] for r in db.execute(
            "SELECT note_id FROM note_links WHERE subject = ? AND key = ?", [subject, key]))
    forms = [c for c in identifiers if c]
    if forms:
        for nid, text in db.execute("SELECT id, text FROM notes WHERE text IS NOT NULL"):
            if any(mentions(text, c) for c in forms):
                ids.add(nid)
    if not ids:
        return 0
    now = now_iso()
    ordered = sorted(ids)
    n = 0
    with transaction(db):
        for i in range(0, len(ordered), 500):
            chunk = ordered[i:i + 500]
            n += db.execute(f"UPDATE notes SET text = NULL, scrubbed_at = ? WHERE text IS NOT NULL AND id IN "
                            f"({','.join('?' * len(chunk))})", [now] + chunk).rowcount
    return n


def resolve(db: Database, rows: list[dict]) -> list[dict]:
    """Give each log row a ``notes`` dict: for every ``*_note`` id in its data, the note's text.

    The log holds note ids, never text; screens and exports for compliance
    show the text next to the entry (or :data:`CLEARED` after an erasure).
    """
    ids = [v for r in rows for k, v in (r.get("data") or {}).items() if k.endswith("_note") and v is not None]
    found = texts(db, ids)
    for r in rows:
        r["notes"] = {k[:-5]: found.get(v, CLEARED) for k, v in (r.get("data") or {}).items()
                      if k.endswith("_note") and v is not None}
    return rows
