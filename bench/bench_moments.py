#!/usr/bin/env python3
"""Accuracy of the conversation analysis on labelled synthetic calls (not part of `make test`).

Builds stereo telephone calls from distinct TTS voices (flite awb/rms/slt/kal16
and espeak-ng variants: Debian packages flite, espeak-ng) with known events:

* overtalk   one party starts 1.2-2.6 s before the other finishes;
* backchannels "mm" / "yes" under 0.6 s inside the other's turn (must NOT count);
* long_silence 6-12 s of dead air, or of hold music on the agent's channel;
* raised_voice a turn shouted: +12..+16 dB *and* +3..+5 semitones (level and pitch
               rise together, as shouting does; not gain alone);
* late_escalation the last third of a calm call holds two shouted turns and a cut-in;

plus calm calls, all with a real line's echo (the other voice 20-35 dB down,
20-60 ms late), line noise and G.711 mu-law. Each file goes through the same
code as `clipkit analyze` (analysis.features_of + conversation.analyze).
Prints per-kind recall and precision (a moment matches a label of its kind
when they overlap within +-1 s), how many escalating calls were found, the
ROC AUC of the difficulty score (difficult vs calm calls), and how the
speaking-rate estimate tracks the true syllable rate.

    .venv/bin/python bench/bench_moments.py [--calls 40] [--seed 7] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipkit import analysis, conversation  # noqa: E402

spec = importlib.util.spec_from_file_location("make_samples", ROOT / "sample_audio" / "make_samples.py")
ms = importlib.util.module_from_spec(spec)
sys.modules["make_samples"] = ms  # dataclasses look their module up
spec.loader.exec_module(ms)

SR = 8000
CACHE = ROOT / "bench" / ".cache" / "moments"
VOICES = [ms.Voice("flite", "awb"), ms.Voice("flite", "rms"), ms.Voice("flite", "slt"), ms.Voice("flite", "kal16"),
          ms.Voice("espeak", "en+m3", speed=165, pitch=40), ms.Voice("espeak", "en+f3", speed=170, pitch=60),
          ms.Voice("espeak", "en+m7", speed=150, pitch=30), ms.Voice("espeak", "en+f4", speed=160, pitch=70)]
SENTENCES = [
    "Good afternoon, you are speaking with customer service, how can I help you today?",
    "I have a question about my last invoice, the amount is much higher than usual.",
    "Let me look that up for you, can you give me your customer number please?",
    "It is the number on the top of the letter, I think it starts with a seven.",
    "Thank you, I can see the account now, there was a roaming charge in March.",
    "I have not been abroad at all this year, so that cannot be right.",
    "I understand, I will check the details of the connection for you.",
    "The internet drops out every evening around eight o'clock.",
    "Have you already tried to restart the modem and wait for two minutes?",
    "Yes, I did that twice yesterday and it made no difference at all.",
    "Then I will send a technician, is Thursday morning convenient for you?",
    "Thursday is fine, but please make sure he calls me before he comes.",
    "Is there anything else I can do for you today?",
    "No, that was all, thank you very much for your help.",
    "This is the third time I am calling about exactly the same problem.",
    "You people never listen, this is absolutely ridiculous and I am fed up.",
]
SHOUTS = ["This is completely unacceptable, I want it fixed right now!",
          "Stop telling me to wait, I have waited for three weeks already!",
          "I am not paying for this, do you hear me, not one cent!"]
BACKCHANNELS = ["mm", "yes", "okay", "right"]


def syllables(text: str) -> int:
    return max(1, len(re.findall(r"[aeiouy]+", text.lower())))


class Synth:
    """TTS through make_samples' chain (8 kHz, 300-3400 Hz), cached per voice and text."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        CACHE.mkdir(parents=True, exist_ok=True)

    def __call__(self, voice, text: str, *, level_db: float = -22.0, stretch: float | None = None) -> np.ndarray:
        v = voice.but(stretch=stretch) if stretch is not None and voice.engine == "flite" else voice
        key = re.sub(r"[^a-z0-9]+", "_", f"{v.engine}_{v.name}_{v.speed}_{v.pitch}_{v.stretch}_{text.lower()}")[:180]
        path = CACHE / f"{key}.npy"
        if path.exists():
            x = np.load(path)
        else:
            audio, sr = ms.synth(v, text, self.tmp)
            x = ms.to_phone(audio, sr, -22.0)
            np.save(path, x)
        return x * 10 ** ((level_db + 22.0) / 20)


