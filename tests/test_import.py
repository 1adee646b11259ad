"""Import: formats, channel maps, duplicates, and every kind of bad input leaving nothing behind."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
import soundfile as sf

from clipkit import library, parties
from clipkit.errors import BadInput, PolicyRefusal


def store_files(home) -> list:
    """Every file in the audio store and scratch folder."""
    return sorted(p for p in list(home.audio_dir.rglob("*")) + list(home.tmp_dir.rglob("*")) if p.is_file())


def import_one(db, home, path, **kw):
    kw.setdefault("caller", "06-12345678")
    kw.setdefault("agent", "E-0007")
    (result,) = library.import_recordings(db, home, [path], **kw)
    return result


@pytest.mark.parametrize(
    "subtype, fmt, ext",
    [
        ("PCM_16", "WAV", "wav"),
        ("PCM_24", "WAV", "wav"),
        ("PCM_32", "WAV", "wav"),
        ("FLOAT", "WAV", "wav"),
        ("ULAW", "WAV", "wav"),
        ("ALAW", "WAV", "wav"),
        ("PCM_16", "FLAC", "flac"),
        ("VORBIS", "OGG", "ogg"),
        ("MPEG_LAYER_III", "MP3", "mp3"),
    ],
)
def test_imports_each_supported_format(db, home, tmp_path, subtype, fmt, ext):
    from conftest import call

    path = tmp_path / f"x.{ext}"
    sf.write(str(path), call(3.0, sr=16000 if fmt == "MP3" else 8000), 16000 if fmt == "MP3" else 8000,
             subtype=subtype, format=fmt)
    result = import_one(db, home, path)
    assert result.error is None, result.error
    rec = library.get_recording(db, result.id)
    assert rec["format"] == fmt and rec["channels"] == 2
    assert rec["duration_s"] == pytest.approx(3.0, abs=0.1)
    stored = home.root / rec["path"]
    assert stored.read_bytes() == path.read_bytes()
    assert rec["sha256"] in stored.name


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
def test_sample_rates_in_range(db, home, make_audio, sr):
    result = import_one(db, home, make_audio(seconds=2, sr=sr))
    assert result.error is None
    assert library.get_recording(db, result.id)["sr"] == sr


def test_database_holds_metadata_but_not_the_identifier(db, home, make_audio):
    result = import_one(db, home, make_audio(), recorded_at="2026-05-01T10:00:00+02:00", basis="consent",
                        notice="Recorded for quality", actor="alice")
    rec = library.get_recording(db, result.id)
    assert rec["basis"] == "consent" and rec["notice"] == "Recorded for quality" and rec["imported_by"] == "alice"
    assert rec["recorded_at"].startswith("2026-05-01T10:00:00") and rec["channel_map"] == "caller=0,agent=1"
    raw = (home.db_path).read_bytes() + b"".join(p.read_bytes() for p in home.root.glob("clipkit.db-*"))
    for needle in (b"12345678", b"E-0007", b"e-0007"):
        assert needle not in raw


def test_two_spellings_of_one_number_are_one_caller(db, home, make_audio):
    a = import_one(db, home, make_audio("a.wav"), caller="06-12345678")
    b = import_one(db, home, make_audio("b.wav"), caller="+31 6 1234 5678")
    ra, rb = library.get_recording(db, a.id), library.get_recording(db, b.id)
    assert ra["caller_ref"] == rb["caller_ref"]
    assert db["parties"].count == 2


def test_duplicate_import_returns_the_existing_recording(db, home, make_audio):
    path = make_audio()
    first = import_one(db, home, path)
    before = store_files(home)
    again = import_one(db, home, path)
    assert again.duplicate and again.id == first.id and again.error is None
    assert store_files(home) == before
    assert db["recordings"].count == 1


def test_duplicate_within_one_batch_is_stored_once(db, home, make_audio, tmp_path):
    path = make_audio()
    copy = tmp_path / "copy.wav"
    copy.write_bytes(path.read_bytes())
    results = library.import_recordings(db, home, [path, copy], caller="C-1", agent="E-1")
    assert [r.duplicate for r in results] == [False, True]
    assert results[0].id == results[1].id and db["recordings"].count == 1


def _not_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is a text file, not audio\n" * 20)
    return p


def _empty(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    return p


def _truncated_wav(tmp_path):
    from conftest import call

    p = tmp_path / "cut.wav"
    sf.write(str(p), call(4.0), 8000, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _truncated_flac(tmp_path):
    from conftest import call

    p = tmp_path / "cut.flac"
    sf.write(str(p), call(4.0), 8000)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _no_samples(tmp_path):
    p = tmp_path / "nosamples.wav"
    sf.write(str(p), np.zeros((0, 2), dtype="float32"), 8000, subtype="PCM_16")
    return p


def _nan_float(tmp_path):
    p = tmp_path / "nan.wav"
    y = np.zeros((8000, 2), dtype="float32")
    y[4000, 1] = np.nan
    sf.write(str(p), y, 8000, subtype="FLOAT")
    return p


def _inf_float(tmp_path):
    p = tmp_path / "inf.wav"
    y = np.zeros((8000, 1), dtype="float32")
    y[10] = np.inf
    sf.write(str(p), y, 8000, subtype="FLOAT")
    return p


def _three_channels(tmp_path):
    p = tmp_path / "three.wav"
    sf.write(str(p), np.zeros((8000, 3), dtype="float32") + 0.01, 8000, subtype="PCM_16")
    return p


def _directory(tmp_path):
    p = tmp_path / "folder.wav"
    p.mkdir()
    return p


def _missing(tmp_path):
    return tmp_path / "nope.wav"


def _unreadable(tmp_path):
    from conftest import call

    p = tmp_path / "locked.wav"
    sf.write(str(p), call(1.0), 8000)
    p.chmod(0)
    return p


def _low_rate(tmp_path):
    p = tmp_path / "low.wav"
    sf.write(str(p), np.zeros(4000, dtype="float32") + 0.1, 4000)
    return p


@pytest.mark.parametrize(
    "make, reason",
    [
        (_not_audio, "not a readable audio file"),
        (_empty, "empty"),
        (_truncated_wav, "truncated"),
        (_truncated_flac, "truncated or corrupt"),
        (_no_samples, "no audio samples"),
        (_nan_float, "NaN or infinite"),
        (_inf_float, "NaN or infinite"),
        (_three_channels, "3 channels"),
        (_directory, "is a folder"),
        (_missing, "no such file"),
        (_low_rate, "sample rate 4000 Hz"),
    ],
)
def test_bad_file_names_itself_and_leaves_nothing(db, home, tmp_path, make, reason):
    if make is _unreadable and os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = make(tmp_path)
    result = import_one(db, home, path)
    assert result.error is not None and reason in result.error
    assert str(path) in result.error
    assert store_files(home) == []
    assert db["recordings"].count == 0 and db["parties"].count == 0


def test_unreadable_file(db, home, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    result = import_one(db, home, _unreadable(tmp_path))
    assert "permission denied" in result.error


def test_too_long_recording_is_refused(db, home, make_audio):
    home.config["max_recording_hours"] = 2 / 3600  # two seconds
    result = import_one(db, home, make_audio(seconds=3))
    assert "longer than the maximum" in result.error
    assert store_files(home) == []


def test_batch_imports_the_good_ones_and_reports_each_bad_one(db, home, make_audio, tmp_path):
    good1, good2 = make_audio("g1.wav"), make_audio("g2.wav")
    results = library.import_recordings(db, home, [good1, _empty(tmp_path), good2, _directory(tmp_path)],
                                        caller="C-9", agent="E-9")
    assert [r.error is None for r in results] == [True, False, True, False]
    assert db["recordings"].count == 2 and len(store_files(home)) == 2


def test_more_than_two_channels_with_explicit_map(db, home, tmp_path):
    from conftest import call

    p = tmp_path / "multi.wav"
    y = np.concatenate([call(2.0), call(2.0, seed=3)], axis=1)[:, :3]
    sf.write(str(p), y, 8000, subtype="PCM_16")
    result = import_one(db, home, p, channels="caller=2,agent=0")
    assert result.error is None
    assert library.get_recording(db, result.id)["channel_map"] == "caller=2,agent=0"


@pytest.mark.parametrize(
    "spec, channels, expected",
    [
        (None, 1, "mixed"),
        (None, 2, "caller=0,agent=1"),
        ("caller,agent", 2, "caller=0,agent=1"),
        ("agent,caller", 2, "caller=1,agent=0"),
        ("mixed", 2, "mixed"),
        ("Caller=1, Agent=0", 2, "caller=1,agent=0"),
        ("agent=3,caller=1", 4, "caller=1,agent=3"),
    ],
)
def test_channel_map_parsing(spec, channels, expected):
    from clipkit.audio import ChannelMap

    assert ChannelMap.parse(spec, channels=channels).to_text() == expected


@pytest.mark.parametrize(
    "spec, channels, message",
    [
        ("caller,agent", 1, "needs a stereo file"),
        ("caller=0,agent=5", 2, "agent=5 is out of range"),
        ("caller=1,agent=1", 2, "different channels"),
        ("left,right", 2, "is not one of"),
    ],
)
def test_bad_channel_maps(spec, channels, message):
    from clipkit.audio import ChannelMap

    with pytest.raises(BadInput, match=message):
        ChannelMap.parse(spec, channels=channels)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"basis": "vibes"}, "--basis 'vibes'"),
        ({"recorded_at": "yesterday"}, "--recorded-at 'yesterday'"),
        ({"caller": "  "}, "--caller must not be empty"),
        ({"caller": "E-0007"}, "same party"),
    ],
)
def test_bad_batch_arguments_write_nothing(db, home, make_audio, kw, message):
    with pytest.raises(BadInput, match=message):
        import_one(db, home, make_audio(), **kw)
    assert store_files(home) == [] and db["recordings"].count == 0


def test_crash_while_writing_rows_leaves_no_orphan_files(db, home, make_audio, monkeypatch):
    from clipkit import auditlog

    def boom(*a, **k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(auditlog, "append", boom)
    with pytest.raises(RuntimeError):
        import_one(db, home, make_audio())
    assert store_files(home) == [] and db["recordings"].count == 0 and db["parties"].count == 0


def test_erased_party_is_refused_unless_overridden(db, home, make_audio):
    secret = home.secret()
    pseudo = parties.pseudonym(secret, parties.canonical_identifier("06-12345678"))
    db["suppressed"].insert({"token": parties.suppression_token(secret, pseudo), "erased_at": "2026-01-01"})
    with pytest.raises(PolicyRefusal, match="erased"):
        import_one(db, home, make_audio())
    for reason in (None, "", "   "):  # the override needs its lawful reason, and nothing is imported without one
        with pytest.raises(BadInput, match="lawful reason"):
            import_one(db, home, make_audio(), allow_suppressed=True, override_reason=reason)
    assert db["recordings"].count == 0
    res = import_one(db, home, make_audio(), allow_suppressed=True, override_reason="complaint file 2026-114")
    assert res.error is None
    entry = list(db.query("SELECT data FROM log WHERE kind = 'recording.import'"))[-1]
    override = json.loads(entry["data"])["override"]
    assert override["erased_party"] == ["caller"]
    # the reason is an erasable note, not text in the hash-chained log
    assert "2026-114" not in entry["data"]
    assert db["notes"].get(override["note"])["text"] == "complaint file 2026-114"


def test_cli_override_of_an_erased_party_needs_a_reason(db, home, make_audio, cli_run):
    secret = home.secret()
    pseudo = parties.pseudonym(secret, parties.canonical_identifier("06-12345678"))
    db["suppressed"].insert({"token": parties.suppression_token(secret, pseudo), "erased_at": "2026-01-01"})
    args = ["import", str(make_audio()), "--caller", "06-12345678", "--agent", "E-1", "--allow-erased-party"]
    res, _ = cli_run(*args, as_json=False)
    assert res.exit_code != 0 and "lawful reason" in res.output
    res, out = cli_run(*args, "--reason", "court order")
    assert res.exit_code == 0, res.output


def test_wav_truncation_check_reads_chunk_sizes(tmp_path):
    from clipkit.audio import _declared_wav_data_bytes

    p = tmp_path / "x.wav"
    sf.write(str(p), np.zeros(100, dtype="float32"), 8000, subtype="PCM_16")
    declared, present = _declared_wav_data_bytes(p)
    assert declared == present == 200
    data = bytearray(p.read_bytes())
    idx = data.index(b"data")
    data[idx + 4: idx + 8] = struct.pack("<I", 400)
    p.write_bytes(bytes(data))
    assert _declared_wav_data_bytes(p) == (400, 200)


def test_locked_database_is_a_clear_error_and_leaves_nothing(home, make_audio, monkeypatch):
    import json
    import sqlite3

    from click.testing import CliRunner

    from clipkit import db as dbmod
    from clipkit.cli import cli

    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_S", 0.3)
    dbmod.connect(home).close()  # migrations applied before the other process takes the lock
    holder = sqlite3.connect(str(home.db_path))
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        r = CliRunner().invoke(cli, ["import", str(make_audio()), "--caller", "C-1", "--agent", "E-1",
                                     "--home", str(home.root), "--json"])
    finally:
        holder.rollback()
        holder.close()
    assert r.exit_code == 1
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "database_busy" and "locked by another clipkit process" in error["message"]
    assert store_files(home) == []
    with dbmod.connect(home) as database:
        assert database["recordings"].count == 0


# ---------------------------------------------------------------- bad input that gave a wrong answer or an internal error


def _cli(home, *args):
    import json

    from click.testing import CliRunner

    from clipkit.cli import cli

    r = CliRunner().invoke(cli, ["--home", str(home.root), "--json", *map(str, args)], catch_exceptions=False)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def test_gsm_wav_from_a_call_recorder_imports_cuts_and_anonymizes(db, home, tmp_path):
    from clipkit import rendering
    from conftest import call

    path = tmp_path / "recorder.wav"
    sf.write(str(path), call(12.0).mean(axis=1), 8000, subtype="GSM610", format="WAV")
    assert not sf.SoundFile(str(path)).seekable()  # libsndfile cannot seek in GSM 6.10
    result = import_one(db, home, path)
    assert result.error is None, result.error
    cid = library.create_clip(db, home, result.id, start_s=4.0, end_s=9.0, title="t", author="m")
    (out,) = rendering.render_clips(db, home, [cid], actor="m", workers=1)
    clip = library.get_clip(db, cid)
    assert clip["status"] == "anonymized" and out["figures"]["duration_s"] == 5.0
    from clipkit import audio

    y, sr = audio.read_segment(library.recording_path(home, library.get_recording(db, result.id)),
                               start_s=4.0, end_s=9.0)
    assert y.shape == (1, 40000) and np.abs(y).max() > 0.01


def test_raw_gsm_keeps_its_extension_so_it_can_be_read_again(db, home, tmp_path):
    from conftest import call

    path = tmp_path / "line.gsm"
    sf.write(str(path), call(6.0).mean(axis=1), 8000, subtype="GSM610", format="RAW")
    result = import_one(db, home, path)
    assert result.error is None, result.error
    stored = library.recording_path(home, library.get_recording(db, result.id))
    assert stored.suffix == ".gsm" and sf.info(str(stored)).subtype == "GSM610"


def test_a_file_name_that_is_not_utf8_imports_and_reports_readably(db, home, make_audio, tmp_path, monkeypatch):
    good = make_audio("good.wav", seconds=3)
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9-\xff.wav")  # Latin-1 bytes, not UTF-8
    os.rename(make_audio("odd.wav", seconds=3, seed=42), os.fsencode(odd))
    r, out = _cli(home, "import", odd, good, "--caller", "06-1", "--agent", "E-1")
    assert r.exit_code == 0, r.output
    assert [x["duplicate"] for x in out["recordings"]] == [False, False]
    assert "caf\\xe9-\\xff.wav" in out["recordings"][0]["path"]
    assert store_files(home) == sorted(p for p in home.audio_dir.rglob("*") if p.is_file())  # nothing in tmp/


def test_the_length_is_checked_from_the_header_before_copying(db, home, make_audio, monkeypatch):
    home.config["max_recording_hours"] = 2 / 3600  # two seconds
    copied = []
    real = library._copy_hashing
    monkeypatch.setattr(library, "_copy_hashing", lambda s, d: copied.append(s) or real(s, d))
    result = import_one(db, home, make_audio(seconds=5))
    assert "longer than the maximum" in result.error and copied == []


def test_huge_float_samples_are_refused_not_rendered_silent(db, home, tmp_path):
    path = tmp_path / "broken.wav"
    y = np.zeros((16000, 2), dtype="float32")
    y[8000, 0] = 1e30
    sf.write(str(path), y, 8000, subtype="FLOAT")
    result = import_one(db, home, path)
    assert result.error and "far beyond full scale" in result.error and "1e+30" in result.error
    assert store_files(home) == []


@pytest.mark.parametrize("change, field", [
    (dict(caller="06-99999999"), "caller"), (dict(agent="E-0099"), "agent"), (dict(basis="consent"), "basis"),
    (dict(channels="agent,caller"), "channels"),
])
def test_a_duplicate_with_other_facts_says_so_and_exits_non_zero(db, home, make_audio, change, field):
    path = make_audio(seconds=3)
    first = import_one(db, home, path)
    again = import_one(db, home, path, **change)
    assert again.duplicate and again.id == first.id and again.differs == [field]
    args = ["import", path, "--caller", change.get("caller", "06-12345678"), "--agent", change.get("agent", "E-0007")]
    if "basis" in change:
        args += ["--basis", change["basis"]]
    if "channels" in change:
        args += ["--channels", change["channels"]]
    r, out = _cli(home, *args)
    assert r.exit_code == 1 and out["recordings"][0]["differs"] == [field]
    r, out = _cli(home, "import", path, "--caller", "+31 6 1234 5678", "--agent", "E-0007")
    assert r.exit_code == 0 and out["recordings"][0] == dict(out["recordings"][0], duplicate=True, differs=[])
    assert library.list_recordings(db)[1] == 1


def test_unreadable_and_missing_files_are_per_file_errors(db, home, make_audio, tmp_path, monkeypatch):
    good, locked = make_audio("good.wav", seconds=3), make_audio("locked.wav", seconds=3, seed=9)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if str(p) == str(locked) else real(p, mode))
    r, out = _cli(home, "import", locked, tmp_path / "missing.wav", good, "--caller", "06-1", "--agent", "E-1")
    assert r.exit_code == 1
    assert [e["error"].split(": ", 1)[1] for e in out["errors"]] == ["permission denied", "no such file"]
    assert len(out["recordings"]) == 1


def test_the_reported_duration_can_be_used_as_the_end(db, home, tmp_path):
    path = tmp_path / "odd.wav"
    sf.write(str(path), np.zeros((16004, 2), dtype="float32") + 0.01, 8000, subtype="PCM_16")  # 2.0005 s
    result = import_one(db, home, path)
    assert result.duration_s == 2.0  # rounded down, never up
    r, out = _cli(home, "clip", result.id, "--start", 0, "--end", result.duration_s, "--title", "whole")
    assert r.exit_code == 0, r.output
