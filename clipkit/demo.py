"""Build the demo library from ``sample_audio/`` (``python -m clipkit.demo --home DIR``).

Run by ``make run``. The first run creates the home, imports every call in
``sample_audio/calls.json``, cuts the suggested clips with their tags and
redactions, records the in-call objection, renders and approves the clips
that may be used, tries one export that the policy refuses (so the log shows
a refusal), creates one account per role (the agent account is Sarah's,
E-0007, with one coaching review of the abusive call shared with her) and
prints their passwords. Later runs find the home and change nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import analysis, coaching, consent, export, library, rendering, users
from . import db as dbmod
from .errors import ClipkitError
from .initialize import init_home

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
            summary["users"][name] = users.add_user(db, name, role=role, admin=role == "manager")
        # coaching: agents by the names their supervisor knows, Sarah's login, one review shared with her
        names = {"E-0007": "Sarah (team A)", "E-0012": "Mark (team B)", "E-0015": "Sanne (team B)",
                 "E-0021": "Ravi (team A)"}
        for ident, name in names.items():
            coaching.label_agent(db, home, ident, name, actor=ACTOR)
        summary["users"]["agent"] = coaching.add_agent_account(db, home, "agent", agent="E-0007", actor=ACTOR)
        abusive = summary["recordings"][0]
        review = coaching.create_review(db, home, abusive, reviewer=ACTOR)
        for at_s, text in ((3.0, "Warm, clear greeting with your name: exactly right."),
                           (44.0, "Here the caller cuts in and shouts. You kept your voice down: well done."),
                           (52.0, "Setting the boundary calmly; next time offer the full refund a little sooner.")):
            coaching.comment(db, review["id"], at_s=at_s, text=text, author=ACTOR)
        coaching.score(db, home, review["id"], {"greeting": 5, "verification": 4, "listening": 4, "solution": 4,
                                                "tone": 5, "closing": 4}, actor=ACTOR,
                       overall_note="A hard call handled with patience.")
        coaching.share(db, home, review["id"], actor=ACTOR)
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
