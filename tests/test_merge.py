"""Objections that reach nobody are flagged; two parties known to be one person are merged."""

from __future__ import annotations

import pytest

from clipkit import auditlog, consent, export, library, merge, notes, parties
from clipkit.errors import BadInput, NotFound


def _ref(db, home, identifier):
    return parties.lookup(db, home.secret(), identifier, region=home.config["phone_region"])["ref"]


def test_an_objection_for_someone_never_heard_warns(cli_run, recording):
    r, out = cli_run("object", "--caller", "06-99999999")
    assert r.exit_code == 0
    assert out["new_party"] is True and out["recordings"] == 0
    assert "matches nobody heard" in out["warning"]
    r, _ = cli_run("object", "--caller", "06-99999999", as_json=False)
    assert "WARNING: this identifier matches nobody heard" in r.stdout


def test_a_consent_event_for_a_caller_heard_does_not_warn(cli_run, recording):
    r, out = cli_run("consent", "grant", "--caller", "+31 6 1234 5678", "--purpose", "quality")
    assert r.exit_code == 0 and out["new_party"] is False and out["recordings"] == 1


def test_the_warning_names_a_party_stored_under_another_spelling(cli_run, db, home, make_audio):
    path = make_audio("be.wav", seconds=4)
    library.import_recordings(db, home, [path], caller="0470 12 34 56", agent="E-1", actor="t")
    r, out = cli_run("object", "--caller", "+32 470 12 34 56")
    assert out["new_party"] is True
    assert [m["ref"] for m in out["possible_matches"]] == [_ref(db, home, "0470123456")]
    assert "party merge" in out["warning"]


@pytest.fixture
def two_spellings(db, home, make_audio):
    """A Belgian caller imported under a national spelling; an objection recorded under the international one."""
    path = make_audio("be.wav", seconds=6)
    (res,) = library.import_recordings(db, home, [path], caller="0470 12 34 56", agent="E-1", actor="t")
    clip_id = library.create_clip(db, home, res.id, start_s=1, end_s=4, title="t", author="m")
    db.execute("UPDATE clips SET status = 'approved' WHERE id = ?", [clip_id])
    consent.record_for(db, home, "+32 470 12 34 56", purpose="training", event="objection_made", actor="dpo",
                       note="called the help desk")
    return {"keep": _ref(db, home, "0470 12 34 56"), "merge": _ref(db, home, "+32470123456"),
            "recording": res.id, "clip": clip_id}


def test_merge_moves_history_applies_the_objection_and_logs(db, home, two_spellings):
    t = two_spellings
    assert "objection" not in export.decide(db, t["clip"]).codes
    out = merge.merge(db, home, into_ref=t["keep"], from_ref=t["merge"], reason="same person: BE number", actor="dpo")
    assert out["events"] == 1 and out["recall"]["clips"] == [t["clip"]]
    assert library.get_clip(db, t["clip"])["status"] == "withdrawn"
    assert "objection" in export.decide(db, t["clip"]).codes
    # the merged identifier now finds the kept party; the merged ref is gone
    assert _ref(db, home, "+32 470 12 34 56") == t["keep"]
    with pytest.raises(NotFound):
        parties.get(db, t["merge"])
    hist = consent.history(db, t["keep"])
    assert [h["merged_from_seq"] is not None for h in hist] == [True]
    assert hist[0]["note"] == "called the help desk"
    # the projection is what a rebuild gives
    before = consent.status_rows(db)
    consent.rebuild(db)
    assert consent.status_rows(db) == before
    entry = auditlog.entries(db, kind="party.merge")[0][-1]
    assert entry["data"]["into"] == t["keep"] and entry["data"]["from"] == t["merge"]
    assert "BE number" not in json_dump(db)  # the reason is a note, not log text
    assert notes.texts(db, [entry["data"]["reason_note"]]) == {entry["data"]["reason_note"]: "same person: BE number"}
    assert auditlog.verify(db)["ok"]


def json_dump(db) -> str:
    return "\n".join(r[0] for r in db.execute("SELECT data FROM log"))


@pytest.mark.parametrize("case, error", [
    ("same", BadInput), ("unknown", NotFound), ("empty_reason", BadInput), ("one_call", BadInput),
])
def test_merge_refuses_bad_requests_and_changes_nothing(db, home, recording, two_spellings, case, error):
    t = two_spellings
    kw = dict(into_ref=t["keep"], from_ref=t["merge"], reason="r", actor="dpo")
    if case == "same":
        kw["from_ref"] = t["keep"]
    elif case == "unknown":
        kw["from_ref"] = "0" * 24
    elif case == "empty_reason":
        kw["reason"] = "  "
    elif case == "one_call":
        kw = dict(kw, into_ref=recording["caller_ref"], from_ref=recording["agent_ref"])
    n_log = auditlog.head(db)["seq"]
    with pytest.raises(error):
        merge.merge(db, home, **kw)
    assert auditlog.head(db)["seq"] == n_log
    assert parties.get(db, t["merge"])


def test_cli_party_merge(cli_run, db, home, two_spellings):
    t = two_spellings
    r, out = cli_run("party", "merge", t["keep"], t["merge"], "--reason", "same person")
    assert r.exit_code == 0, r.output
    assert out["party"] == t["keep"] and out["recall"]["clips"] == [t["clip"]]
    r, out = cli_run("party", "merge", t["keep"], t["merge"], "--reason", "again")
    assert r.exit_code == 1 and out["error"]["code"] == "not_found"
