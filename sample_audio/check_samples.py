#!/usr/bin/env python3
"""Sanity-check sample_audio/: file format, manifest shape, and that the
manifest's timestamps line up with speech energy in the audio.

    .venv/bin/python sample_audio/check_samples.py

Exits non-zero and lists the problems if anything is off.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

ECHO_DB = -28.0  # as make_samples.py: the other voice on each stereo channel
import soundfile as sf

DIR = Path(__file__).resolve().parent
FRAME_S = 0.02
SPEECH_DB = -50.0  # a frame louder than this counts as speech
QUIET_DB = -60.0  # the idle channel / gaps must stay below this (line noise only)
BASES = {"legitimate_interest", "consent", "contract"}

problems: list[str] = []


def bad(msg: str) -> None:
    problems.append(msg)


def frame_db(x: np.ndarray) -> np.ndarray:
    n = int(FRAME_S * 8000)
    m = len(x) // n
    rms = np.sqrt(np.mean(x[: m * n].reshape(m, n) ** 2, axis=1) + 1e-12)
    return 20 * np.log10(rms)


def window(db: np.ndarray, s0: float, s1: float) -> np.ndarray:
    w = db[int(s0 / FRAME_S) : max(int(s0 / FRAME_S) + 1, int(s1 / FRAME_S))]
    return w if len(w) else np.array([-200.0])  # outside the audio: silence


def check_call(c: dict) -> tuple[float, int]:
    f = c["file"]
    path = DIR / f
    info = sf.info(path)
    want_ch = 2 if c["channels"] == "caller,agent" else 1
    if c["channels"] not in ("caller,agent", "mixed"):
        bad(f"{f}: channels={c['channels']!r}")
    if info.samplerate != 8000 or info.channels != want_ch or info.format != "FLAC" or info.subtype != "PCM_16":
        bad(f"{f}: {info.samplerate} Hz, {info.channels} ch, {info.format}/{info.subtype}")
    dur = info.frames / info.samplerate
    if not 20 <= dur <= 120:
        bad(f"{f}: duration {dur:.1f} s")
    ts = datetime.fromisoformat(c["recorded_at"])
    if ts.tzinfo is None or ts.year != 2026:
        bad(f"{f}: recorded_at {c['recorded_at']}")
    if c["basis"] not in BASES or c["language"] not in ("nl", "en"):
        bad(f"{f}: basis/language {c['basis']}/{c['language']}")

    audio, _ = sf.read(path, always_2d=True)
    dbs = [frame_db(audio[:, ch]) for ch in range(audio.shape[1])]
    tr = c["transcript"]
    prev_end, prev_start = 0.0, 0.0
    switches = 0
    for i, t in enumerate(tr):
        s0, s1 = t["start_s"], t["end_s"]
        overlaps = s0 < prev_end  # a scripted cut-in (overtalk): starts before the previous turn ends
        if not (prev_start < s0 < s1 <= dur or (i == 0 and 0 <= s0 < s1 <= dur)):
            bad(f"{f}: turn {i} times {s0}-{s1} out of order/range")
        if i and t["speaker"] != tr[i - 1]["speaker"]:
            switches += 1
        ch = (0 if t["speaker"] == "caller" else 1) if want_ch == 2 else 0
        w = window(dbs[ch], s0, s1)
        active = float(np.mean(w > SPEECH_DB))
        if active < 0.5:
            bad(f"{f}: turn {i} ({t['speaker']}) only {active:.0%} speech frames")
        # edges: sound above the line noise within 60 ms of the stated times
        if max(window(dbs[ch], s0, s0 + 0.06)) < QUIET_DB or max(window(dbs[ch], s1 - 0.06, s1)) < QUIET_DB:
            bad(f"{f}: turn {i} edges not aligned with speech")
        if want_ch == 2 and not overlaps and not (i + 1 < len(tr) and tr[i + 1]["start_s"] < s1):
            # the other channel carries only the line's echo of this voice (ECHO_DB down), nothing louder
            other = window(dbs[1 - ch], s0, s1)
            if other.max() > max(QUIET_DB, w.max() + ECHO_DB + 6):
                bad(f"{f}: turn {i}: other channel louder than an echo ({other.max():.1f} dBFS)")
        # gap before this turn: every channel quiet
        if s0 - prev_end > 0.1:
            for d in dbs:
                g = window(d, prev_end + 0.04, s0 - 0.04)
                if len(g) and g.max() > QUIET_DB:
                    bad(f"{f}: gap {prev_end:.2f}-{s0:.2f} not quiet ({g.max():.1f} dBFS)")
        prev_end, prev_start = max(prev_end, s1), s0
    if switches < len(tr) // 2:
        bad(f"{f}: speakers hardly alternate ({switches} switches)")

    def in_turn(s0: float, s1: float, who: str) -> bool:
        return any(t["speaker"] == who and t["start_s"] <= s0 and s1 <= t["end_s"] + 0.01 for t in tr)

    for r in c["redactions"]:
        if not in_turn(r["start_s"], r["end_s"], "caller") or not r["what"]:
            bad(f"{f}: redaction {r} not inside a caller turn")
    o = c["objection"]
    if o is not None:
        if o["party"] != "caller" or o["purpose"] != "training" or not in_turn(o["at_s"], o["at_s"], "caller"):
            bad(f"{f}: objection {o}")
    for k in c["suggested_clips"]:
        ln = k["end_s"] - k["start_s"]
        if not (0 <= k["start_s"] and k["end_s"] <= dur and 1 <= ln <= 600) or not k["tags"] or not k["title"]:
            bad(f"{f}: clip {k}")
    return dur, want_ch


def main() -> None:
    calls = json.loads((DIR / "calls.json").read_text(encoding="utf-8"))
    for c in calls:
        dur, ch = check_call(c)
        print(f"{c['file']:36s} {dur:5.1f} s  {ch} ch  {c['language']}  {c['basis']:19s} "
              f"turns={len(c['transcript'])} clips={len(c['suggested_clips'])} "
              f"redactions={len(c['redactions'])} objection={c['objection'] and c['objection']['at_s']}")
    if sum(c["channels"] == "mixed" for c in calls) != 1:
        bad("need exactly one mixed (mono) call")
    if sum(c["language"] == "nl" for c in calls) < 2:
        bad("need at least two Dutch calls")
    if not any(c["objection"] for c in calls) or not any(c["basis"] == "consent" for c in calls):
        bad("need an objection and a consent call")
    if sum(len(c["suggested_clips"]) for c in calls) < 3:
        bad("need at least 3 suggested clips")
    size = sum(p.stat().st_size for p in DIR.iterdir() if p.is_file())
    print(f"sample_audio/ total {size / 1e6:.2f} MB")
    overtalk = [c["file"] for c in calls for a, b in zip(c["transcript"], c["transcript"][1:])
                if b["start_s"] < a["end_s"]]
    if not overtalk:
        bad("need at least one scripted cut-in (overtalk)")
    if size >= 6_000_000:
        bad("sample_audio/ is over 6 MB")
    for p in problems:
        print("PROBLEM:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
