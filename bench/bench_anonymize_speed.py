"""Speed of the anonymization chains, against librosa.effects.pitch_shift in the same process.

Usage: .venv/bin/python bench/bench_anonymize_speed.py [--seconds 60] [--repeats 5]

Prints x-realtime (audio seconds per second) for one channel of 8 kHz
speech-like audio, by wall clock and by this process's CPU time (the
machine is shared, so CPU time is the steadier "per core" figure), and the
ratio to librosa.effects.pitch_shift with its defaults measured alongside.
Target: strong >= 150x realtime per core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from clipkit.anonymize import anonymize, derive_voice  # noqa: E402
from clipkit.anonymize.synth import speech_like  # noqa: E402


def measure(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``repeats`` runs (after one warm-up run)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import librosa

    sr = 8000
    y = speech_like(args.seconds, sr=sr, seed=1)
    voice = derive_voice(b"bench-secret-bench-secret", voice_id="bench-party", role="caller")
    cases = {
        "strong (default)": lambda: anonymize(y, sr=sr, voice=voice, method="strong"),
        "pitch (weaker)": lambda: anonymize(y, sr=sr, voice=voice, method="pitch"),
        "librosa pitch_shift": lambda: librosa.effects.pitch_shift(y, sr=sr, n_steps=4.0),
    }
    results = {name: measure(fn, args.repeats) for name, fn in cases.items()}
    ref_wall, ref_cpu = results["librosa pitch_shift"]
    print(f"{args.seconds:g} s of 8 kHz speech-like audio, median of {args.repeats}")
    print(f"{'chain':22s} {'x realtime (wall)':>18s} {'x realtime (cpu)':>17s} {'ratio vs librosa (cpu)':>23s}")
    for name, (wall, cpu) in results.items():
        print(f"{name:22s} {args.seconds / wall:18.0f} {args.seconds / cpu:17.0f} {ref_cpu / cpu:23.2f}")
    strong_cpu = args.seconds / results["strong (default)"][1]
    print(f"strong target >= 150x per core: {'OK' if strong_cpu >= 150 else 'MISSED'} ({strong_cpu:.0f}x)")


if __name__ == "__main__":
    main()
