"""Export: policy gate, log-first, atomic folder, manifest contents, recall, CLI contract.

Renderings are made by :func:`fake_render`: it writes a 16-bit PCM WAV and a
``renderings`` row exactly as :func:`clipkit.rendering.render_clips` would
(same ``input_hash``), without the DSP stack, so currency after a re-cut is
decided by the real :func:`clipkit.rendering.current_rendering`.
"""

from __future__ import annotations

import hashlib
import json
import secrets

import numpy as np
import pytest
import soundfile as sf

from clipkit import auditlog, consent, export, library, policy, rendering, withdrawal
from clipkit.db import now_iso, transaction
from clipkit.errors import BadInput, ClipkitError, NotFound


def fake_render(db, home, clip_id, *, method="strong", metadata=False) -> dict:
    clip = library.get_clip(db, clip_id)
    recording = library.get_recording(db, clip["recording_id"])
    version = f"{method}-test-1"
    folder = home.audio_dir / rendering.RENDER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(16)}.wav"
    n = int(round((clip["end_s"] - clip["start_s"]) * 8000))
    y = np.random.default_rng(clip_id).normal(0, 0.05, (n, 2))
    with sf.SoundFile(str(path), "w", 8000, 2, subtype="PCM_16", format="WAV") as f:
        if metadata:
            f.title = "Caller Jansen"
        f.write(y)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with transaction(db):
        rid = db["renderings"].insert({
            "clip_id": clip_id, "input_hash": rendering.input_hash(recording, clip, version), "method": method,
            "method_version": version, "path": home.relative(path), "sha256": sha, "figures": "{}",
            "created_at": now_iso(), "created_by": "test",
        }).last_pk
        db.execute("UPDATE clips SET status = 'anonymized' WHERE id = ? AND status != 'withdrawn'", [clip_id])
    return {"id": rid, "path": path, "sha256": sha}


def approve(db, clip_id):
    db.execute("UPDATE clips SET status = 'approved', approved_by = 'boss', approved_at = ? WHERE id = ?",
                [now_iso(), clip_id])


@pytest.fixture
def ready(db, home, clip):
    """The fixture clip, rendered strong and approved."""
    r = fake_render(db, home, clip["id"])
    approve(db, clip["id"])
    return {"clip": clip, "rendering": r}


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "exports"


def do_export(db, home, ids, to, **kw):
    kw.setdefault("actor", "manager")
    return export.export_clips(db, home, ids, to=to, **kw)


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------- happy path


