"""The tamper-evident log: every import, cut, export attempt, recall, request and erasure.

One write path, :func:`append`, called inside the caller's transaction so an
event and the change it describes commit together (or not at all). Rows are
append-only (SQLite triggers refuse UPDATE and DELETE) and chained: each row
stores ``HMAC(log key, canonical content + previous hash)``, the log key
being derived from the installation key (:func:`log_key`). :func:`verify`
recomputes the chain.

What each layer protects against:

- the triggers: a careless UPDATE or DELETE through SQLite (they can be dropped
  by anyone who can write the file);
- the keyed chain: someone who can write the database file but has not got
  the installation key can change, delete or reorder rows, or append forged
  ones, and :func:`verify` finds the first bad entry — a plain hash chain
  would let them recompute every hash after their edit;
- a head written down elsewhere (``clipkit log head``, checked with
  ``log verify --head``): someone who *has* the key (or cuts rows off the
  end, which leaves a valid shorter chain) is caught as long as the head
  you wrote down still has to be in the log.

Logs written before the chain was keyed keep their plain sha256 rows; every
row from the first keyed one on (``log_meta.hmac_from``) must be keyed, so a
forger cannot slip a plain row in after it.

Parties appear in ``data`` only by their opaque ref, never by identifier, and
free text (reasons, notes) never: it lives in :mod:`clipkit.notes`.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import logtext
from .db import now_iso, transaction, utc_iso
from .errors import BadInput
from .home import log_key  # noqa: F401  (the chain key; derived where the installation key is read)

GENESIS = "0" * 64

migrations = Migrations("clipkit.auditlog")


@migrations()
def m001_log(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            data TEXT NOT NULL,        -- canonical JSON
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        )
        """
    )
    db.execute("CREATE INDEX log_kind ON log(kind, seq)")
    db.execute("CREATE INDEX log_actor ON log(actor, seq)")
    db.execute("CREATE INDEX log_at ON log(at)")
    db.execute(
        "CREATE TRIGGER log_no_update BEFORE UPDATE ON log "
        "BEGIN SELECT RAISE(ABORT, 'the log is append-only: rows cannot be changed'); END"
    )
    db.execute(
        "CREATE TRIGGER log_no_delete BEFORE DELETE ON log "
        "BEGIN SELECT RAISE(ABORT, 'the log is append-only: rows cannot be deleted'); END"
    )


