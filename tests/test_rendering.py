"""Rendering clips with the real chain: storage, currency, determinism per key, approval."""

from __future__ import annotations

import shutil
import struct

import pytest

from clipkit import audio, auditlog, consent, library, rendering
from clipkit import db as dbmod
from clipkit.errors import BadInput, ClipkitError, KeyFileError, PolicyRefusal
from clipkit.home import open_home


def render(db, home, clip_id, **kw):
    kw.setdefault("actor", "manager")
    kw.setdefault("workers", 1)
    return rendering.render_clips(db, home, [clip_id], **kw)[0]


def test_render_stores_a_plain_16_bit_wav_under_an_opaque_name(db, home, clip):
    out = render(db, home, clip["id"])
    current = rendering.current_rendering(db, library.get_clip(db, clip["id"]))
    path = home.root / current["path"]
    data = path.read_bytes()
    assert [cid for cid, _, _ in audio.wav_chunks(path)] == [b"fmt ", b"data"]
    assert struct.unpack("<H", data[34:36])[0] == 16  # bits per sample
    assert "angry" not in path.name.lower() and str(clip["id"]) != path.stem
    assert out["method"] == "strong" and not out["skipped"]
    assert len(out["figures"]["f0_median_before"]) == 2
    assert library.get_clip(db, clip["id"])["status"] == "anonymized"


def test_recut_or_new_redactions_make_the_rendering_stale(db, home, clip):
    render(db, home, clip["id"])
    library.recut_clip(db, home, clip["id"], start_s=2.0, end_s=7.0)
    assert rendering.current_rendering(db, library.get_clip(db, clip["id"])) is None
    render(db, home, clip["id"])
    assert rendering.current_rendering(db, library.get_clip(db, clip["id"])) is not None
    rendering.set_redactions(db, home, clip["id"], [(1.0, 2.0, "beep")], actor="m")
    assert rendering.current_rendering(db, library.get_clip(db, clip["id"])) is None
    assert library.get_clip(db, clip["id"])["status"] == "draft"


def test_second_render_is_skipped_unless_forced_and_stale_files_are_removed(db, home, clip):
    first = render(db, home, clip["id"])
    assert render(db, home, clip["id"])["skipped"]
    forced = render(db, home, clip["id"], force=True)
    assert not forced["skipped"] and forced["rendering_id"] != first["rendering_id"]
    assert db["renderings"].count == 1
    assert len(list((home.audio_dir / rendering.RENDER_DIR).glob("*.wav"))) == 1


def test_same_key_same_bytes_other_key_other_voice(db, home, clip, tmp_path, make_audio):
    render(db, home, clip["id"])
    a = (home.root / rendering.current_rendering(db, library.get_clip(db, clip["id"]))["path"]).read_bytes()
    # a second installation with the SAME key file renders the same bytes
    from clipkit.initialize import init_home

    twin, _ = init_home(tmp_path / "twin")
    shutil.copy(home.key_path, twin.key_path)
    twin = open_home(twin.root)
    src = home.root / library.get_recording(db, clip["recording_id"])["path"]
    with dbmod.connect(twin) as db2:
        (res,) = library.import_recordings(db2, twin, [src], caller="06-12345678", agent="E-0007")
        cid = library.create_clip(db2, twin, res.id, start_s=clip["start_s"], end_s=clip["end_s"], title="t")
        render(db2, twin, cid)
        b = (twin.root / rendering.current_rendering(db2, library.get_clip(db2, cid))["path"]).read_bytes()
    assert a == b
    other, _ = init_home(tmp_path / "other")
    with dbmod.connect(other) as db3:
        (res,) = library.import_recordings(db3, other, [src], caller="06-12345678", agent="E-0007")
        cid = library.create_clip(db3, other, res.id, start_s=clip["start_s"], end_s=clip["end_s"], title="t")
        render(db3, other, cid)
        c = (other.root / rendering.current_rendering(db3, library.get_clip(db3, cid))["path"]).read_bytes()
    assert len(c) == len(a) and c != a


def test_several_clips_render_in_parallel(db, home, recording):
    ids = [library.create_clip(db, home, recording["id"], start_s=s, end_s=s + 3, title=f"c{s}") for s in (0, 5, 10)]
    seen = []
    out = rendering.render_clips(db, home, ids, actor="m", workers=2, progress=lambda d, t: seen.append((d, t)))
    assert [r["clip_id"] for r in out] == ids and seen[-1] == (3, 3)
    assert all(rendering.current_rendering(db, library.get_clip(db, i)) for i in ids)


@pytest.mark.parametrize(
    "spans, message",
    [
        ([(5.0, 7.0, "beep")], "outside the clip: spans must lie within 0–6.000 s"),
        ([(-1.0, 1.0, "silence")], "outside the clip"),
        ([(2.0, 1.0, "beep")], "outside the clip"),
        ([(1.0, 2.0, "whistle")], "not beep or silence"),
    ],
)
def test_bad_redaction_spans(db, home, clip, spans, message):
    with pytest.raises(BadInput, match=message):
        rendering.set_redactions(db, home, clip["id"], spans, actor="m")


