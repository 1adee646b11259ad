"""Voice anonymization for telephone calls: keyed pseudo-voices, redaction, streaming render.

Methods
-------
``"strong"`` (default, ``strong-v7``)
    Speaker normalization, then a one-STFT source-filter transform (see
    :mod:`clipkit.anonymize._strong`). A stats pass measures the clip's
    median F0 and long-term average spectral envelope; the pitch is then
    scaled so that the median lands on the voice's keyed target F0
    (callers 130-160 Hz, agents 170-205 Hz; at most +-9 semitones), with
    two slow keyed drifts on top (periods 4-10 s, +-1-1.5 st together), and
    the speaker's long-term envelope shape (300-3300 Hz) is divided out
    before a keyed, drifting envelope transform: formants moved by
    0.17-0.35 octave through a non-uniform piecewise-linear warp with keyed
    breakpoints, plus keyed contrast, tilt and six formant-band gains.
    Every speaker is mapped onto the same keyed pseudo-speaker, so the
    output says much less about who spoke than a shift of their own voice.
    Speech that fills only the telephone band of a 44.1/48 kHz file keeps
    the band above empty, and tilt and band gains never add up to a rising
    slope (v7), which left low voices thin and hissy.
``"pitch"`` (``pitch-v2``) -- the WEAKER option
    ``librosa.effects.pitch_shift`` by the voice's constant keyed shift,
    tuned for 8 kHz (32 ms window, soxr_mq). Formants move with the pitch,
    so shifting back by the same amount largely restores the voice: use it
    only where the strong method's artefacts are unacceptable.

Keys
----
:func:`derive_voice` turns HMAC(installation secret, role + pseudonym) into
a :class:`Voice`; a party sounds the same in all their clips. Callers and
agents draw from disjoint regions (see :mod:`clipkit.anonymize._voice`).
``Voice`` hides its parameters from ``repr``; never log or export them.

Streaming
---------
:func:`render` reads a clip in blocks twice -- a stats pass (strong only:
median F0, long-term envelope and content band per kept channel, redaction
spans left out), then the render pass: silences the redaction spans,
anonymizes each kept channel with a stateful stream and writes the result
to a float scratch file -- and then finishes it (:mod:`._finish`, since v6
and pitch-v2): each channel back at its speaker's own speech level, beeps at
that level, a look-ahead limiter so no sample passes -1 dBFS, written as a
16-bit PCM WAV (RIFF/fmt/data only) atomically. Peak memory does not depend
on the clip length, and the output does not depend on the block size
(beyond float rounding, i.e. at most one 16-bit step).

Numba
-----
The strong chain and the F0 figures are pure numpy: a cold
``clipkit anonymize`` never imports librosa, scipy.signal or numba (those
imports alone take 4-5 s here). The pitch method does import librosa; its
numba functions are cached in ``NUMBA_CACHE_DIR``, which this module points
at one folder per installation before anything can import numba.
``python -m clipkit.anonymize --warm`` fills it.

Bad input
---------
Non-finite samples raise :class:`~clipkit.errors.BadAudio`; so do clips
shorter than ``MIN_DURATION_S`` (0.1 s). Silence in gives silence out (F0
figures ``None``). Full-scale or clipped input is processed normally; the
limiter keeps the output within -1 dBFS. A redaction span outside the clip raises
:class:`~clipkit.errors.BadInput` naming the span and the allowed range.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _numba_cache_dir() -> Path:
    """One numba cache per installation: the venv if writable, else the user cache."""
    if sys.prefix != sys.base_prefix and os.access(sys.prefix, os.W_OK):
        return Path(sys.prefix) / ".numba-cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clipkit" / "numba"


# must run before anything imports numba (librosa does, lazily, in the pitch method)
os.environ.setdefault("NUMBA_CACHE_DIR", str(_numba_cache_dir()))

import math  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import numpy as np  # noqa: E402

from . import _finish, _redact, _wav  # noqa: E402
from ._f0 import F0Median  # noqa: E402
from ._voice import ROLES, Voice, derive_voice  # noqa: E402

__all__ = [
    "KEEP", "METHODS", "METHOD_LABELS", "ROLES", "MIN_DURATION_S", "Span", "Voice",
    "anonymize", "derive_voice", "redact", "render", "warm_up",
]

METHODS = {"strong": "strong-v7", "pitch": "pitch-v2"}
METHOD_LABELS = {
    "strong": "strong (default): keyed, time-varying pitch and timbre transform",
    "pitch": "pitch (WEAKER): keyed constant pitch shift; shifting back largely restores the voice",
}
MIN_DURATION_S = 0.1
MIN_SR, MAX_SR = 8000, 48000
Span = tuple[float, float, str]  # (start_s, end_s, mode), mode in {"beep", "silence"}



def _errors():
    from clipkit.errors import BadAudio, BadInput

    return BadAudio, BadInput


def _stream_class(method: str):
    if method == "strong":
        from ._strong import StrongStream

        return StrongStream
    from ._pitch import PitchStream

    return PitchStream


def _check_method(method: str) -> None:
    _, BadInput = _errors()
    if method not in METHODS:
        raise BadInput(f"anonymization method {method!r} is not one of {', '.join(METHODS)}")


def _check_sr(sr) -> int:
    BadAudio, _ = _errors()
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not MIN_SR <= sr <= MAX_SR:
        raise BadAudio(f"sample rate {sr!r} Hz is not an integer within {MIN_SR}-{MAX_SR} Hz")
    return int(sr)


def _check_finite(y: np.ndarray, *, where: str, sr: int, offset: int = 0) -> None:
    BadAudio, _ = _errors()
    bad = ~np.isfinite(y)
    if bad.any():
        first = int(np.argwhere(bad)[0][-1]) + offset
        raise BadAudio(f"{where} contains NaN or infinite samples (first at {first / sr:.3f} s)")


def anonymize(y: np.ndarray, *, sr: int, voice: Voice, method: str = "strong", t0_s: float = 0.0) -> np.ndarray:
    """Anonymize one mono channel in memory.

    Parameters
    ----------
    y : np.ndarray, shape (n,), float32 or float64
        Samples in [-1, 1]; at least ``MIN_DURATION_S`` long.
    sr : int
        Sample rate in Hz, 8000-48000 (telephone audio: 8000).
    voice : Voice
        From :func:`derive_voice`.
    method : {"strong", "pitch"}
        ``"pitch"`` is the weaker, invertible option.
    t0_s : float
        Absolute time of ``y[0]`` in seconds: the strong method's
        parameters drift with absolute time, so pieces of one recording
        anonymized with their offsets follow the same trajectory.

    Returns
    -------
    np.ndarray, shape (n,), float32, within [-1, 1]

    Raises
    ------
    BadAudio
        Wrong shape or dtype, non-finite samples, too short, bad ``sr``.
    BadInput
        Unknown method.
    """
    BadAudio, BadInput = _errors()
    _check_method(method)
    sr = _check_sr(sr)
    if not isinstance(voice, Voice):
        raise TypeError("voice must be a Voice from derive_voice()")
    y = np.asarray(y)
    if y.ndim != 1:
        raise BadAudio(f"expected one channel, shape (n,); got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise BadAudio(f"expected float samples in [-1, 1]; got dtype {y.dtype}")
    if len(y) < MIN_DURATION_S * sr:
        raise BadAudio(
            f"the audio is {len(y) / sr * 1000:.0f} ms long; at least {MIN_DURATION_S * 1000:.0f} ms are needed"
        )
    _check_finite(y, where="the audio", sr=sr)
    if not math.isfinite(t0_s):
        raise BadInput("t0_s must be finite")
    y32 = y.astype(np.float32)
    kw = {}
    if method == "strong":
        kw = _speaker_stats(y32, sr=sr)
    stream = _stream_class(method)(voice, sr=sr, t0_s=float(t0_s), **kw)
    out = np.concatenate([stream.push(y32), stream.flush()])
    level_in, level_out = _finish.SpeechLevel(sr=sr), _finish.SpeechLevel(sr=sr)
    level_in.push(y32)
    level_out.push(out)
    out = out * _finish.match_gain(level_in.level(), level_out.level())
    return _finish.limit(out, sr=sr)


def _speaker_stats(y: np.ndarray, *, sr: int) -> dict:
    """Stats pass of the strong method over a whole signal: F0 median, long-term envelope, content band."""
    from ._strong import SpeakerStats

    st = SpeakerStats(sr=sr)
    st.push(y)
    return {"f0_median": st.f0_median(), "ltas": st.ltas(), "content_hz": st.content_hz()}


def redact(y: np.ndarray, *, sr: int, spans: Sequence[Span]) -> np.ndarray:
    """Cover spans with a 1 kHz beep or silence on every channel.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (channels, n), float
        Samples in [-1, 1].
    sr : int
        Sample rate in Hz.
    spans : sequence of (start_s, end_s, mode)
        Seconds relative to ``y[0]``; ``mode`` is "beep" (default) or
        "silence". Inside a span no original sample survives; 5 ms fades sit
        just outside it.

    Returns
    -------
    np.ndarray, same shape as ``y``, float32 (a new array)

    Raises
    ------
    BadInput
        A span outside ``0..n/sr`` or malformed (the message names it).
    BadAudio
        Wrong shape, dtype or non-finite samples.
    """
    BadAudio, _ = _errors()
    sr = _check_sr(sr)
    y = np.asarray(y)
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating):
        raise BadAudio(f"expected float samples of shape (n,) or (channels, n); got {y.dtype} {y.shape}")
    _check_finite(y, where="the audio", sr=sr)
    n = y.shape[-1]
    clean = _redact.validate_spans(spans, duration_s=n / sr)
    block = np.array(y, dtype=np.float32, ndmin=2, copy=True)
    _redact.apply(block, sr=sr, spans=_redact.to_samples(clean, sr=sr), offset=0, total=n)
    return block.reshape(y.shape)


def render(
    src: str | Path,
    dst: str | Path,
    *,
    start_s: float,
    end_s: float,
    channel_voices: Sequence[Voice | None],
    method: str,
    spans: Sequence[Span] = (),
    block_s: float = 30.0,
) -> dict:
    """Anonymize ``[start_s, end_s)`` of an audio file into a 16-bit PCM WAV, streaming.

    Parameters
    ----------
    src : path
        Any file soundfile reads (WAV, FLAC...).
    dst : path
        Output WAV; written to a temp file in the same folder, then
        ``os.replace``-d into place. Contains only RIFF/fmt/data chunks.
    start_s, end_s : float
        Clip range in seconds of the source, ``0 <= start_s < end_s <= duration``.
    channel_voices : sequence of Voice, KEEP or None, one per source channel
        Channel ``i`` is anonymized with ``channel_voices[i]``; ``None``
        drops the channel; :data:`KEEP` passes it through unchanged (only
        redaction applies: an agent hearing their own voice in a review).
        Output channels are the kept ones, in order.
    method : {"strong", "pitch"}
    spans : sequence of (start_s, end_s, mode)
        Redactions, seconds from the clip's start (``start_s``): silenced on
        every channel before anonymization; a ``beep`` span then gets a
        1 kHz tone at the channel's speech level.
    block_s : float
        Read block length in seconds; changes memory use, not the output.

    Returns
    -------
    dict
        ``{"duration_s", "f0_median_before": [Hz or None per kept channel],
        "f0_median_after": [...], "level_db_before": [speech level, dBFS],
        "gain_db": [level correction after the chain], "method",
        "method_version"}``. Medians and levels leave redaction spans out.

    Raises
    ------
    BadInput
        Unknown method, bad range, spans or channel_voices.
    BadAudio
        Unreadable source, non-finite samples, clip too short, bad sr.
    """
    import soundfile as sf

    BadAudio, BadInput = _errors()
    _check_method(method)
    if not (isinstance(block_s, (int, float)) and math.isfinite(block_s) and block_s >= 0.5):
        raise BadInput(f"block_s={block_s!r} must be a number of seconds >= 0.5")
    src, dst = Path(src), Path(dst)
    if not dst.parent.is_dir():
        raise FileNotFoundError(f"output folder {dst.parent} does not exist")
    try:
        info = sf.info(os.fsencode(src))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError/OSError
        raise BadAudio(f"cannot read audio file {src.name}: {exc}") from None
    sr = _check_sr(info.samplerate)
    channels, frames = info.channels, info.frames
    voices = list(channel_voices)
    if len(voices) != channels:
        raise BadInput(f"channel_voices has {len(voices)} entries; the file has {channels} channels")
    if any(v is not None and v is not KEEP and not isinstance(v, Voice) for v in voices):
        raise BadInput("channel_voices entries must be Voice, KEEP or None")
    kept = [i for i, v in enumerate(voices) if v is not None]
    if not kept:
        raise BadInput("channel_voices drops every channel; keep at least one")
    duration = frames / sr
    if not (math.isfinite(start_s) and math.isfinite(end_s) and 0.0 <= start_s < end_s <= duration + 0.5 / sr):
        raise BadInput(f"clip range {start_s:g}-{end_s:g} s is outside the recording (0-{duration:.3f} s)")
    a = int(round(start_s * sr))
    b = min(frames, int(round(end_s * sr)))
    n = b - a
    if n < MIN_DURATION_S * sr:
        raise BadAudio(f"the clip is {n / sr * 1000:.0f} ms long; at least {MIN_DURATION_S * 1000:.0f} ms are needed")
    span_samples = _redact.to_samples(_redact.validate_spans(spans, duration_s=n / sr), sr=sr)
    # every span is silence going into the chain (not one original sample enters it); beeps are added after
    silence = [(s0, s1, "silence") for s0, s1, _ in span_samples]
    exclude = [(s0, s1) for s0, s1, _ in span_samples]

    stream_cls = _stream_class(method)
    block = max(1, int(round(block_s * sr)))
    k = len(kept)

    def read_blocks(f_in):
        """Redacted (kept channels, m) blocks of the clip, and their offsets from its start."""
        from clipkit.audio import seek_frame

        seek_frame(f_in, a)
        pos = 0
        while pos < n:
            want = min(block, n - pos)
            data = f_in.read(want, dtype="float32", always_2d=True)
            if len(data) != want:
                raise BadAudio(f"{src.name} ended early: decoded {a + pos + len(data)} of {b} frames")
            chans = np.ascontiguousarray(data[:, kept].T)
            _check_finite(chans, where=src.name, sr=sr, offset=a + pos)
            _redact.apply(chans, sr=sr, spans=silence, offset=pos, total=n)
            yield chans
            pos += want

    level_in = [_finish.SpeechLevel(sr=sr, exclude=exclude) for _ in kept]
    if method == "strong":
        # stats pass (speaker normalization): median F0, long-term envelope and content band per
        # channel, redactions left out; constant memory like the render pass
        from ._strong import SpeakerStats

        stats = [SpeakerStats(sr=sr, exclude=exclude) for _ in kept]
        with sf.SoundFile(os.fsencode(src)) as f_in:
            for chans in read_blocks(f_in):
                for acc, lev, c in zip(stats, level_in, chans):
                    acc.push(c)
                    lev.push(c)
        streams = [_Keep() if voices[i] is KEEP else
                   stream_cls(voices[i], sr=sr, t0_s=a / sr, f0_median=st.f0_median(), ltas=st.ltas(),
                              content_hz=st.content_hz())
                   for i, st in zip(kept, stats)]
        f0_before = [st.f0 for st in stats]
    else:
        streams = [_Keep() if voices[i] is KEEP else stream_cls(voices[i], sr=sr, t0_s=a / sr) for i in kept]
        f0_before = [F0Median(sr=sr, exclude=exclude) for _ in kept]
    f0_after = [F0Median(sr=sr, exclude=exclude) for _ in kept]
    level_out = [_finish.SpeechLevel(sr=sr, exclude=exclude) for _ in kept]

    # the chain's output goes to a float scratch file beside dst: the level it came out at is known
    # only at the end, and the finishing pass (level, beeps, limiter) reads it back in blocks
    raw_fd, raw_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".f32", dir=str(dst.parent))
    raw = Path(raw_name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=str(dst.parent))
    tmp = Path(tmp_name)
    written = 0
    try:
        with os.fdopen(raw_fd, "w+b") as raw_f:
            # streams of different voices have different latencies: hold each
            # channel's output until every channel has reached the same sample
            pending = [np.zeros(0, dtype=np.float32) for _ in kept]

            def emit(outs: list[np.ndarray]) -> None:
                nonlocal written
                for j, o in enumerate(outs):
                    pending[j] = np.concatenate([pending[j], o])
                m = min(len(p) for p in pending)
                if m == 0:
                    return
                ready = [p[:m] for p in pending]
                for j in range(len(pending)):
                    pending[j] = pending[j][m:]
                for lev, o in zip(level_out, ready):
                    lev.push(o)
                np.ascontiguousarray(np.stack(ready, axis=1), dtype="<f4").tofile(raw_f)
                written += m

            with sf.SoundFile(os.fsencode(src)) as f_in:
                for chans in read_blocks(f_in):
                    if method != "strong":  # the stats pass has counted them
                        for acc, lev, c in zip(f0_before, level_in, chans):
                            acc.push(c)
                            lev.push(c)
                    emit([st.push(c) for st, c in zip(streams, chans)])
            emit([st.flush() for st in streams])
            if written != n:
                raise RuntimeError(f"rendered {written} frames for a {n}-frame clip")

            # finishing pass: each party at their own speech level, beeps at that level, no clipping
            ins = [lev.level() for lev in level_in]
            # a KEEP channel is left exactly as it came (its redactions apart): no level change, no limiter
            anon = [j for j, i in enumerate(kept) if voices[i] is not KEEP]
            keep = [j for j, i in enumerate(kept) if voices[i] is KEEP]
            gains = np.array([1.0 if j in keep else _finish.match_gain(li, lev.level())
                              for j, (li, lev) in enumerate(zip(ins, level_out))])[:, None]
            peaks = [_finish.beep_peak(li) for li in ins]
            limiter = _finish.Limiter(sr=sr, channels=len(anon)) if anon else None
            delay = np.zeros((len(keep), 0))  # KEEP channels wait as long as the limiter makes the others wait
            raw_f.seek(0)
            with os.fdopen(fd, "w+b") as out_f:
                writer = _wav.WavWriter(out_f, sr=sr, channels=k)

                def write(y: np.ndarray) -> None:
                    for acc, c in zip(f0_after, y):
                        acc.push(c)
                    writer.write(_wav.to_int16(y.T))

                def limited(y: np.ndarray | None) -> np.ndarray:
                    nonlocal delay
                    if limiter is None:
                        return y
                    part = limiter.push(y[anon]) if y is not None else limiter.flush()
                    if y is not None:
                        delay = np.concatenate([delay, y[keep]], axis=1)
                    out = np.empty((k, part.shape[1]), dtype=np.float32)
                    out[anon] = part
                    out[keep] = delay[:, :part.shape[1]]
                    delay = delay[:, part.shape[1]:]
                    return out

                pos = 0
                while pos < n:
                    m = min(block, n - pos)
                    y = np.fromfile(raw_f, dtype="<f4", count=m * k).reshape(m, k).T * gains
                    if anon:
                        # the chain's 32 ms frames smear the speech next to a span into its edges:
                        # the span is silenced again on the way out (a KEEP channel is silent there already)
                        part = np.ascontiguousarray(y[anon], dtype=np.float32)
                        _redact.apply(part, sr=sr, spans=silence, offset=pos, total=n)
                        y[anon] = part
                    _finish.add_beeps(y, sr=sr, spans=span_samples, offset=pos, total=n, peaks=peaks)
                    write(limited(y))
                    pos += m
                if limiter is not None:
                    write(limited(None))
                writer.close()
                out_f.flush()
                os.fsync(out_f.fileno())
        os.replace(tmp, dst)  # mkstemp made it 0600: renderings are as private as the calls
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        raw.unlink(missing_ok=True)
    return {
        "duration_s": round(n / sr, 3),
        "f0_median_before": [acc.median() for acc in f0_before],
        "f0_median_after": [acc.median() for acc in f0_after],
        "level_db_before": [None if li is None else round(10 * math.log10(li), 1) for li in ins],
        "gain_db": [round(20 * math.log10(float(g)), 1) for g in gains[:, 0]],
        "method": method,
        "method_version": METHODS[method],
    }


KEEP = "keep"  # a channel_voices entry: this channel goes through unchanged (an agent hearing their own voice)


class _Keep:
    """The stream of a KEEP channel: what goes in comes out, with no latency."""

    def push(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32).copy()

    def flush(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


def warm_up(*, methods: tuple[str, ...] = tuple(METHODS), say=None) -> None:
    """Run the chains once on a short signal so later calls start fast.

    Compiles and caches librosa's numba functions (used only by the ``pitch``
    method: about 30 s on a 2-core machine, once per installation) into
    ``NUMBA_CACHE_DIR`` and touches every code path of the strong chain and
    the F0 figures (well under a second).

    Parameters
    ----------
    methods : tuple of str
        The chains to warm, in order.
    say : callable, optional
        Called with a line of progress before and after each chain.
    """
    import time

    from ._f0 import f0_track
    from ._voice import derive_voice as _derive

    sr = 8000
    t = np.arange(sr) / sr
    y = (0.1 * np.sin(2 * np.pi * 150 * t) + 0.05 * np.sin(2 * np.pi * 450 * t)).astype(np.float32)
    voice = _derive(b"clipkit warm-up key, not a secret", voice_id="warm-up", role="caller")
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if say:
            say(f"warming the {method} chain"
                + (" (compiling librosa's numba code, about 30 s, once per installation)" if method == "pitch" else ""))
        t0 = time.perf_counter()
        out = anonymize(y, sr=sr, voice=voice, method=method)
        f0_track(out, sr=sr)
        if say:
            say(f"  {method} ready in {time.perf_counter() - t0:.1f} s")
