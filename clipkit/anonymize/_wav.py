"""Minimal streaming writer for 16-bit PCM WAV: RIFF, fmt, data and nothing else.

libsndfile may add PEAK/LIST chunks depending on version and options; a
clip that leaves the building must carry no metadata, so the 44-byte
header is written by hand and checked by the tests.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

MAX_DATA_BYTES = 0xFFFFFFFF - 36


class WavWriter:
    """Write interleaved int16 frames to a seekable binary file.

    Parameters
    ----------
    f : binary file object, seekable
    sr : int
        Sample rate in Hz.
    channels : int
    """

    def __init__(self, f: BinaryIO, *, sr: int, channels: int):
        self.f = f
        self.sr = int(sr)
        self.channels = int(channels)
        self.data_bytes = 0
        self._header()

    def _header(self) -> None:
        block_align = 2 * self.channels
        self.f.seek(0)
        self.f.write(b"RIFF" + struct.pack("<I", 36 + self.data_bytes) + b"WAVE")
        self.f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, self.channels, self.sr,
                                           self.sr * block_align, block_align, 16))
        self.f.write(b"data" + struct.pack("<I", self.data_bytes))

    def write(self, frames: np.ndarray) -> None:
        """Append frames, shape (m, channels), int16."""
        frames = np.ascontiguousarray(frames, dtype="<i2")
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(f"expected (m, {self.channels}) int16 frames")
        raw = frames.tobytes()
        if self.data_bytes + len(raw) > MAX_DATA_BYTES:
            from clipkit.errors import BadAudio

            raise BadAudio("the rendered clip would exceed the 4 GiB limit of a WAV file; render a shorter clip")
        self.f.write(raw)
        self.data_bytes += len(raw)

    def close(self) -> None:
        """Patch the chunk sizes into the header (the file stays open)."""
        end = self.f.tell()
        self._header()
        self.f.seek(end)


def to_int16(y: np.ndarray) -> np.ndarray:
    """Float samples -> int16 as libsndfile scales them (x 32768, clipped to -32768..32767), rounded.

    The same scale as decoding uses, so a 16-bit channel read as float and
    written back is byte-identical.
    """
    return np.clip(np.rint(np.asarray(y, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def chunks(data: bytes) -> list[tuple[bytes, int]]:
    """(id, size) of the chunks inside a RIFF/WAVE file's bytes (for checks and tests)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    out, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        out.append((cid, size))
        pos += 8 + size + (size & 1)
    return out
