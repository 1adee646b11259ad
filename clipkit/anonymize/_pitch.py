"""The "pitch" chain (WEAKER): librosa.effects.pitch_shift tuned for 8 kHz telephone audio.

Frames of 256 samples (32 ms, hop 8 ms) at 8 kHz: librosa's default 2048
(256 ms) smears syllables into each other and blurs harmonics; "soxr_mq"
resampling. Measured in bench/results/anonymizer-history.md.

Streaming: librosa's phase vocoder restarts its phase at each call, so
segments are cut on a fixed grid of absolute positions (every SEGMENT_S,
independent of the caller's block size), each processed with MARGIN_S of
context on both sides, and joined with a short equal-power crossfade.
Output is therefore identical for any read block size.
"""

from __future__ import annotations

import math

import numpy as np

from ._voice import Voice

SEGMENT_S = 10.0
MARGIN_S = 0.5
CROSSFADE_S = 0.04
FRAME_S = 0.032
RES_TYPE = "soxr_mq"


def pitch_shift(y: np.ndarray, *, sr: int, semitones: float) -> np.ndarray:
    """librosa.effects.pitch_shift with the telephone settings above; float32 out, same length.

    This is librosa.effects.pitch_shift's own three steps (stft ->
    phase_vocoder -> istft, resample, fix_length) called from librosa.core:
    importing librosa.effects also imports scikit-learn (via
    librosa.decompose), +85 MB RSS and ~1 s, which would take a 10-minute
    render close to its 400 MB budget. The tests check the output is
    identical to librosa.effects.pitch_shift.
    """
    # heavy (scipy.signal, numba): only this method pays for it
    from librosa.core.audio import resample
    from librosa.core.spectrum import istft, phase_vocoder, stft
    from librosa.util import fix_length

    y = np.asarray(y, dtype=np.float32)
    n_fft = 1 << int(round(math.log2(FRAME_S * sr)))
    hop = n_fft // 4
    rate = 2.0 ** (-float(semitones) / 12)
    D = phase_vocoder(stft(y, n_fft=n_fft, hop_length=hop), rate=rate, hop_length=hop, n_fft=n_fft)
    stretched = istft(D, n_fft=n_fft, hop_length=hop, dtype=y.dtype, length=int(round(y.shape[-1] / rate)))
    out = resample(stretched, orig_sr=float(sr) / rate, target_sr=sr, res_type=RES_TYPE, scale=False)
    return fix_length(out, size=y.shape[-1]).astype(np.float32)


class PitchStream:
    """Streaming constant pitch shift for one channel (see module doc).

    Parameters
    ----------
    voice : Voice
        Only ``voice.semitones`` is used.
    sr : int
        Sample rate in Hz.
    """

    def __init__(self, voice: Voice, *, sr: int, t0_s: float = 0.0):
        del t0_s  # a constant shift has nothing that moves with time
        self.sr = int(sr)
        self.semitones = voice.semitones
        self.L = int(round(SEGMENT_S * sr))
        self.M = int(round(MARGIN_S * sr))
        self.C = 2 * (int(round(CROSSFADE_S * sr)) // 2)
        self.buf = np.zeros(0, dtype=np.float32)
        self.buf_start = 0  # absolute index of buf[0]
        self.samples_in = 0
        self.seg = 0  # next segment to process
        self.tail: np.ndarray | None = None  # previous segment's output over the next crossfade
        self.samples_out = 0
        r = (np.arange(self.C) + 0.5) / max(self.C, 1)
        self.fade_in = np.sin(0.5 * math.pi * r).astype(np.float32)
        self.fade_out = np.cos(0.5 * math.pi * r).astype(np.float32)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed the next samples (shape (m,)); return the output samples now final."""
        x = np.asarray(x, dtype=np.float32)
        self.buf = np.concatenate([self.buf, x])
        self.samples_in += len(x)
        out = []
        while (self.seg + 1) * self.L + self.M <= self.samples_in:
            out.append(self._segment(final=False))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """Return the rest of the output."""
        out = []
        while self.samples_out < self.samples_in:
            out.append(self._segment(final=True))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _segment(self, *, final: bool) -> np.ndarray:
        j, L, M, C, N = self.seg, self.L, self.M, self.C, self.samples_in
        lo = max(0, j * L - M)
        hi = min(N, (j + 1) * L + M)
        shifted = pitch_shift(self.buf[lo - self.buf_start : hi - self.buf_start], sr=self.sr, semitones=self.semitones)
        # this segment owns [j*L - C/2, (j+1)*L + C/2), crossfaded at both ends
        a = max(0, j * L - C // 2)
        last = (j + 1) * L >= N
        b = N if last else (j + 1) * L - C // 2
        piece = shifted[a - lo : b - lo].copy()
        if self.tail is not None and j > 0:
            k = min(C, len(piece), len(self.tail))
            piece[:k] = self.tail[:k] * self.fade_out[:k] + piece[:k] * self.fade_in[:k]
        self.tail = None if last else shifted[b - lo : b - lo + C].copy()
        self.seg += 1
        # keep input from the next segment's left margin on
        keep = max(0, self.seg * L - M) - self.buf_start
        if keep > 0:
            self.buf = self.buf[keep:]
            self.buf_start += keep
        self.samples_out += len(piece)
        return piece
