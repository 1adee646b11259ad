"""Accounts, login throttling, the CLI's user commands, and role checks in clipkit.access.

The access tests prove at the library level that a trainer can never get raw
audio: every access function is called as a trainer and each raw path raises
Forbidden. Renderings are made with a stand-in writer (a real WAV, a real
renderings row matching rendering.input_hash), so these tests do not depend
on the DSP stack's speed.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import add_accounts
from clipkit import access, audio, auditlog, library, users
from clipkit.cli import cli
from clipkit.errors import BadInput, Forbidden, NotFound, PolicyRefusal

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(db, home, monkeypatch):
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)  # cheap hashes; the cost is stored in each hash
    add_accounts(db, home, PASSWORD)
    return {role: users.start_session(db, role) for role in users.ROLES}


# ---------------------------------------------------------------- passwords and accounts


def test_hash_is_scrypt_salted_and_verifies():
    a, b = users.hash_password("s3cret-password"), users.hash_password("s3cret-password")
    assert a.startswith(f"scrypt${users.SCRYPT_N}${users.SCRYPT_R}${users.SCRYPT_P}$")
    assert a != b  # random salt
    assert users.verify_password("s3cret-password", a)
    assert not users.verify_password("s3cret-passwore", a)
    assert not users.verify_password("x", "garbage")
    assert "s3cret" not in a


def test_add_user_generates_password_and_stores_only_a_hash(db):
    pw = users.add_user(db, "Alice", role="manager")
    assert len(pw) >= 16
    row = db.execute("SELECT name, role, password_hash FROM users").fetchone()
    assert row[:2] == ("alice", "manager") and pw not in row[2]
    assert users.authenticate(db, "alice", pw) == users.User("alice", "manager")
    assert users.authenticate(db, " ALICE ", pw).name == "alice"


@pytest.mark.parametrize("name, role, password, match", [
    ("bob", "boss", None, "role"),
    ("", "trainer", None, "user name"),
    ("bad name!", "trainer", None, "user name"),
    ("bob", "trainer", "short", "at least"),
])
def test_add_user_rejects_bad_input(db, name, role, password, match):
    with pytest.raises(BadInput, match=match):
        users.add_user(db, name, role=role, password=password)


def test_duplicate_user_is_refused(db):
    users.add_user(db, "bob", role="trainer")
    with pytest.raises(BadInput, match="already exists"):
        users.add_user(db, "BOB", role="manager")


def test_user_is_frozen():
    u = users.User("a", "trainer")
    with pytest.raises(Exception):
        u.role = "manager"


def test_wrong_password_unknown_and_disabled_fail_alike(db):
    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    messages = set()
    for name, pw in (("bob", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(users.LoginFailed) as e:
            users.authenticate(db, name, pw)
        messages.add(str(e.value))
    users.disable_user(db, "bob")
    with pytest.raises(users.LoginFailed) as e:
        users.authenticate(db, "bob", PASSWORD)
    messages.add(str(e.value))
    assert len(messages) == 1
    users.enable_user(db, "bob")
    assert users.authenticate(db, "bob", PASSWORD).role == "trainer"


def test_lockout_after_five_failures_even_with_right_password(db):
    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    t0 = 1_800_000_000.0
    for i in range(users.MAX_FAILURES):
        with pytest.raises(users.LoginFailed) as e:
            users.authenticate(db, "bob", "nope", now=t0 + i)
        assert not isinstance(e.value, users.LoginLocked)
    with pytest.raises(users.LoginLocked, match="try again in 15 minutes"):
        users.authenticate(db, "bob", PASSWORD, now=t0 + 10)
    # another name is not affected
    users.add_user(db, "carol", role="manager", password=PASSWORD)
    assert users.authenticate(db, "carol", PASSWORD, now=t0 + 11).name == "carol"
    # after the window the right password works, and success clears the count
    assert users.authenticate(db, "bob", PASSWORD, now=t0 + users.FAILURE_WINDOW_S + 5).name == "bob"
    with pytest.raises(users.LoginFailed):
        users.authenticate(db, "bob", "nope", now=t0 + users.FAILURE_WINDOW_S + 6)
    assert users.authenticate(db, "bob", PASSWORD, now=t0 + users.FAILURE_WINDOW_S + 7).name == "bob"


def test_unknown_names_are_throttled_too(db):
    t0 = 1_800_000_000.0
    for i in range(users.MAX_FAILURES):
        with pytest.raises(users.LoginFailed):
            users.authenticate(db, "ghost", "x", now=t0 + i)
    with pytest.raises(users.LoginLocked):
        users.authenticate(db, "ghost", "x", now=t0 + 9)


def test_passwd_clears_lockout(db):
    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(users.LoginFailed):
            users.authenticate(db, "bob", "nope")
    new = users.set_password(db, "bob")
    assert users.authenticate(db, "bob", new).name == "bob"
    with pytest.raises(users.LoginFailed):
        users.authenticate(db, "bob", PASSWORD)


def test_logins_are_logged_without_passwords(db):
    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    users.authenticate(db, "bob", PASSWORD)
    typed_into_name = "hunter2-secret-typed-in-name-field"
    for name, pw in (("bob", "wrong-password-xyz"), (typed_into_name, "abc")):
        with pytest.raises(users.LoginFailed):
            users.authenticate(db, name, pw)
    rows, _ = auditlog.entries(db, kind="user.login")
    assert [r["data"]["outcome"] for r in rows] == ["ok", "failed", "failed"]
    assert rows[1]["data"] == {"name": "bob", "outcome": "failed", "reason": "bad_password"}
    assert rows[2]["data"]["name"] is None and rows[2]["actor"] == "anonymous"
    dump = json.dumps(list(db.query("SELECT * FROM log"))) + json.dumps(list(db.query("SELECT * FROM login_failures")))
    for secret in (PASSWORD, "wrong-password-xyz", typed_into_name, "abc\""):
        assert secret not in dump
    assert auditlog.verify(db)["ok"]


def test_active_user_follows_disable_and_role_change(db):
    users.add_user(db, "bob", role="manager", password=PASSWORD)
    u = users.authenticate(db, "bob", PASSWORD)
    assert users.active_user(db, u) == u
    with pytest.raises(Forbidden, match="role .* changed"):
        users.active_user(db, users.User("bob", "compliance", u.session))
    users.disable_user(db, "bob")
    with pytest.raises(Forbidden, match="disabled"):
        users.active_user(db, u)
    with pytest.raises(Forbidden):
        users.active_user(db, "bob")  # a bare string is not a user


# ---------------------------------------------------------------- sessions


def test_a_password_change_ends_every_other_session(db):
    users.add_user(db, "bob", role="manager", password=PASSWORD)
    laptop, phone = users.authenticate(db, "bob", PASSWORD), users.authenticate(db, "bob", PASSWORD)
    assert laptop.session != phone.session
    new = users.change_own_password(db, laptop, old=PASSWORD, new="another long password")
    for old in (laptop, phone):
        with pytest.raises(Forbidden, match="log in again"):
            users.active_user(db, old)
    assert users.active_user(db, new) == new
    # an administrator's reset ends that one too
    users.set_password(db, "bob", "third long password")
    with pytest.raises(Forbidden):
        users.active_user(db, new)
    with pytest.raises(users.LoginFailed):
        users.change_own_password(db, users.authenticate(db, "bob", "third long password"), old="wrong", new="x" * 12)


def test_sessions_end_when_idle_after_logout_and_never_match_another_token(db):
    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    t0 = time.time()
    u = users.authenticate(db, "bob", PASSWORD, idle_s=60, now=t0)
    assert users.active_user(db, u, now=t0 + 59)
    assert users.active_user(db, u, now=t0 + 59 + 59)  # activity moved the idle clock
    with pytest.raises(Forbidden, match="without activity"):
        users.active_user(db, u, now=t0 + 59 + 59 + 61)
    v = users.authenticate(db, "bob", PASSWORD)
    users.logout(db, v)
    with pytest.raises(Forbidden, match="ended"):
        users.active_user(db, v)
    with pytest.raises(Forbidden, match="not known"):
        users.active_user(db, users.User("bob", "trainer", "guessed-token"))
    assert "session=" not in repr(v) and v.session not in repr(v)
    assert not [r for r in db.query("SELECT * FROM sessions") if v.session in json.dumps(r)]  # only hashes stored


def test_the_idle_time_comes_from_the_settings(tmp_path):
    from clipkit.home import session_idle_s
    from clipkit.initialize import init_home

    h, _ = init_home(tmp_path / "h", config={"session_idle_minutes": 5})
    assert session_idle_s(h) == 300
    with pytest.raises(BadInput, match="session_idle_minutes"):
        init_home(tmp_path / "bad", config={"session_idle_minutes": 0})


def test_lockout_is_per_source_and_unlock_clears_it(db):
    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(users.LoginFailed):
            users.authenticate(db, "bob", "wrong password!", source="10.0.0.66")
    with pytest.raises(users.LoginLocked):
        users.authenticate(db, "bob", PASSWORD, source="10.0.0.66")
    # the attacker's address is locked out of bob; bob at his own desk is not
    assert users.authenticate(db, "bob", PASSWORD, source="10.0.0.5").name == "bob"
    assert users.unlock(db, "bob", actor="admin")["failures_cleared"] == users.MAX_FAILURES
    assert users.authenticate(db, "bob", PASSWORD, source="10.0.0.66").name == "bob"
    assert auditlog.entries(db, kind="user.unlock")[1] == 1


def _attempt(args):
    home_root, password = args
    from clipkit import db as dbmod
    from clipkit import users as u
    from clipkit.home import open_home

    u.SCRYPT_N = 2**10
    calls = []
    real = u.verify_password
    u.verify_password = lambda p, s: calls.append(1) or real(p, s)
    database = dbmod.connect(open_home(home_root))
    try:
        u.authenticate(database, "bob", password, source="attacker")
        out = "ok"
    except u.LoginLocked:
        out = "locked"
    except u.LoginFailed:
        out = "failed"
    finally:
        database.close()
    return out, len(calls)


def test_parallel_guesses_get_no_more_password_checks_than_the_limit(home, db):
    from concurrent.futures import ProcessPoolExecutor

    users.add_user(db, "bob", role="trainer", password=PASSWORD)
    with ProcessPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(_attempt, [(str(home.root), "wrong password!")] * 24))
    checked = sum(n for _, n in results)
    assert checked <= users.MAX_FAILURES, results
    assert sum(r == "locked" for r, _ in results) == 24 - users.MAX_FAILURES


# ---------------------------------------------------------------- CLI


def test_cli_user_commands(home):
    r = CliRunner()
    args = ["--home", str(home.root)]
    out = r.invoke(cli, ["user", "add", "Dana", "--role", "compliance", *args])
    assert out.exit_code == 0, out.output
    generated = out.output.strip().splitlines()[-1].split(": ")[-1]
    out = r.invoke(cli, ["user", "add", "eve", "--role", "trainer", "--password-stdin", "--json", *args],
                   input=PASSWORD + "\n")
    assert out.exit_code == 0 and json.loads(out.output) == {"name": "eve", "role": "trainer", "admin": False}
    out = r.invoke(cli, ["user", "list", "--json", *args])
    listed = json.loads(out.output)["users"]
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [("dana", "compliance", False),
                                                                      ("eve", "trainer", False)]
    assert "scrypt" not in out.output and generated not in out.output
    assert r.invoke(cli, ["user", "disable", "eve", *args]).exit_code == 0
    out = r.invoke(cli, ["user", "passwd", "dana", "--json", *args])
    new = json.loads(out.output)["password"]
    assert new != generated
    from clipkit import db as dbmod

    with dbmod.connect(home) as database:
        assert users.authenticate(database, "dana", new).role == "compliance"
        with pytest.raises(users.LoginFailed):
            users.authenticate(database, "eve", PASSWORD)
    bad = r.invoke(cli, ["user", "add", "x", "--role", "boss", *args])
    assert bad.exit_code == 2
    dup = r.invoke(cli, ["user", "add", "eve", "--role", "trainer", *args])
    assert dup.exit_code == 1 and "already exists" in dup.output


# ---------------------------------------------------------------- role checks (clipkit.access)


def test_trainer_can_never_get_raw_audio(db, home, recording, clip, accounts, fake_render):
    """Every function with every role is in test_access.py; here, what a trainer meets on a draft clip."""
    trainer = accounts["trainer"]
    rid, cid = recording["id"], clip["id"]
    fake_render(db, home, cid)
    for call in (lambda: access.raw_audio(db, home, trainer, rid, start_s=0, end_s=5, reason="curious"),
                 lambda: access.clip_original_audio(db, home, trainer, cid, reason="curious"),
                 lambda: access.waveform(db, home, trainer, rid),
                 lambda: access.current_rendering(db, trainer, cid)):
        with pytest.raises(Forbidden):
            call()
    # nothing was played or changed as the trainer
    assert not [r for r in auditlog.entries(db)[0] if r["actor"] == "trainer"]
    # what a trainer may use never carries raw audio: not approved yet -> refused
    with pytest.raises(PolicyRefusal, match="not approved"):
        access.anonymized_audio(db, home, trainer, cid)
    with pytest.raises(NotFound):
        access.get_clip(db, trainer, cid)


def test_trainer_plays_only_the_rendering_and_each_play_is_logged(db, home, recording, clip, accounts, fake_render):
    trainer, manager = accounts["trainer"], accounts["manager"]
    current = fake_render(db, home, clip["id"])
    access.approve(db, home, manager, clip["id"])
    rows, total = access.trainer_library(db, trainer)
    assert total == 1 and rows[0]["id"] == clip["id"]
    assert set(rows[0]) == {"id", "title", "note", "tags", "duration_s", "status", "approved_at"}
    data = access.anonymized_audio(db, home, trainer, clip["id"])
    assert hashlib.sha256(audio.without_nonce(data)).hexdigest() == current["sha256"]
    raw = access.clip_original_audio(db, home, manager, clip["id"], reason="A/B check")
    assert data != raw
    access.anonymized_audio(db, home, trainer, clip["id"])
    plays, _ = auditlog.entries(db, kind="play")
    trainer_plays = [p for p in plays if p["kind"] == "play" and p["actor"] == "trainer"]
    assert len(trainer_plays) == 2
    assert trainer_plays[0]["data"]["clip"] == clip["id"] and trainer_plays[0]["at"]
    raw_plays = [p for p in plays if p["kind"] == "play.raw"]
    assert len(raw_plays) == 1 and "reason" not in raw_plays[0]["data"]
    assert access.log_entries(db, accounts["compliance"], kind="play.raw")[0][0]["notes"] == {"reason": "A/B check"}
    assert not auditlog.entries(db, kind="export")[1]  # plays are not exports


def test_stale_rendering_is_never_served(db, home, recording, clip, accounts, fake_render):
    manager, trainer = accounts["manager"], accounts["trainer"]
    fake_render(db, home, clip["id"])
    access.approve(db, home, manager, clip["id"])
    access.recut_clip(db, home, manager, clip["id"], start_s=2.0, end_s=7.0)
    for who in (trainer, manager):
        with pytest.raises((PolicyRefusal, NotFound)):
            access.anonymized_audio(db, home, who, clip["id"])


def test_raw_audio_needs_a_reason_and_matches_the_slice(db, home, recording, accounts):
    manager = accounts["manager"]
    with pytest.raises(BadInput, match="why"):
        access.raw_audio(db, home, manager, recording["id"], start_s=1, end_s=2, reason="  ")
    with pytest.raises(BadInput):
        access.raw_audio(db, home, manager, recording["id"], start_s=25, end_s=30, reason="x")
    data = access.raw_audio(db, home, manager, recording["id"], start_s=1.25, end_s=3.5, reason="cutting")
    import io

    y, sr = sf.read(io.BytesIO(data), always_2d=True)
    assert sr == 8000 and len(y) == int(round(2.25 * 8000)) and y.shape[1] == 2
    comp = accounts["compliance"]
    assert access.raw_audio(db, home, comp, recording["id"], start_s=0, end_s=1, reason="access request")


def test_roles_are_separated(db, home, recording, clip, accounts):
    manager, compliance = accounts["manager"], accounts["compliance"]
    with pytest.raises(Forbidden, match="a manager may not read or verify the log"):
        access.verify_log(db, manager)
    with pytest.raises(Forbidden):
        access.create_clip(db, home, compliance, recording["id"], start_s=0, end_s=3, title="x")
    with pytest.raises(Forbidden):
        access.approve(db, home, compliance, clip["id"])
    assert access.verify_log(db, compliance)["ok"]
    assert access.list_clips(db, compliance)[1] == 1
    # a disabled account stops working at once, whatever its role
    users.disable_user(db, "manager")
    with pytest.raises(Forbidden, match="disabled"):
        access.list_clips(db, manager)


def test_manager_actions_are_logged_under_the_user(db, home, recording, accounts):
    manager = accounts["manager"]
    cid = access.create_clip(db, home, manager, recording["id"], start_s=1.5, end_s=4.25, title="Greeting",
                             tags=["Opening"])
    access.update_clip(db, manager, cid, note="good example")
    access.set_redactions(db, home, manager, cid, [(0.5, 1.0, "beep")])
    clip = access.get_clip(db, manager, cid)
    assert clip["start_s"] == 1.5 and clip["tags"] == ["opening"] and clip["redactions"] == [[0.5, 1.0, "beep"]]
    kinds = [(r["kind"], r["actor"]) for r in auditlog.entries(db)[0] if r["kind"].startswith("clip")]
    assert kinds == [("clip.create", "manager"), ("clip.edit", "manager"), ("clip.redactions", "manager")]


def test_in_call_objection_recalls_clips(db, home, recording, clip, accounts, fake_render):
    manager, compliance = accounts["manager"], accounts["compliance"]
    fake_render(db, home, clip["id"])
    access.approve(db, home, manager, clip["id"])
    out = access.record_in_call_objection(db, manager, recording["id"], party="caller", at_s=3.5, note="said no",
                                          home=home)
    assert out["event"] == "objection_made" and out["evidence"] == {"recording_id": recording["id"], "seconds": 3.5}
    assert library.get_clip(db, clip["id"])["status"] == "withdrawn"
    found = access.find_party(db, home, compliance, "+31 6 1234 5678")
    assert found["status"]["training"]["objection"] == "active"
    assert found["history"][0]["recorded_by"] == "manager"
    assert "pseudonym" not in found["party"]
    with pytest.raises(PolicyRefusal):
        access.anonymized_audio(db, home, accounts["trainer"], clip["id"])


def test_export_refusal_carries_reasons(db, home, recording, clip, accounts, tmp_path, fake_render):
    trainer, manager = accounts["trainer"], accounts["manager"]
    with pytest.raises(PolicyRefusal) as e:
        access.export_package(db, home, trainer, [clip["id"]], recipient="Team")
    codes = {r["code"] for r in e.value.reasons}
    assert {"not_anonymized", "not_approved"} <= codes
    assert all(r["clip_id"] == clip["id"] for r in e.value.reasons)
    fake_render(db, home, clip["id"])
    access.approve(db, home, manager, clip["id"])
    result = access.export_package(db, home, trainer, [clip["id"]], recipient="Team")
    assert result["decision"] == "allowed" and len(result["exported"]) == 1
    z = access.package_zip(db, home, trainer, result["export_id"])
    assert z[:2] == b"PK"
    attempts, _ = auditlog.entries(db, kind="export.attempt")
    assert [a["data"]["decision"] for a in attempts] == ["refused", "allowed"]
    assert all(a["actor"] == "trainer" for a in attempts)


def test_dashboard_and_log_helpers(db, home, recording, clip, accounts):
    compliance = accounts["compliance"]
    d = access.dashboard(db, compliance)
    assert d["clips_by_status"]["draft"] == 1
    rows, total = access.log_entries(db, compliance, limit=2, newest_first=True)
    assert total >= 3 and rows[0]["seq"] > rows[1]["seq"]
    assert access.log_csv(db, compliance).startswith('"seq","at","what","kind"')
    ov = access.retention_overview(db, compliance)
    assert ov["recordings"] == 1 and ov["rows"][0]["id"] == recording["id"]
