"""The "strong" chain: one STFT, keyed source-filter transform, one resampling.

Pitch is scaled the way librosa.effects.pitch_shift does it (phase-vocoder
time stretch, then resampling back to real time), but in one pass, with a
ratio alpha(t) that moves with time and with the spectral envelope replaced:

0. speaker normalization (strong-v2): a stats pass (:class:`SpeakerStats`,
   constant memory) gives the clip's median F0 and RMS-weighted long-term
   average envelope; the base pitch ratio is target_f0 / median (the drift
   rides on top), and the long-term envelope's shape over 300-3300 Hz
   (tapered outside, long-term power kept) is subtracted from every frame's
   envelope before step 3, so the keyed warp and gains act on a flattened,
   speaker-independent envelope;
1. analysis: 32 ms periodic-Hann frames, hop 8 ms, on an absolute grid
   (frame m is centred on input sample (m - 1) * hop);
2. per frame, a cepstral spectral envelope E: power smoothed over +-2 bins,
   floored at -50 dB re the frame peak (harmonic valleys must not ripple it),
   lifter flat below 2 ms and zero from 3.3 ms (the comb of voices up to
   300 Hz stays out). Cepstral smoothing is linear, so it is one (K, K)
   matrix product instead of an irfft/rfft pair;
3. target envelope E_out on the output grid: E read through the keyed,
   slowly moving piecewise-linear frequency warp, with keyed contrast, tilt
   and six formant-band gains (all drifting, periods 2-10 s);
4. resampling later multiplies every frequency by alpha, so a frame's gain
   is exp(E_out(alpha f) - E(f)): up to +30 dB where the source has signal,
   ramping to +6 dB in bins near the floor (empty telephone bands must not
   be lifted into noise); bins with alpha f > Nyquist are dropped (aliasing);
5. phase vocoder: synthesis frame m sits at S(centre), where the stretched
   timeline S(x) integrates alpha over input time (piecewise linear per hop),
   and each bin's phase advances by its instantaneous frequency times the
   actual integer synthesis hop -- a cumulative sum over frames, so the frame
   loop is a handful of vectorised numpy operations (no numba);
6. overlap-add normalised by the summed squared windows, then output sample
   x = stretched signal at S(x) by 16-tap Kaiser-windowed sinc (a cubic left
   -20..-30 dB mirror images in the top band when shifting down);
7. shifting down empties the band above alpha * Nyquist: it is filled with
   noise shaped by E_out (fricatives stay audible; no source harmonics).

The frame length was chosen by measurement (bench/results/anonymizer-history.md).

Everything keyed is a function of absolute time (t0_s + position) and the
frame grid is absolute, so streaming in any block size gives the same output
up to float rounding. Note that a phase vocoder is a chaotic function of its
input: changes below one 16-bit step can flip a bin's phase unwrapping and
change output samples by a few percent (same sound, different waveform).
"""

from __future__ import annotations

import math

import numpy as np

from ._voice import GAIN_BAND_HZ, N_BANDS, Drift, Voice

TWO_PI = 2.0 * math.pi
FRAME_S = 0.032  # 32 ms beats 64 ms on gliding F0 (bench/results/anonymizer-history.md)
LIFTER_S = 0.002
LIFTER_END_S = 1.0 / 300.0
ENV_FLOOR_DB = -50.0
MAX_BOOST_DB = 6.0
MAX_BOOST_ACTIVE_DB = 30.0
ACTIVE_RANGE_DB = 35.0
ACTIVE_RAMP_DB = 20.0
CHUNK_FRAMES = 1024  # frames per vectorised step: bounds memory, not results
# speaker normalization (strong-v2)
NORM_ENV = 1.0  # share of the speaker's long-term envelope shape divided out (0.85: worse)
NORM_BAND_HZ = (300.0, 3300.0)  # full strength inside, cosine taper to 0 over NORM_TAPER_OCT
NORM_TAPER_OCT = 0.5
# the long-term envelope shape speakers are normalized onto (strong-v7; nepers, interpolated in
# log-frequency): the mean of 16 telephone-band voices (bench/make_voices.py) from 500 Hz up, falling
# ~26 dB to 3.4 kHz, and flat below, where the mean reflects the speakers' own first harmonics, which
# the pitch shift moves. A flat shape (until v6) lifted the aperiodic top of the band ~30 dB against
# the harmonics of low male voices (bench/results/anonymizer-history.md).
REF_SHAPE_HZ = (500.0, 630.0, 800.0, 1000.0, 1250.0, 1600.0, 2000.0, 2500.0, 3150.0, 3400.0)
REF_SHAPE_NP = (1.923, 1.567, 0.635, 0.209, -0.017, -0.26, -0.496, -0.395, -0.88, -1.13)
MAX_SHIFT_ST = 9.0  # |base pitch shift| onto the target, semitones
CONTENT_RANGE_DB = 40.0  # band edge: where the long-term envelope falls this far below its peak (strong-v6)


