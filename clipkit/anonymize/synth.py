"""Speech-like test signals for benches, warm-up and experiments (numpy only).

Real calls cannot be committed, so benches need something with the
properties the chain reacts to: a harmonic source whose F0 glides, formant
resonances that change every syllable, pauses and noisy consonants. The
resonators are applied in the frequency domain per syllable, which keeps
this module free of scipy.signal (a 3 s import on the target machine).
"""

from __future__ import annotations

import numpy as np

# (F1, F2, F3) in Hz for a few vowels; bandwidths are fixed below.
_VOWELS = np.array(
    [
        [730.0, 1090.0, 2440.0],  # a
        [270.0, 2290.0, 3010.0],  # i
        [300.0, 870.0, 2240.0],  # u
        [530.0, 1840.0, 2480.0],  # e
        [570.0, 840.0, 2410.0],  # o
    ]
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])


def _resonance_gain(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Magnitude response of cascaded second-order resonators at ``freqs`` (Hz)."""
    g = np.ones_like(freqs)
    for fc, bw in zip(formants, _BANDWIDTHS):
        # |H| of a two-pole resonance normalised to 1 at DC
        g *= (fc**2 + (bw / 2) ** 2) / np.sqrt(
            ((fc**2 + (bw / 2) ** 2 - freqs**2)) ** 2 + (bw * freqs) ** 2
        )
    return g


def speech_like(
    duration_s: float,
    *,
    sr: int = 8000,
    f0_hz: float = 120.0,
    seed: int = 0,
    formant_scale: float = 1.0,
    level_dbfs: float = -18.0,
) -> np.ndarray:
    """Synthesise a deterministic, speech-like mono signal.

    Parameters
    ----------
    duration_s : float > 0
        Length in seconds.
    sr : int
        Sample rate in Hz.
    f0_hz : float
        Mean fundamental frequency in Hz; the contour moves about ±4
        semitones around it (intonation) with syllable-rate vibrato.
    seed : int
        Selects the vowel order, pauses and noise.
    formant_scale : float
        Multiplies every formant frequency (a crude "other speaker").
    level_dbfs : float
        RMS level of the active parts in dBFS.

    Returns
    -------
    np.ndarray, shape (n,), float32, within [-1, 1]
        ``n = round(duration_s * sr)``.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    # intonation: slow declination-like phrases plus faster movement
    semis = (
        2.5 * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 6.3))
        + 1.2 * np.sin(2 * np.pi * 1.7 * t + rng.uniform(0, 6.3))
    )
    f0 = f0_hz * 2.0 ** (semis / 12.0)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    n_harm = int((sr / 2) / (f0_hz * 2 ** (-4 / 12)))
    src = np.zeros(n)
    for h in range(1, n_harm + 1):
        # only harmonics below Nyquist at each instant (no aliasing)
        src += np.where(h * f0 < 0.48 * sr, np.sin(h * phase) / h, 0.0)
    noise = rng.standard_normal(n)

    # syllables of 120-320 ms, some unvoiced (fricative) or silent (pause)
    out = np.zeros(n)
    seg_len = 256
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.12, 0.32) * sr)
        kind = rng.choice(3, p=[0.72, 0.16, 0.12])  # voiced, fricative, pause
        end = min(n, pos + syl)
        if kind == 2:
            pos = end
            continue
        seg = (src if kind == 0 else noise)[pos:end]
        nfft = 1 << int(np.ceil(np.log2(max(len(seg), seg_len) * 2)))
        freqs = np.fft.rfftfreq(nfft, 1 / sr)
        if kind == 0:
            formants = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale
            gain = _resonance_gain(freqs, formants)
        else:
            gain = np.clip((freqs - 2000.0) / 1000.0, 0, 1) * 3.0  # sibilant band
        # telephone band 300-3400 Hz
        gain = gain * np.clip((freqs - 200.0) / 100.0, 0, 1) * np.clip((3600.0 - freqs) / 200.0, 0, 1)
        shaped = np.fft.irfft(np.fft.rfft(seg, nfft) * gain, nfft)[: len(seg)]
        ramp = np.minimum(1.0, np.minimum(np.arange(len(seg)), np.arange(len(seg))[::-1]) / (0.02 * sr))
        out[pos:end] += shaped * ramp
        pos = end
    active = np.abs(out) > 1e-4
    rms = np.sqrt(np.mean(out[active] ** 2)) if active.any() else 1.0
    out *= 10 ** (level_dbfs / 20.0) / rms
    return np.clip(out, -1.0, 1.0).astype(np.float32)
