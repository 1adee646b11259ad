"""Peak memory of render() for 10- and 60-minute stereo clips, each in a fresh subprocess.

Usage: .venv/bin/python bench/bench_anonymize_memory.py [--methods strong,pitch] [--minutes 10,60]

The input is 8 kHz 16-bit stereo speech-like audio written to a temp
folder. Each render runs in its own child process, which reports its peak
RSS (ru_maxrss) and the RSS right before render() (imports done). Targets:
the whole process under 400 MB for 10 minutes, and the same peak for 10
and 60 minutes (ratio ~1.0), i.e. memory does not grow with length.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from clipkit.anonymize import derive_voice, render
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
src, dst, method, minutes = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
voices = [derive_voice(b"bench-secret-bench-secret", voice_id="c", role="caller"),
          derive_voice(b"bench-secret-bench-secret", voice_id="a", role="agent")]
base = rss_mb()
t0 = time.perf_counter()
fig = render(src, dst, start_s=0.0, end_s=minutes * 60.0, channel_voices=voices, method=method)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_mb": base, "seconds": time.perf_counter() - t0, "figures": fig}}))
"""


def write_input(path: Path, minutes: float) -> None:
    import numpy as np
    import soundfile as sf

    from clipkit.anonymize.synth import speech_like

    sr = 8000
    # one minute per channel, tiled: generating an hour of synthesis would dominate the bench
    minute = np.stack([speech_like(60.0, sr=sr, seed=1), speech_like(60.0, sr=sr, seed=2, f0_hz=200.0)], axis=1)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=2, subtype="PCM_16", format="WAV") as f:
        for _ in range(int(round(minutes))):
            f.write(minute)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="strong,pitch")
    ap.add_argument("--minutes", default="10,60")
    args = ap.parse_args()
    methods = args.methods.split(",")
    minutes = [float(m) for m in args.minutes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="clipkit-mem-") as tmp:
        tmp = Path(tmp)
        for m in minutes:
            write_input(tmp / f"in_{m:g}.wav", m)
        for method in methods:
            for m in minutes:
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-c", CHILD.format(root=str(ROOT)), str(tmp / f"in_{m:g}.wav"),
                     str(tmp / "out.wav"), method, str(m)],
                    capture_output=True, text=True, check=True,
                )
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                res.update(method=method, minutes=m, wall=time.perf_counter() - t0)
                rows.append(res)
    print(f"{'method':8s} {'minutes':>7s} {'peak RSS MB':>12s} {'RSS before render':>18s} {'render s':>9s} {'x realtime':>11s}")
    for r in rows:
        print(f"{r['method']:8s} {r['minutes']:7g} {r['peak_mb']:12.0f} {r['before_mb']:18.0f} {r['seconds']:9.1f} "
              f"{r['minutes'] * 60 / r['seconds']:11.0f}")
    for method in methods:
        peaks = {r["minutes"]: r["peak_mb"] for r in rows if r["method"] == method}
        if len(peaks) >= 2:
            lo, hi = min(peaks), max(peaks)
            print(f"{method}: peak {hi:g} min / {lo:g} min = {peaks[hi] / peaks[lo]:.3f}"
                  f"  (10-minute whole process < 400 MB: {'OK' if peaks.get(10.0, 0) < 400 else 'CHECK'})")


if __name__ == "__main__":
    main()
