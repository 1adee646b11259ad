"""Which pseudo-voice a caller gets: one per caller, or a fresh one for every clip.

With one voice per caller (the default) a caller sounds the same in every
clip, so a trainer can follow one customer across clips, and so can anyone
holding two exported clips: the privacy bench links two clips of one caller
from one installation at 0-3 % EER (``bench/results/privacy-trained.md``).
With one voice per clip, each clip's caller voice is keyed on the clip as
well, and linking two clips is as hard as identifying the caller from a clip
of another installation. Agents keep one voice each either way (coaching and
training follow agents; they are staff, told of the processing).

The setting lives in the database, so whether a rendering is current can be
decided from the database alone, and every change is logged. Changing it
makes every rendering made under the other setting stale: clips are
anonymized (and approved) again before they can be played by trainers or
exported.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog
from .db import now_iso, transaction
from .errors import BadInput

PER_CALLER = "per-caller"
PER_CLIP = "per-clip"
MODES = (PER_CALLER, PER_CLIP)

migrations = Migrations("clipkit.pseudovoices")


@migrations()
def m001_voice_settings(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE voice_settings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            caller_voice TEXT NOT NULL CHECK (caller_voice IN ('per-caller', 'per-clip')),
            changed_at TEXT NOT NULL,
            changed_by TEXT NOT NULL
        )
        """
    )


def caller_voice(db: Database) -> str:
    """The installation's caller-voice setting: ``"per-caller"`` (default) or ``"per-clip"``."""
    row = db.execute("SELECT caller_voice FROM voice_settings WHERE id = 1").fetchone()
    return row[0] if row else PER_CALLER


def clips_rendered_under(db: Database, mode: str) -> int:
    """How many clips have a rendering made under ``mode``: those a switch away from it sends back to anonymizing."""
    return db.execute("SELECT COUNT(DISTINCT clip_id) FROM renderings WHERE caller_voice = ?", [mode]).fetchone()[0]


def set_caller_voice(db: Database, mode: str, *, actor: str) -> dict:
    """Set the caller-voice setting (logged as ``settings.caller_voice``).

    Returns ``{"caller_voice", "changed", "stale_renderings"}``: how many
    current renderings were made under the other setting and now need
    anonymizing again.

    Raises
    ------
    BadInput
        If ``mode`` is not one of :data:`MODES`.
    """
    if mode not in MODES:
        raise BadInput(f"caller voice {mode!r} is not one of {', '.join(MODES)}")
    with transaction(db):
        before = caller_voice(db)
        if before == mode:
            return {"caller_voice": mode, "changed": False, "stale_renderings": 0}
        db.execute(
            """INSERT INTO voice_settings (id, caller_voice, changed_at, changed_by) VALUES (1, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET caller_voice = excluded.caller_voice,
                   changed_at = excluded.changed_at, changed_by = excluded.changed_by""",
            [mode, now_iso(), actor],
        )
        stale = clips_rendered_under(db, before)
        auditlog.append(db, kind="settings.caller_voice", actor=actor, data={"from": before, "to": mode})
    return {"caller_voice": mode, "changed": True, "stale_renderings": stale}


def voice_id(base: str, *, mode: str, unit: str | None) -> str:
    """The id a caller's (or a mono recording's) voice is keyed on.

    Parameters
    ----------
    base : str
        The party's pseudonym, or ``"recording:<sha256>"`` for a mono recording.
    mode : {"per-caller", "per-clip"}
    unit : str or None
        What one rendering is of (``"clip:12"``, ``"review:3"``); needed with ``"per-clip"``.
    """
    if mode == PER_CALLER:
        return base
    if mode != PER_CLIP:
        raise BadInput(f"caller voice {mode!r} is not one of {', '.join(MODES)}")
    if not unit:
        raise BadInput("a voice per clip needs the clip it is for")
    return f"{base}/{unit}"


def describe(mode: str) -> str:
    """The setting in plain words, for manifests and pages."""
    if mode == PER_CLIP:
        return ("Each clip gives the caller a voice of its own, so two clips of one caller cannot be linked by "
                "voice more easily than a caller can be identified.")
    return ("A caller keeps one anonymized voice in every clip of this installation: two clips of one caller "
            "can be linked by voice, though not to the person.")