@pytest.mark.parametrize("text, span", [("1-2", (1.0, 2.0, "beep")), ("0.5-3.25:silence", (0.5, 3.25, "silence"))])
def test_parse_span(text, span):
    assert rendering.parse_span(text) == span


def test_unknown_method_and_erased_source(db, home, clip):
    with pytest.raises(BadInput, match="--method 'loud'"):
        render(db, home, clip["id"], method="loud")
    (home.root / library.get_recording(db, clip["recording_id"])["path"]).unlink()
    with pytest.raises(ClipkitError, match="source recording's audio is gone"):
        render(db, home, clip["id"])


def test_missing_key_file_is_an_error_not_a_new_voice(db, home, clip):
    home.key_path.unlink()
    with pytest.raises(KeyFileError):
        render(db, home, clip["id"])
    assert not home.key_path.exists()


def test_approval_needs_a_current_rendering_and_no_objection(db, home, clip):
    with pytest.raises(PolicyRefusal, match="no current anonymized version"):
        rendering.approve(db, home, clip["id"], actor="m")
    render(db, home, clip["id"])
    assert rendering.approve(db, home, clip["id"], actor="m")["status"] == "approved"
    render(db, home, clip["id"], force=True)  # a re-render returns the clip to unapproved
    assert library.get_clip(db, clip["id"])["status"] == "anonymized"
    rec = library.get_recording(db, clip["recording_id"])
    consent.record(db, party_ref=rec["caller_ref"], purpose="training", event="objection_made", actor="c",
                   home=home)
    assert library.get_clip(db, clip["id"])["status"] == "withdrawn"
    with pytest.raises(PolicyRefusal, match="objected|objection"):
        rendering.approve(db, home, clip["id"], actor="m")


def test_a_refused_approval_is_logged_before_it_is_raised(db, home, clip):
    with pytest.raises(PolicyRefusal):
        rendering.approve(db, home, clip["id"], actor="m")
    (entry,) = auditlog.entries(db, kind="clip.approve")[0]
    assert entry["data"] == {"clip": clip["id"], "decision": "refused", "reasons": ["not_anonymized"]}
    assert library.get_clip(db, clip["id"])["status"] == "draft"


def test_four_eyes_approval_needs_a_second_manager(db, home, clip):
    home.config["four_eyes_approval"] = True
    render(db, home, clip["id"])
    author = library.get_clip(db, clip["id"])["author"]
    assert [r["code"] for r in rendering.approval_reasons(db, home, clip["id"], actor=author)] == ["four_eyes"]
    with pytest.raises(PolicyRefusal, match="four-eyes"):
        rendering.approve(db, home, clip["id"], actor=author)
    assert library.get_clip(db, clip["id"])["status"] == "anonymized"
    assert rendering.approve(db, home, clip["id"], actor=author + "-colleague")["status"] == "approved"
    home.config["four_eyes_approval"] = False
    assert rendering.approval_reasons(db, home, clip["id"], actor=author) == []


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_four_eyes_setting_must_be_true_or_false(tmp_path, value):
    import json

    from clipkit.home import open_home
    from clipkit.initialize import init_home

    h = init_home(tmp_path / "h")[0]
    (h.root / "config.json").write_text(json.dumps({**h.config, "four_eyes_approval": value}))
    with pytest.raises(BadInput, match="four_eyes_approval"):
        open_home(h.root)


def test_centre_mix_puts_both_parties_in_both_ears_at_their_level():
    import io

    import numpy as np
    import soundfile as sf

    sr, n = 8000, 8000
    t = np.arange(n) / sr
    caller = np.where(t < 0.5, 0.3 * np.sin(2 * np.pi * 200 * t), 0.0)
    agent = np.where(t >= 0.5, 0.2 * np.sin(2 * np.pi * 300 * t), 0.0)
    wav = audio.to_wav_bytes(np.stack([caller, agent]), sr=sr)
    y, _ = sf.read(io.BytesIO(audio.centre_mix(wav)))
    assert y.ndim == 1
    assert np.max(np.abs(y[:4000])) == pytest.approx(0.3, abs=0.01)  # each voice keeps its own level
    assert np.max(np.abs(y[4000:])) == pytest.approx(0.2, abs=0.01)
    loud = audio.to_wav_bytes(np.stack([np.full(n, 0.9), np.full(n, 0.9)]), sr=sr)
    y, _ = sf.read(io.BytesIO(audio.centre_mix(loud)))
    assert np.max(np.abs(y)) <= 1.0 and np.max(np.abs(y)) > 0.99  # scaled, never clipped
    mono = audio.to_wav_bytes(caller, sr=sr)
    assert audio.centre_mix(mono) == mono
