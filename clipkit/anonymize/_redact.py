"""Redaction spans: cover with a beep or silence, before any anonymization.

The cover owns the whole span: the 5 ms fades that avoid clicks lie just
*outside* it (the audio before the span fades out, after it fades in), so
not one sample inside a span keeps any of the original signal.
:func:`clipkit.anonymize.render` silences every span here, before the voice
chain, and adds the beep after it (:mod:`._finish`), at the speech level;
:func:`clipkit.anonymize.redact` (in memory, no chain) beeps here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MODES = ("beep", "silence")
BEEP_HZ = 1000.0
BEEP_AMPLITUDE = 0.1  # -20 dBFS peak: clearly audible, not startling
FADE_S = 0.005


def validate_spans(spans: Sequence, *, duration_s: float) -> list[tuple[float, float, str]]:
    """Check spans; return them as (start_s, end_s, mode) tuples sorted by start.

    Raises
    ------
    BadInput
        Naming the offending span and the allowed range ``0..duration_s``.
    """
    from clipkit.errors import BadInput

    out = []
    for span in spans:
        try:
            start, end = float(span[0]), float(span[1])
            mode = span[2] if len(span) > 2 else "beep"
        except (TypeError, ValueError, IndexError):
            raise BadInput(f"redaction span {span!r} is not (start_s, end_s, mode)") from None
        if mode not in MODES:
            raise BadInput(f"redaction span {start:g}-{end:g} s: mode {mode!r} is not beep or silence")
        # half a sample of slack: clip lengths come from sample counts
        if not (math.isfinite(start) and math.isfinite(end) and 0.0 <= start < end <= duration_s + 1e-6):
            raise BadInput(
                f"redaction span {start:g}-{end:g} s is outside the clip: spans must lie within "
                f"0-{duration_s:.3f} s (seconds from the clip's start) and end after they start"
            )
        out.append((start, min(end, duration_s), mode))
    return sorted(out)


def to_samples(spans: Sequence[tuple[float, float, str]], *, sr: int) -> list[tuple[int, int, str]]:
    """Span times -> sample ranges [a, b), rounded outward so each span is fully covered.

    Overlapping spans of the same mode are merged (two beeps with different
    phases would partly cancel); where modes differ, the later span wins.
    """
    out: list[tuple[int, int, str]] = []
    for s, e, m in sorted(spans):
        a, b = int(math.floor(s * sr)), int(math.ceil(e * sr))
        if out and out[-1][2] == m and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b), m)
        else:
            out.append((a, b, m))
    return out


def apply(block: np.ndarray, *, sr: int, spans: Sequence[tuple[int, int, str]], offset: int, total: int) -> np.ndarray:
    """Apply sample-range spans to ``block`` in place and return it.

    Parameters
    ----------
    block : np.ndarray, shape (channels, m), float32
        Samples ``offset .. offset + m`` of a signal of ``total`` samples.
    spans : sequence of (a, b, mode)
        Sample ranges relative to the signal start.
    """
    m = block.shape[-1]
    fade = max(1, int(round(FADE_S * sr)))
    idx = np.arange(offset, offset + m)
    for a, b, mode in spans:
        if b + fade <= offset or a - fade >= offset + m:
            continue
        inside = (idx >= a) & (idx < b)
        # keep-gain of the original: 0 inside, raised-cosine ramps just outside
        dist = np.where(idx < a, a - idx, idx - (b - 1))
        ramp = np.where(inside, 0.0, np.clip(dist / fade, 0.0, 1.0))
        keep = (0.5 - 0.5 * np.cos(math.pi * ramp)).astype(np.float32)
        block *= keep
        if mode == "beep":
            # the tone also fades in and out over the same ramps; its phase
            # starts at the span start, so blocks join seamlessly
            cover = (1.0 - keep) * (BEEP_AMPLITUDE * np.sin(2 * math.pi * BEEP_HZ * (idx - a) / sr))
            cover[idx < 0] = 0.0
            cover[idx >= total] = 0.0
            block += cover.astype(np.float32)
    return block
