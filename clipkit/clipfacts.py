"""What the export policy looks at for one clip, read from the database, and whether its rendering is current.

:mod:`clipkit.policy` decides from :class:`~clipkit.policy.ClipFacts`; this
module gathers them (parties heard and their consent, erasure, retention,
the current rendering). Both :mod:`clipkit.rendering` (approval) and
:mod:`clipkit.export` (export, recalls) ask it, so neither imports the other.
A rendering is current when its ``input_hash`` (source bytes, range,
redactions, method version) matches the clip as it is now and it was made
under the installation's caller-voice setting (:mod:`clipkit.pseudovoices`).
Uses only the database: deciding currency never imports the DSP stack.
"""

from __future__ import annotations

import hashlib
import json

from sqlite_utils import Database

from . import consent, library, policy, pseudovoices
from .db import now_iso


def input_hash(recording: dict, clip: dict, method_version: str) -> str:
    body = json.dumps(
        {"source": recording["sha256"], "start": clip["start_s"], "end": clip["end_s"],
         "redactions": clip["redactions"], "method": method_version},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def current_rendering(db: Database, clip: dict) -> dict | None:
    """The newest rendering that matches the clip as it is now, else None.

    Uses only the database: the method version is read off the stored row, so
    deciding currency never imports the DSP stack. A rendering made under
    another caller-voice setting (:mod:`clipkit.pseudovoices`) is not current.
    """
    recording = library.get_recording(db, clip["recording_id"])
    redactions = clip["redactions"] if isinstance(clip["redactions"], list) else json.loads(clip["redactions"])
    state = dict(clip, redactions=redactions)
    mode = pseudovoices.caller_voice(db)
    for row in db.query("SELECT * FROM renderings WHERE clip_id = ? AND caller_voice = ? ORDER BY id DESC",
                        [clip["id"], mode]):
        if row["input_hash"] == input_hash(recording, state, row["method_version"]):
            row["figures"] = json.loads(row["figures"])
            return row
    return None


def gather(db: Database, clip_id: int, *, now: str) -> tuple[policy.ClipFacts, dict | None, dict]:
    """The clip's facts, its current rendering (or None) and the clip row, read in one go."""
    clip = library.get_clip(db, clip_id)
    recording = library.get_recording(db, clip["recording_id"])
    heard = []
    erased = False
    for party in library.clip_parties_heard(db, clip):
        if not db.execute("SELECT 1 FROM parties WHERE ref = ?", [party["ref"]]).fetchone():
            erased = True  # the person was erased; nothing of theirs may leave
        elif db.execute("SELECT 1 FROM erasure_jobs WHERE party_ref = ?", [party["ref"]]).fetchone():
            # their erasure is under way, e.g. waiting for a legal hold to end: the hold keeps
            # the recording for the dispute, never for training
            erased = True
        training = consent.current(db, party["ref"], now=now)["training"]
        heard.append(policy.PartyStatus(ref=party["ref"], role=party["role"],
                                        consent=training["consent"], objection=training["objection"]))
    if recording.get("erased_at"):
        erased = True
    if db.execute("SELECT 1 FROM pending_deletions WHERE path = ?", [recording["path"]]).fetchone():
        erased = True  # its audio is queued for deletion (purge or erasure under way)
    current = current_rendering(db, clip)
    facts = policy.ClipFacts(
        clip_id=clip["id"], status=clip["status"], basis=recording["basis"], parties=tuple(heard),
        rendering_method=current["method"] if current else None,
        retention_until=recording["retention_until"], on_hold=bool(recording.get("hold_reason")), erased=erased,
    )
    return facts, current, clip


def clip_facts(db: Database, clip_id: int, *, now: str | None = None) -> policy.ClipFacts:
    """The facts :func:`clipkit.policy.decide` needs about one clip, read from the database.

    Raises
    ------
    NotFound
        If the clip does not exist.
    """
    return gather(db, clip_id, now=now or now_iso())[0]


def decide(db: Database, clip_id: int, *, allow_weak: bool = False, now: str | None = None) -> policy.Decision:
    """The export decision for one clip as of now (nothing is logged)."""
    now = now or now_iso()
    return policy.decide(clip_facts(db, clip_id, now=now), now=now, allow_weak=allow_weak)


def approval_blockers(db: Database, clip_id: int, *, now: str | None = None) -> list[dict]:
    """Reasons a withdrawn clip may not be approved again (empty list: it may).

    For :func:`clipkit.rendering.approve`: lifting an objection never
    re-publishes a clip; a manager approves again, and only when no party
    heard objects (or lacks consent on a consent basis) and the recording is
    neither erased nor past retention.
    """
    now = now or now_iso()
    return [r.as_dict() for r in policy.approval_blockers(clip_facts(db, clip_id, now=now), now=now)]
