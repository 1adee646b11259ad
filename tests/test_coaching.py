"""One-on-one coaching: the policy table, what the agent hears, sampling, rights, the CLI contract."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from clipkit import (access, auditlog, coaching, coaching_policy, consent, erasure, library, rendering, requests,
                     retention, users)
from clipkit.errors import BadInput, NotFound, PolicyRefusal
from conftest import add_accounts

NOW = "2026-06-01T12:00:00+00:00"


def last_month() -> str:
    """The month before this one (calls in it are well within their 90-day keep-until date)."""
    import datetime as dt

    return f"{(dt.date.today().replace(day=1) - dt.timedelta(days=1)):%Y-%m}"


# ---------------------------------------------------------------- the policy, as a table


def facts(**kw):
    base = dict(status="shared", retention_until="2027-01-01T00:00:00+00:00", viewer_role="agent",
                viewer_is_agent_of_review=True)
    base.update(kw)
    return coaching_policy.ReviewFacts(**base)


@pytest.mark.parametrize("action, kw, codes", [
    ("play", {}, []),
    ("play", {"viewer_role": "manager", "status": "draft", "viewer_is_agent_of_review": False}, []),
    ("play", {"status": "draft"}, ["not_shared"]),
    ("play", {"viewer_is_agent_of_review": False}, ["not_theirs"]),
    ("play", {"viewer_role": "trainer", "viewer_is_agent_of_review": False}, ["not_allowed"]),
    ("play", {"viewer_role": "compliance", "viewer_is_agent_of_review": False}, ["not_allowed"]),
    ("play", {"caller_objects_quality": True}, ["objection"]),
    ("play", {"audio_gone": True}, ["erased"]),
    ("play", {"retention_until": "2026-05-01T00:00:00+00:00"}, ["retention"]),
    ("play", {"agent_disabled": True}, ["agent_disabled"]),
    ("play", {"status": "draft", "caller_objects_quality": True, "audio_gone": True},
     ["not_shared", "objection", "erased"]),
    ("share", {"viewer_role": "manager", "status": "draft", "viewer_is_agent_of_review": False}, []),
    ("share", {"viewer_role": "manager", "status": "draft", "has_content": False}, ["empty"]),
    ("share", {"viewer_role": "agent", "status": "draft"}, ["not_allowed", "not_shared"]),
    ("share", {"viewer_role": "manager", "caller_objects_quality": True}, ["objection"]),
])
def test_policy_table(action, kw, codes):
    verdict = coaching_policy.decide(facts(**kw), action=action, now=NOW)
    assert verdict.codes == codes and verdict.allowed == (not codes)


# ---------------------------------------------------------------- a home with a real stereo call


@pytest.fixture
def coach(db, home, make_audio, monkeypatch):
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    path = make_audio("review.wav", seconds=20.0, seed=3)
    (res,) = library.import_recordings(db, home, [path], caller="06-12345678", agent="E-0007", actor="t")
    add_accounts(db, home, "correct horse battery")
    coaching.add_agent_account(db, home, "other-agent", agent="E-0099", password="correct horse battery")
    u = {r: users.authenticate(db, r, "correct horse battery") for r in users.ROLES + ("other-agent",)}
    return {"rec": res.id, "users": u, "path": path,
            "month": library.get_recording(db, res.id)["recorded_at"][:7]}


def test_the_agent_hears_their_own_channel_unaltered_and_the_caller_anonymized(db, home, coach):
    m, agent = coach["users"]["manager"], coach["users"]["agent"]
    r = access.create_review(db, home, m, coach["rec"])
    access.comment_review(db, m, r["id"], at_s=4.0, text="Good, calm opening")
    access.share_review(db, home, m, r["id"])
    heard, sr = sf.read(io.BytesIO(access.review_audio(db, home, agent, r["id"])), dtype="int16")
    original, _ = sf.read(str(coach["path"]), dtype="int16")
    assert heard.shape == original.shape
    assert np.array_equal(heard[:, 1], original[:, 1])  # the agent's own voice: byte for byte
    # the caller's channel is the strong rendering of that channel, not the original
    assert not np.array_equal(heard[:, 0], original[:, 0])
    voices = rendering.channel_voices(db, home, library.get_recording(db, coach["rec"]), unit=f"review:{r['id']}")
    from clipkit.anonymize import render

    ref = home.root / "ref.wav"
    render(coach["path"], ref, start_s=0.0, end_s=20.0, channel_voices=[voices[0], None], method="strong")
    caller_ref, _ = sf.read(str(ref), dtype="int16")
    assert np.array_equal(heard[:, 0], caller_ref)  # the same keyed voice the caller has in every clip
    plays = auditlog.entries(db, kind="review.play")[0]
    assert plays[-1]["actor"] == "agent" and plays[-1]["data"]["decision"] == "allowed"


def test_redactions_of_the_calls_clips_apply_to_both_channels(db, home, coach):
    m, agent = coach["users"]["manager"], coach["users"]["agent"]
    cid = library.create_clip(db, home, coach["rec"], start_s=2.0, end_s=8.0, title="t", author="m")
    rendering.set_redactions(db, home, cid, [(1.0, 2.0, "silence")], actor="m")  # call time 3-4 s
    r = access.create_review(db, home, m, coach["rec"])
    assert r["redactions"] == [[3.0, 4.0, "silence"]]
    access.comment_review(db, m, r["id"], at_s=1.0, text="x")
    access.share_review(db, home, m, r["id"])
    heard, _ = sf.read(io.BytesIO(access.review_audio(db, home, agent, r["id"])), dtype="int16")
    assert np.abs(heard[int(3.0 * 8000):int(4.0 * 8000)]).max() <= 1  # silent on both channels
    original, _ = sf.read(str(coach["path"]), dtype="int16")
    assert np.array_equal(heard[int(5 * 8000):, 1], original[int(5 * 8000):, 1])


def test_who_sees_what(db, home, coach):
    m, agent, other = coach["users"]["manager"], coach["users"]["agent"], coach["users"]["other-agent"]
    draft = access.create_review(db, home, m, coach["rec"])
    # an agent never sees a draft, nor another agent's review
    assert access.list_reviews(db, agent) == []
    with pytest.raises(NotFound):
        access.get_review(db, agent, draft["id"])
    with pytest.raises(PolicyRefusal, match="not been shared"):
        access.review_audio(db, home, agent, draft["id"])
    access.comment_review(db, m, draft["id"], at_s=2, text="ok")
    access.share_review(db, home, m, draft["id"])
    assert [r["id"] for r in access.list_reviews(db, agent)] == [draft["id"]]
    assert access.list_reviews(db, other) == []
    with pytest.raises(NotFound):
        access.get_review(db, other, draft["id"])
    with pytest.raises(PolicyRefusal, match="another agent"):
        access.review_audio(db, home, other, draft["id"])
    with pytest.raises(PolicyRefusal, match="another agent"):
        access.acknowledge_review(db, other, draft["id"])
    refused = [e for e in auditlog.entries(db, kind="review")[0] if e["data"].get("decision") == "refused"]
    assert len(refused) == 3  # every refused play and acknowledgement is logged
    # compliance sees counts, never the comments
    counts = access.review_counts(db, coach["users"]["compliance"])
    assert counts[-1]["shared"] == 1 and counts[-1]["refused_plays"] == 2
    assert "ok" not in json.dumps(counts)
    # acknowledgement with a reply; then it is no longer open
    out = access.acknowledge_review(db, agent, draft["id"], reply="Thanks, will slow down")
    assert out["status"] == "acknowledged" and out["reply"] == "Thanks, will slow down"
    with pytest.raises(BadInput):
        access.acknowledge_review(db, agent, draft["id"])


def test_an_objection_to_quality_blocks_sharing_and_playing_but_one_to_training_does_not(db, home, coach):
    m, agent = coach["users"]["manager"], coach["users"]["agent"]
    ref = library.get_recording(db, coach["rec"])["caller_ref"]
    consent.record(db, party_ref=ref, purpose="training", event="objection_made", actor="dpo", home=home)
    r = access.create_review(db, home, m, coach["rec"])
    access.comment_review(db, m, r["id"], at_s=2, text="ok")
    access.share_review(db, home, m, r["id"])  # training objection: a review is quality use
    assert access.review_audio(db, home, agent, r["id"])[:4] == b"RIFF"
    consent.record(db, party_ref=ref, purpose="quality", event="objection_made", actor="dpo", home=home)
    with pytest.raises(PolicyRefusal, match="quality"):
        access.review_audio(db, home, agent, r["id"])
    second = access.create_review(db, home, m, coach["rec"], start_s=0, end_s=5)
    access.comment_review(db, m, second["id"], at_s=1, text="x")
    with pytest.raises(PolicyRefusal, match="quality"):
        access.share_review(db, home, m, second["id"])
    shares = auditlog.entries(db, kind="review.share")[0]
    assert shares[-1]["data"] == {"review": second["id"], "decision": "refused", "reasons": ["objection"]}


@pytest.mark.parametrize("call, error", [
    (lambda db, home, rid: coaching.comment(db, rid, at_s=25.0, text="x", author="m"), "outside the reviewed range"),
    (lambda db, home, rid: coaching.comment(db, rid, at_s=2.0, text="  ", author="m"), "must not be empty"),
    (lambda db, home, rid: coaching.score(db, home, rid, {"charm": 3}, actor="m"), "not one of"),
    (lambda db, home, rid: coaching.score(db, home, rid, {"tone": 9}, actor="m"), "off the scale"),
    (lambda db, home, rid: coaching.score(db, home, rid, {"tone": "4.5"}, actor="m"), "whole number"),
    (lambda db, home, rid: coaching.share(db, home, rid, actor="m"), "nothing to go through"),
])
def test_bad_input_changes_nothing(db, home, coach, call, error):
    r = coaching.create_review(db, home, coach["rec"], start_s=0, end_s=20, reviewer="m")
    before = (coaching.get(db, r["id"]), auditlog.head(db)["seq"])
    with pytest.raises((BadInput, PolicyRefusal), match=error):
        call(db, home, r["id"])
    after = coaching.get(db, r["id"])
    assert after["comments"] == before[0]["comments"] and after["scores"] == before[0]["scores"]
    assert after["status"] == "draft"


# ---------------------------------------------------------------- sampling


@pytest.fixture
def month_of_calls(db, home, make_audio, monkeypatch):
    """Two agents with six calls each in May 2026, one caller objecting to quality use."""
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    ids = {"E-1": [], "E-2": []}
    for i in range(12):
        agent = "E-1" if i % 2 == 0 else "E-2"
        (res,) = library.import_recordings(db, home, [make_audio(f"m{i}.wav", seconds=4.0)], caller=f"06-1000000{i:02d}",
                                           agent=agent, recorded_at=f"{last_month()}-{i + 1:02d}T10:00:00+00:00",
                                           actor="t")
        ids[agent].append(res.id)
    ref = library.get_recording(db, ids["E-1"][0])["caller_ref"]
    consent.record(db, party_ref=ref, purpose="quality", event="objection_made", actor="dpo", home=home)
    return ids


def test_sampling_tops_up_skips_objections_and_is_reproducible(db, home, month_of_calls):
    first = coaching.sample(db, home, month=last_month(), per_agent=2, seed=7, actor="m")
    assert {a["created"] for a in first["per_agent"].values()} == {2}
    assert month_of_calls["E-1"][0] not in [c["recording_id"] for c in first["created"]]
    assert {"recording_id": month_of_calls["E-1"][0], "why": "the caller objected to quality use"} in first["skipped"]
    again = coaching.sample(db, home, month=last_month(), per_agent=3, seed=7, actor="m")
    assert {a["created"] for a in again["per_agent"].values()} == {1}  # tops up to 3, never duplicates
    recs = [r["recording_id"] for r in coaching.listing(db)]
    assert len(recs) == len(set(recs)) == 6
    # the same seed on a fresh home picks the same calls
    picked = sorted(c["recording_id"] for c in first["created"])
    db.execute("DELETE FROM reviews")
    assert sorted(c["recording_id"] for c in coaching.sample(db, home, month=last_month(), per_agent=2, seed=7,
                                                             actor="m")["created"]) == picked


def test_sampling_draws_the_hardest_calls_when_analysed(db, home, month_of_calls):
    hard = month_of_calls["E-2"][3]
    db.execute("INSERT INTO analyses (recording_id, version, analyzed_at, channels, difficulty, signals, reasons) "
               "SELECT id, 'x', 'now', 'stereo', CASE WHEN id = ? THEN 90 ELSE 5 END, '{}', '[]' FROM recordings",
               [hard])
    out = coaching.sample(db, home, month=last_month(), per_agent=2, difficult_share=0.5, seed=1, actor="m")
    e2 = [c for c in out["created"] if c["recording_id"] in month_of_calls["E-2"]]
    assert any(c["recording_id"] == hard and c["why"] == "difficult" for c in e2)
    assert sorted(c["why"] for c in e2) == ["difficult", "random"]


# ---------------------------------------------------------------- rights


def test_erasing_the_caller_leaves_the_review_unplayable_and_says_so(db, home, coach):
    m, agent = coach["users"]["manager"], coach["users"]["agent"]
    r = access.create_review(db, home, m, coach["rec"])
    access.comment_review(db, m, r["id"], at_s=2, text="ok")
    access.share_review(db, home, m, r["id"])
    rendered = coaching.current_audio(db, coaching._review(db, r["id"]))
    erasure.erase(db, home, identifier="06-12345678", actor="dpo")
    assert not (home.root / rendered["path"]).exists()  # the review's audio went with the call
    kept = access.get_review(db, agent, r["id"])
    assert kept["audio_gone"] is True and kept["comments"]
    with pytest.raises(PolicyRefusal, match="erased or purged"):
        access.review_audio(db, home, agent, r["id"])


def test_erasing_the_agent_deletes_their_reviews_and_their_login(db, home, coach):
    m = coach["users"]["manager"]
    r = access.create_review(db, home, m, coach["rec"])
    access.comment_review(db, m, r["id"], at_s=2, text="Talks too fast")
    access.share_review(db, home, m, r["id"])
    bundle = requests.access_bundle(db, home, identifier="E-0007", role="agent", to=home.bundles_dir, actor="dpo")
    summary = json.loads((home.bundles_dir / bundle["path"].split("/")[-1] / "summary.json").read_text())
    assert summary["reviews"][0]["comments"][0]["text"] == "Talks too fast"  # Art. 15: their reviews
    erasure.erase(db, home, identifier="E-0007", actor="dpo")
    assert db["reviews"].count == 0 and db["review_comments"].count == 0
    assert users.list_users(db) and "agent" not in [u["name"] for u in users.list_users(db)]
    dump = b"".join(p.read_bytes() for p in home.root.glob("clipkit.db*"))
    assert b"Talks too fast" not in dump


def test_purge_removes_reviews_past_their_retention(db, home, coach):
    r = coaching.create_review(db, home, coach["rec"], reviewer="m")
    out = retention.purge(db, home, now="2026-05-20T00:00:00+00:00", dry_run=True)
    assert out["reviews"] == 0
    out = retention.purge(db, home, now="2099-01-01T00:00:00+00:00")
    assert out["reviews"] == 1 and db["reviews"].count == 0
    assert any(e["data"]["reviews"] == [r["id"]] for e in auditlog.entries(db, kind="retention.reviews")[0])


# ---------------------------------------------------------------- the command line


def test_cli_contract(cli_run, db, home, coach, tmp_path):
    r, out = cli_run("party", "label", "--agent", "E-0007", "--name", "Sanne (team B)")
    assert r.exit_code == 0 and out["name"] == "Sanne (team B)"
    r, out = cli_run("party", "label", "--agent", "06-12345678", "--name", "Caller")
    assert r.exit_code == 1 and "caller" in out["error"]["message"]
    r, out = cli_run("review", "sample", "--month", coach["month"], "--per-agent", 1, "--seed", 3)
    assert r.exit_code == 0 and set(out) == {"created", "skipped", "per_agent"}
    (made,) = out["created"]
    assert set(made) == {"review_id", "recording_id", "agent", "why"}
    rid = made["review_id"]
    r, out = cli_run("review", "comment", rid, "--at", 50, "--text", "x")
    assert r.exit_code == 1 and "outside the reviewed range" in out["error"]["message"]
    r, out = cli_run("review", "comment", rid, "--at", 3.5, "--text", "Good greeting")
    assert r.exit_code == 0 and out["comments"][0]["at_s"] == 3.5
    r, out = cli_run("review", "score", rid, "--set", "tone=4", "--set", "greeting=5", "--note", "Solid")
    assert r.exit_code == 0 and out["scores"] == {"greeting": 5, "tone": 4}
    r, out = cli_run("review", "score", rid, "--set", "tone=7")
    assert r.exit_code == 1
    r, out = cli_run("review", "audio", rid, "--as", "agent", "--out", tmp_path / "a.wav")
    assert r.exit_code == 3 and out["error"]["code"] == "refused"  # not shared yet
    r, out = cli_run("review", "share", rid)
    assert r.exit_code == 0 and out["status"] == "shared"
    r, out = cli_run("review", "audio", rid, "--as", "agent", "--out", tmp_path / "a.wav")
    assert r.exit_code == 0 and sf.info(str(tmp_path / "a.wav")).channels == 2
    r, out = cli_run("review", "audio", rid, "--as", "trainer", "--out", tmp_path / "t.wav")
    assert r.exit_code == 1 and out["error"]["code"] == "forbidden"
    r, out = cli_run("review", "ack", rid, "--as", "other-agent")
    assert r.exit_code == 3
    r, out = cli_run("review", "ack", rid, "--as", "agent", "--reply", "Thanks")
    assert r.exit_code == 0 and out["status"] == "acknowledged"
    r, out = cli_run("reviews", "--agent", "E-0007", "--month", coach["month"])
    assert [x["id"] for x in out["reviews"]] == [rid] and out["reviews"][0]["agent_name"] == "Sanne (team B)"
    r, out = cli_run("reviews", "--month", "May")
    assert r.exit_code == 1 and "YYYY-MM" in out["error"]["message"]
    r, out = cli_run("user", "add", "x-agent", "--role", "agent")
    assert r.exit_code == 1 and "--agent" in out["error"]["message"]
    r, out = cli_run("user", "add", "dup-agent", "--role", "agent", "--agent", "E-0007")
    assert r.exit_code == 1 and "one account per agent" in out["error"]["message"]
