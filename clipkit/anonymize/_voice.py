"""Keyed voice parameters: HMAC(installation secret, role + party pseudonym) -> Voice.

Design of the keyed space
-------------------------
A voice is a point in a ~35-dimensional continuous space, every coordinate
drawn from 32 HMAC-derived bits:

* pitch: a base shift ``semitones`` (up or down) plus two slow sinusoidal
  drifts (periods 4-8 s and 6-10 s, keyed phases, combined amplitude
  1.0-1.5 st). ``3 + drift <= |semitones| <= 6.5 + drift``, so the
  instantaneous shift never comes closer than 3 semitones to zero. The
  "pitch" method shifts by it; strong-v2 instead moves the clip's median F0
  onto ``target_f0_hz`` (keyed, per role) and uses ``semitones`` only for
  clips with nothing voiced (and its sign for the warp direction);
* formant warp: a global envelope shift ``warp_octaves`` that always moves
  against ``semitones`` (keyed up -> formants down and vice versa), with its own
  drift, plus four keyed breakpoints (jittered output frequency, local
  offset +-0.2 octave that drifts too): a non-uniform, slowly moving
  piecewise-linear frequency warp that no single resampling can undo;
* envelope contrast (0.3-1.0: flattened formants, never sharpened),
  spectral tilt 1-6 dB/octave either way with drift, and six formant-band
  gains of +-24 dB (+-6 dB in the lowest band) with drifts of up to 4 dB;
  the tilt is corrected so that tilt and gains together slope between
  -6 and 0 dB/octave (strong-v7: a rising net slope left pitch trackers
  finding no voice in 31 % of renderings of low male voices, and listeners
  a thin, hissy one).

The reasons for these ranges, measured, are in bench/results/anonymizer-history.md.

Caller and agent draw from disjoint regions: a caller's formants move by
0.17-0.23 octave, an agent's by 0.29-0.35 (and their target F0s are
130-160 Hz vs 170-205 Hz), and the warp drift (<= 0.03)
cannot close the gap, so the two voices on one call never coincide, not even
for a moment. A mixed (mono) recording may take any value in 0.12-0.30.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import unicodedata
from dataclasses import dataclass

ROLES = ("caller", "agent", "mixed")
MIN_SECRET_BYTES = 16

# keyed ranges; changing any of them changes every voice: bump the version
MIN_SHIFT_ST = 3.0
SHIFT_SPAN_ST = 3.5  # |base| in [3 + drift, 3 + drift + span]
DRIFT_ST = (1.0, 1.5)  # combined amplitude of the two pitch drifts
CALLER_WARP_OCT = (0.17, 0.23)  # |global formant shift|, octaves
AGENT_WARP_OCT = (0.29, 0.35)
WARP_DRIFT_OCT = (0.02, 0.03)
BREAK_HZ = (450.0, 1050.0, 1800.0, 2700.0)  # nominal breakpoints at 8 kHz
BREAK_JITTER = 0.12  # relative, keyed
BREAK_OFFSET_OCT = 0.2  # keyed local warp, +-
BREAK_DRIFT_OCT = 0.07
TILT_DB_OCT = (1.0, 6.0)  # |tilt|, dB per octave
TILT_DRIFT_DB_OCT = 1.5
# +- per band, lowest (300-450 Hz) first: that band carries the first
# harmonics of the target F0 on telephone audio, and a deep cut or boost there
# trips pitch tracking. Every range here was measured on the privacy bench:
# the figures are in bench/results/anonymizer-history.md.
BAND_GAIN_DB = (6.0, 24.0, 24.0, 24.0, 24.0, 24.0)
BAND_DRIFT_DB = 4.0
GAIN_BAND_HZ = (300.0, 3400.0)  # tilt pivots and band bumps split this range geometrically
# tilt and band gains can add up to one steep slope (e.g. +4 dB/oct tilt on
# gains that cut 450-680 Hz and lift the top: +13 dB/oct in all): the voice
# turns thin and hissy. The tilt is corrected so the net slope stays in this
# range (dB/octave, least squares over the bands). A rising net slope lifts
# the aperiodic top of a band-limited low voice over its weak harmonics, and
# pitch trackers (and listeners) lose its voice.
NET_SLOPE_DB_OCT = (-6.0, 0.0)
# sharpening formants lets single harmonics dominate: pitch trackers (and
# listeners) then hear octave jumps; flattening costs nothing
CONTRAST = (0.3, 1.0)
N_BANDS = len(BAND_GAIN_DB)
# strong-v2 speaker normalization: the clip's median F0 is mapped onto a keyed
# target (log-uniform in the role's region); callers and agents are disjoint
CALLER_TARGET_F0_HZ = (130.0, 160.0)
AGENT_TARGET_F0_HZ = (170.0, 205.0)

_DOMAIN = b"clipkit/voice/v1"


@dataclass(frozen=True)
class Drift:
    """One slow sinusoidal modulation ``amp * sin(2 pi t / period_s + phase)``."""

    amp: float
    period_s: float
    phase: float

    def __repr__(self) -> str:  # never show keyed values
        return "Drift(<hidden>)"


@dataclass(frozen=True)
class Voice:
    """Keyed parameters of one pseudo-voice.

    Built by :func:`derive_voice`; treat as secret-derived data: ``repr`` and
    ``str`` hide every parameter, and nothing in clipkit prints, logs or
    exports them. Equal voices compare equal (same party, same key).

    Attributes
    ----------
    role : str
        "caller", "agent" or "mixed".
    semitones : float
        Base pitch shift in semitones (|value| >= 4). The ``"pitch"``
        method uses only this; strong-v2 only where nothing is voiced.
    pitch_drift : tuple of Drift
        Added to ``semitones``; amplitudes in semitones, periods 4-10 s.
    warp_octaves : float
        Global formant (spectral-envelope) shift in octaves, always of the
        opposite sign to ``semitones``; 0.17-0.23 for callers, 0.29-0.35 for
        agents.
    warp_drift : Drift
        Added to ``warp_octaves`` (octaves).
    break_hz : tuple of float
        Output frequencies of the warp breakpoints at 8 kHz (scaled by sr/8000).
    break_offsets : tuple of float
        Extra local warp at each breakpoint, octaves.
    break_drifts : tuple of Drift
        Drift of each local offset (octaves).
    contrast : float
        Envelope contrast: >1 sharpens formants, <1 flattens.
    tilt_db_oct : float
        Spectral tilt in dB per octave around 1 kHz.
    tilt_drift : Drift
    band_gains_db : tuple of float
        Gains of six formant bands (dB).
    band_drifts : tuple of Drift
    target_f0_hz : float
        Median F0 the strong method maps every speaker onto (before drift).
    """

    role: str
    semitones: float
    pitch_drift: tuple
    warp_octaves: float
    warp_drift: Drift
    break_hz: tuple
    break_offsets: tuple
    break_drifts: tuple
    contrast: float
    tilt_db_oct: float
    tilt_drift: Drift
    band_gains_db: tuple
    band_drifts: tuple
    target_f0_hz: float = 150.0

    def __repr__(self) -> str:
        return f"Voice(role={self.role!r}, <keyed parameters hidden>)"

    __str__ = __repr__

    @property
    def max_drift_st(self) -> float:
        """Largest pitch excursion from ``semitones`` (sum of drift amplitudes)."""
        return sum(d.amp for d in self.pitch_drift)


class _Uniforms:
    """Deterministic stream of uniforms in [0, 1) from an HMAC-SHA256 counter expansion."""

    def __init__(self, prk: bytes):
        self._prk = prk
        self._counter = 0
        self._pool = b""

    def __call__(self, lo: float = 0.0, hi: float = 1.0) -> float:
        if len(self._pool) < 4:
            self._counter += 1
            self._pool += hmac.new(self._prk, self._counter.to_bytes(4, "big"), hashlib.sha256).digest()
        word, self._pool = self._pool[:4], self._pool[4:]
        return lo + (hi - lo) * (int.from_bytes(word, "big") / 2**32)

    def sign(self) -> float:
        return 1.0 if self() < 0.5 else -1.0

    def drift(self, amp: float, period: tuple[float, float]) -> Drift:
        return Drift(amp=amp, period_s=self(*period), phase=self(0.0, 2 * math.pi))


def _band_centres_log2() -> list[float]:
    """log2(centre / 1 kHz) of the gain bands (the renderer's geometric 300-3400 Hz split)."""
    lo, hi = GAIN_BAND_HZ
    edges = [lo * (hi / lo) ** (i / N_BANDS) for i in range(N_BANDS + 1)]
    return [math.log2(math.sqrt(a * b) / 1000.0) for a, b in zip(edges, edges[1:])]


def _limit_net_slope(tilt: float, gains, slopes: tuple[float, float]) -> float:
    """The tilt that keeps the slope of tilt + band gains (dB/octave, least squares) within ``slopes`` (low, high)."""
    x = _band_centres_log2()
    mx, mg = sum(x) / len(x), sum(gains) / len(gains)
    s_g = sum((a - mx) * (g - mg) for a, g in zip(x, gains)) / sum((a - mx) ** 2 for a in x)
    return max(slopes[0], min(slopes[1], tilt + s_g)) - s_g


def derive_voice(secret: bytes, *, voice_id: str, role: str) -> Voice:
    """Derive a party's pseudo-voice from the installation secret.

    Parameters
    ----------
    secret : bytes
        Installation secret, at least 16 bytes.
    voice_id : str
        The party's pseudonym (or ``"recording:<sha256>"`` for a mixed
        recording). Unicode is NFC-normalised first, so visually equal ids
        give the same voice.
    role : {"caller", "agent", "mixed"}
        Selects the keyed region; the role is also part of the HMAC message.

    Returns
    -------
    Voice

    Raises
    ------
    KeyFileError
        If ``secret`` is shorter than 16 bytes.
    BadInput
        If ``voice_id`` is empty or ``role`` unknown.
    """
    from clipkit.errors import BadInput, KeyFileError

    if not isinstance(secret, (bytes, bytearray)):
        raise TypeError("secret must be bytes")
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyFileError(f"the installation secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed")
    if role not in ROLES:
        raise BadInput(f"voice role {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(voice_id, str) or not voice_id:
        raise BadInput("voice_id must be a non-empty string")
    vid = unicodedata.normalize("NFC", voice_id).encode("utf-8")
    prk = hmac.new(bytes(secret), _DOMAIN + b"\0" + role.encode() + b"\0" + vid, hashlib.sha256).digest()
    u = _Uniforms(prk)

    drift_total = u(*DRIFT_ST)
    share = u(0.3, 0.7)
    pitch_drift = (
        u.drift(drift_total * share, (4.0, 8.0)),
        u.drift(drift_total * (1 - share), (6.0, 10.0)),
    )
    pitch_sign = u.sign()
    semitones = pitch_sign * (MIN_SHIFT_ST + drift_total + u(0.0, SHIFT_SPAN_ST))

    # formants always move against the pitch: no single resampling (the
    # shift-back and sweep attackers) can then line up both; the roles are
    # kept apart by the size of the formant move instead
    lo, hi = (CALLER_WARP_OCT if role == "caller" else AGENT_WARP_OCT if role == "agent"
              else (CALLER_WARP_OCT[0], AGENT_WARP_OCT[1]))
    warp_mag = u(lo, hi)
    warp_octaves = -pitch_sign * warp_mag
    warp_drift = u.drift(u(*WARP_DRIFT_OCT), (2.0, 10.0))

    break_hz = tuple(f * (1 + u(-BREAK_JITTER, BREAK_JITTER)) for f in BREAK_HZ)
    break_offsets = tuple(u(-BREAK_OFFSET_OCT, BREAK_OFFSET_OCT) for _ in BREAK_HZ)
    break_drifts = tuple(u.drift(BREAK_DRIFT_OCT * u(0.5, 1.0), (2.0, 10.0)) for _ in BREAK_HZ)
    contrast = math.exp(u(math.log(CONTRAST[0]), math.log(CONTRAST[1])))
    tilt = u.sign() * u(*TILT_DB_OCT)
    tilt_drift = u.drift(TILT_DRIFT_DB_OCT * u(0.5, 1.0), (2.0, 10.0))
    band_gains = tuple(u(-lim, lim) for lim in BAND_GAIN_DB)
    band_drifts = tuple(u.drift(BAND_DRIFT_DB * u(0.5, 1.0), (2.0, 10.0)) for _ in range(N_BANDS))
    tilt = _limit_net_slope(tilt, band_gains, NET_SLOPE_DB_OCT)
    # drawn last: every parameter above is unchanged from v1
    f_lo, f_hi = (CALLER_TARGET_F0_HZ if role == "caller" else AGENT_TARGET_F0_HZ if role == "agent"
                  else (CALLER_TARGET_F0_HZ[0], AGENT_TARGET_F0_HZ[1]))
    target_f0 = math.exp(u(math.log(f_lo), math.log(f_hi)))
    return Voice(
        role=role,
        semitones=semitones,
        pitch_drift=pitch_drift,
        warp_octaves=warp_octaves,
        warp_drift=warp_drift,
        break_hz=break_hz,
        break_offsets=break_offsets,
        break_drifts=break_drifts,
        contrast=contrast,
        tilt_db_oct=tilt,
        tilt_drift=tilt_drift,
        band_gains_db=band_gains,
        band_drifts=band_drifts,
        target_f0_hz=target_f0,
    )
