"""The last stage of every rendering: the party's own speech level, audible beeps, no clipping.

The voice chains change the spectrum with keyed gains, so what comes out can
be 10 dB quieter or louder than the speaker was, and keyed boosts can push
peaks past full scale. After the chain, each channel is

1. scaled so its *speech level* equals the input's (:class:`SpeechLevel`:
   mean power of 400 ms blocks, gated like ITU-R BS.1770 — absolute gate
   -70 dBFS, relative gate 10 dB under the ungated mean — without the
   K-weighting, which is meant for full-band programme, not telephone
   speech); redaction spans are left out of both measurements;
2. given its beeps: redaction spans are silenced *before* the chain (so not
   one original sample enters it) and the 1 kHz tone is added here, at the
   channel's speech level, so a beep is as loud as the voice around it
   instead of whatever the keyed envelope made of it;
3. limited (:class:`Limiter`): a look-ahead peak limiter whose gain is the
   running minimum of the gain each sample needs, smoothed by a Hann window
   no longer than the minimum's window, so the gain is below what every
   sample needs (no sample exceeds the ceiling, ever) and changes smoothly
   (no clicks). Deterministic and block-size independent.

Everything here is numpy and works in blocks: memory does not grow with length.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK_S = 0.4
BLOCK_HOP_S = 0.1
ABS_GATE_DB = -70.0
REL_GATE_DB = -10.0
MAX_GAIN_DB = 30.0
CEILING = 10 ** (-1.0 / 20)  # -1 dBFS
LOOKAHEAD_S = 0.005
BEEP_HZ = 1000.0
BEEP_MAX_PEAK = 10 ** (-6.0 / 20)
BEEP_DEFAULT_PEAK = 0.1  # a channel with no speech at all
FADE_S = 0.005
_BIN_DB = 0.05
_LO_DB, _HI_DB = -100.0, 20.0


class SpeechLevel:
    """Gated mean power of a stream in constant memory (a histogram of 400 ms block powers).

    Parameters
    ----------
    sr : int
    exclude : sequence of (start, end) sample ranges to leave out (redactions).
    """

    def __init__(self, *, sr: int, exclude=()):
        self.sr = int(sr)
        self.block = max(1, int(round(BLOCK_S * sr)))
        self.hop = max(1, int(round(BLOCK_HOP_S * sr)))
        self.exclude = [(int(a), int(b)) for a, b in exclude]
        n_bins = int(round((_HI_DB - _LO_DB) / _BIN_DB)) + 1
        self.count = np.zeros(n_bins, dtype=np.int64)
        self.power = np.zeros(n_bins)
        self._sq = np.zeros(0)  # squared samples not yet in a finished block
        self._start = 0  # absolute index of _sq[0]

    def push(self, x: np.ndarray) -> None:
        sq = np.concatenate([self._sq, np.asarray(x, dtype=np.float64) ** 2])
        n = 0 if len(sq) < self.block else 1 + (len(sq) - self.block) // self.hop
        if n:
            c = np.concatenate([[0.0], np.cumsum(sq)])
            starts = np.arange(n) * self.hop
            ms = (c[starts + self.block] - c[starts]) / self.block
            absolute = self._start + starts
            keep = np.ones(n, dtype=bool)
            for a, b in self.exclude:
                keep &= ~((absolute < b) & (absolute + self.block > a))
            ms = ms[keep]
            db = 10 * np.log10(np.maximum(ms, 1e-30))
            idx = np.clip(np.round((db - _LO_DB) / _BIN_DB).astype(np.int64), 0, len(self.count) - 1)
            np.add.at(self.count, idx, 1)
            np.add.at(self.power, idx, ms)
        self._sq = sq[n * self.hop:]
        self._start += n * self.hop

    def level(self) -> float | None:
        """Gated mean power (linear, not dB), or None when nothing passes the absolute gate."""
        db = _LO_DB + np.arange(len(self.count)) * _BIN_DB
        above = db > ABS_GATE_DB
        if not self.count[above].any():
            return None
        ungated = self.power[above].sum() / self.count[above].sum()
        gate = 10 * math.log10(ungated) + REL_GATE_DB
        keep = db > gate
        if not self.count[keep].any():
            return None
        return float(self.power[keep].sum() / self.count[keep].sum())


def match_gain(level_in: float | None, level_out: float | None) -> float:
    """Linear gain that brings the output's speech level to the input's (1 when either is silent), ±30 dB."""
    if not level_in or not level_out:
        return 1.0
    g_db = 10 * math.log10(level_in / level_out)
    return float(10 ** (max(-MAX_GAIN_DB, min(MAX_GAIN_DB, g_db)) / 20))


def beep_peak(level_in: float | None) -> float:
    """Peak amplitude of the 1 kHz tone: its RMS equals the speech level (capped at -6 dBFS peak)."""
    if not level_in:
        return BEEP_DEFAULT_PEAK
    return float(min(BEEP_MAX_PEAK, math.sqrt(2.0 * level_in)))


def add_beeps(block: np.ndarray, *, sr: int, spans, offset: int, total: int, peaks) -> None:
    """Add the tone for every ``beep`` span to ``block`` (channels, m) in place, 5 ms raised-cosine fades.

    ``spans`` are sample ranges ``(a, b, mode)`` relative to the clip start;
    ``peaks`` one amplitude per channel. The tone's phase starts at the
    span's start, so blocks join seamlessly.
    """
    m = block.shape[-1]
    fade = max(1, int(round(FADE_S * sr)))
    idx = np.arange(offset, offset + m)
    for a, b, mode in spans:
        if mode != "beep" or b <= offset or a >= offset + m:
            continue
        inside = (idx >= a) & (idx < min(b, total))
        if not inside.any():
            continue
        env = np.minimum(np.clip((idx - a + 1) / fade, 0, 1), np.clip((b - idx) / fade, 0, 1))
        env = (0.5 - 0.5 * np.cos(math.pi * env)) * inside
        tone = np.sin(2 * math.pi * BEEP_HZ * (idx - a) / sr) * env
        for k, p in enumerate(peaks):
            block[k] += (p * tone).astype(block.dtype)


def _running_min(x: np.ndarray, w: int) -> np.ndarray:
    """Minimum over each window ``x[i:i+w]`` (van Herk / Gil-Werman: O(n) whatever ``w``)."""
    n = len(x) - w + 1
    if n <= 0:
        return np.zeros(0, dtype=x.dtype)
    pad = (-len(x)) % w
    xp = np.concatenate([x, np.full(pad, np.inf, dtype=x.dtype)]).reshape(-1, w)
    prefix = np.minimum.accumulate(xp, axis=1).ravel()
    suffix = np.minimum.accumulate(xp[:, ::-1], axis=1)[:, ::-1].ravel()
    i = np.arange(n)
    return np.minimum(suffix[i], prefix[i + w - 1])


class Limiter:
    """Look-ahead peak limiter for a (channels, n) stream: no output sample beyond ``ceiling``.

    All channels share one gain (a stereo image does not wander). Output lags
    input by ``2 * L`` samples (L = 5 ms): :meth:`push` returns what is final,
    :meth:`flush` the rest; concatenated, exactly as many samples as pushed.
    """

    def __init__(self, *, sr: int, channels: int, ceiling: float = CEILING):
        self.L = max(1, int(round(LOOKAHEAD_S * sr)))
        self.ceiling = float(ceiling)
        w = 2 * self.L + 1
        h = np.hanning(w + 2)[1:-1]
        self.smooth = h / h.sum()
        # history: 2L samples before the current block (zeros = silence before the clip)
        self.x = np.zeros((channels, 2 * self.L), dtype=np.float64)
        self.pending = 0  # real samples pushed but not yet returned

    def _gain(self, x: np.ndarray) -> np.ndarray:
        """Gain for the middle ``len - 4L`` samples of ``x`` (channels, len)."""
        L = self.L
        peak = np.abs(x).max(axis=0)
        need = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))
        h = _running_min(need, 2 * L + 1)  # h[i] = min need over x[i .. i + 2L]: centred on i + L
        out = np.ones(len(h) - 2 * L)
        dip = 1.0 - h
        if dip.any():
            # smoothed 1 - h, only where the limiter acts (most of a clip needs nothing)
            out = 1.0 - np.convolve(dip, self.smooth, mode="valid")
        return out

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float64)
        x = np.concatenate([self.x, block], axis=1)
        L = self.L
        if x.shape[1] < 4 * L + 1:
            self.x = x
            self.pending += block.shape[1]
            return np.zeros((block.shape[0], 0), dtype=np.float32)
        g = self._gain(x)  # gains for samples 2L .. len - 2L of x
        y = x[:, 2 * L: 2 * L + len(g)] * g
        self.x = x[:, len(g):]
        self.pending += block.shape[1] - y.shape[1]
        # the gain keeps every sample within the ceiling; the clip only catches float rounding
        return np.clip(y, -self.ceiling, self.ceiling).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The remaining ``pending`` samples (the stream continues with silence to settle the gain)."""
        if self.pending <= 0:
            return np.zeros((self.x.shape[0], 0), dtype=np.float32)
        n = self.pending
        out = self.push(np.zeros((self.x.shape[0], 2 * self.L), dtype=np.float64))
        self.pending = 0
        return out[:, :n]


def limit(y: np.ndarray, *, sr: int, ceiling: float = CEILING) -> np.ndarray:
    """:class:`Limiter` over a whole (channels, n) or (n,) signal at once."""
    arr = np.asarray(y, dtype=np.float64)
    two = arr.reshape(1, -1) if arr.ndim == 1 else arr
    lim = Limiter(sr=sr, channels=two.shape[0], ceiling=ceiling)
    out = np.concatenate([lim.push(two), lim.flush()], axis=1)
    return out.reshape(arr.shape).astype(np.float32)
