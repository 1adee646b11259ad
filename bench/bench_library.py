"""Library benchmarks: list queries on 100,000 clips, and where import time goes.

Run: ``.venv/bin/python bench/bench_library.py [--clips 100000] [--files 1000]``

Prints medians and ratios measured in this process (machines here are noisy,
so the ratios are the figures to read):

* ``list --tag`` and ``list --search`` on a synthetic library of N clips,
  median of 15 runs each, in-process query time; target well under 100 ms.
* importing F short files in one batch vs. the hashing + decoding alone for
  the same files: the ratio shows per-row database overhead is small.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipkit import audio, library  # noqa: E402
from clipkit import db as dbmod  # noqa: E402
from clipkit.initialize import init_home  # noqa: E402

WORDS = ("angry caller billing refund roaming elderly confused router modem password invoice card payment "
         "cancel contract upgrade outage complaint escalation manager loyal churn discount delay delivery").split()
TAGS = ["abusive", "billing", "de-escalation", "elderly", "hard-to-understand", "technical", "payment",
        "complaint", "churn", "praise"] + [f"topic-{i}" for i in range(40)]


def build_library(home, n_clips: int) -> None:
    """Insert one recording and n_clips clips directly, in one transaction (bulk load, not the API)."""
    rng = random.Random(1)
    path = Path(home.root) / "in.wav"
    sf.write(str(path), np.zeros((8000 * 60, 2), dtype="float32") + 0.01, 8000, subtype="PCM_16")
    with dbmod.connect(home) as db:
        (res,) = library.import_recordings(db, home, [path], caller="C-1", agent="E-1")
        rows, tags = [], []
        for i in range(1, n_clips + 1):
            t = sorted(set(rng.sample(TAGS, 3)))
            rows.append({
                "id": i + 1000, "recording_id": res.id, "start_s": 1.0, "end_s": 9.0,
                "title": " ".join(rng.sample(WORDS, 4)), "note": " ".join(rng.sample(WORDS, 6)),
                "tags_text": " ".join(t), "author": "bench", "created_at": "2026-01-01", "updated_at": "2026-01-01",
                "status": rng.choice(library.CLIP_STATUSES),
            })
            tags += [{"clip_id": i + 1000, "tag": x} for x in t]
        with dbmod.transaction(db):
            db["clips"].insert_all(rows, batch_size=5000)
            db["clip_tags"].insert_all(tags, batch_size=5000)
        db.execute("ANALYZE")


def median_ms(fn, runs: int = 15) -> float:
    fn()  # warm the page cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_queries(n_clips: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home, _ = init_home(Path(tmp) / "h")
        t0 = time.perf_counter()
        build_library(home, n_clips)
        build_s = time.perf_counter() - t0
        with dbmod.connect(home) as db:
            total = db["clips"].count
            out = {
                "clips": total,
                "build_s": build_s,
                "tag_ms": median_ms(lambda: library.list_clips(db, tag="elderly", limit=50)),
                "search_ms": median_ms(lambda: library.list_clips(db, search="angr cal", limit=50)),
                "tag+search_ms": median_ms(lambda: library.list_clips(db, tag="billing", search="refund", limit=50)),
                "unfiltered_ms": median_ms(lambda: library.list_clips(db, limit=50)),
            }
    return out


def bench_import(n_files: int) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        files = []
        for i in range(n_files):
            p = src / f"f{i:05d}.wav"
            sf.write(str(p), (rng.normal(0, 0.1, (8000 * 2, 2))).astype("float32"), 8000, subtype="PCM_16")
            files.append(p)
        # baseline: what an import cannot avoid — read, hash, decode each file once
        t0 = time.perf_counter()
        import hashlib

        for p in files:
            hashlib.sha256(p.read_bytes()).hexdigest()
            audio.validate(p)
        baseline = time.perf_counter() - t0
        home, _ = init_home(Path(tmp) / "h")
        in_db = []
        real = library.transaction

        from contextlib import contextmanager

        @contextmanager
        def timed(database):
            t = time.perf_counter()
            with real(database) as d:
                yield d
            in_db.append(time.perf_counter() - t)

        library.transaction = timed
        try:
            with dbmod.connect(home) as db:
                t0 = time.perf_counter()
                results = library.import_recordings(db, home, files, caller="C-1", agent="E-1")
                full = time.perf_counter() - t0
        finally:
            library.transaction = real
        assert all(r.error is None for r in results)
    return {"files": n_files, "hash+decode_s": baseline, "import_s": full, "ratio": full / baseline,
            "db_s": sum(in_db)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=1000)
    args = ap.parse_args()
    q = bench_queries(args.clips)
    print(f"list on {q['clips']:,} clips (built in {q['build_s']:.1f} s), median of 15, in-process:")
    for k in ("tag_ms", "search_ms", "tag+search_ms", "unfiltered_ms"):
        print(f"  {k[:-3]:<14} {q[k]:7.2f} ms   ({q[k] / 100:.3f} of the 100 ms budget)")
    imp = bench_import(args.files)
    print(f"import of {imp['files']} two-second stereo WAVs in one batch:")
    print(f"  hash + decode alone {imp['hash+decode_s']:.2f} s, full import {imp['import_s']:.2f} s, "
          f"ratio {imp['ratio']:.2f} (the rest is copying into the store and creating files)")
    print(f"  database transaction {imp['db_s'] * 1000:.0f} ms = {imp['db_s'] / imp['import_s']:.1%} of the import "
          f"({imp['db_s'] / imp['files'] * 1e6:.0f} µs per row)")


if __name__ == "__main__":
    main()
