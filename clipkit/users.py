"""Local accounts for the app: names, roles, scrypt-hashed passwords, login throttling.

Accounts are managed from the CLI (``clipkit user add|passwd|disable|enable|list``)
and checked by the app's login form through :func:`authenticate`, which
returns a :class:`User`. The role-checked functions the app's pages call
(:mod:`clipkit.access`) take that ``User``, never a bare role string.

Passwords are stored as ``scrypt$N$r$p$salt$hash`` (hex), so the cost can be
raised later without breaking old hashes. Failed logins are counted per name
(by a hash of the name, so a password typed into the name field is not kept):
after :data:`MAX_FAILURES` failures within :data:`FAILURE_WINDOW_S`, the name
is refused, even with the right password, until those failures age out of the
window. Every login, failure and refusal is written to the log; a password
never is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog
from .db import now_iso, transaction
from .errors import BadInput, ClipkitError, NotFound

ROLES = ("manager", "trainer", "compliance")

# scrypt cost: 16 MiB and ~50 ms per check on a laptop core
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
MIN_PASSWORD_LEN = 10
MAX_PASSWORD_LEN = 1024

MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")

migrations = Migrations("clipkit.users")


@migrations()
def m001_users(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('manager', 'trainer', 'compliance')),
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            password_changed_at TEXT NOT NULL,
            disabled_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            name_key TEXT NOT NULL,   -- sha256 of the normalised name, never the typed text
            at REAL NOT NULL          -- unix time
        )
        """
    )
    db.execute("CREATE INDEX login_failures_name ON login_failures(name_key, at)")


class LoginFailed(ClipkitError):
    """Wrong name or password (the message does not say which)."""

    code = "login_failed"


class LoginLocked(LoginFailed):
    """Too many failed logins for a name; refused until the window passes."""

    code = "login_locked"


@dataclass(frozen=True)
class User:
    """An authenticated account: what the role-checked functions take."""

    name: str
    role: str


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of a password, with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; compared in constant time."""
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(hash_hex)
        digest = _scrypt(password, bytes.fromhex(salt_hex), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=128 * r * n * 2 + (1 << 20)
    )


# checked against when a name is unknown, so a miss costs as long as a hit
_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(16))
    return _DUMMY_HASH


def generate_password() -> str:
    """A random 20-character password (about 119 bits)."""
    return secrets.token_urlsafe(15)


def _check_password(password: str) -> str:
    if not isinstance(password, str):
        raise BadInput("the password must be text")
    if len(password) < MIN_PASSWORD_LEN:
        raise BadInput(f"the password is {len(password)} characters; at least {MIN_PASSWORD_LEN} are required")
    if len(password) > MAX_PASSWORD_LEN:
        raise BadInput(f"the password is longer than {MAX_PASSWORD_LEN} characters")
    return password


# ---------------------------------------------------------------- accounts


def normalise_name(name: str) -> str:
    """NFKC, trimmed, lower-cased account name.

    Raises
    ------
    BadInput
        Unless it is 1–64 characters of ``a-z 0-9 . _ @ -``, starting with a letter or digit.
    """
    text = unicodedata.normalize("NFKC", str(name or "")).strip().lower()
    if not _NAME_RE.fullmatch(text):
        raise BadInput(
            f"user name {name!r} must be 1–64 characters of a-z, 0-9, '.', '_', '@', '-', "
            "starting with a letter or digit"
        )
    return text


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _row(db: Database, name: str) -> dict | None:
    rows = list(db.query("SELECT * FROM users WHERE name = ?", [name]))
    return rows[0] if rows else None


def add_user(db: Database, name: str, *, role: str, password: str | None = None, actor: str = "cli") -> str:
    """Create an account; returns its password (a generated one when ``password`` is None).

    Raises
    ------
    BadInput
        For a bad name, an unknown role, a too-short password, or a name already taken.
    """
    name = normalise_name(name)
    _check_role(role)
    password = generate_password() if password is None else _check_password(password)
    hashed = hash_password(password)
    now = now_iso()
    with transaction(db):
        if _row(db, name) is not None:
            raise BadInput(f"a user named {name!r} already exists")
        db["users"].insert(
            {"name": name, "role": role, "password_hash": hashed, "created_at": now, "created_by": actor,
             "password_changed_at": now, "disabled_at": None}
        )
        auditlog.append(db, kind="user.add", actor=actor, data={"name": name, "role": role})
    return password


def set_password(db: Database, name: str, password: str | None = None, *, actor: str = "cli") -> str:
    """Replace an account's password (generated when None) and clear its failed-login count."""
    name = normalise_name(name)
    password = generate_password() if password is None else _check_password(password)
    hashed = hash_password(password)
    with transaction(db):
        if _row(db, name) is None:
            raise NotFound(f"no user named {name!r}")
        db.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                   [hashed, now_iso(), name])
        db.execute("DELETE FROM login_failures WHERE name_key = ?", [_name_key(name)])
        auditlog.append(db, kind="user.passwd", actor=actor, data={"name": name})
    return password


