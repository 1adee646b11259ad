"""The CLI contract: global options anywhere, one JSON object, exit codes, fast start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from clipkit.cli import cli


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.delenv("CLIPKIT_HOME", raising=False)
    monkeypatch.chdir(tmp_path)

    def invoke(*args, input=None):
        result = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
        return result

    return invoke


@pytest.fixture
def home_dir(run, tmp_path):
    h = tmp_path / "h"
    assert run("init", "--home", h).exit_code == 0
    return h


def js(result):
    return json.loads(result.stdout)


def test_init_creates_home_with_private_key(run, tmp_path):
    r = run("--json", "init", "--home", tmp_path / "h")
    assert r.exit_code == 0 and js(r) == {"home": str(tmp_path / "h"), "created": True}
    key = tmp_path / "h" / "secret.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    again = run("init", "--home", tmp_path / "h", "--json")
    assert js(again)["created"] is False and key.read_text() == key.read_text()


@pytest.mark.parametrize("args", [["list"], ["recordings"], ["show", "1"], ["clip", "1", "--start", "0", "--end", "2",
                                                                          "--title", "x"]])
def test_commands_refuse_a_missing_home_and_create_nothing(run, tmp_path, args):
    r = run(*args, "--home", tmp_path / "nowhere")
    assert r.exit_code == 1 and "no clipkit data home" in r.stderr
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "clipkit-data").exists()


def test_missing_key_is_a_clear_error_not_a_new_key(run, home_dir):
    (home_dir / "secret.key").unlink()
    r = run("list", "--home", home_dir, "--json")
    assert r.exit_code == 1 and js(r)["error"]["code"] == "key_file"
    assert not (home_dir / "secret.key").exists()
    r = run("init", "--home", home_dir)
    assert r.exit_code == 1 and "restore the key" in r.stderr


def test_home_from_environment(run, home_dir, monkeypatch):
    monkeypatch.setenv("CLIPKIT_HOME", str(home_dir))
    assert js(run("list", "--json")) == {"clips": [], "total": 0}


@pytest.mark.parametrize("order", ["before", "after"])
def test_global_options_before_or_after_the_command(run, home_dir, make_audio, order):
    path = make_audio()
    opts = ["--home", home_dir, "--json"]
    args = ["import", path, "--caller", "06-12345678", "--agent", "E-1"]
    r = run(*(opts + args if order == "before" else args + opts))
    assert r.exit_code == 0, r.stderr
    out = js(r)
    assert out["errors"] == [] and out["recordings"][0]["duplicate"] is False
    assert set(out["recordings"][0]) >= {"id", "sha256", "duplicate", "duration_s", "channels"}


def test_import_json_lists_errors_and_exits_1(run, home_dir, make_audio, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    r = run("import", make_audio(), bad, "--caller", "C-1", "--agent", "E-1", "--home", home_dir, "--json")
    out = js(r)
    assert r.exit_code == 1 and len(out["recordings"]) == 1
    assert out["errors"][0]["path"] == str(bad) and "bad.wav" in out["errors"][0]["error"]


def test_clip_list_show_recut_delete_round_trip(run, home_dir, make_audio):
    h = ["--home", home_dir, "--json"]
    run("import", make_audio(), "--caller", "C-1", "--agent", "E-1", *h)
    r = run("clip", "1", "--start", "1.5", "--end", "4.25", "--title", "Angry caller", "--tag", "Abusive", *h)
    assert js(r) == {"id": 1}
    listed = js(run("list", "--tag", "abusive", *h))
    assert listed["total"] == 1 and listed["clips"][0]["tags"] == ["abusive"]
    assert js(run("list", "--search", "ang", *h))["total"] == 1
    assert js(run("show", "1", *h))["title"] == "Angry caller"
    assert js(run("recut", "1", "--start", "2", "--end", "5", *h))["revision"] == 2
    assert js(run("delete", "1", *h)) == {"deleted": 1}
    r = run("show", "1", *h)
    assert r.exit_code == 1 and js(r)["error"] == {"code": "not_found", "message": "no clip with id 1"}


def test_bad_clip_range_exits_1_with_json_error(run, home_dir, make_audio):
    run("import", make_audio(seconds=10), "--caller", "C-1", "--agent", "E-1", "--home", home_dir)
    r = run("clip", "1", "--start", "2", "--end", "30", "--title", "x", "--home", home_dir, "--json")
    assert r.exit_code == 1
    assert js(r)["error"]["code"] == "bad_input" and "--end 30" in js(r)["error"]["message"]


def test_usage_error_exits_2(run, home_dir):
    assert run("clip", "--home", home_dir).exit_code == 2
    assert run("import", "x.wav", "--home", home_dir).exit_code == 2  # --caller missing


@pytest.mark.parametrize("args, bad", [
    (["consent", "grant", "--caller", "x", "--purpose", "marketing"], "marketing"),
    (["export", "abc", "--to", "out", "--actor", "a"], "abc"),
    (["object"], "--caller"),  # neither --caller nor --agent
    (["log", "--limit", "x"], "x"),
    (["no-such-command"], "no-such-command"),
])
@pytest.mark.parametrize("where", ["before", "after"])
def test_usage_errors_honour_json(run, home_dir, args, bad, where):
    # regression: with --json a usage error left stdout empty instead of {"error": {...}}
    opts = ["--home", home_dir, "--json"]
    r = run(*(opts + args if where == "before" else args + opts))
    assert r.exit_code == 2
    out = js(r)
    assert set(out) == {"error"} and out["error"]["code"] == "usage" and bad in out["error"]["message"]
    assert "Usage:" in r.stderr


def test_usage_error_without_json_prints_nothing_on_stdout(run, home_dir):
    r = run("consent", "grant", "--caller", "x", "--purpose", "marketing", "--home", home_dir)
    assert r.exit_code == 2 and r.stdout == "" and "marketing" in r.stderr


@pytest.mark.parametrize("args", [["show", "99999999999999999999"], ["hold", "set", "99999999999999999999", "--reason", "x"],
                                  ["request", "close", "99999999999999999999", "--outcome", "x"],
                                  ["export", "99999999999999999999", "--to", "out", "--actor", "a"]])
def test_an_id_too_large_for_sqlite_is_bad_input_not_a_traceback(run, home_dir, args):
    # regression: OverflowError "Python int too large to convert to SQLite INTEGER" reached the user
    r = run(*args, "--home", home_dir, "--json")
    assert r.exit_code == 1 and js(r)["error"]["code"] == "bad_input" and "too large" in r.stderr


def test_recordings_refuses_a_negative_limit(run, home_dir):
    # regression: SQLite read LIMIT -3 as "no limit" and listed everything
    r = run("recordings", "--limit", "-3", "--home", home_dir, "--json")
    assert r.exit_code == 1 and js(r)["error"]["code"] == "bad_input" and "--limit -3" in js(r)["error"]["message"]


def test_a_damaged_database_is_a_clear_error(run, home_dir):
    # regression: "sqlite3.DatabaseError: file is not a database" came out as a traceback
    (home_dir / "clipkit.db").write_bytes(b"this is not sqlite" * 300)
    for suffix in ("-wal", "-shm"):
        (home_dir / f"clipkit.db{suffix}").unlink(missing_ok=True)
    r = run("list", "--home", home_dir, "--json")
    error = js(r)["error"]
    assert r.exit_code == 1 and error["code"] == "database_corrupt" and "Traceback" not in r.output
    assert "restore clipkit.db from a backup" in error["message"]


def test_restore_advice_only_when_the_file_is_damaged(run, home_dir, monkeypatch):
    """A full disk or a refused write is not corruption: restoring a backup would lose work for nothing."""
    import sqlite3

    from clipkit import library

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(library, "list_clips", full)
    r = run("list", "--home", home_dir, "--json")
    assert r.exit_code == 1 and js(r)["error"]["code"] == "disk_full" and "backup" not in r.output

    def refused(*a, **k):
        raise sqlite3.IntegrityError("UNIQUE constraint failed: recordings.sha256")

    monkeypatch.setattr(library, "list_clips", refused)
    r = run("list", "--home", home_dir, "--json")
    assert r.exit_code == 1 and js(r)["error"]["code"] == "database_error" and "backup" not in r.output


@pytest.mark.parametrize("args", [["--help"], ["list", "--home", "{home}"]])
def test_fast_commands_do_not_import_librosa(home_dir, args):
    code = (
        "import sys; from clipkit.cli import main; sys.argv = ['clipkit'] + %r\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'librosa' not in sys.modules and 'numba' not in sys.modules, 'heavy import'"
    ) % [a.replace("{home}", str(home_dir)) for a in args]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr


def test_the_command_line_does_not_pay_for_importing_pandas(home_dir):
    # regression: sqlite-utils imported pandas (installed for Streamlit) on every start: ~4 s per command
    code = (
        "import sys; from clipkit.cli import main; sys.argv = ['clipkit', 'list', '--home', %r, '--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert sys.modules.get('pandas') is None, 'pandas imported'\n"
        "import sqlite_utils.db; assert sqlite_utils.db.pd is None"
    ) % str(home_dir)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
