#!/usr/bin/env python3
"""Speed, memory and scale of the conversation analysis (ratios against work measured in the same run).

* speed   a 10-minute stereo call: analysis wall time against ``clipkit anonymize``'s
          strong render of the same audio (target: at most 0.5x), and per-core realtime;
* memory  peak RSS analysing a 60-minute call against a 10-minute one, each in a fresh
          process (target: within 20 %: the file is read in blocks);
* scale   N one-minute stereo calls (default 1000) imported, then analysed: wall time and
          calls/s on this machine's process pool against a 2-worker distributed.LocalCluster,
          and the share of an import that analysis adds.

    .venv/bin/python bench/bench_analysis.py [--calls 1000] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clipkit import analysis  # noqa: E402
from clipkit.anonymize.synth import speech_like  # noqa: E402

SR = 8000

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from clipkit import analysis
t0 = time.perf_counter()
r = analysis.analyze_path({{"recording_id": 1, "path": sys.argv[1], "channel_map": "caller=0,agent=1",
                           "long_silence_s": 5.0, "weights": None}})
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - t0, "moments": len(r["moments"])}}))
"""


def conversation_minute(seed: int) -> np.ndarray:
    """One minute of a two-party call: turns of 2-6 s, pauses, the other voice 26 dB down as echo."""
    rng = np.random.default_rng(seed)
    n = 60 * SR
    out = np.zeros((n, 2))
    t, ch = 0.3, 0
    a = speech_like(60.0, sr=SR, seed=seed, f0_hz=200.0)
    b = speech_like(60.0, sr=SR, seed=seed + 1, f0_hz=120.0)
    while t < 59:
        length = rng.uniform(2, 6)
        s, e = int(t * SR), min(n, int((t + length) * SR))
        out[s:e, ch] = (a if ch == 0 else b)[s:e]
        t += length + rng.uniform(0.3, 1.2)
        ch = 1 - ch
    d = int(0.04 * SR)
    echo = out.copy()
    echo[d:, 0] += 10 ** (-26 / 20) * out[:-d, 1]
    echo[d:, 1] += 10 ** (-26 / 20) * out[:-d, 0]
    return echo + rng.normal(0, 10 ** (-65 / 20), echo.shape)


def write_call(path: Path, minutes: int, *, seed: int = 1) -> None:
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=2, subtype="PCM_16", format="WAV") as f:
        for m in range(minutes):
            f.write(conversation_minute(seed + 7 * (m % 5)))


def speed(tmp: Path) -> dict:
    from clipkit.anonymize import derive_voice, render

    path = tmp / "ten.wav"
    write_call(path, 10)
    job = {"recording_id": 1, "path": str(path), "channel_map": "caller=0,agent=1", "long_silence_s": 5.0,
           "weights": None}
    analysis.analyze_path(job)  # warm the imports
    voices = [derive_voice(b"bench" * 8, voice_id="c", role="caller"),
              derive_voice(b"bench" * 8, voice_id="a", role="agent")]
    render(path, tmp / "warm.wav", start_s=0.0, end_s=5.0, channel_voices=voices, method="strong")
    ta, tr = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        analysis.analyze_path(job)
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        render(path, tmp / "out.wav", start_s=0.0, end_s=600.0, channel_voices=voices, method="strong")
        tr.append(time.perf_counter() - t0)
    a, r = float(np.median(ta)), float(np.median(tr))
    return {"analysis_s": a, "render_s": r, "ratio": a / r, "realtime_per_core": 600.0 / a}


def memory(tmp: Path) -> dict:
    out = {}
    for minutes in (10, 60):
        path = tmp / f"m{minutes}.wav"
        write_call(path, minutes)
        proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(path)],
                              capture_output=True, text=True, check=True)
        out[minutes] = json.loads(proc.stdout.strip().splitlines()[-1])
        path.unlink()
    return out


def scale(tmp: Path, n: int) -> dict:
    from clipkit import db as dbmod
    from clipkit import library
    from clipkit.initialize import init_home

    src = tmp / "calls"
    src.mkdir()
    base = [conversation_minute(100 + i) for i in range(20)]
    rng = np.random.default_rng(0)
    for i in range(n):
        y = base[i % 20] + rng.normal(0, 1e-4, base[0].shape)  # every file distinct bytes
        sf.write(str(src / f"c{i:05d}.wav"), y, SR, subtype="PCM_16")
    files = sorted(src.iterdir())
    home, _ = init_home(tmp / "home")
    db = dbmod.connect(home)
    t0 = time.perf_counter()
    ids = []
    for i in range(0, n, 100):
        ids += [r.id for r in library.import_recordings(db, home, files[i:i + 100], caller=f"06-{i:08d}",
                                                          agent="E-1", actor="bench")]
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = analysis.analyze_recordings(db, home, ids, workers=os.cpu_count())
    t_local = time.perf_counter() - t0
    out = {"calls": n, "import_s": t_import, "local_s": t_local, "local_workers": os.cpu_count(),
           "analysis_share_of_import": t_local / (t_import + t_local), "analyzed": len(local["analyzed"])}
    try:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            t0 = time.perf_counter()
            remote = analysis.analyze_recordings(db, home, ids, force=True, scheduler=c.scheduler_address)
            out["dask_s"] = time.perf_counter() - t0
            out["dask_analyzed"] = len(remote["analyzed"])
    except ImportError:
        out["dask_s"] = None
    db.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--skip-scale", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="clipkit-analysis-") as d:
        tmp = Path(d)
        s = speed(tmp)
        print("speed, a 10-minute stereo call (median of 3):")
        print(f"  analysis {s['analysis_s']:.2f} s, strong anonymize {s['render_s']:.2f} s: ratio {s['ratio']:.3f} "
              f"({'OK' if s['ratio'] <= 0.5 else 'over'} the 0.5 target); {s['realtime_per_core']:.0f}x realtime per core")
        m = memory(tmp)
        ratio = m[60]["peak_mb"] / m[10]["peak_mb"]
        print("memory, whole process, fresh each:")
        print(f"  10 min {m[10]['peak_mb']:.0f} MB, 60 min {m[60]['peak_mb']:.0f} MB: ratio {ratio:.3f} "
              f"({'OK' if ratio <= 1.2 else 'over'} the 1.2 target)")
        if not args.skip_scale:
            sc = scale(tmp, args.calls)
            print(f"scale, {sc['calls']} one-minute stereo calls:")
            print(f"  import {sc['import_s']:.1f} s ({sc['calls'] / sc['import_s']:.1f} calls/s)")
            print(f"  analysis, local pool of {sc['local_workers']}: {sc['local_s']:.1f} s "
                  f"({sc['calls'] / sc['local_s']:.1f} calls/s); analysis is "
                  f"{sc['analysis_share_of_import'] * 100:.0f} % of import + analysis")
            if sc.get("dask_s"):
                print(f"  analysis, distributed.LocalCluster of 2: {sc['dask_s']:.1f} s "
                      f"({sc['calls'] / sc['dask_s']:.1f} calls/s, {sc['local_s'] / sc['dask_s']:.2f}x the local pool)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
