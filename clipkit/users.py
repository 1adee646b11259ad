"""Local accounts for the app: names, roles, scrypt-hashed passwords, login throttling.

Accounts are managed from the CLI (``clipkit user add|passwd|disable|enable|unlock|list``)
and checked by the app's login form through :func:`authenticate`, which
returns a :class:`User`. The role-checked functions the app's pages call
(:mod:`clipkit.access`) take that ``User``, never a bare role string.

Passwords are stored as ``scrypt$N$r$p$salt$hash`` (hex), so the cost can be
raised later without breaking old hashes.

Sessions are server-side: a login makes a random token, of which only the
sha256 is stored (``sessions``), and the :class:`User` carries the token.
:func:`active_user` accepts a user only while their session is live: not
logged out, not idle for longer than its idle timeout (30 minutes unless the
installation says otherwise), not older than the account's last password
change, the account enabled and its role unchanged. A password change,
disabling the account and :func:`logout` revoke sessions at once.

Failed logins are throttled per account *and* source (the client address the
app sees), counted by keyed hashes so a password typed into the name field is
not kept: after :data:`MAX_FAILURES` failures from one source within
:data:`FAILURE_WINDOW_S`, that source is refused for that account (even with
the right password) until they age out; someone elsewhere cannot lock a user
out that way. A much higher ceiling, :data:`MAX_FAILURES_ACCOUNT`, over all
sources stops guessing spread over many addresses (an administrator lifts it
with ``clipkit user unlock``). The check and the count are one transaction,
taken before the (slow) password check, so parallel attempts cannot all slip
past the limit. Every login, failure and refusal is written to the log; a
password never is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass, field

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import auditlog
from .db import now_iso, transaction
from .errors import BadInput, ClipkitError, NotFound

ROLES = ("manager", "trainer", "compliance", "agent")

# scrypt cost: 16 MiB and ~50 ms per check on a laptop core
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
MIN_PASSWORD_LEN = 10
MAX_PASSWORD_LEN = 1024

MAX_FAILURES = 5  # per account and source, within the window
MAX_FAILURES_ACCOUNT = 50  # per account over every source, within the window
FAILURE_WINDOW_S = 15 * 60
DEFAULT_IDLE_S = 30 * 60
MAX_SESSION_S = 12 * 3600  # a session ends after a working day, however active
_TOUCH_EVERY_S = 30.0  # last_seen is written at most this often per session

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


@migrations()
def m002_sessions(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,    -- sha256 of the token; the token itself is never stored
            name TEXT NOT NULL REFERENCES users(name),
            created_at TEXT NOT NULL,       -- UTC ISO, compared with users.password_changed_at
            created_unix REAL NOT NULL,
            last_seen REAL NOT NULL,        -- unix time
            idle_s REAL NOT NULL,
            source TEXT NOT NULL,           -- keyed hash of the client address
            revoked_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX sessions_name ON sessions(name)")
    # failures are now counted per account and source; rows of the old scheme count as source ''
    db.execute("ALTER TABLE login_failures ADD COLUMN source_key TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX login_failures_source ON login_failures(name_key, source_key, at)")


class LoginFailed(ClipkitError):
    """Wrong name or password (the message does not say which)."""

    code = "login_failed"


class LoginLocked(LoginFailed):
    """Too many failed logins for a name; refused until the window passes."""

    code = "login_locked"


@dataclass(frozen=True)
class User:
    """An authenticated account: what the role-checked functions take.

    ``session`` is the login's secret token (kept out of ``repr``); a User
    without a live session is refused by :func:`active_user`.
    """

    name: str
    role: str
    session: str | None = field(default=None, repr=False, compare=False)


def forget_agent_account(db: Database, agent_ref: str) -> int:
    """Delete the login of an erased agent, its sessions and failed-login counts (inside the erasure)."""
    names = [r[0] for r in db.execute("SELECT name FROM users WHERE agent_ref = ?", [agent_ref])]
    for name in names:
        db.execute("DELETE FROM sessions WHERE name = ?", [name])
        db.execute("DELETE FROM login_failures WHERE name_key = ?", [_name_key(name)])
        db.execute("DELETE FROM users WHERE name = ?", [name])
    return len(names)


def agent_ref_of(db: Database, user: User) -> str | None:
    """The party an agent account belongs to (None for other roles)."""
    row = db.execute("SELECT agent_ref FROM users WHERE name = ?", [user.name]).fetchone()
    return row[0] if row else None


@migrations()
def m003_agent_role(db: Database) -> None:
    # the agent role (one-on-one coaching: an agent hears their own reviews), bound to the agent's
    # party: the CHECK on role changes, so the table is rebuilt (references to it are checked at commit)
    db.execute("PRAGMA defer_foreign_keys = ON")
    db.execute(
        """
        CREATE TABLE users_new (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('manager', 'trainer', 'compliance', 'agent')),
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            password_changed_at TEXT NOT NULL,
            disabled_at TEXT,
            agent_ref TEXT UNIQUE,           -- the agent's party, for role 'agent' (one account per agent)
            CHECK ((role = 'agent') = (agent_ref IS NOT NULL))
        )
        """
    )
    db.execute("""INSERT INTO users_new (name, role, password_hash, created_at, created_by, password_changed_at,
                  disabled_at) SELECT name, role, password_hash, created_at, created_by, password_changed_at,
                  disabled_at FROM users""")
    db.execute("DROP TABLE users")
    db.execute("ALTER TABLE users_new RENAME TO users")


@migrations()
def m004_admin(db: Database) -> None:
    # account administrators: managers who may add, disable, reset and unlock accounts in the app.
    # Nobody is one after the upgrade; `clipkit user admin NAME` grants it.
    db.execute("ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0")


def is_admin(db: Database, name: str) -> bool:
    """Whether the account is an enabled manager with the account-administrator right."""
    row = db.execute("SELECT role, admin, disabled_at FROM users WHERE name = ?", [name]).fetchone()
    return bool(row and row[0] == "manager" and row[1] and row[2] is None)


def set_admin(db: Database, name: str, admin: bool = True, *, actor: str = "cli") -> dict:
    """Grant (or take back) the account-administrator right; only managers can hold it.

    Raises
    ------
    BadInput
        For an account that is not a manager, or for taking the right from the
        last enabled administrator (nobody could manage accounts in the app).
    """
    name = normalise_name(name)
    with transaction(db):
        row = _row(db, name)
        if row is None:
            raise NotFound(f"no user named {name!r}")
        if admin and row["role"] != "manager":
            raise BadInput(f"{name!r} is a {row['role']}; only a manager can administer accounts")
        if not admin and row["admin"] and _other_admins(db, name) == 0:
            raise BadInput(f"{name!r} is the last account administrator; make another manager one first")
        db.execute("UPDATE users SET admin = ? WHERE name = ?", [int(bool(admin)), name])
        auditlog.append(db, kind="user.admin", actor=actor, data={"name": name, "admin": bool(admin)})
    return get_user_info(db, name)


def _other_admins(db: Database, name: str) -> int:
    return db.execute("SELECT count(*) FROM users WHERE admin = 1 AND disabled_at IS NULL AND role = 'manager' "
                      "AND name != ?", [name]).fetchone()[0]


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


def add_user(db: Database, name: str, *, role: str, password: str | None = None, actor: str = "cli",
             agent_ref: str | None = None, admin: bool = False) -> str:
    """Create an account; returns its password (a generated one when ``password`` is None).

    Parameters
    ----------
    agent_ref : str, optional
        For role ``agent``, required: the agent's party ref (see
        :func:`clipkit.coaching.add_agent_account`, which resolves an agent
        identifier to it). One account per agent.

    Raises
    ------
    BadInput
        For a bad name, an unknown role, a too-short password, a name already
        taken, an agent account without its agent (or another role with one),
        or an agent who has an account already, or ``admin`` for a role other
        than manager.
    """
    name = normalise_name(name)
    _check_role(role)
    if admin and role != "manager":
        raise BadInput(f"only a manager can administer accounts, not a {role}")
    if (role == "agent") != (agent_ref is not None):
        raise BadInput("an agent account needs the agent it belongs to (--agent ID); other roles have none")
    password = generate_password() if password is None else _check_password(password)
    hashed = hash_password(password)
    now = now_iso()
    with transaction(db):
        if _row(db, name) is not None:
            raise BadInput(f"a user named {name!r} already exists")
        if agent_ref is not None:
            other = db.execute("SELECT name FROM users WHERE agent_ref = ?", [agent_ref]).fetchone()
            if other:
                raise BadInput(f"that agent already has an account ({other[0]!r}); one account per agent")
        db["users"].insert(
            {"name": name, "role": role, "password_hash": hashed, "created_at": now, "created_by": actor,
             "password_changed_at": now, "disabled_at": None, "agent_ref": agent_ref, "admin": int(bool(admin))}
        )
        data = {"name": name, "role": role}
        if admin:
            data["admin"] = True
        if agent_ref is not None:
            data["agent"] = agent_ref
        auditlog.append(db, kind="user.add", actor=actor, data=data)
    return password


def set_password(db: Database, name: str, password: str | None = None, *, actor: str = "cli") -> str:
    """Replace an account's password (generated when None); ends every session and clears its lock-outs."""
    name = normalise_name(name)
    password = generate_password() if password is None else _check_password(password)
    hashed = hash_password(password)
    with transaction(db):
        if _row(db, name) is None:
            raise NotFound(f"no user named {name!r}")
        now = now_iso()
        db.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?", [hashed, now, name])
        db.execute("DELETE FROM login_failures WHERE name_key = ?", [_name_key(name)])
        _revoke_all(db, name, now)
        auditlog.append(db, kind="user.passwd", actor=actor, data={"name": name})
    return password


