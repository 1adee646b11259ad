"""The demo library that `make run` builds from sample_audio/."""

from __future__ import annotations

import io
import json
from pathlib import Path

import soundfile as sf

from clipkit import auditlog, demo, library
from clipkit import db as dbmod
from clipkit.home import open_home

SAMPLES = Path(__file__).resolve().parent.parent / "sample_audio"


def test_sample_audio_matches_its_manifest():
    calls = json.loads((SAMPLES / "calls.json").read_text())
    assert len(calls) >= 5
    channels = []
    for call in calls:
        info = sf.info(str(SAMPLES / call["file"]))
        assert info.samplerate == 8000 and 20 <= info.duration <= 120
        channels.append(info.channels)
        for clip in call["suggested_clips"]:
            assert 0 <= clip["start_s"] < clip["end_s"] <= info.duration
    assert channels.count(1) == 1 and channels.count(2) == len(calls) - 1
    assert any(c["objection"] for c in calls)
    assert sum(f.stat().st_size for f in SAMPLES.iterdir()) < 6 * 1000 * 1000


def test_demo_builds_once_with_an_objection_and_a_refused_export(tmp_path):
    out = io.StringIO()
    summary = demo.build(tmp_path / "demo", out=out)
    assert summary["created"] and len(summary["recordings"]) == 6
    text = out.getvalue()
    for role in ("manager", "trainer", "compliance"):
        assert summary["users"][role] in text  # passwords are printed on first start
    home = open_home(tmp_path / "demo")
    with dbmod.connect(home) as db:
        clips, total = library.list_clips(db, limit=100)
        statuses = {c["status"] for c in clips}
        assert total == len(summary["clips"]) and "withdrawn" in statuses and "approved" in statuses
        assert any(c["tags"] for c in clips)
        refused, _ = auditlog.entries(db, refused=True)
        # the objecting caller's clip: its approval is refused (and logged), then its export
        assert [e["kind"] for e in refused] == ["clip.approve", "export.attempt"]
        assert all("objection" in json.dumps(e["data"]) for e in refused)
        assert auditlog.verify(db)["ok"]
        # the analysis ranks the calls a manager wants first: the abusive one, then the confused elderly caller
        from clipkit import analysis

        ranked, _ = analysis.ranked(db, home, sort="difficulty")
        files = {r["id"]: c["file"] for r, c in zip(sorted(ranked, key=lambda r: r["id"]),
                                                  json.loads((SAMPLES / "calls.json").read_text()))}
        top = [files[r["id"]] for r in ranked[:2]]
        assert top == ["call01_en_billing_abusive.flac", "call04_nl_elderly_tv.flac"], top
    assert not (tmp_path / ".demo.building").exists()
    again = io.StringIO()
    assert demo.build(tmp_path / "demo", out=again) == {"created": False}
    assert "already" in again.getvalue()
