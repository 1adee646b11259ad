"""One caller voice per caller or per clip: the setting, what it changes, and that nothing slips through a switch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import add_accounts

from clipkit import access, auditlog, export, library, pseudovoices, rendering, users
from clipkit import db as dbmod
from clipkit.errors import BadInput, ClipkitError, Forbidden, PolicyRefusal

PASSWORD = "correct horse battery"


@pytest.fixture
def principals(db, home):
    add_accounts(db, home, PASSWORD)
    return {role: users.authenticate(db, role, PASSWORD) for role in users.ROLES}


def render(db, home, clip_id, **kw):
    kw.setdefault("actor", "manager")
    kw.setdefault("workers", 1)
    return rendering.render_clips(db, home, [clip_id], **kw)[0]


def channels(db, home, clip_id) -> np.ndarray:
    current = rendering.current_rendering(db, library.get_clip(db, clip_id))
    y, _ = sf.read(str(home.root / current["path"]), dtype="int16")
    return y


@pytest.fixture
def twins(db, home, recording):
    """Two clips of the same range of one call: the same caller, the same words."""
    ids = [library.create_clip(db, home, recording["id"], start_s=2.0, end_s=6.0, title=f"twin {i}", author="manager")
           for i in range(2)]
    return ids


def test_the_default_is_one_voice_per_caller_and_a_change_is_logged_once(db):
    assert pseudovoices.caller_voice(db) == "per-caller"
    out = pseudovoices.set_caller_voice(db, "per-clip", actor="dpo")
    assert out == {"caller_voice": "per-clip", "changed": True, "stale_renderings": 0}
    assert pseudovoices.set_caller_voice(db, "per-clip", actor="dpo")["changed"] is False
    entries = auditlog.entries(db, kind="settings.caller_voice")[0]
    assert [(e["actor"], e["data"]) for e in entries] == [("dpo", {"from": "per-caller", "to": "per-clip"})]
    assert auditlog.verify(db)["ok"]


@pytest.mark.parametrize("bad", ["per clip", "PER-CLIP", "per\u2011clip", "", "per-clip\u200b", None])
def test_a_bad_setting_is_refused_naming_it_and_changes_nothing(db, bad):
    with pytest.raises(BadInput) as e:
        pseudovoices.set_caller_voice(db, bad, actor="dpo")
    assert repr(bad) in str(e.value)
    assert pseudovoices.caller_voice(db) == "per-caller"
    assert auditlog.entries(db, kind="settings.caller_voice")[0] == []


def test_per_caller_twins_sound_the_same_per_clip_twins_do_not(db, home, twins):
    a, b = twins
    render(db, home, a)
    render(db, home, b)
    same = channels(db, home, a), channels(db, home, b)
    assert np.array_equal(same[0], same[1])  # one caller, one voice: the two clips link
    pseudovoices.set_caller_voice(db, "per-clip", actor="dpo")
    render(db, home, a)
    render(db, home, b)
    x, y = channels(db, home, a), channels(db, home, b)
    assert not np.array_equal(x[:, 0], y[:, 0])  # the caller: a voice per clip
    assert not np.array_equal(x[:, 0], same[0][:, 0])
    # the agent keeps one voice (the limiter is linked across channels, so their samples may differ by a hair)
    rec = library.get_recording(db, library.get_clip(db, a)["recording_id"])
    va = rendering.channel_voices(db, home, rec, unit=f"clip:{a}")
    vb = rendering.channel_voices(db, home, rec, unit=f"clip:{b}")
    assert va[1] == vb[1] and va[0] != vb[0]
    assert np.corrcoef(x[:, 1].astype(float), y[:, 1].astype(float))[0, 1] > 0.99


def test_a_switch_makes_old_renderings_unplayable_and_unexportable_until_rendered_again(db, home, clip, tmp_path,
                                                                                       principals):
    render(db, home, clip["id"])
    rendering.approve(db, home, clip["id"], actor="boss")
    old = rendering.current_rendering(db, library.get_clip(db, clip["id"]))
    changed = pseudovoices.set_caller_voice(db, "per-clip", actor="dpo")
    assert changed["stale_renderings"] == 1
    assert rendering.current_rendering(db, library.get_clip(db, clip["id"])) is None
    with pytest.raises(PolicyRefusal):
        access.anonymized_audio(db, home, principals["trainer"], clip["id"])
    out = export.export_clips(db, home, [clip["id"]], to=tmp_path / "out", actor="manager")
    assert out["exported"] == [] and out["refused"][0]["reasons"][0]["code"] == "not_anonymized"
    # rendered again: a new voice, the old bytes gone from disk, approval needed again
    render(db, home, clip["id"])
    new = rendering.current_rendering(db, library.get_clip(db, clip["id"]))
    assert new["caller_voice"] == "per-clip" and new["sha256"] != old["sha256"]
    assert not (home.root / old["path"]).exists()
    assert db.execute("SELECT COUNT(*) FROM renderings WHERE clip_id = ?", [clip["id"]]).fetchone()[0] == 1
    assert library.get_clip(db, clip["id"])["status"] == "anonymized"


def test_the_manifest_says_how_callers_are_voiced(db, home, clip, tmp_path):
    pseudovoices.set_caller_voice(db, "per-clip", actor="dpo")
    render(db, home, clip["id"])
    rendering.approve(db, home, clip["id"], actor="boss")
    out = export.export_clips(db, home, [clip["id"]], to=tmp_path / "out", actor="manager")
    manifest = json.loads((tmp_path / "out" / out["export_id"] / "manifest.json").read_text())
    assert manifest["files"][0]["caller_voice"] == "per-clip"
    assert manifest["caller_voice"] == {"per-clip": pseudovoices.describe("per-clip")}
    assert "per-clip" not in manifest["files"][0]["file"]


def test_a_switch_while_clips_render_leaves_no_rendering_behind(db, home, clip, monkeypatch):
    real = rendering._render_one

    def switch_midway(job):
        out = real(job)
        other = dbmod.connect(home)  # another process changes the setting while this one renders
        pseudovoices.set_caller_voice(other, "per-clip", actor="dpo")
        other.conn.close()
        return out

    monkeypatch.setattr(rendering, "_render_one", switch_midway)
    with pytest.raises(ClipkitError, match="caller-voice setting changed"):
        render(db, home, clip["id"])
    assert db["renderings"].count == 0
    assert list((home.audio_dir / rendering.RENDER_DIR).glob("*.wav")) == []
    assert library.get_clip(db, clip["id"])["status"] == "draft"


def test_a_review_gets_a_new_caller_voice_after_the_switch(db, home, recording):
    from clipkit import coaching

    review = coaching.create_review(db, home, recording["id"], reviewer="manager")
    first = coaching.audio_file(db, home, review["id"])
    pseudovoices.set_caller_voice(db, "per-clip", actor="dpo")
    second = coaching.audio_file(db, home, review["id"])
    assert second["sha256"] != first["sha256"]
    a, _ = sf.read(str(home.root / second["path"]), dtype="int16")
    original, _ = sf.read(str(library.recording_path(home, recording)), dtype="int16")
    assert np.array_equal(a[:, 1], original[: len(a), 1])  # the agent still hears themself unaltered


@pytest.mark.parametrize("role,ok", [("compliance", True), ("manager", False), ("trainer", False), ("agent", False)])
def test_only_compliance_changes_the_setting(db, principals, role, ok):
    if ok:
        assert access.set_caller_voice(db, principals[role], "per-clip")["changed"]
    else:
        with pytest.raises(Forbidden):
            access.set_caller_voice(db, principals[role], "per-clip")
        assert pseudovoices.caller_voice(db) == "per-caller"
        assert auditlog.entries(db, kind="settings.caller_voice")[0] == []


def test_cli_shows_and_sets_the_setting(cli_run):
    r, out = cli_run("voices")
    assert r.exit_code == 0 and out["caller_voice"] == "per-caller"
    r, out = cli_run("voices", "--caller", "per-clip", "--actor", "dpo")
    assert r.exit_code == 0 and out["changed"] and out["caller_voice"] == "per-clip"
    r, _ = cli_run("voices", "--caller", "sometimes", as_json=False)
    assert r.exit_code == 2 and "sometimes" in r.output