def change_own_password(db: Database, user: User, *, old: str, new: str, source: str = "unknown",
                        idle_s: float = DEFAULT_IDLE_S) -> User:
    """A logged-in user changes their password: every session ends, this one is replaced by a new one.

    Raises
    ------
    LoginFailed
        If ``old`` is not the current password (nothing changes).
    BadInput
        For a new password that is too short, or the same as the old one.
    """
    user = active_user(db, user)
    row = _row(db, user.name)
    if not verify_password(old if isinstance(old, str) else "", row["password_hash"]):
        auditlog.append(db, kind="user.passwd", actor=user.name, data={"name": user.name, "outcome": "wrong_password"})
        raise LoginFailed("the current password is not right; the password was not changed")
    if new == old:
        raise BadInput("the new password must differ from the current one")
    set_password(db, user.name, new, actor=user.name)
    return start_session(db, user.name, source=source, idle_s=idle_s)


def set_disabled(db: Database, name: str, disabled: bool = True, *, actor: str = "cli") -> dict:
    """Disable (or re-enable) an account. A disabled account cannot log in and its sessions end at once."""
    name = normalise_name(name)
    with transaction(db):
        row = _row(db, name)
        if row is None:
            raise NotFound(f"no user named {name!r}")
        if disabled and row["admin"] and row["disabled_at"] is None and _other_admins(db, name) == 0:
            raise BadInput(f"{name!r} is the last account administrator; make another manager one first")
        now = now_iso()
        db.execute("UPDATE users SET disabled_at = ? WHERE name = ?", [now if disabled else None, name])
        if disabled:
            _revoke_all(db, name, now)
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
    row["admin"] = bool(row["admin"])
    return row


