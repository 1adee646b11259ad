"""The data home: one folder that holds all of an installation's state.

Layout::

    HOME/
      clipkit.db      SQLite database (WAL mode)
      audio/          content-addressed store: audio/ab/abcdef....flac
      secret.key      per-installation key, mode 0600, never committed
      config.json     settings (default legal basis, phone region, limits, retention)

Only :func:`clipkit.initialize.init_home` (through :func:`create_files`)
creates a home or a key. Everything else opens an
existing home and fails with :class:`HomeMissing` / :class:`KeyFileError`, so
a cron job started in the wrong folder can never mint a new key (which would
change every anonymized voice and every pseudonym).
"""

from __future__ import annotations

import hashlib
import hmac
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
EXPORTS_DIR = "exports"  # export folders the app writes (the CLI may write them elsewhere)
BUNDLES_DIR = "bundles"  # access bundles the app writes

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
    # a clip must be approved by a manager other than the one who cut it
    "four_eyes_approval": False,
}

LEGAL_BASES = ("contract", "legitimate_interest", "consent")


@dataclass
class Home:
    """An existing data home. Create one with :func:`clipkit.initialize.init_home`, open with :func:`open_home`."""

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
    def exports_dir(self) -> Path:
        """The app's export folders, inside the home (erasure and purge reach them like any copy)."""
        return self.root / EXPORTS_DIR

    @property
    def bundles_dir(self) -> Path:
        """The app's access bundles, inside the home."""
        return self.root / BUNDLES_DIR

    def outbox(self, path: Path) -> bool:
        """True when ``path`` lies in the home's exports or bundles folder (the only places copies may go inside it)."""
        for folder in (self.exports_dir, self.bundles_dir):
            try:
                Path(path).resolve().relative_to(folder.resolve())
                return True
            except ValueError:
                continue
        return False

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

    def log_key(self) -> bytes:
        """The audit log's chain key (:func:`log_key` of this installation's secret)."""
        return log_key(self.secret())

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
    if not isinstance(config.get("four_eyes_approval"), bool):
        raise BadInput(f"four_eyes_approval in {path} must be true or false; it is {config.get('four_eyes_approval')!r}")
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
    private_umask()
    _tighten(root)
    h = Home(root=root, config=_load_config(root))
    # the key is checked up front so no command starts work it cannot finish
    h.secret()
    return h


#: folders 0700, files 0600: raw calls, renderings, the key and password hashes are nobody else's business
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Make every file and folder this process creates owner-only. The one place the umask is set.

    Called by :func:`create_files` and :func:`open_home`, so every command and the
    app create owner-only files from then on: the database and the key alone
    are enough to test phone numbers against the pseudonyms.
    """
    os.umask(PRIVATE_UMASK)


def _tighten(root: Path) -> None:
    """Owner-only modes on a home made by an older version (once: when the root itself is still open)."""
    if not stat.S_IMODE(root.stat().st_mode) & 0o077:
        return
    for folder, dirs, files in os.walk(root):
        for name in files:
            p = Path(folder) / name
            if not p.is_symlink():
                os.chmod(p, stat.S_IMODE(p.stat().st_mode) & 0o700)
        for name in dirs:
            p = Path(folder) / name
            if not p.is_symlink():
                os.chmod(p, 0o700)
    os.chmod(root, 0o700)


def _create_exclusive(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) with ``data``, never following a link and never replacing a file.

    Written under a random name opened with ``O_EXCL | O_NOFOLLOW`` (nobody
    can plant a link or pre-create it), then hard-linked to ``path``, which
    fails if ``path`` exists: a key is never overwritten, not even by a race.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` (0600) through an exclusively created temp file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def log_key(secret: bytes) -> bytes:
    """The key the audit log's chain is made with, derived from the installation key (never stored)."""
    return hmac.new(secret, b"clipkit audit log chain v1", hashlib.sha256).digest()


def create_files(home: str | os.PathLike | None = None, *, config: dict | None = None) -> tuple[Home, bool]:
    """A data home's folders, key and settings, made where missing; the database is the caller's.

    Returns ``(home, created)``, created = there was no database yet. A
    database without its key is refused (:class:`KeyFileError`), never re-keyed.
    Use :func:`clipkit.initialize.init_home`, which also creates the database.
    """
    private_umask()
    root = resolve_home_path(home)
    created = not (root / DB_NAME).exists()
    if root.exists() and not root.is_dir():
        raise BadInput(f"--home {root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    _tighten(root)
    (root / AUDIO_DIR).mkdir(exist_ok=True)
    (root / TMP_DIR).mkdir(exist_ok=True)
    key_path = root / KEY_NAME
    if not key_path.exists():
        if not created:
            # an existing database without its key must not be silently re-keyed
            raise KeyFileError(
                f"{root} has a database but no key file {key_path}; restore the key from your backup"
            )
        try:
            _create_exclusive(key_path, (secrets.token_hex(32) + "\n").encode())
        except FileExistsError:
            raise KeyFileError(f"{key_path} appeared while the key was being created (a link or another "
                               "process); nothing was overwritten — check the folder and run init again") from None
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
    return h, created
