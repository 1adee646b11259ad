"""The role layer holds for every public function in clipkit.access, called the way a hostile insider would.

Each public function is called with each role's principal on a fresh home;
a role the table does not allow must get Forbidden and leave no trace in
the log. The table is written out here, not read from the code under test,
and a public function missing from it fails the test: a new function cannot
slip in unchecked. Principals that are not what they claim (a bare role
string, a forged role, a disabled account) are refused everywhere.
"""

from __future__ import annotations

import csv
import hashlib
import inspect

import numpy as np
import pytest
import soundfile as sf

from conftest import add_accounts, wait_for_job
from clipkit import access, audio, auditlog, batch, export, library, rendering, users
from clipkit.errors import ClipkitError, Forbidden, NotFound, PolicyRefusal

M, T, C, A = "manager", "trainer", "compliance", "agent"
ALL = {M, T, C, A}
CALLER = "06-12345678"


def _calls(x):
    """name -> (roles allowed, call(user)). ``x`` holds db, home, recording id, clip ids, export id."""
    db, home, rid, cid, aid = x["db"], x["home"], x["rid"], x["cid"], x["approved"]
    return {
        "import_calls": ({M}, lambda u: access.import_calls(db, home, u, [x["new_file"]], caller="06-1", agent="E-9")),
        "list_recordings": ({M, C}, lambda u: access.list_recordings(db, u)),
        "get_recording": ({M, C}, lambda u: access.get_recording(db, u, rid)),
        "ranked_calls": ({M, C}, lambda u: access.ranked_calls(db, home, u)),
        "agents": ({M, C}, lambda u: access.agents(db, u)),
        "call_moments": ({M, C}, lambda u: access.call_moments(db, u, rid)),
        "cut_range": ({M}, lambda u: access.cut_range(db, u, rid, start_s=2, end_s=4)),
        "waveform": ({M, C}, lambda u: access.waveform(db, home, u, rid)),
        "raw_audio": ({M, C}, lambda u: access.raw_audio(db, home, u, rid, start_s=0, end_s=2, reason="check")),
        "clip_original_audio": ({M, C}, lambda u: access.clip_original_audio(db, home, u, cid, reason="check")),
        "list_clips": ({M, C}, lambda u: access.list_clips(db, u)),
        "get_clip": ({M, T, C}, lambda u: access.get_clip(db, u, aid)),
        "create_clip": ({M}, lambda u: access.create_clip(db, home, u, rid, start_s=0, end_s=3, title="x")),
        "recut_clip": ({M}, lambda u: access.recut_clip(db, home, u, cid, start_s=1, end_s=4)),
        "update_clip": ({M}, lambda u: access.update_clip(db, u, cid, title="x")),
        "delete_clip": ({M}, lambda u: access.delete_clip(db, home, u, cid)),
        "set_redactions": ({M}, lambda u: access.set_redactions(db, home, u, cid, [(0.1, 0.5, "beep")])),
        "render_clips": ({M}, lambda u: access.render_clips(db, home, u, [cid])),
        "current_rendering": ({M, C}, lambda u: access.current_rendering(db, u, aid)),
        "approve": ({M}, lambda u: access.approve(db, home, u, cid)),
        "anonymized_audio": ({M, T, C}, lambda u: access.anonymized_audio(db, home, u, aid)),
        "trainer_library": ({T, M}, lambda u: access.trainer_library(db, u)),
        "library_tags": ({T, M}, lambda u: access.library_tags(db, u)),
        "all_tags": ({M, C}, lambda u: access.all_tags(db, u)),
        "record_in_call_objection": ({M, C}, lambda u: access.record_in_call_objection(
            db, u, rid, party="caller", at_s=1.0, home=home)),
        "find_party": ({C}, lambda u: access.find_party(db, home, u, CALLER)),
        "record_consent": ({C}, lambda u: access.record_consent(db, home, u, identifier=CALLER, purpose="quality",
                                                              event="consent_given")),
        "merge_parties": ({C}, lambda u: access.merge_parties(db, home, u, keep_ref=x["caller_ref"],
                                                             merge_ref=x["other_ref"], reason="same person")),
        "export_package": ({T, M}, lambda u: access.export_package(db, home, u, [aid], recipient="Team")),
        "package_zip": ({T, M}, lambda u: access.package_zip(db, home, u, x["export_id"])),
        "recalls": ({C}, lambda u: access.recalls(db, u)),
        "withdraw_clips": ({C}, lambda u: access.withdraw_clips(db, u, [aid], reason="test", home=home)),
        "exports_containing": ({C}, lambda u: access.exports_containing(db, u, [aid])),
        "log_entries": ({C}, lambda u: access.log_entries(db, u)),
        "log_csv": ({C}, lambda u: access.log_csv(db, u)),
        "verify_log": ({C}, lambda u: access.verify_log(db, u)),
        "list_requests": ({C}, lambda u: access.list_requests(db, u)),
        "open_request": ({C}, lambda u: access.open_request(db, home, u, kind="access", identifier=CALLER,
                                                          role="caller")),
        "extend_request": ({C}, lambda u: access.extend_request(db, u, x["request"], reason="busy")),
        "close_request": ({C}, lambda u: access.close_request(db, u, x["request"], outcome="done")),
        "access_bundle": ({C}, lambda u: access.access_bundle(db, home, u, identifier=CALLER, role="caller")),
        "bundle_zip": ({C}, lambda u: access.bundle_zip(db, u, x["bundle"])),
        "erase": ({C}, lambda u: access.erase(db, home, u, identifier=CALLER, dry_run=True)),
        "retention_overview": ({C}, lambda u: access.retention_overview(db, u)),
        "set_hold": ({C}, lambda u: access.set_hold(db, u, rid, reason="dispute")),
        "release_hold": ({C}, lambda u: access.release_hold(db, u, x["held"], reason="settled")),
        "purge": ({C}, lambda u: access.purge(db, home, u, dry_run=True)),
        "dashboard": ({C}, lambda u: access.dashboard(db, u)),
        "caller_voice": ({C}, lambda u: access.caller_voice(db, u)),
        "set_caller_voice": ({C}, lambda u: access.set_caller_voice(db, u, "per-caller")),
        "label_agent": ({M}, lambda u: access.label_agent(db, home, u, identifier="E-0007", name="Sanne")),
        "coaching_overview": ({M}, lambda u: access.coaching_overview(db, home, u, month=x["month"])),
        "sample_reviews": ({M}, lambda u: access.sample_reviews(db, home, u, month=x["month"], per_agent=2)),
        "create_review": ({M}, lambda u: access.create_review(db, home, u, rid)),
        "list_reviews": ({M, A}, lambda u: access.list_reviews(db, u)),
        "get_review": ({M, A}, lambda u: access.get_review(db, u, x["review"])),
        "comment_review": ({M}, lambda u: access.comment_review(db, u, x["review"], at_s=3, text="good")),
        "score_review": ({M}, lambda u: access.score_review(db, home, u, x["review"], {"tone": 4})),
        "share_review": ({M}, lambda u: access.share_review(db, home, u, x["draft_review"])),
        "close_review": ({M}, lambda u: access.close_review(db, u, x["review"])),
        "review_audio": ({M, A}, lambda u: access.review_audio(db, home, u, x["review"])),
        "acknowledge_review": ({A}, lambda u: access.acknowledge_review(db, u, x["review"], reply="thanks")),
        "scorecard": ({M, A}, lambda u: access.scorecard(db, home, u)),
        "review_counts": ({C}, lambda u: access.review_counts(db, u)),
        "save_playlist": ({T, M}, lambda u: access.save_playlist(db, u, name="session", clip_ids=[aid])),
        "library_rows_by_id": ({T, M}, lambda u: access.library_rows_by_id(db, u, [aid])),
        "my_playlists": ({T, M}, lambda u: access.my_playlists(db, u)),
        "delete_playlist": ({T, M}, lambda u: access.delete_playlist(db, u, 12345)),
        "start_render_job": ({M}, lambda u: wait_for_job(db, access.start_render_job(db, home, u, [cid]))),
        "my_jobs": ({M}, lambda u: access.my_jobs(db, u)),
        "start_import_job": ({M}, lambda u: wait_for_job(db, access.start_import_job(
            db, home, u, batch.parse_manifest("file,caller,agent\nnew.wav,06-1,E-9\n"),
            files={"new.wav": x["new_file"]}))),
        "redaction_preview": ({M}, lambda u: access.redaction_preview(db, home, u, cid, [(2.5, 3.0, "beep")],
                                                                    reason="check")),
        "import_batch": ({M}, lambda u: access.import_batch(
            db, home, u, batch.parse_manifest(f"file,caller,agent\n{x['new_file']},06-1,E-9\n"))),
        "mark_recall_done": ({C}, lambda u: access.mark_recall_done(db, u, x["export_id"], note="confirmed")),
        "approval_reasons": ({M}, lambda u: access.approval_reasons(db, home, u, cid)),
        "clip_withdrawal": ({M, C}, lambda u: access.clip_withdrawal(db, u, aid)),
        # the world's manager is an account administrator (see world)
        "list_accounts": ({M}, lambda u: access.list_accounts(db, u)),
        "add_account": ({M}, lambda u: access.add_account(db, home, u, "newbie", role="trainer")),
        "reset_password": ({M}, lambda u: access.reset_password(db, u, "spare")),
        "set_account_disabled": ({M}, lambda u: access.set_account_disabled(db, u, "spare", True)),
        "unlock_account": ({M}, lambda u: access.unlock_account(db, u, "spare")),
        "set_account_admin": ({M}, lambda u: access.set_account_admin(db, u, "spare", True)),
        "change_my_password": (ALL, lambda u: access.change_my_password(
            db, u, old="correct horse battery", new="another long password", repeat="another long password")),
    }


