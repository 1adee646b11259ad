"""Playlists: a trainer's named, ordered selection of library clips for one session.

A playlist belongs to the account that made it and holds clip ids in order,
nothing else. It grants nothing: playing or exporting its clips goes through
the same checks as any clip (a clip withdrawn since is simply not playable),
and a clip that is deleted or erased leaves every playlist with it
(``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .db import now_iso, transaction
from .errors import BadInput, NotFound

migrations = Migrations("clipkit.playlists")

MAX_NAME = 80
MAX_ITEMS = 200


@migrations()
def m001_playlists(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE playlists (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (owner, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE playlist_items (
            playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
            clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            PRIMARY KEY (playlist_id, clip_id)
        )
        """
    )


def _name(name: str) -> str:
    value = " ".join(str(name or "").split())
    if not value:
        raise BadInput("the playlist needs a name")
    if len(value) > MAX_NAME:
        raise BadInput(f"the playlist name is {len(value)} characters; at most {MAX_NAME} are allowed")
    return value


def save(db: Database, *, owner: str, name: str, clip_ids: Sequence[int]) -> dict:
    """Create the owner's playlist ``name``, or replace its clips; returns it."""
    name = _name(name)
    ids = list(dict.fromkeys(int(c) for c in clip_ids))
    if not ids:
        raise BadInput("a playlist needs at least one clip")
    if len(ids) > MAX_ITEMS:
        raise BadInput(f"a playlist holds at most {MAX_ITEMS} clips")
    now = now_iso()
    with transaction(db):
        missing = [c for c in ids if not db.execute("SELECT 1 FROM clips WHERE id = ?", [c]).fetchone()]
        if missing:
            raise NotFound(f"no clip {missing[0]}")
        row = db.execute("SELECT id FROM playlists WHERE owner = ? AND name = ?", [owner, name]).fetchone()
        if row:
            pid = row[0]
            db.execute("UPDATE playlists SET updated_at = ? WHERE id = ?", [now, pid])
            db.execute("DELETE FROM playlist_items WHERE playlist_id = ?", [pid])
        else:
            pid = db["playlists"].insert({"owner": owner, "name": name, "created_at": now, "updated_at": now}).last_pk
        db["playlist_items"].insert_all([{"playlist_id": pid, "clip_id": c, "position": i} for i, c in enumerate(ids)])
    return get(db, pid, owner=owner)


def get(db: Database, playlist_id: int, *, owner: str) -> dict:
    """One of the owner's playlists with its clip ids in order (another account's is not found)."""
    row = db.execute("SELECT id, name, created_at, updated_at FROM playlists WHERE id = ? AND owner = ?",
                     [int(playlist_id), owner]).fetchone()
    if row is None:
        raise NotFound(f"no playlist {playlist_id} of yours")
    clips = [r[0] for r in db.execute("SELECT clip_id FROM playlist_items WHERE playlist_id = ? ORDER BY position",
                                      [row[0]])]
    return {"id": row[0], "name": row[1], "created_at": row[2], "updated_at": row[3], "clip_ids": clips}


def listing(db: Database, *, owner: str) -> list[dict]:
    """The owner's playlists, by name."""
    return [get(db, r[0], owner=owner) for r in db.execute("SELECT id FROM playlists WHERE owner = ? ORDER BY name",
                                                            [owner])]


def delete(db: Database, playlist_id: int, *, owner: str) -> None:
    get(db, playlist_id, owner=owner)
    with transaction(db):
        db.execute("DELETE FROM playlists WHERE id = ? AND owner = ?", [int(playlist_id), owner])