def _sinc_table(half: int, phases: int, cutoff: float, beta: float) -> np.ndarray:
    """Interpolation weights (phases + 1, 2 * half) for taps at offsets -half+1..half."""
    f = np.arange(phases + 1)[:, None] / phases
    t = np.arange(-half + 1, half + 1)[None, :] - f
    h = cutoff * np.sinc(cutoff * t) * np.i0(beta * np.sqrt(np.clip(1 - (t / half) ** 2, 0, 1))) / np.i0(beta)
    return (h / h.sum(axis=1, keepdims=True)).astype(np.float32)


HB_START, HB_FULL = 0.8, 0.9  # high-band fill ramps in over this part of alpha * Nyquist
HB_GAIN = 0.8
HB_GATE_DB = -40.0  # frame peak power (dB re 1) where the fill starts to fade in
_HB_PHASES = (np.random.default_rng(20240531).random((1024, 1025)) * TWO_PI).astype(np.float32)

_HALF = 8
_PHASES = 256
_SINC_TABLE = _sinc_table(_HALF, _PHASES, cutoff=0.9, beta=8.0)
_TAP_OFFSETS = np.arange(-_HALF + 1, _HALF + 1)


def _drift(d: Drift, t: np.ndarray) -> np.ndarray:
    return d.amp * np.sin(TWO_PI * t / d.period_s + d.phase)


