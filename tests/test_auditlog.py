"""The tamper-evident log: tampering straight in the SQLite file, real concurrent writers, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from clipkit import auditlog


@pytest.fixture
def logged(db):
    """A log of 6 entries."""
    for i in range(6):
        auditlog.append(db, kind="test.event" if i % 2 else "export.attempt", actor=f"user{i % 3}",
                        data={"i": i, "decision": "refused" if i == 2 else "allowed"})
    return db


def attacker(home) -> sqlite3.Connection:
    """A raw connection that drops the append-only triggers first, as an attacker with file access would."""
    conn = sqlite3.connect(str(home.db_path), isolation_level=None)
    conn.execute("DROP TRIGGER log_no_update")
    conn.execute("DROP TRIGGER log_no_delete")
    return conn


def rehash_from(conn: sqlite3.Connection, seq: int, key: bytes | None = None) -> None:
    """Recompute every hash from ``seq`` on, so the chain is consistent again (with the log key, if stolen)."""
    prev = conn.execute("SELECT hash FROM log WHERE seq = ?", [seq - 1]).fetchone()
    prev = prev[0] if prev else auditlog.GENESIS
    for s, at, kind, actor, data in conn.execute(
        "SELECT seq, at, kind, actor, data FROM log WHERE seq >= ? ORDER BY seq", [seq]
    ).fetchall():
        h = auditlog.entry_hash(seq=s, at=at, kind=kind, actor=actor, data=data, prev_hash=prev, key=key)
        conn.execute("UPDATE log SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, h, s])
        prev = h


def _edit(c):
    c.execute("UPDATE log SET data = replace(data, 'refused', 'allowed') WHERE seq = 3")


def _edit_actor(c):
    c.execute("UPDATE log SET actor = 'someone-else' WHERE seq = 4")


def _edit_time(c):
    c.execute("UPDATE log SET at = '2020-01-01T00:00:00+00:00' WHERE seq = 2")


def _delete_middle(c):
    c.execute("DELETE FROM log WHERE seq = 3")


def _delete_first(c):
    c.execute("DELETE FROM log WHERE seq = 1")


def _reorder(c):
    c.execute("UPDATE log SET seq = -1 WHERE seq = 2")
    c.execute("UPDATE log SET seq = 2 WHERE seq = 3")
    c.execute("UPDATE log SET seq = 3 WHERE seq = -1")


def _renumber_after_delete(c):
    c.execute("DELETE FROM log WHERE seq = 3")
    c.execute("UPDATE log SET seq = seq - 1 WHERE seq > 3")


@pytest.mark.parametrize(
    "tamper, first_bad",
    [(_edit, 3), (_edit_actor, 4), (_edit_time, 2), (_delete_middle, 3), (_delete_first, 1), (_reorder, 2),
     (_renumber_after_delete, 3)],
)
def test_verify_catches_direct_tampering(logged, home, tamper, first_bad):
    assert auditlog.verify(logged) == {"ok": True, "entries": 6}
    conn = attacker(home)
    tamper(conn)
    conn.close()
    out = auditlog.verify(logged)
    assert out["ok"] is False and out["first_bad_seq"] == first_bad and out["reason"]


@pytest.mark.parametrize("edit_seq", [1, 3, 6])
def test_a_rewrite_without_the_key_is_caught_even_with_recomputed_hashes(logged, home, edit_seq):
    conn = attacker(home)
    conn.execute("UPDATE log SET data = '{\"i\":99}' WHERE seq = ?", [edit_seq])
    rehash_from(conn, edit_seq)  # plain sha256, as a forger without the installation key must
    conn.close()
    out = auditlog.verify(logged)
    assert out["ok"] is False and out["first_bad_seq"] == edit_seq


@pytest.mark.parametrize("edit_seq", [1, 3, 6])
def test_a_rewrite_with_the_stolen_key_is_caught_only_with_a_head(logged, home, edit_seq):
    head = auditlog.head(logged)["head"]
    conn = attacker(home)
    conn.execute("UPDATE log SET data = '{\"i\":99}' WHERE seq = ?", [edit_seq])
    rehash_from(conn, edit_seq, key=auditlog.log_key(home.secret()))
    conn.close()
    assert auditlog.verify(logged)["ok"] is True  # a consistent forgery, without an anchor
    out = auditlog.verify(logged, head_text=head)
    assert out["ok"] is False and out["first_bad_seq"] == 6
    # the hash alone (without SEQ:) works too
    assert auditlog.verify(logged, head_text=head.split(":", 1)[1])["ok"] is False


def test_trailing_deletion_is_caught_with_a_head(logged, home):
    head = auditlog.head(logged)["head"]
    conn = attacker(home)
    conn.execute("DELETE FROM log WHERE seq >= 5")
    conn.close()
    assert auditlog.verify(logged) == {"ok": True, "entries": 4}
    out = auditlog.verify(logged, head_text=head)
    assert out == {"ok": False, "entries": 4, "first_bad_seq": 5, "reason": out["reason"]}


def test_an_older_head_still_verifies_after_new_entries(logged):
    head = auditlog.head(logged)["head"]
    auditlog.append(logged, kind="test.more", actor="x", data={})
    assert auditlog.verify(logged, head_text=head) == {"ok": True, "entries": 7}


def test_triggers_refuse_changes_through_the_app_connection(logged):
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        logged.execute("UPDATE log SET actor = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        logged.execute("DELETE FROM log WHERE seq = 6")


def test_kind_filter_is_a_dotted_prefix_not_a_pattern(db):
    # "_" and "%" are LIKE wildcards; a kind must match literally
    for kind in ("consent.objection_made", "consent.objectionXmade.extra", "consent.objection_made.extra",
                 "consentx", "a%b.c", "axb.c"):
        auditlog.append(db, kind=kind, actor="a", data={})
    assert [r["kind"] for r in auditlog.entries(db, kind="consent.objection_made")[0]] == [
        "consent.objection_made", "consent.objection_made.extra"]
    assert auditlog.entries(db, kind="consent")[1] == 3
    assert [r["kind"] for r in auditlog.entries(db, kind="a%b")[0]] == ["a%b.c"]


# ---------------------------------------------------------------- concurrency

WRITER = """
import sys
from clipkit import auditlog, db as dbmod
from clipkit.home import open_home
home = open_home(sys.argv[1])
database = dbmod.connect(home)
for i in range(int(sys.argv[3])):
    auditlog.append(database, kind="test.concurrent", actor=sys.argv[2], data={"i": i})