def list_users(db: Database) -> list[dict]:
    """Every account, by name, without password hashes."""
    rows = list(db.query(
        "SELECT name, role, created_at, created_by, password_changed_at, disabled_at, agent_ref, admin FROM users "
        "ORDER BY name"
    ))
    since = time.time() - FAILURE_WINDOW_S
    for r in rows:
        r["disabled"] = r["disabled_at"] is not None
        r["admin"] = bool(r["admin"])
        r["failed_logins"] = db.execute("SELECT count(*) FROM login_failures WHERE name_key = ? AND at > ?",
                                        [_name_key(r["name"]), since]).fetchone()[0]
    return rows


# ---------------------------------------------------------------- sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(b"session:" + str(token).encode()).hexdigest()


def _revoke_all(db: Database, name: str, now: str) -> None:
    db.execute("UPDATE sessions SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [now, name])


def start_session(db: Database, name: str, *, source: str = "unknown", idle_s: float = DEFAULT_IDLE_S,
                  now: float | None = None) -> User:
    """A new server-side session for an existing, enabled account; returns the :class:`User` carrying its token.

    Called by :func:`authenticate` after the password check (and to rotate a
    session, e.g. after a password change). Sessions older than a day are
    deleted on the way.
    """
    name = normalise_name(name)
    idle_s = float(idle_s)
    if not idle_s > 0:
        raise BadInput(f"the session idle time must be positive (it is {idle_s!r} s)")
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with transaction(db):
        row = _row(db, name)
        if row is None or row["disabled_at"] is not None:
            raise NotFound(f"no active user named {name!r}")
        db.execute("DELETE FROM sessions WHERE last_seen < ?", [now - 2 * MAX_SESSION_S])
        db["sessions"].insert({
            "token_hash": _token_hash(token), "name": name, "created_at": now_iso(), "created_unix": now,
            "last_seen": now, "idle_s": idle_s, "source": _source_key(source), "revoked_at": None,
        })
    return User(name=name, role=row["role"], session=token)


def active_user(db: Database, user: User, *, now: float | None = None, touch: bool = True) -> User:
    """The account behind ``user`` as it is now, if its session is live.

    Raises
    ------
    Forbidden
        If ``user`` is not a :class:`User` with a session, the session was
        logged out, revoked (password change, account disabled), idle for
        longer than its idle time or older than :data:`MAX_SESSION_S`, or the
        account no longer exists, is disabled, or its role changed since login.

    ``touch=False`` checks without counting as activity: a page that redraws
    itself (a progress panel every 2 s) must not keep an idle session alive.
    """
    from .errors import Forbidden

    if not isinstance(user, User) or not user.session:
        raise Forbidden("this action needs a logged-in user")
    now = time.time() if now is None else now
    s = db.execute(
        "SELECT name, created_at, created_unix, last_seen, idle_s, revoked_at FROM sessions WHERE token_hash = ?",
        [_token_hash(user.session)]).fetchone()
    if s is None or s[0] != user.name:
        raise Forbidden("this session is not known (logged out, or never logged in); log in again")
    _, created_at, created_unix, last_seen, idle_s, revoked_at = s
    if revoked_at is not None:
        raise Forbidden("this session has ended (logged out, password changed or account disabled); log in again")
    if now - last_seen > idle_s:
        raise Forbidden(f"the session ended after {idle_s / 60:g} minutes without activity; log in again")
    if now - created_unix > MAX_SESSION_S:
        raise Forbidden("the session is older than a working day; log in again")
    row = _row(db, user.name)
    if row is None or row["disabled_at"] is not None:
        raise Forbidden(f"the account {user.name!r} is disabled or no longer exists; log in again")
    if row["password_changed_at"] > created_at:
        raise Forbidden("the password was changed after this login; log in again")
    if row["role"] != user.role:
        raise Forbidden(f"the role of {user.name!r} changed since login; log in again")
    if touch and now - last_seen >= _TOUCH_EVERY_S:
        with transaction(db):
            db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ? AND last_seen < ?",
                       [now, _token_hash(user.session), now])
    return user


