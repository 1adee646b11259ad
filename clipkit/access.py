"""Role-checked functions: the only door the app's pages use into the library.

Every function takes the authenticated :class:`~clipkit.users.User` (never a
bare role string), re-reads the account (a disabled account or a changed role
stops working at once) and raises :class:`~clipkit.errors.Forbidden` with a
plain-language reason when the role may not do the action. Actions are
written to the log under the user's name.

Roles
-----
agent
    Reads the coaching reviews shared with them (never a draft, never
    another agent's), hears their own call with the caller anonymized, and
    acknowledges with a reply. Nothing else.
manager
    Imports calls, listens to raw audio (each play logged with a reason),
    cuts, redacts, anonymizes and approves clips, records an objection heard
    in a call.
trainer
    Browses the library of *approved, anonymized* clips, plays their rendered
    audio (each play logged) and exports training packages. A trainer can
    never obtain raw audio or a waveform of a call through any function here.
compliance
    Looks up parties, records consent events, reads and verifies the log,
    recalls exports, handles requests, erasure, retention and legal holds;
    may listen to raw audio for a stated reason (e.g. an access request).

Audio functions accept an optional ``loader``/``reader`` so the app can put a
cache (keyed by the file's sha256) under the decoding; authorization and
logging happen here on every call, before the loader runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlite_utils import Database

from . import (analysis, audio, auditlog, coaching, consent, erasure, export, jobs, library, logtext, merge, notes,
               parties, playlists, pseudovoices, rendering, requests, retention, users, withdrawal)
from .db import connect, transaction
from .errors import BadInput, Forbidden, NotFound, PolicyRefusal
from .home import Home
from .users import ROLES, User, active_user

MANAGER, TRAINER, COMPLIANCE, AGENT = "manager", "trainer", "compliance", "agent"

# action -> roles allowed, and what a refused user is told
PERMISSIONS: dict[str, tuple[frozenset, str]] = {
    "import": (frozenset({MANAGER}), "import calls"),
    "recordings": (frozenset({MANAGER, COMPLIANCE}), "browse call recordings"),
    "raw_audio": (frozenset({MANAGER, COMPLIANCE}), "listen to raw (not anonymized) call audio"),
    "waveform": (frozenset({MANAGER, COMPLIANCE}), "see the waveform of a call"),
    "clips.browse": (frozenset({MANAGER, COMPLIANCE}), "browse clips that are not approved"),
    "clips.edit": (frozenset({MANAGER}), "cut, edit, redact or delete clips"),
    "clips.render": (frozenset({MANAGER}), "anonymize clips"),
    "clips.approve": (frozenset({MANAGER}), "approve clips"),
    "library": (frozenset({TRAINER, MANAGER}), "browse the training library"),
    "play": (frozenset({TRAINER, MANAGER, COMPLIANCE}), "play anonymized clips"),
    "export": (frozenset({TRAINER, MANAGER}), "export training packages"),
    "objection.in_call": (frozenset({MANAGER, COMPLIANCE}), "record an objection heard in a call"),
    "parties": (frozenset({COMPLIANCE}), "look up parties and their consent"),
    "consent.record": (frozenset({COMPLIANCE}), "record consent, withdrawals and objections"),
    "parties.merge": (frozenset({COMPLIANCE}), "join two parties that are one person"),
    "log": (frozenset({COMPLIANCE}), "read or verify the log"),
    "recall": (frozenset({COMPLIANCE}), "recall exports"),
    "requests": (frozenset({COMPLIANCE}), "handle data-subject requests"),
    "erasure": (frozenset({COMPLIANCE}), "erase personal data"),
    "retention": (frozenset({COMPLIANCE}), "manage retention and legal holds"),
    "dashboard": (frozenset({COMPLIANCE}), "see the compliance dashboard"),
    "settings.voices": (frozenset({COMPLIANCE}), "change how callers' anonymized voices are keyed"),
    "coaching.manage": (frozenset({MANAGER}), "create, comment, score or share coaching reviews"),
    "coaching.play": (frozenset({MANAGER, AGENT}), "listen to coaching reviews"),
    "coaching.own": (frozenset({AGENT}), "read and acknowledge your own coaching reviews"),
    "coaching.read": (frozenset({MANAGER, AGENT}), "read coaching reviews"),
    "coaching.counts": (frozenset({COMPLIANCE}), "see how many coaching reviews were shared and played"),
    "agents.label": (frozenset({MANAGER}), "name agents"),
    "accounts": (frozenset({MANAGER}), "manage accounts"),
    "account.own": (frozenset({MANAGER, TRAINER, COMPLIANCE, AGENT}), "change your own password"),
}

# how much raw audio one request may return (a 4-hour call is ~460 MB as WAV)
MAX_RAW_PLAY_S = 30 * 60.0


def allowed(user: User, action: str) -> bool:
    """Whether the user's role may do ``action`` (no database check; for showing or hiding UI)."""
    roles, _ = PERMISSIONS[action]
    return isinstance(user, User) and user.role in roles


def require(db: Database, user: User, action: str, *, touch: bool = True) -> User:
    """The checked user, or :class:`Forbidden` naming what the role may not do.

    ``touch=False``: checked without counting as activity (see :func:`clipkit.users.active_user`).
    """
    roles, what = PERMISSIONS[action]
    user = active_user(db, user, touch=touch)
    if user.role not in roles:
        allowed_roles = " or ".join(r for r in ROLES if r in roles)
        article = "an" if user.role[:1] in "aeiou" else "a"
        raise Forbidden(f"{article} {user.role} may not {what}; this needs the {allowed_roles} role")
    return user


# ---------------------------------------------------------------- loaders (cacheable)
# What the app may wrap in a cache keyed by the file's sha256. They take a
# path, not a principal, so they are private: every public function below
# checks the principal and logs *before* it calls one.


def _segment(path: str, sha256: str, start_s: float, end_s: float) -> bytes:
    return audio.segment_wav(path, start_s=start_s, end_s=end_s)


def _file(path: str, sha256: str) -> bytes:
    return audio.read_verified(path, sha256)


def _envelope(path: str, sha256: str, points: int):
    return audio.envelope(path, points=points)


# ---------------------------------------------------------------- recordings (manager, compliance)


def import_calls(
    db: Database, home: Home, user: User, paths: Sequence[str | Path], *, caller: str, agent: str,
    channels: str | None = None, recorded_at: str | None = None, basis: str | None = None,
    notice: str | None = None, erased_party_reason: str | None = None,
) -> list[library.ImportResult]:
    """Import call recordings as the user (manager), and analyse the new ones (see :mod:`clipkit.analysis`).

    ``erased_party_reason``, the lawful reason, is the override for a party
    erased earlier at their request (kept as a note, logged with the import).
    """
    user = require(db, user, "import")
    reason = (erased_party_reason or "").strip() or None
    results = library.import_recordings(
        db, home, list(paths), caller=caller, agent=agent, channels=channels, recorded_at=recorded_at,
        basis=basis, notice=notice, actor=user.name, allow_suppressed=reason is not None, override_reason=reason,
    )
    analysis.analyze_imported(db, home, results)
    return results