def shout(x: np.ndarray, rng) -> np.ndarray:
    """Level and pitch up together, a brighter spectrum: how shouting differs from calm speech."""
    import librosa
    from scipy.signal import lfilter

    y = librosa.effects.pitch_shift(x.astype(np.float32), sr=SR, n_steps=float(rng.uniform(3, 5)),
                                    n_fft=256, hop_length=64)
    y = lfilter([1, -0.6], [1], y)  # tilt up: shouted speech carries more high-frequency energy
    y *= np.sqrt(np.mean(x**2) / max(np.mean(y**2), 1e-12))
    return y * 10 ** (rng.uniform(12, 16) / 20)  # shouted speech: 12-16 dB over the same voice calm


def hold_music(seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    chords = [(262, 330, 392), (220, 277, 330), (196, 247, 294), (175, 220, 262)]
    y = np.zeros_like(t)
    for i, chord in enumerate(chords * 8):
        a, b = i * 2.0, (i + 1) * 2.0
        m = (t >= a) & (t < b)
        for f in chord:
            y[m] += np.sin(2 * np.pi * f * t[m] * (1 + 0.003 * np.sin(2 * np.pi * 5 * t[m])))
    return 10 ** (-24 / 20) * y / np.sqrt(np.mean(y**2) + 1e-12)


def build_call(kind: str, synth: Synth, rng) -> tuple[np.ndarray, list[dict], dict]:
    """One labelled stereo call: (audio (n, 2), labels, facts)."""
    vc, va = rng.choice(len(VOICES), 2, replace=False)
    cv, av = VOICES[vc], VOICES[va]
    # some lines are loud, some quiet; the parties of a call within 5 dB of each other, unless the
    # caller is the one hard to hear (8-14 dB quieter)
    base = rng.uniform(-28, -16)
    lvl = {"agent": base + rng.uniform(-2.5, 2.5), "caller": base + rng.uniform(-2.5, 2.5)}
    if kind == "quiet":
        lvl["caller"] = lvl["agent"] - rng.uniform(9, 14)
    n_turns = int(rng.integers(12, 18))
    pieces, labels = [], []
    music_ids: set[int] = set()  # hold music is sound, not speech
    t = 0.8
    last_end = {"caller": 0.0, "agent": 0.0}
    prev_end = 0.0
    escalate_from = int(n_turns * 0.75) if kind == "escalation" else None
    plan = {"overtalk": set(), "silence": set(), "music": set(), "raised": set()}
    if kind == "overtalk":
        plan["overtalk"] = set(rng.choice(range(2, n_turns), 2, replace=False).tolist())
    elif kind == "silence":
        plan["silence"] = {int(rng.integers(3, n_turns - 2))}
    elif kind == "music":
        plan["music"] = {int(rng.integers(3, n_turns - 2))}
    elif kind == "raised":
        # one shout in the first half, one anywhere: raised voice, but no late escalation
        first = [i for i in range(1, n_turns // 2, 2)]
        plan["raised"] = {int(rng.choice(first)), int(rng.choice(range(1, n_turns, 2)))}
    elif kind == "escalation":
        late = [i for i in range(escalate_from, n_turns) if i % 2 == 1]
        plan["raised"] = set(late[:2])
        plan["overtalk"] = {late[0]} if late else set()
    for i in range(n_turns):
        who = "agent" if i % 2 == 0 else "caller"
        voice = av if who == "agent" else cv
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        if i in plan["raised"] and who == "caller":
            text = SHOUTS[int(rng.integers(len(SHOUTS)))]
        # people are not level: each turn +-3 dB around the speaker's own level
        x = synth(voice, text, level_db=lvl[who] + rng.uniform(-3, 3))
        if i in plan["raised"] and who == "caller":
            x = shout(x, rng)
        gap = rng.uniform(0.3, 0.9) if i > 0 else 0.8
        if i > 0 and rng.random() < 0.2:
            gap = -rng.uniform(0.2, 0.7)  # quick turn-taking: a brief overlap, never overtalk
        start = prev_end + gap
        if i in plan["silence"] or i in plan["music"]:
            dead = rng.uniform(6, 12)
            labels.append({"kind": "long_silence", "start_s": prev_end, "end_s": prev_end + dead})
            if i in plan["music"]:
                m = hold_music(dead - 0.6, rng)
                music_ids.add(id(m))
                pieces.append(("agent", prev_end + 0.3, m))
            start = prev_end + dead
        if i in plan["overtalk"] and i > 0:
            cut = rng.uniform(1.2, 2.6)
            start = prev_end - cut
            labels.append({"kind": "overtalk", "party": who, "start_s": start, "end_s": prev_end})
        pieces.append((who, start, x))
        end = start + len(x) / SR
        if i in plan["raised"] and who == "caller":
            labels.append({"kind": "raised_voice", "party": who, "start_s": start, "end_s": end})
        # now and then the listener says "mm" inside the turn: never overtalk
        if rng.random() < 0.35 and len(x) / SR > 3:
            other = "caller" if who == "agent" else "agent"
            bc = synth(VOICES[vc if other == "caller" else va], BACKCHANNELS[int(rng.integers(4))],
                       level_db=lvl[other] - 4)[: int(0.5 * SR)]
            pieces.append((other, start + rng.uniform(1.0, len(x) / SR - 1.0), bc))
        last_end[who] = end
        prev_end = max(prev_end, end)
    if kind == "escalation":
        esc = [lb for lb in labels if lb["kind"] in ("raised_voice", "overtalk")]
        labels.append({"kind": "late_escalation", "start_s": min(lb["start_s"] for lb in esc),
                       "end_s": max(lb["end_s"] for lb in esc)})
    n = int((prev_end + 1.0) * SR)
    out = np.zeros((n, 2))
    for who, start, x in pieces:
        ch = 0 if who == "caller" else 1
        a = int(start * SR)
        seg = x[: max(0, n - a)]
        out[a:a + len(seg), ch] += seg
    echo_db, delay = rng.uniform(-35, -20), int(rng.uniform(0.02, 0.06) * SR)
    echoed = out.copy()
    for ch in (0, 1):
        echoed[delay:, 1 - ch] += 10 ** (echo_db / 20) * out[:-delay, ch]
    noise_db = rng.uniform(-72, -60)
    for ch in (0, 1):
        echoed[:, ch] += 10 ** (noise_db / 20) * rng.standard_normal(n)
        echoed[:, ch] = ms.mulaw_roundtrip(np.clip(echoed[:, ch], -1, 1))
    speech = [(0 if who == "caller" else 1, start, start + len(x) / SR) for who, start, x in pieces
              if id(x) not in music_ids]
    return echoed, labels, {"kind": kind, "echo_db": round(echo_db, 1), "noise_db": round(noise_db, 1),
                            "speech": speech}


def matches(det: dict, lab: dict, slack: float = 1.0) -> bool:
    return (det["kind"] == lab["kind"] and det["start_s"] - slack < lab["end_s"]
            and lab["start_s"] < det["end_s"] + slack)


def auc(pos: list[float], neg: list[float]) -> float:
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / max(1, len(pos) * len(neg))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=80)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    ap.add_argument("--rates", action="store_true", help="print every (true, estimated) speaking rate")
    args = ap.parse_args()
    for tool in ("flite", "espeak-ng"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y flite espeak-ng", file=sys.stderr)
            return 2
    rng = np.random.default_rng(args.seed)
    kinds = (["calm"] * 4 + ["overtalk", "raised", "silence", "music", "escalation", "quiet"]) * 10
    kinds = kinds[: args.calls]
    stats = {k: {"labels": 0, "found": 0, "detected": 0, "true": 0} for k in conversation.KINDS}
    scores = {"difficult": [], "calm": []}
    esc_found = esc_total = 0
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        synth = Synth(tmp)
        for i, kind in enumerate(kinds):
            y, labels, facts = build_call(kind, synth, rng)
            path = tmp / f"call{i:03d}.flac"
            sf.write(str(path), y, SR, subtype="PCM_16")
            res = conversation.analyze(analysis.features_of(path, "caller=0,agent=1"))
            det = res["moments"]
            for k in conversation.KINDS:
                labs = [lb for lb in labels if lb["kind"] == k]
                dets = [m for m in det if m["kind"] == k]
                stats[k]["labels"] += len(labs)
                stats[k]["found"] += sum(any(matches(m, lb) for m in dets) for lb in labs)
                stats[k]["detected"] += len(dets)
                stats[k]["true"] += sum(any(matches(m, lb) for lb in labs) for m in dets)
            if kind == "escalation":
                esc_total += 1
                esc_found += any(m["kind"] == "late_escalation" for m in det)
            scores["calm" if kind == "calm" else "difficult"].append(res["difficulty"])
            rows.append({**facts, "difficulty": res["difficulty"], "moments": [m["kind"] for m in det],
                         "labels": [lb["kind"] for lb in labels]})
        # speaking rate: the same sentences at three known rates
        truth, est = [], []
        for stretch in (0.7, 1.0, 1.4):
            for v in VOICES[:4]:
                xs = [synth(v, s, stretch=stretch) for s in SENTENCES]
                sy = sum(syllables(s) for s in SENTENCES)
                y = np.concatenate([np.concatenate([x, np.zeros(int(0.5 * SR))]) for x in xs])
                path = tmp / "rate.wav"
                sf.write(str(path), y, SR, subtype="PCM_16")
                f = analysis.features_of(path, "mixed")
                act = conversation.speech_activity(f)
                rate = conversation.speaking_rate(f.energy_db[0], act.speech[0])
                truth.append(sy / (act.speech[0].sum() * conversation.HOP_S))
                est.append(rate)
        if args.rates:
            print("rates (true, estimated):", [(round(a, 2), b) for a, b in zip(truth, est)])
    print(f"{len(kinds)} calls ({kinds.count('calm')} calm), analyzer {conversation.ANALYZER_VERSION}")
    print(f"{'kind':<16} {'recall':>8} {'precision':>10}   labels / detected")
    targets = {"overtalk": (0.9, 0.8), "long_silence": (0.9, 0.8), "raised_voice": (0.8, 0.7)}
    summary = {}
    for k, s in stats.items():
        rec = s["found"] / s["labels"] if s["labels"] else float("nan")
        prec = s["true"] / s["detected"] if s["detected"] else float("nan")
        summary[k] = {"recall": rec, "precision": prec, **s}
        tgt = targets.get(k)
        mark = "" if tgt is None else ("  OK" if rec >= tgt[0] and prec >= tgt[1] else f"  below {tgt[0]}/{tgt[1]}")
        print(f"{k:<16} {rec:8.2f} {prec:10.2f}   {s['labels']:>4} / {s['detected']:<4}{mark}")
    a = auc(scores["difficult"], scores["calm"])
    print(f"late_escalation found in {esc_found}/{esc_total} escalating calls"
          f"{'  OK' if esc_total and esc_found / esc_total >= 0.8 else '  below 0.8'}")
    print(f"difficulty ROC AUC (difficult vs calm): {a:.3f}{'  OK' if a >= 0.95 else '  below 0.95'}")
    print(f"  median difficulty: difficult {np.median(scores['difficult']):.1f}, calm {np.median(scores['calm']):.1f}")
    from scipy.stats import spearmanr

    rho = spearmanr(truth, est).statistic
    print(f"speaking rate: Spearman {rho:.2f} against the true syllable rate "
          f"(true {min(truth):.1f}-{max(truth):.1f}, estimated {min(est):.1f}-{max(est):.1f} syllables/s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"kinds": summary, "auc": a, "escalation": [esc_found, esc_total],
                                               "rate_spearman": rho, "calls": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