def resume_session(db: Database, token: str, *, now: float | None = None) -> User:
    """The account whose live session ``token`` is (a browser's session cookie after a reload or in a new tab).

    Raises
    ------
    Forbidden
        As :func:`active_user`, for an unknown, ended, idle or expired session.
    """
    from .errors import Forbidden

    if not isinstance(token, str) or not token or len(token) > 200:
        raise Forbidden("this session is not known (logged out, or never logged in); log in again")
    s = db.execute("SELECT s.name, u.role FROM sessions s JOIN users u ON u.name = s.name WHERE s.token_hash = ?",
                   [_token_hash(token)]).fetchone()
    if s is None:
        raise Forbidden("this session is not known (logged out, or never logged in); log in again")
    return active_user(db, User(name=s[0], role=s[1], session=token), now=now)


def sessions_of(db: Database, name: str) -> list[dict]:
    """An account's live and ended sessions (no tokens), newest first."""
    return list(db.query(
        "SELECT created_at, last_seen, idle_s, revoked_at FROM sessions WHERE name = ? ORDER BY created_unix DESC",
        [normalise_name(name)]))


# ---------------------------------------------------------------- login


def _name_key(name: str) -> str:
    return hashlib.sha256(b"login:" + name.encode("utf-8")).hexdigest()


def _source_key(source: str | None) -> str:
    return hashlib.sha256(b"source:" + str(source or "unknown").encode("utf-8")).hexdigest()


