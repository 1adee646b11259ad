"""The consent and objection register: history, status, append-only, projection, recall, CLI."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from clipkit import auditlog, consent, export, library, parties, withdrawal
from clipkit.cli import cli
from clipkit.db import now_iso, transaction, utc_iso
from clipkit.errors import BadInput, NotFound


def at(days: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()


@pytest.fixture
def caller_ref(recording):
    return recording["caller_ref"]


@pytest.fixture
def new_party(db, home):
    """A party known only to the register (no call imported)."""
    with transaction(db):
        return parties.ensure(db, home.secret(), "K-4711", now=now_iso())["ref"]


def rec(db, home, ref, event, purpose="training", **kw):
    return consent.record(db, party_ref=ref, purpose=purpose, event=event, actor=kw.pop("actor", "clerk"),
                          home=home, **kw)


# ---------------------------------------------------------------- status from events


@pytest.mark.parametrize(
    "events, consent_state, objection_state",
    [
        ([], "none", "none"),
        (["consent_given"], "given", "none"),
        (["consent_given", "consent_withdrawn"], "withdrawn", "none"),
        (["consent_given", "consent_withdrawn", "consent_given"], "given", "none"),
        (["consent_withdrawn"], "withdrawn", "none"),  # an explicit "no" is recorded as said
        (["objection_made"], "none", "active"),
        (["objection_made", "objection_withdrawn"], "none", "withdrawn"),
        (["objection_made", "objection_withdrawn", "objection_made"], "none", "active"),
        (["consent_given", "objection_made"], "given", "active"),  # independent axes
        (["objection_withdrawn"], "none", "withdrawn"),
    ],
)
def test_status_follows_the_events_in_order(db, home, new_party, events, consent_state, objection_state):
    for e in events:
        rec(db, home, new_party, e)
    status = consent.current(db, new_party)
    assert (status["training"]["consent"], status["training"]["objection"]) == (consent_state, objection_state)
    # other purposes are untouched
    assert status["quality"]["consent"] == "none" and status["quality"]["objection"] == "none"
    assert [h["event"] for h in consent.history(db, new_party)] == events


@pytest.mark.parametrize(
    "steps, expected",
    [
        # (event, effective offset in days) recorded in this order
        ([("objection_made", -2), ("objection_withdrawn", -5)], "active"),  # backdated lift is older: objection stands
        ([("objection_made", -5), ("objection_withdrawn", -2)], "withdrawn"),
        ([("objection_made", 0), ("objection_withdrawn", 3)], "active"),  # future lift not yet in effect
        ([("objection_made", 3)], "none"),  # future objection not yet in effect
    ],
)
def test_effective_time_orders_events_not_recording_order(db, home, new_party, steps, expected):
    for event, days in steps:
        rec(db, home, new_party, event, effective=at(days))
    assert consent.current(db, new_party)["training"]["objection"] == expected


def test_equal_effective_times_fall_back_to_recording_order(db, home, new_party):
    t = at(-1)
    rec(db, home, new_party, "consent_given", effective=t)
    rec(db, home, new_party, "consent_withdrawn", effective=t)
    assert consent.current(db, new_party)["training"]["consent"] == "withdrawn"


def test_a_pending_event_takes_effect_when_its_time_comes(db, home, new_party):
    rec(db, home, new_party, "consent_given")
    out = rec(db, home, new_party, "consent_withdrawn", effective=at(2))
    assert out["status"]["consent"] == "given" and out["status"]["pending_at"] is not None
    assert consent.current(db, new_party)["training"]["consent"] == "given"
    later = consent.current(db, new_party, now=utc_iso(at(3), name="now"))
    assert later["training"]["consent"] == "withdrawn" and later["training"]["pending_at"] is None


def test_effective_times_are_stored_in_utc(db, home, new_party):
    out = rec(db, home, new_party, "consent_given", effective="2026-03-01T10:00:00+02:00")
    assert out["effective_at"] == "2026-03-01T08:00:00.000000+00:00"
    assert consent.history(db, new_party)[0]["effective_at"] == out["effective_at"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(purpose="marketing"), "--purpose"),
        (dict(event="maybe"), "event"),
        (dict(channel="fax"), "--channel"),
        (dict(actor=" "), "--actor"),
        (dict(effective="yesterday"), "--effective"),
        (dict(note="x" * 2001), "--note"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(db, home, new_party, kwargs, message):
    args = dict(party_ref=new_party, purpose="training", event="consent_given", actor="clerk", home=home) | kwargs
    before = auditlog.head(db)
    with pytest.raises(BadInput, match=message):
        consent.record(db, **args)
    assert consent.history(db, new_party) == [] and auditlog.head(db) == before


def test_unknown_party_ref_is_not_found(db, home):
    with pytest.raises(NotFound):
        consent.record(db, party_ref="nobody", purpose="training", event="consent_given", actor="clerk",
                       home=home)


# ---------------------------------------------------------------- evidence


def test_evidence_is_stored_with_the_event(db, home, recording, caller_ref):
    out = rec(db, home, caller_ref, "objection_made", channel="in_call",
              evidence={"recording_id": recording["id"], "seconds": 12.25})
    assert out["evidence"] == {"recording_id": recording["id"], "seconds": 12.25}
    assert consent.history(db, caller_ref)[0]["evidence"] == out["evidence"]


@pytest.mark.parametrize(
    "evidence, error, message",
    [
        ({"recording_id": 999, "seconds": 1}, NotFound, "no recording"),
        ({"recording_id": None, "seconds": 1}, BadInput, "recording id"),
        ({"recording_id": "REC", "seconds": 25.0}, BadInput, "outside"),  # REC: the fixture's id, 20 s long
        ({"recording_id": "REC", "seconds": -0.1}, BadInput, "outside"),
        ({"recording_id": "REC", "seconds": float("nan")}, BadInput, "outside"),
    ],
)
def test_bad_evidence_is_refused(db, home, recording, caller_ref, evidence, error, message):
    evidence = {k: (recording["id"] if v == "REC" else v) for k, v in evidence.items()}
    with pytest.raises(error, match=message):
        rec(db, home, caller_ref, "objection_made", evidence=evidence)
    assert consent.history(db, caller_ref) == []


def test_evidence_must_be_a_call_of_the_party(db, home, recording, new_party):
    with pytest.raises(BadInput, match="not the caller or agent"):
        rec(db, home, new_party, "objection_made", evidence={"recording_id": recording["id"], "seconds": 3})


@pytest.mark.parametrize("text, parsed", [("12@33.5", {"recording_id": 12, "seconds": 33.5}),
                                          ("3@0", {"recording_id": 3, "seconds": 0.0})])
def test_parse_evidence(text, parsed):
    assert consent.parse_evidence(text) == parsed


@pytest.mark.parametrize("text", ["12", "@3", "a@3", "12@x", "12@"])
def test_parse_evidence_rejects(text):
    with pytest.raises(BadInput, match="RECORDING_ID@SECONDS"):
        consent.parse_evidence(text)


# ---------------------------------------------------------------- append-only


def test_history_rows_cannot_be_changed(db, home, new_party):
    rec(db, home, new_party, "objection_made", note="said so on the phone")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE consent_events SET event = 'objection_withdrawn'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM consent_events")
    assert [h["event"] for h in consent.history(db, new_party)] == ["objection_made"]


def test_history_can_be_deleted_only_after_the_party_row_is_gone(db, new_party, home):
    rec(db, home, new_party, "consent_given")
    rec(db, home, new_party, "objection_made", purpose="quality")
    other = consent.record_for(db, home, "K-0002", purpose="training", event="consent_given", actor="clerk")
    with pytest.raises(sqlite3.IntegrityError):
        consent.forget(db, new_party)
    with transaction(db):  # erasure: the parties row goes first...
        db.execute("DELETE FROM parties WHERE ref = ?", [new_party])
    assert consent.forget(db, new_party) == 2  # ...then the history may follow
    assert consent.history(db, new_party) == []
    assert db.execute("SELECT count(*) FROM consent_status WHERE party_ref = ?", [new_party]).fetchone()[0] == 0
    # another party's history is still protected
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM consent_events WHERE party_ref = ?", [other["party_ref"]])


# ---------------------------------------------------------------- projection


def test_rebuild_gives_the_same_projection(db, home):
    rnd = random.Random(4)
    refs = [consent.record_for(db, home, f"K-{i:04d}", purpose="quality", event="consent_given",
                               actor="clerk")["party_ref"] for i in range(5)]
    for _ in range(60):
        rec(db, home, rnd.choice(refs), rnd.choice(consent.EVENTS), purpose=rnd.choice(consent.PURPOSES),
            effective=at(rnd.uniform(-30, 30)))
    before = consent.status_rows(db)
    assert len(before) > 5
    db.execute("DELETE FROM consent_status")  # a lost or damaged projection
    assert consent.rebuild(db, actor="admin") == len(before)
    assert consent.status_rows(db) == before


def test_rebuild_repairs_a_tampered_projection(db, home, new_party):
    rec(db, home, new_party, "objection_made")
    db.execute("UPDATE consent_status SET objection = 'none'")
    assert consent.current(db, new_party)["training"]["objection"] == "none"
    consent.rebuild(db)
    assert consent.current(db, new_party)["training"]["objection"] == "active"


# ---------------------------------------------------------------- audit log


def test_every_event_is_logged_without_notes(db, home, new_party):
    rec(db, home, new_party, "consent_given", note="Mevrouw Jansen, via haar zoon", channel="letter")
    rec(db, home, new_party, "objection_made", purpose="dispute", note="boos")
    rows, total = auditlog.entries(db, kind="consent")
    assert [r["kind"] for r in rows] == ["consent.consent_given", "consent.objection_made"]
    assert rows[0]["data"]["party"] == new_party and rows[0]["data"]["purpose"] == "training"
    assert rows[0]["actor"] == "clerk"
    text = json.dumps([r["data"] for r in rows])
    assert "Jansen" not in text and "boos" not in text and "letter" not in text
    assert auditlog.verify(db)["ok"]


def test_a_failing_recall_rolls_back_the_event(db, home, caller_ref, clip, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(withdrawal, "recall_party", boom)
    before = auditlog.head(db)
    with pytest.raises(RuntimeError):
        rec(db, home, caller_ref, "objection_made")
    assert consent.history(db, caller_ref) == [] and auditlog.head(db) == before
    assert consent.current(db, caller_ref)["training"]["objection"] == "none"


# ---------------------------------------------------------------- recall


def _set_status(db, clip_id, status):
    db.execute("UPDATE clips SET status = ? WHERE id = ?", [status, clip_id])


@pytest.mark.parametrize(
    "who, event, purpose, withdrawn",
    [
        ("caller", "objection_made", "training", True),
        ("agent", "objection_made", "training", True),  # the agent is heard in every clip too
        ("caller", "consent_withdrawn", "training", True),
        ("caller", "objection_made", "quality", False),  # only training recalls clips
        ("caller", "consent_given", "training", False),
        ("caller", "objection_withdrawn", "training", False),
    ],
)
def test_recall_on_objection_or_withdrawal(db, home, recording, clip, who, event, purpose, withdrawn):
    second = library.create_clip(db, home, recording["id"], start_s=10, end_s=14, title="two", author="m")
    _set_status(db, clip["id"], "approved")
    out = rec(db, home, recording[f"{who}_ref"], event, purpose=purpose)
    statuses = {c: library.get_clip(db, c)["status"] for c in (clip["id"], second)}
    if withdrawn:
        assert statuses == {clip["id"]: "withdrawn", second: "withdrawn"}
        assert sorted(out["recall"]["clips"]) == sorted(statuses)
        (log_row,) = auditlog.entries(db, kind="clip.withdraw")[0]
        assert log_row["data"]["party"] == recording[f"{who}_ref"] and log_row["data"]["reason"] == event
        # the consent event and the recall are adjacent: one transaction
        consent_row = auditlog.entries(db, kind=f"consent.{event}")[0][0]
        assert log_row["seq"] == consent_row["seq"] + 1
    else:
        assert statuses == {clip["id"]: "approved", second: "draft"}
        assert out["recall"] is None
        assert auditlog.entries(db, kind="clip.withdraw")[1] == 0


def test_recall_only_touches_the_partys_calls(db, home, clip, make_audio, caller_ref):
    path = make_audio("other.wav", seconds=10)
    (r,) = library.import_recordings(db, home, [path], caller="+31 6 1111 2222", agent="E-0099", actor="t")
    other = library.create_clip(db, home, r.id, start_s=1, end_s=4, title="other call", author="m")
    _set_status(db, other, "approved")
    rec(db, home, caller_ref, "objection_made")
    assert library.get_clip(db, clip["id"])["status"] == "withdrawn"
    assert library.get_clip(db, other)["status"] == "approved"


def test_lifting_an_objection_does_not_republish(db, home, clip, caller_ref):
    _set_status(db, clip["id"], "approved")
    rec(db, home, caller_ref, "objection_made")
    assert export.approval_blockers(db, clip["id"])[0]["code"] == "objection"
    rec(db, home, caller_ref, "objection_withdrawn")
    assert library.get_clip(db, clip["id"])["status"] == "withdrawn"
    assert export.approval_blockers(db, clip["id"]) == []  # a manager may now approve again


def test_a_future_objection_recalls_at_once(db, home, clip, caller_ref):
    _set_status(db, clip["id"], "approved")
    out = rec(db, home, caller_ref, "objection_made", effective=at(5))
    assert out["status"]["objection"] == "none"  # not yet in effect...
    assert library.get_clip(db, clip["id"])["status"] == "withdrawn"  # ...but we stop publishing now


# ---------------------------------------------------------------- CLI


def test_cli_consent_before_any_call_creates_the_party(cli_run, db, home):
    r, out = cli_run("consent", "grant", "--caller", "+31 6 5555 0000", "--purpose", "training", "--channel", "web",
                 "--actor", "ann", "--note", "web form 2026-114")
    assert r.exit_code == 0, r.output
    assert out["event"] == "consent_given" and out["status"]["consent"] == "given" and out["channel"] == "web"
    party = parties.lookup(db, home.secret(), "06-55550000")  # the same number, written differently
    assert party["ref"] == out["party_ref"] and out["label"] == party["label"]
    assert "5555" not in json.dumps(out)  # the identifier is never echoed back


def test_cli_status_shows_current_and_history(cli_run, recording):
    cli_run("object", "--caller", "06-12345678", "--evidence", f"{recording['id']}@12.5", "--channel", "in_call",
        "--actor", "ann")
    cli_run("consent", "grant", "--caller", "06-12345678", "--purpose", "quality", "--actor", "ann")
    r, out = cli_run("status", "--caller", "+31612345678")
    assert r.exit_code == 0
    assert out["party"] == recording["caller_ref"]
    assert out["status"]["training"]["objection"] == "active"
    assert out["status"]["quality"]["consent"] == "given"
    assert out["status"]["dispute"] == {"consent": "none", "consent_at": None, "objection": "none",
                                        "objection_at": None, "pending_at": None}
    assert [h["event"] for h in out["history"]] == ["objection_made", "consent_given"]
    assert out["history"][0]["evidence"] == {"recording_id": recording["id"], "seconds": 12.5}
    r, out = cli_run("object", "--caller", "06-12345678", "--withdraw", "--actor", "ann")
    assert out["status"]["objection"] == "withdrawn" and out["recall"] is None


@pytest.mark.parametrize(
    "args, code, error",
    [
        (["status", "--caller", "06-99999999"], 1, "not_found"),
        (["object", "--caller", "06-99999999", "--evidence", "REC@3"], 1, "bad_input"),  # new party: not in that call
        (["object", "--caller", "06-12345678", "--evidence", "REC@30"], 1, "bad_input"),
        (["object", "--caller", "06-12345678", "--evidence", "999@3"], 1, "not_found"),
        (["object", "--caller", "06-12345678", "--evidence", "three"], 1, "bad_input"),
        (["consent", "grant", "--caller", "06-1", "--purpose", "training", "--effective", "soon"], 1, "bad_input"),
    ],
)
def test_cli_errors(cli_run, db, home, recording, args, code, error):
    args = [a.replace("REC", str(recording["id"])) for a in args]
    n_parties = db["parties"].count
    r, out = cli_run(*args)
    assert r.exit_code == code and out["error"]["code"] == error
    assert db["parties"].count == n_parties  # a refused event creates no party


@pytest.mark.parametrize("args", [["status"], ["status", "--caller", "1", "--agent", "2"],
                                  ["consent", "grant", "--purpose", "training"],
                                  ["consent", "grant", "--caller", "x", "--purpose", "marketing"]])
def test_cli_usage_errors_exit_2(home, args):
    r = CliRunner().invoke(cli, ["--home", str(home.root), *args])
    assert r.exit_code == 2, r.output


def test_cli_agent_objection_and_rebuild(cli_run, db, clip):
    _set_status(db, clip["id"], "approved")
    r, out = cli_run("object", "--agent", "e-0007", "--actor", "ann")  # ids are case-folded
    assert r.exit_code == 0 and out["recall"]["clips"] == [clip["id"]]
    before = consent.status_rows(db)
    r, out = cli_run("consent", "rebuild")
    assert r.exit_code == 0 and out == {"rows": len(before)}
    assert consent.status_rows(db) == before