@migrations()
def m002_keyed_chain(db: Database) -> None:
    # rows from here on are HMAC-chained; older rows keep their plain sha256 (scheme NULL)
    db.execute("ALTER TABLE log ADD COLUMN scheme TEXT")
    db.execute("CREATE TABLE log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    last = db.execute("SELECT max(seq) FROM log").fetchone()[0] or 0
    db.execute("INSERT INTO log_meta (key, value) VALUES ('hmac_from', ?)", [str(last + 1)])


KEYED = "hmac-sha256"


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(*, seq: int, at: str, kind: str, actor: str, data: str, prev_hash: str, key: bytes | None = None) -> str:
    """The chain value of one row: HMAC-SHA256 under ``key``, or plain sha256 for rows of an old log."""
    body = canonical({"seq": seq, "at": at, "kind": kind, "actor": actor, "data": data, "prev": prev_hash}).encode()
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _key(db: Database) -> bytes:
    key = getattr(db, "log_key", None)
    if key is None:
        raise RuntimeError("the log needs the installation's key: open the database with clipkit.db.connect(home)")
    return key


def append(db: Database, *, kind: str, actor: str, data: dict) -> dict:
    """Append one event. The only function that writes the log.

    Runs in the caller's transaction when there is one (as a savepoint), or
    opens an immediate one: the chain head must be read under the write lock,
    or two processes could both extend the same head.
    """
    key = _key(db)
    with transaction(db):
        last = db.execute("SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        row = {"seq": seq, "at": now_iso(), "kind": kind, "actor": actor or "unknown", "data": canonical(data)}
        row["prev_hash"] = prev
        row["hash"] = entry_hash(**row, key=key)
        row["scheme"] = KEYED
        db["log"].insert(row)
    return row


def head(db: Database) -> dict:
    """The newest entry's sequence number and hash, to write down or anchor elsewhere."""
    last = db.execute("SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1").fetchone()
    if not last:
        return {"seq": 0, "hash": GENESIS, "head": f"0:{GENESIS}"}
    return {"seq": last[0], "hash": last[1], "head": f"{last[0]}:{last[1]}"}


def _parse_head(text: str) -> tuple[int | None, str]:
    text = text.strip()
    seq = None
    if ":" in text:
        left, text = text.split(":", 1)
        try:
            seq = int(left)
            if seq < 0:
                raise ValueError
        except ValueError:
            raise BadInput(f"--head {left}:… must be SEQ:HASH or HASH (SEQ a number from 'clipkit log head')") from None
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text.lower()):
        raise BadInput(f"--head {text!r} is not a 64-digit hex hash")
    return seq, text.lower()


def verify(db: Database, *, head_text: str | None = None) -> dict:
    """Recompute the chain.

    Returns ``{"ok": True, "entries": N}`` or ``{"ok": False, "entries": N,
    "first_bad_seq": K, "reason": ...}``. Checks that sequence numbers run
    1..N without gaps, each row's ``prev_hash`` is the previous row's hash and
    each hash matches the row's content. With ``head_text`` (``SEQ:HASH`` from
    :func:`head`), that entry must still exist with that hash.
    """
    key = _key(db)
    meta = db.execute("SELECT value FROM log_meta WHERE key = 'hmac_from'").fetchone()
    hmac_from = int(meta[0]) if meta else 1
    expected_prev, expected_seq, n = GENESIS, 1, 0
    hashes: dict[int, str] = {}
    for seq, at, kind, actor, data, prev_hash, h, scheme in db.execute(
        "SELECT seq, at, kind, actor, data, prev_hash, hash, scheme FROM log ORDER BY seq"
    ):
        n += 1
        if seq != expected_seq:
            return _bad(n - 1, expected_seq, f"entry {expected_seq} is missing")
        if prev_hash != expected_prev:
            return _bad(n - 1, seq, f"entry {seq} does not follow entry {seq - 1}")
        keyed = seq >= hmac_from
        if (scheme == KEYED) != keyed:
            return _bad(n - 1, seq, f"entry {seq} is not chained the way entries from {hmac_from} on must be")
        if not hmac.compare_digest(entry_hash(seq=seq, at=at, kind=kind, actor=actor, data=data,
                                              prev_hash=prev_hash, key=key if keyed else None), h):
            return _bad(n - 1, seq, f"entry {seq} was changed after it was written, or written without the key")
        hashes[seq] = h
        expected_prev, expected_seq = h, seq + 1
    total = n
    if head_text is not None:
        want_seq, want_hash = _parse_head(head_text)
        if want_hash == GENESIS and want_seq in (None, 0):
            return {"ok": True, "entries": total}  # the head of an empty log: every chain extends it
        if want_seq is None:
            found = [s for s, h in hashes.items() if h == want_hash]
            if not found:
                return _bad(total, total + 1, "the recorded head is not in the log: entries were removed or rewritten")
        elif want_seq > total:
            return _bad(total, total + 1, f"the log ends at entry {total}, but the recorded head is entry {want_seq}: trailing entries were removed")
        elif hashes.get(want_seq) != want_hash:
            return _bad(total, want_seq, f"entry {want_seq} differs from the recorded head: the chain was rewritten")
    return {"ok": True, "entries": total}


def _bad(entries: int, seq: int, reason: str) -> dict:
    return {"ok": False, "entries": entries, "first_bad_seq": seq, "reason": reason}


def entries(
    db: Database,
    *,
    since: str | None = None,
    actor: str | None = None,
    kind: str | None = None,
    refused: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[dict], int]:
    """Log entries, oldest first, filtered; and the total matching."""
    where, params = [], []
    if since:
        # stored times are UTC with microseconds; compare in that form, or an
        # offset like +02:00 would be compared as text, hours off
        where.append("at >= ?")
        params.append(utc_iso(since, name="--since"))
    if actor:
        where.append("actor = ?")
        params.append(actor)
    if kind:
        # a dotted prefix matched literally: "_" and "%" in a kind are not wildcards
        escaped = kind.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("(kind = ? OR kind LIKE ? ESCAPE '\\')")
        params += [kind, escaped + ".%"]
    if refused:
        where.append("json_extract(data, '$.decision') IN ('refused', 'partial')")
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    total = db.execute(f"SELECT count(*) FROM log{sql_where}", params).fetchone()[0]
    if limit is not None and int(limit) < 0:
        raise BadInput(f"--limit {limit} must be 0 or more")
    if int(offset) < 0:
        raise BadInput(f"--offset {offset} must be 0 or more")
    # SQLite integers are 64-bit: a larger limit means "all of them"
    page = "" if limit is None else f" LIMIT {min(int(limit), 2**62)} OFFSET {min(int(offset), 2**62)}"
    rows = []
    for r in db.query(f"SELECT seq, at, kind, actor, data, hash FROM log{sql_where} ORDER BY seq{page}", params):
        r["data"] = json.loads(r["data"])
        r["decision"] = r["data"].get("decision")
        rows.append(r)
    return rows, total


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def _cell(value) -> str:
    """A cell a spreadsheet shows as text: anything that could start a formula is prefixed with ``'``.

    Spreadsheets skip leading white space before a formula, so the first
    character after it counts.
    """
    text = "" if value is None else str(value)
    stripped = text.lstrip(" \t\r\n")
    return "'" + text if (stripped[:1] in _FORMULA_START and stripped) or text[:1] in ("\t", "\r", "\n") else text


def to_csv(rows: list[dict]) -> str:
    """CSV for auditors: one line per entry in the given order, as a sentence and as canonical JSON.

    Every cell is quoted (Dutch Excel splits unquoted cells on ``;``) and
    guarded against formula injection.
    """
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL)
    w.writerow(["seq", "at", "what", "kind", "actor", "decision", "data", "hash"])
    for r in rows:
        what = r.get("what") or logtext.sentence(r)
        w.writerow([_cell(x) for x in (r["seq"], r["at"], what, r["kind"], r["actor"], r.get("decision") or "",
                                        canonical(r["data"]), r["hash"])])
    return buf.getvalue()
