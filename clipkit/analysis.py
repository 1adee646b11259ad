"""Conversation analysis of stored recordings: features from the audio, results in the database, batches at scale.

:func:`analyze_path` is a pure function of (audio file, channel map,
settings) → numbers and moments: it reads the file in blocks (memory flat in
length), builds :class:`clipkit.conversation.Features` and applies the rules
of :mod:`clipkit.conversation`. Because it touches nothing else, the same
function runs inline, in a local process pool (``--workers``) or on an
existing **Dask distributed** cluster (``--scheduler tcp://HOST:PORT`` or
``CLIPKIT_DASK_SCHEDULER``): workers read audio from the content-addressed
store (which must then sit on a mount every worker sees, at the same path)
and send back only numbers; this process, the single writer, stores them in
batched transactions.

Results carry the analyzer version; a new version makes old results stale,
and ``clipkit analyze`` (with no ids) redoes them. Analyses and moments are
personal data about the call: their rows go with the recording through the
one deletion path (``ON DELETE CASCADE`` from ``recordings``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import numpy as np
import soundfile as sf
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import audio, conversation, library, parties
from .db import now_iso, transaction
from .errors import BadAudio, BadInput, ClipkitError, NotFound
from .home import Home

SCHEDULER_ENV = "CLIPKIT_DASK_SCHEDULER"
WRITE_BATCH = 200
DASK_BATCH = 16  # calls per Dask task at most
FRAME_S = 0.032  # 32 ms frames every 20 ms (conversation.HOP_S)
BAND_HZ = (250.0, 3800.0)
F0_MIN_DB = -45.0  # frames quieter than this get no pitch estimate (saves time; they are not speech)

migrations = Migrations("clipkit.analysis")


@migrations()
def m001_analyses(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE analyses (
            recording_id INTEGER PRIMARY KEY REFERENCES recordings(id) ON DELETE CASCADE,
            version TEXT NOT NULL,
            analyzed_at TEXT NOT NULL,
            channels TEXT NOT NULL CHECK (channels IN ('stereo', 'mixed')),
            difficulty REAL NOT NULL,
            signals TEXT NOT NULL,      -- JSON
            reasons TEXT NOT NULL,      -- JSON list of sentences
            pauses TEXT NOT NULL DEFAULT '[]'  -- JSON [[start_s, end_s]]: where nobody speaks (cut points)
        )
        """
    )
    db.execute("CREATE INDEX analyses_difficulty ON analyses(difficulty)")
    db.execute(
        """
        CREATE TABLE moments (
            id INTEGER PRIMARY KEY,
            recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            party TEXT CHECK (party IS NULL OR party IN ('caller', 'agent')),
            start_s REAL NOT NULL,
            end_s REAL NOT NULL,
            strength REAL NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute("CREATE INDEX moments_recording ON moments(recording_id, start_s)")
    db.execute("CREATE INDEX moments_kind ON moments(kind, recording_id)")


# ---------------------------------------------------------------- features (pure: file in, arrays out)


def _rows(info_channels: int, channel_map: str) -> tuple[str, list[int] | None]:
    cmap = audio.ChannelMap.from_text(channel_map)
    if cmap.mixed:
        return "mixed", None
    return "stereo", [cmap.caller, cmap.agent]


def features_of(path: str | os.PathLike, channel_map: str, *, block_frames: int = 1 << 18) -> conversation.Features:
    """Per-frame band energy and pitch of a recording, read in blocks (memory grows only with the frame count).

    Band energy of 32 ms frames every 20 ms, pitch (YIN) every 80 ms on
    frames louder than -45 dBFS. Measured: about 0.03 s per minute of stereo
    on one core (bench/bench_analysis.py).

    Parameters
    ----------
    path : path
        Any file soundfile reads; GSM 6.10 WAV is read sequentially.
    channel_map : str
        As stored: ``mixed`` or ``caller=N,agent=M``.
    """
    from .anonymize._f0 import VOICED_MAX, frame_geometry, yin_frames

    with sf.SoundFile(audio.fs_path(path)) as f:
        sr, n_ch, frames_total = f.samplerate, f.channels, f.frames
        layout, rows = _rows(n_ch, channel_map)
        win = int(round(FRAME_S * sr))
        hop = int(round(conversation.HOP_S * sr))
        nfft = 1 << int(np.ceil(np.log2(win)))
        window = np.hanning(win + 2)[1:-1].astype(np.float32)
        norm = 2.0 / (nfft * float(np.sum(window**2)))
        freqs = np.fft.rfftfreq(nfft, 1 / sr)
        band = (freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], 0.45 * sr))
        yin_len, _ = frame_geometry(sr)
        f0_every = 4  # pitch every 4th frame (80 ms: plenty for medians), held until the next
        C = 1 if rows is None else 2
        energy: list[list[np.ndarray]] = [[] for _ in range(C)]
        pitch: list[list[np.ndarray]] = [[] for _ in range(C)]
        carry = np.zeros((C, 0), dtype=np.float32)
        done = 0  # frames produced so far
        while True:
            block = f.read(block_frames, dtype="float32", always_2d=True)
            if not len(block):
                break
            chans = block.mean(axis=1, keepdims=True).T if rows is None else block[:, rows].T
            buf = np.concatenate([carry, chans], axis=1)
            need = max(win, yin_len)
            count = 0 if buf.shape[1] < need else 1 + (buf.shape[1] - need) // hop
            if count:
                for c in range(C):
                    fr = np.lib.stride_tricks.sliding_window_view(buf[c], win)[::hop][:count]
                    X = np.fft.rfft(fr * window, nfft, axis=1)
                    p = (X.real**2 + X.imag**2)[:, band].sum(axis=1) * norm
                    e = (10 * np.log10(p + 1e-12)).astype(np.float32)
                    energy[c].append(e)
                    f0 = np.full(count, np.nan, dtype=np.float32)
                    # pitch on every other frame, loud frames only; frame i's yin window starts where its own does
                    idx = np.arange(count)
                    idx = idx[((done + idx) % f0_every == 0) & (e > F0_MIN_DB)]
                    if len(idx):
                        yf = np.lib.stride_tricks.sliding_window_view(buf[c], yin_len)[::hop][:count][idx]
                        est, ap = yin_frames(yf, sr=sr)
                        ok = ap < VOICED_MAX
                        f0[idx[ok]] = est[ok]
                    pitch[c].append(f0)
            carry = buf[:, count * hop:]
            done += count
    E = np.concatenate([np.concatenate(e) if e else np.zeros(0, np.float32) for e in energy]).reshape(C, -1)
    P = np.concatenate([np.concatenate(p) if p else np.zeros(0, np.float32) for p in pitch]).reshape(C, -1)
    # hold each pitch estimate for the frames after it, up to the next one
    held = P.copy()
    for k in range(1, f0_every):
        held[:, k::f0_every] = np.where(np.isnan(P[:, k::f0_every]), P[:, 0:-k:f0_every][:, :held[:, k::f0_every].shape[1]],
                                        P[:, k::f0_every])
    return conversation.Features(energy_db=E, f0=held, channels=layout, duration_s=frames_total / sr)


def analyze_path(job: dict) -> dict:
    """Analyse one file (a pure task: runs in a pool or on a Dask worker); returns numbers or the error.

    ``job``: ``{"recording_id", "path", "channel_map", "long_silence_s", "weights"}``.
    """
    try:
        feats = features_of(job["path"], job["channel_map"])
        result = conversation.analyze(feats, long_silence_s=job["long_silence_s"], weights=job["weights"])
    except (sf.SoundFileError, OSError, ValueError) as e:
        return {"recording_id": job["recording_id"], "error": f"{type(e).__name__}: {e}"}
    result["recording_id"] = job["recording_id"]
    return result


# ---------------------------------------------------------------- settings


def settings(home: Home) -> dict:
    """``long_silence_s`` and the difficulty weights from ``config.json`` (validated)."""
    value = home.config.get("long_silence_s", 5.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 600:
        raise BadInput(f"long_silence_s in {home.root / 'config.json'} must be seconds from 1 to 600; it is {value!r}")
    try:
        weights = conversation.weights_from(home.config)
    except ValueError as e:
        raise BadInput(f"{e} (in {home.root / 'config.json'})") from None
    return {"long_silence_s": float(value), "weights": weights}


# ---------------------------------------------------------------- batches


def _store(db: Database, results: list[dict]) -> None:
    now = now_iso()
    with transaction(db):
        for r in results:
            rid = r["recording_id"]
            if not db.execute("SELECT 1 FROM recordings WHERE id = ?", [rid]).fetchone():
                continue  # erased or purged while it was being analysed: nothing may be kept about it
            db.execute("DELETE FROM moments WHERE recording_id = ?", [rid])
            db["analyses"].upsert({
                "recording_id": rid, "version": r["version"], "analyzed_at": now, "channels": r["channels"],
                "difficulty": r["difficulty"], "signals": json.dumps(r["signals"]),
                "reasons": json.dumps(r["reasons"]), "pauses": json.dumps(r["pauses"]),
            }, pk="recording_id")
            db["moments"].insert_all([
                {"recording_id": rid, "kind": m["kind"], "party": m["party"], "start_s": m["start_s"],
                 "end_s": m["end_s"], "strength": m["strength"],
                 "detail": json.dumps({k: v for k, v in m.items()
                                       if k not in ("kind", "party", "start_s", "end_s", "strength")})}
                for m in r["moments"]])


def _run_local(jobs: list[dict], workers: int, on_result: Callable[[dict], None]) -> None:
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            on_result(analyze_path(j))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for r in pool.map(analyze_path, jobs, chunksize=max(1, min(32, len(jobs) // (4 * workers) or 1))):
            on_result(r)


def _analyze_batch(jobs: list[dict]) -> list[dict]:
    """One Dask task: several calls, with glibc's allocator left to reuse memory while they run."""
    with _reusing_freed_memory():
        return [analyze_path(j) for j in jobs]


@contextmanager
def _reusing_freed_memory():
    """Let glibc keep freed memory for reuse during a batch, and hand it back after.

    Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so idle
    workers return memory to the system. That also pins the mmap threshold at
    128 KiB, so every array of a block is a fresh ``mmap`` with zeroed pages:
    measured here, it doubles the CPU time of an analysis (38 -> 78 ms for a
    one-minute call). Outside such a process (no variable set) nothing changes.
    """
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if trim else None
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, 128 << 10)
        try:
            libc.mallopt(M_TRIM_THRESHOLD, int(trim))
        except ValueError:
            libc.mallopt(M_TRIM_THRESHOLD, 128 << 10)
        libc.malloc_trim(0)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt(3) parameters


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - musl has no malloc_trim
        return libc
    except (OSError, AttributeError):
        return None