NAMES = sorted(_calls({k: None for k in ("db", "home", "rid", "cid", "approved")}))


@pytest.fixture
def world(db, home, recording, clip, make_audio, fake_render, monkeypatch):
    """A home with a draft clip, an approved strong clip, an export, a request, a bundle, a held call."""
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    principals = {}
    add_accounts(db, home, "correct horse battery")
    users.set_admin(db, "manager", True)
    users.add_user(db, "spare", role="manager", password="correct horse battery", admin=True)
    for role in users.ROLES:
        principals[role] = users.authenticate(db, role, "correct horse battery")
    approved = library.create_clip(db, home, recording["id"], start_s=10, end_s=14, title="ok", author="m")
    fake_render(db, home, approved)
    rendering.approve(db, home, approved, actor="manager")
    exp = access.export_package(db, home, principals[T], [approved], recipient="Team")
    other = make_audio("other.wav", seconds=4)
    (res,) = library.import_recordings(db, home, [other], caller="06-99999999", agent="E-2", actor="t")
    req = access.open_request(db, home, principals[C], kind="access", identifier="06-99999999", role="caller")
    bundle = access.access_bundle(db, home, principals[C], identifier="06-99999999", role="caller")
    access.set_hold(db, principals[C], res.id, reason="dispute")
    req2 = access.open_request(db, home, principals[C], kind="erasure", identifier="06-99999999", role="caller")
    x = {"db": db, "home": home, "rid": recording["id"], "cid": clip["id"], "approved": approved,
         "export_id": exp["export_id"], "request": req2["id"], "bundle": bundle["bundle_id"], "held": res.id,
         "caller_ref": recording["caller_ref"], "other_ref": library.get_recording(db, res.id)["caller_ref"],
         "new_file": make_audio("new.wav", seconds=3), "principals": principals}
    assert req["id"] != req2["id"]
    x["month"] = recording["recorded_at"][:7]
    shared = access.create_review(db, home, principals[M], recording["id"], start_s=0, end_s=10)
    access.comment_review(db, principals[M], shared["id"], at_s=2.0, text="Good greeting")
    access.share_review(db, home, principals[M], shared["id"])
    draft = access.create_review(db, home, principals[M], recording["id"], start_s=10, end_s=20)
    access.comment_review(db, principals[M], draft["id"], at_s=12.0, text="Listen here")
    x.update(review=shared["id"], draft_review=draft["id"])
    return x


