"""Account administration (a manager with the administrator right) and changing one's own password.

Tested as a hostile insider would: every other role and a manager without the
right are refused at the library, an administrator cannot lock themselves or
the last administrator out, and a reset or disable ends the target's sessions
at once.
"""

from __future__ import annotations

import pytest

from conftest import add_accounts
from clipkit import access, auditlog, users
from clipkit.errors import BadInput, Forbidden
from clipkit.users import LoginFailed

PASSWORD = "correct horse battery"


@pytest.fixture
def people(db, home, monkeypatch):
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    add_accounts(db, home, PASSWORD)
    users.add_user(db, "boss", role="manager", password=PASSWORD, admin=True)
    return {name: users.start_session(db, name) for name in (*users.ROLES, "boss")}


ADMIN_CALLS = [
    ("list_accounts", lambda db, home, u: access.list_accounts(db, u)),
    ("add_account", lambda db, home, u: access.add_account(db, home, u, "eve", role="manager", admin=True)),
    ("reset_password", lambda db, home, u: access.reset_password(db, u, "trainer")),
    ("disable", lambda db, home, u: access.set_account_disabled(db, u, "trainer", True)),
    ("unlock", lambda db, home, u: access.unlock_account(db, u, "trainer")),
    ("make_admin", lambda db, home, u: access.set_account_admin(db, u, "manager", True)),
]


@pytest.mark.parametrize("who", ["manager", "trainer", "compliance", "agent"])
@pytest.mark.parametrize("what, call", ADMIN_CALLS, ids=[c[0] for c in ADMIN_CALLS])
def test_only_an_account_administrator_manages_accounts(db, home, people, who, what, call):
    before = db["users"].count, [r["password_hash"] for r in db.query("SELECT password_hash FROM users")]
    with pytest.raises(Forbidden):
        call(db, home, people[who])
    after = db["users"].count, [r["password_hash"] for r in db.query("SELECT password_hash FROM users")]
    assert before == after and not users.is_admin(db, "manager")
    assert not access.is_account_admin(db, people[who])


def test_administrator_adds_each_role_and_the_password_works_once_shown(db, home, people):
    boss = people["boss"]
    assert access.is_account_admin(db, boss)
    made = access.add_account(db, home, boss, " New.Trainer ", role="trainer")
    assert made["name"] == "new.trainer"
    assert users.authenticate(db, "new.trainer", made["password"]).role == "trainer"
    agent = access.add_account(db, home, boss, "agent2", role="agent", agent_identifier="E-0099")
    assert users.authenticate(db, "agent2", agent["password"]).role == "agent"
    with pytest.raises(BadInput, match="agent"):
        access.add_account(db, home, boss, "agent3", role="agent")  # an agent needs their identifier
    with pytest.raises(BadInput, match="only a manager"):
        access.add_account(db, home, boss, "t2", role="trainer", admin=True)
    rows = {r["name"]: r for r in access.list_accounts(db, boss)}
    assert "password_hash" not in rows["trainer"] and rows["boss"]["admin"]
    entry = auditlog.entries(db, kind="user.add")[0][-1]
    assert entry["actor"] == "boss"


def test_reset_and_disable_end_the_targets_sessions_at_once(db, home, people):
    boss, trainer = people["boss"], people["trainer"]
    assert users.active_user(db, trainer)
    new = access.reset_password(db, boss, "trainer")
    with pytest.raises(Forbidden):
        users.active_user(db, trainer)
    with pytest.raises(LoginFailed):
        users.authenticate(db, "trainer", PASSWORD)
    again = users.authenticate(db, "trainer", new)
    access.set_account_disabled(db, boss, "trainer", True)
    with pytest.raises(Forbidden):
        users.active_user(db, again)
    access.set_account_disabled(db, boss, "trainer", False)
    assert users.authenticate(db, "trainer", new)


