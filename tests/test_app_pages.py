"""The Streamlit app under AppTest: login, navigation per role, every page, and the main flows.

Each test gets its own data home (``CLIPKIT_HOME`` via monkeypatch) with one
generated call, a draft clip and an approved clip. Renderings are made by a
stand-in writer so no test waits for the DSP stack; the browser test
(``test_e2e_browser.py``) runs the real one.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from app_pages import _ui
from conftest import add_accounts, wait_for_job
from clipkit import audio, auditlog, library, users

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
PASSWORD = "correct horse battery"
TIMEOUT = 30


@pytest.fixture
def app_home(home, db, recording, clip, monkeypatch, fake_render):
    """A home with users of every role, a draft clip and an approved clip; CLIPKIT_HOME points at it."""
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)  # cheap hashes for tests; the cost is stored in each hash
    add_accounts(db, home, PASSWORD)
    approved = library.create_clip(db, home, recording["id"], start_s=10.0, end_s=14.5, title="Calm refund",
                                   tags=["refund"], note="Agent explains the refund", author="manager")
    fake_render(db, home, approved)
    from clipkit import rendering

    rendering.approve(db, home, approved, actor="manager")
    monkeypatch.setenv("CLIPKIT_HOME", str(home.root))
    monkeypatch.setattr(sys.modules[__name__], "_DB", db)
    return {"home": home, "db": db, "recording": recording, "draft": clip["id"], "approved": approved}


@pytest.fixture
def fake_renderer(monkeypatch):
    """render_clips with a stand-in DSP: same bookkeeping, a sine instead of a voice."""
    from clipkit import rendering

    def render_one(job):
        with sf.SoundFile(job["src"]) as f:
            sr, ch = f.samplerate, f.channels
        n = int(round((job["end_s"] - job["start_s"]) * sr))
        y = np.tile((0.2 * np.sin(np.arange(n) / 7.0)).astype("float32")[:, None], (1, ch))
        sf.write(job["dst"], y, sr, subtype="PCM_16", format="WAV")
        return {"figures": {"f0_median_before": [200.0] * ch, "f0_median_after": [150.0] * ch},
                "sha256": hashlib.sha256(Path(job["dst"]).read_bytes()).hexdigest()}

    monkeypatch.setattr(rendering, "_render_one", render_one)
    monkeypatch.setattr(rendering, "_method_versions", lambda: {"strong": "strong-test", "pitch": "pitch-test"})
    monkeypatch.setattr(rendering, "channel_voices", lambda db, home, rec: [None] * rec["channels"])


_DB = None  # the app_home fixture's database: app(role) logs the role's account in on it


def app(role: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if role is not None:
        at.session_state["user"] = users.start_session(_DB, role)
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# ---------------------------------------------------------------- login and navigation


def test_login_form_wrong_then_right_password_then_logout(app_home):
    at = ok(app())
    assert [t.value for t in at.title] == ["clipkit"]
    at.text_input(key="login_name").input("manager")
    at.text_input(key="login_password").input("wrong password")
    ok(at.button(key="login_submit").click().run())
    assert errors(at) == ["wrong user name or password, or the account is disabled"]
    assert "user" not in at.session_state
    at.text_input(key="login_password").input(PASSWORD)
    ok(at.button(key="login_submit").click().run())
    assert at.session_state["user"] == users.User("manager", "manager")
    assert "login_password" not in at.session_state  # the password does not linger in the session
    assert [t.value for t in at.title] == ["Calls & cutting"]
    ok(at.sidebar.button(key="logout").click().run())
    assert "user" not in at.session_state and [t.value for t in at.title] == ["clipkit"]
    kinds = [r["kind"] for r in auditlog.entries(app_home["db"], kind="user")[0]]
    assert kinds[-3:] == ["user.login", "user.login", "user.logout"]


def test_lockout_is_shown_in_plain_words(app_home):
    at = ok(app())
    at.text_input(key="login_name").input("trainer")
    for _ in range(users.MAX_FAILURES):
        at.text_input(key="login_password").input("nope nope nope")
        ok(at.button(key="login_submit").click().run())
    at.text_input(key="login_password").input(PASSWORD)
    ok(at.button(key="login_submit").click().run())
    assert "too many failed logins" in errors(at)[0]
    assert "user" not in at.session_state


def test_not_logged_in_sees_only_the_login_page(app_home):
    at = ok(app())
    for spec in [s for pages in _ui.PAGES.values() for s in pages]:
        with pytest.raises(ValueError):
            at.switch_page(spec.path)


@pytest.mark.parametrize("role", users.ROLES)
def test_each_role_sees_only_its_pages(app_home, role):
    at = ok(app(role))
    mine = {s.path for s in _ui.PAGES[role]}
    for other, specs in _ui.PAGES.items():
        for spec in specs:
            if spec.path in mine:
                continue
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(spec.path)
    for spec in _ui.PAGES[role]:
        ok(at.switch_page(spec.path).run())
        assert at.title and at.title[0].value, spec.path
        assert not errors(at), (spec.path, errors(at))


def test_trainer_navigation_has_no_manager_or_compliance_pages(app_home):
    at = ok(app("trainer"))
    assert [t.value for t in at.title] == ["Training library"]
    pages = {str(Path(str(i.get("script_path"))).resolve()) for i in at._tree._runner._registered_pages.values()}
    assert pages == {str(ROOT / "app_pages" / "trainer_library.py"), str(ROOT / _ui.MY_ACCOUNT_PAGE.path)}


def test_disabled_account_is_logged_out_on_next_run(app_home):
    at = ok(app("manager"))
    users.disable_user(app_home["db"], "manager")
    ok(at.run())
    assert "user" not in at.session_state
    assert any("disabled" in w.value for w in at.warning)


def test_missing_home_is_a_plain_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPKIT_HOME", str(tmp_path / "nowhere"))
    at = ok(app())
    assert "no clipkit data home" in errors(at)[0]


# ---------------------------------------------------------------- manager flows


def test_cut_a_clip_with_sub_second_range(app_home):
    rid = app_home["recording"]["id"]
    at = ok(app("manager"))
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart") or True  # waveform drawn (no exception)
    at.number_input(key=f"cut_start_{rid}").set_value(3.25)
    at.number_input(key=f"cut_end_{rid}").set_value(7.75)
    ok(at.run())
    assert at.slider(key=f"cut_range_{rid}").value == (3.25, 7.75)
    # preview: the server slices the range, logged with the reason
    ok(at.button(key="preview_range").click().run())
    assert at.session_state["preview_audio"][1:3] == (3.25, 7.75)
    import io

    y, sr = sf.read(io.BytesIO(at.session_state["preview_audio"][3]))
    assert len(y) == int(round(4.5 * sr))
    at.text_input(key="cut_title").input("Caller asks for a refund")
    at.text_input(key="cut_tags").input("Refund, billing")
    at.text_area(key="cut_note").input("Good de-escalation")
    ok(at.button(key="cut_submit").click().run())
    assert not errors(at)
    new_id = at.session_state["clips_selected"]
    clip = library.get_clip(app_home["db"], new_id)
    assert (clip["start_s"], clip["end_s"], clip["tags"]) == (3.25, 7.75, ["billing", "refund"])
    assert clip["author"] == "manager"
    raw = [r for r in auditlog.entries(app_home["db"], kind="play.raw")[0]]
    assert raw and raw[-1]["actor"] == "manager"
    from clipkit import notes

    assert notes.texts(app_home["db"], [raw[-1]["data"]["reason_note"]]) == {raw[-1]["data"]["reason_note"]: "Choosing a training clip"}


def test_bad_range_shows_a_plain_error(app_home):
    rid = app_home["recording"]["id"]
    at = ok(app("manager"))
    at.number_input(key=f"cut_start_{rid}").set_value(5.0)
    at.number_input(key=f"cut_end_{rid}").set_value(5.4)
    at.text_input(key="cut_title").input("Too short")
    ok(at.button(key="cut_submit").click().run())
    assert any("at least 1 s" in e for e in errors(at))


def test_redact_anonymize_compare_and_approve(app_home):
    db, cid = app_home["db"], app_home["draft"]
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(cid)
    ok(at.run())
    # spans are entered in call time (the clip starts at 2.0 s in its call) and stored in clip time
    at.number_input(key=f"span_from_{cid}").set_value(2.5)
    at.number_input(key=f"span_to_{cid}").set_value(3.25)
    at.selectbox(key=f"span_mode_{cid}").set_value("silence")
    ok(at.button(key="span_preview_go").click().run())
    assert not errors(at), errors(at)
    assert library.get_clip(db, cid)["redactions"] == []  # a preview changes nothing
    preview = at.session_state["span_preview"][1]
    y, sr = sf.read(io.BytesIO(audio.without_nonce(preview)))
    assert np.max(np.abs(y[int(0.5 * sr) + 1:int(1.25 * sr) - 1])) == 0.0  # silenced in the preview
    assert np.max(np.abs(y[:int(0.4 * sr)])) > 0.01
    raw = [e for e in auditlog.entries(db, kind="play.raw")[0]][-1]
    assert raw["data"]["redactions"] == 1 and raw["actor"] == "manager"
    ok(at.button(key="span_add").click().run())
    assert library.get_clip(db, cid)["redactions"] == [[0.5, 1.25, "silence"]]
    assert at.button(key="approve_go").disabled  # nothing current to approve yet
    ok(at.button(key="anon_go").click().run())
    assert not errors(at), errors(at)
    assert library.get_clip(db, cid)["status"] == "anonymized"
    assert at.get("progress") is not None
    ok(at.button(key="ab_go").click().run())
    a, b = at.session_state["ab_audio"][3:5]
    assert a != b and a[:4] == b[:4] == b"RIFF"
    assert len(at.get("audio")) == 2
    ok(at.button(key="approve_go").click().run())
    assert library.get_clip(db, cid)["status"] == "approved"
    assert any("Approved by manager" in s.value for s in at.success)


def test_clip_list_filters_and_badges(app_home):
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    table = at.dataframe[0].value
    assert set(table["status"]) == {"draft", "approved"}
    at.selectbox(key="clips_status").set_value("approved")
    ok(at.run())
    assert list(at.dataframe[0].value["id"]) == [app_home["approved"]]
    at.selectbox(key="clips_status").set_value("(any)")
    at.text_input(key="clips_search").input("angry")
    ok(at.run())
    assert list(at.dataframe[0].value["id"]) == [app_home["draft"]]


def test_record_an_in_call_objection(app_home):
    db, rid = app_home["db"], app_home["recording"]["id"]
    at = ok(app("manager"))
    at.selectbox(key="obj_party").set_value("caller")
    at.number_input(key=f"obj_at_{rid}").set_value(12.34)
    at.text_input(key="obj_note").input("Does not want to be used for training")
    ok(at.button(key="obj_submit").click().run())
    assert not errors(at), errors(at)
    assert any("Objection of the caller" in s.value for s in at.success)
    # both clips of the call are withdrawn: the caller is heard in all of them
    assert library.get_clip(db, app_home["approved"])["status"] == "withdrawn"
    ev = [r for r in auditlog.entries(db, kind="consent")[0]]
    assert ev[-1]["kind"] == "consent.objection_made" and ev[-1]["actor"] == "manager"


def test_import_page_uploads_and_imports(app_home, make_audio):
    db = app_home["db"]
    path = make_audio("upload.wav", seconds=6.0, seed=99)
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_import.py").run())
    at.file_uploader(key="import_files").set_value([("upload.wav", path.read_bytes(), "audio/wav")])
    at.text_input(key="import_caller").input("06-87654321")
    at.text_input(key="import_agent").input("E-0042")
    ok(at.button(key="import_submit").click().run())
    assert not errors(at), errors(at)
    assert any("1 of 1" in s.value for s in at.success)
    assert library.list_recordings(db)[1] == 2
    assert not list((app_home["home"].tmp_dir).glob("upload-*"))  # uploads cleaned up


# ---------------------------------------------------------------- trainer flows


def test_trainer_plays_the_rendering_and_the_play_is_logged(app_home):
    db, cid = app_home["db"], app_home["approved"]
    at = ok(app("trainer"))
    assert at.button(key=f"lib_play_{app_home['approved']}")
    with pytest.raises(KeyError):
        at.button(key=f"lib_play_{app_home['draft']}")  # drafts are not in the library
    ok(at.button(key=f"lib_play_{cid}").click().run())
    played = at.session_state["lib_playing"]
    from clipkit import rendering

    current = rendering.current_rendering(db, library.get_clip(db, cid))
    stored = (app_home["home"].root / current["path"]).read_bytes()
    # by default both voices in both ears: the centred mix of exactly the stored rendering
    assert audio.without_nonce(played[1]) == audio.centre_mix(stored)
    assert sf.info(io.BytesIO(audio.without_nonce(played[1]))).channels == 1
    assert len(at.get("audio")) == 1
    plays = auditlog.entries(db, kind="play")[0]
    assert [(p["kind"], p["actor"], p["data"]["clip"], p["data"].get("mix")) for p in plays] == [
        ("play", "trainer", cid, "centre")]
    # "two channels" gives the stored file itself
    at.toggle(key="lib_two_channels").set_value(True)
    ok(at.button(key=f"lib_play_{cid}").click().run())
    assert hashlib.sha256(audio.without_nonce(at.session_state["lib_playing"][1])).hexdigest() == current["sha256"]


def test_trainer_search_and_pagination(app_home, fake_render):
    db, home, rid = app_home["db"], app_home["home"], app_home["recording"]["id"]
    from clipkit import rendering

    for i in range(12):
        c = library.create_clip(db, home, rid, start_s=i, end_s=i + 2.5, title=f"Example {i}", tags=["bulk"],
                                author="manager")
        fake_render(db, home, c)
        rendering.approve(db, home, c, actor="manager")
    at = ok(app("trainer"))
    assert at.get("pagination")
    at.text_input(key="lib_search").input("refund")
    ok(at.run())
    assert [b.key for b in at.button if b.key.startswith("lib_play_")] == [f"lib_play_{app_home['approved']}"]
    at.text_input(key="lib_search").input("")
    at.selectbox(key="lib_tag").set_value("bulk")
    at.number_input(key="lib_max").set_value(2.5)
    ok(at.run())
    assert len([b for b in at.button if b.key.startswith("lib_play_")]) == 10
    at.get("pagination")[0].set_value(2)
    ok(at.run())
    assert len([b for b in at.button if b.key.startswith("lib_play_")]) == 2


def test_refused_export_shows_its_reasons(app_home, fake_render):
    db, home, rid = app_home["db"], app_home["home"], app_home["recording"]["id"]
    from clipkit import rendering

    weak = library.create_clip(db, home, rid, start_s=15.0, end_s=19.0, title="Pitch only", author="manager")
    fake_render(db, home, weak, method="pitch")
    rendering.approve(db, home, weak, actor="manager")
    at = ok(app("trainer"))
    at.checkbox(key=f"lib_sel_{weak}").check()
    ok(at.run())
    assert at.session_state["lib_selection"] == [weak]
    ok(at.button(key="exp_go").click().run())
    msg = errors(at)
    assert len(msg) == 1 and "nothing was exported" in msg[0] and "weak 'pitch' method" in msg[0], msg
    attempts = auditlog.entries(db, kind="export.attempt")[0]
    assert attempts[-1]["data"]["decision"] == "refused" and attempts[-1]["actor"] == "trainer"
    # a good clip next to it: partial export, the refusal still named
    at.checkbox(key=f"lib_sel_{app_home['approved']}").check()
    ok(at.run())
    ok(at.button(key="exp_go").click().run())
    assert any("refused by the privacy policy" in w.value and "weak" in w.value for w in at.warning)
    assert at.session_state["exp_zip"][:2] == b"PK"


# ---------------------------------------------------------------- compliance flows


def test_compliance_verifies_the_chain_and_filters_the_log(app_home):
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_log.py").run())
    ok(at.button(key="log_verify").click().run())
    assert any(s.value.startswith("Intact: all") for s in at.success)
    at.selectbox(key="log_kind").set_value("clips")
    ok(at.run())
    table = at.dataframe[0].value
    assert list(table.columns) == ["#", "at", "what", "decision"]
    # sentences, not JSON: "Cut clip 1 from call #1. By manager."
    assert all(w.endswith(".") and "{" not in w for w in table["what"]) and any("clip" in w for w in table["what"])
    # the detail of the selected entry, with its raw JSON one click away
    first = int(table["#"].iloc[0])
    assert at.selectbox(key="log_detail").value == first
    assert any(c.language == "json" for c in at.code)
    ok(at.button(key="log_csv_prepare").click().run())
    import csv as csvmod
    import io

    rows = list(csvmod.DictReader(io.StringIO(at.session_state["log_csv"])))
    assert [int(r["seq"]) for r in rows] == [int(x) for x in table["#"]]  # the table's order, newest first
    assert all(r["kind"].startswith("clip.") for r in rows) and rows[0]["what"] == table["what"].iloc[0]
    # tamper with the file behind the log's back: the page says where it broke
    db = app_home["db"]
    db.execute("DROP TRIGGER log_no_update")
    db.execute("UPDATE log SET actor = 'mallory' WHERE seq = 2")
    ok(at.button(key="log_verify").click().run())
    assert any(e.startswith("Broken at entry 2") for e in errors(at))


def test_compliance_looks_up_a_party_and_records_consent(app_home):
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_parties.py").run())
    at.text_input(key="party_identifier").input("+31 6 1234 5678")
    ok(at.button(key="party_lookup").click().run())
    assert any("Party phone ••78" in s.value for s in at.subheader)
    at.selectbox(key="consent_purpose").set_value("training")
    at.selectbox(key="consent_event").set_value("objection_made")
    at.selectbox(key="consent_channel").set_value("email")
    ok(at.button(key="consent_submit").click().run())
    assert not errors(at), errors(at)
    assert any("Withdrawn clips" in s.value for s in at.success)
    status = at.dataframe[0].value
    assert status.set_index("purpose").loc["training", "objection"] == "active"
    # an unknown identifier is said plainly
    at.text_input(key="party_identifier").input("06-00000000")
    ok(at.button(key="party_lookup").click().run())
    assert any("no party" in w.value.lower() for w in at.warning)


def test_compliance_dashboard_and_retention(app_home):
    at = ok(app("compliance"))
    assert [t.value for t in at.title] == ["Compliance dashboard"]
    ok(at.switch_page("app_pages/compliance_retention.py").run())
    table = at.dataframe[0].value
    assert list(table["call"]) == [app_home["recording"]["id"]]
    at.number_input(key="hold_rec").set_value(app_home["recording"]["id"])
    at.text_input(key="hold_reason").input("Complaint 2026-114")
    ok(at.run())
    ok(at.button(key="hold_set").click().run())
    assert not errors(at), errors(at)
    assert library.get_recording(app_home["db"], app_home["recording"]["id"])["hold_reason"] == "Complaint 2026-114"


def test_compliance_dashboard_gives_callers_a_voice_per_clip(app_home):
    from clipkit import pseudovoices

    db = app_home["db"]
    rendered = pseudovoices.clips_rendered_under(db, "per-caller")
    assert rendered >= 1  # the fixture's approved clip: a switch sends it back
    at = ok(app("compliance"))
    assert any("keeps one anonymized voice" in m.value for m in at.markdown)
    # choosing is not switching: the page says what it would cost and waits for the button
    ok(at.radio(key="dash_caller_voice").set_value("per-clip").run())
    assert pseudovoices.caller_voice(db) == "per-caller" and not auditlog.entries(db, kind="settings.caller_voice")[0]
    assert any(f"Switching sends {rendered} anonymized clip(s) back" in w.value for w in at.warning)
    ok(at.button(key="dash_caller_voice_apply").click().run())
    assert not errors(at), errors(at)
    assert pseudovoices.caller_voice(db) == "per-clip"
    assert any(f"{rendered} clip(s) must be anonymized and approved again" in s.value for s in at.success)
    assert not at.warning  # the choice is now the setting
    assert any("a voice of its own" in m.value for m in at.markdown)
    assert [e["actor"] for e in auditlog.entries(db, kind="settings.caller_voice")[0]] == ["compliance"]


def test_compliance_requests_register_and_erasure_confirmation(app_home):
    db = app_home["db"]
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_requests.py").run())
    at.selectbox(key="req_kind").set_value("erasure")
    at.text_input(key="req_identifier").input("06-12345678")
    ok(at.button(key="req_submit").click().run())
    assert not errors(at), errors(at)
    assert any("Registered request" in s.value for s in at.success)
    at.text_input(key="er_identifier").input("06-12345678")
    ok(at.button(key="er_preview").click().run())
    assert not errors(at), errors(at)
    assert any("Would permanently delete 1 call(s)" in w.value for w in at.warning)
    # the preview lists the call and every file, not only counts
    rid, rec = app_home["recording"]["id"], app_home["recording"]
    (calls,) = [d.value for d in at.dataframe if "call" in d.value.columns]  # AppTest has no dataframe keys
    (files,) = [list(d.value["file"]) for d in at.dataframe if "file" in d.value.columns]
    assert list(calls["call"]) == [f"#{rid}"] and list(calls["as"]) == ["caller"]
    assert rec["path"] in files and len(files) == 2  # the call and the approved clip's rendering
    assert at.button(key="er_go").disabled
    at.checkbox(key="er_confirm").check()
    ok(at.run())
    ok(at.button(key="er_go").click().run())
    assert not errors(at), errors(at)
    assert library.list_recordings(db)[1] == 0


def test_an_objection_for_nobody_heard_warns_and_two_parties_can_be_joined(app_home, make_audio):
    db, home = app_home["db"], app_home["home"]
    path = make_audio("be.wav", seconds=4.0, seed=77)
    library.import_recordings(db, home, [path], caller="0470 12 34 56", agent="E-0042", actor="manager")
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_parties.py").run())
    at.text_input(key="party_identifier").input("\u202a+32 470 12 34 56\u202c")
    ok(at.button(key="party_lookup").click().run())
    at.selectbox(key="consent_purpose").set_value("training")
    at.selectbox(key="consent_event").set_value("objection_made")
    ok(at.button(key="consent_submit").click().run())
    assert not errors(at), errors(at)
    warning = " ".join(w.value for w in at.warning)
    assert "matches nobody heard in any call" in warning and "Join two parties" in warning
    assert "--" not in warning and "party merge" not in warning  # the page speaks the page's language
    from clipkit import parties

    kept = parties.lookup(db, home.secret(), "+32470123456")["ref"]
    other = parties.lookup(db, home.secret(), "0470123456")["ref"]
    at.text_input(key="merge_other").input(other)
    at.text_input(key="merge_reason").input("Same caller, Belgian number written two ways")
    at.checkbox(key="merge_confirm").check()
    ok(at.run())
    ok(at.button(key="merge_go").click().run())
    assert not errors(at), errors(at)
    assert any("Joined party" in s.value and "Withdrawn clips" not in s.value for s in at.success)
    assert parties.lookup(db, home.secret(), "0470 12 34 56")["ref"] == kept


# ---------------------------------------------------------------- a trainer never gets raw audio through the media store


@pytest.fixture
def shared_media_store(monkeypatch):
    """One media store for every AppTest session, first file under a name wins: what the server does."""
    import streamlit.runtime.memory_media_file_storage as mms

    store: dict[str, bytes] = {}
    real = mms._calculate_file_id

    def calc(data, mimetype, filename=None):
        file_id = real(data, mimetype, filename)
        store.setdefault(file_id, data)
        return file_id

    monkeypatch.setattr(mms, "_calculate_file_id", calc)
    return store


def _served(at, store) -> list[bytes]:
    """The bytes the media store would serve for each audio player on the page."""
    out = []
    for el in at.get("audio"):
        file_id = el.proto.url.rsplit("/", 1)[-1].split(".", 1)[0]
        out.append(store[file_id])
    return out


def test_silence_bordered_clip_never_serves_raw_audio_to_a_trainer(app_home, shared_media_store):
    """Start, middle and end of the clip are digital silence: the raw and anonymized WAVs used to share a media id."""
    db, home = app_home["db"], app_home["home"]
    sr, seconds = 8000, 70.0
    from conftest import call as make_call

    y = make_call(seconds, sr=sr, seed=5)
    n = len(y)
    for a, b in ((0, 4 * sr), (n // 2 - 3 * sr, n // 2 + 3 * sr), (n - 4 * sr, n)):
        y[a:b] = 0.0
    path = home.root.parent / "silent-borders.wav"
    sf.write(str(path), y, sr, subtype="PCM_16")
    (res,) = library.import_recordings(db, home, [path], caller="06-55555555", agent="E-0001", actor="manager")
    cid = library.create_clip(db, home, res.id, start_s=0.0, end_s=seconds, title="Silent edges", author="manager")
    from clipkit import rendering

    rendering.render_clips(db, home, [cid], actor="manager", workers=1)  # the real strong renderer
    rendering.approve(db, home, cid, actor="manager")
    current = rendering.current_rendering(db, library.get_clip(db, cid))

    # the manager compares A (raw) with B (anonymized) first, so raw bytes enter the store first
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(cid)
    ok(at.run())
    ok(at.button(key="ab_go").click().run())
    raw_served, anon_served = _served(at, shared_media_store)
    raw_body = audio.without_nonce(raw_served)
    assert raw_body[:64 * 1024] == audio.without_nonce(anon_served)[:64 * 1024]  # the silent head really is alike
    assert hashlib.sha256(audio.without_nonce(anon_served)).hexdigest() == current["sha256"]

    # then a trainer, in another session, plays the clip
    tr = ok(app("trainer"))
    tr.toggle(key="lib_two_channels").set_value(True)  # the stored file itself, to compare hashes
    ok(tr.button(key=f"lib_play_{cid}").click().run())
    (served,) = _served(tr, shared_media_store)
    assert hashlib.sha256(audio.without_nonce(served)).hexdigest() == current["sha256"]
    assert audio.without_nonce(served) != raw_body
    plays = [e for e in auditlog.entries(db, kind="play")[0] if e["actor"] == "trainer"]
    assert plays[-1]["data"]["sha256"] == current["sha256"]


def test_titles_tags_and_notes_are_shown_as_text_never_as_markdown(app_home):
    db, home, rid = app_home["db"], app_home["home"], app_home["recording"]["id"]
    cid = app_home["approved"]
    library.update_clip(db, cid, title="Refund ![beacon](https://tracker.example/p.png?who=trainer)",
                        note="**loud** <img src=https://tracker.example/x> :red[alarm] $x$",
                        tags=["a`b", "[link](https://tracker.example)"], actor="manager")
    at = ok(app("trainer"))
    shown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "tracker.example" in shown  # the text is there, every active character escaped
    import re

    for active in ("![", "<img", ":red[", "$x$", "**loud", "`", "[link]"):
        assert not re.search(r"(?<!\\)" + re.escape(active), shown), active
    assert "\\!\\[beacon\\]" in shown and "a\\`b" in shown and "\\:red\\[alarm\\]" in shown
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(cid)
    ok(at.run())
    heads = " ".join(h.value for h in at.subheader) + " ".join(m.value for m in at.markdown)
    assert "\\!\\[beacon\\]" in heads and "![beacon]" not in heads


# ---------------------------------------------------------------- the ranked list of calls and its moments


def test_calls_are_ranked_and_a_moment_prefills_the_cut(app_home, tmp_path):
    from clipkit import analysis
    from conftest import call

    db, home = app_home["db"], app_home["home"]
    y = call(30.0, seed=11)
    y[int(10 * 8000):int(18 * 8000)] = 0.0  # eight seconds nobody speaks
    path = tmp_path / "pause.wav"
    sf.write(str(path), y, 8000, subtype="PCM_16")
    (res,) = library.import_recordings(db, home, [path], caller="06-44444444", agent="E-0009", actor="manager")
    analysis.analyze_recordings(db, home, workers=1)
    at = ok(app("manager"))
    table = at.dataframe[0].value
    assert list(table["call"])[0] == res.id  # hardest first: the one with a long silence
    assert "silence" in table["why"].iloc[0]
    assert at.selectbox(key="calls_recording").value == res.id
    ok(at.button(key=f"moment_cut_{res.id}_0").click().run())
    start, end = at.number_input(key=f"cut_start_{res.id}").value, at.number_input(key=f"cut_end_{res.id}").value
    assert start < 10.5 and end > 17.5 and end - start < 16  # the silence, with context, pause to pause
    assert at.text_input(key="cut_title").value.startswith("Long silence at")
    at.text_input(key="cut_tags").input("silence")
    ok(at.button(key="cut_submit").click().run())
    assert not errors(at), errors(at)
    clip = library.get_clip(db, at.session_state["clips_selected"])
    assert (clip["start_s"], clip["end_s"]) == (round(start, 3), round(end, 3))
    # filters: a moment kind no call has, and "no clips yet"
    at.selectbox(key="calls_moment").set_value("raised_voice")
    ok(at.run())
    assert any("No calls match" in i.value for i in at.info)
    at.selectbox(key="calls_moment").set_value(None)
    at.checkbox(key="calls_no_clips").check()
    ok(at.run())
    assert any("No calls match" in i.value for i in at.info)  # every call has a clip now


# ---------------------------------------------------------------- coaching: the manager shares, the agent acknowledges


def test_coaching_from_draw_to_acknowledgement(app_home):
    db, home = app_home["db"], app_home["home"]
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_coaching.py").run())
    overview = at.dataframe[0].value
    assert list(overview["calls"]) == [1] and list(overview["missing"]) == [3]
    ok(at.button(key="coach_sample").click().run())
    assert any("Drew 1 review" in s.value for s in at.success), [s.value for s in at.success]
    rid = at.selectbox(key="coach_review").value
    at.number_input(key=f"coach_at_input_{rid}").set_value(4.5)
    at.text_input(key=f"coach_comment_{rid}").input("Nice calm greeting")
    ok(at.button(key=f"coach_comment_go_{rid}").click().run())
    at.select_slider(key=f"coach_score_{rid}_tone").set_value(5)
    ok(at.button(key=f"coach_score_go_{rid}").click().run())
    assert not errors(at), errors(at)
    ok(at.button(key="coach_share").click().run())
    assert not errors(at), errors(at)
    from clipkit import coaching

    r = coaching.get(db, rid)
    assert r["status"] == "shared" and r["scores"]["tone"] == 5 and r["comments"][0]["at_s"] == 4.5

    ag = ok(app("agent"))
    assert [t.value for t in ag.title] == ["My reviews"]
    ok(ag.button(key="my_review_play").click().run())
    assert len(ag.get("audio")) == 1
    ok(ag.button(key="my_review_jump_0").click().run())
    (player,) = ag.get("audio")
    assert player.proto.start_time == 4  # the comment's moment (whole seconds in st.audio)
    ag.text_area(key="my_review_reply").input("Thanks, noted")
    ok(ag.button(key="my_review_ack").click().run())
    assert any("Acknowledged" in s.value for s in ag.success)
    assert coaching.get(db, rid)["status"] == "acknowledged"
    # the agent's workspace has no other page
    pages = {str(Path(str(i.get("script_path"))).resolve()) for i in ag._tree._runner._registered_pages.values()}
    assert pages == {str(ROOT / "app_pages" / "agent_reviews.py"), str(ROOT / _ui.MY_ACCOUNT_PAGE.path)}
    # compliance sees the counts on its dashboard, not the words
    cp = ok(app("compliance"))
    table = cp.dataframe[-1].value
    assert list(table["shared"]) == [1] and list(table["acknowledged"]) == [1]
    assert "Nice calm greeting" not in " ".join(str(x) for x in table.values.ravel())


# ---------------------------------------------------------------- the page's words, never CLI flags


@pytest.mark.parametrize("message, shown", [
    ("--caller must not be empty", "Caller must not be empty"),
    ("--end 3 must be after --start 4", "End 3 must be after start 4"),
    ("--recorded-at 'x' is not a time", "Recorded at 'x' is not a time"),
    ("say which to keep with --channels caller=N,agent=M", "say which to keep with the channel map caller=N,agent=M"),
    ("a range 3-6 s, not a flag", "a range 3-6 s, not a flag"),
])
def test_app_words_turn_options_into_field_names(message, shown):
    assert _ui.app_words(message) == shown


def _library_messages_with_options() -> list[str]:
    import ast

    found = []
    for path in sorted((ROOT / "clipkit").rglob("*.py")):
        if path.name in ("cli.py", "__main__.py", "demo.py"):
            continue  # the command line's own words
        for node in ast.walk(ast.parse(path.read_text())):
            parts = ([node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else
                     [v.value for v in node.values if isinstance(v, ast.Constant)] if isinstance(node, ast.JoinedStr)
                     else [])
            found += [p for p in parts if isinstance(p, str) and _ui._OPTION_RE.search(p) and len(p) < 300
                      and "\n" not in p]
    return found


def test_no_library_message_reaches_a_page_with_an_option_in_it():
    messages = _library_messages_with_options()
    assert len(messages) > 40  # the scan finds the messages (it can fail)
    left = [(m, _ui.app_words(m)) for m in messages if "--" in _ui.app_words(m)]
    assert not left, left


def test_import_page_errors_speak_the_page_language(app_home, make_audio):
    path = make_audio("upload.wav", seconds=6.0, seed=98)
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_import.py").run())
    at.file_uploader(key="import_files").set_value([("upload.wav", path.read_bytes(), "audio/wav")])
    at.text_input(key="import_agent").input("E-0042")
    ok(at.button(key="import_submit").click().run())
    assert errors(at) == ["Caller must not be empty"]


def test_import_page_offers_the_erased_party_override_with_a_reason(app_home, make_audio):
    db, home = app_home["db"], app_home["home"]
    from clipkit import parties

    secret = home.secret()
    pseudo = parties.pseudonym(secret, parties.canonical_identifier("06-55554444"))
    db["suppressed"].insert({"token": parties.suppression_token(secret, pseudo), "erased_at": "2026-01-01"})
    path = make_audio("upload.wav", seconds=6.0, seed=97)
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_import.py").run())
    at.file_uploader(key="import_files").set_value([("upload.wav", path.read_bytes(), "audio/wav")])
    at.text_input(key="import_caller").input("06-55554444")
    at.text_input(key="import_agent").input("E-0042")
    ok(at.button(key="import_submit").click().run())
    assert any("erased earlier" in e and "--" not in e for e in errors(at)), errors(at)
    assert library.list_recordings(db)[1] == 1
    at.text_input(key="import_erased_reason").input("court order 2026-7")
    ok(at.button(key="import_submit").click().run())
    assert not errors(at), errors(at)
    assert library.list_recordings(db)[1] == 2
    entry = list(db.query("SELECT data, actor FROM log WHERE kind = 'recording.import'"))[-1]
    assert '"override"' in entry["data"] and entry["actor"] == "manager"


# ---------------------------------------------------------------- accounts and my account


def test_accounts_page_only_for_an_account_administrator(app_home):
    at = ok(app("manager"))
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(_ui.ACCOUNTS_PAGE.path)
    users.set_admin(app_home["db"], "manager", True)
    at = ok(app("manager"))
    ok(at.switch_page(_ui.ACCOUNTS_PAGE.path).run())
    assert at.title[0].value == "Accounts"
    for role in ("trainer", "compliance", "agent"):
        at = ok(app(role))
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(_ui.ACCOUNTS_PAGE.path)


def test_administrator_adds_resets_and_disables_in_the_app(app_home):
    db = app_home["db"]
    users.set_admin(db, "manager", True)
    at = ok(app("manager"))
    ok(at.switch_page(_ui.ACCOUNTS_PAGE.path).run())
    at.text_input(key="acct_add_name").input("Nina")
    at.selectbox(key="acct_add_role").set_value("trainer")
    ok(at.button(key="acct_add_submit").click().run())
    assert not errors(at), errors(at)
    (password,) = [c.value for c in at.code]
    assert users.authenticate(db, "nina", password).role == "trainer"
    at.selectbox(key="acct_pick").set_value("nina")
    ok(at.button(key="acct_reset").click().run())
    (new,) = [c.value for c in at.code]
    assert new != password and users.authenticate(db, "nina", new)
    at.selectbox(key="acct_pick").set_value("nina")
    ok(at.button(key="acct_disable").click().run())
    assert users.get_user_info(db, "nina")["disabled"]
    # the page offers no way to disable oneself
    assert "manager" not in at.selectbox(key="acct_pick").options


def test_my_account_changes_the_password_and_keeps_this_session(app_home):
    db = app_home["db"]
    at = ok(app("trainer"))
    ok(at.switch_page(_ui.MY_ACCOUNT_PAGE.path).run())
    at.text_input(key="my_password_old").input(PASSWORD)
    at.text_input(key="my_password_new").input("a brand new password")
    at.text_input(key="my_password_repeat").input("a brand new passw0rd")
    ok(at.button(key="my_password_submit").click().run())
    assert any("differ" in e for e in errors(at))
    at.text_input(key="my_password_old").input(PASSWORD)
    at.text_input(key="my_password_new").input("a brand new password")
    at.text_input(key="my_password_repeat").input("a brand new password")
    ok(at.button(key="my_password_submit").click().run())
    assert not errors(at), errors(at)
    assert any("Password changed" in s.value for s in at.success)
    assert users.authenticate(db, "trainer", "a brand new password")
    assert users.active_user(db, at.session_state["user"])  # this browser goes on with its new session


# ---------------------------------------------------------------- display bugs that misled people


def test_objection_time_follows_the_selected_range(app_home):
    rid = app_home["recording"]["id"]
    at = ok(app("manager"))
    at.number_input(key=f"cut_start_{rid}").set_value(7.25)
    at.number_input(key=f"cut_end_{rid}").set_value(9.5)
    ok(at.run())
    assert at.number_input(key=f"obj_at_{rid}").value == 7.25


def test_consent_form_has_no_default_event(app_home):
    db = app_home["db"]
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_parties.py").run())
    at.text_input(key="party_identifier").input("+31 6 1234 5678")
    ok(at.button(key="party_lookup").click().run())
    assert at.selectbox(key="consent_event").value is None
    before = len(auditlog.entries(db, kind="consent")[0])
    ok(at.button(key="consent_submit").click().run())
    assert any("Choose the event" in e for e in errors(at))
    assert len(auditlog.entries(db, kind="consent")[0]) == before  # nothing recorded by an untouched form


def test_access_bundle_names_the_request_it_closed(app_home):
    db, home = app_home["db"], app_home["home"]
    from clipkit import requests

    req = requests.open_request(db, home, kind="access", identifier="+31 6 1234 5678", role="caller", actor="c")
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_requests.py").run())
    at.text_input(key="ab_identifier").input("+31 6 1234 5678")
    at.checkbox(key="ab_confirm").check()
    ok(at.run())
    ok(at.button(key="ab_go").click().run())
    assert not errors(at), errors(at)
    (msg,) = [s.value for s in at.success if "Bundle written" in s.value]
    assert msg.endswith(f"; request {req['id']} closed.") and "True" not in msg


# ---------------------------------------------------------------- approval without dead ends


def test_approve_is_disabled_with_its_reasons_and_withdrawal_says_why(app_home):
    db, home, aid = app_home["db"], app_home["home"], app_home["approved"]
    from clipkit import consent

    rec = app_home["recording"]
    consent.record(db, party_ref=rec["caller_ref"], purpose="training", event="objection_made", actor="compliance",
                   home=home)
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(aid)
    ok(at.run())
    assert at.button(key="approve_go").disabled
    assert any("Approval is not possible yet" in c.value and "objected" in c.value for c in at.caption)
    assert any(e.startswith("Withdrawn on ") and "compliance" in e for e in errors(at)), errors(at)


def test_render_again_on_an_approved_clip_asks_first(app_home):
    db, aid = app_home["db"], app_home["approved"]
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(aid)
    ok(at.run())
    at.checkbox(key="anon_force").check()
    ok(at.run())
    assert at.button(key="anon_go").disabled
    at.checkbox(key="anon_force_confirm").check()
    ok(at.run())
    assert not at.button(key="anon_go").disabled
    ok(at.button(key="anon_go").click().run())
    assert library.get_clip(db, aid)["status"] == "anonymized"


def test_four_eyes_shows_why_the_author_cannot_approve(app_home):
    db, home, cid = app_home["db"], app_home["home"], app_home["draft"]
    import json

    cfg = home.root / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "four_eyes_approval": True}))
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(cid)
    ok(at.run())
    ok(at.button(key="anon_go").click().run())
    assert library.get_clip(db, cid)["author"] == "manager"  # the fixture's clip was cut by this manager
    assert at.button(key="approve_go").disabled
    assert any("four-eyes" in c.value for c in at.caption)


def test_compliance_marks_a_recall_done_and_it_leaves_the_banner(app_home, tmp_path):
    db, home, aid = app_home["db"], app_home["home"], app_home["approved"]
    from clipkit import export, withdrawal

    res = export.export_clips(db, home, [aid], to=tmp_path / "out", actor="trainer", recipient="Vendor")
    withdrawal.withdraw_clips(db, [aid], actor="compliance", reason="manual", home=home)
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_log.py").run())
    assert any("ask the recipients" in w.value for w in at.warning)
    assert at.selectbox(key="recall_done_pick").value == res["export_id"]
    at.text_input(key="recall_done_note").input("e-mail from Vendor")
    ok(at.button(key="recall_done_go").click().run())
    assert any("marked done" in s.value for s in at.success), [s.value for s in at.success]
    assert not any("ask the recipients" in w.value for w in at.warning)
    assert any("Recall of export" in w for w in at.dataframe[0].value["what"])


# ---------------------------------------------------------------- what "anonymized" is claimed to mean


def test_dashboard_says_what_the_figures_mean_in_two_sentences_and_keeps_every_figure(app_home):
    from clipkit import measured
    from clipkit.anonymize import METHODS

    claim = measured.claim("strong", METHODS["strong"])
    at = ok(app("compliance"))
    box = [m.value for m in at.markdown]
    assert _ui.plain(claim["summary"]) in box
    (figures,) = [e for e in at.expander if e.label == "Every measured figure"]
    assert any("untrained comparisons" in m.value for m in figures.markdown)


def test_dashboard_and_clip_page_state_only_what_was_measured(app_home, tmp_path, monkeypatch):
    from clipkit import measured

    monkeypatch.setattr(measured, "MEASURED_FILE", tmp_path / "none.json")  # nothing measured
    at = ok(app("compliance"))
    box = " ".join(m.value for m in at.markdown)
    assert "has not been measured" in box and "pseudonymised personal data" in box and "%" not in box
    assert not at.expander  # no figures to show
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.selectbox(key="clips_pick").set_value(app_home["approved"])
    ok(at.run())
    assert any("Privacy: " in c.value and "not measured for this version" in c.value for c in at.caption)


def test_purge_preview_lists_the_calls_it_would_delete(app_home):
    db = app_home["db"]
    rid = app_home["recording"]["id"]
    db.execute("UPDATE recordings SET recorded_at = '2020-01-01T00:00:00+00:00', "
               "retention_until = '2020-02-01T00:00:00+00:00' WHERE id = ?", [rid])
    db.execute("DELETE FROM clips")  # no training clip keeps it
    db.conn.commit()
    at = ok(app("compliance"))
    ok(at.switch_page("app_pages/compliance_retention.py").run())
    ok(at.button(key="purge_preview").click().run())
    assert not errors(at), errors(at)
    calls = at.dataframe[-2].value  # the preview's two tables come last
    assert list(calls["call"]) == [f"#{rid}"]
    (files,) = [list(d.value["file"]) for d in at.dataframe if "file" in d.value.columns]
    assert app_home["recording"]["path"] in files


def test_import_clears_the_form_and_links_to_the_new_call(app_home, make_audio):
    path = make_audio("upload.wav", seconds=5.0, seed=96)
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_import.py").run())
    at.file_uploader(key="import_files").set_value([("upload.wav", path.read_bytes(), "audio/wav")])
    at.text_input(key="import_caller").input("06-87654321")
    at.text_input(key="import_agent").input("E-0042")
    ok(at.button(key="import_submit").click().run())
    assert any("1 of 1" in s.value for s in at.success)
    assert at.text_input(key="import_caller").value == "" and at.text_input(key="import_agent").value == ""
    (new,) = [b for b in at.button if b.key and b.key.startswith("import_open_")]
    call_id = int(new.key.rsplit("_", 1)[1])
    ok(new.click().run())
    assert at.selectbox(key="calls_recording").value == call_id


def test_batch_import_with_a_metadata_csv(app_home, make_audio):
    db = app_home["db"]
    a = make_audio("a.wav", seconds=4.0, seed=94)
    b = make_audio("b.wav", seconds=4.5, seed=95)
    sheet = ("file;caller;agent;basis\n"  # Dutch Excel writes semicolons
             "a.wav;06-11112222;E-0042;contract\n"
             "b.wav;06-33334444;E-0042;\n"
             "c.wav;06-5;E-1;\n").encode()
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_import.py").run())
    at.file_uploader(key="batch_csv").set_value([("calls.csv", sheet, "text/csv")])
    at.file_uploader(key="batch_files").set_value([("a.wav", a.read_bytes(), "audio/wav"),
                                                   ("b.wav", b.read_bytes(), "audio/wav")])
    ok(at.button(key="batch_submit").click().run())
    assert not errors(at), errors(at)
    # it runs as a job on the server: wait for it, then a page load shows it and its results
    from clipkit import jobs

    (job,) = jobs.recent(db, actor="manager")
    assert wait_for_job(db, job["id"])["state"] == "done"
    assert not list(app_home["home"].tmp_dir.glob("upload-*"))  # the job removed the uploads when done
    ok(at.run())
    assert any(f"Batch import {job['id']} · 3/3" in p.proto.text for p in at.get("progress"))
    ok(at.button(key=f"import_job_show_{job['id']}").click().run())
    assert any("2 of 3" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert list(table["line"]) == [2, 3, 4] and "no uploaded file" in table["result"].iloc[2]
    assert library.list_recordings(db)[1] == 3
    bases = sorted(r["basis"] for r in library.list_recordings(db)[0])
    assert "contract" in bases


# ---------------------------------------------------------------- the waveform component's Python side


@pytest.mark.parametrize("value, expected", [
    ({"start": 1.234, "end": 5.678, "seq": 2}, (1.23, 5.68, 2)),
    ({"start": 8.0, "end": 3.0, "seq": 3}, None),            # reversed
    ({"start": -5, "end": 99, "seq": 4}, (0.0, 10.0, 4)),    # clamped to the call
    ({"start": "nan", "end": 2, "seq": 5}, None),
    ({"start": "x", "end": 2, "seq": 6}, None),
    ({"start": 1, "end": 2, "seq": 1}, None),                # already applied
    ({"start": 1, "end": 2}, None),                          # no sequence number
    ("1-2", None), (None, None),
])
def test_a_range_from_the_browser_is_checked_before_use(value, expected):
    from app_pages import _waveform

    assert _waveform.accepted_range(value, duration_s=10.0, last_seq=1) == expected


def test_envelope_splits_caller_above_and_agent_below():
    from app_pages import _waveform

    peaks = np.array([[0.1, 0.5], [0.9, 0.2]])
    assert _waveform.envelope(peaks, caller=1, agent=0, mixed=False) == ([0.9, 0.2], [0.1, 0.5])
    assert _waveform.envelope(peaks, caller=None, agent=None, mixed=True) == ([0.9, 0.5], [0.9, 0.5])


def test_ab_levels_are_matched_by_turning_the_louder_down():
    from app_pages import _abplayer

    sr = 8000
    t = np.arange(sr * 2) / sr
    loud = audio.to_wav_bytes(0.2 * np.sin(2 * np.pi * 200 * t), sr=sr)
    quiet = audio.with_nonce(audio.to_wav_bytes(0.1 * np.sin(2 * np.pi * 200 * t), sr=sr))  # as served
    va, vb, diff = _abplayer.matched_volumes(loud, quiet)
    assert diff == pytest.approx(-6.02, abs=0.05) and vb == 1.0 and va == pytest.approx(0.5, abs=0.01)
    silent = audio.to_wav_bytes(np.zeros(sr), sr=sr)
    assert _abplayer.matched_volumes(loud, silent) == (1.0, 1.0, 0.0)


def test_bulk_anonymize_runs_as_a_job_the_page_can_leave(app_home):
    from clipkit import jobs

    db, cid = app_home["db"], app_home["draft"]
    at = ok(app("manager"))
    ok(at.switch_page("app_pages/manager_clips.py").run())
    at.multiselect(key="bulk_ids").set_value([cid])
    ok(at.run())
    ok(at.button(key="bulk_go").click().run())
    assert not errors(at), errors(at)
    (job,) = jobs.recent(db, actor="manager")
    assert wait_for_job(db, job["id"])["state"] == "done"
    assert library.get_clip(db, cid)["status"] == "anonymized"
    # a new page load (another tab, after closing this one) shows how it ended
    fresh = ok(app("manager"))
    ok(fresh.switch_page("app_pages/manager_clips.py").run())
    assert any(f"Job {job['id']}" in p.proto.text and "1 anonymized" in p.proto.text for p in fresh.get("progress"))


def test_trainer_saves_a_playlist_and_selects_it_again(app_home):
    cid = app_home["approved"]
    at = ok(app("trainer"))
    at.checkbox(key=f"lib_sel_{cid}").check()
    ok(at.run())
    at.text_input(key="pl_name").input("Monday session")
    ok(at.button(key="pl_save").click().run())
    assert not errors(at), errors(at)
    assert any("Saved 'Monday session'" in s.value for s in at.success)
    ok(at.button(key="exp_clear").click().run())
    assert at.session_state["lib_selection"] == []
    ok(at.button(key="pl_load").click().run())
    assert at.session_state["lib_selection"] == [cid]
