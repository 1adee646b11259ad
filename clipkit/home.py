"""The data home: one folder that holds all of an installation's state.

Layout::

    HOME/
      clipkit.db      SQLite database (WAL mode)
      audio/          content-addressed store: audio/ab/abcdef....flac
      secret.key      per-installation key, mode 0600, never committed
      config.json     settings (default legal basis, phone region, limits, retention)

Only :func:`init_home` creates a home or a key. Everything else opens an
existing home and fails with :class:`HomeMissing` / :class:`KeyFileError`, so
a cron job started in the wrong folder can never mint a new key (which would
change every anonymized voice and every pseudonym).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput, HomeMissing, KeyFileError

DB_NAME = "clipkit.db"
KEY_NAME = "secret.key"
CONFIG_NAME = "config.json"
AUDIO_DIR = "audio"
TMP_DIR = "tmp"

DEFAULT_HOME = "clipkit-data"
HOME_ENV = "CLIPKIT_HOME"

DEFAULT_CONFIG: dict = {
    "default_basis": "legitimate_interest",
    "phone_region": "NL",
    "max_recording_hours": 4.0,
    "min_clip_s": 1.0,
    "max_clip_s": 600.0,
    # days after the call a recording is kept, per purpose it serves
    "retention_days": {"quality": 90, "training": 730, "dispute": 365},
    # the app logs a user out after this long without activity
    "session_idle_minutes": 30,
}

LEGAL_BASES = ("contract", "legitimate_interest", "consent")


@dataclass
class Home:
    """An existing data home. Create one with :func:`init_home`, open with :func:`open_home`."""

    root: Path
    config: dict = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def audio_dir(self) -> Path:
        return self.root / AUDIO_DIR

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the same file system as the store, so renames are atomic."""
        return self.root / TMP_DIR

    @property
    def key_path(self) -> Path:
        return self.root / KEY_NAME

    def secret(self) -> bytes:
        """The installation secret (32 bytes).

        Raises
        ------
        KeyFileError
            If the key file is missing, unreadable or malformed.
        """
        path = self.key_path
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise KeyFileError(
                f"the key file {path} is missing; restore it from your backup "
                "(a new key would change every pseudonym and anonymized voice)"
            ) from None
        except OSError as e:
            raise KeyFileError(f"cannot read the key file {path}: {e.strerror}") from None
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise KeyFileError(f"the key file {path} is malformed (expected 64 hex digits)")
        return key

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.root.resolve()))

    def contains(self, path: Path) -> bool:
        """True when ``path`` lies inside this home (after resolving links)."""
        try:
            Path(path).resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True


def resolve_home_path(home: str | os.PathLike | None) -> Path:
    """``--home`` wins, then ``$CLIPKIT_HOME``, then ``./clipkit-data``."""
    if home is None:
        home = os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(home).expanduser()


def _load_config(root: Path) -> dict:
    config = json.loads(json.dumps(DEFAULT_CONFIG))
    path = root / CONFIG_NAME
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise BadInput(f"the settings file {path} is not valid JSON: {e}") from None
        config.update(stored)
    if config["default_basis"] not in LEGAL_BASES:
        raise BadInput(
            f"default_basis {config['default_basis']!r} in {path} is not one of {', '.join(LEGAL_BASES)}"
        )
    idle = config.get("session_idle_minutes")
    if isinstance(idle, bool) or not isinstance(idle, (int, float)) or not 1 <= idle <= 24 * 60:
        raise BadInput(f"session_idle_minutes in {path} must be a number of minutes from 1 to 1440; it is {idle!r}")
    return config


def session_idle_s(home: "Home") -> float:
    """Seconds without activity after which the app ends a session (``session_idle_minutes``)."""
    return float(home.config["session_idle_minutes"]) * 60.0


def open_home(home: str | os.PathLike | None = None) -> Home:
    """Open an existing data home.

    Raises
    ------
    HomeMissing
        If the folder or its database does not exist.
    """
    root = resolve_home_path(home)
    if not (root / DB_NAME).exists():
        raise HomeMissing(
            f"no clipkit data home at {root} (run 'clipkit init --home {root}' to create one, "
            f"or pass --home / set {HOME_ENV})"
        )
    h = Home(root=root, config=_load_config(root))
    # the key is checked up front so no command starts work it cannot finish
    h.secret()
    return h


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (no window where it is world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def init_home(home: str | os.PathLike | None = None, *, config: dict | None = None) -> tuple[Home, bool]:
    """Create a data home (folder, key, settings, database) if it does not exist.

    Returns ``(home, created)``. An existing home is opened, never re-keyed.
    """
    from . import db as dbmod

    root = resolve_home_path(home)
    created = not (root / DB_NAME).exists()
    if root.exists() and not root.is_dir():
        raise BadInput(f"--home {root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / AUDIO_DIR).mkdir(exist_ok=True)
    (root / TMP_DIR).mkdir(exist_ok=True)
    key_path = root / KEY_NAME
    if not key_path.exists():
        if not created:
            # an existing database without its key must not be silently re-keyed
            raise KeyFileError(
                f"{root} has a database but no key file {key_path}; restore the key from your backup"
            )
        _write_private(key_path, secrets.token_hex(32) + "\n")
    mode = stat.S_IMODE(key_path.stat().st_mode)
    if mode & 0o077:
        os.chmod(key_path, 0o600)
    config_path = root / CONFIG_NAME
    if not config_path.exists():
        merged = json.loads(json.dumps(DEFAULT_CONFIG))
        merged.update(config or {})
        write_atomic(config_path, (json.dumps(merged, indent=2) + "\n").encode())
    h = Home(root=root, config=_load_config(root))
    h.secret()
    database = dbmod.connect(h)
    database.close()
    return h, created
