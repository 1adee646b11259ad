"""Fast F0 estimation (YIN) in numpy, and a constant-memory running median.

librosa.yin would do, but importing it pulls scipy.signal and numba (4+ s
on the target machine), which alone breaks the 5 s budget of a cold
``clipkit anonymize``. This is the same algorithm (de Cheveigné & Kawahara
2002) vectorised over frames, plus the voicing decision librosa.yin lacks:
a frame is voiced when its cumulative-mean-normalised difference dips below
``VOICED_MAX`` and it is not near-silent.
"""

from __future__ import annotations

import numpy as np

FMIN_HZ = 60.0
FMAX_HZ = 400.0
TROUGH_THRESHOLD = 0.05
VOICED_MAX = 0.2
NEAR_GLOBAL = 0.05
OCTAVE_FIX_FRAMES = 11
MIN_RMS_DBFS = -50.0
FRAME_S = 0.05
HOP_S = 0.02


def _fast_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes pocketfft handles fastest)."""
    best = 1 << int(np.ceil(np.log2(n)))
    p2 = 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < n:
                p5 *= 5
            best = min(best, p5)
            p3 *= 3
        p2 *= 2
    return best


def frame_geometry(sr: int) -> tuple[int, int]:
    """(frame_length, hop_length) in samples for ``sr``."""
    frame = int(round(FRAME_S * sr))
    frame = max(frame, int(np.ceil(2.2 * sr / FMIN_HZ)))
    return frame + (frame % 2), max(1, int(round(HOP_S * sr)))


def yin_frames(frames: np.ndarray, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 and aperiodicity of each row of ``frames``.

    Parameters
    ----------
    frames : np.ndarray, shape (T, L), float
        Frames of length ``L`` (``L > 2 * sr / FMIN_HZ``).
    sr : int
        Sample rate in Hz.

    Returns
    -------
    f0 : np.ndarray, shape (T,), float64
        Estimated F0 in Hz, within [FMIN_HZ, FMAX_HZ] (meaningless where
        aperiodicity is high).
    aperiodicity : np.ndarray, shape (T,), float64
        CMNDF value at the chosen period, 0 = perfectly periodic, ~1 = noise.
    """
    frames = np.asarray(frames, dtype=np.float32)
    n_frames, length = frames.shape
    min_p = max(2, int(np.floor(sr / FMAX_HZ)))
    max_p = min(int(np.ceil(sr / FMIN_HZ)), length // 2)
    if n_frames == 0:
        return np.zeros(0), np.ones(0)
    # circular correlation is exact for lags <= max_p once nfft >= length + max_p
    nfft = _fast_size(length + max_p + 1)
    spec = np.fft.rfft(frames, nfft, axis=1)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=1)[:, : max_p + 1]
    cs = np.cumsum(frames.astype(np.float64) ** 2, axis=1)
    energy = cs[:, -1:]
    k = np.arange(1, max_p + 1)
    head = cs[:, k - 1]
    tail = energy - cs[:, length - k - 1]
    # exact difference function over the overlapping part of the frame
    diff = np.maximum(2 * energy - head - tail - 2 * acf[:, 1:], 0.0)
    cmndf = diff * k / np.maximum(np.cumsum(diff, axis=1), 1e-20)
    d = cmndf[:, min_p - 1 : max_p]  # periods min_p..max_p
    inner = d[:, 1:-1]
    trough = np.zeros_like(d, dtype=bool)
    trough[:, 1:-1] = (inner < d[:, :-2]) & (inner <= d[:, 2:])
    # first trough below the absolute threshold; failing that, the first
    # trough nearly as deep as the global minimum (plain YIN takes the global
    # minimum, which on jittery voices is often twice the period: octave errors)
    gmin = d.min(axis=1, keepdims=True)
    below = trough & (d < np.maximum(TROUGH_THRESHOLD, gmin + NEAR_GLOBAL))
    glob = np.argmin(d, axis=1)
    idx = np.where(below.any(axis=1), np.argmax(below, axis=1), glob)
    rows = np.arange(n_frames)
    ic = np.clip(idx, 1, d.shape[1] - 2)
    a, b, c = d[rows, ic - 1], d[rows, ic], d[rows, ic + 1]
    den = a - 2 * b + c
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    shift = np.where((idx == ic) & (np.abs(shift) < 1), shift, 0.0)
    period = min_p + idx + shift
    f0 = np.clip(sr / period, FMIN_HZ, FMAX_HZ)
    return f0, d[rows, idx]


