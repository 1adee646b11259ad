"""Shared fixtures: a fresh data home per test, generated call audio, an imported call.

Audio is generated, never committed: a two-voice "call" where caller and
agent take turns on their own channels, made of harmonic tones with a
speech-like syllable envelope.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from clipkit import db as dbmod
from clipkit import library
from clipkit.home import init_home


def voice(seconds: float, *, sr: int = 8000, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """A speech-like mono signal: harmonics of a wobbling F0 under a 4 Hz syllable envelope.

    Returns
    -------
    np.ndarray, shape (round(seconds * sr),), float32 in [-0.5, 0.5]
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 < sr / 2 - 200)
    env = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    y = y * env
    return (0.5 * y / (np.abs(y).max() + 1e-9)).astype("float32")


def call(seconds: float = 20.0, *, sr: int = 8000, seed: int = 0) -> np.ndarray:
    """A stereo call, shape (n, 2): caller on channel 0, agent on channel 1, alternating turns of 2 s."""
    n = int(round(seconds * sr))
    caller = voice(seconds, sr=sr, f0=210, seed=seed)
    agent = voice(seconds, sr=sr, f0=110, seed=seed + 1)
    turn = (np.arange(n) // (2 * sr)) % 2 == 0
    noise = np.random.default_rng(seed).normal(0, 0.002, (n, 2)).astype("float32")
    return np.stack([np.where(turn, caller, 0), np.where(turn, 0, agent)], axis=1) + noise


@pytest.fixture
def make_audio(tmp_path):
    """Write a generated call to a file; returns the path. Every call is distinct (seeded)."""
    counter = iter(range(10_000))

    def make(name: str = "call.wav", *, seconds: float = 20.0, sr: int = 8000, channels: int = 2,
             subtype: str | None = "PCM_16", seed: int | None = None):
        seed = next(counter) if seed is None else seed
        y = call(seconds, sr=sr, seed=seed)
        if channels == 1:
            y = y.mean(axis=1)
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), y, sr, subtype=subtype)
        return path

    return make


@pytest.fixture
def home(tmp_path):
    h, _ = init_home(tmp_path / "home")
    return h


@pytest.fixture
def db(home):
    database = dbmod.connect(home)
    yield database
    database.close()


@pytest.fixture
def recording(db, home, make_audio):
    """A 20 s stereo call of caller 06-12345678 with agent E-0007, imported."""
    path = make_audio("rec.wav", seconds=20.0)
    (result,) = library.import_recordings(db, home, [path], caller="06-12345678", agent="E-0007", actor="tester")
    assert result.error is None, result.error
    return library.get_recording(db, result.id)


@pytest.fixture
def clip(db, home, recording):
    clip_id = library.create_clip(db, home, recording["id"], start_s=2.0, end_s=8.0, title="Caller gets angry",
                                  tags=["abusive"], author="manager")
    return library.get_clip(db, clip_id)
