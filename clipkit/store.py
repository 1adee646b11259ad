"""The audio store's housekeeping: locked scratch folders, placing files atomically, reconciling after a crash.

Audio reaches the store (``audio/``) in three steps: it is written into a
*scratch folder* ``tmp/<kind>-<token>/`` that its process holds an exclusive
``flock`` on for as long as it lives; the store paths it is about to fill are
written to the folder's journal; then, inside the database write transaction
that adds the rows pointing at them, the files are renamed into place. So:

- a process killed while copying leaves only its scratch folder, whose lock
  died with it;
- one killed after a rename but before its commit leaves a store file with
  no row, named in the journal of a dead scratch folder;
- a file renamed into place while another process looks is only ever seen
  by someone holding the write lock too, after the commit.

:func:`reconcile` runs whenever a command opens a home (cheap: it only lists
``tmp/``): for every scratch folder whose lock it can take — its owner is
dead, so nothing can race it — it removes the journal's store files that no
row names, then the folder. A running import's folder is locked and left
alone: the grace period is the owner's life, not a guess at a duration.
:func:`sweep` is the thorough version for erasure and purge: under the write
lock, every file in ``audio/`` that no row names is removed.

``flock`` needs a local file system (or one whose locks work, e.g. NFSv4);
see README.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import time
from pathlib import Path

from sqlite_utils import Database

from .db import transaction
from .home import Home

LOCK_NAME = ".lock"
JOURNAL_NAME = ".placing.json"
#: tables whose rows name files in the store (a file no row of these names is an orphan)
STORE_TABLES = ("recordings", "renderings", "review_renderings")
#: a loose file in tmp/ (not in a scratch folder) older than this is a leftover of an older version
STALE_LOOSE_S = 3600


def _seam(step: str) -> None:
    """A named point between two steps of a write (tests kill a process here; does nothing otherwise)."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Scratch:
    """A scratch folder in ``tmp/`` held under an exclusive lock for the life of this object (or process).

    Use as a context manager; the folder and everything in it are removed on
    exit. Files made here are on the store's file system, so a rename into
    the store is atomic.
    """

    def __init__(self, home: Home, kind: str):
        home.tmp_dir.mkdir(exist_ok=True)
        self.path = home.tmp_dir / f"{kind}-{secrets.token_hex(8)}"
        self.path.mkdir()
        self._fd = os.open(self.path / LOCK_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def journal(self, store_paths: list[Path]) -> None:
        """Name, durably, the store files about to be renamed into place (before the first rename)."""
        body = json.dumps([str(p) for p in store_paths]).encode()
        fd = os.open(self.path / JOURNAL_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.path)

    def close(self) -> None:
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)  # the lock goes last: nobody may take the folder while it is being removed
        self._fd = None


def place(src: Path, dest: Path, *, sync: bool = True) -> None:
    """Rename a staged, fsynced file into the store (call inside the transaction that adds its row).

    With ``sync=False`` the caller fsyncs the folders once for a whole batch (:func:`fsync_dirs`).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    if sync:
        fsync_dir(dest.parent)


def fsync_dirs(paths) -> None:
    """fsync each distinct parent folder of ``paths`` once (the renames of a batch become durable)."""
    for folder in sorted({Path(p).parent for p in paths}):
        fsync_dir(folder)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _referenced(db: Database, home: Home, path: Path) -> bool:
    try:
        rel = home.relative(path)
    except ValueError:
        return True  # outside the home: never ours to remove here
    return any(db.execute(f"SELECT 1 FROM {table} WHERE path = ?", [rel]).fetchone()
               for table in STORE_TABLES)


def _try_lock(folder: Path) -> int | None:
    """A lock on a scratch folder whose owner is gone (its fd), or None while the owner lives."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return -1  # no lock file: a folder its owner had not finished making, or is removing
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def reconcile(db: Database, home: Home) -> dict:
    """Clean up after processes that died mid-write (see the module docstring); returns what was removed.

    ``{"scratch": n folders, "store": [relative paths of store files no row named], "loose": n}``.
    """
    out = {"scratch": 0, "store": [], "loose": 0}
    if not home.tmp_dir.exists():
        return out
    now = time.time()
    for entry in sorted(home.tmp_dir.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            fd = _try_lock(entry)
            if fd is None:
                continue  # its owner is alive
            if fd == -1 and now - entry.stat().st_mtime < STALE_LOOSE_S:
                continue  # being made (or removed) right now
            try:
                journal = entry / JOURNAL_NAME
                if journal.is_file():
                    with transaction(db):  # a live writer renames only under this lock: nothing races us
                        for p in json.loads(journal.read_text() or "[]"):
                            path = Path(p)
                            if path.is_file() and not _referenced(db, home, path):
                                path.unlink()
                                out["store"].append(home.relative(path))
                shutil.rmtree(entry, ignore_errors=True)
                out["scratch"] += 1
            finally:
                if fd not in (None, -1):
                    os.close(fd)
        elif entry.is_file() or entry.is_symlink():
            try:
                if now - entry.lstat().st_mtime > STALE_LOOSE_S:
                    entry.unlink()
                    out["loose"] += 1
            except FileNotFoundError:
                pass
    return out


def orphans(db: Database, home: Home) -> list[str]:
    """Files in ``audio/`` no row names and no deletion is queued for (relative paths; nothing is changed)."""
    if not home.audio_dir.exists():
        return []
    queued = {r[0] for r in db.execute("SELECT path FROM pending_deletions")}
    return [home.relative(p) for p in sorted(home.audio_dir.rglob("*"))
            if p.is_file() and not p.is_symlink() and home.relative(p) not in queued and not _referenced(db, home, p)]


def sweep(db: Database, home: Home) -> list[str]:
    """Remove every file in ``audio/`` that no row names (after :func:`reconcile`); returns their paths.

    Held under the write lock for the whole walk, so no file being placed by
    a live process (which renames only under that lock) can be mistaken for
    an orphan. Files queued in ``pending_deletions`` are left to that queue.
    """
    reconcile(db, home)
    with transaction(db):
        removed = orphans(db, home)
        for rel in removed:
            (home.root / rel).unlink(missing_ok=True)
    return removed
