"""What happens in a call, from the audio alone: who speaks when, the moments worth cutting, how hard it is.

Pure rules over per-frame features (:class:`Features`, made from a file by
:mod:`clipkit.analysis`); nothing here reads a file, a database or a clock,
so every rule is testable on generated arrays and the same function runs in
a process pool or on a Dask worker.

Speech activity (per party, stereo)
    Band energy (250-3800 Hz) of 32 ms frames every 20 ms against the
    channel's own noise floor (its 10th percentile), with hysteresis (on at
    +10 dB, off at +6 dB) and gaps under 0.2 s filled. The other party's echo
    — real lines carry it 20-35 dB down — is rejected by measuring the
    coupling (median level difference while only the other side is loud) and
    counting a frame as own speech only when it is at least
    a margin (the echo's own spread, measured, plus :data:`ECHO_MARGIN_DB`)
    above the echo the other channel explains. A
    stretch of activity longer than 4 s without speech's syllable rhythm
    is music or a tone (hold music, a
    dial tone): it is not speech, and counted as silence, flagged as music.
    "Without syllable rhythm": in speech a fifth of the frames or more dip
    10 dB under the peaks; in music and tones almost none do.

Moments (stable kind codes; ``strength`` in the unit named)
    ``overtalk``       both parties speak at once for >= 1 s; ``party`` is the one
                       who started second (the interrupter); a backchannel under
                       0.6 s never counts. strength: seconds of overlap.
    ``long_silence``   nobody speaks for >= ``long_silence_s`` (5 s); ``music``
                       says how much of it was music/tone. strength: seconds.
    ``raised_voice``   a party's loudness over 1 s windows of their own speech is
                       >= 8 dB above their own median for >= 1 s (relative to the
                       speaker, never absolute: a loud line is not a shouting
                       caller). strength: dB above the median, plus half the F0
                       rise in semitones when the pitch went up too.
    ``late_escalation`` the first half was calm, raised voice and overtalk
                       concentrate in the last third, and a voice does rise there
                       (overtalk alone is no escalation); the moment spans
                       the escalating stretch. strength: the share of escalation
                       seconds in the last third (0-1).

Mono mixed recordings measure what one channel can: silences and loudness
rises (``party`` null); overtalk is not claimed (``channels: "mixed"``).

The difficulty score (0-100) is a weighted sum of saturating sub-scores of
the signals; the weights live in :data:`DEFAULT_WEIGHTS` and can be changed
in ``config.json`` (``difficulty_weights``). Each sub-score that counts comes
with a reason in plain words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ANALYZER_VERSION = "conversation-1"
HOP_S = 0.02
KINDS = ("overtalk", "long_silence", "raised_voice", "late_escalation")

FLOOR_PERCENTILE = 10
DIGITAL_SILENCE_DB = -100.0
ON_DB, OFF_DB = 10.0, 6.0
MIN_LEVEL_DB = -65.0  # nothing quieter than this is speech, whatever the floor
FILL_GAP_S = 0.2
MIN_SEGMENT_S = 0.08
ECHO_MARGIN_DB = 3.0  # own speech must clear the echo's spread by this much
ECHO_MARGIN_MIN_DB, ECHO_MARGIN_MAX_DB = 5.0, 12.0
OWN_SHARE = 0.5  # a stretch of activity is own speech when at least this share of it is clear of the echo
ECHO_LOOKBACK_S = 0.15  # a frame of the other side still echoes this long after it
ECHO_MAX_DELAY_S = 0.2  # line echo delays looked for
ECHO_MAX_COUPLING_DB = -12.0  # channels coupled more tightly than this are not echo, but one signal twice
MUSIC_MIN_S = 4.0
MUSIC_DIP_DB = 10.0
MUSIC_MAX_DIPS = 0.06
OVERTALK_MIN_S = 1.0
BACKCHANNEL_S = 0.6
OVERTALK_MERGE_S = 0.3
TURN_GAP_S = 0.5
RAISED_DB = 8.0
RAISED_MIN_S = 1.0
LOUD_WINDOW_S = 1.0
LOUD_HOP_S = 0.25
LOUD_MIN_SPEECH = 0.3  # share of a window that must be the party's speech to measure it
LATE_SHARE = 0.5  # at least this share of the escalation seconds in the last third, a calm first half
MIN_WINDOWS = 8  # a party heard for less has no "usual" level to rise above
QUIET_DB = 8.0  # a party this far below the other is hard to hear
QUIET_SNR_DB = 12.0
RATE_SLOPE, RATE_OFFSET = 1.70, -1.50  # energy peaks/s -> syllables/s (bench/bench_moments.py)
FAST_SYL_S, SLOW_SYL_S = 6.5, 3.0

#: weight of each sub-score in the difficulty (sum 100); config.json may override any of them
DEFAULT_WEIGHTS = {
    "raised_voice": 25.0,   # seconds of raised voice, saturating at 6 s
    "overtalk": 20.0,       # overtalk moments, saturating at 4
    "late_escalation": 15.0,
    "long_silence": 15.0,   # seconds of long silences in all, saturating at 20 s
    "non_talk": 5.0,        # share of the call nobody speaks, from 25 % to 60 %
    "quiet_party": 10.0,    # a party hard to hear
    "speaking_rate": 5.0,   # someone very fast (> 6.5 syl/s) or very slow (< 3 syl/s), estimated
    "length": 5.0,          # calls over 3 minutes, saturating at 15
}


@dataclass
class Features:
    """Per-frame features of one recording (frames every :data:`HOP_S` seconds).

    Parameters
    ----------
    energy_db : np.ndarray, shape (channels, T), float32
        Band energy (250-3800 Hz) of each 32 ms frame, dB re full scale.
    f0 : np.ndarray, shape (channels, T), float32
        Fundamental frequency in Hz, NaN where unvoiced or not measured.
    channels : str
        ``"stereo"`` (row 0 caller, row 1 agent) or ``"mixed"`` (one row).
    duration_s : float
    """

    energy_db: np.ndarray
    f0: np.ndarray
    channels: str
    duration_s: float
    parties: tuple = field(init=False)

    def __post_init__(self):
        self.energy_db = np.asarray(self.energy_db, dtype=np.float32)
        self.f0 = np.asarray(self.f0, dtype=np.float32)
        if self.energy_db.ndim != 2 or self.f0.shape != self.energy_db.shape:
            raise ValueError("energy_db and f0 must both be (channels, frames)")
        want = {"stereo": 2, "mixed": 1}.get(self.channels)
        if want is None or self.energy_db.shape[0] != want:
            raise ValueError(f"channels {self.channels!r} needs {want} rows, got {self.energy_db.shape[0]}")
        self.parties = ("caller", "agent") if self.channels == "stereo" else (None,)


# ---------------------------------------------------------------- runs


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end)]`` frame ranges where ``mask`` is true (end exclusive)."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[0::2].tolist(), d[1::2].tolist()))


def _mask(runs, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for a, b in runs:
        out[a:b] = True
    return out


def _fill_gaps(mask: np.ndarray, gap: int) -> np.ndarray:
    runs = _runs(mask)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return _mask(merged, len(mask))


def _frames(seconds: float) -> int:
    return max(1, int(round(seconds / HOP_S)))


def _t(frame: int) -> float:
    return round(frame * HOP_S, 2)


def _round(x: float) -> float:
    return round(float(x), 2)


# ---------------------------------------------------------------- speech activity


def _running_max(x: np.ndarray, *, back: int, ahead: int) -> np.ndarray:
    """``max(x[i - back : i + ahead + 1])`` for every i (edges padded with -inf)."""
    w = back + ahead + 1
    pad = np.concatenate([np.full(back, -np.inf, dtype=np.float64), x.astype(np.float64),
                          np.full(ahead, -np.inf, dtype=np.float64)])
    return np.lib.stride_tricks.sliding_window_view(pad, w).max(axis=1)


def _hysteresis(e: np.ndarray, on: float, off: float) -> np.ndarray:
    """Frames above ``off`` in runs that reach ``on`` somewhere."""
    low = e > off
    out = np.zeros(len(e), dtype=bool)
    for a, b in _runs(low):
        if (e[a:b] > on).any():
            out[a:b] = True
    return out


def noise_floor(e: np.ndarray) -> float:
    """A channel's noise floor: the 10th percentile of its frame energies (dB), digital silence left out.

    A muted stretch (hold, a dropout) is exact zeros; counted, it would put
    the floor at -120 dB and make the line's own hiss look like speech.
    """
    live = e[np.isfinite(e) & (e > DIGITAL_SILENCE_DB)]
    return float(np.percentile(live, FLOOR_PERCENTILE)) if len(live) else -120.0


def _raw_activity(e: np.ndarray, floor: float) -> np.ndarray:
    on = max(floor + ON_DB, MIN_LEVEL_DB)
    off = max(floor + OFF_DB, MIN_LEVEL_DB - 4)
    return _hysteresis(e, on, off)


def _delayed(x: np.ndarray, lag: int, *, tol: int = 1) -> np.ndarray:
    """``max(x[i - lag - tol : i - lag + tol + 1])``: the other side's level ``lag`` frames ago, +-``tol``."""
    shifted = np.concatenate([np.full(lag, -np.inf, dtype=np.float64), x.astype(np.float64)])[: len(x)]
    return _running_max(shifted, back=tol, ahead=tol)