def test_every_public_function_takes_a_principal_and_is_in_the_table():
    public = {n for n, f in inspect.getmembers(access, inspect.isfunction)
              if f.__module__ == "clipkit.access" and not n.startswith("_")}
    # is_account_admin only decides whether to show the Accounts page: it answers False, never raises
    helpers = {"allowed", "require", "is_account_admin"}
    assert public - helpers == set(NAMES), public - helpers ^ set(NAMES)
    for name in public:
        assert "user" in inspect.signature(getattr(access, name)).parameters, name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("role", sorted(ALL))
def test_each_function_with_each_role(world, name, role):
    roles, call = _calls(world)[name]
    user = world["principals"][role]
    before = auditlog.head(world["db"])["seq"]
    if role in roles:
        try:
            call(user)
        except Forbidden as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{name} refused the {role}: {e}")
        except ClipkitError:
            pass  # refused by policy or bad state: not the role layer's business here
    else:
        with pytest.raises(Forbidden):
            call(user)
        # nothing done, nothing logged under the refused user
        after = auditlog.entries(world["db"], limit=None)[0]
        assert [e for e in after if e["seq"] > before] == []


@pytest.mark.parametrize("name", NAMES)
def test_principals_that_are_not_what_they_claim_are_refused(world, name):
    _, call = _calls(world)[name]
    db = world["db"]
    forged = users.User("trainer", "manager", world["principals"][T].session)  # a trainer claiming the manager role
    for bad in ("manager", {"name": "manager", "role": "manager"}, None, forged,
                users.User("manager", "manager")):  # no session: not a logged-in user
        with pytest.raises(Forbidden):
            call(bad)
    for role in users.ROLES:
        users.disable_user(db, role)  # "spare" stays the account administrator
    for p in world["principals"].values():
        with pytest.raises(Forbidden):
            call(p)


