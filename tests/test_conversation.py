"""Conversation analysis on generated calls: every moment kind, echo, mono, staleness, erasure, CLI, Dask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from clipkit import analysis, conversation, erasure, library
from conftest import voice

SR = 8000


def turn(seconds: float, *, f0: float, seed: int, db: float = -22.0) -> np.ndarray:
    """Speech-like audio (syllable rhythm, harmonics) at ``db`` dBFS rms."""
    y = voice(seconds, sr=SR, f0=f0, seed=seed).astype(np.float64)
    return y * 10 ** (db / 20) / np.sqrt(np.mean(y**2))


def call(parts, seconds: float, *, echo_db: float | None = -26.0, seed: int = 0) -> np.ndarray:
    """A stereo call: ``parts`` = [(channel, start_s, audio)]; the line echo and noise added."""
    n = int(seconds * SR)
    out = np.zeros((n, 2))
    for ch, start, x in parts:
        a = int(start * SR)
        out[a:a + len(x), ch] += x[: n - a]
    if echo_db is not None:
        d = int(0.04 * SR)
        clean = out.copy()
        for ch in (0, 1):
            out[d:, 1 - ch] += 10 ** (echo_db / 20) * clean[:-d, ch]
    out += np.random.default_rng(seed).normal(0, 10 ** (-66 / 20), out.shape)
    return out


def analyse(y, tmp_path, cmap="caller=0,agent=1", name="c.wav"):
    path = tmp_path / name
    sf.write(str(path), y, SR, subtype="PCM_16")
    return conversation.analyze(analysis.features_of(path, cmap))


def kinds(result, kind):
    return [m for m in result["moments"] if m["kind"] == kind]


def dialogue(n_turns=10, *, seed=0, start=0.5, gap=0.6, length=3.0):
    """Alternating calm turns: [(channel, start, audio)], and the end time."""
    parts, t = [], start
    for i in range(n_turns):
        ch = i % 2
        x = turn(length, f0=210 if ch == 0 else 120, seed=seed * 100 + i)
        parts.append((ch, t, x))
        t += length + gap
    return parts, t


# ---------------------------------------------------------------- moments, one kind at a time


def test_a_calm_call_has_no_moments_and_scores_low(tmp_path):
    parts, end = dialogue(12)
    r = analyse(call(parts, end + 1), tmp_path)
    assert r["moments"] == [] and r["difficulty"] < 10, r["reasons"]
    assert r["channels"] == "stereo" and r["version"] == conversation.ANALYZER_VERSION
    s = r["signals"]
    assert 15 < s["talk_s"]["caller"] < 19 and 15 < s["talk_s"]["agent"] < 19  # 6 turns of 3 s each


def test_overtalk_names_the_one_who_cut_in_and_ignores_backchannels(tmp_path):
    parts, end = dialogue(6)
    # the agent (channel 1) starts 2 s before the caller's 5th turn ends
    caller_turn = [p for p in parts if p[0] == 0][2]
    cut_at = caller_turn[1] + 1.0
    parts.append((1, cut_at, turn(2.5, f0=120, seed=77)))
    # a 0.4 s "mm" of the caller inside an agent turn: a backchannel, not overtalk
    agent_turn = [p for p in parts if p[0] == 1][0]
    parts.append((0, agent_turn[1] + 1.2, turn(0.4, f0=210, seed=78)))
    r = analyse(call(parts, end + 1), tmp_path)
    (ot,) = kinds(r, "overtalk")
    assert ot["party"] == "agent" and abs(ot["start_s"] - cut_at) < 0.3 and ot["strength"] >= 1.0
    assert r["signals"]["overtalk_count"] == 1 and r["signals"]["interruptions"] == {"caller": 0, "agent": 1}
    assert any("talks over" in x for x in r["reasons"])


def test_a_long_silence_and_hold_music_count_as_silence(tmp_path):
    parts, end = dialogue(4)
    t = end + 7.0
    parts.append((0, t, turn(3, f0=210, seed=5)))
    t2 = t + 3.6
    t_music = np.arange(int(8 * SR)) / SR
    music = 0.05 * (np.sin(2 * np.pi * 330 * t_music) + np.sin(2 * np.pi * 440 * t_music))  # a steady chord
    parts.append((1, t2 + 0.3, music))
    parts.append((1, t2 + 9.0, turn(3, f0=120, seed=6)))
    r = analyse(call(parts, t2 + 13), tmp_path)
    silences = kinds(r, "long_silence")
    assert len(silences) == 2
    first, second = silences
    assert abs(first["start_s"] - (end - 0.6)) < 0.5 and first["strength"] >= 6.5 and first["music"] == 0
    assert second["strength"] >= 8 and second["music"] > 0.8  # hold music: nobody speaks
    assert r["signals"]["music_s"] > 7


def test_a_raised_voice_is_relative_to_the_speaker(tmp_path):
    parts, end = dialogue(14, seed=3)
    # the caller's 5th turn shouted: 12 dB louder and a fifth higher
    i = [k for k, p in enumerate(parts) if p[0] == 0][4]
    ch, start, x = parts[i]
    parts[i] = (ch, start, turn(3.0, f0=210 * 1.5, seed=99, db=-10.0))
    r = analyse(call(parts, end + 1), tmp_path)
    (rv,) = kinds(r, "raised_voice")
    assert rv["party"] == "caller" and abs(rv["start_s"] - start) < 1.2 and rv["strength"] >= 8
    assert rv["f0_rise_st"] > 3
    # the same call on a loud line (everything +12 dB) has no raised voice: never absolute
    louder, _ = dialogue(14, seed=3)
    loud = [(c, s, x * 10 ** (12 / 20)) for c, s, x in louder]
    assert kinds(analyse(call(loud, end + 1), tmp_path, name="loud.wav"), "raised_voice") == []


def test_a_late_escalation_spans_the_escalating_stretch(tmp_path):
    parts, end = dialogue(16, seed=4)
    callers = [k for k, p in enumerate(parts) if p[0] == 0]
    for k in callers[-2:]:
        ch, start, _ = parts[k]
        parts[k] = (ch, start, turn(3.0, f0=300, seed=k, db=-9.0))
    last = parts[callers[-1]]
    parts.append((0, last[1] - 2.0, turn(1.8, f0=300, seed=55, db=-9.0)))  # and cuts in
    r = analyse(call(parts, end + 1), tmp_path)
    (esc,) = kinds(r, "late_escalation")
    assert esc["party"] == "caller" and esc["start_s"] >= 2 * end / 3 - 3 and esc["end_s"] <= end
    assert r["difficulty"] >= 40 and any("escalates at the end" in x for x in r["reasons"])


def test_a_loud_caller_leaking_into_the_agent_channel_is_not_agent_speech(tmp_path):
    x = turn(20.0, f0=200, seed=1, db=-12.0)
    for echo in (-20.0, -28.0, -35.0):
        r = analyse(call([(0, 0.5, x)], 22.0, echo_db=echo), tmp_path, name=f"e{echo}.wav")
        assert r["signals"]["talk_s"]["agent"] < 0.5, (echo, r["signals"]["talk_s"])
        assert r["moments"] == [], echo


def test_a_quiet_party_is_flagged(tmp_path):
    parts, end = dialogue(10)
    quiet = [(c, s, x * (10 ** (-12 / 20) if c == 0 else 1)) for c, s, x in parts]
    r = analyse(call(quiet, end + 1), tmp_path)
    assert r["signals"]["quiet"] == {"caller": True, "agent": False}
    assert any("hard to hear" in x for x in r["reasons"])


def test_a_mono_mixed_call_claims_no_overtalk(tmp_path):
    parts, end = dialogue(8)
    parts.append((1, parts[2][1] + 1.0, turn(2.5, f0=120, seed=70)))  # overlap, invisible in a mix
    y = call(parts, end + 8.0, echo_db=None).sum(axis=1)  # 7 s of silence at the end
    r = analyse(y, tmp_path, cmap="mixed")
    assert r["channels"] == "mixed" and kinds(r, "overtalk") == []
    assert r["signals"]["overtalk_count"] is None and set(r["signals"]["talk_s"]) == {"mixed"}
    (sil,) = kinds(r, "long_silence")
    assert sil["party"] is None and sil["strength"] >= 6


def test_silence_and_digital_zero_are_handled(tmp_path):
    r = analyse(np.zeros((10 * SR, 2)), tmp_path)
    assert r["difficulty"] >= 0 and kinds(r, "long_silence")[0]["strength"] == pytest.approx(10, abs=0.1)


def test_features_do_not_depend_on_the_block_size(tmp_path):
    parts, end = dialogue(6)
    path = tmp_path / "b.wav"
    sf.write(str(path), call(parts, end + 1), SR, subtype="PCM_16")
    a = analysis.features_of(path, "caller=0,agent=1", block_frames=1 << 18)
    b = analysis.features_of(path, "caller=0,agent=1", block_frames=4001)
    assert np.array_equal(a.energy_db, b.energy_db)
    assert np.array_equal(np.isnan(a.f0), np.isnan(b.f0)) and np.allclose(a.f0, b.f0, equal_nan=True)


@pytest.mark.parametrize("weights, message", [
    ({"nonsense": 1}, "not one of"), ({"overtalk": -1}, "number from 0"), ({"overtalk": True}, "number from 0"),
    ("heavy", "must map"),
])
def test_difficulty_weights_are_validated(weights, message):
    with pytest.raises(ValueError, match=message):
        conversation.weights_from({"difficulty_weights": weights})


def test_weights_change_the_score(tmp_path):
    parts, end = dialogue(4)
    parts.append((0, end + 8, turn(3, f0=210, seed=9)))
    y = call(parts, end + 12)
    r = analyse(y, tmp_path)
    heavier = conversation.analyze(analysis.features_of(tmp_path / "c.wav", "caller=0,agent=1"),
                                   weights=conversation.weights_from({"difficulty_weights": {"long_silence": 200}}))
    assert heavier["difficulty"] > r["difficulty"] > 0


# ---------------------------------------------------------------- stored results, staleness, erasure


@pytest.fixture
def analysed(db, home, tmp_path):
    parts, end = dialogue(8)
    i = [k for k, p in enumerate(parts) if p[0] == 0][2]
    ch, start, _ = parts[i]
    parts[i] = (ch, start, turn(3.0, f0=320, seed=9, db=-9.0))
    path = tmp_path / "in" / "hard.wav"
    path.parent.mkdir(exist_ok=True)
    sf.write(str(path), call(parts, end + 7), SR, subtype="PCM_16")
    (res,) = library.import_recordings(db, home, [path], caller="06-12345678", agent="E-0007", actor="t")
    analysis.analyze_recordings(db, home, [res.id], workers=1)
    return res.id


def test_results_are_stored_and_a_new_analyzer_makes_them_stale(db, home, analysed, monkeypatch):
    row = analysis.analysis_of(db, analysed)
    assert row["stale"] is False and row["difficulty"] > 0 and row["reasons"]
    assert analysis.moments_of(db, analysed)["moments"]
    again = analysis.analyze_recordings(db, home, [analysed])
    assert again["analyzed"] == [] and "current" in again["skipped"][0]["why"]
    monkeypatch.setattr(conversation, "ANALYZER_VERSION", "conversation-99")
    assert analysis.analysis_of(db, analysed)["stale"] is True
    redone = analysis.analyze_recordings(db, home, workers=1)  # no ids: every stale or missing one
    assert [r["recording_id"] for r in redone["analyzed"]] == [analysed]
    assert analysis.analysis_of(db, analysed)["version"] == "conversation-99"


def test_erasure_and_purge_take_the_analysis_with_the_recording(db, home, analysed, tmp_path):
    assert db["moments"].count_where("recording_id = ?", [analysed])
    erasure.erase(db, home, identifier="06-12345678", actor="dpo")
    assert db["analyses"].count == 0 and db["moments"].count == 0
    dump = b"".join(p.read_bytes() for p in home.root.glob("clipkit.db*"))
    assert b"raised_voice" not in dump and b"late_escalation" not in dump


def test_cut_around_a_moment_snaps_to_pauses(db, home, analysed):
    m = next(x for x in analysis.moments_of(db, analysed)["moments"] if x["kind"] == "raised_voice")
    a, b = analysis.cut_around(db, analysed, start_s=m["start_s"], end_s=m["end_s"])
    assert a < m["start_s"] and b > m["end_s"]
    pauses = json.loads(db.execute("SELECT pauses FROM analyses WHERE recording_id = ?", [analysed]).fetchone()[0])
    assert any(p <= a <= q for p, q in pauses) and any(p <= b <= q for p, q in pauses)


# ---------------------------------------------------------------- the command line


def test_cli_contract(cli_run, db, home, analysed, recording):
    r, out = cli_run("analyze")
    assert r.exit_code == 0 and [a["recording_id"] for a in out["analyzed"]] == [recording["id"]]
    assert {s["recording_id"] for s in out["skipped"]} == {analysed}
    one = out["analyzed"][0]
    assert set(one) == {"recording_id", "difficulty", "signals", "reasons"}
    r, out = cli_run("analyze", analysed, "--force")
    assert r.exit_code == 0 and out["analyzed"][0]["recording_id"] == analysed
    r, out = cli_run("recordings", "--sort", "difficulty")
    assert [x["id"] for x in out["recordings"]][0] == analysed
    assert all({"difficulty", "reasons", "signals"} <= set(x) for x in out["recordings"])
    r, out = cli_run("recordings", "--moment", "raised_voice")
    assert [x["id"] for x in out["recordings"]] == [analysed]
    r, out = cli_run("recordings", "--agent", "E-0007", "--min-difficulty", 101)
    assert r.exit_code == 1 and out["error"]["code"] == "bad_input"
    r, out = cli_run("moments", analysed)
    assert r.exit_code == 0 and out["channels"] == "stereo" and out["recording_id"] == analysed
    assert [m["start_s"] for m in out["moments"]] == sorted(m["start_s"] for m in out["moments"])
    assert all(set(m) >= {"kind", "party", "start_s", "end_s", "strength"} for m in out["moments"])
    r, out = cli_run("moments", analysed, "--kind", "raised_voice")
    assert {m["kind"] for m in out["moments"]} == {"raised_voice"}
    for args in (["moments", 999], ["analyze", 999], ["moments", analysed, "--kind", "shouting"],
                 ["recordings", "--moment", "shouting"]):
        r, out = cli_run(*args)
        assert r.exit_code == 1 and out["error"]["code"] in ("not_found", "bad_input"), args


def test_import_analyses_the_new_call(cli_run, make_audio):
    r, out = cli_run("import", make_audio("new.wav", seconds=12), "--caller", "06-2", "--agent", "E-2")
    assert r.exit_code == 0 and out["recordings"][0]["difficulty"] is not None


# ---------------------------------------------------------------- a Dask cluster


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_results(db, home, analysed, recording):
    distributed = pytest.importorskip("distributed")
    local = {r["recording_id"]: r for r in
             analysis.analyze_recordings(db, home, [analysed, recording["id"]], force=True, workers=1)["analyzed"]}
    # worker threads, not processes: the same scheduler, client and task path, and no nanny to time out
    # on a loaded 2-core CI machine (bench/bench_analysis.py runs a process cluster)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        remote = analysis.analyze_recordings(db, home, [analysed, recording["id"]], force=True,
                                             scheduler=c.scheduler_address)
    assert {r["recording_id"]: r for r in remote["analyzed"]} == local


def test_a_muted_stretch_does_not_turn_line_hiss_into_speech(tmp_path):
    parts, end = dialogue(8)
    y = call(parts, end + 10)
    y[int(end * SR):] = 0.0  # the line is muted (hold): exact zeros, no hiss
    r = analyse(y, tmp_path)
    assert kinds(r, "overtalk") == [] and kinds(r, "long_silence")[-1]["strength"] >= 9
    assert r["signals"]["talk_ratio"]["caller"] < 0.4


def test_a_dask_batch_under_a_trimming_allocator_gives_the_same_results(db, home, analysed, monkeypatch):
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_; the batch loosens glibc's settings while it runs, results unchanged."""
    rec = library.get_recording(db, analysed)
    job = {"recording_id": analysed, "path": str(library.recording_path(home, rec)), "channel_map": rec["channel_map"],
           **analysis.settings(home)}
    plain = analysis.analyze_path(job)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert analysis._analyze_batch([job, job]) == [plain, plain]
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "not a number")  # restored to the default, no crash
    assert analysis._analyze_batch([job]) == [plain]