def echo_model(e_self: np.ndarray, e_other: np.ndarray, other_floor: float) -> dict | None:
    """How this channel follows the other while only the other speaks: delay, coupling and spread, or None.

    The echo of a line is the other voice, attenuated and late. Over frames
    where the other side speaks at its usual level or louder and clearly
    dominates this channel, the delay (0-200 ms) is the one that makes this
    channel follow the other most steadily, the coupling the median level
    difference at that delay, and the spread (90th minus 50th percentile)
    how far the echo wanders around it. None when the other side is never
    loud, or the two are coupled more tightly than an echo ever is (then it
    is one signal on both channels, and rejecting "echo" would erase speech).
    """
    active = e_other > other_floor + 20.0
    if active.sum() < _frames(1.0):
        return None
    dominated = active & (e_other >= np.median(e_other[active])) & (e_other - e_self >= -ECHO_MAX_COUPLING_DB)
    if dominated.sum() < _frames(1.0):
        return None
    best = None
    for lag in range(0, _frames(ECHO_MAX_DELAY_S) + 1):
        pred = _delayed(e_other, lag)
        ok = dominated & np.isfinite(pred)
        if ok.sum() < _frames(1.0):
            continue
        d = e_self[ok] - pred[ok]
        c = float(np.median(d))
        spread = float(np.percentile(d, 90) - c)
        if best is None or spread < best["spread"]:
            best = {"lag": lag, "coupling": c, "spread": spread}
    if best is None or best["coupling"] > ECHO_MAX_COUPLING_DB:
        return None
    return best


