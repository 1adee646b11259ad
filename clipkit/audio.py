"""Read and validate audio files, parse channel maps, slice segments.

Only soundfile and numpy here: this module is imported by commands that must
start fast (``clipkit list``), so librosa stays out.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import BadAudio, BadInput, NotFound

MIN_SR = 8000
MAX_SR = 48000
#: a float file's samples beyond this (+18 dBFS) mean it was scaled wrongly (e.g. integers stored as floats)
MAX_FLOAT_PEAK = 8.0
# decoding in blocks keeps memory flat for a four-hour call
BLOCK_FRAMES = 1 << 18


@dataclass(frozen=True)
class AudioInfo:
    """What the header says, checked against what decoding found."""

    sr: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sr


@dataclass(frozen=True)
class ChannelMap:
    """Where each party's voice is in a recording.

    ``mixed`` means both parties share every channel (a mono line recording);
    otherwise ``caller`` and ``agent`` are channel indices.
    """

    caller: int | None
    agent: int | None

    @property
    def mixed(self) -> bool:
        return self.caller is None

    def to_text(self) -> str:
        if self.mixed:
            return "mixed"
        return f"caller={self.caller},agent={self.agent}"

    @classmethod
    def parse(cls, text: str | None, *, channels: int) -> "ChannelMap":
        """Parse ``caller,agent`` | ``agent,caller`` | ``mixed`` | ``caller=N,agent=M``.

        ``None`` picks the obvious map: mono is ``mixed``, stereo ``caller,agent``.
        More than two channels need an explicit ``caller=N,agent=M``.
        """
        if text is None:
            if channels == 1:
                return cls(None, None)
            if channels == 2:
                return cls(0, 1)
            raise BadAudio(
                f"the file has {channels} channels; say which to keep with --channels caller=N,agent=M"
            )
        spec = text.strip().lower().replace(" ", "")
        if spec == "mixed":
            return cls(None, None)
        if spec in ("caller,agent", "agent,caller"):
            if channels != 2:
                raise BadInput(
                    f"--channels {text} needs a stereo file, but it has {channels} channel(s)"
                    + ("; use --channels mixed for a mono recording" if channels == 1 else "")
                )
            return cls(0, 1) if spec == "caller,agent" else cls(1, 0)
        m = re.fullmatch(r"caller=(\d+),agent=(\d+)|agent=(\d+),caller=(\d+)", spec)
        if not m:
            raise BadInput(
                f"--channels {text!r} is not one of caller,agent | agent,caller | mixed | caller=N,agent=M"
            )
        caller, agent = (int(m[1]), int(m[2])) if m[1] is not None else (int(m[4]), int(m[3]))
        for name, idx in (("caller", caller), ("agent", agent)):
            if idx >= channels:
                raise BadInput(f"--channels {name}={idx} is out of range: the file has channels 0..{channels - 1}")
        if caller == agent:
            raise BadInput(f"--channels {text}: caller and agent must be on different channels")
        return cls(caller, agent)

    @classmethod
    def from_text(cls, text: str) -> "ChannelMap":
        if text == "mixed":
            return cls(None, None)
        parts = dict(p.split("=") for p in text.split(","))
        return cls(int(parts["caller"]), int(parts["agent"]))


def fs_path(path: str | os.PathLike) -> bytes:
    """The path as the bytes the file system knows: soundfile encodes text paths as strict UTF-8,
    which fails on a file name that is not UTF-8 (Python keeps such bytes as surrogates)."""
    return os.fsencode(path)


def display_path(path: str | os.PathLike) -> str:
    """A path printable anywhere: bytes that are not UTF-8 are shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def seek_frame(f: sf.SoundFile, frame: int) -> None:
    """Position a freshly opened ``f`` at ``frame``.

    libsndfile cannot seek in some formats (GSM 6.10 WAV, common from call
    recorders): those are read forward to the frame, block by block.
    """
    if f.seekable():
        f.seek(frame)
        return
    left = frame
    while left > 0:
        got = len(f.read(min(left, BLOCK_FRAMES), dtype="float32", always_2d=True))
        if got == 0:
            break
        left -= got


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read only the header of an audio file.

    Raises
    ------
    BadAudio
        If the path is missing, a folder, unreadable, or not an audio file.
    """
    p = Path(path)
    shown = display_path(p)
    if p.is_dir():
        raise BadAudio(f"{shown}: is a folder, not an audio file")
    if not p.exists():
        raise BadAudio(f"{shown}: no such file")
    if not os.access(p, os.R_OK):
        raise BadAudio(f"{shown}: permission denied")
    if p.stat().st_size == 0:
        raise BadAudio(f"{shown}: the file is empty (0 bytes)")
    try:
        info = sf.info(fs_path(p))
    except sf.SoundFileError as e:
        raise BadAudio(f"{shown}: not a readable audio file ({_plain(e)})") from None
    return AudioInfo(
        sr=int(info.samplerate), channels=int(info.channels), frames=int(info.frames),
        format=info.format, subtype=info.subtype,
    )


def _plain(error: Exception) -> str:
    text = str(error)
    return text.split(": ", 1)[-1].strip() if "Error" in text else text


def wav_chunks(path: str | os.PathLike) -> list[tuple[bytes, int, int]] | None:
    """``(id, offset of the chunk's body, declared size)`` of each chunk of a RIFF WAVE file.

    Reads only the 8-byte chunk headers. Returns None when the file is not RIFF/WAVE.
    """
    p = Path(path)
    out = []
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while len(hdr := f.read(8)) == 8:
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            out.append((cid, f.tell(), size))
            f.seek(size + (size & 1), os.SEEK_CUR)
    return out


def _declared_wav_data_bytes(path: Path) -> tuple[int, int] | None:
    """(declared, present) sizes of a RIFF WAV ``data`` chunk, or None if not a plain RIFF.

    libsndfile quietly reads what is there when a WAV is cut short, so a
    truncated upload would import as a shorter call; the header still says
    how long it was meant to be.
    """
    for cid, offset, size in wav_chunks(path) or []:
        if cid == b"data":
            return size, Path(path).stat().st_size - offset
    return None


def check_header(info: AudioInfo, *, name: str, max_duration_s: float | None = None) -> None:
    """What the header alone can refuse, before a byte is copied (a 10 GB file claiming 74 h is refused at once).

    Raises
    ------
    BadAudio
        For a sample rate out of range or a declared length over the maximum.
    """
    if not MIN_SR <= info.sr <= MAX_SR:
        raise BadAudio(f"{name}: sample rate {info.sr} Hz is outside the supported {MIN_SR}–{MAX_SR} Hz")
    if max_duration_s is not None and info.frames / info.sr > max_duration_s:
        raise BadAudio(
            f"{name}: the recording is {info.frames / info.sr / 3600:.2f} h long, "
            f"longer than the maximum {max_duration_s / 3600:.2f} h"
        )


def validate(path: str | os.PathLike, *, max_duration_s: float | None = None) -> AudioInfo:
    """Read the header, then decode the whole file once, in blocks, to prove it is usable.

    Checks: 8–48 kHz, 1 or 2 channels (more are allowed only with an explicit
    channel map, checked by the caller), at least one sample, no NaN/inf, no
    truncation, no decode errors, at most ``max_duration_s``.

    Returns
    -------
    AudioInfo
        With ``frames`` as actually decoded.

    Raises
    ------
    BadAudio
        Naming the file and the reason.
    """
    p = Path(path)
    info = probe(p)
    check_header(info, name=display_path(p), max_duration_s=max_duration_s)
    if not MIN_SR <= info.sr <= MAX_SR:
        raise BadAudio(f"{p}: sample rate {info.sr} Hz is outside the supported {MIN_SR}–{MAX_SR} Hz")
    if max_duration_s is not None and info.frames / info.sr > max_duration_s:
        raise BadAudio(
            f"{p}: the recording is {info.frames / info.sr / 3600:.2f} h long, "
            f"longer than the maximum {max_duration_s / 3600:.2f} h"
        )
    if info.format == "WAV":
        sizes = _declared_wav_data_bytes(p)
        if sizes and sizes[0] not in (0, 0xFFFFFFFF) and sizes[1] < sizes[0]:
            raise BadAudio(
                f"{p}: the file is truncated (header promises {sizes[0]} bytes of audio, {sizes[1]} present)"
            )
    frames = 0
    try:
        with sf.SoundFile(fs_path(p)) as f:
            while True:
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    break
                if not np.isfinite(block).all():
                    bad = frames + int(np.argmax(~np.isfinite(block).all(axis=1)))
                    raise BadAudio(f"{p}: contains NaN or infinite samples (first at {bad / info.sr:.3f} s)")
                peak = float(np.abs(block).max())
                if peak > MAX_FLOAT_PEAK:
                    at = frames + int(np.argmax(np.abs(block).max(axis=1)))
                    raise BadAudio(
                        f"{p}: has samples far beyond full scale (peak {peak:.3g} at {at / info.sr:.3f} s, "
                        f"{20 * np.log10(peak):+.0f} dBFS): a float file must hold samples within ±1; "
                        "convert it to 16-bit PCM or rescale it")
                frames += len(block)
                if max_duration_s is not None and frames / info.sr > max_duration_s:
                    raise BadAudio(f"{p}: the recording is longer than the maximum {max_duration_s / 3600:.2f} h")
    except sf.SoundFileError as e:
        raise BadAudio(f"{p}: the audio cannot be decoded, the file may be truncated or corrupt ({_plain(e)})") from None
    if frames == 0:
        raise BadAudio(f"{p}: the file holds no audio samples")
    return AudioInfo(sr=info.sr, channels=info.channels, frames=frames, format=info.format, subtype=info.subtype)


def read_segment(path: str | os.PathLike, *, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
    """Decode ``[start_s, end_s)`` of a file.

    Returns
    -------
    y : np.ndarray, shape (channels, n), float32 in [-1, 1]
    sr : int
    """
    with sf.SoundFile(fs_path(path)) as f:
        sr = f.samplerate
        start = max(0, int(round(start_s * sr)))
        stop = min(f.frames, int(round(end_s * sr)))
        seek_frame(f, start)
        y = f.read(max(0, stop - start), dtype="float32", always_2d=True)
    return np.ascontiguousarray(y.T), sr


def envelope(path: str | os.PathLike, *, points: int = 2000) -> tuple[np.ndarray, float]:
    """Peak envelope of a whole file for drawing a waveform, read in blocks.

    Returns
    -------
    peaks : np.ndarray, shape (channels, <= points), in [0, 1]
    seconds_per_point : float
    """
    info = sf.info(fs_path(path))
    sr = int(info.samplerate)
    hop = max(1, int(np.ceil(info.frames / points)))
    chunks = []
    with sf.SoundFile(fs_path(path)) as f:
        for block in f.blocks(blocksize=hop * 512, dtype="float32", always_2d=True):
            n = len(block) // hop * hop
            if n:
                chunks.append(np.abs(block[:n]).reshape(-1, hop, block.shape[1]).max(axis=1))
            if len(block) > n:
                chunks.append(np.abs(block[n:]).max(axis=0, keepdims=True))
    peaks = np.concatenate(chunks).T if chunks else np.zeros((info.channels, 0), dtype="float32")
    return peaks, hop / sr


def to_wav_bytes(y: np.ndarray, *, sr: int) -> bytes:
    """16-bit PCM WAV bytes of ``y`` (shape (channels, n) or (n,)), no metadata chunks."""
    import io

    buf = io.BytesIO()
    data = y.T if y.ndim == 2 else y
    sf.write(buf, np.clip(data, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def centre_mix(wav: bytes) -> bytes:
    """A stereo call rendering as one centred channel: both voices in both ears.

    A two-channel call carries the caller on one channel and the agent on the
    other; played as is, a listener hears them hard left and right. The two
    channels are summed (each party speaks mostly alone, so each keeps their
    level) and scaled down only where the sum would clip. Mono input comes
    back unchanged.
    """
    import io

    with sf.SoundFile(io.BytesIO(wav)) as f:
        if f.channels != 2:
            return wav
        sr = f.samplerate
        y = f.read(dtype="float32", always_2d=True)
    mono = y.sum(axis=1)
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak > 0.999:
        mono *= 0.999 / peak
    return to_wav_bytes(mono, sr=sr)


# ---------------------------------------------------------------- what the app hands to a browser

NONCE_CHUNK = b"JUNK"  # the RIFF chunk id every WAV reader skips
NONCE_BYTES = 16


def with_nonce(wav: bytes) -> bytes:
    """A copy of RIFF/WAVE bytes with a random 16-byte ``JUNK`` chunk appended after the audio.

    Every payload handed to a browser goes through this. Streamlit names an
    in-memory media file by a hash of its length and its first, middle and
    last 64 KiB, shares the store between sessions, and keeps the first file
    stored under a name: without the nonce, a raw preview and an anonymized
    clip whose start, middle and end are digital silence get one name, and
    the trainer's player serves the manager's raw audio. With it, no two
    payloads share a name and no name can be guessed from the content.
    Players ignore a ``JUNK`` chunk; the audio is untouched.

    Raises
    ------
    ValueError
        If ``wav`` is not RIFF/WAVE.
    """
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE" or len(wav) % 2:
        raise ValueError("not an even-length RIFF/WAVE payload")
    out = wav + NONCE_CHUNK + struct.pack("<I", NONCE_BYTES) + os.urandom(NONCE_BYTES)
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def without_nonce(payload: bytes) -> bytes:
    """The original bytes of a :func:`with_nonce` payload (for checks: what was served is what is stored)."""
    tail = 8 + NONCE_BYTES
    if len(payload) < 12 + tail or payload[-tail:-tail + 4] != NONCE_CHUNK:
        raise ValueError("the payload carries no nonce chunk")
    body = payload[:-tail]
    return body[:4] + struct.pack("<I", len(body) - 8) + body[8:]


def segment_wav(path: str | os.PathLike, *, start_s: float, end_s: float) -> bytes:
    """16-bit PCM WAV bytes of ``[start_s, end_s)`` of a file (a loader the app may cache by sha256)."""
    y, sr = read_segment(path, start_s=start_s, end_s=end_s)
    return to_wav_bytes(y, sr=sr)


def read_verified(path: str | os.PathLike, sha256: str) -> bytes:
    """A file's bytes, checked against the sha256 recorded for it.

    Raises
    ------
    NotFound
        If the bytes do not match (the file was changed or replaced on disk).
    """
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise NotFound(f"the audio file {Path(path).name} does not match its recorded checksum")
    return data
