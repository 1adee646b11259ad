"""The privacy bench's real-people set (bench/make_voices.py make_real), on generated stand-in files.

The bench itself stays out of ``make test``; these check the cutting it relies on:
two utterances per person that never overlap, the length cap, and a clear
"not installed" instead of a half-made set.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def make_voices():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("make_voices", BENCH / "make_voices.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(BENCH))


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """Bursts of a harmonic tone with 200 ms pauses: something with quiet places to cut at."""
    sr = 8000
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * k * (110 + 10 * seed) * t) / k for k in range(1, 8))
    gate = (np.sin(2 * np.pi * 1.2 * t) > -0.3).astype(float)
    return (0.2 * y * gate + 0.001 * rng.standard_normal(len(t))).astype(np.float64)


@pytest.fixture
def codec2(tmp_path, make_voices):
    """A stand-in for /usr/share/codec2 holding every file REAL names (lengths as in the package)."""
    root = tmp_path / "codec2"
    lengths = {}
    for r in make_voices.REAL.values():
        for f, _a, b in r["pieces"]:
            lengths[f] = max(lengths.get(f, 0.0), b or 0.0, 6.0)
    for i, (f, secs) in enumerate(sorted(lengths.items())):
        path = root / f
        path.parent.mkdir(parents=True, exist_ok=True)
        (np.clip(_speechlike(secs, i), -1, 1) * 32767).astype("<i2").tofile(path)
    return root


def test_each_person_gets_two_utterances_that_never_overlap_and_the_rest_one(tmp_path, make_voices, codec2):
    out = tmp_path / "real"
    man = make_voices.make_real(out, source=codec2, verbose=False)
    by: dict = {}
    for u in man["utterances"]:
        by.setdefault(u["speaker"], []).append(u)
    assert set(by) == set(make_voices.REAL)
    for person, r in make_voices.REAL.items():
        utts = by[person]
        assert len(utts) == (2 if r["verify"] else 1), person
        for u in utts:  # a person's two utterances are capped; a quality-only one is the whole recording
            y, sr = sf.read(out / u["file"])
            cap = make_voices.REAL_SEGMENT_S if r["verify"] else 60.0
            assert sr == 8000 and 0.5 < len(y) / sr <= cap + 1e-9, (person, len(y) / sr)
        if r["verify"]:  # two different stretches of the recording, not one twice
            one, two = (sf.read(out / u["file"])[0] for u in utts)
            assert len(one) != len(two) or not np.array_equal(one, two), person
    # a piece cut in two is two halves: their samples are disjoint in the source
    y = make_voices._read_raw(codec2 / "raw/vk5qi.raw", 0, None)
    a, b = make_voices._split_quiet(y, 2)
    assert len(a) + len(b) == len(y) and 0.35 < len(a) / len(y) < 0.65
    assert json.loads((out / "manifest.json").read_text())["spec"] == man["spec"]


def test_a_missing_package_makes_no_set_and_says_why(tmp_path, make_voices, capsys):
    assert make_voices.make_real(tmp_path / "real", source=tmp_path / "nowhere") is None
    assert not (tmp_path / "real").exists()
    assert "codec2-examples is not installed" in capsys.readouterr().err


def test_a_cached_set_is_reused_and_a_damaged_one_remade(tmp_path, make_voices, codec2):
    out = tmp_path / "real"
    first = make_voices.make_real(out, source=codec2, verbose=False)
    victim = out / first["utterances"][0]["file"]
    stamp = victim.stat().st_mtime_ns
    assert make_voices.make_real(out, source=codec2, verbose=False) == first and victim.stat().st_mtime_ns == stamp
    victim.unlink()
    again = make_voices.make_real(out, source=codec2, verbose=False)
    assert victim.exists() and again["utterances"] == first["utterances"]


def test_setup_reads_the_voice_packages_without_the_bench_venv(make_voices):
    """``privacy.py --setup`` runs under a bare system Python: numpy and soundfile are not there yet.

    It once imported make_voices for its package list and stopped at ``import soundfile`` on a fresh
    machine; the list must come out whole with those imports blocked.
    """
    import subprocess

    code = (
        "import sys, importlib.util\n"
        "for m in ('numpy', 'soundfile', 'soxr', 'scipy'): sys.modules[m] = None\n"
        f"spec = importlib.util.spec_from_file_location('privacy_bench', {str(BENCH / 'privacy.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print('\\n'.join(mod.apt_packages()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == make_voices.APT_PACKAGES
