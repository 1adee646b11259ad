"""Erasure (Art. 17): every byte of the person's audio gone, others untouched, crash-safe, holds respected."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from clipkit import auditlog, consent, erasure, library, parties, rendering, requests, retention
from clipkit.errors import BadInput, NotFound, PolicyRefusal

ANNA = "06-12345678"      # the caller who asks to be erased
BOB = "06-87654321"       # another caller of the same agent
AGENT = "E-0007"


def render(db, home, clip_ids: list[int]) -> list[Path]:
    """Render clips with the real renderer; returns their files."""
    rendering.render_clips(db, home, clip_ids, actor="t", workers=1)
    return [home.root / db.execute("SELECT path FROM renderings WHERE clip_id = ?", [cid]).fetchone()[0]
            for cid in clip_ids]


def slice_of(path: Path) -> bytes:
    """48 bytes from the middle of a file: audio samples no other file shares by chance."""
    data = path.read_bytes()
    return data[len(data) // 2: len(data) // 2 + 48]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def world(db, home, make_audio):
    """Anna: two stereo calls and a mixed one with the agent; Bob: one call with the same agent.

    Every call has a clip and a rendering. Returns the facts a test needs to
    check what is left afterwards.
    """
    recs = {"anna": [], "bob": []}
    for who, ident, channels in (("anna", ANNA, 2), ("anna", ANNA, 2), ("anna", ANNA, 1), ("bob", BOB, 2)):
        (res,) = library.import_recordings(db, home, [make_audio(f"{who}{len(recs[who])}.wav", channels=channels)],
                                           caller=ident, agent=AGENT, recorded_at="2026-03-02T10:00:00+01:00",
                                           actor="t")
        assert res.error is None
        recs[who].append(res.id)
    clips = {}
    for who, ids in recs.items():
        for rid in ids:
            title = "Zebrafinch complaint" if who == "anna" else "Bob billing"
            cid = library.create_clip(db, home, rid, start_s=1, end_s=6, title=title, tags=["x"], author="m")
            clips.setdefault(who, []).append(cid)
    renders = {who: render(db, home, ids) for who, ids in clips.items()}
    # a stray copy of Anna's call in tmp/, as a crashed import leaves one
    stray = home.tmp_dir / "import-deadbeef"
    stray.write_bytes(library.recording_path(home, library.get_recording(db, recs["anna"][0])).read_bytes())
    anna_files = [library.recording_path(home, library.get_recording(db, r)) for r in recs["anna"]]
    return {
        "recs": recs, "clips": clips, "renders": renders,
        "anna_files": anna_files,
        "anna_shas": [library.get_recording(db, r)["sha256"] for r in recs["anna"]],
        "anna_pseudonym": parties.lookup(db, home.secret(), ANNA)["pseudonym"],
        "needles": [slice_of(p) for p in anna_files + renders["anna"]],
        "bob_bytes": {p: p.read_bytes() for p in
                      [library.recording_path(home, library.get_recording(db, recs["bob"][0])), *renders["bob"]]},
    }


def assert_nothing_of_anna_left(home, world):
    files = files_under(home.root)
    assert any(p.name.startswith("clipkit.db") for p in files)
    needles = list(world["needles"])
    needles += [s.encode() for s in world["anna_shas"]]
    needles += [world["anna_pseudonym"].encode(), b"Zebrafinch", b"zebrafinch"]
    for path in files:
        data = path.read_bytes()
        for i, needle in enumerate(needles):
            assert needle not in data, f"needle {i} of Anna's data is still in {path.relative_to(home.root)}"
        assert not any(s in path.name for s in world["anna_shas"]), path
    for path in world["anna_files"] + world["renders"]["anna"]:
        assert not path.exists()


def assert_bob_intact(db, home, world):
    for path, data in world["bob_bytes"].items():
        assert path.read_bytes() == data
    (rid,) = world["recs"]["bob"]
    rec = library.get_recording(db, rid)
    assert hashlib.sha256(library.recording_path(home, rec).read_bytes()).hexdigest() == rec["sha256"]
    assert [c["id"] for c in library.list_clips(db, recording_id=rid)[0]] == world["clips"]["bob"]
    assert db["renderings"].count_where("clip_id = ?", world["clips"]["bob"]) == 1
    parties.lookup(db, home.secret(), BOB)
    parties.lookup(db, home.secret(), AGENT)


def test_erasure_removes_every_byte_of_the_caller_and_nothing_of_others(db, home, world, cli_run):
    req = requests.open_request(db, home, kind="erasure", identifier=ANNA, role="caller", note="Anna J. by phone",
                                actor="officer")
    out = erasure.erase(db, home, identifier=ANNA, actor="officer")
    assert out["erased"] == {"recordings": 3, "clips": 3, "renderings": 3, "files": 6}
    assert out["party_removed"] and out["request_closed"] and out["refused"] == []
    assert_nothing_of_anna_left(home, world)
    assert_bob_intact(db, home, world)
    assert not (home.tmp_dir / "import-deadbeef").exists()
    with pytest.raises(NotFound):
        parties.lookup(db, home.secret(), ANNA)
    assert parties.is_suppressed(db, home.secret(), ANNA)
    closed = requests.get(db, req["id"])
    assert closed["status"] == "closed" and closed["note"] is None and closed["outcome"].startswith("erased: 3")
    assert db["pending_deletions"].count == 0 and db["erasure_jobs"].count == 0
    assert auditlog.verify(db)["ok"]
    tomb = auditlog.entries(db, kind="erasure")[0][-1]
    assert tomb["actor"] == "officer" and tomb["data"] == {
        "request": req["id"], "recordings": 3, "clips": 3, "renderings": 3, "exports_to_recall": 0, "decision": "done",
        "notes_cleared": 0, "reviews": 0, "accounts": 0}
    res, _ = cli_run("log", "verify", as_json=False)
    assert res.exit_code == 0, res.output


def test_the_log_names_no_one(db, home, world):
    requests.open_request(db, home, kind="erasure", identifier=ANNA, role="caller", note="Anna J.", actor="o")
    erasure.erase(db, home, identifier=ANNA, actor="o")
    text = json.dumps(auditlog.entries(db)[0])
    assert "Anna" not in text and "12345678" not in text and world["anna_shas"][0] not in text


@pytest.mark.parametrize("seam", ["after_first_file", "before_files", "in_row_transaction", "before_party_rows"])
def test_a_crash_midway_and_a_rerun_finish_the_job(db, home, world, monkeypatch, crash_after_first_unlink, seam):
    requests.open_request(db, home, kind="erasure", identifier=ANNA, role="caller", actor="o")

    class Crash(Exception):
        pass

    if seam == "after_first_file":
        crash_after_first_unlink(Crash)
    elif seam == "before_files":
        monkeypatch.setattr(retention, "finish_pending", lambda db, home: (_ for _ in ()).throw(Crash("power cut")))
    elif seam == "in_row_transaction":
        real_append = auditlog.append

        def failing(db, *, kind, **kw):
            if kind == "erasure.recordings":
                raise Crash("power cut")
            return real_append(db, kind=kind, **kw)

        monkeypatch.setattr(auditlog, "append", failing)
    else:
        monkeypatch.setattr(requests, "_close", lambda *a, **k: (_ for _ in ()).throw(Crash("power cut")))

    with pytest.raises(Crash):
        erasure.erase(db, home, identifier=ANNA, actor="o")
    # whatever the crash left, the library never points at missing audio
    for rec in db.query("SELECT * FROM recordings"):
        assert library.recording_path(home, rec).exists()
    parties.lookup(db, home.secret(), ANNA)  # not yet removed: a rerun can still find the person
    monkeypatch.undo()

    out = erasure.erase(db, home, identifier=ANNA, actor="o")
    assert out["party_removed"] and out["request_closed"]
    assert (out["erased"]["recordings"], out["erased"]["clips"], out["erased"]["renderings"]) == (3, 3, 3)
    assert_nothing_of_anna_left(home, world)
    assert_bob_intact(db, home, world)
    assert auditlog.verify(db)["ok"]
    assert db["pending_deletions"].count == 0 and db["erasure_jobs"].count == 0


def test_a_purge_also_finishes_an_interrupted_erasure(db, home, world, monkeypatch):
    monkeypatch.setattr(retention, "_unlink_file", lambda p: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        erasure.erase(db, home, identifier=ANNA, actor="o")
    monkeypatch.undo()
    assert db["pending_deletions"].count == 6  # 3 calls and 3 renderings queued, none removed yet
    retention.purge(db, home, actor="cron")
    assert db["pending_deletions"].count == 0
    for path in world["anna_files"] + world["renders"]["anna"]:
        assert not path.exists()


def test_a_scrub_kept_busy_is_repeated_by_the_next_run(db, home, world, monkeypatch):
    # regression: once the party was gone, a rerun answered "nothing left" without scrubbing,
    # so rows the busy VACUUM did not clear could stay in free pages or the -wal file
    from clipkit.errors import DatabaseBusy

    def busy(database, **kw):
        raise DatabaseBusy("the database is locked by another clipkit process")

    monkeypatch.setattr(retention, "checkpoint_and_vacuum", busy)
    with pytest.raises(DatabaseBusy):
        erasure.erase(db, home, identifier=ANNA, actor="o")
    assert retention.scrub_pending(db)
    monkeypatch.undo()
    with pytest.raises(NotFound, match="erased earlier"):
        erasure.erase(db, home, identifier=ANNA, actor="o")
    assert not retention.scrub_pending(db)
    assert_nothing_of_anna_left(home, world)
    assert_bob_intact(db, home, world)


def test_a_purge_repeats_a_scrub_kept_busy(db, home, world, monkeypatch):
    monkeypatch.setattr(retention, "checkpoint_and_vacuum",
                        lambda database, **kw: (_ for _ in ()).throw(RuntimeError("busy")))
    with pytest.raises(RuntimeError):
        erasure.erase(db, home, identifier=ANNA, actor="o")
    monkeypatch.undo()
    calls = []
    real = retention.scrub_database
    monkeypatch.setattr(retention, "scrub_database", lambda database: (calls.append(1), real(database)))
    retention.purge(db, home, now="2026-01-01T00:00:00Z")  # nothing is due this early
    assert calls == [1] and not retention.scrub_pending(db)
    assert_nothing_of_anna_left(home, world)


def test_erasing_twice_says_nothing_is_left(db, home, world, cli_run):
    erasure.erase(db, home, identifier=ANNA, actor="o")
    with pytest.raises(NotFound, match="erased earlier at their request"):
        erasure.erase(db, home, identifier=ANNA, actor="o")
    res, out = cli_run("request", "erase", "--caller", ANNA)
    assert res.exit_code == 1 and out["error"]["code"] == "not_found" and "nothing left" in res.stderr


def test_unknown_person_is_not_found_and_nothing_is_written(db, home, world):
    before = (auditlog.head(db), db["suppressed"].count, db["parties"].count)
    with pytest.raises(NotFound, match="no data is stored about this person"):
        erasure.erase(db, home, identifier="06-99999999", actor="o")
    assert (auditlog.head(db), db["suppressed"].count, db["parties"].count) == before


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, BadInput, "--caller ID, --agent ID or --request"),
        ({"request_id": 42}, NotFound, "no request with id 42"),
    ],
)
def test_bad_arguments(db, home, kwargs, error, message):
    with pytest.raises(error, match=message):
        erasure.erase(db, home, actor="o", **kwargs)


def test_party_with_no_recordings_is_removed_and_suppressed(db, home, make_audio):
    req = requests.open_request(db, home, kind="erasure", identifier="K-77", role="caller", note="called twice",
                                actor="o")
    out = erasure.erase(db, home, request_id=req["id"], actor="o")
    assert out["erased"]["recordings"] == 0 and out["party_removed"] and out["request_closed"]
    assert db["parties"].count == 0
    with pytest.raises(PolicyRefusal, match="erased earlier"):
        library.import_recordings(db, home, [make_audio()], caller="K-77", agent=AGENT, actor="t")
    (res,) = library.import_recordings(db, home, [make_audio()], caller="K-77", agent=AGENT, actor="t",
                                       allow_suppressed=True, override_reason="court order 2026-3")
    assert res.error is None
    with pytest.raises(NotFound, match="erased earlier"):
        erasure.erase(db, home, request_id=req["id"], actor="o")


def test_legal_hold_keeps_that_recording_and_the_party_until_released(db, home, world, cli_run):
    held = world["recs"]["anna"][1]
    retention.set_hold(db, held, reason="complaint 2026-114", actor="legal")
    req = requests.open_request(db, home, kind="erasure", identifier=ANNA, role="caller", note="N", actor="o")
    res, out = cli_run("request", "erase", "--caller", ANNA)
    assert res.exit_code == 3
    assert out["refused"] == [{"recording": held, "reason": "on legal hold: complaint 2026-114"}]
    assert out["erased"]["recordings"] == 2 and not out["party_removed"] and not out["request_closed"]
    assert library.recording_path(home, library.get_recording(db, held)).exists()
    assert {c["status"] for c in library.list_clips(db, recording_id=held)[0]} == {"withdrawn"}
    kept = library.get_recording(db, held)  # no training clip left: the quality date applies at once
    assert kept["retention_until"] == library.retention_due(db, home, kept) and kept["retention_until"].startswith("2026-05-31")
    parties.lookup(db, home.secret(), ANNA)          # still held data: the tie stays
    assert parties.is_suppressed(db, home.secret(), ANNA)
    assert requests.get(db, req["id"])["status"] != "closed" and requests.get(db, req["id"])["note"] == "N"
    assert auditlog.entries(db, kind="erasure")[0][-1]["data"]["decision"] == "partial"
    assert auditlog.entries(db, kind="erasure", refused=True)[1] == 1

    released = retention.release_hold(db, held, reason="settled", actor="legal")
    assert released["erasure_requests_waiting"] == [req["id"]]
    out = erasure.erase(db, home, request_id=req["id"], actor="o")
    assert out["party_removed"] and out["request_closed"] and out["erased"]["recordings"] == 3
    assert_nothing_of_anna_left(home, world)
    assert_bob_intact(db, home, world)


def test_a_held_recording_of_a_person_being_erased_can_never_be_approved_or_exported_again(
        db, home, world, tmp_path, cli_run):
    # regression: after an erasure kept a held recording, a manager could re-approve its withdrawn clip
    # and export it, so the voice of someone who asked to be erased went out for training
    from clipkit import export

    held = world["recs"]["anna"][1]
    clip_id = world["clips"]["anna"][1]
    retention.set_hold(db, held, reason="complaint 2026-114", actor="legal")
    res, _ = cli_run("request", "erase", "--caller", ANNA)
    assert res.exit_code == 3
    assert "erased" in export.decide(db, clip_id, allow_weak=True).codes
    with pytest.raises(PolicyRefusal, match="erasure is under way"):
        rendering.approve(db, home, clip_id, actor="mgr")
    db.execute("UPDATE clips SET status = 'approved' WHERE id = ?", [clip_id])  # even if it were approved
    out = export.export_clips(db, home, [clip_id], to=tmp_path / "out", actor="t", allow_weak=True)
    # the call (March 2026) lost its training clip, so its quality date (May 2026) has passed too
    assert out["exported"] == [] and [r["code"] for r in out["refused"][0]["reasons"]] == ["retention_expired", "erased"]
    # Bob's clip with the same agent is untouched by Anna's erasure
    assert "erased" not in export.decide(db, world["clips"]["bob"][0], allow_weak=True).codes


def test_dry_run_for_an_agent_lists_every_call_they_took_and_changes_nothing(db, home, world, cli_run):
    head, files = auditlog.head(db), sorted(p.name for p in files_under(home.audio_dir))
    res, out = cli_run("request", "erase", "--agent", AGENT, "--dry-run")
    assert res.exit_code == 0 and out["dry_run"]
    assert sorted(r["id"] for r in out["recordings"]) == world["recs"]["anna"] + world["recs"]["bob"]
    assert {r["role"] for r in out["recordings"]} == {"agent"}
    assert out["would_erase"] == {"recordings": 4, "clips": 4, "renderings": 4, "files": 8}
    assert auditlog.head(db) == head and sorted(p.name for p in files_under(home.audio_dir)) == files
    assert db["recordings"].count == 4


def test_consent_history_goes_with_the_party(db, home, world):
    ref = parties.lookup(db, home.secret(), ANNA)["ref"]
    consent.record(db, party_ref=ref, purpose="training", event="objection_made", actor="o", home=home,
                   note="Anna said no")
    consent.record(db, party_ref=ref, purpose="quality", event="consent_given", actor="o", home=home)
    bob_ref = parties.lookup(db, home.secret(), BOB)["ref"]
    consent.record(db, party_ref=bob_ref, purpose="quality", event="consent_given", actor="o", home=home)
    erasure.erase(db, home, identifier=ANNA, actor="o")
    assert db["consent_events"].count_where("party_ref = ?", [ref]) == 0
    assert db["consent_status"].count_where("party_ref = ?", [ref]) == 0
    assert len(consent.history(db, bob_ref)) == 1
    assert_nothing_of_anna_left(home, world)


def test_earlier_exports_are_listed_for_recall(db, home, world, cli_run):
    clip = world["clips"]["anna"][0]
    # an export as the export register records one (its files left the data home)
    db["exports"].insert({"id": "x1", "at": "2026-03-03T09:00:00+00:00", "actor": "trainer", "recipient": "Academy",
                          "folder": "/elsewhere/x1", "decision": "allowed", "policy_version": "1",
                          "state": "complete"})
    db["export_items"].insert({"export_id": "x1", "clip_id": clip, "file": "clip-1.wav", "sha256": "ab" * 32})
    dry = erasure.erase(db, home, identifier=ANNA, actor="o", dry_run=True)
    assert [e["export_id"] for e in dry["exports_to_recall"]] == ["x1"]
    res, out = cli_run("request", "erase", "--caller", ANNA)
    assert res.exit_code == 0
    (x,) = out["exports_to_recall"]
    assert (x["export_id"], x["recipient"], x["clip_ids"]) == ("x1", "Academy", [clip])
    assert db["exports"].count == 1  # the record of what left stays, for the recall
    assert auditlog.entries(db, kind="clip.withdraw")[0]
    assert auditlog.entries(db, kind="erasure")[0][-1]["data"]["exports_to_recall"] == 1
    human, _ = cli_run("request", "erase", "--caller", BOB, as_json=False)
    assert human.exit_code == 0 and "Erased 1 recording(s)" in human.output


def test_request_for_another_person_is_refused(db, home, world):
    other = requests.open_request(db, home, kind="erasure", identifier=BOB, role="caller", actor="o")
    with pytest.raises(BadInput, match="another person"):
        erasure.erase(db, home, identifier=ANNA, request_id=other["id"], actor="o")
    access = requests.open_request(db, home, kind="access", identifier=ANNA, role="caller", actor="o")
    with pytest.raises(BadInput, match="not an erasure request"):
        erasure.erase(db, home, request_id=access["id"], actor="o")
    assert db["recordings"].count == 4


def test_a_new_request_after_erasure_starts_a_fresh_party(db, home, world, tmp_path):
    erasure.erase(db, home, identifier=ANNA, actor="o")
    req = requests.open_request(db, home, kind="access", identifier=ANNA, role="caller", actor="o")
    out = requests.access_bundle(db, home, identifier=ANNA, role="caller", to=tmp_path / "b", actor="o")
    assert out["recordings"] == 0 and out["request"] == req["id"]
    out = erasure.erase(db, home, identifier=ANNA, actor="o")
    assert out["party_removed"]


def test_free_text_naming_the_person_is_gone_after_erasure(db, home, world, tmp_path, monkeypatch):
    """Reasons typed by staff survive nowhere: not in the log, not in a table, not in a free page of the file."""
    from clipkit import access, export, users

    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    for role in ("manager", "compliance"):
        users.add_user(db, role, role=role, password="x" * 12)
    manager, officer = (users.authenticate(db, r, "x" * 12) for r in ("manager", "compliance"))
    anna_call, bob_call = world["recs"]["anna"][0], world["recs"]["bob"][0]
    typed = {
        # on Anna's own call
        "play": "Anna Zebrafinch 06-1234 5678 asked for a call back",
        # on Bob's call, naming Anna's number another way: only the mention scan finds it
        "other": "compare with +31 6 12345678 (other complaint)",
        "withdraw": "withdrawn at the request of 0612345678",
        "recipient": "Trainer who knows 0031612345678",
    }
    access.raw_audio(db, home, manager, anna_call, start_s=0, end_s=1, reason=typed["play"])
    access.raw_audio(db, home, manager, bob_call, start_s=0, end_s=1, reason=typed["other"])
    access.withdraw_clips(db, officer, [world["clips"]["anna"][0]], reason=typed["withdraw"], home=home)
    bob_clip = world["clips"]["bob"][0]
    db.execute("UPDATE clips SET status = 'approved' WHERE id = ?", [bob_clip])
    export.export_clips(db, home, [bob_clip], to=tmp_path / "x", actor="m", recipient=typed["recipient"])
    assert "Zebrafinch" not in json.dumps(auditlog.entries(db)[0])  # never log text in the first place
    out = erasure.erase(db, home, identifier=ANNA, actor="officer")
    assert out["party_removed"]
    needles = [t.encode() for t in typed.values()] + [b"12345678", b"1234 5678", b"Zebrafinch"]
    for path in files_under(home.root):
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} is still in {path.relative_to(home.root)}"
    assert auditlog.verify(db)["ok"]
    # both reasons named Anna (one on Bob's call): both cleared, and each log entry's note id still resolves
    rows = access.log_entries(db, officer, kind="play.raw")[0]
    assert [r["notes"]["reason"] for r in rows] == ["[cleared at erasure]", "[cleared at erasure]"]


def test_erasure_and_purge_reach_exports_and_bundles_wherever_clipkit_wrote_them(db, home, world, tmp_path):
    """Copies outside the store — the app's exports/ and bundles/ in the home, a CLI export elsewhere."""
    from clipkit import export, withdrawal

    anna_clip, bob_clip = world["clips"]["anna"][0], world["clips"]["bob"][0]
    db.execute("UPDATE clips SET status = 'approved' WHERE id IN (?, ?)", [anna_clip, bob_clip])
    outside = export.export_clips(db, home, [anna_clip, bob_clip], to=tmp_path / "srv", actor="m")
    inside = export.export_clips(db, home, [anna_clip], to=home.exports_dir, actor="m")
    bundle = requests.access_bundle(db, home, identifier=ANNA, role="caller", to=home.bundles_dir, actor="o")
    bob_bundle = requests.access_bundle(db, home, identifier=BOB, role="caller", to=tmp_path / "b", actor="o")
    anna_files = [Path(outside["path"]) / outside["exported"][0]["file"],
                  Path(inside["path"]) / inside["exported"][0]["file"], Path(bundle["path"])]
    bob_file = Path(outside["path"]) / outside["exported"][1]["file"]
    assert all(p.exists() for p in anna_files + [bob_file])
    plan = erasure.erase(db, home, identifier=ANNA, actor="o", dry_run=True)
    assert sorted(c["path"] for c in plan["copies"]["exports"]) == sorted(str(p) for p in anna_files[:2])
    assert [c["path"] for c in plan["copies"]["bundles"]] == [bundle["path"]]
    assert all(p.exists() for p in anna_files)  # a dry run changes nothing
    out = erasure.erase(db, home, identifier=ANNA, actor="o")
    assert not any(p.exists() for p in anna_files)
    assert bob_file.exists() and Path(bob_bundle["path"]).exists()
    assert len(out["copies"]["exports"]) == 2 and len(out["copies"]["bundles"]) == 1
    assert_nothing_of_anna_left(home, world)
    # the records stay (for recall: the recipients' copies are beyond reach), marked as deleted here
    assert db.execute("SELECT count(*) FROM export_items WHERE erased_at IS NOT NULL").fetchone()[0] == 2
    assert {r["export_id"] for r in withdrawal.recalls(db)} == {outside["export_id"], inside["export_id"]}
    # purge reaches Bob's copies once his call is past retention
    res = retention.purge(db, home, now="2099-01-01T00:00:00+00:00", actor="o")
    assert res["deleted"] and not bob_file.exists() and not Path(bob_bundle["path"]).exists()