def test_is_account_admin_says_no_to_every_forged_principal(world):
    db = world["db"]
    assert access.is_account_admin(db, world["principals"][M])
    forged = users.User("trainer", "manager", world["principals"][T].session)
    for bad in ("manager", {"name": "manager", "role": "manager"}, None, forged, users.User("manager", "manager"),
                *(world["principals"][r] for r in (T, C, A))):
        assert access.is_account_admin(db, bad) is False


# ---------------------------------------------------------------- what a trainer may call never leaks


def test_a_trainer_never_sees_figures_or_a_weak_rendering(world, fake_render):
    db, home, trainer, manager = world["db"], world["home"], world["principals"][T], world["principals"][M]
    with pytest.raises(Forbidden):
        access.current_rendering(db, trainer, world["approved"])  # F0 before/after would reveal the voice
    row = access.get_clip(db, trainer, world["approved"])
    assert set(row) == {"id", "title", "note", "tags", "duration_s", "status", "approved_at"}
    weak = library.create_clip(db, home, world["rid"], start_s=5, end_s=9, title="pitch only", author="m")
    fake_render(db, home, weak, method="pitch")
    rendering.approve(db, home, weak, actor="manager")
    with pytest.raises(PolicyRefusal, match="weak"):
        access.anonymized_audio(db, home, trainer, weak)
    # the manager checking their work may still hear it
    assert access.anonymized_audio(db, home, manager, weak)[:4] == b"RIFF"


