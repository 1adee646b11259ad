"""Recordings and clips: import calls into the store, cut, re-cut, tag, search.

A recording's bytes live in the content-addressed store under their sha256;
the ``recordings`` row holds everything else. A clip is a range of one
recording with a title, tags and a note, and moves through
``draft → anonymized → approved → withdrawn``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import audio, auditlog, parties
from .db import now_iso, parse_iso, transaction
from .errors import BadAudio, BadInput, ClipkitError, NotFound, PolicyRefusal
from .home import LEGAL_BASES, Home

CLIP_STATUSES = ("draft", "anonymized", "approved", "withdrawn")
PURPOSES = ("training", "quality", "dispute")

migrations = Migrations("clipkit.library")


@migrations()
def m001_recordings_and_clips(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE recordings (
            -- AUTOINCREMENT: ids are cited in evidence and the log, so an
            -- erased recording's id must never be handed to a new one
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sha256 TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL,             -- relative to the data home
            size_bytes INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            sr INTEGER NOT NULL,
            channels INTEGER NOT NULL,
            format TEXT NOT NULL,
            subtype TEXT NOT NULL,
            channel_map TEXT NOT NULL,      -- 'mixed' or 'caller=N,agent=M'
            caller_ref TEXT NOT NULL REFERENCES parties(ref),
            agent_ref TEXT NOT NULL REFERENCES parties(ref),
            recorded_at TEXT NOT NULL,
            basis TEXT NOT NULL CHECK (basis IN ('contract', 'legitimate_interest', 'consent')),
            notice TEXT,
            imported_by TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            retention_until TEXT NOT NULL,
            hold_reason TEXT
        )
        """
    )
    db.execute("CREATE INDEX recordings_caller ON recordings(caller_ref)")
    db.execute("CREATE INDEX recordings_agent ON recordings(agent_ref)")
    db.execute("CREATE INDEX recordings_retention ON recordings(retention_until)")
    db.execute(
        """
        CREATE TABLE clips (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- exports and recalls cite clip ids
            recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
            start_s REAL NOT NULL,
            end_s REAL NOT NULL,
            title TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            tags_text TEXT NOT NULL DEFAULT '',   -- space-joined, for full-text search
            redactions TEXT NOT NULL DEFAULT '[]',
            revision INTEGER NOT NULL DEFAULT 1,  -- bumped by every re-cut or redaction change
            status TEXT NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'anonymized', 'approved', 'withdrawn')),
            author TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            approved_by TEXT,
            approved_at TEXT,
            CHECK (start_s >= 0 AND end_s > start_s)
        )
        """
    )
    db.execute("CREATE INDEX clips_recording ON clips(recording_id)")
    db.execute("CREATE INDEX clips_status ON clips(status, id)")
    db.execute(
        """
        CREATE TABLE clip_tags (
            clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (tag, clip_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX clip_tags_clip ON clip_tags(clip_id)")
    db["clips"].enable_fts(
        ["title", "note", "tags_text"], create_triggers=True, tokenize="unicode61 remove_diacritics 2"
    )


# ---------------------------------------------------------------- import


@dataclass
class ImportResult:
    path: str
    id: int | None = None
    sha256: str | None = None
    duplicate: bool = False
    duration_s: float | None = None
    channels: int | None = None
    error: str | None = None
    differs: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        if self.error:
            return {"path": self.path, "error": self.error}
        out = {
            "id": self.id, "path": self.path, "sha256": self.sha256, "duplicate": self.duplicate,
            "duration_s": self.duration_s, "channels": self.channels,
        }
        if self.duplicate:
            out["differs"] = list(self.differs)
        return out


def parse_time(text: str | None, *, name: str) -> str | None:
    """Parse an ISO 8601 time; a naive time is taken as UTC. Returns ISO text (offset kept) or None."""
    return None if text is None else parse_iso(text, name=name).isoformat()


def retention_date(recorded_at: str, *, home: Home, purposes: tuple[str, ...] = ("quality",)) -> str:
    """Latest keep-until date over the purposes a recording serves."""
    days = home.config["retention_days"]
    if not isinstance(days, dict):
        raise BadInput(f"retention_days in {home.root / 'config.json'} must map purposes to days, "
                       f'e.g. {{"quality": 90, "training": 730}}; it is {days!r}')
    t = datetime.fromisoformat(recorded_at)
    out = []
    for p in purposes:
        value = days.get(p, 90)
        try:
            n = int(value)
            if isinstance(value, bool) or n != value or n < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise BadInput(f"retention_days[{p!r}] in {home.root / 'config.json'} must be a whole number of days "
                           f"(0 or more); it is {value!r}") from None
        try:
            out.append(t + timedelta(days=n))
        except OverflowError:
            raise BadInput(f"the call time {recorded_at} plus {n} days of retention ({p}) is past the year 9999; "
                           "check --recorded-at") from None
    return max(out).isoformat()


def shown_duration(seconds: float) -> float:
    """A duration as reported to people: rounded *down* to the millisecond, so ``--end <duration>`` is inside."""
    return math.floor(float(seconds) * 1000.0 + 1e-6) / 1000.0


def _copy_hashing(src: Path, dst: Path) -> str:
    """Copy src to dst and return the sha256 of the bytes, reading src once.

    Not fsynced here: the batch syncs once before its rows commit, which
    costs one flush instead of one per file.
    """
    digest = hashlib.sha256()
    with open(audio.fs_path(src), "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(1 << 20):
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest()


# container formats libsndfile names, and the extension each is stored under; a header-less
# format (raw GSM 6.10) keeps the extension it came with, which is how libsndfile recognises it
_STORED_EXT = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3", "AIFF": "aiff",
               "AU": "au", "W64": "w64", "RF64": "rf64", "CAF": "caf"}


def _source_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _differences(db: Database, existing: dict, *, secret: bytes, region: str, caller: str, agent: str,
                 basis: str, cmap: audio.ChannelMap, recorded: str | None) -> list[str]:
    """Which of the given facts a duplicate's stored recording says otherwise."""
    out = []
    for role, ident in (("caller", caller), ("agent", agent)):
        row = parties.find(db, parties.pseudonym(secret, parties.canonical_identifier(ident, region=region)))
        if row is None or row["ref"] != existing[f"{role}_ref"]:
            out.append(role)
    if basis != existing["basis"]:
        out.append("basis")
    if cmap.to_text() != existing["channel_map"]:
        out.append("channels")
    if recorded is not None and datetime.fromisoformat(recorded) != datetime.fromisoformat(existing["recorded_at"]):
        out.append("recorded_at")
    return out


def import_recordings(
    db: Database,
    home: Home,
    paths: list[str | os.PathLike],
    *,
    caller: str,
    agent: str,
    channels: str | None = None,
    recorded_at: str | None = None,
    basis: str | None = None,
    notice: str | None = None,
    actor: str = "cli",
    allow_suppressed: bool = False,
    override_reason: str | None = None,
) -> list[ImportResult]:
    """Import audio files as recordings of one caller and one agent.

    Each file's header is checked first (format, rate, declared length),
    then it is copied into a locked scratch folder while hashing (one read of
    the source), the copy is decoded once to validate it, and then, in one
    transaction, the good files are renamed into the content-addressed store
    and their rows written (see :mod:`clipkit.store`: a crash at any point
    leaves nothing the next command does not remove). A bad file gets an
    error in its result and leaves nothing behind; the good ones are imported.

    A file whose bytes are already in the library is a duplicate: its result
    names the existing recording and, in ``differs``, every given fact
    (caller, agent, basis, channels, recorded_at) the stored recording says
    otherwise — nothing is changed either way.

    Raises
    ------
    BadInput
        For arguments that apply to the whole batch (unknown basis, bad time,
        empty identifier) — before anything is written.
    PolicyRefusal
        If a party was erased earlier and ``allow_suppressed`` is not set.
        With it set, ``override_reason`` (the lawful reason) is required; it
        is kept as a note (erasable free text) and the override is logged.
    """
    from . import store

    basis = basis or home.config["default_basis"]
    if basis not in LEGAL_BASES:
        raise BadInput(f"--basis {basis!r} is not one of {', '.join(LEGAL_BASES)}")
    recorded = parse_time(recorded_at, name="--recorded-at")
    # the keep-until date must be computable (config sane, no year-9999 overflow) before anything is copied
    retention_date(recorded or now_iso(), home=home, purposes=("quality", "training"))
    region = home.config["phone_region"]
    secret = home.secret()
    canonical = {}
    for role, ident in (("caller", caller), ("agent", agent)):
        try:
            canonical[role] = parties.canonical_identifier(ident, region=region)
        except BadInput:
            raise BadInput(f"--{role} must not be empty") from None
    if canonical["caller"] == canonical["agent"]:
        raise BadInput("--caller and --agent name the same party")
    overridden = []
    for role, ident in (("caller", caller), ("agent", agent)):
        if parties.is_suppressed(db, secret, ident, region=region):
            if not allow_suppressed:
                raise PolicyRefusal(
                    f"the {role} was erased earlier at their request; importing their calls again needs "
                    "an explicit override with a lawful reason"
                )
            overridden.append(role)
    if overridden:
        from . import notes

        override_reason = notes.clean(override_reason, name="the lawful reason for importing an erased party")
    max_s = float(home.config["max_recording_hours"]) * 3600
    facts = dict(secret=secret, region=region, caller=caller, agent=agent, basis=basis, recorded=recorded)

    results: list[ImportResult] = []
    with store.Scratch(home, "import") as scratch:
        staged: list[tuple[ImportResult, Path, Path, audio.AudioInfo, audio.ChannelMap]] = []
        for i, raw in enumerate(paths):
            shown = audio.display_path(raw)
            result = ImportResult(path=shown)
            results.append(result)
            tmp = scratch.path / f"{i:06d}{_source_suffix(Path(os.fsdecode(raw)))}"
            try:
                info = audio.probe(raw)
                audio.check_header(info, name=shown, max_duration_s=max_s)  # before copying a byte
                if info.channels > 2 and channels is None:
                    raise BadAudio(
                        f"{shown}: has {info.channels} channels; say which to keep with --channels caller=N,agent=M"
                    )
                cmap = audio.ChannelMap.parse(channels, channels=info.channels)
                store._seam("copy")
                sha = _copy_hashing(Path(raw), tmp)
                store._seam("copied")
                existing = db.execute("SELECT * FROM recordings WHERE sha256 = ?", [sha]).fetchone()
                if existing or any(s[0].sha256 == sha for s in staged):
                    tmp.unlink(missing_ok=True)
                    result.sha256, result.duplicate = sha, True
                    if existing:
                        row = get_recording(db, existing[0])
                        result.id, result.duration_s, result.channels = (
                            row["id"], shown_duration(row["duration_s"]), row["channels"])
                        result.differs = _differences(db, row, cmap=cmap, **facts)
                    else:
                        result.extra["same_as"] = next(s[0] for s in staged if s[0].sha256 == sha)
                    continue
                try:
                    info = audio.validate(tmp, max_duration_s=max_s)
                except BadAudio as e:
                    raise BadAudio(str(e).replace(str(tmp), shown)) from None
                ext = _STORED_EXT.get(info.format) or tmp.suffix.lstrip(".") or info.format.lower()
                dest = home.audio_dir / sha[:2] / f"{sha}.{ext}"
                result.sha256, result.duration_s, result.channels = sha, shown_duration(info.duration_s), info.channels
                staged.append((result, tmp, dest, info, cmap))
            except ClipkitError as e:
                tmp.unlink(missing_ok=True)
                result.error = str(e)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                result.error = f"{shown}: {e.strerror or e}"

        if staged:
            os.sync()  # the copies are durable before a row can point at them
            scratch.journal([dest for _, _, dest, _, _ in staged])
            store._seam("journaled")
            placed: list[Path] = []
            try:
                now = now_iso()
                with transaction(db):
                    caller_row = parties.ensure(db, secret, caller, region=region, now=now)
                    agent_row = parties.ensure(db, secret, agent, region=region, now=now)
                    inserted = []
                    for result, tmp, dest, info, cmap in staged:
                        # asked again under the write lock: another process may have imported the same bytes
                        existing = db.execute("SELECT id FROM recordings WHERE sha256 = ?", [result.sha256]).fetchone()
                        if existing:
                            row = get_recording(db, existing[0])
                            result.id, result.duplicate = row["id"], True
                            result.differs = _differences(db, row, cmap=cmap, **facts)
                            continue
                        if dest.exists():
                            tmp.unlink()  # same bytes already in the store (a row erased earlier kept none)
                        else:
                            store.place(tmp, dest, sync=False)
                            placed.append(dest)
                        store._seam("placed")
                        when = recorded or now
                        row = {
                            "sha256": result.sha256, "path": home.relative(dest), "size_bytes": dest.stat().st_size,
                            "duration_s": info.duration_s, "sr": info.sr, "channels": info.channels,
                            "format": info.format, "subtype": info.subtype, "channel_map": cmap.to_text(),
                            "caller_ref": caller_row["ref"], "agent_ref": agent_row["ref"], "recorded_at": when,
                            "basis": basis, "notice": notice, "imported_by": actor, "imported_at": now,
                            "retention_until": retention_date(when, home=home),
                        }
                        result.id = db["recordings"].insert(row).last_pk
                        inserted.append(result.id)
                    store.fsync_dirs(placed)  # the renames are durable before the rows commit
                    if inserted:
                        data = {"recordings": inserted, "caller": caller_row["ref"], "agent": agent_row["ref"]}
                        if overridden:
                            from . import notes

                            refs = [caller_row["ref"] if r == "caller" else agent_row["ref"] for r in overridden]
                            data["override"] = {"erased_party": overridden, "note": notes.add(
                                db, kind="import.override", text=override_reason, actor=actor, parties_=refs,
                                recordings=inserted)}
                        auditlog.append(db, kind="recording.import", actor=actor, data=data)
                    store._seam("rows")
            except BaseException:
                for path in placed:
                    path.unlink(missing_ok=True)
                raise
            store._seam("committed")
    _resolve_batch_duplicates(results)
    return results


def _resolve_batch_duplicates(results: list[ImportResult]) -> None:
    for r in results:
        first = r.extra.pop("same_as", None)
        if first is not None:
            r.id, r.duration_s, r.channels = first.id, first.duration_s, first.channels
            if first.error:
                r.error = first.error


# ---------------------------------------------------------------- recordings


def get_recording(db: Database, recording_id: int) -> dict:
    row = db.execute("SELECT * FROM recordings WHERE id = ?", [recording_id]).fetchone()
    if row is None:
        raise NotFound(f"no recording with id {recording_id}")
    cols = [d[0] for d in db.execute("SELECT * FROM recordings LIMIT 0").description]
    return dict(zip(cols, row))


def list_recordings(db: Database, *, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    if limit < 0 or offset < 0:
        # SQLite reads LIMIT -1 as "no limit": refuse rather than list everything
        raise BadInput(f"--limit {limit} and --offset {offset} must not be negative")
    limit, offset = min(limit, 2**62), min(offset, 2**62)
    total = db["recordings"].count
    rows = list(
        db.query(
            """SELECT r.*, (SELECT count(*) FROM clips c WHERE c.recording_id = r.id) AS clip_count
               FROM recordings r ORDER BY r.id DESC LIMIT ? OFFSET ?""",
            [limit, offset],
        )
    )
    return rows, total


def recording_path(home: Home, recording: dict) -> Path:
    return home.root / recording["path"]


# ---------------------------------------------------------------- clips


def normalise_tag(tag: str) -> str:
    """NFKC, case-folded, trimmed, inner white space collapsed; 1–50 characters.

    Raises
    ------
    BadInput
        If the normalised tag is empty or longer than 50 characters.
    """
    text = " ".join(unicodedata.normalize("NFKC", str(tag)).casefold().split())
    if not 1 <= len(text) <= 50:
        raise BadInput(f"tag {tag!r} must be 1–50 characters after normalising (it is {len(text)})")
    return text


def _validate_range(recording: dict, *, start_s: float, end_s: float, home: Home) -> tuple[float, float]:
    duration = recording["duration_s"]
    lo, hi = float(home.config["min_clip_s"]), float(home.config["max_clip_s"])
    try:
        start_s, end_s = float(start_s), float(end_s)
    except (TypeError, ValueError):
        raise BadInput(f"--start {start_s!r} and --end {end_s!r} must be numbers of seconds") from None
    if not (start_s == start_s and end_s == end_s) or start_s in (float("inf"), float("-inf")) or end_s in (float("inf"), float("-inf")):
        raise BadInput(f"--start {start_s} and --end {end_s} must be finite numbers of seconds")
    shown = shown_duration(duration)
    if start_s < 0 or start_s >= duration:
        raise BadInput(f"--start {start_s:g} is outside the call: allowed 0 ≤ start < {shown:.3f} s")
    if end_s <= start_s:
        raise BadInput(f"--end {end_s:g} must be after --start {start_s:g}")
    if end_s > duration + 5e-4:  # half a millisecond: durations are shown to the millisecond
        raise BadInput(f"--end {end_s:g} is past the end of the call (duration {shown:.3f} s)")
    length = end_s - start_s
    if length < lo - 1e-9:
        raise BadInput(f"the clip is {length:.3f} s long; clips must be at least {lo:g} s")
    if length > hi + 1e-9:
        raise BadInput(f"the clip is {length:.3f} s long; clips must be at most {hi:g} s ({hi / 60:g} min)")
    return round(start_s, 3), round(min(end_s, duration), 3)


def clean_text(value: str | None, *, name: str, limit: int, required: bool = False, hint: str = "") -> str | None:
    """Free text with its runs of whitespace made one space; None when empty.

    Raises :class:`BadInput` naming ``name`` when the text is longer than
    ``limit``, or empty and ``required`` (``hint`` is added to that message).
    """
    text = " ".join((value or "").split()) or None
    if text is None and required:
        raise BadInput(f"{name} must not be empty{hint}")
    if text is not None and len(text) > limit:
        raise BadInput(f"{name} is {len(text)} characters; at most {limit} are allowed")
    return text


def _clean_title(title: str | None) -> str:
    return clean_text(title, name="--title", limit=200, required=True)


def create_clip(
    db: Database,
    home: Home,
    recording_id: int,
    *,
    start_s: float,
    end_s: float,
    title: str,
    tags: list[str] = (),
    note: str = "",
    author: str = "cli",
) -> int:
    """Cut a clip from a recording; returns the new clip id.

    Raises
    ------
    NotFound
        If the recording does not exist.
    BadInput
        For a range outside the call, too short/long, an empty title or a bad tag.
    """
    recording = get_recording(db, recording_id)
    start_s, end_s = _validate_range(recording, start_s=start_s, end_s=end_s, home=home)
    title = _clean_title(title)
    norm_tags = sorted({normalise_tag(t) for t in tags})
    now = now_iso()
    with transaction(db):
        clip_id = db["clips"].insert(
            {
                "recording_id": recording_id, "start_s": start_s, "end_s": end_s, "title": title,
                "note": (note or "").strip(), "tags_text": " ".join(norm_tags), "author": author,
                "created_at": now, "updated_at": now,
            }
        ).last_pk
        db["clip_tags"].insert_all([{"clip_id": clip_id, "tag": t} for t in norm_tags])
        auditlog.append(db, kind="clip.create", actor=author, data={"clip": clip_id, "recording": recording_id})
        refresh_retention(db, home, recording_id)
    return clip_id


def get_clip(db: Database, clip_id: int) -> dict:
    rows = list(db.query("SELECT * FROM clips WHERE id = ?", [clip_id]))
    if not rows:
        raise NotFound(f"no clip with id {clip_id}")
    clip = rows[0]
    clip["tags"] = [r[0] for r in db.execute("SELECT tag FROM clip_tags WHERE clip_id = ? ORDER BY tag", [clip_id])]
    clip["redactions"] = json.loads(clip["redactions"])
    return clip


def recut_clip(db: Database, home: Home, clip_id: int, *, start_s: float, end_s: float, actor: str = "cli") -> dict:
    """Move a clip's range. Any rendering becomes stale and approval is lost."""
    clip = get_clip(db, clip_id)
    recording = get_recording(db, clip["recording_id"])
    start_s, end_s = _validate_range(recording, start_s=start_s, end_s=end_s, home=home)
    with transaction(db):
        db.execute(
            """UPDATE clips SET start_s = ?, end_s = ?, revision = revision + 1, updated_at = ?,
                   status = CASE WHEN status = 'withdrawn' THEN 'withdrawn' ELSE 'draft' END,
                   approved_by = NULL, approved_at = NULL
               WHERE id = ?""",
            [start_s, end_s, now_iso(), clip_id],
        )
        auditlog.append(db, kind="clip.recut", actor=actor, data={"clip": clip_id, "start_s": start_s, "end_s": end_s})
    return get_clip(db, clip_id)


def update_clip(
    db: Database, clip_id: int, *, title: str | None = None, note: str | None = None,
    tags: list[str] | None = None, actor: str = "cli",
) -> dict:
    """Change a clip's title, note or tags (the audio is untouched, so approval stays)."""
    get_clip(db, clip_id)
    changes: dict = {"updated_at": now_iso()}
    if title is not None:
        changes["title"] = _clean_title(title)
    if note is not None:
        changes["note"] = note.strip()
    norm = None if tags is None else sorted({normalise_tag(t) for t in tags})
    if norm is not None:
        changes["tags_text"] = " ".join(norm)
    with transaction(db):
        db["clips"].update(clip_id, changes)
        if norm is not None:
            db.execute("DELETE FROM clip_tags WHERE clip_id = ?", [clip_id])
            db["clip_tags"].insert_all([{"clip_id": clip_id, "tag": t} for t in norm])
        auditlog.append(db, kind="clip.edit", actor=actor, data={"clip": clip_id, "fields": sorted(changes)})
    return get_clip(db, clip_id)


def delete_clip(db: Database, home: Home, clip_id: int, *, actor: str = "cli") -> None:
    """Delete a clip, its tags and its rendered audio (bytes included)."""
    recording_id = get_clip(db, clip_id)["recording_id"]
    files = [home.root / r[0] for r in db.execute("SELECT path FROM renderings WHERE clip_id = ?", [clip_id])]
    with transaction(db):
        db.execute("DELETE FROM clips WHERE id = ?", [clip_id])
        auditlog.append(db, kind="clip.delete", actor=actor, data={"clip": clip_id})
        refresh_retention(db, home, recording_id)
    for f in files:
        f.unlink(missing_ok=True)


def retention_purposes(db: Database, recording: dict) -> list[str]:
    """The purposes a recording is kept for: always ``quality``, ``training`` while a clip uses it."""
    out = ["quality"]
    in_use = db.execute(
        "SELECT count(*) FROM clips WHERE recording_id = ? AND status != 'withdrawn'", [recording["id"]]
    ).fetchone()[0]
    if in_use:
        out.append("training")
    return out


def retention_due(db: Database, home: Home, recording: dict) -> str:
    """The keep-until date a recording should have now (ISO, in the call's own offset)."""
    return retention_date(recording["recorded_at"], home=home, purposes=tuple(retention_purposes(db, recording)))


def refresh_retention(db: Database, home: Home, recording_id: int) -> str:
    """Recompute and store one recording's ``retention_until``; returns it.

    Called when its clips change (:func:`create_clip`, :func:`delete_clip`,
    withdrawals), inside their transaction, so the date changes with them.
    """
    recording = get_recording(db, recording_id)
    until = retention_due(db, home, recording)
    if until != recording["retention_until"]:
        with transaction(db):
            db.execute("UPDATE recordings SET retention_until = ? WHERE id = ?", [until, recording_id])
    return until


def fts_query(text: str) -> str | None:
    """Word-prefix FTS5 query: every word must start a word in title, note or tags.

    Each word is quoted, so FTS5 operators in user input (``AND``, ``*``,
    ``"``, ``-``, ``:``) are searched for as text, never interpreted.
    """
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text or ""))
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def list_clips(
    db: Database,
    *,
    tag: str | None = None,
    search: str | None = None,
    status: str | tuple[str, ...] | None = None,
    recording_id: int | None = None,
    min_duration_s: float | None = None,
    max_duration_s: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict], int]:
    """Clips matching every filter given, newest first, and the total count.

    Raises
    ------
    BadInput
        For a negative limit/offset, an unknown status, or a bad tag.
    """
    if limit < 0 or offset < 0:
        raise BadInput(f"--limit {limit} and --offset {offset} must not be negative")
    where, params = [], []
    joins = ""
    if tag is not None:
        joins += " JOIN clip_tags t ON t.clip_id = c.id AND t.tag = ?"
        params.append(normalise_tag(tag))
    if search is not None and search.strip():
        query = fts_query(search)
        if query is None:
            return [], 0
        where.append("c.id IN (SELECT rowid FROM clips_fts WHERE clips_fts MATCH ?)")
        params.append(query)
    if status is not None:
        statuses = (status,) if isinstance(status, str) else tuple(status)
        for s in statuses:
            if s not in CLIP_STATUSES:
                raise BadInput(f"status {s!r} is not one of {', '.join(CLIP_STATUSES)}")
        where.append(f"c.status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if recording_id is not None:
        where.append("c.recording_id = ?")
        params.append(recording_id)
    if min_duration_s is not None:
        where.append("c.end_s - c.start_s >= ?")
        params.append(min_duration_s)
    if max_duration_s is not None:
        where.append("c.end_s - c.start_s <= ?")
        params.append(max_duration_s)
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    # walking the (tag, clip_id) index backwards avoids sorting every tagged clip
    order = "t.clip_id" if tag is not None else "c.id"
    total = db.execute(f"SELECT count(*) FROM clips c{joins}{sql_where}", params).fetchone()[0]
    rows = list(
        db.query(
            f"""SELECT c.id, c.recording_id, c.start_s, c.end_s, c.title, c.note, c.status,
                       c.revision, c.author, c.created_at, c.redactions AS redactions_json,
                       (SELECT json_group_array(tag) FROM (SELECT tag FROM clip_tags WHERE clip_id = c.id
                                                           ORDER BY tag)) AS tags_json
                FROM clips c{joins}{sql_where} ORDER BY {order} DESC LIMIT ? OFFSET ?""",
            params + [limit, offset],
        )
    )
    for r in rows:
        # from clip_tags, not the space-joined search text: a tag may hold a space ("late payment")
        r["tags"] = json.loads(r.pop("tags_json"))
        r["redactions"] = json.loads(r.pop("redactions_json") or "[]")
        r["duration_s"] = round(r["end_s"] - r["start_s"], 3)
    return rows, total


def clip_parties_heard(db: Database, clip: dict) -> list[dict]:
    """The parties whose voice is in a clip: both, for a recording with caller and agent.

    On a stereo line each voice leaks into the other channel, and a clip is
    rendered from both channels, so both parties count as heard.
    """
    rec = get_recording(db, clip["recording_id"])
    return [{"role": "caller", "ref": rec["caller_ref"]}, {"role": "agent", "ref": rec["agent_ref"]}]
