"""Withdrawals and recalls: clips taken out of use, and the exports that must be asked back.

A clip is withdrawn by hand, by an objection to or a withdrawal of consent
for training (:func:`clipkit.consent.record`), by an erasure or by a party
merge; :func:`recall_party` withdraws every clip a party is heard in. Each
withdrawal is logged with the exports that contained the clip, and
:func:`recalls` lists those exports until their recipients confirm the
deletion (:func:`mark_recall_done`). The tables live with the exports
(:mod:`clipkit.export` migrations); this module only reads and writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlite_utils import Database

from . import auditlog, library, notes
from .db import now_iso, transaction
from .errors import BadInput, NotFound
from .home import Home

#: why clips are withdrawn, as stored and logged; anything else is free text, kept as a note
WITHDRAW_CODES = {
    "objection_made": "the person objected to use for training",
    "consent_withdrawn": "the person withdrew consent for training",
    "erasure": "the person asked for erasure",
    "party_merge": "an objection applies after two parties were joined",
    "manual": "withdrawn by hand",
}


def withdraw_clips(db: Database, clip_ids: Sequence[int], *, actor: str, reason: str, home: Home,
                   party_ref: str | None = None) -> list[int]:
    """Withdraw clips (status ``withdrawn``, approval cleared); returns those newly withdrawn.

    Runs in the caller's transaction when there is one. Logs ``clip.withdraw``
    with the clips, the reason, the party (by ref) when it is a recall, and
    the exports that contained the clips. The recordings' keep-until dates
    are recomputed in the same transaction: a withdrawn clip no longer keeps
    its call for training.

    Parameters
    ----------
    db : Database
        The open clipkit database.
    clip_ids : sequence of int
        Clips to withdraw; those already withdrawn are left as they are.
    actor : str
        Who withdraws them (logged).
    reason : str
        Why (required, logged).
    home : Home
        The data home; its retention rules recompute the recordings'
        keep-until dates in the same transaction.
    party_ref : str, optional
        The party whose recall this is, logged by ref.

    Returns
    -------
    list of int
        The ids of the clips newly withdrawn.

    Raises
    ------
    BadInput
        If the reason is empty.
    """
    if not reason or not str(reason).strip():
        raise BadInput("a withdrawal needs a reason")
    code = reason if reason in WITHDRAW_CODES and reason != "manual" else "manual"
    text = None if code != "manual" else notes.clean(reason, name="the reason for the withdrawal")
    with transaction(db):
        now = now_iso()
        changed = []
        for cid in clip_ids:
            cur = db.execute(
                """UPDATE clips SET status = 'withdrawn', approved_by = NULL, approved_at = NULL, updated_at = ?
                   WHERE id = ? AND status != 'withdrawn'""",
                [now, cid],
            )
            if cur.rowcount:
                changed.append(int(cid))
        if changed:
            marks = ",".join("?" * len(changed))
            recs = [r[0] for r in db.execute(
                f"SELECT DISTINCT recording_id FROM clips WHERE id IN ({marks}) ORDER BY 1", changed)]
            note_id = None if text is None else notes.add(db, kind="clip.withdraw", text=text, actor=actor,
                                                          recordings=recs)
            db["clip_withdrawals"].insert_all(
                [{"clip_id": cid, "at": now, "actor": actor, "reason": code, "note_id": note_id} for cid in changed]
            )
            exports = [e["export_id"] for e in exports_containing(db, changed)]
            data = {"clips": changed, "reason": code, "exports": exports}
            if note_id is not None:
                data["reason_note"] = note_id
            if party_ref is not None:
                data["party"] = party_ref
            auditlog.append(db, kind="clip.withdraw", actor=actor, data=data)
            for rid in recs:
                library.refresh_retention(db, home, rid)
    return changed


def recall_party(db: Database, party_ref: str, *, actor: str, reason: str, home: Home) -> dict:
    """Withdraw every clip a party is heard in, at once, exported or not.

    Called by :func:`clipkit.consent.record` for an objection to, or a
    withdrawal of consent for, ``training`` (in that event's transaction) and
    by the erasure flow before it deletes anything. Both parties of a call
    are heard in every clip of it (see :func:`clipkit.library.clip_parties_heard`).

    Parameters
    ----------
    db : Database
        The open clipkit database.
    party_ref : str
        Opaque ref of the party.
    actor : str
        Who recalls (logged).
    reason : str
        Why (logged), e.g. the consent event or the erasure request.
    home : Home
        The data home; its retention rules recompute the recordings'
        keep-until dates in the same transaction.

    Returns
    -------
    dict
        ``{"party", "clips": [newly withdrawn ids], "exports": [ids of exports that contained them]}``.
    """
    clip_ids = [r[0] for r in db.execute(
        """SELECT c.id FROM clips c JOIN recordings r ON r.id = c.recording_id
           WHERE r.caller_ref = ? OR r.agent_ref = ? ORDER BY c.id""",
        [party_ref, party_ref],
    )]
    changed = withdraw_clips(db, clip_ids, actor=actor, reason=reason, party_ref=party_ref, home=home)
    exports = [e["export_id"] for e in exports_containing(db, changed)] if changed else []
    return {"party": party_ref, "clips": changed, "exports": exports}


def _export_rows(db: Database, sql_where: str, params: list) -> list[dict]:
    rows = db.execute(
        f"""SELECT e.id, e.at, e.actor, e.recipient, e.state, e.policy_version, i.clip_id, i.file, i.sha256
            FROM exports e JOIN export_items i ON i.export_id = e.id
            WHERE e.state != 'failed' AND {sql_where}
            ORDER BY e.at, e.id, i.clip_id""",
        params,
    ).fetchall()
    out: dict[str, dict] = {}
    for eid, at, actor, recipient, state, version, cid, file, sha in rows:
        e = out.setdefault(eid, {"export_id": eid, "at": at, "actor": actor, "recipient": recipient,
                                 "state": state, "policy_version": version, "clip_ids": [], "files": []})
        e["clip_ids"].append(cid)
        e["files"].append({"clip_id": cid, "file": file, "sha256": sha})
    return list(out.values())


def exports_containing(db: Database, clip_ids: Sequence[int]) -> list[dict]:
    """Every export (not failed) that contained any of the clips: when, by whom, to whom, which files.

    Only the items for the given clips are listed. For access requests
    ("was my voice exported?") and recalls.
    """
    ids = [int(c) for c in clip_ids]
    if not ids:
        return []
    return _export_rows(db, f"i.clip_id IN ({','.join('?' * len(ids))})", ids)


def recalls(db: Database, *, include_done: bool = False) -> list[dict]:
    """Earlier exports that contained clips withdrawn since: the files to ask recipients to delete.

    An item is listed when its clip was withdrawn after the export, or is
    withdrawn now. Each export lists only those items, with when and why
    each clip was withdrawn. An item whose deletion the recipient confirmed
    (:func:`mark_recall_done`) after its withdrawal is left out, unless
    ``include_done``; each export carries ``done_at`` (its last confirmation).
    """
    found = _export_rows(
        db,
        """(EXISTS (SELECT 1 FROM clip_withdrawals w WHERE w.clip_id = i.clip_id AND w.at >= e.at)
            OR EXISTS (SELECT 1 FROM clips c WHERE c.id = i.clip_id AND c.status = 'withdrawn'))""",
        [],
    )
    for e in found:
        for f in e["files"]:
            w = db.execute(
                "SELECT at, reason, note_id FROM clip_withdrawals WHERE clip_id = ? AND at >= ? ORDER BY at LIMIT 1",
                [f["clip_id"], e["at"]],
            ).fetchone()
            f["withdrawn_at"], f["reason"] = (w[0], w[1]) if w else (None, None)
            f["reason_text"] = withdrawal_reason(db, w[1], w[2]) if w else None
        done = db.execute("SELECT max(at) FROM recall_confirmations WHERE export_id = ?", [e["export_id"]]).fetchone()[0]
        e["done_at"] = done
        if done and not include_done:
            e["files"] = [f for f in e["files"] if (f["withdrawn_at"] or "") > done]
            e["clip_ids"] = [f["clip_id"] for f in e["files"]]
    return found if include_done else [e for e in found if e["files"]]


def mark_recall_done(db: Database, export_id: str, *, actor: str, note: str | None = None) -> dict:
    """The recipient of an export confirmed they deleted its recalled files; logged, and it leaves the recall list.

    Raises
    ------
    NotFound
        If the export has nothing open to recall.
    """
    open_ = [e for e in recalls(db) if e["export_id"] == export_id]
    if not open_:
        raise NotFound(f"export {export_id!r} has no open recall (unknown, or its deletion was already confirmed)")
    files = open_[0]["files"]
    text = notes.clean(note, name="the note", required=False)
    with transaction(db):
        recs = [r[0] for r in db.execute("SELECT DISTINCT recording_id FROM export_items WHERE export_id = ? "
                                         "AND recording_id IS NOT NULL", [export_id])]
        note_id = None if text is None else notes.add(db, kind="export.recall_done", text=text, actor=actor,
                                                      recordings=recs)
        now = now_iso()
        db["recall_confirmations"].insert({"export_id": export_id, "at": now, "actor": actor, "note_id": note_id})
        auditlog.append(db, kind="export.recall_done", actor=actor,
                        data={"export_id": export_id, "clips": [f["clip_id"] for f in files], "confirmation_note": note_id})
    return {"export_id": export_id, "confirmed_at": now, "files": len(files)}


def last_withdrawal(db: Database, clip_id: int) -> dict | None:
    """When, by whom and why the clip was last withdrawn (``{"at", "actor", "reason"}``), or None."""
    w = db.execute("SELECT at, actor, reason, note_id FROM clip_withdrawals WHERE clip_id = ? ORDER BY at DESC, id DESC "
                   "LIMIT 1", [clip_id]).fetchone()
    return None if w is None else {"at": w[0], "actor": w[1], "reason": withdrawal_reason(db, w[2], w[3])}


def withdrawal_reason(db: Database, code: str, note_id: int | None) -> str:
    """A withdrawal's reason in words: the typed note for one made by hand, else what the code means."""
    if note_id is not None:
        return notes.texts(db, [note_id]).get(note_id, notes.CLEARED)
    return WITHDRAW_CODES.get(code, code)
