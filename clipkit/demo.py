"""Build the demo library from ``sample_audio/`` (``python -m clipkit.demo --home DIR``).

Run by ``make run``. The first run creates the home, imports every call in
``sample_audio/calls.json``, cuts the suggested clips with their tags and
redactions, records the in-call objection, renders and approves the clips
that may be used, tries one export that the policy refuses (so the log shows
a refusal), and creates one account per role, printing their passwords.
Later runs find the home and change nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import analysis, consent, export, library, rendering, users
from . import db as dbmod
from .errors import ClipkitError
from .home import init_home

SAMPLES = Path(__file__).resolve().parent.parent / "sample_audio"
ACTOR = "demo-manager"


def build(home_dir: str | Path, *, samples: Path = SAMPLES, out=sys.stdout) -> dict:
    """Create and fill a demo home; returns what was made. Does nothing if the home exists."""
    final = Path(home_dir)
    if (final / "clipkit.db").exists():
        print(f"Demo library already at {final}; leaving it as it is.", file=out)
        return {"created": False}
    # built in a sibling folder and renamed at the end, so an interrupted
    # build never leaves a half-filled home that later runs would accept
    staging = final.with_name(f".{final.name}.building")
    if staging.exists():
        import shutil

        shutil.rmtree(staging)
    home, _ = init_home(staging)
    calls = json.loads((samples / "calls.json").read_text())
    summary: dict = {"created": True, "recordings": [], "clips": [], "users": {}}
    with dbmod.connect(home) as db:
        for call in calls:
            (res,) = library.import_recordings(
                db, home, [samples / call["file"]], caller=call["caller"], agent=call["agent"],
                channels=call["channels"], recorded_at=call["recorded_at"], basis=call["basis"],
                notice="Calls are recorded for quality and training purposes.", actor=ACTOR,
            )
            if res.error:
                raise ClipkitError(res.error)
            summary["recordings"].append(res.id)
            rec = library.get_recording(db, res.id)
            for sc in call["suggested_clips"]:
                cid = library.create_clip(db, home, res.id, start_s=sc["start_s"], end_s=sc["end_s"],
                                          title=sc["title"], tags=sc.get("tags", []), note=sc.get("note", ""),
                                          author=ACTOR)
                summary["clips"].append(cid)
                spans = [
                    (r["start_s"] - sc["start_s"], r["end_s"] - sc["start_s"], "beep")
                    for r in call.get("redactions", [])
                    if r["start_s"] >= sc["start_s"] and r["end_s"] <= sc["end_s"]
                ]
                if spans:
                    rendering.set_redactions(db, home, cid, spans, actor=ACTOR)
            if call["basis"] == "consent":
                for role in ("caller", "agent"):
                    consent.record(db, party_ref=rec[f"{role}_ref"], purpose="training", event="consent_given",
                                   actor=ACTOR, home=home, channel="in_call", note="Agreed at the start of the call.")
            objection = call.get("objection")
            if objection:
                consent.record(
                    db, party_ref=rec[f"{objection['party']}_ref"], purpose=objection["purpose"],
                    event="objection_made", actor=ACTOR, channel="in_call", home=home,
                    note="Said during the call that it must not be used for training.",
                    evidence={"recording_id": res.id, "seconds": objection["at_s"]},
                )
        # the calls list is ranked by what the audio shows: the abusive and the elderly call come first
        analysis.analyze_recordings(db, home, summary["recordings"], workers=1)
        rendering.render_clips(db, home, summary["clips"], actor=ACTOR)
        refused_clip = None
        for cid in summary["clips"]:
            try:
                rendering.approve(db, home, cid, actor=ACTOR)
            except ClipkitError:
                refused_clip = cid
        if refused_clip is not None:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    export.export_clips(db, home, [refused_clip], to=Path(tmp), actor=ACTOR,
                                        recipient="Training team (demo)")
                except ClipkitError:
                    pass  # the refusal is the point: it is in the log now
        for name, role in (("manager", "manager"), ("trainer", "trainer"), ("compliance", "compliance")):
            summary["users"][name] = users.add_user(db, name, role=role)
    if final.exists():
        final.rmdir()  # only an empty folder; anything else makes rename fail loudly
    staging.rename(final)
    print(f"Demo library created at {final}: {len(summary['recordings'])} calls, {len(summary['clips'])} clips.",
          file=out)
    print("Demo accounts (shown once; change them with 'clipkit user passwd NAME'):", file=out)
    for name, password in summary["users"].items():
        print(f"  {name:<11} {password}", file=out)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipkit.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="clipkit-data")
    args = parser.parse_args(argv)
    try:
        build(args.home)
    except ClipkitError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