def import_batch(db: Database, home: Home, user: User, rows: list, *, base: Path | None = None,
                 files: dict[str, Path] | None = None) -> list[dict]:
    """Import a metadata CSV's rows (see :func:`clipkit.batch.import_manifest`) and analyse the new calls."""
    from . import batch

    user = require(db, user, "import")
    items = batch.import_manifest(db, home, rows, base=base or Path("."), actor=user.name, files=files)
    analysis.analyze_imported(db, home, [it["result"] for it in items if it["error"] is None])
    return items


def _labelled(db: Database, rows: list[dict]) -> list[dict]:
    """Recordings with ``caller_label`` and ``agent_label`` as the register shows the parties ("(erased)" if gone)."""
    found = parties.labels(db, (r[f"{p}_ref"] for r in rows for p in ("caller", "agent")), display_names=False)
    for r in rows:
        for party in ("caller", "agent"):
            r[f"{party}_label"] = found.get(r[f"{party}_ref"], "(erased)")
    return rows


def list_recordings(db: Database, user: User, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    require(db, user, "recordings")
    rows, total = library.list_recordings(db, limit=limit, offset=offset)
    return _labelled(db, rows), total


def ranked_calls(
    db: Database, home: Home, user: User, *, sort: str = "difficulty", agent_ref: str | None = None,
    min_difficulty: float | None = None, moment: str | None = None, no_clips: bool = False,
    since: str | None = None, until: str | None = None, limit: int = 25, offset: int = 0,
) -> tuple[list[dict], int]:
    """Calls with their difficulty, reasons and moment kinds, filtered and sorted (see :func:`clipkit.analysis.ranked`).

    Rows carry the parties' labels (and an agent's display name), never identifiers.
    """
    require(db, user, "recordings")
    rows, total = analysis.ranked(db, home, sort=sort, min_difficulty=min_difficulty, moment=moment,
                                  no_clips=no_clips, since=since, until=until, limit=limit, offset=offset,
                                  agent_ref=agent_ref)
    return _labelled(db, rows), total


def agents(db: Database, user: User) -> list[dict]:
    """The agents heard in the library: ``[{"ref", "label", "calls"}]``, most calls first."""
    require(db, user, "recordings")
    return list(db.query(
        """SELECT p.ref, p.label, count(*) AS calls FROM recordings r JOIN parties p ON p.ref = r.agent_ref
           GROUP BY p.ref ORDER BY calls DESC, p.label"""))


def call_moments(db: Database, user: User, recording_id: int) -> dict | None:
    """A call's analysis (difficulty, reasons, signals, stale) and its moments, or None when not analysed."""
    require(db, user, "recordings")
    found = analysis.analysis_of(db, recording_id)
    if found is None:
        library.get_recording(db, recording_id)  # NotFound for an unknown call
        return None
    found["moments"] = analysis.moments_of(db, recording_id)["moments"]
    return found


def cut_range(db: Database, user: User, recording_id: int, *, start_s: float, end_s: float,
              context_s: float = 3.0) -> tuple[float, float]:
    """A range around a moment, with context, snapped to pauses (see :func:`clipkit.analysis.cut_around`)."""
    require(db, user, "clips.edit")
    return analysis.cut_around(db, recording_id, start_s=start_s, end_s=end_s, context_s=context_s)


def get_recording(db: Database, user: User, recording_id: int) -> dict:
    require(db, user, "recordings")
    return _labelled(db, [library.get_recording(db, recording_id)])[0]


def waveform(
    db: Database, home: Home, user: User, recording_id: int, *, points: int = 2000,
    loader: Callable | None = None,
):
    """Peak envelope of a whole call, ``(peaks (channels, n), seconds_per_point)``."""
    require(db, user, "waveform")
    rec = library.get_recording(db, recording_id)
    path = library.recording_path(home, rec)
    if not path.exists():
        raise NotFound(f"the audio of recording {recording_id} is gone (erased or purged)")
    return (loader or _envelope)(str(path), rec["sha256"], points)


def raw_audio(
    db: Database, home: Home, user: User, recording_id: int, *, start_s: float, end_s: float, reason: str,
    loader: Callable | None = None, redactions: Sequence = (),
) -> bytes:
    """WAV bytes of a range of a raw recording; logged (kind ``play.raw``) with the reason.

    The bytes carry a random nonce chunk (:func:`clipkit.audio.with_nonce`):
    no two responses are alike, so no player can be handed another one's audio.
    ``redactions`` — ``(start_s, end_s, mode)`` in *call* time, inside the
    range — are beeped or silenced in what is returned (a preview of
    redactions before anything is rendered).

    Raises
    ------
    Forbidden
        For a trainer, always.
    BadInput
        Without a reason, or for a range outside the call or longer than :data:`MAX_RAW_PLAY_S`.
    """
    user = require(db, user, "raw_audio")
    if not " ".join((reason or "").split()):
        raise BadInput("say why you are listening to the raw call (the reason is logged)")
    reason = notes.clean(reason, name="the reason")
    rec = library.get_recording(db, recording_id)
    try:
        start_s, end_s = float(start_s), float(end_s)
    except (TypeError, ValueError):
        raise BadInput("start and end must be numbers of seconds") from None
    if not (0 <= start_s < end_s) or start_s >= rec["duration_s"]:
        raise BadInput(f"the range {start_s:g}–{end_s:g} s is not inside the call (0–{rec['duration_s']:.3f} s)")
    end_s = min(end_s, rec["duration_s"])
    if end_s - start_s > MAX_RAW_PLAY_S:
        raise BadInput(f"listen to at most {MAX_RAW_PLAY_S / 60:g} minutes at a time")
    path = library.recording_path(home, rec)
    if not path.exists():
        raise NotFound(f"the audio of recording {recording_id} is gone (erased or purged)")
    spans = []
    if redactions:
        from .anonymize._redact import validate_spans

        # in call time on the page; checked against the range, then made relative to it
        spans = [(a - start_s, b - start_s, m) for a, b, m in validate_spans(list(redactions), duration_s=end_s)
                 if a >= start_s]
        if len(spans) != len(redactions):
            raise BadInput(f"every redaction must lie inside {start_s:g}–{end_s:g} s")
    with transaction(db):
        # the reason is a note tied to the recording (erasure and purge clear it), never log text
        note_id = notes.add(db, kind="play.raw", text=reason, actor=user.name, recordings=[recording_id])
        entry = {"recording": recording_id, "start_s": round(start_s, 3), "end_s": round(end_s, 3),
                 "reason_note": note_id, "role": user.role}
        if spans:
            entry["redactions"] = len(spans)
        auditlog.append(db, kind="play.raw", actor=user.name, data=entry)
    data = (loader or _segment)(str(path), rec["sha256"], round(start_s, 3), round(end_s, 3))
    if spans:
        import io

        import soundfile as sf

        from . import anonymize

        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        data = audio.to_wav_bytes(anonymize.redact(y.T, sr=sr, spans=spans), sr=sr)
    return audio.with_nonce(data)


def clip_original_audio(
    db: Database, home: Home, user: User, clip_id: int, *, reason: str, loader: Callable | None = None,
) -> bytes:
    """The raw range a clip was cut from (the "A" of an A/B comparison); see :func:`raw_audio`."""
    require(db, user, "raw_audio")
    clip = library.get_clip(db, clip_id)
    return raw_audio(db, home, user, clip["recording_id"], start_s=clip["start_s"], end_s=clip["end_s"],
                     reason=reason, loader=loader)


def redaction_preview(
    db: Database, home: Home, user: User, clip_id: int, spans: Sequence, *, reason: str,
    loader: Callable | None = None,
) -> bytes:
    """The clip's raw range with ``spans`` (call time) beeped or silenced: hear redactions before rendering."""
    require(db, user, "clips.edit")
    clip = library.get_clip(db, clip_id)
    return raw_audio(db, home, user, clip["recording_id"], start_s=clip["start_s"], end_s=clip["end_s"],
                     reason=reason, loader=loader, redactions=spans)


# ---------------------------------------------------------------- clips (manager)


def list_clips(db: Database, user: User, **filters) -> tuple[list[dict], int]:
    """Clips of every status, with :func:`clipkit.library.list_clips` filters."""
    require(db, user, "clips.browse")
    return library.list_clips(db, **filters)


def get_clip(db: Database, user: User, clip_id: int) -> dict:
    """One clip. A trainer only sees approved clips (others look like they do not exist)."""
    if allowed(user, "clips.browse"):
        require(db, user, "clips.browse")
        return library.get_clip(db, clip_id)
    require(db, user, "library")
    clip = library.get_clip(db, clip_id)
    if clip["status"] != "approved":
        raise NotFound(f"no approved clip with id {clip_id}")
    return _library_row(clip)


def create_clip(
    db: Database, home: Home, user: User, recording_id: int, *, start_s: float, end_s: float, title: str,
    tags: Sequence[str] = (), note: str = "",
) -> int:
    user = require(db, user, "clips.edit")
    return library.create_clip(db, home, recording_id, start_s=start_s, end_s=end_s, title=title,
                               tags=list(tags), note=note, author=user.name)


def recut_clip(db: Database, home: Home, user: User, clip_id: int, *, start_s: float, end_s: float) -> dict:
    user = require(db, user, "clips.edit")
    return library.recut_clip(db, home, clip_id, start_s=start_s, end_s=end_s, actor=user.name)


def update_clip(
    db: Database, user: User, clip_id: int, *, title: str | None = None, note: str | None = None,
    tags: Sequence[str] | None = None,
) -> dict:
    user = require(db, user, "clips.edit")
    return library.update_clip(db, clip_id, title=title, note=note, tags=None if tags is None else list(tags),
                               actor=user.name)


def delete_clip(db: Database, home: Home, user: User, clip_id: int) -> None:
    user = require(db, user, "clips.edit")
    library.delete_clip(db, home, clip_id, actor=user.name)


def set_redactions(db: Database, home: Home, user: User, clip_id: int, spans: Sequence) -> dict:
    """Replace a clip's silence/beep spans ``[(start_s, end_s, "beep"|"silence")]`` (from the clip's start)."""
    user = require(db, user, "clips.edit")
    return rendering.set_redactions(db, home, clip_id, spans, actor=user.name)


def render_clips(
    db: Database, home: Home, user: User, clip_ids: Sequence[int], *, method: str = "strong",
    force: bool = False, progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    user = require(db, user, "clips.render")
    return rendering.render_clips(db, home, list(clip_ids), method=method, force=force,
                                  actor=user.name, progress=progress)


def start_render_job(db: Database, home: Home, user: User, clip_ids: Sequence[int], *,
                     method: str = "strong") -> int:
    """Anonymize many clips on a background thread of this process (see :mod:`clipkit.jobs`); returns the job id.

    The clips are checked before the job is queued; the rendering itself is
    :func:`clipkit.rendering.render_clips` under the user's name, so every
    clip is logged as usual. Closing the page does not stop it.
    """
    user = require(db, user, "clips.render")
    ids = [int(c) for c in clip_ids]
    if not ids:
        raise BadInput("choose at least one clip to anonymize")
    if method not in rendering._method_versions():
        raise BadInput(f"method {method!r} is not one of {', '.join(rendering._method_versions())}")
    for cid in ids:
        library.get_clip(db, cid)  # NotFound before anything is queued
    job_id = jobs.submit(db, kind="render", actor=user.name, params={"clips": ids, "method": method}, total=len(ids))

    def work(jdb: Database, progress) -> list[dict]:
        out = rendering.render_clips(jdb, home, ids, method=method, actor=user.name, progress=progress)
        return [{"clip_id": r["clip_id"], "skipped": bool(r["skipped"]), "method": r["method"]} for r in out]

    jobs.start(lambda: connect(home), job_id, work)
    return job_id


def start_import_job(db: Database, home: Home, user: User, rows: list, *, files: dict[str, Path],
                     scratch=None) -> int:
    """Import a metadata CSV's rows on a background thread (see :func:`import_batch`); returns the job id.

    ``files`` are the uploaded files by name; ``scratch`` (a
    :class:`clipkit.store.Scratch` holding them) is closed by the job when it
    ends, so the uploads live exactly as long as the import needs them.
    """
    user = require(db, user, "import")
    job_id = jobs.submit(db, kind="import", actor=user.name, params={"rows": len(rows)}, total=len(rows))

    from . import batch

    def work(jdb: Database, progress) -> list[dict]:
        # checked once, above: the import goes on if the tab closes and the session idles out meanwhile
        try:
            items = batch.import_manifest(jdb, home, rows, base=Path("."), actor=user.name, files=files,
                                          progress=progress)
            analysis.analyze_imported(jdb, home, [it["result"] for it in items if it["error"] is None])
            return [{"line": it["line"], "file": it["file"], "error": it["error"],
                     "call": None if it["error"] or it["result"] is None else it["result"].id,
                     "duplicate": bool(it["result"] is not None and it["result"].duplicate),
                     "duration_s": None if it["result"] is None else it["result"].duration_s,
                     "channels": None if it["result"] is None else it["result"].channels}
                    for it in items]
        finally:
            if scratch is not None:
                scratch.close()

    try:
        jobs.start(lambda: connect(home), job_id, work)
    except BaseException:
        if scratch is not None:
            scratch.close()
        raise
    return job_id


def my_jobs(db: Database, user: User, *, kind: str | None = None, limit: int = 5) -> list[dict]:
    """The user's newest bulk jobs (of ``kind``) with their progress and results (an interrupted one says so).

    Asked every few seconds by a progress panel, so it does not count as activity: an idle session still ends.
    """
    user = require(db, user, "import" if kind == "import" else "clips.render", touch=False)
    mine = jobs.recent(db, actor=user.name, limit=50)
    return [j for j in mine if kind is None or j["kind"] == kind][:limit]


def current_rendering(db: Database, user: User, clip_id: int) -> dict | None:
    """The clip's current rendering row (path, sha256, method, figures), or None.

    For staff who check renderings (manager, compliance): the figures hold
    the speaker's original median pitch, which a trainer must not see.
    """
    require(db, user, "clips.browse")
    return rendering.current_rendering(db, library.get_clip(db, clip_id))


def caller_voice(db: Database, user: User) -> dict:
    """The caller-voice setting, what it means and what a switch costs (compliance).

    ``{"caller_voice", "meaning", "switch_stales"}``: ``switch_stales`` clips
    would have to be anonymized and approved again after a switch.
    """
    require(db, user, "dashboard")
    mode = pseudovoices.caller_voice(db)
    return {"caller_voice": mode, "meaning": pseudovoices.describe(mode),
            "switch_stales": pseudovoices.clips_rendered_under(db, mode)}


def set_caller_voice(db: Database, user: User, mode: str) -> dict:
    """Give callers one voice in every clip or a new one per clip (see :mod:`clipkit.pseudovoices`; logged)."""
    user = require(db, user, "settings.voices")
    return pseudovoices.set_caller_voice(db, mode, actor=user.name)


def approve(db: Database, home: Home, user: User, clip_id: int) -> dict:
    """Approve a clip (see :func:`clipkit.rendering.approve`; a refusal is logged, then raised)."""
    user = require(db, user, "clips.approve")
    return rendering.approve(db, home, clip_id, actor=user.name)


def clip_withdrawal(db: Database, user: User, clip_id: int) -> dict | None:
    """When, by whom and why a clip was last withdrawn, or None (see :func:`clipkit.withdrawal.last_withdrawal`)."""
    require(db, user, "clips.browse")
    return withdrawal.last_withdrawal(db, clip_id)


def approval_reasons(db: Database, home: Home, user: User, clip_id: int) -> list[dict]:
    """Why the user cannot approve the clip now (empty: they can); for disabling the Approve button."""
    user = require(db, user, "clips.approve")
    return rendering.approval_reasons(db, home, clip_id, actor=user.name)


def anonymized_audio(db: Database, home: Home, user: User, clip_id: int, *, reader: Callable | None = None,
                     mix: str = "channels") -> bytes:
    """The bytes of a clip's current anonymized rendering; each call logged (kind ``play``).

    The stored bytes plus a random nonce chunk (:func:`clipkit.audio.with_nonce`;
    :func:`clipkit.audio.without_nonce` gives back exactly the stored file,
    whose sha256 the log records). With ``mix="centre"`` a two-channel
    rendering comes as one centred channel (:func:`clipkit.audio.centre_mix`
    of the stored file; the log says so). A trainer gets only approved clips the
    export policy would let leave, rendered with a strong method. Nobody gets
    a stale rendering, and this function never touches the raw recording.

    Raises
    ------
    PolicyRefusal
        If the clip has no current rendering, or (trainer) it is not approved
        or the policy refuses it (objection, consent, retention, erasure).
    """
    user = require(db, user, "play")
    if mix not in ("channels", "centre"):
        raise BadInput(f"mix {mix!r} is not 'channels' or 'centre'")
    clip = library.get_clip(db, clip_id)
    if not allowed(user, "clips.browse"):
        if clip["status"] != "approved":
            raise PolicyRefusal(f"clip {clip_id} is not in the training library (it is not approved)",
                                reasons=[{"code": "not_approved", "message": "the clip has not been approved by a manager"}])
        reasons = _play_blockers(db, clip)
        if reasons:
            raise PolicyRefusal(f"clip {clip_id} may not be played: " + "; ".join(r["message"] for r in reasons),
                                reasons=reasons)
    current = rendering.current_rendering(db, clip)
    if current is None:
        raise PolicyRefusal(f"clip {clip_id} has no up-to-date anonymized version",
                            reasons=[{"code": "not_anonymized", "message": "the clip has no up-to-date anonymized version"}])
    path = home.root / current["path"]
    if not home.contains(path) or not path.exists():
        raise NotFound(f"the anonymized audio of clip {clip_id} is missing")
    data = (reader or _file)(str(path), current["sha256"])
    entry = {"clip": clip_id, "rendering": current["id"], "sha256": current["sha256"], "role": user.role}
    if mix == "centre":
        data, entry["mix"] = audio.centre_mix(data), "centre"
    auditlog.append(db, kind="play", actor=user.name, data=entry)
    return audio.with_nonce(data)


def _play_blockers(db: Database, clip: dict) -> list[dict]:
    """Policy reasons that keep a clip from being played in training: the export rules, weak method included.

    A trainer hears what may leave the building and nothing else: a clip
    rendered with the weak ``pitch`` method is refused here as it is at export.
    """
    decision = export.decide(db, clip["id"], allow_weak=False)
    return [dict(r.as_dict(), clip_id=clip["id"]) for r in decision.reasons]


# ---------------------------------------------------------------- training library (trainer)

_LIBRARY_FIELDS = ("id", "title", "note", "tags", "duration_s", "status", "approved_at")


def _library_row(clip: dict) -> dict:
    row = {k: clip.get(k) for k in _LIBRARY_FIELDS}
    if row["duration_s"] is None:
        row["duration_s"] = round(clip["end_s"] - clip["start_s"], 3)
    if isinstance(row["tags"], str):
        row["tags"] = row["tags"].split(" ") if row["tags"] else []
    return row


def trainer_library(
    db: Database, user: User, *, search: str | None = None, tag: str | None = None,
    min_duration_s: float | None = None, max_duration_s: float | None = None, limit: int = 20, offset: int = 0,
) -> tuple[list[dict], int]:
    """Approved clips matching the filters, newest first, and how many match.

    Rows carry only what a trainer needs (id, title, note, tags, duration):
    no recording id, range or party.
    """
    require(db, user, "library")
    rows, total = library.list_clips(db, tag=tag or None, search=search or None, status="approved",
                                     min_duration_s=min_duration_s, max_duration_s=max_duration_s,
                                     limit=limit, offset=offset)
    return [_library_row(r) for r in rows], total


def save_playlist(db: Database, user: User, *, name: str, clip_ids: Sequence[int]) -> dict:
    """Keep a named, ordered selection of library clips for a session (see :mod:`clipkit.playlists`).

    Only clips the user can see in the training library go in.
    """
    user = require(db, user, "library")
    ids = [int(c) for c in clip_ids]
    visible = {r["id"] for r in library_rows_by_id(db, user, ids)}
    hidden = [c for c in ids if c not in visible]
    if hidden:
        raise NotFound(f"clip {hidden[0]} is not in the training library")
    return playlists.save(db, owner=user.name, name=name, clip_ids=ids)


def library_rows_by_id(db: Database, user: User, clip_ids: Sequence[int]) -> list[dict]:
    """The training-library rows of these clips, in the order given (those no longer in the library left out)."""
    require(db, user, "library")
    rows = {}
    for cid in dict.fromkeys(int(c) for c in clip_ids):
        try:
            clip = library.get_clip(db, cid)
        except NotFound:
            continue
        if clip["status"] == "approved" and not _play_blockers(db, clip):
            rows[cid] = _library_row(clip)
    return [rows[c] for c in dict.fromkeys(int(c) for c in clip_ids) if c in rows]


def my_playlists(db: Database, user: User) -> list[dict]:
    """The user's playlists, each with its clip ids."""
    user = require(db, user, "library")
    return playlists.listing(db, owner=user.name)


def delete_playlist(db: Database, user: User, playlist_id: int) -> None:
    user = require(db, user, "library")
    playlists.delete(db, playlist_id, owner=user.name)


def library_tags(db: Database, user: User) -> list[str]:
    """Tags in use on approved clips, most used first."""
    require(db, user, "library")
    return [r[0] for r in db.execute(
        """SELECT t.tag FROM clip_tags t JOIN clips c ON c.id = t.clip_id WHERE c.status = 'approved'
           GROUP BY t.tag ORDER BY count(*) DESC, t.tag LIMIT 500"""
    )]


def all_tags(db: Database, user: User) -> list[str]:
    require(db, user, "clips.browse")
    return [r[0] for r in db.execute("SELECT tag FROM clip_tags GROUP BY tag ORDER BY count(*) DESC, tag LIMIT 500")]


# ---------------------------------------------------------------- consent and objections


def record_in_call_objection(
    db: Database, user: User, recording_id: int, *, party: str, at_s: float, purpose: str = "training",
    note: str | None = None, home: Home,
) -> dict:
    """Record that the caller or agent objected during a call, with the moment as evidence.

    For ``training`` this recalls every clip the party is heard in (see
    :func:`clipkit.consent.record`).

    Parameters
    ----------
    home : Home
        The data home; its retention rules recompute the recordings'
        keep-until dates in the same transaction.
    """
    user = require(db, user, "objection.in_call")
    if party not in parties.ROLES:
        raise BadInput(f"party {party!r} is not one of {', '.join(parties.ROLES)}")
    rec = library.get_recording(db, recording_id)
    return consent.record(
        db, party_ref=rec[f"{party}_ref"], purpose=purpose, event="objection_made", actor=user.name,
        channel="in_call", note=note, evidence={"recording_id": recording_id, "seconds": float(at_s)}, home=home,
    )


def _party_public(row: dict) -> dict:
    return {"ref": row["ref"], "label": row["label"], "created_at": row["created_at"]}


def find_party(db: Database, home: Home, user: User, identifier: str) -> dict:
    """A party by identifier (canonicalised and keyed-hashed here; the identifier is never stored or logged).

    Returns ``{"party", "status", "history", "recordings"}``.
    """
    require(db, user, "parties")
    row = parties.lookup(db, home.secret(), identifier, region=home.config["phone_region"])
    recs = [dict(zip(("id", "recorded_at", "duration_s", "role"), r)) for r in db.execute(
        """SELECT id, recorded_at, duration_s, CASE WHEN caller_ref = ? THEN 'caller' ELSE 'agent' END
           FROM recordings WHERE caller_ref = ? OR agent_ref = ? ORDER BY recorded_at""",
        [row["ref"], row["ref"], row["ref"]],
    )]
    return {
        "party": _party_public(row),
        "status": consent.current(db, row["ref"]),
        "history": consent.history(db, row["ref"]),
        "recordings": recs,
    }


def record_consent(
    db: Database, home: Home, user: User, *, party_ref: str | None = None, identifier: str | None = None,
    purpose: str, event: str, channel: str | None = None, note: str | None = None,
    evidence: dict | None = None, effective: str | None = None,
) -> dict:
    """Record a consent/withdrawal/objection event for a party (by ref, or by identifier, creating it)."""
    user = require(db, user, "consent.record")
    kwargs = dict(purpose=purpose, event=event, actor=user.name, channel=channel or None, note=note or None,
                  evidence=evidence, effective=effective or None)
    if party_ref:
        return consent.record(db, party_ref=party_ref, home=home, **kwargs)
    if not identifier or not identifier.strip():
        raise BadInput("give the party's identifier (phone, customer or employee number)")
    return consent.record_for(db, home, identifier, **kwargs)


def merge_parties(db: Database, home: Home, user: User, *, keep_ref: str, merge_ref: str, reason: str) -> dict:
    """Join party ``merge_ref`` into ``keep_ref`` (see :func:`clipkit.merge.merge`)."""
    user = require(db, user, "parties.merge")
    return merge.merge(db, home, into_ref=keep_ref, from_ref=merge_ref, reason=reason, actor=user.name)


# ---------------------------------------------------------------- exports and recalls


def _export_dir(home: Home) -> Path:
    """Where the app writes export folders: the home's ``exports/`` (``config["export_dir"]`` overrides it)."""
    configured = home.config.get("export_dir")
    return Path(configured).expanduser() if configured else home.exports_dir


def export_package(
    db: Database, home: Home, user: User, clip_ids: Sequence[int], *, recipient: str | None = None,
    all_or_nothing: bool = False,
) -> dict:
    """Export clips to a training package (see :func:`clipkit.export.export_clips`).

    Every attempt is decided by the policy and logged. Returns the export
    result; when nothing may leave, raises :class:`PolicyRefusal` whose
    ``reasons`` list every clip's reasons (``{"clip_id", "code", "message"}``).
    """
    user = require(db, user, "export")
    result = export.export_clips(db, home, list(clip_ids), to=_export_dir(home), actor=user.name,
                                 recipient=recipient or None, all_or_nothing=all_or_nothing)
    result["reasons"] = [dict(r, clip_id=item["clip_id"]) for item in result.get("refused", [])
                         for r in item["reasons"]]
    if result["decision"] == "refused":
        n = len(result.get("refused", []))
        raise PolicyRefusal(
            f"nothing was exported: {n} clip{'s were' if n != 1 else ' was'} refused by the privacy policy"
            + (" (and all-or-nothing was asked)" if result.get("withheld") else ""),
            reasons=result["reasons"],
        )
    return result


def package_zip(db: Database, home: Home, user: User, export_id: str) -> bytes:
    """A zip of one of the user's own completed exports (for a download), built in memory.

    Only what the export's rows name goes in (its manifest and each clip's
    file, checked against the sha256 recorded when it was exported), never
    whatever else sits in a folder.

    Raises
    ------
    NotFound
        For an unknown export, or one made by someone else, not complete, or
        whose files changed or went missing.
    """
    user = require(db, user, "export")
    try:
        row = export.get_export(db, str(export_id))
    except NotFound:
        row = None
    if row is None or row["actor"] != user.name or row["state"] != "complete":
        raise NotFound(f"no completed export {export_id!r} of yours")
    folder = Path(row["folder"])
    members = [(folder / export.MANIFEST, row["manifest_sha256"])] + [(folder / f["file"], f["sha256"])
                                                                       for f in row["files"]]
    return _zip_members(folder.name, members, extra=_package_index(db, row))


def _package_index(db: Database, row: dict) -> dict[str, bytes]:
    """``index.csv`` and ``index.html`` for a training package: per file its clip's title, tags and length.

    The opaque file names stay; the index is what a trainer reads. Titles and
    tags are the manager's words (the clip page asks for no names in them).
    """
    import csv
    import html
    import io

    lines = []
    for f in row["files"]:
        try:
            clip = library.get_clip(db, f["clip_id"])
        except NotFound:
            clip = None
        lines.append({"file": f["file"], "title": clip["title"] if clip else "(clip deleted since)",
                      "tags": ", ".join(clip["tags"]) if clip else "",
                      "length_s": f"{clip['end_s'] - clip['start_s']:.1f}" if clip else ""})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["file", "title", "tags", "length_s"], quoting=csv.QUOTE_ALL)
    w.writeheader()
    # cells a spreadsheet could take for a formula are kept as text, as in the log's CSV
    w.writerows([{k: auditlog._cell(v) for k, v in line.items()} for line in lines])
    rows_html = "".join(
        f"<tr><td><audio controls preload='none' src='{html.escape(x['file'], quote=True)}'></audio></td>"
        f"<td>{html.escape(x['title'])}</td><td>{html.escape(x['tags'])}</td><td>{html.escape(x['length_s'])} s</td></tr>"
        for x in lines)
    page = ("<!doctype html><meta charset='utf-8'><title>Training package</title>"
            "<style>body{font-family:sans-serif} td,th{padding:.3em .8em;text-align:left}</style>"
            f"<h1>Training package</h1><p>{len(lines)} anonymized clip(s). Anonymized voices remain pseudonymised "
            "personal data: keep this package inside the training team.</p>"
            f"<table><tr><th>clip</th><th>title</th><th>tags</th><th>length</th></tr>{rows_html}</table>")
    return {"index.csv": buf.getvalue().encode("utf-8-sig"), "index.html": page.encode()}


def recalls(db: Database, user: User) -> list[dict]:
    """Earlier exports holding clips withdrawn since: the files to ask recipients to delete."""
    require(db, user, "recall")
    return withdrawal.recalls(db)


def mark_recall_done(db: Database, user: User, export_id: str, *, note: str | None = None) -> dict:
    """The recipient confirmed deleting an export's recalled files (see :func:`clipkit.withdrawal.mark_recall_done`)."""
    user = require(db, user, "recall")
    return withdrawal.mark_recall_done(db, export_id, actor=user.name, note=note)


def withdraw_clips(
    db: Database, user: User, clip_ids: Sequence[int], *, reason: str, home: Home,
) -> list[int]:
    """Recall clips by hand (status withdrawn); returns those newly withdrawn.

    Parameters
    ----------
    home : Home
        The data home; its retention rules recompute the recordings'
        keep-until dates in the same transaction.
    """
    user = require(db, user, "recall")
    return withdrawal.withdraw_clips(db, list(clip_ids), actor=user.name, reason=reason, home=home)


def exports_containing(db: Database, user: User, clip_ids: Sequence[int]) -> list[dict]:
    require(db, user, "log")
    return withdrawal.exports_containing(db, list(clip_ids))


# ---------------------------------------------------------------- the log


def log_entries(
    db: Database, user: User, *, since: str | None = None, actor: str | None = None, kind: str | None = None,
    refused: bool = False, limit: int | None = 100, offset: int = 0, newest_first: bool = False,
) -> tuple[list[dict], int]:
    """Log entries matching the filters and how many match (see :func:`clipkit.auditlog.entries`).

    Each entry carries ``what``, the entry as a sentence (:mod:`clipkit.logtext`),
    and the free-text notes it refers to.
    """
    require(db, user, "log")
    filters = dict(since=since, actor=actor or None, kind=kind or None, refused=refused)
    if newest_first:
        _, total = auditlog.entries(db, **filters, limit=0)
        if limit is None:
            rows = list(reversed(auditlog.entries(db, **filters, limit=None)[0]))[offset:]
        else:
            start = max(0, total - offset - limit)
            count = max(0, min(limit, total - offset))
            rows = list(reversed(auditlog.entries(db, **filters, limit=count, offset=start)[0]))
    else:
        rows, total = auditlog.entries(db, **filters, limit=limit, offset=offset)
    rows = notes.resolve(db, rows)
    return logtext.with_sentences(rows, parties.labels(db, logtext.refs_in(rows))), total


def log_csv(db: Database, user: User, *, newest_first: bool = True, **filters) -> str:
    """CSV of every entry matching the filters, in the app table's order (newest first) unless told otherwise."""
    rows, _ = log_entries(db, user, limit=None, newest_first=newest_first, **filters)
    return auditlog.to_csv(rows)


def verify_log(db: Database, user: User, *, head_text: str | None = None) -> dict:
    """Recompute the chain: ``{"ok": True, "entries"}`` or ``{"ok": False, "first_bad_seq", "reason", ...}``."""
    user = require(db, user, "log")
    result = auditlog.verify(db, head_text=head_text or None)
    result["head"] = auditlog.head(db)["head"]
    return result


def _zip_members(top: str, members: Sequence[tuple[Path, str | None]], *, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip (in memory) of the given files under ``top/``, each checked against its sha256 when one is given.

    ``extra``: further members by name, written as given (an index made for the download).
    """
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path, sha in members:
            if not path.is_file() or path.is_symlink():
                raise NotFound(f"{path.name} is missing from {top}")
            data = path.read_bytes()
            if sha is not None and hashlib.sha256(data).hexdigest() != sha:
                raise NotFound(f"{path.name} in {top} does not match the checksum recorded when it was written")
            z.writestr(f"{top}/{path.name}", data)
        for name, data in (extra or {}).items():
            z.writestr(f"{top}/{name}", data)
    return buf.getvalue()


# ---------------------------------------------------------------- requests, access bundles, erasure


def _bundle_dir(home: Home) -> Path:
    """Where the app writes access bundles: the home's ``bundles/`` (``config["bundle_dir"]`` overrides it)."""
    configured = home.config.get("bundle_dir")
    return Path(configured).expanduser() if configured else home.bundles_dir


def list_requests(db: Database, user: User, *, overdue: bool = False) -> list[dict]:
    """The requests register: open ones first by due date (``status``: open, due-soon, overdue, closed)."""
    require(db, user, "requests")
    return requests.listing(db, overdue=overdue)


def open_request(
    db: Database, home: Home, user: User, *, kind: str, identifier: str, role: str, received: str | None = None,
    channel: str | None = None, note: str | None = None,
) -> dict:
    user = require(db, user, "requests")
    return requests.open_request(db, home, kind=kind, identifier=identifier, role=role,
                                 received=received or None, channel=channel or None, note=note or None,
                                 actor=user.name)


def extend_request(db: Database, user: User, request_id: int, *, reason: str) -> dict:
    user = require(db, user, "requests")
    return requests.extend(db, request_id, reason=reason, actor=user.name)


def close_request(db: Database, user: User, request_id: int, *, outcome: str) -> dict:
    user = require(db, user, "requests")
    return requests.close(db, request_id, outcome=outcome, actor=user.name)


def access_bundle(
    db: Database, home: Home, user: User, *, identifier: str, role: str, request_id: int | None = None,
    include_other_party: bool = False,
) -> dict:
    """Write an Art. 15 access bundle (see :func:`clipkit.requests.access_bundle`); closes the matching request."""
    user = require(db, user, "requests")
    return requests.access_bundle(db, home, identifier=identifier, role=role, to=_bundle_dir(home),
                                  request_id=request_id, include_other_party=include_other_party,
                                  actor=user.name)


def bundle_zip(db: Database, user: User, bundle_id: int) -> bytes:
    """A zip of an access bundle written earlier (for the officer to hand over), built in memory."""
    require(db, user, "requests")
    folder, files = requests.bundle_files(db, int(bundle_id))
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, arcname=f"{folder.name}/{f.relative_to(folder)}")
    return buf.getvalue()


def erase(
    db: Database, home: Home, user: User, *, identifier: str | None = None, request_id: int | None = None,
    dry_run: bool = False,
) -> dict:
    """Erase a person (or, with ``dry_run``, show what would go); see :func:`clipkit.erasure.erase`."""
    user = require(db, user, "erasure")
    return erasure.erase(db, home, identifier=identifier or None, request_id=request_id,
                         actor=user.name, dry_run=dry_run)


# ---------------------------------------------------------------- retention and legal holds


def retention_overview(
    db: Database, user: User, *, only: str | None = None, limit: int = 50, offset: int = 0, now: str | None = None,
) -> dict:
    """Recordings with their keep-until date and hold, soonest first, and counts.

    ``only``: ``expired`` (past retention), ``held`` (on legal hold) or None.
    """
    require(db, user, "retention")
    from .db import now_iso

    now = now or now_iso()
    # compared as instants: dates carry the call's own UTC offset
    expired_sql = "julianday(retention_until) <= julianday(?)"
    where, params = "", []
    if only == "expired":
        where, params = f" WHERE {expired_sql}", [now]
    elif only == "held":
        where = " WHERE hold_reason IS NOT NULL"
    elif only is not None:
        raise BadInput(f"filter {only!r} is not 'expired' or 'held'")
    total = db.execute(f"SELECT count(*) FROM recordings{where}", params).fetchone()[0]
    rows = list(db.query(
        f"""SELECT id, recorded_at, duration_s, basis, retention_until, hold_reason,
                   {expired_sql} AS expired,
                   (SELECT count(*) FROM clips c WHERE c.recording_id = recordings.id) AS clips
            FROM recordings{where} ORDER BY julianday(retention_until), id LIMIT ? OFFSET ?""",
        [now] + params + [limit, offset],
    ))
    counts = db.execute(
        f"SELECT count(*), sum({expired_sql}), sum(hold_reason IS NOT NULL), "
        f"sum({expired_sql} AND hold_reason IS NULL) FROM recordings", [now, now],
    ).fetchone()
    return {"rows": rows, "total": total, "recordings": counts[0] or 0, "expired": counts[1] or 0,
            "held": counts[2] or 0, "purgeable": counts[3] or 0, "now": now}


def set_hold(db: Database, user: User, recording_id: int, *, reason: str) -> dict:
    user = require(db, user, "retention")
    return retention.set_hold(db, recording_id, reason=reason, actor=user.name)


def release_hold(db: Database, user: User, recording_id: int, *, reason: str) -> dict:
    user = require(db, user, "retention")
    return retention.release_hold(db, recording_id, reason=reason, actor=user.name)


def purge(db: Database, home: Home, user: User, *, dry_run: bool = False) -> dict:
    """Delete recordings past retention and not on hold (or, with ``dry_run``, list them)."""
    user = require(db, user, "retention")
    return retention.purge(db, home, dry_run=dry_run, actor=user.name)


# ---------------------------------------------------------------- coaching (manager, agent)


def _own_agent_ref(db: Database, user: User) -> str | None:
    from .users import agent_ref_of

    return agent_ref_of(db, user) if user.role == AGENT else None


def label_agent(db: Database, home: Home, user: User, *, identifier: str, name: str) -> dict:
    """Give an agent the display name managers know them by (see :func:`clipkit.coaching.label_agent`)."""
    user = require(db, user, "agents.label")
    return coaching.label_agent(db, home, identifier, name, actor=user.name)


def coaching_overview(db: Database, home: Home, user: User, *, month: str, per_agent: int = 3) -> list[dict]:
    """Per agent with calls in ``month``: calls, reviews by status, and how far from ``per_agent`` they are."""
    require(db, user, "coaching.manage")
    month = coaching.check_month(month)
    rows = []
    for ref, calls in db.execute(
        "SELECT agent_ref, count(*) FROM recordings WHERE substr(recorded_at, 1, 7) = ? GROUP BY agent_ref", [month]):
        by = {s: 0 for s in coaching.STATUSES}
        for st_, n in db.execute("SELECT status, count(*) FROM reviews WHERE agent_ref = ? AND month = ? "
                                 "GROUP BY status", [ref, month]):
            by[st_] = n
        done = sum(by.values())
        rows.append({"agent_ref": ref, "agent": coaching.agent_name(db, ref), "calls": calls, "target": per_agent,
                     "reviews": done, "missing": max(0, per_agent - done), **by})
    return sorted(rows, key=lambda r: r["agent"])


def sample_reviews(db: Database, home: Home, user: User, *, month: str, per_agent: int,
                   difficult_share: float = 0.5, seed: int | None = None) -> dict:
    user = require(db, user, "coaching.manage")
    return coaching.sample(db, home, month=month, per_agent=per_agent, difficult_share=difficult_share, seed=seed,
                           actor=user.name)


def create_review(db: Database, home: Home, user: User, recording_id: int, *, start_s: float | None = None,
                  end_s: float | None = None) -> dict:
    user = require(db, user, "coaching.manage")
    return coaching.create_review(db, home, recording_id, start_s=start_s, end_s=end_s, reviewer=user.name)


def list_reviews(db: Database, user: User, *, agent_ref: str | None = None, status: str | None = None,
                 month: str | None = None) -> list[dict]:
    """Reviews a manager may see (all), or an agent's own shared ones (never drafts)."""
    user = require(db, user, "coaching.read")
    if user.role == AGENT:
        return coaching.listing(db, agent_ref=_own_agent_ref(db, user), status=status, month=month,
                                statuses=("shared", "acknowledged", "closed"))
    return coaching.listing(db, agent_ref=agent_ref, status=status, month=month)


def get_review(db: Database, user: User, review_id: int) -> dict:
    """One review with comments and scores: any for a manager, an agent's own shared one for that agent.

    An agent asking for a draft or another agent's review is told it does not exist.
    """
    user = require(db, user, "coaching.read")
    r = coaching.get(db, review_id)
    if user.role == AGENT and (r["agent_ref"] != _own_agent_ref(db, user) or r["status"] == "draft"):
        raise NotFound(f"no review {review_id} of yours")
    return r


def comment_review(db: Database, user: User, review_id: int, *, at_s: float, text: str) -> dict:
    user = require(db, user, "coaching.manage")
    return coaching.comment(db, review_id, at_s=at_s, text=text, author=user.name)


def score_review(db: Database, home: Home, user: User, review_id: int, values: dict, *,
                 overall_note: str | None = None) -> dict:
    user = require(db, user, "coaching.manage")
    return coaching.score(db, home, review_id, values, actor=user.name, overall_note=overall_note)


def share_review(db: Database, home: Home, user: User, review_id: int) -> dict:
    user = require(db, user, "coaching.manage")
    return coaching.share(db, home, review_id, actor=user.name)


def close_review(db: Database, user: User, review_id: int) -> dict:
    user = require(db, user, "coaching.manage")
    return coaching.close(db, review_id, actor=user.name)


def review_audio(db: Database, home: Home, user: User, review_id: int, *, reader: Callable | None = None) -> bytes:
    """What this user hears of a review: the caller anonymized, the agent as they spoke (logged, refusals too).

    Returns the rendering plus a per-response nonce (:func:`clipkit.audio.with_nonce`).

    Raises
    ------
    PolicyRefusal
        With every reason (objection to quality use, audio gone, retention, agent disabled, not shared,
        not theirs).
    """
    user = require(db, user, "coaching.play")
    data = coaching.play(db, home, review_id, role=user.role, actor=user.name,
                         viewer_agent_ref=_own_agent_ref(db, user), reader=reader)
    return audio.with_nonce(data)


def acknowledge_review(db: Database, user: User, review_id: int, *, reply: str | None = None) -> dict:
    user = require(db, user, "coaching.own")
    return coaching.acknowledge(db, review_id, agent_ref=_own_agent_ref(db, user), actor=user.name, reply=reply)


def scorecard(db: Database, home: Home, user: User) -> dict:
    """The scorecard's criteria and scale (``config.json``)."""
    require(db, user, "coaching.read")
    return coaching.scorecard(home)


def review_counts(db: Database, user: User, *, months: int = 12) -> list[dict]:
    """Per month: reviews shared, played, acknowledged and refused plays; no comment ever."""
    require(db, user, "coaching.counts")
    return coaching.counts(db, months=months)


# ---------------------------------------------------------------- dashboard


def dashboard(db: Database, user: User, *, weeks: int = 12) -> dict:
    """Figures for the compliance dashboard.

    ``clips_by_status``; ``weekly``: per ISO week the export attempts that
    exported something and those with refused clips, and plays; ``requests``:
    counts by status, with the open ones due soonest (``requests_open``: all
    open ones); ``objections_by_purpose``: parties with an active objection.
    """
    require(db, user, "dashboard")
    by_status = {s: 0 for s in library.CLIP_STATUSES}
    for s, n in db.execute("SELECT status, count(*) FROM clips GROUP BY status"):
        by_status[s] = n
    weekly: dict[str, dict] = {}

    def week(label: str) -> dict:
        return weekly.setdefault(label, {"week": label, "exports": 0, "refusals": 0, "plays": 0})

    for label, decision, n in db.execute(
        """SELECT strftime('%Y-W%W', at), json_extract(data, '$.decision'), count(*) FROM log
           WHERE kind = 'export.attempt' AND julianday(at) >= julianday('now', ?) GROUP BY 1, 2""",
        [f"-{int(weeks) * 7} days"],
    ):
        if decision in ("allowed", "partial"):
            week(label)["exports"] += n
        if decision in ("refused", "partial"):
            week(label)["refusals"] += n
    for label, n in db.execute(
        """SELECT strftime('%Y-W%W', at), count(*) FROM log WHERE kind = 'play'
           AND julianday(at) >= julianday('now', ?) GROUP BY 1""",
        [f"-{int(weeks) * 7} days"],
    ):
        week(label)["plays"] += n
    req_rows = requests.listing(db)
    req_counts = {s: 0 for s in ("open", "due-soon", "overdue", "closed")}
    for r in req_rows:
        req_counts[r["status"]] = req_counts.get(r["status"], 0) + 1
    objections = {p: 0 for p in consent.PURPOSES}
    for purpose, n in db.execute("SELECT purpose, count(*) FROM consent_status WHERE objection = 'active' "
                                 "GROUP BY purpose"):
        objections[purpose] = n
    return {
        "clips_by_status": by_status,
        "weekly": [weekly[k] for k in sorted(weekly)],
        "requests": req_counts,
        "requests_due": [r for r in req_rows if r["status"] != "closed"][:10],
        "requests_open": [{"id": r["id"], "kind": r["kind"], "due": r["due"], "status": r["status"]}
                          for r in req_rows if r["status"] != "closed"],
        "objections_by_purpose": objections,
    }


# ---------------------------------------------------------------- accounts (account administrators; everyone's own)


def is_account_admin(db: Database, user: User) -> bool:
    """Whether the user may manage accounts in the app (a manager with the administrator right)."""
    try:
        user = require(db, user, "accounts")
    except Forbidden:
        return False
    return users.is_admin(db, user.name)


def _require_admin(db: Database, user: User, target: str | None = None) -> User:
    user = require(db, user, "accounts")
    if not users.is_admin(db, user.name):
        raise Forbidden("only an account administrator may manage accounts; ask one to do it or to make you one")
    if target is not None and users.normalise_name(target) == user.name:
        raise BadInput("you cannot do this to your own account here; change your own password on the My account page, "
                       "and ask another administrator for the rest")
    return user


def list_accounts(db: Database, user: User) -> list[dict]:
    """Every account (never a password hash), with how many failed logins it has in the lock-out window."""
    _require_admin(db, user)
    rows = users.list_users(db)
    for r in rows:
        ref = r.pop("agent_ref")
        r["agent"] = coaching.agent_name(db, ref) if ref else None
    return rows


def add_account(db: Database, home: Home, user: User, name: str, *, role: str, agent_identifier: str | None = None,
                admin: bool = False) -> dict:
    """Create an account; returns ``{"name", "password"}``, the password generated (to be shown once)."""
    user = _require_admin(db, user)
    if role == "agent":
        password = coaching.add_agent_account(db, home, name, agent=agent_identifier or "", actor=user.name)
    elif agent_identifier:
        raise BadInput("only an agent account is bound to an agent identifier")
    else:
        password = users.add_user(db, name, role=role, actor=user.name, admin=admin)
    return {"name": users.normalise_name(name), "password": password}


def reset_password(db: Database, user: User, name: str) -> str:
    """Give an account a new generated password (returned once); its sessions end and its lock-outs clear."""
    user = _require_admin(db, user, name)
    return users.set_password(db, name, actor=user.name)


def set_account_disabled(db: Database, user: User, name: str, disabled: bool) -> dict:
    """Disable an account (no login, its sessions end at once) or enable it again."""
    user = _require_admin(db, user, name)
    return users.set_disabled(db, name, disabled, actor=user.name)


def unlock_account(db: Database, user: User, name: str) -> dict:
    """Clear an account's failed logins from every address (lifts a lock-out)."""
    user = _require_admin(db, user)
    return users.unlock(db, name, actor=user.name)


def set_account_admin(db: Database, user: User, name: str, admin: bool) -> dict:
    """Grant or take back the account-administrator right (managers only; never the last administrator's)."""
    user = _require_admin(db, user, name)
    return users.set_admin(db, name, admin, actor=user.name)


def change_my_password(db: Database, user: User, *, old: str, new: str, repeat: str, source: str = "unknown",
                       idle_s: float = users.DEFAULT_IDLE_S) -> User:
    """Change the user's own password; every other session ends. Returns the :class:`User` of the new session."""
    user = require(db, user, "account.own")
    if new != repeat:
        raise BadInput("the new password and its repetition differ; the password was not changed")
    return users.change_own_password(db, user, old=old, new=new, source=source, idle_s=idle_s)
