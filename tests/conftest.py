"""Shared fixtures: a fresh data home per test, generated call audio, an imported call.

Audio is generated, never committed: a two-voice "call" where caller and
agent take turns on their own channels, made of harmonic tones with a
speech-like syllable envelope.
"""

from __future__ import annotations

import hashlib
import json
import secrets

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from clipkit import db as dbmod
from clipkit import library, rendering, retention
from clipkit.cli import cli
from clipkit.db import now_iso, transaction
from clipkit.initialize import init_home


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
def cli_run(home, monkeypatch):
    """Run ``clipkit --home HOME [--json] ARGS...``; returns ``(result, the JSON printed or None)``."""
    monkeypatch.delenv("CLIPKIT_HOME", raising=False)

    def invoke(*args, as_json=True):
        extra = ["--json"] if as_json else []
        r = CliRunner().invoke(cli, ["--home", str(home.root), *extra, *map(str, args)], catch_exceptions=False)
        return r, (json.loads(r.stdout) if as_json and r.stdout.strip() else None)

    return invoke


@pytest.fixture
def crash_after_first_unlink(monkeypatch):
    """``arm(error=RuntimeError)``: retention then deletes one file and raises ``error`` at the next.

    A power cut between files. ``arm`` returns the list of files deleted before it.
    """
    def arm(error: type[Exception] = RuntimeError) -> list:
        real, done = retention._unlink_file, []

        def flaky(path):
            if done:
                raise error("power cut")
            done.append(path)
            real(path)

        monkeypatch.setattr(retention, "_unlink_file", flaky)
        return done

    return arm


def _fake_render(db, home, clip_id: int, *, method: str = "strong", actor: str = "manager") -> dict:
    """Write a stand-in anonymized WAV for a clip and register it as its current rendering."""
    clip = library.get_clip(db, clip_id)
    rec = library.get_recording(db, clip["recording_id"])
    n = int(round((clip["end_s"] - clip["start_s"]) * rec["sr"]))
    t = np.arange(n) / rec["sr"]
    y = (0.3 * np.sin(2 * np.pi * 330 * t + clip_id)).astype("float32")
    y = np.stack([y, y[::-1]], axis=1)
    out_dir = home.audio_dir / rendering.RENDER_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{secrets.token_hex(16)}.wav"
    sf.write(str(path), y, rec["sr"], subtype="PCM_16", format="WAV")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    version = f"{method}-test"
    with transaction(db):
        db["renderings"].insert({
            "clip_id": clip_id, "input_hash": rendering.input_hash(rec, clip, version), "method": method,
            "method_version": version, "path": home.relative(path), "sha256": sha,
            "figures": json.dumps({"f0_median_before": [210.0, 110.0], "f0_median_after": [160.0, 140.0]}),
            "created_at": now_iso(), "created_by": actor,
        })
        db.execute("UPDATE clips SET status = 'anonymized' WHERE id = ? AND status != 'withdrawn'", [clip_id])
    return rendering.current_rendering(db, library.get_clip(db, clip_id))


@pytest.fixture
def fake_render():
    """``fake_render(db, home, clip_id, method=, actor=)``: a stand-in rendering (no DSP), as the clip's current one."""
    return _fake_render


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


def add_accounts(db, home, password: str, *, agent_identifier: str = "E-0007") -> dict:
    """One account per role (the agent bound to ``agent_identifier``); returns ``{role: name}``."""
    from clipkit import coaching, users

    for role in users.ROLES:
        if role == "agent":
            coaching.add_agent_account(db, home, role, agent=agent_identifier, password=password)
        else:
            users.add_user(db, role, role=role, password=password)
    return {role: role for role in users.ROLES}


def wait_for_job(db, job_id: int, *, timeout: float = 60.0) -> dict:
    """Wait until a background job (clipkit.jobs) is no longer queued or running; returns its row."""
    import time

    from clipkit import jobs

    end = time.time() + timeout
    while time.time() < end:
        row = jobs.get(db, job_id)
        if row["state"] not in ("queued", "running"):
            return row
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is still {jobs.get(db, job_id)['state']} after {timeout:g} s")