def frame_signal(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Non-copying (T, frame) view of ``y`` at hop ``hop`` (no padding)."""
    if len(y) < frame:
        return np.zeros((0, frame), dtype=y.dtype)
    return np.lib.stride_tricks.sliding_window_view(y, frame)[::hop]


def f0_track(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 and voicing of a whole mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Signal in [-1, 1].
    sr : int
        Sample rate in Hz.

    Returns
    -------
    f0 : np.ndarray, shape (T,), Hz
    voiced : np.ndarray, shape (T,), bool
        Frames start every ``hop`` samples from sample 0 (see
        :func:`frame_geometry`).
    """
    frame, hop = frame_geometry(sr)
    fr = frame_signal(np.asarray(y, dtype=np.float64), frame, hop)
    f0, ap = yin_frames(fr, sr=sr)
    rms = np.sqrt(np.mean(fr**2, axis=1)) if len(fr) else np.zeros(0)
    voiced = (ap < VOICED_MAX) & (rms > 10 ** (MIN_RMS_DBFS / 20))
    return _fix_octaves(f0, voiced), voiced


def _fix_octaves(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Move isolated octave jumps back onto the local contour (median of voiced neighbours)."""
    if voiced.sum() < 3:
        return f0
    st = 12 * np.log2(f0)
    st_v = np.where(voiced, st, np.nan)
    half = OCTAVE_FIX_FRAMES // 2
    padded = np.pad(st_v, half, constant_values=np.nan)
    win = np.lib.stride_tricks.sliding_window_view(padded, OCTAVE_FIX_FRAMES)
    ok = ~np.all(np.isnan(win), axis=1)
    local = np.full(len(st), np.nan)
    local[ok] = np.nanmedian(win[ok], axis=1)
    jump = st - local
    octs = np.where(voiced & ok & (np.abs(np.abs(jump) - 12) < 3), np.round(jump / 12), 0)
    return np.clip(2 ** ((st - 12 * octs) / 12), FMIN_HZ, FMAX_HZ)


class F0Median:
    """Running median of voiced-frame F0 over a stream, in constant memory.

    F0 values go into a 1-cent histogram between FMIN_HZ and FMAX_HZ, so a
    four-hour call costs the same memory as a four-second one and the median
    is exact to one cent. Frames overlapping an excluded span (redactions:
    a 1 kHz beep is periodic and would count as a voice) are skipped.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    exclude : sequence of (start_sample, end_sample)
        Sample ranges, relative to the first pushed sample, to leave out.
    """

    def __init__(self, *, sr: int, exclude=()):
        self.sr = sr
        self.frame, self.hop = frame_geometry(sr)
        self.exclude = [(int(a), int(b)) for a, b in exclude]
        self.n_bins = int(np.ceil(1200 * np.log2(FMAX_HZ / FMIN_HZ))) + 1
        self.hist = np.zeros(self.n_bins, dtype=np.int64)
        self._buf = np.zeros(0)
        self._buf_start = 0  # absolute sample index of _buf[0]

    def push(self, x: np.ndarray) -> None:
        """Add the next samples (shape (m,)) of the stream."""
        buf = np.concatenate([self._buf, np.asarray(x, dtype=np.float64)])
        n_frames = 0 if len(buf) < self.frame else 1 + (len(buf) - self.frame) // self.hop
        if n_frames:
            fr = frame_signal(buf, self.frame, self.hop)[:n_frames]
            starts = self._buf_start + self.hop * np.arange(n_frames)
            keep = np.ones(n_frames, dtype=bool)
            for a, b in self.exclude:
                keep &= ~((starts < b) & (starts + self.frame > a))
            if keep.any():
                fr = fr[keep]
                f0, ap = yin_frames(fr, sr=self.sr)
                rms = np.sqrt(np.mean(fr**2, axis=1))
                voiced = (ap < VOICED_MAX) & (rms > 10 ** (MIN_RMS_DBFS / 20))
                cents = np.round(1200 * np.log2(f0[voiced] / FMIN_HZ)).astype(np.int64)
                np.add.at(self.hist, np.clip(cents, 0, self.n_bins - 1), 1)
            consumed = n_frames * self.hop
            self._buf = buf[consumed:]
            self._buf_start += consumed
        else:
            self._buf = buf

    def median(self) -> float | None:
        """Median voiced F0 in Hz (rounded to 0.1 Hz), or None if nothing was voiced."""
        total = int(self.hist.sum())
        if total == 0:
            return None
        cdf = np.cumsum(self.hist)
        i = int(np.searchsorted(cdf, (total + 1) / 2))
        return round(float(FMIN_HZ * 2 ** (i / 1200)), 1)