def test_unlock_lifts_a_lock_out(db, home, people):
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(LoginFailed):
            users.authenticate(db, "trainer", "wrong password!", source="10.0.0.9")
    with pytest.raises(users.LoginLocked):
        users.authenticate(db, "trainer", PASSWORD, source="10.0.0.9")
    assert {r["name"]: r for r in access.list_accounts(db, people["boss"])}["trainer"]["failed_logins"] == 5
    assert access.unlock_account(db, people["boss"], "trainer")["failures_cleared"] == 5
    assert users.authenticate(db, "trainer", PASSWORD, source="10.0.0.9")


@pytest.mark.parametrize("call", [
    lambda db, u: access.set_account_disabled(db, u, "boss", True),
    lambda db, u: access.reset_password(db, u, "BOSS"),
    lambda db, u: access.set_account_admin(db, u, " boss ", False),
])
def test_an_administrator_cannot_act_on_their_own_account(db, people, call):
    with pytest.raises(BadInput, match="your own account"):
        call(db, people["boss"])
    assert users.is_admin(db, "boss") and users.active_user(db, people["boss"])


def test_the_last_administrator_stays(db, home, people):
    # two administrators: one may take the right from the other, never leave none
    access.set_account_admin(db, people["boss"], "manager", True)
    access.set_account_admin(db, people["boss"], "manager", False)
    with pytest.raises(BadInput, match="last account administrator"):
        users.set_admin(db, "boss", False)
    with pytest.raises(BadInput, match="last account administrator"):
        users.disable_user(db, "boss")
    with pytest.raises(BadInput, match="only a manager"):
        users.set_admin(db, "trainer", True)
    assert users.is_admin(db, "boss")


def test_a_disabled_administrator_loses_the_right(db, home, people):
    users.set_admin(db, "manager", True)
    users.disable_user(db, "boss")
    assert not users.is_admin(db, "boss")
    with pytest.raises(Forbidden):
        access.list_accounts(db, people["boss"])


@pytest.mark.parametrize("role", users.ROLES)
def test_everyone_changes_their_own_password_and_other_sessions_end(db, people, role):
    other = users.start_session(db, role)
    with pytest.raises(BadInput, match="differ"):
        access.change_my_password(db, people[role], old=PASSWORD, new="a new long password", repeat="a new long passw0rd")
    with pytest.raises(LoginFailed):
        access.change_my_password(db, people[role], old="not my password", new="a new long password",
                                  repeat="a new long password")
    fresh = access.change_my_password(db, people[role], old=PASSWORD, new="a new long password",
                                      repeat="a new long password")
    assert users.active_user(db, fresh).name == role
    for ended in (people[role], other):
        with pytest.raises(Forbidden):
            users.active_user(db, ended)
    assert users.authenticate(db, role, "a new long password")


def test_cli_grants_and_revokes_the_right(db, home, cli_run, people):
    res, out = cli_run("user", "admin", "manager")
    assert res.exit_code == 0 and out == {"name": "manager", "admin": True}
    res, out = cli_run("user", "admin", "manager", "--revoke")
    assert res.exit_code == 0 and out["admin"] is False
    res, out = cli_run("user", "admin", "trainer")
    assert res.exit_code != 0
    res, out = cli_run("user", "add", "chief", "--role", "manager", "--admin")
    assert res.exit_code == 0 and out["admin"] is True and users.is_admin(db, "chief")


def test_upgrade_leaves_nobody_administrator(tmp_path):
    from sqlite_utils import Database

    from clipkit import db as dbmod

    raw = Database(tmp_path / "old.db")
    users.migrations.apply(raw, stop_before="m004_admin")
    raw["users"].insert({"name": "old", "role": "manager", "password_hash": "x", "created_at": "2026-01-01",
                         "created_by": "cli", "password_changed_at": "2026-01-01"})
    users.migrations.apply(raw)
    assert raw.execute("SELECT admin FROM users").fetchone() == (0,)
    assert dbmod  # the real connect applies the same migrations