database.close()
"""


def test_two_real_processes_append_with_an_intact_chain(home, db):
    n = 60
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(home.root), name, str(n)], env=env,
                              stderr=subprocess.PIPE, text=True) for name in ("proc-a", "proc-b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert auditlog.verify(db) == {"ok": True, "entries": 2 * n}
    rows, _ = auditlog.entries(db, kind="test.concurrent")
    by_actor = {a: [r["data"]["i"] for r in rows if r["actor"] == a] for a in ("proc-a", "proc-b")}
    assert by_actor == {"proc-a": list(range(n)), "proc-b": list(range(n))}


def test_concurrent_cli_exports_are_all_logged(home, db, tmp_path):
    """Two `clipkit export` processes (refused: nothing rendered) and a log writer, at once."""
    from clipkit import library

    recs = []
    for seed, (caller, agent) in enumerate([("K-1", "E-1"), ("K-2", "E-2")]):
        import numpy as np
        import soundfile as sf

        path = tmp_path / f"c{seed}.wav"
        sf.write(str(path), np.random.default_rng(seed).normal(0, 0.1, (16000, 2)), 8000, subtype="PCM_16")
        (r,) = library.import_recordings(db, home, [path], caller=caller, agent=agent, actor="t")
        recs.append(library.create_clip(db, home, r.id, start_s=0, end_s=1.5, title="t", author="m"))
    exe = [sys.executable, "-m", "clipkit.cli", "--home", str(home.root), "--json"]
    procs = [subprocess.Popen(exe + ["export", str(c), "--to", str(tmp_path / "out"), "--actor", f"cli{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, c in enumerate(recs * 2)]
    procs.append(subprocess.Popen([sys.executable, "-c", WRITER, str(home.root), "writer", "30"],
                                  stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [3, 3, 3, 3, 0], outs
    assert all(json.loads(o[0])["decision"] == "refused" for o in outs[:4])
    assert auditlog.verify(db)["ok"]
    rows, total = auditlog.entries(db, refused=True)
    assert total == 4 and sorted(r["actor"] for r in rows) == ["cli0", "cli1", "cli2", "cli3"]
    assert auditlog.entries(db, kind="test.concurrent")[1] == 30


# ---------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "args, kinds",
    [
        ([], ["export.attempt", "test.event"] * 3),
        (["--refused"], ["export.attempt"]),
        (["--kind", "export"], ["export.attempt"] * 3),
        (["--kind", "test.event"], ["test.event"] * 3),
        (["--actor", "user1"], ["test.event", "export.attempt"]),
        (["--since", "2000-01-01"], ["export.attempt", "test.event"] * 3),
        (["--since", "2999-01-01T00:00:00+02:00"], []),
        (["--limit", "2"], ["export.attempt", "test.event"]),
    ],
)
def test_cli_log_lists_with_filters(cli_run, logged, args, kinds):
    r, out = cli_run("log", *args)
    assert r.exit_code == 0, r.output
    assert [e["kind"] for e in out["entries"]] == kinds
    if "--limit" not in args:
        assert out["total"] == len(kinds)
    for e in out["entries"]:
        assert set(e) >= {"seq", "time", "kind", "actor", "decision"}


def test_cli_log_refused_decision_field(cli_run, logged):
    _, out = cli_run("log", "--refused")
    assert [(e["seq"], e["decision"]) for e in out["entries"]] == [(3, "refused")]
    r, _ = cli_run("log", "--refused", as_json=False)
    assert "refused" in r.stdout and "(1 of 1 entries)" in r.stdout


def test_cli_log_verify_and_head(cli_run, logged, home):
    r, head = cli_run("log", "head")
    assert r.exit_code == 0 and head["seq"] == 6 and head["head"] == f"6:{head['hash']}"
    r, _ = cli_run("log", "head", as_json=False)
    assert r.stdout.strip() == head["head"]
    r, out = cli_run("log", "verify")
    assert r.exit_code == 0 and out == {"ok": True, "entries": 6}
    r, out = cli_run("log", "verify", "--head", head["head"])
    assert r.exit_code == 0 and out["ok"]
    conn = attacker(home)
    conn.execute("UPDATE log SET data = '{}' WHERE seq = 5")
    rehash_from(conn, 5)
    conn.close()
    r, out = cli_run("log", "verify")
    assert r.exit_code == 1 and out["first_bad_seq"] == 5  # without the key the forger cannot rechain
    conn = sqlite3.connect(str(home.db_path), isolation_level=None)  # the triggers are gone already
    rehash_from(conn, 5, key=auditlog.log_key(home.secret()))
    conn.close()
    r, out = cli_run("log", "verify")
    assert r.exit_code == 0  # with the key: a consistent rewrite, only the head shows it
    r, out = cli_run("log", "verify", "--head", head["head"])
    assert r.exit_code == 1 and out["ok"] is False and out["entries"] == 6 and out["first_bad_seq"] == 6
    r, _ = cli_run("log", "verify", "--head", head["head"], as_json=False)
    assert r.exit_code == 1 and "TAMPERED" in r.stdout
    r, out = cli_run("log", "verify", "--head", "nonsense")
    assert r.exit_code == 1 and out["error"]["code"] == "bad_input"


@pytest.mark.parametrize("head", ["", "   ", "-1:" + "0" * 64])
def test_cli_log_verify_refuses_an_empty_or_negative_head(cli_run, logged, head):
    # regression: --head "" silently verified without a head, and -1:… reported first_bad_seq -1
    r, out = cli_run("log", "verify", "--head", head)
    assert r.exit_code == 1 and out["error"]["code"] == "bad_input" and "--head" in out["error"]["message"]


def test_cli_log_verify_reports_an_edit(cli_run, logged, home):
    conn = attacker(home)
    conn.execute("UPDATE log SET actor = 'x' WHERE seq = 2")
    conn.close()
    r, out = cli_run("log", "verify")
    assert r.exit_code == 1 and out["first_bad_seq"] == 2 and out["entries"] == 1


def test_cli_log_csv(cli_run, logged, tmp_path):
    r, out = cli_run("log", "csv", "--out", tmp_path / "audit.csv")
    assert r.exit_code == 0 and out["entries"] == 6
    rows = list(csv.DictReader(io.StringIO((tmp_path / "audit.csv").read_text())))
    assert [int(x["seq"]) for x in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[2]["decision"] == "refused" and json.loads(rows[2]["data"])["i"] == 2
    assert set(rows[0]) == {"seq", "at", "what", "kind", "actor", "decision", "data", "hash"}
    assert rows[0]["what"].endswith(".") and "By " in rows[0]["what"]
    r, _ = cli_run("log", "csv", "--refused", as_json=False)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith('"seq","at","what","kind"')


def test_cli_log_bad_since(cli_run, logged):
    r, out = cli_run("log", "--since", "last week")
    assert r.exit_code == 1 and out["error"]["code"] == "bad_input"


@pytest.mark.parametrize("args, code, exit_code", [
    (["--limit", "-5"], "bad_input", 1),
    (["--limit", "abc"], "usage", 2),
])
def test_cli_log_bad_limit(cli_run, logged, args, code, exit_code):
    # regression: --limit -5 silently listed everything; with --json a usage error printed no JSON
    r, out = cli_run("log", *args)
    assert r.exit_code == exit_code and out["error"]["code"] == code and "--limit" in out["error"]["message"]


def test_cli_log_huge_limit_lists_everything(cli_run, logged):
    # regression: a limit beyond SQLite's 64-bit integers crashed with a traceback
    r, out = cli_run("log", "--limit", str(10**20))
    assert r.exit_code == 0 and len(out["entries"]) == out["total"] == 6


def test_the_head_of_an_empty_log_verifies_later(db):
    head = auditlog.head(db)
    assert head == {"seq": 0, "hash": auditlog.GENESIS, "head": f"0:{auditlog.GENESIS}"}
    assert auditlog.verify(db, head_text=head["head"]) == {"ok": True, "entries": 0}
    auditlog.append(db, kind="test.first", actor="a", data={})
    assert auditlog.verify(db, head_text=head["head"]) == {"ok": True, "entries": 1}
    assert auditlog.verify(db, head_text=auditlog.GENESIS)["ok"] is True


def test_since_compares_times_not_text(db):
    row = auditlog.append(db, kind="test.t", actor="a", data={})
    from datetime import datetime, timedelta

    t = datetime.fromisoformat(row["at"])
    # the same instant a minute earlier, written in +02:00: as text it sorts after the UTC entry
    earlier_local = (t - timedelta(minutes=1)).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))).isoformat()
    assert auditlog.entries(db, since=earlier_local)[1] == 1
    later_local = (t + timedelta(minutes=1)).astimezone(__import__("datetime").timezone(timedelta(hours=-5))).isoformat()
    assert auditlog.entries(db, since=later_local)[1] == 0


@pytest.mark.parametrize("actor", ["=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)"])
def test_csv_keeps_formula_like_actors_as_text(db, actor):
    import csv
    import io

    auditlog.append(db, kind="test", actor=actor, data={})
    rows, _ = auditlog.entries(db)
    parsed = list(csv.DictReader(io.StringIO(auditlog.to_csv(rows))))
    assert parsed[0]["actor"] == "'" + actor


def test_a_forged_row_appended_without_the_key_is_caught(logged, home):
    conn = attacker(home)
    last = conn.execute("SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1").fetchone()
    row = dict(seq=last[0] + 1, at="2026-01-01T00:00:00.000000+00:00", kind="export.attempt", actor="mallory",
               data=auditlog.canonical({"decision": "allowed"}), prev_hash=last[1])
    for key, scheme in ((None, None), (b"guess" * 8, auditlog.KEYED)):
        conn.execute("DELETE FROM log WHERE seq = ?", [row["seq"]])
        conn.execute("INSERT INTO log (seq, at, kind, actor, data, prev_hash, hash, scheme) VALUES (?,?,?,?,?,?,?,?)",
                     [*row.values(), auditlog.entry_hash(**row, key=key), scheme])
        out = auditlog.verify(logged)
        assert out["ok"] is False and out["first_bad_seq"] == row["seq"], (scheme, out)
    conn.close()


def test_a_log_from_before_the_key_still_verifies_and_keys_every_new_row(home):
    """Rows written before the chain was keyed stay plain sha256; from the first keyed row on, all must be keyed."""
    from clipkit import db as dbmod

    conn = sqlite3.connect(str(home.db_path), isolation_level=None)
    prev = auditlog.GENESIS
    for seq in (1, 2):
        row = dict(seq=seq, at=f"2025-01-0{seq}T00:00:00.000000+00:00", kind="old", actor="a", data="{}", prev_hash=prev)
        prev = auditlog.entry_hash(**row)
        conn.execute("INSERT INTO log (seq, at, kind, actor, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
                     [*row.values(), prev])
    conn.execute("UPDATE log_meta SET value = '3' WHERE key = 'hmac_from'")
    conn.close()
    db = dbmod.connect(home)
    auditlog.append(db, kind="new", actor="b", data={})
    assert auditlog.verify(db) == {"ok": True, "entries": 3}
    # a plain row slipped in after the keyed ones is refused
    conn = attacker(home)
    row = dict(seq=4, at="2026-01-01T00:00:00.000000+00:00", kind="forged", actor="m", data="{}",
               prev_hash=auditlog.head(db)["hash"])
    conn.execute("INSERT INTO log (seq, at, kind, actor, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
                 [*row.values(), auditlog.entry_hash(**row)])
    conn.close()
    assert auditlog.verify(db)["first_bad_seq"] == 4
    db.close()


@pytest.mark.parametrize("cell", ["; =1+1", " =cmd|' /C calc'!A0", "\t=1", "%0A=1", "|x", "a;b;c"])
def test_every_csv_cell_is_quoted_and_guarded(db, cell):
    auditlog.append(db, kind="test", actor=cell, data={"k": cell})
    text = auditlog.to_csv(auditlog.entries(db)[0])
    row = next(csv.reader(io.StringIO(text.splitlines()[1])))
    assert all(line.startswith('"') for line in text.splitlines())
    actor = row[3]
    assert not actor.lstrip(" \t\r\n")[:1] in ("=", "+", "-", "@", "|", "%") or actor.startswith("'")
