"""One-on-one coaching: monthly call reviews per agent, timestamped comments, a scorecard, the agent's reply.

Each month a supervisor listens to a few calls of every agent and then goes
through them *with* the agent. That is processing for the ``quality``
purpose, not training: a caller who objected to training may still be heard
in a review unless they objected to quality use too (:mod:`clipkit.coaching_policy`).

A **review** is one recording (whole, or a range) for the agent who took it,
moving ``draft → shared → acknowledged`` (and ``closed``), with a reviewer,
comments at times in the call, a scorecard (criteria and scale from
``config.json``, default greeting, verification, listening, solution, tone,
closing, 1-5, plus an overall note) and the agent's reply.

**What the agent hears**: their own channel unaltered, the caller's channel
anonymized with the strong method — the same keyed voice the caller has in
every clip — and the review's redaction spans on both (by default the spans
of the call's clips). A mono mixed recording has no separate channels: the
whole mix is anonymized, and the review says so (``mixed``). The audio is
rendered through :func:`clipkit.anonymize.render` (block-streamed) into the
store, cached per review with its own input hash, stale when the range or
redactions change.

Every share, play (allowed or refused), acknowledgement and close goes
through the one log write path; comments and replies are text about a
person's work and stay out of the log.

Rights: an agent's access bundle includes their reviews; erasing an agent
deletes their reviews; erasing a caller (or purging the call) leaves the
review as the agent's record but takes its audio (the review says the audio
is gone); reviews are kept ``review_retention_days`` (default 365) and purge
removes older ones through the one deletion path.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog, coaching_policy, consent, library, notes, parties, pseudovoices, store, users
from .db import now_iso, transaction
from .errors import BadInput, ClipkitError, NotFound, PolicyRefusal
from .home import Home

STATUSES = coaching_policy.STATUSES
DEFAULT_CRITERIA = ("greeting", "verification", "listening", "solution", "tone", "closing")
DEFAULT_SCALE = (1, 5)
DEFAULT_REVIEW_RETENTION_DAYS = 365
MAX_COMMENT = 2000
REVIEW_METHOD = "review-strong-v7"  # caller: strong (as clips), agent: unaltered

migrations = Migrations("clipkit.coaching")


@migrations()
def m001_reviews(db: Database) -> None:
    # No foreign key to recordings: a review is the agent's record and outlives an erased call
    # (its audio is then gone, and the review says so).
    db.execute(
        """
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            recording_id INTEGER NOT NULL,
            agent_ref TEXT NOT NULL,
            month TEXT NOT NULL,              -- YYYY-MM of the call
            start_s REAL NOT NULL,
            end_s REAL NOT NULL,
            channels TEXT NOT NULL CHECK (channels IN ('stereo', 'mixed')),
            redactions TEXT NOT NULL DEFAULT '[]',   -- [[start_s, end_s, mode]] in call time
            status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'shared', 'acknowledged', 'closed')),
            why TEXT NOT NULL CHECK (why IN ('random', 'difficult', 'chosen')),
            reviewer TEXT NOT NULL,
            created_at TEXT NOT NULL,
            shared_at TEXT,
            acknowledged_at TEXT,
            closed_at TEXT,
            overall_note TEXT,
            reply TEXT,
            audio_gone_at TEXT,               -- when the call's audio was erased or purged
            CHECK (start_s >= 0 AND end_s > start_s)
        )
        """
    )
    db.execute("CREATE INDEX reviews_agent ON reviews(agent_ref, month)")
    db.execute("CREATE INDEX reviews_recording ON reviews(recording_id)")
    db.execute(
        """
        CREATE TABLE review_comments (
            id INTEGER PRIMARY KEY,
            review_id INTEGER NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
            at_s REAL NOT NULL,               -- seconds in the recording
            text TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX review_comments_review ON review_comments(review_id, at_s)")
    db.execute(
        """
        CREATE TABLE review_scores (
            review_id INTEGER NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
            criterion TEXT NOT NULL,
            value INTEGER NOT NULL,
            scored_by TEXT NOT NULL,
            scored_at TEXT NOT NULL,
            PRIMARY KEY (review_id, criterion)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE review_renderings (
            id INTEGER PRIMARY KEY,
            review_id INTEGER NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
            recording_id INTEGER NOT NULL,
            input_hash TEXT NOT NULL,
            path TEXT NOT NULL,               -- relative to the data home
            sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX review_renderings_review ON review_renderings(review_id)")
    db.execute("CREATE INDEX review_renderings_recording ON review_renderings(recording_id)")


# ---------------------------------------------------------------- settings


def scorecard(home: Home) -> dict:
    """``{"criteria": [...], "scale": [lo, hi]}`` from ``config.json`` (``scorecard``), validated."""
    conf = home.config.get("scorecard") or {}
    criteria = conf.get("criteria", list(DEFAULT_CRITERIA))
    scale = conf.get("scale", list(DEFAULT_SCALE))
    where = home.root / "config.json"
    if (not isinstance(criteria, list) or not criteria
            or not all(isinstance(c, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,39}", c) for c in criteria)
            or len(set(criteria)) != len(criteria)):
        raise BadInput(f"scorecard.criteria in {where} must be distinct lower-case names; it is {criteria!r}")
    if (not isinstance(scale, list) or len(scale) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                    for v in scale) or scale[0] >= scale[1]):
        raise BadInput(f"scorecard.scale in {where} must be [low, high] whole numbers; it is {scale!r}")
    return {"criteria": list(criteria), "scale": list(scale)}


def review_retention_days(home: Home) -> int:
    value = home.config.get("review_retention_days", DEFAULT_REVIEW_RETENTION_DAYS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(f"review_retention_days in {home.root / 'config.json'} must be a whole number of days "
                       f"(1 or more); it is {value!r}")
    return value


# ---------------------------------------------------------------- agents


def _agent_party(db: Database, home: Home, identifier: str, *, create: bool) -> dict:
    secret, region = home.secret(), home.config["phone_region"]
    if create:
        with transaction(db):
            return parties.ensure(db, secret, identifier, region=region, now=now_iso())
    return parties.lookup(db, secret, identifier, region=region)


def add_agent_account(db: Database, home: Home, name: str, *, agent: str, password: str | None = None,
                      actor: str = "cli") -> str:
    """Create an ``agent`` login bound to an agent identifier (canonicalised and pseudonymised); returns the password.

    Raises
    ------
    BadInput
        For an empty identifier, one that is a *caller* in some call, or an
        agent who has an account already (one per agent).
    """
    if not agent or not str(agent).strip():
        raise BadInput("--agent must name the agent's identifier (employee id)")
    party = _agent_party(db, home, agent, create=True)
    if db.execute("SELECT 1 FROM recordings WHERE caller_ref = ? LIMIT 1", [party["ref"]]).fetchone():
        raise BadInput("that identifier is a caller in the library, not an agent")
    return users.add_user(db, name, role="agent", password=password, actor=actor, agent_ref=party["ref"])


def label_agent(db: Database, home: Home, identifier: str, name: str, *, actor: str) -> dict:
    """Give an agent the display name managers know them by; callers are never labelled.

    Raises
    ------
    NotFound
        For an identifier nobody has.
    BadInput
        For an empty name, or an identifier that is a caller in some call.
    """
    name = library.clean_text(name, name="--name", limit=80, required=True)
    row = _agent_party(db, home, identifier, create=False)
    if db.execute("SELECT 1 FROM recordings WHERE caller_ref = ? LIMIT 1", [row["ref"]]).fetchone():
        raise BadInput("that identifier is a caller; only agents (staff) get a display name")
    with transaction(db):
        db.execute("UPDATE parties SET display_name = ? WHERE ref = ?", [name, row["ref"]])
        auditlog.append(db, kind="party.label", actor=actor, data={"party": row["ref"]})
    return {"party": row["ref"], "label": row["label"], "name": name}


def agent_name(db: Database, ref: str) -> str:
    """How managers see an agent: the display name, else the hint label, else "(erased)"."""
    row = db.execute("SELECT display_name, label FROM parties WHERE ref = ?", [ref]).fetchone()
    if row is None:
        return "(erased)"
    return row[0] or row[1]


# ---------------------------------------------------------------- reviews


def _review(db: Database, review_id: int) -> dict:
    rows = list(db.query("SELECT * FROM reviews WHERE id = ?", [int(review_id)]))
    if not rows:
        raise NotFound(f"no review with id {review_id}")
    r = rows[0]
    r["redactions"] = json.loads(r["redactions"])
    return r


def get(db: Database, review_id: int, *, with_comments: bool = True) -> dict:
    """A review with its scores, comments (by time) and the agent's display name."""
    r = _review(db, review_id)
    r["agent_name"] = agent_name(db, r["agent_ref"])
    r["scores"] = {c: v for c, v in db.execute(
        "SELECT criterion, value FROM review_scores WHERE review_id = ? ORDER BY criterion", [r["id"]])}
    if with_comments:
        r["comments"] = list(db.query(
            "SELECT id, at_s, text, author, created_at FROM review_comments WHERE review_id = ? ORDER BY at_s, id",
            [r["id"]]))
    r["audio_gone"] = r["audio_gone_at"] is not None or not db.execute(
        "SELECT 1 FROM recordings WHERE id = ?", [r["recording_id"]]).fetchone()
    return r


def _clip_redactions(db: Database, recording_id: int, start_s: float, end_s: float) -> list[list]:
    """The call's clips' redaction spans in call time, clipped to the range: what is beeped in a clip is beeped here."""
    out = []
    for clip_start, spans in db.execute("SELECT start_s, redactions FROM clips WHERE recording_id = ?",
                                        [recording_id]):
        for a, b, mode in json.loads(spans):
            s0, s1 = max(start_s, clip_start + a), min(end_s, clip_start + b)
            if s1 > s0:
                out.append([round(s0, 3), round(s1, 3), mode])
    return sorted(out)


def create_review(db: Database, home: Home, recording_id: int, *, start_s: float | None = None,
                  end_s: float | None = None, reviewer: str, why: str = "chosen") -> dict:
    """A draft review of one call (whole, or ``start_s``-``end_s``) for the agent who took it.

    Raises
    ------
    NotFound
        For an unknown (or erased) recording.
    BadInput
        For a range outside the call, or an empty reviewer.
    """
    if not reviewer or not str(reviewer).strip():
        raise BadInput("--reviewer must name who reviews")
    rec = library.get_recording(db, recording_id)
    duration = float(rec["duration_s"])
    a = 0.0 if start_s is None else float(start_s)
    b = duration if end_s is None else float(end_s)
    if not (0 <= a < b <= duration + 5e-4):
        raise BadInput(f"--start {a:g} and --end {b:g} must lie within the call (0–{library.shown_duration(duration):.3f} s)"
                       " with the end after the start")
    b = min(b, duration)
    cmap = "mixed" if rec["channel_map"] == "mixed" else "stereo"
    now = now_iso()
    with transaction(db):
        rid = db["reviews"].insert({
            "recording_id": rec["id"], "agent_ref": rec["agent_ref"], "month": rec["recorded_at"][:7],
            "start_s": round(a, 3), "end_s": library.shown_duration(b), "channels": cmap,
            "redactions": json.dumps(_clip_redactions(db, rec["id"], a, b)), "status": "draft", "why": why,
            "reviewer": str(reviewer).strip(), "created_at": now,
        }).last_pk
        auditlog.append(db, kind="review.create", actor=str(reviewer).strip(),
                        data={"review": rid, "recording": rec["id"], "agent": rec["agent_ref"], "why": why})
    return get(db, rid)


def comment(db: Database, review_id: int, *, at_s: float, text: str, author: str) -> dict:
    """A comment at ``at_s`` seconds of the recording, inside the reviewed range (text stays out of the log).

    Raises
    ------
    BadInput
        For a time outside the reviewed range, empty or over-long text, or a closed review.
    """
    r = _review(db, review_id)
    if r["status"] == "closed":
        raise BadInput(f"review {review_id} is closed")
    try:
        at = float(at_s)
    except (TypeError, ValueError):
        raise BadInput(f"--at {at_s!r} must be seconds in the call") from None
    if not (r["start_s"] <= at <= r["end_s"]):
        raise BadInput(f"--at {at:g} is outside the reviewed range {r['start_s']:g}–{r['end_s']:g} s "
                       "(seconds in the call)")
    text = library.clean_text(text, name="--text", limit=MAX_COMMENT, required=True)
    with transaction(db):
        cid = db["review_comments"].insert({"review_id": r["id"], "at_s": round(at, 2), "text": text,
                                            "author": author, "created_at": now_iso()}).last_pk
        auditlog.append(db, kind="review.comment", actor=author, data={"review": r["id"], "comment": cid})
    return get(db, r["id"])


def score(db: Database, home: Home, review_id: int, values: dict, *, actor: str,
          overall_note: str | None = None) -> dict:
    """Set scorecard values (``{criterion: value}``) and, optionally, the overall note.

    Raises
    ------
    BadInput
        For an unknown criterion or a value off the scale (nothing is changed), or a closed review.
    """
    card = scorecard(home)
    lo, hi = card["scale"]
    r = _review(db, review_id)
    if r["status"] == "closed":
        raise BadInput(f"review {review_id} is closed")
    clean = {}
    for k, v in values.items():
        if k not in card["criteria"]:
            raise BadInput(f"criterion {k!r} is not one of {', '.join(card['criteria'])}")
        try:
            n = int(v)
            if isinstance(v, bool) or str(v).strip() not in (str(n), f"{n}.0") and not isinstance(v, int):
                raise ValueError
        except (TypeError, ValueError):
            raise BadInput(f"{k}={v!r} must be a whole number from {lo} to {hi}") from None
        if not lo <= n <= hi:
            raise BadInput(f"{k}={n} is off the scale {lo}–{hi}")
        clean[k] = n
    note = library.clean_text(overall_note, name="the overall note", limit=MAX_COMMENT) if overall_note else None
    now = now_iso()
    with transaction(db):
        for k, n in clean.items():
            db["review_scores"].upsert({"review_id": r["id"], "criterion": k, "value": n, "scored_by": actor,
                                        "scored_at": now}, pk=("review_id", "criterion"))
        if note is not None:
            db.execute("UPDATE reviews SET overall_note = ? WHERE id = ?", [note, r["id"]])
        auditlog.append(db, kind="review.score", actor=actor,
                        data={"review": r["id"], "criteria": sorted(clean), "note": note is not None})
    return get(db, r["id"])


def _facts(db: Database, home: Home, r: dict, *, role: str, viewer_agent_ref: str | None,
           now: str) -> coaching_policy.ReviewFacts:
    rec = db.execute("SELECT caller_ref, retention_until FROM recordings WHERE id = ?", [r["recording_id"]]).fetchone()
    objects = False
    until = None
    if rec is not None:
        caller_ref, until = rec
        objects = consent.current(db, caller_ref, now=now)["quality"]["objection"] == "active"
    account = db.execute("SELECT disabled_at FROM users WHERE agent_ref = ?", [r["agent_ref"]]).fetchone()
    has_content = bool(db.execute("SELECT 1 FROM review_comments WHERE review_id = ? UNION ALL "
                                  "SELECT 1 FROM review_scores WHERE review_id = ? LIMIT 1",
                                  [r["id"], r["id"]]).fetchone()) or bool(r.get("overall_note"))
    return coaching_policy.ReviewFacts(
        status=r["status"], caller_objects_quality=objects, audio_gone=rec is None or r["audio_gone_at"] is not None,
        retention_until=until, agent_disabled=bool(account and account[0]), has_content=has_content,
        viewer_role=role, viewer_is_agent_of_review=viewer_agent_ref == r["agent_ref"],
    )


def decide(db: Database, home: Home, review_id: int, *, action: str, role: str,
           viewer_agent_ref: str | None = None) -> coaching_policy.Verdict:
    """The policy's verdict for one review and viewer, now (nothing is logged)."""
    now = now_iso()
    return coaching_policy.decide(_facts(db, home, _review(db, review_id), role=role,
                                         viewer_agent_ref=viewer_agent_ref, now=now), action=action, now=now)


def _refuse(verdict: coaching_policy.Verdict, what: str) -> None:
    raise PolicyRefusal(f"{what}: " + "; ".join(m for _, m in verdict.reasons),
                        reasons=verdict.as_dicts())


def share(db: Database, home: Home, review_id: int, *, actor: str) -> dict:
    """Share a review with its agent (and render what they will hear); the decision is logged first.

    Raises
    ------
    PolicyRefusal
        With every reason (objection to quality use, audio gone, past retention, agent disabled, empty review).
    BadInput
        For a review that is not a draft.
    """
    r = _review(db, review_id)
    if r["status"] != "draft":
        raise BadInput(f"review {review_id} is {r['status']}, not a draft; it was shared on {(r['shared_at'] or '')[:10]}")
    with transaction(db):
        now = now_iso()
        verdict = coaching_policy.decide(_facts(db, home, r, role="manager", viewer_agent_ref=None, now=now),
                                         action="share", now=now)
        auditlog.append(db, kind="review.share", actor=actor,
                        data={"review": r["id"], "decision": "allowed" if verdict.allowed else "refused",
                              "reasons": verdict.codes})
        if verdict.allowed:
            db.execute("UPDATE reviews SET status = 'shared', shared_at = ? WHERE id = ?", [now, r["id"]])
    if not verdict.allowed:
        _refuse(verdict, f"review {review_id} cannot be shared")
    audio_file(db, home, r["id"])  # render now, so the agent's first play does not wait
    return get(db, r["id"])


def acknowledge(db: Database, review_id: int, *, agent_ref: str, actor: str, reply: str | None = None) -> dict:
    """The agent acknowledges a shared review (with a reply, optional).

    Raises
    ------
    PolicyRefusal
        For someone else's review (logged).
    BadInput
        For a review not shared (a draft, or acknowledged or closed already).
    """
    r = _review(db, review_id)
    reply = library.clean_text(reply, name="--reply", limit=MAX_COMMENT) if reply else None
    if r["agent_ref"] != agent_ref:
        auditlog.append(db, kind="review.ack", actor=actor,
                        data={"review": r["id"], "decision": "refused", "reasons": ["not_theirs"]})
        raise PolicyRefusal(f"review {review_id} is about another agent's call; only that agent acknowledges it",
                            reasons=[{"code": "not_theirs", "message": coaching_policy.MESSAGES["not_theirs"]}])
    if r["status"] != "shared":
        raise BadInput(f"review {review_id} is {r['status']}; only a shared review is acknowledged")
    with transaction(db):
        db.execute("UPDATE reviews SET status = 'acknowledged', acknowledged_at = ?, reply = ? WHERE id = ?",
                   [now_iso(), reply, r["id"]])
        auditlog.append(db, kind="review.ack", actor=actor,
                        data={"review": r["id"], "decision": "allowed", "reply": reply is not None})
    return get(db, r["id"])


def close(db: Database, review_id: int, *, actor: str) -> dict:
    r = _review(db, review_id)
    if r["status"] == "closed":
        raise BadInput(f"review {review_id} is closed already")
    with transaction(db):
        db.execute("UPDATE reviews SET status = 'closed', closed_at = ? WHERE id = ?", [now_iso(), r["id"]])
        auditlog.append(db, kind="review.close", actor=actor, data={"review": r["id"], "was": r["status"]})
    return get(db, r["id"])


def listing(db: Database, *, agent_ref: str | None = None, status: str | None = None, month: str | None = None,
            statuses: tuple[str, ...] | None = None) -> list[dict]:
    """Reviews (newest first) with the agent's name, score count and comment count; no comment text."""
    where, params = [], []
    if agent_ref is not None:
        where.append("r.agent_ref = ?")
        params.append(agent_ref)
    if status is not None:
        if status not in STATUSES:
            raise BadInput(f"--status {status!r} is not one of {', '.join(STATUSES)}")
        where.append("r.status = ?")
        params.append(status)
    if statuses:
        where.append(f"r.status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if month is not None:
        month = check_month(month)
        where.append("r.month = ?")
        params.append(month)
    sql = ("SELECT r.id, r.recording_id, r.agent_ref, r.month, r.start_s, r.end_s, r.channels, r.status, r.why, "
           "r.reviewer, r.created_at, r.shared_at, r.acknowledged_at, r.closed_at, r.audio_gone_at, "
           "(SELECT count(*) FROM review_comments c WHERE c.review_id = r.id) AS comments, "
           "(SELECT count(*) FROM review_scores s WHERE s.review_id = r.id) AS scores FROM reviews r"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id DESC")
    rows = list(db.query(sql, params))
    for r in rows:
        r["agent_name"] = agent_name(db, r["agent_ref"])
    return rows


def check_month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(text or "").strip()):
        raise BadInput(f"--month {text!r} must be YYYY-MM, e.g. 2026-05")
    return str(text).strip()


# ---------------------------------------------------------------- sampling


def sample(db: Database, home: Home, *, month: str, per_agent: int, difficult_share: float = 0.5,
           seed: int | None = None, actor: str) -> dict:
    """Draft reviews so each agent with calls in ``month`` has ``per_agent`` reviews for it.

    Running it again tops up, never duplicates. Part of each agent's new
    reviews come from their most difficult calls (when analysed; see
    :mod:`clipkit.analysis`), the rest at random (reproducible with ``seed``).
    Calls already reviewed, calls whose caller objects to quality use, and
    calls past retention are skipped (erased and purged calls are gone).

    Returns
    -------
    dict
        ``{"created": [{"review_id", "recording_id", "agent", "why"}], "skipped": [{"recording_id", "why"}],
        "per_agent": {agent_ref: {"name", "target", "existing", "created", "calls", "short"}}}``.
    """
    month = check_month(month)
    if isinstance(per_agent, bool) or not isinstance(per_agent, int) or not 1 <= per_agent <= 100:
        raise BadInput(f"--per-agent {per_agent!r} must be a whole number from 1 to 100")
    try:
        share_d = float(difficult_share)
    except (TypeError, ValueError):
        raise BadInput(f"--difficult-share {difficult_share!r} must be a number from 0 to 1") from None
    if not 0 <= share_d <= 1:
        raise BadInput(f"--difficult-share {difficult_share!r} must be a number from 0 to 1")
    now = now_iso()
    created, skipped, per_agent_out = [], [], {}
    calls = list(db.query(
        """SELECT r.id, r.agent_ref, r.caller_ref, r.retention_until, a.difficulty
           FROM recordings r LEFT JOIN analyses a ON a.recording_id = r.id
           WHERE substr(r.recorded_at, 1, 7) = ? ORDER BY r.agent_ref, r.id""", [month]))
    by_agent: dict[str, list[dict]] = {}
    for c in calls:
        by_agent.setdefault(c["agent_ref"], []).append(c)
    from datetime import datetime

    for agent_ref, rows in sorted(by_agent.items()):
        existing = db.execute("SELECT count(*) FROM reviews WHERE agent_ref = ? AND month = ?",
                              [agent_ref, month]).fetchone()[0]
        reviewed = {r[0] for r in db.execute("SELECT recording_id FROM reviews WHERE agent_ref = ?", [agent_ref])}
        pool = []
        for c in rows:
            if c["id"] in reviewed:
                skipped.append({"recording_id": c["id"], "why": "already reviewed"})
            elif consent.current(db, c["caller_ref"], now=now)["quality"]["objection"] == "active":
                skipped.append({"recording_id": c["id"], "why": "the caller objected to quality use"})
            elif datetime.fromisoformat(c["retention_until"]) <= datetime.fromisoformat(now):
                skipped.append({"recording_id": c["id"], "why": "past its keep-until date"})
            else:
                pool.append(c)
        need = max(0, per_agent - existing)
        rng = random.Random(f"{seed}:{month}:{agent_ref}" if seed is not None else secrets.token_hex(8))
        analysed = sorted([c for c in pool if c["difficulty"] is not None], key=lambda c: (-c["difficulty"], c["id"]))
        n_difficult = min(len(analysed), round(need * share_d)) if analysed else 0
        picks = [(c, "difficult") for c in analysed[:n_difficult]]
        rest = [c for c in pool if c not in [p[0] for p in picks]]
        picks += [(c, "random") for c in rng.sample(rest, min(len(rest), need - len(picks)))]
        for c, why in picks:
            r = create_review(db, home, c["id"], reviewer=actor, why=why)
            created.append({"review_id": r["id"], "recording_id": c["id"], "agent": agent_ref, "why": why})
        per_agent_out[agent_ref] = {"name": agent_name(db, agent_ref), "target": per_agent, "existing": existing,
                                    "created": len(picks), "calls": len(rows),
                                    "short": max(0, need - len(picks))}
    with transaction(db):
        auditlog.append(db, kind="review.sample", actor=actor, data={
            "month": month, "per_agent": per_agent, "created": [c["review_id"] for c in created],
            "agents": len(per_agent_out)})
    return {"created": created, "skipped": skipped, "per_agent": per_agent_out}


# ---------------------------------------------------------------- audio


def _input_hash(r: dict, rec: dict, caller_voice: str) -> str:
    state = {"source": rec["sha256"], "start": r["start_s"], "end": r["end_s"], "redactions": r["redactions"],
             "method": REVIEW_METHOD, "map": rec["channel_map"]}
    if caller_voice != pseudovoices.PER_CALLER:  # renderings made before the setting existed stay current
        state["caller_voice"] = caller_voice
    body = json.dumps(state, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def current_audio(db: Database, r: dict) -> dict | None:
    rec = db.execute("SELECT * FROM recordings WHERE id = ?", [r["recording_id"]]).fetchone()
    if rec is None:
        return None
    cols = [d[0] for d in db.execute("SELECT * FROM recordings LIMIT 0").description]
    rec = dict(zip(cols, rec))
    h = _input_hash(r, rec, pseudovoices.caller_voice(db))
    rows = list(db.query("SELECT * FROM review_renderings WHERE review_id = ? AND input_hash = ? ORDER BY id DESC",
                         [r["id"], h]))
    return rows[0] if rows else None


def audio_file(db: Database, home: Home, review_id: int) -> dict:
    """The review's rendering (made now if missing or stale): caller strong-anonymized, agent unaltered.

    Raises
    ------
    ClipkitError
        When the call's audio is gone.
    """
    from . import rendering
    from .anonymize import KEEP

    r = _review(db, review_id)
    current = current_audio(db, r)
    if current is not None and (home.root / current["path"]).exists():
        return current
    rec = db.execute("SELECT 1 FROM recordings WHERE id = ?", [r["recording_id"]]).fetchone()
    if rec is None:
        raise ClipkitError(f"the audio of review {review_id}'s call is gone (erased or purged)")
    rec = library.get_recording(db, r["recording_id"])
    src = library.recording_path(home, rec)
    mode = pseudovoices.caller_voice(db)
    voices = rendering.channel_voices(db, home, rec, unit=f"review:{r['id']}", mode=mode)
    cmap = rendering.ChannelMap.from_text(rec["channel_map"])
    if not cmap.mixed:
        voices[cmap.agent] = KEEP  # the agent hears their own voice as it was
    render_dir = home.audio_dir / rendering.RENDER_DIR
    render_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    final = render_dir / f"{token}.wav"
    spans = [(a - r["start_s"], b - r["start_s"], m) for a, b, m in r["redactions"]]
    with store.Scratch(home, "review") as scratch:
        dst = scratch.path / f"{token}.wav"
        out = rendering._render_one({"src": str(src), "dst": str(dst), "start_s": r["start_s"], "end_s": r["end_s"],
                                     "voices": voices, "method": "strong", "spans": spans})
        scratch.journal([final])
        old = [x["path"] for x in db.query("SELECT path FROM review_renderings WHERE review_id = ?", [r["id"]])]
        with transaction(db):
            store.place(dst, final)
            row_id = db["review_renderings"].insert({
                "review_id": r["id"], "recording_id": rec["id"], "input_hash": _input_hash(r, rec, mode),
                "path": home.relative(final), "sha256": out["sha256"], "created_at": now_iso()}).last_pk
            db.execute("DELETE FROM review_renderings WHERE review_id = ? AND id != ?", [r["id"], row_id])
    # older renderings of this review go with their bytes: derived voice data is kept no longer than needed
    for p in old:
        (home.root / p).unlink(missing_ok=True)
    return next(db.query("SELECT * FROM review_renderings WHERE id = ?", [row_id]))


def play(db: Database, home: Home, review_id: int, *, role: str, actor: str,
         viewer_agent_ref: str | None = None, reader=None) -> bytes:
    """The audio of a review for this viewer, decided by the policy and logged (refusals too), then read.

    Returns the rendering's bytes exactly as stored (callers add the per-response nonce).

    Raises
    ------
    PolicyRefusal
        With every reason that applies; the refusal is in the log first.
    """
    r = _review(db, review_id)
    with transaction(db):
        now = now_iso()
        verdict = coaching_policy.decide(_facts(db, home, r, role=role, viewer_agent_ref=viewer_agent_ref, now=now),
                                         action="play", now=now)
        auditlog.append(db, kind="review.play", actor=actor, data={
            "review": r["id"], "role": role, "decision": "allowed" if verdict.allowed else "refused",
            "reasons": verdict.codes})
    if not verdict.allowed:
        _refuse(verdict, f"review {review_id} may not be played")
    current = audio_file(db, home, r["id"])
    path = home.root / current["path"]
    from .audio import read_verified

    return (reader or (lambda p, sha: read_verified(p, sha)))(str(path), current["sha256"])


# ---------------------------------------------------------------- rights: erasure, purge, access


def files_of_recordings(db: Database, recording_ids) -> list[tuple[str, str]]:
    """(path, sha256) of review renderings made from these recordings (for the one deletion path)."""
    ids = [int(i) for i in recording_ids]
    out = []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        out += [(p, s) for p, s in db.execute(
            f"SELECT path, sha256 FROM review_renderings WHERE recording_id IN ({','.join('?' * len(chunk))})", chunk)]
    return out


def recordings_deleted(db: Database, recording_ids, *, now: str) -> None:
    """In the deleting transaction: reviews of these calls keep their record, lose their audio (and say so)."""
    ids = [int(i) for i in recording_ids]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        db.execute(f"DELETE FROM review_renderings WHERE recording_id IN ({marks})", chunk)
        db.execute(f"UPDATE reviews SET audio_gone_at = ? WHERE audio_gone_at IS NULL AND recording_id IN ({marks})",
                   [now, *chunk])


def forget_agent(db: Database, agent_ref: str, *, now: str) -> int:
    """Delete an erased agent's reviews (comments and scores cascade; renderings queued); returns how many."""
    ids = [r[0] for r in db.execute("SELECT id FROM reviews WHERE agent_ref = ?", [agent_ref])]
    for p, s in db.execute("SELECT path, sha256 FROM review_renderings WHERE review_id IN "
                           "(SELECT id FROM reviews WHERE agent_ref = ?)", [agent_ref]).fetchall():
        db.execute("INSERT OR IGNORE INTO pending_deletions (path, sha256, queued_at) VALUES (?, ?, ?)", [p, s, now])
    db.execute("DELETE FROM reviews WHERE agent_ref = ?", [agent_ref])
    return len(ids)


def scrub_mentions(db: Database, canonical: str) -> int:
    """Clear comments, replies and notes of reviews that name an erased person's identifier."""
    n = 0
    for cid, text in db.execute("SELECT id, text FROM review_comments").fetchall():
        if notes.mentions(text, canonical):
            db.execute("UPDATE review_comments SET text = ? WHERE id = ?", [notes.CLEARED, cid])
            n += 1
    for rid, reply, note in db.execute("SELECT id, reply, overall_note FROM reviews").fetchall():
        for col, text in (("reply", reply), ("overall_note", note)):
            if text and notes.mentions(text, canonical):
                db.execute(f"UPDATE reviews SET {col} = ? WHERE id = ?", [notes.CLEARED, rid])
                n += 1
    return n


def expired(db: Database, home: Home, *, now: str) -> list[int]:
    """Reviews older than ``review_retention_days`` (by when they were made)."""
    from datetime import datetime, timedelta

    cutoff = (datetime.fromisoformat(now) - timedelta(days=review_retention_days(home))).isoformat()
    return [r[0] for r in db.execute("SELECT id FROM reviews WHERE julianday(created_at) <= julianday(?) ORDER BY id",
                                     [cutoff])]


def delete_reviews(db: Database, review_ids, *, now: str) -> int:
    """In the purging transaction: delete reviews (comments, scores cascade) and queue their renderings."""
    ids = [int(i) for i in review_ids]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for p, s in db.execute(f"SELECT path, sha256 FROM review_renderings WHERE review_id IN ({marks})",
                               chunk).fetchall():
            db.execute("INSERT OR IGNORE INTO pending_deletions (path, sha256, queued_at) VALUES (?, ?, ?)", [p, s, now])
        db.execute(f"DELETE FROM reviews WHERE id IN ({marks})", chunk)
    return len(ids)


def for_access_bundle(db: Database, agent_ref: str) -> list[dict]:
    """An agent's reviews with scores, comments and their replies, for their Art. 15 access bundle."""
    out = []
    for row in listing(db, agent_ref=agent_ref):
        r = get(db, row["id"])
        out.append({k: r[k] for k in ("id", "recording_id", "month", "start_s", "end_s", "status", "reviewer",
                                      "created_at", "shared_at", "acknowledged_at", "overall_note", "reply",
                                      "scores", "audio_gone")}
                   | {"comments": [{"at_s": c["at_s"], "text": c["text"], "author": c["author"]}
                                   for c in r["comments"]]})
    return out


def counts(db: Database, *, months: int = 12) -> list[dict]:
    """Per month: reviews shared, played (allowed), acknowledged, and refused plays (from the log)."""
    rows: dict[str, dict] = {}

    def bucket(m: str) -> dict:
        return rows.setdefault(m, {"month": m, "shared": 0, "played": 0, "acknowledged": 0, "refused_plays": 0})

    for m, kind, decision, n in db.execute(
        """SELECT substr(at, 1, 7), kind, json_extract(data, '$.decision'), count(*) FROM log
           WHERE kind IN ('review.share', 'review.play', 'review.ack')
           AND julianday(at) >= julianday('now', ?) GROUP BY 1, 2, 3""", [f"-{int(months) * 31} days"]):
        b = bucket(m)
        if kind == "review.share" and decision == "allowed":
            b["shared"] += n
        elif kind == "review.play":
            b["played" if decision == "allowed" else "refused_plays"] += n
        elif kind == "review.ack" and decision == "allowed":
            b["acknowledged"] += n
    return [rows[k] for k in sorted(rows)]


def write_wav(data: bytes, path: str | os.PathLike) -> Path:
    """Write review audio to a file (atomically, never over a folder)."""
    from .home import write_atomic

    out = Path(path).expanduser()
    if out.is_dir():
        raise BadInput(f"--out {out} is a folder; give a file name ending in .wav")
    write_atomic(out, data)
    return out