def _dask_threads(client) -> int:
    try:
        return sum(client.nthreads().values()) or 1
    except Exception:  # noqa: BLE001 - only a batch-size hint
        return 1


def _run_dask(jobs: list[dict], scheduler: str, on_result: Callable[[dict], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency; this is for a broken install
        raise BadInput("--scheduler needs the 'distributed' package (Dask)") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise ClipkitError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    try:
        # a task per batch of calls, not per call: one call's analysis takes tens of milliseconds,
        # the same order as the scheduler's and the client's overhead for one task
        size = max(1, min(DASK_BATCH, len(jobs) // (4 * max(1, _dask_threads(client))) or 1))
        batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        futures = client.map(_analyze_batch, batches, pure=False)
        for fut in as_completed(futures):
            for r in fut.result():
                on_result(r)
            fut.release()
    finally:
        client.close()


def analyze_imported(db: Database, home: Home, results: Sequence) -> dict:
    """Analyse the calls an import just added (``ImportResult`` s; errors and duplicates skipped).

    A few calls are analysed in this process, more than 20 on every core, so
    the calls list is ranked the moment they arrive. Returns what
    :func:`analyze_recordings` returns (``{"analyzed": []}`` when nothing is new).
    """
    new = [r.id for r in results if r is not None and not r.error and not r.duplicate]
    if not new:
        return {"analyzed": []}
    return analyze_recordings(db, home, new, workers=None if len(new) > 20 else 1)


def analyze_recordings(
    db: Database, home: Home, recording_ids: Sequence[int] = (), *, all_: bool = False, force: bool = False,
    workers: int | None = None, scheduler: str | None = None, progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Analyse recordings and store the results.

    Parameters
    ----------
    recording_ids : sequence of int
        Recordings to analyse; empty: every recording without a current
        analysis (``all_``: every recording).
    force : bool
        Analyse again even when the stored analysis is current.
    workers : int, optional
        Local processes (default: every core); ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask distributed scheduler (default ``$CLIPKIT_DASK_SCHEDULER``).

    Returns
    -------
    dict
        ``{"analyzed": [{"recording_id", "difficulty", "signals", "reasons"}], "skipped": [{"recording_id", "why"}]}``.

    Raises
    ------
    NotFound
        For an unknown recording id (erased or purged ones included), before anything is analysed.
    """
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise BadInput(f"--workers {workers!r} must be 1 or more")
    conf = settings(home)
    ids = [int(i) for i in recording_ids]
    for rid in ids:
        if not db.execute("SELECT 1 FROM recordings WHERE id = ?", [rid]).fetchone():
            raise NotFound(f"no recording with id {rid} (never imported, or erased or purged since)")
    if ids:
        rows = [library.get_recording(db, rid) for rid in dict.fromkeys(ids)]
    else:
        rows = list(db.query("SELECT * FROM recordings ORDER BY id"))
    version = conversation.ANALYZER_VERSION
    current = {r[0] for r in db.execute("SELECT recording_id FROM analyses WHERE version = ?", [version])}
    jobs, skipped = [], []
    for rec in rows:
        if rec["id"] in current and not force:
            skipped.append({"recording_id": rec["id"], "why": f"its analysis is current ({version})"})
            continue
        path = library.recording_path(home, rec)
        if not path.exists():
            skipped.append({"recording_id": rec["id"], "why": "its audio is missing from the store"})
            continue
        jobs.append({"recording_id": rec["id"], "path": str(path), "channel_map": rec["channel_map"], **conf})
    analyzed: list[dict] = []
    pending: list[dict] = []
    total = len(jobs)

    def on_result(r: dict) -> None:
        if "error" in r:
            skipped.append({"recording_id": r["recording_id"], "why": f"the audio cannot be analysed ({r['error']})"})
        else:
            pending.append(r)
            analyzed.append({"recording_id": r["recording_id"], "difficulty": r["difficulty"],
                             "signals": r["signals"], "reasons": r["reasons"]})
        if len(pending) >= WRITE_BATCH:
            _store(db, pending)
            pending.clear()
        if progress:
            progress(len(analyzed) + sum(1 for s in skipped if "cannot be analysed" in s["why"]), total)

    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if jobs:
        if scheduler:
            _run_dask(jobs, scheduler, on_result)
        else:
            _run_local(jobs, workers or os.cpu_count() or 1, on_result)
    if pending:
        _store(db, pending)
    analyzed.sort(key=lambda r: r["recording_id"])
    skipped.sort(key=lambda r: r["recording_id"])
    return {"analyzed": analyzed, "skipped": skipped}


# ---------------------------------------------------------------- reading results


def _decode(row: dict) -> dict:
    for k in ("signals", "reasons"):
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def analysis_of(db: Database, recording_id: int) -> dict | None:
    """The stored analysis of a recording (with ``stale`` when an older analyzer made it), or None."""
    rows = list(db.query("SELECT * FROM analyses WHERE recording_id = ?", [recording_id]))
    if not rows:
        return None
    row = _decode(rows[0])
    row["stale"] = row["version"] != conversation.ANALYZER_VERSION
    return row


def moments_of(db: Database, recording_id: int, *, kind: str | None = None) -> dict:
    """``{"recording_id", "channels", "moments": [...]}``, sorted by start.

    Raises
    ------
    NotFound
        For an unknown recording, or one not analysed yet.
    BadInput
        For an unknown kind.
    """
    if kind is not None and kind not in conversation.KINDS:
        raise BadInput(f"--kind {kind!r} is not one of {', '.join(conversation.KINDS)}")
    library.get_recording(db, recording_id)  # NotFound when erased or unknown
    found = analysis_of(db, recording_id)
    if found is None:
        raise NotFound(f"recording {recording_id} has not been analysed yet; run 'clipkit analyze {recording_id}'")
    sql = "SELECT kind, party, start_s, end_s, strength, detail FROM moments WHERE recording_id = ?"
    params: list = [recording_id]
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    out = []
    for r in db.query(sql + " ORDER BY start_s, id", params):
        detail = json.loads(r.pop("detail") or "{}")
        out.append({**r, **detail})
    return {"recording_id": recording_id, "channels": found["channels"], "moments": out}


SORTS = ("difficulty", "recorded", "id")


def ranked(
    db: Database, home: Home, *, sort: str = "id", agent: str | None = None, min_difficulty: float | None = None,
    moment: str | None = None, no_clips: bool = False, since: str | None = None, until: str | None = None,
    limit: int = 100, offset: int = 0, agent_ref: str | None = None,
) -> tuple[list[dict], int]:
    """Recordings with their analysis, filtered and sorted (hardest first for ``difficulty``), and the total.

    Rows carry ``difficulty`` (None until analysed), ``reasons``, ``signals``,
    ``moment_kinds`` and ``clip_count``; never an identifier.

    Raises
    ------
    BadInput
        For an unknown sort or moment kind, a negative limit/offset, a bad time or difficulty.
    """
    if sort not in SORTS:
        raise BadInput(f"--sort {sort!r} is not one of {', '.join(SORTS)}")
    if moment is not None and moment not in conversation.KINDS:
        raise BadInput(f"--moment {moment!r} is not one of {', '.join(conversation.KINDS)}")
    if limit < 0 or offset < 0:
        raise BadInput(f"--limit {limit} and --offset {offset} must not be negative")
    where, params = [], []
    if agent is not None:
        try:
            row = parties.lookup(db, home.secret(), agent, region=home.config["phone_region"])
            where.append("r.agent_ref = ?")
            params.append(row["ref"])
        except NotFound:
            return [], 0
    if agent_ref is not None:
        where.append("r.agent_ref = ?")
        params.append(agent_ref)
    if min_difficulty is not None:
        try:
            md = float(min_difficulty)
        except (TypeError, ValueError):
            raise BadInput(f"--min-difficulty {min_difficulty!r} must be a number from 0 to 100") from None
        if not 0 <= md <= 100:
            raise BadInput(f"--min-difficulty {min_difficulty!r} must be a number from 0 to 100")
        where.append("a.difficulty >= ?")
        params.append(md)
    if moment is not None:
        where.append("EXISTS (SELECT 1 FROM moments m WHERE m.recording_id = r.id AND m.kind = ?)")
        params.append(moment)
    if no_clips:
        where.append("NOT EXISTS (SELECT 1 FROM clips c WHERE c.recording_id = r.id)")
    from .db import utc_iso

    for text, op, name in ((since, ">=", "--since"), (until, "<", "--until")):
        if text:
            where.append(f"julianday(r.recorded_at) {op} julianday(?)")
            params.append(utc_iso(text, name=name))
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    order = {"difficulty": "a.difficulty IS NULL, a.difficulty DESC, r.id DESC",
             "recorded": "julianday(r.recorded_at) DESC, r.id DESC", "id": "r.id DESC"}[sort]
    base = f"FROM recordings r LEFT JOIN analyses a ON a.recording_id = r.id{sql_where}"
    total = db.execute(f"SELECT count(*) {base}", params).fetchone()[0]
    rows = list(db.query(
        f"""SELECT r.*, a.difficulty, a.reasons, a.signals, a.version AS analysis_version,
                   (SELECT count(*) FROM clips c WHERE c.recording_id = r.id) AS clip_count,
                   (SELECT json_group_array(DISTINCT kind) FROM moments m WHERE m.recording_id = r.id) AS moment_kinds
            {base} ORDER BY {order} LIMIT ? OFFSET ?""", params + [min(limit, 2**62), min(offset, 2**62)]))
    for r in rows:
        r["reasons"] = json.loads(r["reasons"]) if r["reasons"] else []
        r["signals"] = json.loads(r["signals"]) if r["signals"] else None
        r["moment_kinds"] = sorted(json.loads(r["moment_kinds"] or "[]"))
        r["analysis_stale"] = r["analysis_version"] not in (None, conversation.ANALYZER_VERSION)
    return rows, total


def cut_around(db: Database, recording_id: int, *, start_s: float, end_s: float,
               context_s: float = 3.0) -> tuple[float, float]:
    """A clip range around a moment: ``context_s`` on each side, snapped to the nearest pauses (see :func:`snap_to_pauses`).

    Uses the pauses stored with the analysis; without one, the plain padded range.
    """
    rec = library.get_recording(db, recording_id)
    row = db.execute("SELECT pauses FROM analyses WHERE recording_id = ?", [recording_id]).fetchone()
    pauses = json.loads(row[0]) if row and row[0] else []
    return snap_to_pauses(pauses, start_s=start_s, end_s=end_s, duration_s=float(rec["duration_s"]),
                          context_s=context_s)


def snap_to_pauses(pauses: Iterable[tuple[float, float]], *, start_s: float, end_s: float, duration_s: float,
                   context_s: float = 3.0, reach_s: float = 2.0) -> tuple[float, float]:
    """Pad ``[start_s, end_s]`` by ``context_s`` and move each edge to the middle of the nearest pause within ``reach_s``."""
    a, b = max(0.0, start_s - context_s), min(duration_s, end_s + context_s)
    mids = [((p + q) / 2, p, q) for p, q in pauses]

    def snap(t: float, *, before: float | None = None, after: float | None = None) -> float:
        best = None
        for m, p, q in mids:
            if before is not None and m > before:
                continue
            if after is not None and m < after:
                continue
            if abs(m - t) <= reach_s and (best is None or abs(m - t) < abs(best - t)):
                best = m
        return t if best is None else best

    a2 = snap(a, before=start_s)
    b2 = snap(b, after=end_s)
    return round(max(0.0, a2), 2), round(min(duration_s, b2), 2)