def test_package_zip_takes_an_export_id_never_a_path(world, tmp_path):
    db, home, trainer = world["db"], world["home"], world["principals"][T]
    z = access.package_zip(db, home, trainer, world["export_id"])
    import io
    import zipfile

    zf = zipfile.ZipFile(io.BytesIO(z))
    names = zf.namelist()
    assert len(names) == 4 and any(n.endswith("manifest.json") for n in names)
    # a human-readable index next to the opaque file names
    (index,) = [n for n in names if n.endswith("index.csv")]
    wav_name = next(n for n in names if n.endswith(".wav")).split("/")[-1]
    rows = list(csv.DictReader(io.StringIO(zf.read(index).decode("utf-8-sig"))))
    assert rows == [{"file": wav_name, "title": "ok", "tags": "", "length_s": "4.0"}]
    html_page = zf.read(next(n for n in names if n.endswith("index.html"))).decode()
    assert wav_name in html_page and "pseudonymised personal data" in html_page
    for hostile in (str(home.audio_dir), str(home.root), "../" * 5 + "etc", "x0-nothing"):
        with pytest.raises(NotFound):
            access.package_zip(db, home, trainer, hostile)
    # another user's export is not theirs to download
    manager = world["principals"][M]
    with pytest.raises(NotFound):
        access.package_zip(db, home, manager, world["export_id"])
    # a file slipped into the export folder afterwards is not shipped, a changed one is refused
    folder = export.get_export(db, world["export_id"])["folder"]
    from pathlib import Path

    (Path(folder) / "raw.flac").write_bytes(library.recording_path(home, library.get_recording(db, world["rid"])).read_bytes())
    assert len(zipfile.ZipFile(io.BytesIO(access.package_zip(db, home, trainer, world["export_id"]))).namelist()) == 4
    wav = next(p for p in Path(folder).glob("*.wav"))
    wav.write_bytes(wav.read_bytes()[:-2] + b"\0\0")
    with pytest.raises(NotFound, match="checksum"):
        access.package_zip(db, home, trainer, world["export_id"])


def test_every_payload_is_unique_and_carries_exactly_the_stored_bytes(world):
    db, home = world["db"], world["home"]
    trainer, manager = world["principals"][T], world["principals"][M]
    a = access.anonymized_audio(db, home, trainer, world["approved"])
    b = access.anonymized_audio(db, home, trainer, world["approved"])
    assert a != b  # a fresh nonce per response
    current = rendering.current_rendering(db, library.get_clip(db, world["approved"]))
    assert hashlib.sha256(audio.without_nonce(a)).hexdigest() == current["sha256"]
    r1 = access.raw_audio(db, home, manager, world["rid"], start_s=0, end_s=2, reason="cut")
    r2 = access.raw_audio(db, home, manager, world["rid"], start_s=0, end_s=2, reason="cut")
    assert r1 != r2 and audio.without_nonce(r1) == audio.without_nonce(r2)
    y, sr = sf.read(__import__("io").BytesIO(r1))
    assert sr == 8000 and len(y) == 16000 and np.abs(y).max() > 0


def test_dashboard_counts_objections_per_purpose_and_lists_open_requests(world):
    db, home, c = world["db"], world["home"], world["principals"][C]
    from clipkit import consent

    before = access.dashboard(db, c)
    assert before["objections_by_purpose"] == {"training": 0, "quality": 0, "dispute": 0}
    consent.record(db, party_ref=world["caller_ref"], purpose="quality", event="objection_made", actor="c", home=home)
    d = access.dashboard(db, c)
    assert d["objections_by_purpose"]["quality"] == 1 and d["objections_by_purpose"]["training"] == 0
    assert [r["id"] for r in d["requests_open"]] == [world["request"]]


@pytest.mark.parametrize("spans", [[(1.0, 3.0, "beep")], [(7.5, 9.0, "beep")], [(3.0, 2.5, "beep")],
                                   [(3.0, 4.0, "shout")], [("a", 4.0, "beep")]])
def test_a_redaction_preview_outside_the_clip_or_malformed_is_refused(world, spans):
    db, home, m = world["db"], world["home"], world["principals"][M]
    before = auditlog.head(db)["seq"]
    with pytest.raises(ClipkitError):
        access.redaction_preview(db, home, m, world["cid"], spans, reason="check")
    assert auditlog.head(db)["seq"] == before  # nothing played, nothing logged


def test_the_package_index_keeps_hostile_titles_inert(world):
    import io
    import zipfile

    db, home, trainer = world["db"], world["home"], world["principals"][T]
    library.update_clip(db, world["approved"], title="=HYPERLINK(\"http://x\") <script>alert(1)</script>", actor="m")
    zf = zipfile.ZipFile(io.BytesIO(access.package_zip(db, home, trainer, world["export_id"])))
    page = zf.read(next(n for n in zf.namelist() if n.endswith("index.html"))).decode()
    assert "<script>" not in page and "&lt;script&gt;" in page
    (row,) = csv.DictReader(io.StringIO(zf.read(next(n for n in zf.namelist() if n.endswith("index.csv")))
                                        .decode("utf-8-sig")))
    assert row["title"].startswith("'=")