def _hat_basis(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation weights, shape (len(points), len(grid)).

    ``values @ basis`` interpolates values given at ``points`` onto ``grid``.
    """
    eye = np.eye(len(points))
    return np.stack([np.interp(grid, points, row) for row in eye])


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b without BLAS: single-threaded and bit-reproducible.

    OpenBLAS threads these (T, K) x (K, K) products, which spins the other
    core (clips render in parallel on all cores) and can change rounding
    with the thread count; numpy's own einsum loop is ~4x slower than
    one-thread BLAS but still a few ms per minute of audio.
    """
    return np.einsum("ij,jk->ik", a, b)


def _interp_rows(E: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Linear interpolation of each row of ``E`` (T, K) at fractional bins ``u`` (T, K)."""
    K = E.shape[1]
    i0 = np.clip(u.astype(np.int32), 0, K - 2)  # u >= 0, so truncation is floor
    fr = np.clip(u - i0, 0.0, 1.0).astype(E.dtype)
    lo = np.take_along_axis(E, i0, axis=1)
    hi = np.take_along_axis(E, i0 + 1, axis=1)
    return lo + (hi - lo) * fr


def _analysis_tools(sr: int):
    """Frame length, hop, window and cepstral matrices shared by the stream and the stats pass."""
    n = 1 << int(round(math.log2(FRAME_S * sr)))
    K = n // 2 + 1
    window = (0.5 - 0.5 * np.cos(TWO_PI * np.arange(n) / n)).astype(np.float32)
    lc = max(4, int(round(LIFTER_S * sr)))
    le = max(lc + 2, int(round(LIFTER_END_S * sr)))
    lifter = np.zeros(n, dtype=np.float32)
    lifter[:lc] = 1.0
    lifter[lc:le] = np.cos(0.5 * math.pi * np.arange(le - lc) / (le - lc)) ** 2
    lifter[n - le + 1 :] = lifter[1:le][::-1]
    # cepstral smoothing is linear in the log spectrum and keeps only le
    # quefrencies, so instead of an irfft/rfft pair per frame it is two
    # thin cosine matrices: log spectrum -> kept cepstrum (K, le) ->
    # envelope (le, K). (Built analytically: an SVD would wake OpenBLAS's
    # thread pool, whose spinning costs more CPU than the whole chain.)
    k_ = np.arange(K)[:, None]
    q_ = np.arange(le)[None, :]
    a_k = np.where((k_ == 0) | (k_ == n // 2), 1.0, 2.0)
    cep_a = (a_k * np.cos(TWO_PI * k_ * q_ / n) / n).astype(np.float32)
    b_q = np.where(q_ == 0, 1.0, 2.0) * lifter[:le][None, :]
    cep_b = (b_q * np.cos(TWO_PI * k_ * q_ / n)).T.astype(np.float32)
    return n, n // 4, window, cep_a, cep_b


def _log_envelope(power: np.ndarray, cep_a, cep_b, rel_floor, abs_floor) -> np.ndarray:
    """Cepstral log-magnitude envelope (T, K) of power spectra (T, K)."""
    # smooth power over +-2 bins, floor relative to the frame peak
    sm = power * np.float32(0.375)
    sm[:, 1:] += np.float32(0.25) * power[:, :-1]
    sm[:, :-1] += np.float32(0.25) * power[:, 1:]
    sm[:, 2:] += np.float32(0.0625) * power[:, :-2]
    sm[:, :-2] += np.float32(0.0625) * power[:, 2:]
    sm += sm.max(axis=1, keepdims=True) * rel_floor + abs_floor
    logmag = np.float32(0.5) * np.log(sm)
    return _matmul(_matmul(logmag, cep_a), cep_b)


class SpeakerStats:
    """Stats pass for speaker normalization: median F0 and long-term average envelope.

    Constant memory: a 1-cent F0 histogram (:class:`F0Median`) and one
    (K,) sum of per-frame cepstral log envelopes weighted by frame RMS
    (loud, voiced frames dominate; silence counts for nothing). Frames
    overlapping ``exclude`` (redactions, sample ranges relative to the first
    pushed sample) are skipped.
    """

    def __init__(self, *, sr: int, exclude=()):
        from ._f0 import F0Median

        self.sr = int(sr)
        self.n, self.hop, self.window, self.cep_a, self.cep_b = _analysis_tools(self.sr)
        self.abs_floor = np.float32((1e-6 * self.n) ** 2)
        self.rel_floor = np.float32(10 ** (ENV_FLOOR_DB / 10))
        self.exclude = [(int(a), int(b)) for a, b in exclude]
        self.f0 = F0Median(sr=self.sr, exclude=self.exclude)
        self.acc = np.zeros(self.n // 2 + 1)
        self.wsum = 0.0
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0

    def push(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        self.f0.push(x)
        buf = np.concatenate([self._buf, x])
        n, hop = self.n, self.hop
        count = 0 if len(buf) < n else 1 + (len(buf) - n) // hop
        for s in range(0, count, CHUNK_FRAMES):
            c = min(CHUNK_FRAMES, count - s)
            seg = buf[s * hop : s * hop + (c - 1) * hop + n]
            fr = np.lib.stride_tricks.sliding_window_view(seg, n)[::hop][:c]
            starts = self._buf_start + (s + np.arange(c)) * hop
            keep = np.ones(c, dtype=bool)
            for a, b in self.exclude:
                keep &= ~((starts < b) & (starts + n > a))
            if not keep.any():
                continue
            X = np.fft.rfft(fr[keep] * self.window, axis=1)
            power = X.real**2 + X.imag**2
            E = _log_envelope(power, self.cep_a, self.cep_b, self.rel_floor, self.abs_floor)
            w = np.sqrt(power.sum(axis=1)).astype(np.float64)
            self.acc += w @ E.astype(np.float64)
            self.wsum += float(w.sum())
        self._buf = buf[count * hop :]
        self._buf_start += count * hop

    def f0_median(self) -> float | None:
        return self.f0.median()

    def ltas(self) -> np.ndarray | None:
        """Long-term average log envelope (K,), rounded (block-size independent), or None."""
        if self.wsum <= 1e-6:
            return None
        return np.round(self.acc / self.wsum, 4)

    def content_hz(self) -> float | None:
        """Upper edge of the band the speech occupies, when it is far below Nyquist; else None.

        Telephone audio stored at 44.1 or 48 kHz has nothing above 3.4-4 kHz;
        the keyed envelope gains would lift the empty band into audible hiss.
        The edge is the highest frequency whose long-term envelope is within
        :data:`CONTENT_RANGE_DB` of its peak, plus a margin; a band reaching
        past 60 % of Nyquist counts as full (native 8 kHz audio is unaffected).
        """
        L = self.ltas()
        if L is None:
            return None
        hz = np.arange(len(L)) * self.sr / self.n
        valid = hz >= 100.0
        peak = L[valid].max()
        above = np.flatnonzero(valid & (L > peak - CONTENT_RANGE_DB * math.log(10) / 20))
        if not len(above):
            return None
        top = float(hz[above[-1]]) * 1.1 + 100.0
        return None if top >= 0.6 * self.sr / 2 else top


class StrongStream:
    """Streaming strong anonymizer for one channel.

    Parameters
    ----------
    voice : Voice
    sr : int
        Sample rate in Hz (8000-48000).
    t0_s : float
        Absolute time of the first pushed sample, seconds.

    Notes
    -----
    ``push`` returns the output samples that are final (latency about
    ``(2 + 2 / alpha) * hop`` samples); ``flush`` returns the rest.
    Concatenated, the output has exactly as many samples as were pushed,
    aligned with them.
    """

    def __init__(self, voice: Voice, *, sr: int, t0_s: float = 0.0,
                 f0_median: float | None = None, ltas: np.ndarray | None = None,
                 content_hz: float | None = None):
        self.sr = int(sr)
        self.t0_s = float(t0_s)
        n, hop, self.window, self.cep_a, self.cep_b = _analysis_tools(self.sr)
        self.n = n
        self.hop = hop  # 75 % overlap; the overlap-add code relies on n == 4 * hop
        self.K = n // 2 + 1
        self.window_sq = self.window**2
        k = np.arange(self.K)
        self.bin_omega = (TWO_PI * k / n).astype(np.float32)  # rad/sample
        self.expected_advance = (self.bin_omega * self.hop).astype(np.float32)
        self.bins = k.astype(np.float32)
        # output bins above the speech band stay empty (band-limited source at a high rate)
        self.top = self.K - 1 if content_hz is None else int(min(self.K - 1, math.ceil(content_hz * n / self.sr)))
        self.abs_floor = np.float32((1e-6 * n) ** 2)
        self.rel_floor = np.float32(10 ** (ENV_FLOOR_DB / 10))
        self.max_boost = np.float32(MAX_BOOST_DB * math.log(10) / 20)
        self.max_boost_active = np.float32(MAX_BOOST_ACTIVE_DB * math.log(10) / 20)
        self.active_range = np.float32(ACTIVE_RANGE_DB * math.log(10) / 20)
        self.ramp_scale = np.float32(1.0 / (ACTIVE_RAMP_DB * math.log(10) / 20))
        self._setup_voice(voice)
        self._setup_normalization(f0_median, ltas)

        # analysis side
        self.in_buf = np.zeros(n - self.hop, dtype=np.float32)  # left zero padding
        self.frames_done = 0
        self.samples_in = 0
        self.prev_phase: np.ndarray | None = None
        # synthesis side
        self.out_phase: np.ndarray | None = None
        self.last_pos: int | None = None
        # stretched timeline: S at hop boundaries j*hop for j >= S_base_j, and
        # alpha of hop j (samples [j*hop, (j+1)*hop)); S(0) = 0
        a_first = self._alpha_hops(np.array([-1]))
        self.S_base_j = -1
        self.S_vals = -a_first * self.hop
        self.A_vals = a_first
        # stretched-domain overlap-add buffers starting at integer position z0
        self.z0: int | None = None
        self.z = np.zeros(0, dtype=np.float32)
        self.zw = np.zeros(0, dtype=np.float32)
        self.samples_out = 0
        # high band (noise above alpha * Nyquist when shifting down), real-time grid
        self.hb0 = -(n - self.hop)
        self.hb = np.zeros(0, dtype=np.float32)
        self.hb_frames = 0

    # ------------------------------------------------------------ parameters

    def _setup_voice(self, v: Voice) -> None:
        sr, K = self.sr, self.K
        self.voice = v
        nyq = sr / 2.0
        grid_hz = np.arange(K) * sr / self.n
        # breakpoints are absolute frequencies (formants do not scale with sr)
        self.out_points_hz = np.array([0.0, *v.break_hz, nyq])
        self.warp_basis = _hat_basis(self.out_points_hz, grid_hz).astype(np.float32)  # (P, K)
        # gain basis: tilt + band bumps, each with zero mean over 300-3400 Hz
        # so they reshape the spectrum without changing loudness much
        lo, hi = GAIN_BAND_HZ
        f = np.clip(grid_hz, 250.0, min(hi, nyq))
        tilt = np.log2(f / 1000.0)
        edges = np.geomspace(lo, min(hi, 0.95 * nyq), N_BANDS + 1)
        centres = np.sqrt(edges[:-1] * edges[1:])
        width = np.log2(edges[1] / edges[0])
        lg = np.log2(np.maximum(grid_hz, 1.0))
        bumps = [
            np.where(np.abs(lg - np.log2(c)) < width, 0.5 + 0.5 * np.cos(math.pi * (lg - np.log2(c)) / width), 0.0)
            for c in centres
        ]
        basis = np.stack([tilt, *bumps])
        band = (grid_hz >= lo) & (grid_hz <= hi)
        basis -= basis[:, band].mean(axis=1, keepdims=True)
        self.gain_basis = (basis * (math.log(10) / 20)).astype(np.float32)  # dB -> natural log
        base = [v.warp_octaves, *v.break_offsets, v.tilt_db_oct, *v.band_gains_db]
        drifts = [v.warp_drift, *v.break_drifts, v.tilt_drift, *v.band_drifts]
        self.env_base = np.array(base)
        self.env_amp = np.array([d.amp for d in drifts])
        self.env_freq = np.array([TWO_PI / d.period_s for d in drifts])
        self.env_phase = np.array([d.phase for d in drifts])

    def _setup_normalization(self, f0_median: float | None, ltas: np.ndarray | None) -> None:
        """Base pitch shift onto the keyed target F0, and the speaker's envelope shape to divide out."""
        v = self.voice
        if f0_median is None or not f0_median > 0:
            self.base_st = v.semitones  # nothing voiced: the keyed shift of v1
        else:
            # no minimum shift: a speaker already at the target stays there
            # (a forced +-3 st measured worse: it re-spreads speakers by F0)
            st = 12.0 * math.log2(v.target_f0_hz / f0_median)
            self.base_st = float(np.clip(st, -MAX_SHIFT_ST, MAX_SHIFT_ST))
        self.env_norm = np.zeros(self.K, dtype=np.float32)
        if ltas is not None and NORM_ENV > 0:
            grid_hz = np.arange(self.K) * self.sr / self.n
            lo, hi = NORM_BAND_HZ[0], min(NORM_BAND_HZ[1], 0.45 * self.sr)
            band = (grid_hz >= lo) & (grid_hz <= hi)
            lg = np.log2(np.maximum(grid_hz, 1.0))
            d = np.maximum(np.log2(lo) - lg, lg - np.log2(hi)).clip(0.0, None) / NORM_TAPER_OCT
            w = np.where(d < 1.0, 0.5 + 0.5 * np.cos(math.pi * np.minimum(d, 1.0)), 0.0)
            ref = np.interp(lg, np.log2(REF_SHAPE_HZ), REF_SHAPE_NP)
            ref = w * (ref - ref[band].mean())
            L = np.asarray(ltas, dtype=np.float64)
            # the speaker's shape is replaced by the average speech shape, not by a flat one (REF_SHAPE_NP)
            D = NORM_ENV * w * (L - L[band].mean()) - ref
            # keep the long-term power: dividing out formant peaks would
            # otherwise lower the level by 10-20 dB
            D -= 0.5 * math.log(np.sum(np.exp(2 * L)) / np.sum(np.exp(2 * (L - D))))
            self.env_norm = D.astype(np.float32)

    def _alpha_hops(self, j: np.ndarray) -> np.ndarray:
        """Pitch ratio for input hop ``j`` (samples [j*hop, (j+1)*hop)), from absolute time."""
        t = self.t0_s + (j + 0.5) * self.hop / self.sr
        v = self.voice
        return 2.0 ** ((self.base_st + sum(_drift(d, t) for d in v.pitch_drift)) / 12.0)

    def _envelope_params(self, t: np.ndarray):
        """Warp source points (T, P) in bins and gain coefficients (T, 1 + N_BANDS) at times ``t``."""
        # one row of every keyed envelope parameter: [global warp, 4 offsets, tilt, 6 bands]
        vals = self.env_base + self.env_amp * np.sin(t[:, None] * self.env_freq + self.env_phase)
        nb = len(self.voice.break_offsets)
        inner = self.out_points_hz[1:-1][None, :] * 2.0 ** (-(vals[:, :1] + vals[:, 1 : 1 + nb]))
        nyq = self.sr / 2.0
        inner = np.clip(np.maximum.accumulate(inner, axis=1), 1.0, 0.98 * nyq)
        src_hz = np.concatenate([np.zeros((len(t), 1)), inner, np.full((len(t), 1), nyq)], axis=1)
        return (src_hz * (self.n / self.sr)).astype(np.float32), vals[:, 1 + nb :].astype(np.float32)

    # ------------------------------------------------------------ timeline

    def _S_upto(self, j_max: int) -> None:
        """Extend the cached S(j*hop) and per-hop alpha through hop boundary ``j_max``."""
        have = self.S_base_j + len(self.S_vals) - 1
        if j_max <= have:
            return
        js = np.arange(have, j_max)
        alphas = self._alpha_hops(js)
        self.S_vals = np.concatenate([self.S_vals, self.S_vals[-1] + np.cumsum(alphas * self.hop)])
        self.A_vals = np.concatenate([self.A_vals, alphas])

    def _S_at(self, x: np.ndarray) -> np.ndarray:
        """Stretched position (float64) of sample positions ``x``."""
        j = np.floor_divide(x, self.hop).astype(np.int64)
        self._S_upto(int(j[-1]) + 1)
        r = j - self.S_base_j
        return self.S_vals[r] + self.A_vals[r] * (x - j * self.hop)

    # ------------------------------------------------------------ streaming

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed the next samples (shape (m,)); return the output samples now final."""
        x = np.asarray(x, dtype=np.float32)
        self.samples_in += len(x)
        self.in_buf = np.concatenate([self.in_buf, x])
        available = (len(self.in_buf) - self.n) // self.hop + 1 if len(self.in_buf) >= self.n else 0
        out = [self._frames(s, min(CHUNK_FRAMES, available - s)) for s in range(0, available, CHUNK_FRAMES)]
        self.in_buf = self.in_buf[available * self.hop :].copy()
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """Return the rest of the output; afterwards the stream is finished."""
        n, hop = self.n, self.hop
        out = []
        chunk = 64
        need = (chunk - 1) * hop + n
        while self.samples_out < self.samples_in:
            # the input continues with zeros until every real sample is final
            if len(self.in_buf) < need:
                self.in_buf = np.concatenate([self.in_buf, np.zeros(need - len(self.in_buf), dtype=np.float32)])
            out.append(self._frames(0, chunk))
            self.in_buf = self.in_buf[chunk * hop :].copy()
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _frames(self, start: int, count: int) -> np.ndarray:
        n, hop = self.n, self.hop
        seg = self.in_buf[start * hop : start * hop + (count - 1) * hop + n]
        frames = np.lib.stride_tricks.sliding_window_view(seg, n)[::hop][:count]
        m = self.frames_done + np.arange(count)
        self.frames_done += count
        y, pos, hb = self._process(frames, m)
        self._overlap_add(y, pos)
        self._high_band_add(hb, int(m[0]))
        return self._emit()

    def _high_band_add(self, hb: np.ndarray | None, m0: int) -> None:
        """Overlap-add high-band frames (real-time grid, frame m starts at m*hop - (n - hop))."""
        n, hop = self.n, self.hop
        start = m0 * hop - (n - hop)
        T = self.hb_frames if hb is None else len(hb)
        end = start + (T - 1) * hop + n
        grow = end - (self.hb0 + len(self.hb))
        if grow > 0:
            self.hb = np.concatenate([self.hb, np.zeros(grow, dtype=np.float32)])
        if hb is None:
            return
        off = start - self.hb0
        parts = hb.reshape(T, 4, hop)
        for j in range(4):
            self.hb[off + j * hop : off + j * hop + T * hop] += parts[:, j, :].reshape(-1)

    def _overlap_add(self, y: np.ndarray, pos: np.ndarray) -> None:
        n = self.n
        if self.z0 is None:
            self.z0 = int(pos[0])
        grow = int(pos[-1]) + n - (self.z0 + len(self.z))
        if grow > 0:
            self.z = np.concatenate([self.z, np.zeros(grow, dtype=np.float32)])
            self.zw = np.concatenate([self.zw, np.zeros(grow, dtype=np.float32)])
        # frames sit at irregular integer offsets: scatter-add them with bincount
        first = int(pos[0]) - self.z0
        idx = ((pos - pos[0])[:, None] + np.arange(n)[None, :]).ravel()
        span = int(pos[-1] - pos[0]) + n
        self.z[first : first + span] += np.bincount(idx, weights=y.ravel(), minlength=span).astype(np.float32)
        wsq = np.broadcast_to(self.window_sq, y.shape).ravel()
        self.zw[first : first + span] += np.bincount(idx, weights=wsq, minlength=span).astype(np.float32)

    def _emit(self) -> np.ndarray:
        """Resample the finished part of the stretched signal back to real time."""
        # stretched positions before the next synthesis frame's start are final
        self._S_upto(self.frames_done)
        next_start = np.rint(self.S_vals[self.frames_done - 1 - self.S_base_j] - self.n / 2)
        # nothing past the last analysed frame's centre can be final yet
        # (the high band's next frame starts at (frames_done - 3) * hop)
        hi = min(self.samples_in, (self.frames_done - 3) * self.hop)
        if hi <= self.samples_out:
            return np.zeros(0, dtype=np.float32)
        x = np.arange(self.samples_out, hi, dtype=np.float64)
        S = self._S_at(x)
        ok = int(np.searchsorted(S, next_start - _HALF - 1.0, side="left"))
        if ok == 0:
            return np.zeros(0, dtype=np.float32)
        S = S[:ok]
        base = np.floor(S)
        i = base.astype(np.int64) - self.z0
        f = (S - base).astype(np.float32)
        lo, top = int(i[0]) - _HALF + 1, int(i[-1]) + _HALF + 1
        zz = self.z[lo:top] / np.maximum(self.zw[lo:top], np.float32(1e-3))
        i -= lo
        # windowed-sinc interpolation from a table of fractional phases: a
        # cubic leaves mirror images of the speech band at -20..-30 dB when
        # shifting down (audible as hiss in the empty top band)
        w = _SINC_TABLE[np.rint(f * _PHASES).astype(np.int32)]  # (m, taps)
        taps = zz[i[:, None] + _TAP_OFFSETS[None, :]]
        y = np.einsum("ij,ij->i", taps, w)
        a = self.samples_out - self.hb0
        y += self.hb[a : a + ok]
        self.samples_out += ok
        drop_hb = self.samples_out - self.hb0
        self.hb = self.hb[drop_hb:]
        self.hb0 = self.samples_out
        keep_from = int(base[-1]) - _HALF - self.z0
        if keep_from > 0:
            self.z = self.z[keep_from:]
            self.zw = self.zw[keep_from:]
            self.z0 += keep_from
        drop = self.samples_out // self.hop - 1 - self.S_base_j
        if drop > 0:
            self.S_vals = self.S_vals[drop:]
            self.A_vals = self.A_vals[drop:]
            self.S_base_j += drop
        return y

    def _process(self, frames: np.ndarray, m: np.ndarray):
        """Analyse frames (T, n); return windowed synthesis frames (T, n) and integer starts (T,)."""
        n, hop, K = self.n, self.hop, self.K
        T = len(frames)
        # frame m is centred on hop boundary m - 1
        self._S_upto(int(m[-1]))
        r = (m - 1) - self.S_base_j
        alpha = self.A_vals[r].astype(np.float32)
        pos = np.rint(self.S_vals[r] - n / 2).astype(np.int64)
        src_bins, gains = self._envelope_params(self.t0_s + (m - 1) * hop / self.sr)

        X = np.fft.rfft(frames * self.window, axis=1)
        power = X.real**2 + X.imag**2
        E = _log_envelope(power, self.cep_a, self.cep_b, self.rel_floor, self.abs_floor)

        # instantaneous frequency (rad/sample) of every bin
        phase = np.angle(X)
        prev = np.empty_like(phase)
        prev[1:] = phase[:-1]
        prev[0] = self.prev_phase if self.prev_phase is not None else phase[0] - self.expected_advance
        self.prev_phase = phase[-1].copy()
        dev = phase - prev - self.expected_advance
        dev -= np.float32(TWO_PI) * np.round(dev * np.float32(1 / TWO_PI))
        omega = self.bin_omega + dev * np.float32(1 / hop)

        # phase vocoder: advance by omega times the actual integer synthesis hop
        last = self.last_pos if self.last_pos is not None else int(pos[0])
        hops = np.diff(pos, prepend=last).astype(np.float64)
        adv = omega * hops[:, None]
        adv[0] += phase[0] if self.out_phase is None else self.out_phase
        out_phase = np.cumsum(adv, axis=0)
        self.out_phase = np.mod(out_phase[-1], TWO_PI)
        self.last_pos = int(pos[-1])

        # target envelope on the output grid, read at alpha * f
        # speaker normalization: the speaker's long-term envelope shape is
        # divided out before the keyed warp, tilt and band gains
        Ew = _interp_rows(E - self.env_norm, _matmul(src_bins, self.warp_basis))
        mean = Ew.mean(axis=1, keepdims=True)
        E_out = mean + np.float32(self.voice.contrast) * (Ew - mean) + _matmul(gains, self.gain_basis)
        scaled = alpha[:, None] * self.bins[None, :]
        Ez = _interp_rows(E_out, scaled)
        # boosts are free where the source has signal; bins near the floor
        # (empty bands of telephone audio) may rise only MAX_BOOST_DB, or the
        # noise floor would be lifted into the speech band
        # (a ramp, not a threshold: the output must not jump with tiny input changes)
        depth = E.max(axis=1, keepdims=True) - E
        ramp = np.clip((self.active_range - depth) * self.ramp_scale + 0.5, 0.0, 1.0)
        cap = self.max_boost + (self.max_boost_active - self.max_boost) * ramp
        mag = np.sqrt(power) * np.exp(np.minimum(Ez - E, cap))
        mag[scaled > self.top] = 0.0  # would alias after resampling, or lies above the speech band
        hb = self._high_band(E_out, alpha, power, m)
        ph = np.mod(out_phase, TWO_PI).astype(np.float32)
        Y = np.empty((T, K), dtype=np.complex64)
        Y.real = mag * np.cos(ph)
        Y.imag = mag * np.sin(ph)
        y = np.fft.irfft(Y, n, axis=1)
        return y * self.window, pos, hb

    def _high_band(self, E_out: np.ndarray, alpha: np.ndarray, power: np.ndarray, m: np.ndarray):
        """Noise with the target envelope above alpha * Nyquist (frames (T, n), windowed) or None.

        Shifting down by resampling empties the top of the band (fricatives
        live there); filling it with noise shaped by the target envelope keeps
        consonants audible and carries no harmonic (F0) structure of the
        source. Phases come from a fixed table indexed by absolute frame
        number: deterministic and block-size independent.
        """
        self.hb_frames = len(m)
        if float(alpha.min()) >= 1.0:
            return None
        cut = (alpha * self.top)[:, None]
        ramp = np.clip((self.bins[None, :] - HB_START * cut) / ((HB_FULL - HB_START) * cut), 0.0, 1.0)
        # fade the fill out on near-silent frames (a ramp: no jumps), so
        # digital silence stays silent
        level_db = 10 * np.log10(power.max(axis=1) + 1e-30)
        gate = np.clip((level_db - HB_GATE_DB) / 10.0, 0.0, 1.0).astype(np.float32)
        # fades out as alpha approaches 1 (nothing left to fill): continuous in
        # alpha, and frame by frame, so the chunking cannot change the output
        fade = np.clip((1.0 - alpha) * 10.0, 0.0, 1.0).astype(np.float32)
        mag = np.exp(E_out) * ramp * ((gate * fade)[:, None] * np.float32(HB_GAIN))
        mag[:, self.top + 1:] = 0.0
        ph = _HB_PHASES[m % len(_HB_PHASES)][:, :self.K]
        Y = np.empty_like(mag, dtype=np.complex64)
        Y.real = mag * np.cos(ph)
        Y.imag = mag * np.sin(ph)
        return np.fft.irfft(Y, self.n, axis=1) * (self.window * np.float32(1 / 1.5))