def _failures(db: Database, key: str, source_key: str | None, since: float, limit: int) -> list[float]:
    sql = "SELECT at FROM login_failures WHERE name_key = ? AND at > ?"
    params: list = [key, since]
    if source_key is not None:
        sql += " AND source_key = ?"
        params.append(source_key)
    return [r[0] for r in db.execute(sql + " ORDER BY at DESC LIMIT ?", params + [limit])]


def _lock_wait(db: Database, key: str, source_key: str, now: float) -> float:
    since = now - FAILURE_WINDOW_S
    wait = 0.0
    for src, limit in ((source_key, MAX_FAILURES), (None, MAX_FAILURES_ACCOUNT)):
        times = _failures(db, key, src, since, limit)
        if len(times) >= limit:
            # unlocked when the oldest of the last `limit` failures leaves the window
            wait = max(wait, times[-1] + FAILURE_WINDOW_S - now)
    return max(0.0, wait)


def lock_remaining_s(db: Database, name: str, *, source: str = "unknown", now: float | None = None) -> float:
    """Seconds until ``name`` may try again from ``source`` (0 when it is not locked)."""
    try:
        key = _name_key(normalise_name(name))
    except BadInput:
        key = _name_key(str(name))
    return _lock_wait(db, key, _source_key(source), time.time() if now is None else now)


def unlock(db: Database, name: str, *, actor: str = "cli") -> dict:
    """Clear an account's failed logins from every source (an administrator's answer to a lock-out)."""
    name = normalise_name(name)
    with transaction(db):
        if _row(db, name) is None:
            raise NotFound(f"no user named {name!r}")
        n = db.execute("DELETE FROM login_failures WHERE name_key = ?", [_name_key(name)]).rowcount
        auditlog.append(db, kind="user.unlock", actor=actor, data={"name": name, "failures_cleared": n})
    return {"name": name, "failures_cleared": n}


def authenticate(db: Database, name: str, password: str, *, source: str = "unknown",
                 idle_s: float = DEFAULT_IDLE_S, now: float | None = None) -> User:
    """Check a name and password; returns the :class:`User` with a new session.

    Parameters
    ----------
    source : str
        Where the attempt comes from (the client address); failures are
        counted per account and source. Only a keyed hash of it is stored.
    idle_s : float
        The new session ends after this many seconds without activity.

    Raises
    ------
    LoginLocked
        After :data:`MAX_FAILURES` failures for the account from this source
        (or :data:`MAX_FAILURES_ACCOUNT` from all) within
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
    skey = _source_key(source)
    row = _row(db, norm) if norm is not None else None
    # the name is logged only when it is an account: a password typed into the
    # name field must not end up in the permanent log
    logged_name = row["name"] if row else None

    # check and count in one write transaction, before the slow password check:
    # the attempt is counted as a failure up front and taken back if it succeeds,
    # so parallel attempts cannot all pass a limit none of them has reached yet
    with transaction(db):
        db.execute("DELETE FROM login_failures WHERE at <= ?", [now - FAILURE_WINDOW_S])
        wait = _lock_wait(db, key, skey, now)
        if wait > 0:
            auditlog.append(db, kind="user.login", actor=logged_name or "anonymous",
                            data={"name": logged_name, "outcome": "locked"})
        else:
            db["login_failures"].insert({"name_key": key, "at": now, "source_key": skey})
    if wait > 0:
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
        if reason is None:
            db.execute("DELETE FROM login_failures WHERE name_key = ? AND source_key = ?", [key, skey])
            auditlog.append(db, kind="user.login", actor=row["name"],
                            data={"name": row["name"], "role": row["role"], "outcome": "ok"})
        else:
            auditlog.append(db, kind="user.login", actor=logged_name or "anonymous",
                            data={"name": logged_name, "outcome": "failed", "reason": reason})
    if reason is not None:
        raise LoginFailed("wrong user name or password, or the account is disabled")
    return start_session(db, row["name"], source=source, idle_s=idle_s, now=now)


def logout(db: Database, user: User) -> None:
    """End the session and write it to the log."""
    with transaction(db):
        if isinstance(user, User) and user.session:
            db.execute("UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                       [now_iso(), _token_hash(user.session)])
        auditlog.append(db, kind="user.logout", actor=user.name, data={"name": user.name})