def test_export_writes_opaque_files_and_a_clean_manifest(db, home, ready, out_dir):
    clip = ready["clip"]
    rendering.set_redactions(db, home, clip["id"], [(0.5, 1.0), (2, 3, "silence")], actor="m")
    fake_render(db, home, clip["id"])
    approve(db, clip["id"])
    res = do_export(db, home, [clip["id"]], out_dir, recipient="Training team NL")
    assert res["decision"] == "allowed" and res["refused"] == [] and res["withheld"] == []
    folder = out_dir / res["export_id"]
    assert res["path"] == str(folder.resolve())
    assert listing(out_dir) == [res["export_id"]]  # no temp folder left behind
    (item,) = res["exported"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", item["file"]])
    data = (folder / item["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == item["sha256"]
    assert export.plain_wav_info(folder / item["file"])["sample_rate"] == 8000
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["export_id"] == res["export_id"] and manifest["actor"] == "manager"
    assert manifest["recipient"] == "Training team NL" and manifest["policy_version"] == policy.POLICY_VERSION
    (entry,) = manifest["files"]
    assert entry["file"] == item["file"] and entry["sha256"] == item["sha256"]
    assert entry["redactions"] == "2 spans redacted" and entry["tags"] == ["abusive"]
    assert entry["duration_s"] == pytest.approx(6.0)
    text = json.dumps(manifest)
    recording = library.get_recording(db, clip["recording_id"])
    for secret in ("Caller gets angry", "rec.wav", "12345678", "E-0007", "e-0007", recording["caller_ref"],
                   recording["agent_ref"], recording["sha256"], "0.5", "silence"):
        assert secret not in text, secret
    assert clip["title"] not in item["file"]
    # the method and version are stated, with what is measured about them (here: a test version, never measured)
    assert entry["anonymization"] == "strong-test-1"
    (claim,) = manifest["anonymization"]
    assert claim["version"] == "strong-test-1" and claim["measured"] is False and claim["figures"] is None
    assert claim["statement"] == "strong-test-1: not measured for this version"
    assert "has not been measured" in claim["summary"] and "%" not in claim["summary"]
    assert "pseudonymised personal data" in manifest["note"]


def test_manifest_states_the_measured_figures_of_the_running_anonymizer(db, home, ready, out_dir, tmp_path,
                                                                       monkeypatch):
    from clipkit import measured

    path = tmp_path / "measured.json"
    path.write_text(json.dumps({"format": 1, "entries": {measured.source_hash(): {
        "voices": "ten TTS voices", "methods": {"strong": {"version": "strong-test-1", "eer": {"ignorant": 0.4}}}}}}))
    monkeypatch.setattr(measured, "MEASURED_FILE", path)
    res = do_export(db, home, [ready["clip"]["id"]], out_dir)
    (claim,) = json.loads((out_dir / res["export_id"] / "manifest.json").read_text())["anonymization"]
    assert claim["measured"] and claim["figures"]["eer"] == {"ignorant": 0.4}
    assert "40 %" in claim["statement"] and "attacker trained on clipkit" in claim["statement"]
    assert "40 % equal error rate at best" in claim["summary"] and "pseudonymised personal data" in claim["summary"]


def test_export_is_recorded_in_tables_and_log(db, home, ready, out_dir):
    res = do_export(db, home, [ready["clip"]["id"]], out_dir, recipient="vendor")
    e = export.get_export(db, res["export_id"])
    assert e["state"] == "complete" and e["actor"] == "manager" and e["recipient"] == "vendor"
    assert e["files"] == res["exported"]
    manifest = (out_dir / res["export_id"] / "manifest.json").read_bytes()
    assert e["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    rows, _ = auditlog.entries(db, kind="export")
    assert [r["kind"] for r in rows] == ["export.attempt", "export.complete"]
    attempt = rows[0]["data"]
    assert attempt["decision"] == "allowed" and attempt["policy_version"] == policy.POLICY_VERSION
    assert attempt["clips"] == [ready["clip"]["id"]] and "recipient" not in attempt
    from clipkit import notes

    assert notes.texts(db, [attempt["recipient_note"]]) == {attempt["recipient_note"]: "vendor"}
    (d,) = attempt["decisions"]
    assert d["decision"] == "allowed" and d["sha256"] == res["exported"][0]["sha256"]
    recording = library.get_recording(db, ready["clip"]["recording_id"])
    assert d["parties"] == [recording["caller_ref"], recording["agent_ref"]]
    assert "12345678" not in json.dumps(attempt)
    assert auditlog.verify(db)["ok"]


def test_two_exports_never_share_a_folder(db, home, ready, out_dir):
    a = do_export(db, home, [ready["clip"]["id"]], out_dir)
    b = do_export(db, home, [ready["clip"]["id"]], out_dir)
    assert a["export_id"] != b["export_id"] and listing(out_dir) == sorted([a["export_id"], b["export_id"]])
    assert a["exported"][0]["file"] != b["exported"][0]["file"]


# ---------------------------------------------------------------- refusals


def _stale(db, home, clip):
    library.recut_clip(db, home, clip["id"], start_s=2.5, end_s=8.0, actor="m")
    approve(db, clip["id"])  # even an approved clip is refused if its rendering is stale


def _weak(db, home, clip):
    fake_render(db, home, clip["id"], method="pitch")
    approve(db, clip["id"])


@pytest.mark.parametrize(
    "setup, codes",
    [
        (lambda db, home, c, rec: None, []),
        (lambda db, home, c, rec: db.execute("UPDATE clips SET status='anonymized' WHERE id=?", [c["id"]]),
         ["not_approved"]),
        (lambda db, home, c, rec: _stale(db, home, c), ["not_anonymized"]),
        (lambda db, home, c, rec: _weak(db, home, c), ["weak_anonymization"]),
        (lambda db, home, c, rec: consent.record(db, party_ref=rec["caller_ref"], purpose="training",
                                                 event="objection_made", actor="a", home=home),
         ["objection", "withdrawn"]),
        (lambda db, home, c, rec: consent.record(db, party_ref=rec["agent_ref"], purpose="training",
                                                 event="objection_made", actor="a", home=home),
         ["objection", "withdrawn"]),
        # an objection for another purpose is no reason to refuse training use
        (lambda db, home, c, rec: consent.record(db, party_ref=rec["caller_ref"], purpose="quality",
                                                 event="objection_made", actor="a", home=home), []),
        (lambda db, home, c, rec: db.execute("UPDATE recordings SET basis='consent'"), ["no_consent"]),
        (lambda db, home, c, rec: db.execute("UPDATE recordings SET retention_until='2020-01-01T00:00:00+00:00'"),
         ["retention_expired"]),
        (lambda db, home, c, rec: db.execute("UPDATE recordings SET hold_reason='complaint 114'"), []),
    ],
)
def test_policy_decides_each_export(db, home, ready, recording, out_dir, setup, codes):
    clip = ready["clip"]
    setup(db, home, clip, recording)
    res = do_export(db, home, [clip["id"]], out_dir)
    if codes:
        assert res["decision"] == "refused" and res["exported"] == [] and res["path"] is None
        assert [r["code"] for r in res["refused"][0]["reasons"]] == codes
        assert listing(out_dir) == []
    else:
        assert res["decision"] == "allowed" and len(res["exported"]) == 1
    # the decision is in the log either way, with the same reason codes
    attempt = auditlog.entries(db, kind="export.attempt")[0][-1]["data"]
    assert attempt["decisions"][0]["reasons"] == codes


def test_consent_basis_needs_both_parties_consent(db, home, ready, recording, out_dir):
    db.execute("UPDATE recordings SET basis = 'consent'")
    cid = ready["clip"]["id"]
    consent.record(db, party_ref=recording["caller_ref"], purpose="training", event="consent_given", actor="a",
                   home=home)
    assert export.decide(db, cid).codes == ["no_consent"]
    consent.record(db, party_ref=recording["agent_ref"], purpose="training", event="consent_given", actor="a",
                   home=home)
    assert do_export(db, home, [cid], out_dir)["decision"] == "allowed"


def test_mixed_mono_call_both_parties_heard(db, home, make_audio, out_dir):
    path = make_audio("mono.wav", seconds=10, channels=1)
    (r,) = library.import_recordings(db, home, [path], caller="K-1", agent="E-5", actor="t")
    cid = library.create_clip(db, home, r.id, start_s=1, end_s=5, title="mono", author="m")
    fake_render(db, home, cid)
    approve(db, cid)
    rec = library.get_recording(db, r.id)
    assert rec["channel_map"] == "mixed"
    facts = export.clip_facts(db, cid)
    assert {p.ref for p in facts.parties} == {rec["caller_ref"], rec["agent_ref"]}
    consent.record(db, party_ref=rec["agent_ref"], purpose="training", event="objection_made", actor="a",
                   home=home)
    assert "objection" in export.decide(db, cid).codes


def test_erased_party_is_refused(db, home, ready):
    """A party row gone (erasure under way) refuses the clip even if its rows linger."""
    db.execute("PRAGMA foreign_keys=OFF")
    rec = library.get_recording(db, ready["clip"]["recording_id"])
    db.execute("DELETE FROM parties WHERE ref = ?", [rec["caller_ref"]])
    db.execute("PRAGMA foreign_keys=ON")
    assert "erased" in export.decide(db, ready["clip"]["id"]).codes


def test_refusal_is_committed_to_the_log_before_it_is_reported(db, home, clip, out_dir, tmp_path):
    from clipkit import db as dbmod

    res = do_export(db, home, [clip["id"]], out_dir)  # a draft: refused
    assert res["decision"] == "refused"
    other = dbmod.connect(home)  # a second connection sees it: it was committed
    try:
        rows, _ = auditlog.entries(other, refused=True)
        assert [r["data"]["export_id"] for r in rows] == [res["export_id"]]
        assert rows[0]["data"]["decisions"][0]["reasons"] == ["not_anonymized", "not_approved"]
    finally:
        other.close()
    assert db["exports"].count == 0  # a refused attempt lives in the log only


def test_partial_export_writes_the_allowed_clips(db, home, ready, recording, out_dir):
    draft = library.create_clip(db, home, recording["id"], start_s=10, end_s=12, title="draft", author="m")
    res = do_export(db, home, [ready["clip"]["id"], draft], out_dir)
    assert res["decision"] == "partial"
    assert [e["clip_id"] for e in res["exported"]] == [ready["clip"]["id"]]
    assert [r["clip_id"] for r in res["refused"]] == [draft]
    assert len(listing(out_dir / res["export_id"])) == 2
    rows, _ = auditlog.entries(db, refused=True)
    assert [r["decision"] for r in rows] == ["partial"]


def test_all_or_nothing_exports_nothing_and_says_so(db, home, ready, recording, out_dir):
    draft = library.create_clip(db, home, recording["id"], start_s=10, end_s=12, title="draft", author="m")
    res = do_export(db, home, [ready["clip"]["id"], draft], out_dir, all_or_nothing=True)
    assert res["decision"] == "refused" and res["exported"] == [] and res["withheld"] == [ready["clip"]["id"]]
    assert listing(out_dir) == [] and db["exports"].count == 0
    decisions = auditlog.entries(db, kind="export.attempt")[0][0]["data"]["decisions"]
    assert [(d["clip"], d["decision"]) for d in decisions] == [(ready["clip"]["id"], "withheld"), (draft, "refused")]


def test_allow_weak_exports_and_records_it(db, home, clip, out_dir):
    fake_render(db, home, clip["id"], method="pitch")
    approve(db, clip["id"])
    assert do_export(db, home, [clip["id"]], out_dir)["decision"] == "refused"
    res = do_export(db, home, [clip["id"]], out_dir, allow_weak=True)
    assert res["decision"] == "allowed"
    attempt = auditlog.entries(db, kind="export.attempt")[0][-1]["data"]
    assert attempt["allow_weak"] is True and attempt["decisions"][0]["weak_allowed"] is True
    manifest = json.loads((out_dir / res["export_id"] / "manifest.json").read_text())
    # the weak method is named, so the recipient knows it can largely be undone
    assert manifest["files"][0]["weak_anonymization"] is True and manifest["files"][0]["anonymization"] == "pitch-test-1"


# ---------------------------------------------------------------- validation (nothing logged)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(ids=[]), BadInput),
        (dict(ids=["x"]), BadInput),
        (dict(ids=[999]), NotFound),
        (dict(actor=" "), BadInput),
        (dict(to="HOME/sub"), BadInput),  # inside the data home
        (dict(to="HOME"), BadInput),
    ],
)
def test_invalid_exports_are_refused_before_anything_is_logged(db, home, ready, out_dir, kwargs, error):
    ids = kwargs.pop("ids", [ready["clip"]["id"]])
    to = kwargs.pop("to", str(out_dir)).replace("HOME", str(home.root))
    before = auditlog.head(db)
    with pytest.raises(error):
        do_export(db, home, ids, to, **kwargs)
    assert auditlog.head(db) == before and not out_dir.exists()


def test_a_link_into_the_home_is_refused(db, home, ready, tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to(home.root / "tmp")
    with pytest.raises(BadInput, match="inside the data home"):
        do_export(db, home, [ready["clip"]["id"]], link)


# ---------------------------------------------------------------- atomicity


def test_failure_mid_copy_leaves_nothing_and_logs_failed(db, home, ready, recording, out_dir, monkeypatch):
    second = library.create_clip(db, home, recording["id"], start_s=10, end_s=14, title="two", author="m")
    fake_render(db, home, second)
    approve(db, second)
    real = export._copy_verified
    calls = []

    def flaky(src, dst, sha):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst, sha)

    monkeypatch.setattr(export, "_copy_verified", flaky)
    with pytest.raises(ClipkitError, match="nothing was exported"):
        do_export(db, home, [ready["clip"]["id"], second], out_dir)
    assert len(calls) == 2 and calls[0].exists() is False  # the first copy was removed too
    assert listing(out_dir) == []  # neither the export nor a hidden temp folder
    kinds = [r["kind"] for r in auditlog.entries(db, kind="export")[0]]
    assert kinds == ["export.attempt", "export.failed"]
    (row,) = db.query("SELECT state FROM exports")
    assert row["state"] == "failed"
    assert withdrawal.exports_containing(db, [second]) == [] and withdrawal.recalls(db) == []
    assert auditlog.verify(db)["ok"]


def test_a_busy_database_after_the_rename_keeps_the_folder_and_the_next_export_records_it(
        db, home, ready, out_dir, monkeypatch):
    # regression: the folder was final but the user only saw "database busy", and the
    # export stayed "pending" with no export.complete in the log
    from clipkit.errors import DatabaseBusy

    def busy(*a, **k):
        raise DatabaseBusy("the database is locked by another clipkit process")

    monkeypatch.setattr(export, "_mark_complete", busy)
    with pytest.raises(DatabaseBusy, match="was written to") as err:
        do_export(db, home, [ready["clip"]["id"]], out_dir)
    (first,) = listing(out_dir)
    assert first in str(err.value) and (out_dir / first / "manifest.json").is_file()
    assert db.execute("SELECT state FROM exports WHERE id = ?", [first]).fetchone()[0] == "pending"
    monkeypatch.undo()
    do_export(db, home, [ready["clip"]["id"]], out_dir)
    states = dict(db.execute("SELECT id, state FROM exports").fetchall())
    assert states[first] == "complete" and set(states.values()) == {"complete"} and len(states) == 2
    done = [e["data"] for e in auditlog.entries(db, kind="export.complete")[0]]
    manifest_sha = hashlib.sha256((out_dir / first / "manifest.json").read_bytes()).hexdigest()
    assert {"export_id": first, "files": 1, "manifest_sha256": manifest_sha, "reconciled": True} in done
    assert len(done) == 2 and auditlog.verify(db)["ok"]


def test_an_export_killed_while_copying_is_settled_as_failed_once_stale(db, home, ready, out_dir):
    from datetime import datetime, timedelta, timezone

    res = do_export(db, home, [ready["clip"]["id"]], out_dir)
    eid = res["export_id"]
    # the state a hard kill during the copy leaves: row pending, only a hidden partial folder
    (out_dir / eid).rename(out_dir / f".{eid}.partial")
    with transaction(db):
        db.execute("UPDATE exports SET state = 'pending', manifest_sha256 = NULL WHERE id = ?", [eid])
    started = datetime.fromisoformat(db.execute("SELECT at FROM exports").fetchone()[0])
    assert export.reconcile_pending(db, actor="m", now=started + timedelta(minutes=5)) == []  # may still be copying
    assert listing(out_dir) == [f".{eid}.partial"]
    settled = export.reconcile_pending(db, actor="m", now=started + timedelta(hours=2))
    assert settled == [{"export_id": eid, "state": "failed"}] and listing(out_dir) == []
    assert auditlog.entries(db, kind="export.failed")[0][-1]["data"] == {"export_id": eid, "error": "interrupted"}
    assert export.reconcile_pending(db, actor="m", now=datetime.now(timezone.utc) + timedelta(days=1)) == []


def test_a_changed_rendering_fails_the_export(db, home, ready, out_dir):
    path = ready["rendering"]["path"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ClipkitError, match="checksum"):
        do_export(db, home, [ready["clip"]["id"]], out_dir)
    assert listing(out_dir) == [] and auditlog.entries(db, kind="export.failed")[1] == 1


def test_a_rendering_with_metadata_chunks_is_never_exported(db, home, clip, out_dir):
    fake_render(db, home, clip["id"], metadata=True)
    approve(db, clip["id"])
    with pytest.raises(ClipkitError, match="LIST"):
        do_export(db, home, [clip["id"]], out_dir)
    assert listing(out_dir) == []


def test_an_existing_export_folder_is_never_overwritten(db, home, ready, out_dir, monkeypatch):
    monkeypatch.setattr(export, "new_export_id", lambda: "x-fixed")
    (out_dir / "x-fixed").mkdir(parents=True)
    (out_dir / "x-fixed" / "keep.txt").write_text("earlier export")
    with pytest.raises(ClipkitError, match="never overwritten"):
        do_export(db, home, [ready["clip"]["id"]], out_dir)
    assert listing(out_dir / "x-fixed") == ["keep.txt"] and listing(out_dir) == ["x-fixed"]


# ---------------------------------------------------------------- recall


def test_objection_after_export_lists_the_export_for_recall(db, home, ready, recording, out_dir):
    res = do_export(db, home, [ready["clip"]["id"]], out_dir, recipient="vendor")
    assert withdrawal.recalls(db) == []
    out = consent.record(db, party_ref=recording["caller_ref"], purpose="training", event="objection_made",
                         actor="clerk", home=home)
    assert out["recall"] == {"party": recording["caller_ref"], "clips": [ready["clip"]["id"]],
                             "exports": [res["export_id"]]}
    (r,) = withdrawal.recalls(db)
    assert r["export_id"] == res["export_id"] and r["recipient"] == "vendor" and r["actor"] == "manager"
    assert r["clip_ids"] == [ready["clip"]["id"]]
    (f,) = r["files"]
    assert (f["file"], f["sha256"]) == (res["exported"][0]["file"], res["exported"][0]["sha256"])
    assert f["reason"] == "objection_made"
    withdraw_log = auditlog.entries(db, kind="clip.withdraw")[0][0]["data"]
    assert withdraw_log["exports"] == [res["export_id"]]
    # lifting the objection neither re-publishes nor un-recalls
    consent.record(db, party_ref=recording["caller_ref"], purpose="training", event="objection_withdrawn",
                   actor="clerk", home=home)
    assert library.get_clip(db, ready["clip"]["id"])["status"] == "withdrawn"
    assert len(withdrawal.recalls(db)) == 1
    assert export.decide(db, ready["clip"]["id"]).codes == ["withdrawn"]


def test_an_export_after_reapproval_is_not_recalled(db, home, ready, recording, out_dir):
    first = do_export(db, home, [ready["clip"]["id"]], out_dir)
    consent.record(db, party_ref=recording["caller_ref"], purpose="training", event="objection_made", actor="c",
                   home=home)
    consent.record(db, party_ref=recording["caller_ref"], purpose="training", event="objection_withdrawn",
                   actor="c", home=home)
    approve(db, ready["clip"]["id"])
    second = do_export(db, home, [ready["clip"]["id"]], out_dir)
    assert [r["export_id"] for r in withdrawal.recalls(db)] == [first["export_id"]]
    assert [e["export_id"] for e in withdrawal.exports_containing(db, [ready["clip"]["id"]])] == [
        first["export_id"], second["export_id"]]


def test_recalls_survive_the_clip_being_deleted(db, home, ready, recording, out_dir):
    res = do_export(db, home, [ready["clip"]["id"]], out_dir)
    withdrawal.recall_party(db, recording["caller_ref"], actor="dpo", reason="erasure", home=home)
    library.delete_clip(db, home, ready["clip"]["id"], actor="dpo")
    (r,) = withdrawal.recalls(db)
    assert r["export_id"] == res["export_id"] and r["files"][0]["reason"] == "erasure"


def test_exports_containing_lists_only_the_asked_clips(db, home, ready, recording, out_dir):
    other = library.create_clip(db, home, recording["id"], start_s=10, end_s=14, title="two", author="m")
    fake_render(db, home, other)
    approve(db, other)
    res = do_export(db, home, [ready["clip"]["id"], other], out_dir, recipient="r")
    (e,) = withdrawal.exports_containing(db, [other])
    assert e["export_id"] == res["export_id"] and e["clip_ids"] == [other] and e["recipient"] == "r"
    assert withdrawal.exports_containing(db, [12345]) == [] and withdrawal.exports_containing(db, []) == []


# ---------------------------------------------------------------- CLI


def test_cli_export_json_contract_and_exit_codes(cli_run, db, home, ready, recording, out_dir):
    cid = ready["clip"]["id"]
    r, out = cli_run("export", cid, "--to", out_dir, "--actor", "manager", "--recipient", "team")
    assert r.exit_code == 0
    assert set(out) >= {"export_id", "exported", "refused"}
    assert out["exported"] == [{"clip_id": cid, "file": out["exported"][0]["file"],
                                "sha256": out["exported"][0]["sha256"]}]
    draft = library.create_clip(db, home, recording["id"], start_s=10, end_s=12, title="d", author="m")
    r, out = cli_run("export", cid, draft, "--to", out_dir, "--actor", "manager")
    assert r.exit_code == 3 and len(out["exported"]) == 1
    assert out["refused"][0]["clip_id"] == draft
    assert {x["code"] for x in out["refused"][0]["reasons"]} == {"not_anonymized", "not_approved"}
    assert all(x["message"] for x in out["refused"][0]["reasons"])
    r, out = cli_run("export", cid, draft, "--to", out_dir, "--actor", "manager", "--all-or-nothing")
    assert r.exit_code == 3 and out["exported"] == [] and out["withheld"] == [cid]
    r, out = cli_run("export", 999, "--to", out_dir, "--actor", "manager")
    assert r.exit_code == 1 and out["error"]["code"] == "not_found"
    r, out = cli_run("export", cid, "--to", home.root / "x", "--actor", "manager")
    assert r.exit_code == 1 and out["error"]["code"] == "bad_input"


def test_cli_export_human_output(cli_run, ready, out_dir, db, recording, home):
    draft = library.create_clip(db, home, recording["id"], start_s=10, end_s=12, title="d", author="m")
    r, _ = cli_run("export", ready["clip"]["id"], draft, "--to", out_dir, "--actor", "m", as_json=False)
    assert r.exit_code == 3
    assert "Exported 1 clip(s)" in r.stdout and f"REFUSED clip {draft}" in r.stdout
    assert "not been approved" in r.stdout


def test_cli_recalls(cli_run, db, ready, recording, out_dir):
    r, out = cli_run("recalls")
    assert r.exit_code == 0 and out == {"recalls": []}
    _, exp = cli_run("export", ready["clip"]["id"], "--to", out_dir, "--actor", "manager", "--recipient", "vendor")
    r, out = cli_run("object", "--caller", "06-12345678", "--actor", "clerk")
    assert r.exit_code == 0 and out["recall"]["exports"] == [exp["export_id"]]
    r, out = cli_run("recalls")
    (rc,) = out["recalls"]
    assert (rc["export_id"], rc["recipient"], rc["clip_ids"]) == (exp["export_id"], "vendor", [ready["clip"]["id"]])
    assert rc["files"][0]["sha256"] == exp["exported"][0]["sha256"]
    r, _ = cli_run("recalls", as_json=False)
    assert exp["export_id"] in r.stdout and exp["exported"][0]["file"] in r.stdout


# ---------------------------------------------------------------- an objection reaches the caller however it is typed

@pytest.mark.parametrize("spelling", [
    "\u202a0612345678\u202c", "06\u200b12345678", "\ufeff06-12345678", "06\u201312345678", "06\u221212345678",
    "tel:+31612345678", "\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "+31 (0)6 1234 5678",
    " 0031 6 1234 5678\n",
])
def test_an_objection_typed_any_way_blocks_the_callers_export(cli_run, db, home, ready, out_dir, spelling):
    # the fixture call's caller was imported as 06-12345678
    r, out = cli_run("object", "--caller", spelling, "--purpose", "training")
    assert r.exit_code == 0, r.output
    assert out["new_party"] is False and out["warning"] is None
    assert ready["clip"]["id"] in out["recall"]["clips"]
    r, out = cli_run("export", ready["clip"]["id"], "--to", out_dir, "--actor", "trainer")
    assert r.exit_code == 3
    assert [x["code"] for x in out["refused"][0]["reasons"]][0] == "objection"


def test_a_recall_marked_done_leaves_the_list_until_a_clip_is_withdrawn_again(db, home, ready, recording, out_dir):
    other = library.create_clip(db, home, recording["id"], start_s=10, end_s=14, title="two", author="m")
    fake_render(db, home, other)
    approve(db, other)
    res = do_export(db, home, [ready["clip"]["id"], other], out_dir, recipient="vendor")
    with pytest.raises(NotFound, match="no open recall"):
        withdrawal.mark_recall_done(db, res["export_id"], actor="dpo")  # nothing to recall yet
    withdrawal.withdraw_clips(db, [ready["clip"]["id"]], actor="dpo", reason="manual", home=home)
    (r,) = withdrawal.recalls(db)
    assert r["clip_ids"] == [ready["clip"]["id"]]
    out = withdrawal.mark_recall_done(db, res["export_id"], actor="dpo", note="mail from vendor, 06-12345678 said ok")
    assert out["files"] == 1 and withdrawal.recalls(db) == []
    (kept,) = withdrawal.recalls(db, include_done=True)
    assert kept["done_at"] == out["confirmed_at"]
    entry = auditlog.entries(db, kind="export.recall_done")[0][-1]
    assert entry["data"]["export_id"] == res["export_id"] and "06-" not in str(entry["data"])  # text is a note
    with pytest.raises(NotFound):
        withdrawal.mark_recall_done(db, res["export_id"], actor="dpo")  # confirmed already
    # the other clip of the same export is withdrawn later: the export is back, with that file only
    withdrawal.withdraw_clips(db, [other], actor="dpo", reason="manual", home=home)
    (r,) = withdrawal.recalls(db)
    assert r["export_id"] == res["export_id"] and r["clip_ids"] == [other]


def test_cli_recalls_done(cli_run, db, ready, recording, out_dir):
    _, exp = cli_run("export", ready["clip"]["id"], "--to", out_dir, "--actor", "manager", "--recipient", "vendor")
    cli_run("object", "--caller", "06-12345678", "--actor", "clerk")
    r, out = cli_run("recalls", "done", exp["export_id"], "--note", "phoned", "--actor", "dpo")
    assert r.exit_code == 0 and out["export_id"] == exp["export_id"] and out["files"] == 1
    r, out = cli_run("recalls")
    assert out == {"recalls": []}
    r, out = cli_run("recalls", "done", "x-nope")
    assert r.exit_code == 1 and out["error"]["code"] == "not_found"