def set_disabled(db: Database, name: str, disabled: bool = True, *, actor: str = "cli") -> dict:
    """Disable (or re-enable) an account. A disabled account cannot log in and its open sessions stop working."""
    name = normalise_name(name)
    with transaction(db):
        if _row(db, name) is None:
            raise NotFound(f"no user named {name!r}")
        db.execute("UPDATE users SET disabled_at = ? WHERE name = ?", [now_iso() if disabled else None, name])
        auditlog.append(db, kind="user.disable" if disabled else "user.enable", actor=actor, data={"name": name})
    return get_user_info(db, name)


def disable_user(db: Database, name: str, *, actor: str = "cli") -> dict:
    return set_disabled(db, name, True, actor=actor)


def enable_user(db: Database, name: str, *, actor: str = "cli") -> dict:
    return set_disabled(db, name, False, actor=actor)


def get_user_info(db: Database, name: str) -> dict:
    """An account without its password hash."""
    row = _row(db, normalise_name(name))
    if row is None:
        raise NotFound(f"no user named {name!r}")
    row.pop("password_hash")
    row["disabled"] = row["disabled_at"] is not None
    return row


def list_users(db: Database) -> list[dict]:
    """Every account, by name, without password hashes."""
    rows = list(db.query(
        "SELECT name, role, created_at, created_by, password_changed_at, disabled_at FROM users ORDER BY name"
    ))
    for r in rows:
        r["disabled"] = r["disabled_at"] is not None
    return rows


def active_user(db: Database, user: User) -> User:
    """The account behind ``user`` as it is now.

    Raises
    ------
    Forbidden
        If the account no longer exists, is disabled, or its role changed
        since the user logged in.
    """
    from .errors import Forbidden

    if not isinstance(user, User):
        raise Forbidden("this action needs a logged-in user")
    row = _row(db, user.name)
    if row is None or row["disabled_at"] is not None:
        raise Forbidden(f"the account {user.name!r} is disabled or no longer exists; log in again")
    if row["role"] != user.role:
        raise Forbidden(f"the role of {user.name!r} changed since login; log in again")
    return user


# ---------------------------------------------------------------- login


def _name_key(name: str) -> str:
    return hashlib.sha256(b"login:" + name.encode("utf-8")).hexdigest()


def lock_remaining_s(db: Database, name: str, *, now: float | None = None) -> float:
    """Seconds until ``name`` may try again (0 when it is not locked)."""
    try:
        key = _name_key(normalise_name(name))
    except BadInput:
        key = _name_key(str(name))
    now = time.time() if now is None else now
    times = [r[0] for r in db.execute(
        "SELECT at FROM login_failures WHERE name_key = ? AND at > ? ORDER BY at DESC LIMIT ?",
        [key, now - FAILURE_WINDOW_S, MAX_FAILURES],
    )]
    if len(times) < MAX_FAILURES:
        return 0.0
    # unlocked when the oldest of the last MAX_FAILURES failures leaves the window
    return max(0.0, times[-1] + FAILURE_WINDOW_S - now)


def authenticate(db: Database, name: str, password: str, *, now: float | None = None) -> User:
    """Check a name and password; returns the :class:`User`.

    Raises
    ------
    LoginLocked
        After :data:`MAX_FAILURES` failures for the name within
        :data:`FAILURE_WINDOW_S` seconds, even when the password is right.
    LoginFailed
        For an unknown or disabled name or a wrong password (one message for all).
    """
    now = time.time() if now is None else now
    try:
        norm = normalise_name(name)
    except BadInput:
        norm = None
    key = _name_key(norm if norm is not None else str(name))
    row = _row(db, norm) if norm is not None else None
    # the name is logged only when it is an account: a password typed into the
    # name field must not end up in the permanent log
    logged_name = row["name"] if row else None

    wait = lock_remaining_s(db, norm if norm is not None else str(name), now=now)
    if wait > 0:
        auditlog.append(db, kind="user.login", actor=logged_name or "anonymous",
                        data={"name": logged_name, "outcome": "locked"})
        minutes = max(1, int(-(-wait // 60)))
        raise LoginLocked(
            f"too many failed logins for this name; try again in {minutes} minute{'s' if minutes != 1 else ''}"
        )

    stored = row["password_hash"] if row else _dummy_hash()
    ok = verify_password(password if isinstance(password, str) else "", stored)
    if row is None:
        reason = "unknown_user"
    elif not ok:
        reason = "bad_password"
    elif row["disabled_at"] is not None:
        reason = "disabled"
    else:
        reason = None

    with transaction(db):
        db.execute("DELETE FROM login_failures WHERE at <= ?", [now - FAILURE_WINDOW_S])
        if reason is None:
            db.execute("DELETE FROM login_failures WHERE name_key = ?", [key])
            auditlog.append(db, kind="user.login", actor=row["name"],
                            data={"name": row["name"], "role": row["role"], "outcome": "ok"})
        else:
            db["login_failures"].insert({"name_key": key, "at": now})
            auditlog.append(db, kind="user.login", actor=logged_name or "anonymous",
                            data={"name": logged_name, "outcome": "failed", "reason": reason})
    if reason is not None:
        raise LoginFailed("wrong user name or password, or the account is disabled")
    return User(name=row["name"], role=row["role"])


def logout(db: Database, user: User) -> None:
    """Write the end of a session to the log."""
    auditlog.append(db, kind="user.logout", actor=user.name, data={"name": user.name})
