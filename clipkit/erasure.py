"""Erasure (GDPR Art. 17): remove a person's recordings, everything derived, and the tie to them.

Order of work, each step safe to repeat:

1. finish any deletion a crash interrupted (:func:`clipkit.retention.finish_pending`);
2. write an ``erasure_jobs`` row (party ref, request, exports to recall);
3. :func:`clipkit.withdrawal.recall_party` withdraws every clip the person is
   heard in and returns the earlier exports whose recipients must be asked
   to delete; they are kept in the job row so a rerun still reports them;
4. :func:`clipkit.retention.delete_recordings` deletes every recording the
   person is a party to — unless on legal hold — with clips, renderings and
   files (rows and file queue in one transaction, then files);
5. one transaction deletes the ``parties`` row (the only link from the
   opaque ref to the pseudonym), the consent rows, clears the free text of
   their requests, inserts the keyed suppression token, closes the request,
   drops the job row and writes a tombstone event (request id, counts);
6. the full-text index is merged, the WAL checkpointed and the file vacuumed
   (steps 4 and 5 leave a mark that only a finished scrub removes, so a
   scrub another reader kept busy is repeated by the next erasure or purge).

A crash anywhere leaves a state that a rerun of the same command finishes.
Once step 5 committed the person is unknown: a second erasure answers
:class:`~clipkit.errors.NotFound` ("erased earlier, nothing left"; exit 1).

A recording on legal hold is kept whole (its clips are withdrawn by the
recall, so they are no longer used). The person then still has stored
data, so step 5 is skipped except for the suppression token: the
``parties`` row, consent history and request notes stay, because they
belong to data we still hold, and the erasure request stays open. When the
hold is released, ``clipkit hold release`` names the waiting request and a
rerun of the erasure finishes the job.
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from . import auditlog, coaching, consent, copies, notes, parties, requests, retention, store, users, withdrawal
from .db import now_iso, transaction
from .errors import BadInput, NotFound
from .home import Home

CLEARED = "[cleared at erasure]"


def _resolve(db: Database, home: Home, *, identifier: str | None, request_id: int | None) -> tuple[dict, dict | None]:
    if identifier is not None:
        party = requests.resolve_party(db, home, identifier)
        return party, requests.matching_request(db, party["ref"], "erasure", request_id)
    request = requests.get(db, request_id)
    if request["kind"] != "erasure":
        raise BadInput(f"request {request_id} is an {request['kind']} request, not an erasure request")
    try:
        party = parties.get(db, request["party_ref"])
    except NotFound:
        raise NotFound(f"the person of request {request_id} was erased earlier (nothing left)") from None
    return party, request


def plan(db: Database, home: Home, party: dict) -> dict:
    """What erasing a party would delete and what it would refuse (nothing is changed).

    Returns
    -------
    dict
        ``{"recordings": [{"id", "recorded_at", "role", "clips", "held", "hold_reason"}],
        "erase": [ids], "refused": [{"recording", "reason"}], "clips", "renderings", "files",
        "exports": [...]}``.
    """
    ref = party["ref"]
    rows = list(db.query(
        "SELECT id, recorded_at, caller_ref, hold_reason FROM recordings WHERE caller_ref = ? OR agent_ref = ? "
        "ORDER BY recorded_at, id", [ref, ref]))
    free = [r["id"] for r in rows if not r["hold_reason"]]
    work = retention.derived(db, free)
    every = retention.derived(db, [r["id"] for r in rows])
    recordings = []
    for r in rows:
        n = db.execute("SELECT count(*) FROM clips WHERE recording_id = ?", [r["id"]]).fetchone()[0]
        recordings.append({"id": r["id"], "recorded_at": r["recorded_at"],
                           "role": "caller" if r["caller_ref"] == ref else "agent", "clips": n,
                           "held": bool(r["hold_reason"]), "hold_reason": r["hold_reason"]})
    _, exports = requests.exports_by_clip(db, every["clips"])
    return {
        "copies": copies.plan(db, recording_ids=[r["id"] for r in rows], party_ref=ref),
        "recordings": recordings, "erase": free,
        "refused": [{"recording": r["id"], "reason": f"on legal hold: {r['hold_reason']}"} for r in rows if r["hold_reason"]],
        "clips": len(work["clips"]), "renderings": len(work["renderings"]), "files": len(work["files"]),
        "file_paths": [path for path, _ in work["files"]],
        "exports": exports, "all_clips": every["clips"],
    }


def _recall(db: Database, home: Home, party_ref: str, clip_ids: list[int], *, actor: str) -> list[dict]:
    """Withdraw the person's clips (logged by the export register) and list every export that held any.

    Every export, not only those of clips newly withdrawn: a clip withdrawn
    earlier (an objection) may still sit at a recipient.
    """
    # home: a held recording stays, and without training clips its keep-until date shortens now
    withdrawal.recall_party(db, party_ref, actor=actor, reason="erasure", home=home)
    return requests._jsonable(withdrawal.exports_containing(db, clip_ids))


def _merge_exports(old: list[dict], new: list[dict]) -> list[dict]:
    by_id = {e["export_id"]: e for e in old}
    by_id.update({e["export_id"]: e for e in new})
    return sorted(by_id.values(), key=lambda e: (e.get("at") or "", e["export_id"]))


def erase(
    db: Database,
    home: Home,
    *,
    identifier: str | None = None,
    request_id: int | None = None,
    actor: str,
    dry_run: bool = False,
) -> dict:
    """Erase everything stored about one person (see the module docstring for the steps).

    Parameters
    ----------
    identifier
        The person's phone, customer or employee number. May be omitted when
        ``request_id`` names an erasure request (its person is then used).
    request_id
        The erasure request this answers; default: the person's oldest open one.
    dry_run
        Report what would be deleted and refused; change nothing.

    Returns
    -------
    dict
        ``{"dry_run", "request", "recordings": [...], "erased": {"recordings", "clips", "renderings",
        "files"}, "refused": [...], "exports_to_recall": [...], "party_removed", "request_closed"}``.
        ``refused`` non-empty means held recordings were kept (the CLI exits 3).

    Raises
    ------
    BadInput
        With neither identifier nor request, or a request of another kind/person.
    NotFound
        For an unknown person, or one erased earlier ("nothing left").
    """
    if identifier is None and request_id is None:
        raise BadInput("say whose data to erase with --caller ID, --agent ID or --request REQUEST_ID")
    finished = 0 if dry_run else retention.finish_pending(db, home)
    try:
        party, request = _resolve(db, home, identifier=identifier, request_id=request_id)
    except NotFound:
        if finished or retention.scrub_pending(db):
            # a crashed run's leftovers were just removed, or its last scrub was kept busy
            retention.scrub_database(db)
        raise
    ref = party["ref"]
    rid = request["id"] if request else None
    canonical = None
    if identifier is not None:
        canonical = parties.canonical_identifier(identifier, region=home.config["phone_region"])
    work = plan(db, home, party)
    out = {"dry_run": dry_run, "request": rid, "recordings": work["recordings"], "refused": work["refused"],
           "erased": {"recordings": 0, "clips": 0, "renderings": 0, "files": 0},
           "exports_to_recall": work["exports"], "party_removed": False, "request_closed": False}
    if dry_run:
        out["would_erase"] = {"recordings": len(work["erase"]), "clips": work["clips"],
                              "renderings": work["renderings"], "files": work["files"]}
        out["orphans"] = store.orphans(db, home)
        out["copies"] = work["copies"]
        out["file_paths"] = work["file_paths"]  # inside the data home; copies outside it are in "copies"
        return out

    with transaction(db):
        db["erasure_jobs"].insert({"party_ref": ref, "request_id": rid, "started_at": now_iso(), "started_by": actor},
                                  ignore=True)
    recalled = _recall(db, home, ref, work["all_clips"], actor=actor)
    stored = json.loads(db.execute("SELECT exports FROM erasure_jobs WHERE party_ref = ?", [ref]).fetchone()[0])
    stored = _merge_exports(stored, recalled)
    with transaction(db):
        db.execute("UPDATE erasure_jobs SET exports = ? WHERE party_ref = ?", [json.dumps(stored), ref])
    out["exports_to_recall"] = stored

    def count(event: dict) -> None:
        db.execute("UPDATE erasure_jobs SET recordings = recordings + ?, clips = clips + ?, "
                   "renderings = renderings + ? WHERE party_ref = ?",
                   [len(event["recordings"]), event["clips"], event["renderings"], ref])

    res = retention.delete_recordings(db, home, work["erase"], actor=actor, kind="erasure.recordings",
                                      data={"request": rid}, with_rows=count)
    # the copies of held calls' clips and the person's own access bundles, wherever clipkit wrote them
    rest = copies.plan(db, recording_ids=[r["id"] for r in work["recordings"]], party_ref=ref)
    if rest["exports"] or rest["bundles"]:
        with transaction(db):
            copies.queue(db, rest, now=now_iso())
        retention.finish_pending(db, home)
    out["copies"] = {k: res["copies"][k] + rest[k] for k in ("exports", "bundles")}
    # totals over every run: a rerun after a crash reports what the first run deleted too
    totals = dict(zip(("recordings", "clips", "renderings"), db.execute(
        "SELECT recordings, clips, renderings FROM erasure_jobs WHERE party_ref = ?", [ref]).fetchone()))
    out["erased"] = {**totals, "files": res["files"]}
    secret = home.secret()
    token = parties.suppression_token(secret, party["pseudonym"])
    tombstone = {"request": rid, **totals, "exports_to_recall": len(stored)}
    now = now_iso()
    if work["refused"]:
        with transaction(db):
            # the person asked: a later import of their calls is flagged even though some data stays
            db["suppressed"].insert({"token": token, "erased_at": now}, ignore=True)
            tombstone.update(decision="partial" if totals["recordings"] else "refused", reason="legal_hold",
                             held=[r["recording"] for r in work["refused"]])
            auditlog.append(db, kind="erasure", actor=actor, data=tombstone)
    else:
        with transaction(db):
            # consent rows may only go once the parties row is gone (their trigger); any
            # foreign key to parties is checked at COMMIT, when both are gone
            db.execute("PRAGMA defer_foreign_keys = ON")
            # identifiers merged into this person resolve to nobody from now on, and are suppressed too
            for alias in parties.pseudonyms_of(db, ref)[1:]:
                db["suppressed"].insert({"token": parties.suppression_token(secret, alias), "erased_at": now},
                                        ignore=True)
            db.execute("DELETE FROM party_aliases WHERE ref = ?", [ref])
            # an erased agent's coaching reviews go, and their login with its sessions
            tombstone["reviews"] = coaching.forget_agent(db, ref, now=now)
            tombstone["accounts"] = users.forget_agent_account(db, ref)
            db.execute("DELETE FROM parties WHERE ref = ?", [ref])
            # free text about them: notes tied to them, and any note or recipient that names their identifier
            mentioned = [canonical] if canonical else []
            cleared = notes.scrub(db, party_refs=[ref], identifiers=mentioned)
            for eid, recipient in db.execute("SELECT id, recipient FROM exports WHERE recipient IS NOT NULL").fetchall():
                if any(notes.mentions(recipient, c) for c in mentioned):
                    db.execute("UPDATE exports SET recipient = ? WHERE id = ?", [notes.CLEARED, eid])
                    cleared += 1
            if canonical:
                cleared += coaching.scrub_mentions(db, canonical)
            tombstone["notes_cleared"] = cleared
            consent.forget(db, ref)
            db.execute(
                """UPDATE requests SET note = NULL, extension_reason = NULL,
                       outcome = CASE WHEN outcome IS NULL THEN NULL ELSE ? END
                   WHERE party_ref = ?""", [CLEARED, ref])
            db["suppressed"].insert({"token": token, "erased_at": now}, ignore=True)
            if request and not request["closed_at"]:
                requests._close(db, rid, actor=actor, outcome=(
                    f"erased: {tombstone['recordings']} recording(s), {tombstone['clips']} clip(s), "
                    f"{tombstone['renderings']} rendering(s); {tombstone['exports_to_recall']} earlier export(s) to recall"))
                out["request_closed"] = True
            db.execute("DELETE FROM erasure_jobs WHERE party_ref = ?", [ref])
            retention.mark_scrub_pending(db)
            tombstone["decision"] = "done"
            auditlog.append(db, kind="erasure", actor=actor, data=tombstone)
        out["party_removed"] = True
    # audio a crashed process left in the store with no row: nobody can say whose it is, so it goes too
    out["orphans_removed"] = store.sweep(db, home)
    retention.scrub_database(db)
    return out