def _music(e: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Active stretches with no syllable rhythm: >= 4 s without a pause, and hardly ever a dip.

    Speech, even fluent, dips 10 dB or more below its peaks between
    syllables and words in a fifth of its frames (energy averaged over
    100 ms); hold music and tones almost never do (measured: speech runs
    0.12-0.66, a chord loop 0.03).
    """
    out = np.zeros(len(e), dtype=bool)
    k = _frames(0.1)
    for a, b in _runs(_fill_gaps(active, _frames(0.15))):
        if b - a < _frames(MUSIC_MIN_S):
            continue
        p = 10.0 ** (e[a:b].astype(np.float64) / 10.0)
        sm = 10 * np.log10(np.convolve(p, np.ones(k) / k, mode="same") + 1e-15)
        dips = float(np.mean(sm < np.percentile(sm, 90) - MUSIC_DIP_DB))
        if dips < MUSIC_MAX_DIPS:
            out[a:b] = True
    return out


@dataclass
class Activity:
    """Speech of each party, frame by frame (rows as in :class:`Features`), and music/tone frames."""

    speech: np.ndarray  # (channels, T) bool
    music: np.ndarray  # (T,) bool, any channel
    floor_db: list[float]
    coupling_db: list[float | None]


def speech_activity(f: Features) -> Activity:
    """Who speaks when (see the module docstring)."""
    e = f.energy_db
    C, T = e.shape
    floors = [noise_floor(e[c]) for c in range(C)]
    raw = [_raw_activity(e[c], floors[c]) for c in range(C)]
    coupling: list[float | None] = [None] * C
    own = [r.copy() for r in raw]
    if C == 2:
        for c, o in ((0, 1), (1, 0)):
            k = echo_model(e[c], e[o], floors[o])
            coupling[c] = None if k is None else round(k["coupling"], 1)
            if k is not None:
                # what the other side's voice (at the echo's delay) explains on this channel, plus a
                # margin over the echo's own spread: that is echo, not speech
                margin = float(np.clip(k["spread"] + ECHO_MARGIN_DB, ECHO_MARGIN_MIN_DB, ECHO_MARGIN_MAX_DB))
                explained = (_delayed(e[o], k["lag"]) + k["coupling"] + margin) >= e[c]
                busy = _running_max(raw[o].astype(np.float32), back=_frames(ECHO_LOOKBACK_S), ahead=0) > 0
                echo = explained & busy
                # decided per stretch, not per frame: a stretch of this channel's activity is its own
                # speech when most of it stands clear of the echo (single frames scatter around it)
                keep = np.zeros(T, dtype=bool)
                for a_, b_ in _runs(raw[c]):
                    if np.mean(~echo[a_:b_]) >= OWN_SHARE:
                        keep[a_:b_] = ~echo[a_:b_] | ~busy[a_:b_]
                own[c] = keep
    music = np.zeros(T, dtype=bool)
    speech = np.zeros((C, T), dtype=bool)
    for c in range(C):
        m = _music(e[c], own[c])
        music |= m
        s = own[c] & ~m
        s = _fill_gaps(s, _frames(FILL_GAP_S))
        s = _mask([(a, b) for a, b in _runs(s) if b - a >= _frames(MIN_SEGMENT_S)], T)
        speech[c] = s
    return Activity(speech=speech, music=music, floor_db=floors, coupling_db=coupling)


# ---------------------------------------------------------------- moments


def _segment_start(mask: np.ndarray, i: int) -> int:
    """Start of the run of ``mask`` that contains frame ``i``."""
    j = i
    while j > 0 and mask[j - 1]:
        j -= 1
    return j


def overtalk(act: Activity, f: Features) -> list[dict]:
    if f.channels != "stereo":
        return []
    # turns, not words: a speaker's pauses under TURN_GAP_S belong to their turn, so someone talking
    # through another's word gaps is talking over them
    turns = [_fill_gaps(row, _frames(TURN_GAP_S)) for row in act.speech]
    a, b = turns
    both = _fill_gaps(a & b, _frames(OVERTALK_MERGE_S))
    out = []
    for s, e in _runs(both):
        # the region comes from turns; what counts is how long both really speak at once in it
        overlap = int((act.speech[0][s:e] & act.speech[1][s:e]).sum())
        if overlap < _frames(OVERTALK_MIN_S):
            continue
        first = s + int(np.argmax(a[s:e] & b[s:e]))
        sa, sb = _segment_start(a, first), _segment_start(b, first)
        later = 0 if sa > sb else 1  # the one whose turn began last cut in
        # a short backchannel ("mm", "ja") of the later one is no overtalk
        seg_end = first
        row = turns[later]
        while seg_end < len(row) and row[seg_end]:
            seg_end += 1
        if seg_end - max(sa, sb) < _frames(BACKCHANNEL_S):
            continue
        out.append({"kind": "overtalk", "party": f.parties[later], "start_s": _t(s), "end_s": _t(e),
                    "strength": round(overlap * HOP_S, 2)})
    return out


def long_silences(act: Activity, f: Features, *, min_s: float) -> list[dict]:
    anyone = act.speech.any(axis=0)
    out = []
    for s, e in _runs(~anyone):
        if e - s >= _frames(min_s):
            music = float(act.music[s:e].mean())
            out.append({"kind": "long_silence", "party": None, "start_s": _t(s), "end_s": _t(e),
                        "strength": round((e - s) * HOP_S, 2), "music": round(music, 2)})
    return out


def _loudness(e: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loudness (dB, mean power of the speech frames) of 1 s windows every 0.25 s, and the window starts."""
    w, h = _frames(LOUD_WINDOW_S), _frames(LOUD_HOP_S)
    T = len(e)
    if T < w:
        return np.zeros(0), np.zeros(0, dtype=int)
    p = np.where(speech, 10.0 ** (e.astype(np.float64) / 10.0), 0.0)
    cp = np.concatenate([[0.0], np.cumsum(p)])
    cs = np.concatenate([[0], np.cumsum(speech.astype(np.int64))])
    starts = np.arange(0, T - w + 1, h)
    n = cs[starts + w] - cs[starts]
    level = np.full(len(starts), np.nan)
    ok = n >= LOUD_MIN_SPEECH * w
    level[ok] = 10 * np.log10((cp[starts + w] - cp[starts])[ok] / n[ok])
    return level, starts


def raised_voice(act: Activity, f: Features) -> list[dict]:
    out = []
    w = _frames(LOUD_WINDOW_S)
    for c, party in enumerate(f.parties):
        speech = act.speech[c]
        level, starts = _loudness(f.energy_db[c], speech)
        measured = level[np.isfinite(level)]
        if len(measured) < MIN_WINDOWS:
            continue
        median = float(np.median(measured))
        up = np.isfinite(level) & (level >= median + RAISED_DB)
        raised = np.zeros(len(speech), dtype=bool)
        for i in np.flatnonzero(up):
            raised[starts[i]:starts[i] + w] = True
        raised &= _fill_gaps(speech, _frames(0.3))
        f0_all = f.f0[c][speech & np.isfinite(f.f0[c])]
        f0_med = float(np.median(f0_all)) if len(f0_all) > 20 else None
        for s, e in _runs(_fill_gaps(raised, _frames(0.5))):
            if (raised[s:e]).sum() < _frames(RAISED_MIN_S):
                continue
            inside = np.isfinite(level) & (starts >= s - w) & (starts < e)
            excess = float(np.nanmax(level[inside]) - median) if inside.any() else RAISED_DB
            rise = 0.0
            f0_here = f.f0[c][s:e][np.isfinite(f.f0[c][s:e])]
            if f0_med and len(f0_here) > 5:
                rise = max(0.0, 12 * math.log2(float(np.median(f0_here)) / f0_med))
            out.append({"kind": "raised_voice", "party": party, "start_s": _t(s), "end_s": _t(e),
                        "strength": round(excess + 0.5 * rise, 1), "f0_rise_st": round(rise, 1)})
    return out


def late_escalation(events: list[dict], *, duration_s: float) -> list[dict]:
    """One moment when raised voice and overtalk concentrate in the last third of a calm call."""
    esc = [m for m in events if m["kind"] in ("raised_voice", "overtalk")]
    if not esc or duration_s <= 0:
        return []
    cut = 2 * duration_s / 3

    def secs(ms, lo=0.0, hi=math.inf):
        return sum(max(0.0, min(m["end_s"], hi) - max(m["start_s"], lo)) for m in ms)

    total = secs(esc)
    last = secs(esc, cut)
    early = secs(esc, 0.0, duration_s / 2)
    # voices must rise: interruptions alone, however late, are not an escalation
    raised_late = secs([m for m in esc if m["kind"] == "raised_voice"], cut)
    if total < 1.5 or last / total < LATE_SHARE or early > 1.0 or raised_late < 1.0:
        return []
    late = [m for m in esc if m["end_s"] > cut]
    who: dict = {}
    for m in late:
        who[m["party"]] = who.get(m["party"], 0.0) + secs([m], cut)
    party = max(who, key=lambda k: (who[k], k is not None)) if who else None
    return [{"kind": "late_escalation", "party": party, "start_s": round(min(m["start_s"] for m in late), 2),
             "end_s": round(max(m["end_s"] for m in late), 2), "strength": round(last / total, 2)}]


# ---------------------------------------------------------------- signals


def speaking_rate(e: np.ndarray, speech: np.ndarray) -> float | None:
    """Estimated syllables per second of speech, or None under 5 s of speech.

    Peaks of the smoothed energy (>= 3 dB prominent, >= 0.12 s apart) per
    second of speech, mapped to syllables by a line fitted on four TTS voices
    at three known rates (``bench/bench_moments.py``: Spearman 0.85, mean
    error 0.7 syllables/s on the fit itself). A coarse figure, not a count:
    energy peaks merge in fast speech, so fast speakers are underestimated.
    """
    talk = speech.sum() * HOP_S
    if talk < 5.0:
        return None
    k = _frames(0.05)
    sm = np.convolve(np.where(speech, e, -120.0), np.ones(k) / k, mode="same")
    gap = _frames(0.12)
    peaks = 0
    for s, t in _runs(speech):
        seg = sm[s:t]
        if len(seg) < 3:
            continue
        cand = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
        last = -gap
        for i in cand:
            lo = seg[max(0, i - _frames(0.1)):i].min(initial=seg[i])
            hi = seg[i + 1:i + _frames(0.1)].min(initial=seg[i])
            if seg[i] - max(lo, hi) >= 3.0 and i - last >= gap:
                peaks += 1
                last = i
    return round(float(RATE_SLOPE * peaks / talk + RATE_OFFSET), 2)


def signals(f: Features, act: Activity, moments: list[dict]) -> dict:
    """The numbers stored per call (see the module docstring; seconds, dB, counts)."""
    T = f.energy_db.shape[1]
    anyone = act.speech.any(axis=0)
    names = [p or "mixed" for p in f.parties]
    out: dict = {"channels": f.channels, "duration_s": round(f.duration_s, 2)}
    out["talk_s"] = {n: round(float(act.speech[c].sum()) * HOP_S, 2) for c, n in enumerate(names)}
    out["talk_ratio"] = {n: round(float(act.speech[c].mean()), 3) if T else 0.0 for c, n in enumerate(names)}
    ot = [m for m in moments if m["kind"] == "overtalk"]
    out["overtalk_count"] = len(ot) if f.channels == "stereo" else None
    out["overtalk_s"] = round(sum(m["strength"] for m in ot), 2) if f.channels == "stereo" else None
    out["interruptions"] = ({p: sum(1 for m in ot if m["party"] == p) for p in f.parties}
                            if f.channels == "stereo" else None)
    silent = [b - a for a, b in _runs(~anyone)]
    out["longest_silence_s"] = round(max(silent, default=0) * HOP_S, 2)
    out["non_talk_share"] = round(float((~anyone).mean()), 3) if T else 1.0
    out["music_s"] = round(float(act.music.sum()) * HOP_S, 2)
    out["raised_voice_s"] = {n: round(sum(m["end_s"] - m["start_s"] for m in moments
                                          if m["kind"] == "raised_voice" and m["party"] == p), 2)
                             for p, n in zip(f.parties, names)}
    levels, snr = {}, {}
    for c, n in enumerate(names):
        sp = act.speech[c]
        if sp.sum() >= _frames(1.0):
            lv = 10 * math.log10(float(np.mean(10.0 ** (f.energy_db[c][sp].astype(np.float64) / 10))))
            levels[n] = round(lv, 1)
            snr[n] = round(lv - act.floor_db[c], 1)
        else:
            levels[n] = snr[n] = None
    out["level_db"], out["snr_db"] = levels, snr
    quiet = {}
    for c, n in enumerate(names):
        other = [levels[m] for m in names if m != n and levels[m] is not None]
        quiet[n] = bool(levels[n] is not None and ((other and other[0] - levels[n] >= QUIET_DB)
                                                   or (snr[n] is not None and snr[n] < QUIET_SNR_DB)))
    out["quiet"] = quiet
    out["speaking_rate"] = {n: speaking_rate(f.energy_db[c], act.speech[c]) for c, n in enumerate(names)}
    return out


# ---------------------------------------------------------------- difficulty


def weights_from(config: dict | None) -> dict:
    """:data:`DEFAULT_WEIGHTS` with any ``difficulty_weights`` of ``config.json`` on top (validated)."""
    w = dict(DEFAULT_WEIGHTS)
    given = (config or {}).get("difficulty_weights") or {}
    if not isinstance(given, dict):
        raise ValueError(f"difficulty_weights must map names to numbers; it is {given!r}")
    for k, v in given.items():
        if k not in DEFAULT_WEIGHTS:
            raise ValueError(f"difficulty_weights: {k!r} is not one of {', '.join(DEFAULT_WEIGHTS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1000:
            raise ValueError(f"difficulty_weights[{k!r}] must be a number from 0 to 1000; it is {v!r}")
        w[k] = float(v)
    return w


def _sat(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def _mmss(s: float) -> str:
    m, sec = divmod(int(round(s)), 60)
    return f"{m}:{sec:02d}"


def difficulty(sig: dict, moments: list[dict], *, weights: dict | None = None) -> tuple[float, list[str]]:
    """Score 0-100 and the reasons, most weighty first (see :data:`DEFAULT_WEIGHTS`)."""
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    total_w = sum(w.values()) or 1.0
    parts: list[tuple[float, str]] = []

    raised = sig["raised_voice_s"]
    loudest = max(raised, key=lambda k: raised[k]) if raised else None
    if loudest and raised[loudest] > 0:
        who = "the caller's" if loudest == "caller" else "the agent's" if loudest == "agent" else "a"
        parts.append((w["raised_voice"] * _sat(raised[loudest], 0, 6),
                      f"{who} voice is raised for {raised[loudest]:.0f} s"))
    if sig.get("overtalk_count"):
        inter = sig["interruptions"] or {}
        top = max(inter, key=lambda k: inter[k]) if inter else None
        text = (f"{'caller' if top == 'caller' else 'agent'} talks over the "
                f"{'agent' if top == 'caller' else 'caller'} {inter[top]}×") if top else ""
        if top and inter[top] < sig["overtalk_count"]:
            text += f" ({sig['overtalk_count']}× overtalk in all)"
        parts.append((w["overtalk"] * _sat(sig["overtalk_count"], 0, 4), text))
    late = [m for m in moments if m["kind"] == "late_escalation"]
    if late:
        who = {"caller": "the caller", "agent": "the agent"}.get(late[0]["party"], "the call")
        parts.append((w["late_escalation"],
                      f"{who} escalates at the end (from {_mmss(late[0]['start_s'])})"))
    silences = [m for m in moments if m["kind"] == "long_silence"]
    if silences:
        total = sum(m["strength"] for m in silences)
        text = (f"{silences[0]['strength']:.0f} s silence" if len(silences) == 1 else
                f"{len(silences)} long silences ({total:.0f} s, the longest {sig['longest_silence_s']:.0f} s)")
        parts.append((w["long_silence"] * _sat(total, 0, 20), text + (" with music" if sig.get("music_s") else "")))
    if sig["non_talk_share"] > 0.25:
        parts.append((w["non_talk"] * _sat(sig["non_talk_share"], 0.25, 0.6),
                      f"nobody speaks for {sig['non_talk_share'] * 100:.0f} % of the call"))
    for party, q in sig["quiet"].items():
        if q:
            lv = sig["level_db"]
            other = [v for k, v in lv.items() if k != party and v is not None]
            how = (f" ({other[0] - lv[party]:.0f} dB quieter than the {'agent' if party == 'caller' else 'caller'})"
                   if other and lv[party] is not None and other[0] > lv[party] else "")
            name = {"caller": "the caller", "agent": "the agent"}.get(party, "the call")
            parts.append((w["quiet_party"], f"{name} is hard to hear{how}"))
    for party, rate in (sig.get("speaking_rate") or {}).items():
        if rate is None:
            continue
        name = {"caller": "the caller", "agent": "the agent"}.get(party, "someone")
        if rate > FAST_SYL_S:
            parts.append((w["speaking_rate"] * _sat(rate, FAST_SYL_S, FAST_SYL_S + 1.5),
                          f"{name} speaks fast (about {rate:.1f} syllables/s)"))
        elif rate < SLOW_SYL_S:
            parts.append((w["speaking_rate"] * _sat(-rate, -SLOW_SYL_S, -SLOW_SYL_S + 1.0),
                          f"{name} speaks slowly (about {rate:.1f} syllables/s)"))
    if sig["duration_s"] > 180:
        parts.append((w["length"] * _sat(sig["duration_s"], 180, 900), f"long call ({_mmss(sig['duration_s'])})"))
    parts = [p for p in parts if p[0] > 0 and p[1]]
    parts.sort(key=lambda p: -p[0])
    score = round(100.0 * sum(p[0] for p in parts) / total_w, 1)
    return min(100.0, score), [p[1][0].upper() + p[1][1:] for p in parts]


# ---------------------------------------------------------------- all of it


def analyze(f: Features, *, long_silence_s: float = 5.0, weights: dict | None = None) -> dict:
    """Moments, signals, difficulty and reasons of one call.

    Returns
    -------
    dict
        ``{"version", "channels", "moments": [...sorted by start_s], "signals", "difficulty", "reasons",
        "pauses": [(start_s, end_s)]}`` (pauses: >= 0.25 s where nobody speaks).
    """
    if not long_silence_s > 0:
        raise ValueError(f"long_silence_s must be positive (it is {long_silence_s!r})")
    act = speech_activity(f)
    ms = overtalk(act, f) + raised_voice(act, f)
    ms += late_escalation(ms, duration_s=f.duration_s)
    ms += long_silences(act, f, min_s=long_silence_s)
    ms.sort(key=lambda m: (m["start_s"], KINDS.index(m["kind"])))
    sig = signals(f, act, ms)
    score, reasons = difficulty(sig, ms, weights=weights)
    pauses = [p for p in speech_pauses(act.speech) if p[1] - p[0] >= 0.25]
    return {"version": ANALYZER_VERSION, "channels": f.channels, "moments": ms, "signals": sig,
            "difficulty": score, "reasons": reasons, "pauses": pauses}


def speech_pauses(act_speech: np.ndarray) -> list[tuple[float, float]]:
    """Spans (s) where nobody speaks: where a cut may start or end without clipping a word."""
    anyone = np.asarray(act_speech).any(axis=0)
    return [(_t(a), _t(b)) for a, b in _runs(~anyone)]
