"""Retention dates per purpose, legal holds, and purge (shared deletion path, crash-safe, idempotent)."""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest

from clipkit import auditlog, library, retention
from clipkit.errors import BadInput, NotFound

CALL = "2026-01-10T09:00:00+01:00"


def imported(db, home, make_audio, *, at: str = CALL, caller: str = "06-12345678") -> int:
    (res,) = library.import_recordings(db, home, [make_audio()], caller=caller, agent="E-0007", recorded_at=at,
                                       actor="t")
    assert res.error is None
    return res.id


def with_rendering(db, home, clip_id: int):
    path = home.audio_dir / "renders" / f"{secrets.token_hex(16)}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + secrets.token_bytes(400))
    db["renderings"].insert({
        "clip_id": clip_id, "input_hash": "0" * 64, "method": "strong", "method_version": "t",
        "path": home.relative(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "figures": "{}",
        "created_at": CALL, "created_by": "t",
    })
    return path


# ---------------------------------------------------------------- dates


def test_quality_at_import_training_while_a_clip_uses_it(db, home, make_audio):
    rid = imported(db, home, make_audio)
    assert library.get_recording(db, rid)["retention_until"] == "2026-04-10T09:00:00+01:00"  # +90 days
    cid = library.create_clip(db, home, rid, start_s=1, end_s=3, title="t", author="m")
    assert library.get_recording(db, rid)["retention_until"] == "2028-01-10T09:00:00+01:00"  # +730 days
    assert library.retention_purposes(db, library.get_recording(db, rid)) == ["quality", "training"]
    library.delete_clip(db, home, cid, actor="m")
    assert library.get_recording(db, rid)["retention_until"] == "2026-04-10T09:00:00+01:00"


def test_withdrawn_clips_no_longer_extend_retention_and_purge_recomputes(db, home, make_audio):
    rid = imported(db, home, make_audio)
    cid = library.create_clip(db, home, rid, start_s=1, end_s=3, title="t", author="m")
    db.execute("UPDATE clips SET status = 'withdrawn' WHERE id = ?", [cid])  # as a recall does
    out = retention.purge(db, home, now="2026-05-01", dry_run=True)
    assert [d["id"] for d in out["deleted"]] == [rid] and out["deleted"][0]["retention_until"].startswith("2026-04-10")


@pytest.mark.parametrize(
    "days, expected",
    [({"quality": 30, "training": 730}, "2026-02-09"), ({"quality": 365, "training": 730}, "2027-01-10")],
)
def test_rules_come_from_config(db, home, make_audio, days, expected):
    rid = imported(db, home, make_audio)
    home.config["retention_days"] = days
    assert library.refresh_retention(db, home, rid).startswith(expected)


def test_a_call_time_whose_retention_date_overflows_is_bad_input_and_leaves_nothing(db, home, make_audio, cli_run):
    # regression: --recorded-at 9999-12-31 crashed with "OverflowError: date value out of range"
    res, out = cli_run("import", make_audio(), "--caller", "C-1", "--agent", "E-1", "--recorded-at", "9999-12-31")
    assert res.exit_code == 1 and out["error"]["code"] == "bad_input" and "9999-12-31" in out["error"]["message"]
    assert db["recordings"].count == 0
    assert not [p for p in home.audio_dir.rglob("*") if p.is_file()]
    assert not [p for p in home.tmp_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize("days, named", [(30, "retention_days"), ({"quality": "ninety"}, "'ninety'"),
                                         ({"quality": -1}, "-1")])
def test_a_broken_retention_rule_in_config_is_a_clear_error(db, home, make_audio, days, named, cli_run):
    # regression: "retention_days": 30 gave "AttributeError: 'int' object has no attribute 'get'"
    imported(db, home, make_audio)
    home.config["retention_days"] = days
    with pytest.raises(BadInput, match="retention_days"):
        retention.purge(db, home, dry_run=True)
    (home.root / "config.json").write_text(json.dumps({"retention_days": days}))
    res, out = cli_run("purge", "--dry-run")
    assert res.exit_code == 1 and out["error"]["code"] == "bad_input" and named in out["error"]["message"]


def test_retention_and_hold_are_visible_in_recordings(db, home, make_audio, cli_run):
    rid = imported(db, home, make_audio)
    retention.set_hold(db, rid, reason="dispute", actor="legal")
    res, out = cli_run("recordings")
    (row,) = out["recordings"]
    assert row["retention_until"] == "2026-04-10T09:00:00+01:00" and row["hold_reason"] == "dispute"


# ---------------------------------------------------------------- holds


def test_recordings_shows_the_date_purge_will_use_after_a_recall(db, home, make_audio, cli_run):
    # regression: after its only clip was withdrawn, `recordings` still said "keep until <training date>"
    # while `purge --dry-run` listed the recording as due for deletion
    rid = imported(db, home, make_audio)
    cid = library.create_clip(db, home, rid, start_s=1, end_s=3, title="t", author="m")
    assert cli_run("recordings")[1]["recordings"][0]["retention_until"].startswith("2028-01-10")
    db.execute("UPDATE clips SET status = 'withdrawn' WHERE id = ?", [cid])  # as a recall does
    (row,) = cli_run("recordings")[1]["recordings"]
    due = retention.purge(db, home, now="2026-05-01", dry_run=True)["deleted"]
    assert row["retention_until"] == due[0]["retention_until"] == "2026-04-10T09:00:00+01:00"


@pytest.mark.parametrize("how", ["objection", "consent_withdrawn", "by_hand"])
def test_a_recall_shortens_the_stored_date_at_once(db, home, make_audio, how):
    # regression: the stored keep-until date (app pages, retention overview) kept the
    # training date after a recall until the next purge recomputed it
    from clipkit import consent, withdrawal

    rid = imported(db, home, make_audio)
    cid = library.create_clip(db, home, rid, start_s=1, end_s=3, title="t", author="m")
    assert library.get_recording(db, rid)["retention_until"].startswith("2028-01-10")
    if how == "by_hand":
        withdrawal.withdraw_clips(db, [cid], actor="dpo", reason="wrong call", home=home)
    else:
        event = "objection_made" if how == "objection" else "consent_withdrawn"
        out = consent.record_for(db, home, "06-12345678", purpose="training", event=event, actor="dpo")
        assert out["recall"]["clips"] == [cid]
    stored = library.get_recording(db, rid)["retention_until"]
    assert stored == "2026-04-10T09:00:00+01:00"
    assert stored == retention.purge(db, home, now="2026-05-01", dry_run=True)["deleted"][0]["retention_until"]


@pytest.mark.parametrize("call", [
    "withdrawal.withdraw_clips", "withdrawal.recall_party", "consent.record", "access.withdraw_clips",
    "access.record_in_call_objection",
])
def test_a_recall_cannot_skip_the_home(db, home, make_audio, call):
    # regression: `home` was optional, and a library caller that left it out withdrew clips
    # without recomputing the stored keep-until date
    from clipkit import access, consent, users, withdrawal

    rid = imported(db, home, make_audio)
    cid = library.create_clip(db, home, rid, start_s=1, end_s=3, title="t", author="m")
    ref = library.get_recording(db, rid)["caller_ref"]
    user = users.User("dpo", "compliance")
    calls = {
        "withdrawal.withdraw_clips": lambda: withdrawal.withdraw_clips(db, [cid], actor="dpo", reason="x"),
        "withdrawal.recall_party": lambda: withdrawal.recall_party(db, ref, actor="dpo", reason="x"),
        "consent.record": lambda: consent.record(db, party_ref=ref, purpose="training", event="objection_made",
                                                 actor="dpo"),
        "access.withdraw_clips": lambda: access.withdraw_clips(db, user, [cid], reason="x"),
        "access.record_in_call_objection": lambda: access.record_in_call_objection(db, user, rid, party="caller",
                                                                                   at_s=1),
    }
    with pytest.raises(TypeError, match="home"):
        calls[call]()
    assert library.get_clip(db, cid)["status"] != "withdrawn"
    assert library.get_recording(db, rid)["retention_until"].startswith("2028-01-10")


def test_hold_set_and_release_are_logged_without_the_reason(db, home, make_audio):
    rid = imported(db, home, make_audio)
    retention.set_hold(db, rid, reason="complaint of Mr X", actor="legal")
    out = retention.release_hold(db, rid, reason="settled", actor="legal")
    assert out == {"recording": rid, "hold": False, "erasure_requests_waiting": []}
    events = auditlog.entries(db, kind="hold")[0]
    assert [(e["kind"], e["data"]) for e in events] == [("hold.set", {"recording": rid}),
                                                        ("hold.release", {"recording": rid})]
    assert "Mr X" not in json.dumps([e["data"] for e in events])


@pytest.mark.parametrize(
    "action, setup, error, message",
    [
        ("set", None, BadInput, "--reason must not be empty"),
        ("set", "held", BadInput, "already on hold"),
        ("release", None, BadInput, "is not on hold"),
        ("release", "unknown", NotFound, "no recording with id 999"),
    ],
)
def test_hold_bad_input(db, home, make_audio, action, setup, error, message):
    rid = imported(db, home, make_audio)
    if setup == "held":
        retention.set_hold(db, rid, reason="x", actor="l")
    if setup == "unknown":
        rid = 999
    reason = "" if message.startswith("--reason") else "why"
    fn = retention.set_hold if action == "set" else retention.release_hold
    with pytest.raises(error, match=message):
        fn(db, rid, reason=reason, actor="l")


def test_hold_cli(home, db, make_audio, cli_run):
    rid = imported(db, home, make_audio)
    res, out = cli_run("hold", "set", rid, "--reason", "court case")
    assert res.exit_code == 0 and out["hold"] is True
    res, _ = cli_run("hold", "set", rid, "--reason", "again")
    assert res.exit_code == 1 and "already on hold" in res.stderr
    res, out = cli_run("hold", "release", rid, "--reason", "done")
    assert res.exit_code == 0 and out["hold"] is False


# ---------------------------------------------------------------- purge


@pytest.fixture
def aged(db, home, make_audio):
    """Three calls of January 2026: one with a clip and rendering, one held, one with a clip (training)."""
    old = imported(db, home, make_audio)
    cid = library.create_clip(db, home, old, start_s=1, end_s=3, title="t", author="m")
    render = with_rendering(db, home, cid)
    db.execute("UPDATE clips SET status = 'withdrawn' WHERE id = ?", [cid])
    held = imported(db, home, make_audio)
    retention.set_hold(db, held, reason="dispute", actor="legal")
    training = imported(db, home, make_audio)
    library.create_clip(db, home, training, start_s=1, end_s=3, title="keep", author="m")
    files = {r: library.recording_path(home, library.get_recording(db, r)) for r in (old, held, training)}
    return {"old": old, "held": held, "training": training, "clip": cid, "render": render, "files": files}


def test_purge_dry_run_changes_nothing(db, home, aged):
    head = auditlog.head(db)
    out = retention.purge(db, home, now="2026-06-01T00:00:00Z", dry_run=True)
    assert [d["id"] for d in out["deleted"]] == [aged["old"]] and out["kept_on_hold"] == [aged["held"]]
    assert (out["clips"], out["renderings"], out["files"]) == (1, 1, 2)
    assert auditlog.head(db) == head and db["recordings"].count == 3 and aged["render"].exists()


def test_purge_deletes_past_retention_with_everything_derived_and_is_idempotent(db, home, aged):
    out = retention.purge(db, home, now="2026-06-01T00:00:00Z", actor="cron")
    assert [d["id"] for d in out["deleted"]] == [aged["old"]]
    assert (out["clips"], out["renderings"], out["files"]) == (1, 1, 2)
    assert not aged["files"][aged["old"]].exists() and not aged["render"].exists()
    assert aged["files"][aged["held"]].exists() and aged["files"][aged["training"]].exists()
    with pytest.raises(NotFound):
        library.get_clip(db, aged["clip"])
    assert db["renderings"].count == 0 and db["clip_tags"].count_where("clip_id = ?", [aged["clip"]]) == 0
    entry = auditlog.entries(db, kind="retention.purge")[0][-1]
    assert entry["actor"] == "cron" and entry["data"]["recordings"] == [aged["old"]]
    assert entry["data"]["kept_on_hold"] == [aged["held"]]
    again = retention.purge(db, home, now="2026-06-01T00:00:00Z", actor="cron")
    assert again["deleted"] == [] and db["recordings"].count == 2
    assert auditlog.verify(db)["ok"]


def test_purge_after_the_training_maximum(db, home, aged):
    out = retention.purge(db, home, now="2028-02-01T00:00:00Z")
    assert sorted(d["id"] for d in out["deleted"]) == [aged["old"], aged["training"]]
    assert out["kept_on_hold"] == [aged["held"]] and db["recordings"].count == 1


def test_purge_crash_after_the_first_file_leaves_nothing_half_deleted(db, home, aged, monkeypatch,
                                                                      crash_after_first_unlink):
    done = crash_after_first_unlink()
    with pytest.raises(RuntimeError):
        retention.purge(db, home, now="2026-06-01T00:00:00Z")
    monkeypatch.undo()
    # rows are gone together (no recording without audio, no clip without recording); the files stay queued
    assert db["recordings"].count == 2 and db["clips"].count == 1
    assert db["pending_deletions"].count == 2 and len(done) == 1
    retention.purge(db, home, now="2026-06-01T00:00:00Z")
    assert db["pending_deletions"].count == 0
    assert not aged["files"][aged["old"]].exists() and not aged["render"].exists()


def test_a_queued_path_imported_again_is_not_deleted(db, home, make_audio):
    rid = imported(db, home, make_audio)
    rec = library.get_recording(db, rid)
    db["pending_deletions"].insert({"path": rec["path"], "sha256": rec["sha256"], "queued_at": CALL})
    assert retention.finish_pending(db, home) == 1
    assert library.recording_path(home, rec).exists() and db["pending_deletions"].count == 0


@pytest.mark.parametrize("now", ["yesterday", "2026-13-01"])
def test_purge_bad_now(db, home, now):
    with pytest.raises(BadInput, match="--now"):
        retention.purge(db, home, now=now)


def test_purge_cli(db, aged, cli_run):
    res, out = cli_run("purge", "--dry-run", "--now", "2026-06-01")
    assert res.exit_code == 0 and out["dry_run"] and [d["id"] for d in out["deleted"]] == [aged["old"]]
    # regression: the human dry run gave only counts; it must list what would go
    res, _ = cli_run("purge", "--dry-run", "--now", "2026-06-01", as_json=False)
    assert res.exit_code == 0 and "Would delete 1 recording(s)" in res.output
    assert f"recording {aged['old']} (call of" in res.output and "keep until" in res.output
    res, out = cli_run("purge", "--now", "2026-06-01")
    assert res.exit_code == 0 and out["files"] == 2
    res, _ = cli_run("purge", "--now", "2026-06-01", as_json=False)
    assert res.exit_code == 0 and "Deleted 0 recording(s)" in res.output and "kept on hold" in res.output
    res, _ = cli_run("purge", "--now", "soon")
    assert res.exit_code == 1 and "--now" in res.stderr
