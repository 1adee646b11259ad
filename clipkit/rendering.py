"""Render clips into anonymized audio, track whether a rendering is current, approve.

A rendering is the anonymized audio of one clip as it is *now*: its
``input_hash`` covers the source bytes, range, redactions and method version.
Re-cutting a clip or changing its redactions changes that hash, so the old
rendering stops being current (export then refuses the clip) and approval is
lost. The voice parameters come from the installation key and each party's
pseudonym (see :mod:`clipkit.anonymize`); nothing here stores them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog, clipfacts, library, parties, pseudovoices
from .clipfacts import current_rendering, input_hash  # noqa: F401  (part of this module's API)
from .audio import ChannelMap
from .db import now_iso, transaction
from .errors import BadInput, ClipkitError, PolicyRefusal
from .home import Home

RENDER_DIR = "renders"
REDACTION_MODES = ("beep", "silence")

migrations = Migrations("clipkit.rendering")


@migrations()
def m001_renderings(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE renderings (
            id INTEGER PRIMARY KEY,
            clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
            input_hash TEXT NOT NULL,
            method TEXT NOT NULL,
            method_version TEXT NOT NULL,
            path TEXT NOT NULL,          -- relative to the data home; opaque name
            sha256 TEXT NOT NULL,
            figures TEXT NOT NULL,       -- JSON: F0 medians before/after, duration
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX renderings_clip ON renderings(clip_id, id)")


@migrations()
def m002_caller_voice(db: Database) -> None:
    # the caller-voice setting (clipkit.pseudovoices) a rendering was made under
    db.execute("ALTER TABLE renderings ADD COLUMN caller_voice TEXT NOT NULL DEFAULT 'per-caller'")


# ---------------------------------------------------------------- redactions


def parse_span(text: str) -> tuple[float, float, str]:
    """Parse ``START-END[:beep|silence]`` (seconds from the clip's start); default mode beep."""
    body, _, mode = text.strip().partition(":")
    mode = mode or "beep"
    if mode not in REDACTION_MODES:
        raise BadInput(f"--redact {text!r}: mode {mode!r} is not beep or silence")
    try:
        start, end = (float(x) for x in body.split("-", 1))
    except ValueError:
        raise BadInput(f"--redact {text!r} is not START-END[:beep|silence], e.g. 3.5-6.2:beep") from None
    return start, end, mode


def validate_spans(spans: Sequence, *, clip_length_s: float) -> list[list]:
    """Check spans lie inside the clip and are well-formed; return them sorted as lists.

    Raises
    ------
    BadInput
        Naming the span and the allowed range ``0..clip_length_s``.
    """
    out = []
    for span in spans:
        start, end, mode = float(span[0]), float(span[1]), (span[2] if len(span) > 2 else "beep")
        if mode not in REDACTION_MODES:
            raise BadInput(f"redaction mode {mode!r} is not beep or silence")
        if not (0 <= start < end <= clip_length_s + 1e-6):
            raise BadInput(
                f"redaction {start:g}-{end:g} s is outside the clip: spans must lie within 0–{clip_length_s:.3f} s "
                "(times are seconds from the clip's start)"
            )
        out.append([round(start, 3), round(min(end, clip_length_s), 3), mode])
    return sorted(out)


def set_redactions(db: Database, home: Home, clip_id: int, spans: Sequence, *, actor: str) -> dict:
    """Replace a clip's redaction spans. The rendering becomes stale and approval is lost."""
    clip = library.get_clip(db, clip_id)
    clean = validate_spans(spans, clip_length_s=clip["end_s"] - clip["start_s"])
    if clean == clip["redactions"]:
        return clip
    with transaction(db):
        db.execute(
            """UPDATE clips SET redactions = ?, revision = revision + 1, updated_at = ?,
                   status = CASE WHEN status = 'withdrawn' THEN 'withdrawn' ELSE 'draft' END,
                   approved_by = NULL, approved_at = NULL
               WHERE id = ?""",
            [json.dumps(clean), now_iso(), clip_id],
        )
        auditlog.append(db, kind="clip.redactions", actor=actor, data={"clip": clip_id, "spans": len(clean)})
    return library.get_clip(db, clip_id)


# ---------------------------------------------------------------- state


def _method_versions() -> dict:
    from .anonymize import METHODS

    return METHODS


def channel_voices(db: Database, home: Home, recording: dict, *, unit: str, mode: str | None = None):
    """One keyed voice per channel of the recording (None drops a channel).

    Stereo: caller and agent voices keyed on their pseudonyms, so a party
    sounds the same in every clip. Mixed: one voice keyed on the recording.
    With one caller voice per clip (:mod:`clipkit.pseudovoices`), the caller's
    (or the mixed recording's) voice is keyed on ``unit`` too
    (``"clip:12"``, ``"review:3"``); the agent keeps one voice.
    """
    from .anonymize import derive_voice

    secret = home.secret()
    mode = mode or pseudovoices.caller_voice(db)
    cmap = ChannelMap.from_text(recording["channel_map"])
    voices: list = [None] * recording["channels"]
    if cmap.mixed:
        vid = pseudovoices.voice_id("recording:" + recording["sha256"], mode=mode, unit=unit)
        return [derive_voice(secret, voice_id=vid, role="mixed")] * recording["channels"]
    caller = pseudovoices.voice_id(parties.get(db, recording["caller_ref"])["pseudonym"], mode=mode, unit=unit)
    voices[cmap.caller] = derive_voice(secret, voice_id=caller, role="caller")
    voices[cmap.agent] = derive_voice(secret, voice_id=parties.get(db, recording["agent_ref"])["pseudonym"], role="agent")
    return voices


def _render_one(job: dict) -> dict:
    """Worker: render one clip to a temp file; returns figures. Runs in a child process."""
    from .anonymize import render

    figures = render(
        job["src"], job["dst"], start_s=job["start_s"], end_s=job["end_s"],
        channel_voices=job["voices"], method=job["method"], spans=[tuple(s) for s in job["spans"]],
    )
    digest = hashlib.sha256(Path(job["dst"]).read_bytes()).hexdigest()
    return {"figures": figures, "sha256": digest}


def render_clips(
    db: Database,
    home: Home,
    clip_ids: Sequence[int],
    *,
    method: str = "strong",
    force: bool = False,
    actor: str,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[dict]:
    """Render each clip once into the audio store (16-bit PCM WAV, opaque name).

    A clip whose current rendering already used ``method`` is skipped unless
    ``force``. Several clips render in parallel on all cores. Each clip's
    status becomes ``anonymized`` (a withdrawn clip stays withdrawn).

    Returns
    -------
    list of dict
        Per clip: ``{"clip_id", "rendering_id", "method", "skipped", "figures"}``.

    Raises
    ------
    BadInput
        For an unknown method.
    NotFound
        For an unknown clip (before anything is rendered).
    """
    methods = _method_versions()
    if method not in methods:
        raise BadInput(f"--method {method!r} is not one of {', '.join(methods)}")
    version = methods[method]
    clips = [library.get_clip(db, cid) for cid in clip_ids]
    from . import store

    jobs, results = [], []
    mode = pseudovoices.caller_voice(db)
    render_dir = home.audio_dir / RENDER_DIR
    render_dir.mkdir(parents=True, exist_ok=True)
    with store.Scratch(home, "render") as scratch:
        for clip in clips:
            recording = library.get_recording(db, clip["recording_id"])
            src = library.recording_path(home, recording)
            if not src.exists():
                raise ClipkitError(f"clip {clip['id']}: its source recording's audio is gone (erased or purged)")
            current = current_rendering(db, clip)
            if current and current["method"] == method and not force:
                results.append({"clip_id": clip["id"], "rendering_id": current["id"], "method": method,
                                "skipped": True, "figures": current["figures"]})
                continue
            token = secrets.token_hex(16)
            jobs.append({
                "clip": clip, "recording": recording, "src": str(src), "method": method,
                "dst": str(scratch.path / f"{token}.wav"), "final": render_dir / f"{token}.wav",
                "start_s": clip["start_s"], "end_s": clip["end_s"], "spans": clip["redactions"],
                "voices": channel_voices(db, home, recording, unit=f"clip:{clip['id']}", mode=mode),
            })
        done = 0
        total = len(jobs)
        if progress:
            progress(0, total)
        placed: list[Path] = []
        try:
            outputs = []
            n_workers = min(workers or os.cpu_count() or 1, total)
            payloads = [{k: v for k, v in j.items() if k not in ("clip", "recording", "final")} for j in jobs]
            if n_workers <= 1:
                for p in payloads:
                    outputs.append(_render_one(p))
                    done += 1
                    if progress:
                        progress(done, total)
            elif payloads:
                with ProcessPoolExecutor(max_workers=n_workers) as pool:
                    for out in pool.map(_render_one, payloads):
                        outputs.append(out)
                        done += 1
                        if progress:
                            progress(done, total)
            if jobs:
                scratch.journal([j["final"] for j in jobs])
            now = now_iso()
            with transaction(db):
                for job, out in zip(jobs, outputs):
                    clip = job["clip"]
                    row = db.execute("SELECT revision, redactions FROM clips WHERE id = ?", [clip["id"]]).fetchone()
                    if row is None or row[0] != clip["revision"]:
                        raise ClipkitError(f"clip {clip['id']} was changed while it was rendering; render it again")
                    if pseudovoices.caller_voice(db) != mode:
                        raise ClipkitError("the caller-voice setting changed while clips were rendering; "
                                           "render them again")
                    store.place(Path(job["dst"]), job["final"])
                    placed.append(job["final"])
                    rid = db["renderings"].insert({
                        "clip_id": clip["id"], "input_hash": input_hash(job["recording"], clip, version),
                        "method": method, "method_version": version, "path": home.relative(job["final"]),
                        "sha256": out["sha256"], "figures": json.dumps(out["figures"]), "created_at": now,
                        "created_by": actor, "caller_voice": mode,
                    }).last_pk
                    db.execute(
                        """UPDATE clips SET status = CASE WHEN status = 'withdrawn' THEN 'withdrawn' ELSE 'anonymized' END,
                               approved_by = NULL, approved_at = NULL, updated_at = ? WHERE id = ?""",
                        [now, clip["id"]],
                    )
                    auditlog.append(db, kind="clip.render", actor=actor,
                                    data={"clip": clip["id"], "method": method, "method_version": version,
                                          "sha256": out["sha256"]})
                    results.append({"clip_id": clip["id"], "rendering_id": rid, "method": method,
                                    "skipped": False, "figures": out["figures"]})
        except BaseException:
            for path in placed:  # renamed in, but the transaction that named them rolled back
                path.unlink(missing_ok=True)
            raise
    _drop_stale(db, home, [c["id"] for c in clips])
    order = {cid: i for i, cid in enumerate(clip_ids)}
    return sorted(results, key=lambda r: order[r["clip_id"]])


def _drop_stale(db: Database, home: Home, clip_ids: Sequence[int]) -> None:
    """Delete renderings that are no longer current, bytes included: derived voice data is kept no longer than needed."""
    for cid in clip_ids:
        clip = library.get_clip(db, cid)
        current = current_rendering(db, clip)
        stale = [r for r in db.query("SELECT id, path FROM renderings WHERE clip_id = ?", [cid])
                 if not current or r["id"] != current["id"]]
        if not stale:
            continue
        with transaction(db):
            db.execute(f"DELETE FROM renderings WHERE id IN ({','.join('?' * len(stale))})", [r["id"] for r in stale])
        for r in stale:
            (home.root / r["path"]).unlink(missing_ok=True)


def rendering_path(home: Home, rendering: dict) -> Path:
    return home.root / rendering["path"]


def approval_reasons(db: Database, home: Home, clip_id: int, *, actor: str) -> list[dict]:
    """Why ``actor`` cannot approve the clip now (``[{"code", "message"}]``; empty: they can).

    The clip needs a current anonymized rendering; a withdrawn clip, no party
    heard still objecting (lifting an objection never re-publishes a clip by
    itself); and with ``four_eyes_approval`` in ``config.json``, an approver
    other than the manager who cut it.
    """
    clip = library.get_clip(db, clip_id)
    reasons = []
    if current_rendering(db, clip) is None:
        reasons.append({"code": "not_anonymized",
                        "message": "the clip has no current anonymized version; anonymize it first"})
    reasons += clipfacts.approval_blockers(db, clip_id)
    if home.config.get("four_eyes_approval") and clip["author"] == actor:
        reasons.append({"code": "four_eyes", "message": f"four-eyes approval is on: a manager other than "
                                                        f"{clip['author']}, who cut this clip, must approve it"})
    return reasons


def approve(db: Database, home: Home, clip_id: int, *, actor: str) -> dict:
    """A manager approves a clip whose current rendering they have checked.

    The decision is logged either way: a refusal is committed to the log
    before it is raised.

    Raises
    ------
    PolicyRefusal
        For every reason of :func:`approval_reasons`.
    """
    reasons = approval_reasons(db, home, clip_id, actor=actor)
    if reasons:
        with transaction(db):
            auditlog.append(db, kind="clip.approve", actor=actor, data={
                "clip": clip_id, "decision": "refused", "reasons": [r["code"] for r in reasons]})
        raise PolicyRefusal(f"clip {clip_id} cannot be approved: " + "; ".join(r["message"] for r in reasons),
                            reasons=reasons)
    now = now_iso()
    with transaction(db):
        db.execute("UPDATE clips SET status = 'approved', approved_by = ?, approved_at = ?, updated_at = ? WHERE id = ?",
                   [actor, now, now, clip_id])
        auditlog.append(db, kind="clip.approve", actor=actor, data={"clip": clip_id, "decision": "allowed"})
    return library.get_clip(db, clip_id)
