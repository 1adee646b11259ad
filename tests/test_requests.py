"""The requests register (deadlines, extension, closing, listing) and the Art. 15 access bundle."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
import soundfile as sf

from clipkit import auditlog, library, parties, requests
from clipkit.errors import BadInput, NotFound, PolicyRefusal

CALLER = "06-12345678"
AGENT = "E-0007"


# ---------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    "received, due",
    [
        ("2026-01-15", "2026-02-15"),
        ("2026-01-31", "2026-02-28"),   # no 31 February: the month's last day
        ("2028-01-31", "2028-02-29"),   # leap year
        ("2026-03-31", "2026-04-30"),
        ("2026-12-31", "2027-01-31"),   # over the year end
        ("2026-02-28", "2026-03-28"),   # not "end of month to end of month"
    ],
)
def test_due_one_month_after_receipt(received, due):
    assert requests.due_date(date.fromisoformat(received)) == date.fromisoformat(due)


@pytest.mark.parametrize(
    "original_due, extended",
    [("2026-02-28", "2026-04-28"), ("2026-12-31", "2027-02-28"), ("2027-12-31", "2028-02-29")],
)
def test_extension_adds_two_months_to_the_original_due_date(original_due, extended):
    assert requests.extended_due_date(date.fromisoformat(original_due)) == date.fromisoformat(extended)


@pytest.mark.parametrize(
    "due, today, status",
    [
        ("2026-03-20", "2026-03-01", "open"),
        ("2026-03-08", "2026-03-01", "due-soon"),   # exactly 7 days left
        ("2026-03-01", "2026-03-01", "due-soon"),   # the last day is still in time
        ("2026-02-28", "2026-03-01", "overdue"),
    ],
)
def test_status_from_days_left(due, today, status):
    row = {"due": due, "closed_at": None}
    assert requests.status_of(row, today=date.fromisoformat(today)) == status
    assert requests.status_of(row | {"closed_at": "2026-01-01"}, today=date.fromisoformat(today)) == "closed"


# ---------------------------------------------------------------- register


def test_open_logs_and_never_stores_the_identifier(db, home):
    r = requests.open_request(db, home, kind="access", identifier=CALLER, role="caller", received="2026-01-31",
                              channel="email", note="asked by letter", actor="officer")
    assert (r["kind"], r["due"], r["status"], r["label"]) == ("access", "2026-02-28", "overdue", "phone ••78")
    party = parties.lookup(db, home.secret(), CALLER)
    assert r["party"] == party["ref"]
    entries, _ = auditlog.entries(db, kind="request.open")
    assert entries[-1]["data"] == {"request": r["id"], "kind": "access", "party": party["ref"], "due": "2026-02-28"}
    dump = "\n".join(db.iterdump())
    assert "12345678" not in dump and "asked by letter" not in json.dumps([e["data"] for e in entries])


def test_open_for_an_unknown_person_creates_only_a_pseudonymous_party(db, home):
    assert db["parties"].count == 0
    requests.open_request(db, home, kind="access", identifier="K-999", role="caller", actor="officer")
    (row,) = db["parties"].rows
    assert row["label"] == "k-…" and len(row["pseudonym"]) == 64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "rectification"}, "request kind 'rectification' is not one of access, erasure, objection"),
        ({"role": "boss"}, "role 'boss' is not one of caller, agent"),
        ({"identifier": "  "}, "must not be empty"),
        ({"received": "31-01-2026"}, "--received '31-01-2026' is not an ISO 8601 date/time"),
        ({"received": "2999-01-01"}, "--received 2999-01-01 is in the future"),
        ({"channel": "x" * 101}, "--channel is 101 characters"),
    ],
)
def test_open_refuses_bad_input_and_writes_nothing(db, home, kwargs, message):
    args = {"kind": "access", "identifier": CALLER, "role": "caller", "actor": "officer"} | kwargs
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        requests.open_request(db, home, **args)
    assert db["requests"].count == 0 and db["parties"].count == 0


def test_extend_once_then_refuse_and_log_the_refusal(db, home):
    r = requests.open_request(db, home, kind="erasure", identifier=CALLER, role="caller", actor="o")
    ext = requests.extend(db, r["id"], reason="many recordings", actor="o")
    assert ext["extended"] and ext["due"] == requests.extended_due_date(date.fromisoformat(r["due"])).isoformat()
    with pytest.raises(PolicyRefusal, match="already extended"):
        requests.extend(db, r["id"], reason="again", actor="o")
    assert requests.get(db, r["id"])["due"] == ext["due"]
    refused, _ = auditlog.entries(db, kind="request.extend", refused=True)
    assert [e["data"]["reason"] for e in refused] == ["already_extended"]


def test_extension_after_the_first_month_is_refused(db, home):
    r = requests.open_request(db, home, kind="access", identifier=CALLER, role="caller", received="2026-01-31",
                              actor="o")
    with pytest.raises(PolicyRefusal, match="was due on 2026-02-28"):
        requests.extend(db, r["id"], reason="late", actor="o", now="2026-03-01")
    ok = requests.extend(db, r["id"], reason="in time", actor="o", now="2026-02-28")
    assert ok["due"] == "2026-04-28"


def test_close_records_outcome_and_refuses_twice(db, home):
    r = requests.open_request(db, home, kind="objection", identifier=AGENT, role="agent", actor="o")
    with pytest.raises(BadInput, match="--outcome must not be empty"):
        requests.close(db, r["id"], outcome="  ", actor="o")
    closed = requests.close(db, r["id"], outcome="objection recorded, clips withdrawn", actor="o")
    assert closed["status"] == "closed" and closed["closed_at"]
    with pytest.raises(BadInput, match="already closed"):
        requests.close(db, r["id"], outcome="again", actor="o")
    with pytest.raises(BadInput, match="cannot be extended"):
        requests.extend(db, r["id"], reason="x", actor="o")
    with pytest.raises(NotFound, match="no request with id 99"):
        requests.close(db, 99, outcome="x", actor="o")


def test_cli_register_round_trip(cli_run):
    res, out = cli_run("request", "open", "access", "--caller", CALLER, "--received", "2026-01-31")
    assert res.exit_code == 0 and out["due"] == "2026-02-28"
    res, out = cli_run("request", "open", "erasure", "--agent", AGENT)
    assert res.exit_code == 0
    res, _ = cli_run("request", "open", "access", "--caller", CALLER, "--agent", AGENT)
    assert res.exit_code == 1 and "not both" in res.stderr
    res, _ = cli_run("request", "open", "access")
    assert res.exit_code == 1 and "--caller ID or --agent ID" in res.stderr
    res, listing = cli_run("requests")
    assert [set(r) >= {"id", "kind", "party", "received", "due", "status"} for r in listing["requests"]] == [True, True]
    assert "12345678" not in res.stdout
    res, over = cli_run("requests", "--overdue")
    assert [r["kind"] for r in over["requests"]] == ["access"]
    res, _ = cli_run("request", "extend", "1", "--reason", "late")
    assert res.exit_code == 3 and "first month" in res.stderr
    res, _ = cli_run("request", "close", "1", "--outcome", "answered by letter")
    assert res.exit_code == 0
    _, listing = cli_run("requests")
    assert [r["status"] for r in listing["requests"]] == ["open", "closed"]


# ---------------------------------------------------------------- access bundle


@pytest.fixture
def two_calls(db, home, make_audio):
    """The fixture caller in a stereo call and a mixed (mono) call, the agent also in a call with someone else."""
    ids = []
    for name, caller, channels in (("a.wav", CALLER, 2), ("b.wav", CALLER, 1), ("c.wav", "06-87654321", 2)):
        (res,) = library.import_recordings(db, home, [make_audio(name, channels=channels)], caller=caller,
                                           agent=AGENT, recorded_at="2026-03-02T10:00:00+01:00", actor="t")
        ids.append(res.id)
    library.create_clip(db, home, ids[0], start_s=1, end_s=5, title="Billing complaint", tags=["billing"], author="m")
    return ids


def test_bundle_has_own_channel_mixed_whole_clips_requests_and_both_languages(db, home, two_calls, tmp_path):
    req = requests.open_request(db, home, kind="access", identifier=CALLER, role="caller", actor="o")
    out = requests.access_bundle(db, home, identifier="+31 6 12345678", role="caller", to=tmp_path / "out",
                                 actor="officer")
    assert (out["recordings"], out["clips"], out["request"], out["closed_request"]) == (2, 1, req["id"], True)
    folder = tmp_path / "out" / f"access-request-{req['id']}"
    summary = json.loads((folder / "summary.json").read_text())
    stereo, mixed = summary["recordings"]
    assert stereo["file_contains"] == "own_channel" and stereo["file"].endswith("_own-voice.flac")
    assert mixed["file_contains"] == "mixed"
    assert stereo["purposes"] == ["quality", "training"] and mixed["purposes"] == ["quality"]
    assert stereo["retention_until"].startswith("2028-03-01")  # training: 730 days after the call
    # the own channel is exactly the caller's channel of the stored call (16-bit source, lossless FLAC)
    rec = library.get_recording(db, two_calls[0])
    original, _ = sf.read(str(library.recording_path(home, rec)), dtype="int16")
    own, sr = sf.read(str(folder / stereo["file"]), dtype="int16")
    assert own.ndim == 1 and np.array_equal(own, original[:, 0])
    assert (folder / mixed["file"]).read_bytes() == library.recording_path(
        home, library.get_recording(db, two_calls[1])).read_bytes()
    # the other caller's call is not in it
    assert two_calls[2] not in [r["id"] for r in summary["recordings"]]
    assert summary["clips"][0] | {"exported": []} == summary["clips"][0]
    assert summary["clips"][0]["title"] == "Billing complaint" and summary["clips"][0]["tags"] == ["billing"]
    assert [r["kind"] for r in summary["requests"]] == ["access"]
    page = (folder / "index.html").read_text()
    assert "Uw gegevens" in page and "Your data" in page and "Billing complaint" in page
    assert requests.get(db, req["id"])["status"] == "closed"
    entry = auditlog.entries(db, kind="request.access")[0][-1]
    assert entry["data"] == {"request": req["id"], "party": req["party"], "recordings": 2, "clips": 1, "exports": 0,
                             "bundle": out["bundle_id"]}
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp folder left


def test_agent_bundle_holds_their_own_channel_of_every_call(db, home, two_calls, tmp_path):
    out = requests.access_bundle(db, home, identifier=AGENT, role="agent", to=tmp_path, actor="o")
    summary = json.loads((tmp_path / out["path"].rsplit("/", 1)[1] / "summary.json").read_text())
    assert [r["your_role"] for r in summary["recordings"]] == ["agent"] * 3
    rec = library.get_recording(db, two_calls[2])
    original, _ = sf.read(str(library.recording_path(home, rec)), dtype="int16")
    own, _ = sf.read(str(tmp_path / out["path"].rsplit("/", 1)[1] / summary["recordings"][2]["file"]), dtype="int16")
    assert np.array_equal(own, original[:, 1])


def test_include_other_party_copies_the_stored_file(db, home, two_calls, tmp_path):
    out = requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path, include_other_party=True,
                                 actor="o")
    summary = json.loads((tmp_path / out["path"].rsplit("/", 1)[1] / "summary.json").read_text())
    assert summary["recordings"][0]["file_contains"] == "both_parties"


def test_no_data_answer_for_a_registered_person_without_calls(db, home, tmp_path):
    req = requests.open_request(db, home, kind="access", identifier="K-1", role="caller", actor="o")
    out = requests.access_bundle(db, home, identifier="K-1", role="caller", to=tmp_path, actor="o")
    page = (tmp_path / f"access-request-{req['id']}" / "index.html").read_text()
    assert out["recordings"] == 0 and "Wij bewaren geen opnames" in page and "We keep no recordings" in page


def test_unknown_person_without_a_request_is_not_found(db, home, tmp_path):
    with pytest.raises(NotFound, match="no data is stored about this person"):
        requests.access_bundle(db, home, identifier="K-404", role="caller", to=tmp_path / "out", actor="o")
    assert not (tmp_path / "out").exists() and db["parties"].count == 0


def test_an_empty_destination_is_refused_and_a_relative_one_reported_absolute(db, home, recording, tmp_path,
                                                                            monkeypatch):
    # regression: --to "" wrote the bundle into the current folder and reported a relative path
    monkeypatch.chdir(tmp_path)
    for empty in ("", "  "):
        with pytest.raises(BadInput, match="--to must name a folder"):
            requests.access_bundle(db, home, identifier=CALLER, role="caller", to=empty, actor="o")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("access")]
    out = requests.access_bundle(db, home, identifier=CALLER, role="caller", to="bundles", actor="o")
    assert out["path"] == str(tmp_path.resolve() / "bundles" / out["path"].rsplit("/", 1)[1])


def test_destination_rules(db, home, recording, tmp_path):
    req = requests.open_request(db, home, kind="access", identifier=CALLER, role="caller", actor="o")
    with pytest.raises(BadInput, match="inside the data home"):
        requests.access_bundle(db, home, identifier=CALLER, role="caller", to=home.root / "audio", actor="o")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BadInput, match="is not a folder"):
        requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path / "afile", actor="o")
    existing = tmp_path / "out" / f"access-request-{req['id']}"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(BadInput, match="never overwrites"):
        requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path / "out", actor="o")
    assert (existing / "keep.txt").read_text() == "mine" and sorted(p.name for p in existing.iterdir()) == ["keep.txt"]
    assert requests.get(db, req["id"])["status"] != "closed"
    assert not auditlog.entries(db, kind="request.access")[0]


def test_request_of_another_kind_or_person_is_refused(db, home, recording, tmp_path):
    erasure = requests.open_request(db, home, kind="erasure", identifier=CALLER, role="caller", actor="o")
    other = requests.open_request(db, home, kind="access", identifier=AGENT, role="agent", actor="o")
    with pytest.raises(BadInput, match="is an erasure request, not an access request"):
        requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path, request_id=erasure["id"],
                               actor="o")
    with pytest.raises(BadInput, match="made by another person"):
        requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path, request_id=other["id"],
                               actor="o")


def test_bundle_page_tells_consent_history_and_requests_in_plain_dutch_and_english(db, home, two_calls, tmp_path):
    # regression: the page dumped raw rows ("event: objection_made, evidence: {'recording_id': ...}") in both
    # sections, and listed the request this bundle answers as "access — overdue"
    from clipkit import consent

    req = requests.open_request(db, home, kind="access", identifier=CALLER, role="caller", received="2026-01-31",
                                actor="o")
    consent.record_for(db, home, CALLER, purpose="training", event="objection_made", actor="mgr", channel="in_call",
                       evidence={"recording_id": two_calls[0], "seconds": 2.5})
    requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path, actor="o")
    page = (tmp_path / f"access-request-{req['id']}" / "index.html").read_text()
    nl, en = page.split('<section lang="en">')
    for raw in ("objection_made", "event:", "recording_id", "in_call", "overdue", "due-soon"):
        assert raw not in page
    assert "u maakte bezwaar tegen gebruik voor training van medewerkers (tijdens het gesprek)" in nl
    assert f"vastgelegd in opname {two_calls[0]} op 0:02" in nl and "bezwaar van kracht" in nl
    assert "you objected to use for staff training (during the call)" in en
    assert f"recorded in recording {two_calls[0]} at 0:02" in en and "objection in force" in en
    assert "verzoek om inzage — afgehandeld" in nl and "request for access — answered" in en
    summary = json.loads((tmp_path / f"access-request-{req['id']}" / "summary.json").read_text())
    assert [r["status"] for r in summary["requests"]] == ["closed"]
    assert requests.get(db, req["id"])["outcome"] == summary["requests"][0]["outcome"]


def test_bundle_retention_date_agrees_with_the_purposes(db, home, two_calls, tmp_path):
    # regression: after the only clip was withdrawn the bundle said "kept for: quality; until <training date>"
    db.execute("UPDATE clips SET status = 'withdrawn' WHERE recording_id = ?", [two_calls[0]])  # as a recall does
    out = requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path, actor="o")
    summary = json.loads((tmp_path / out["path"].rsplit("/", 1)[1] / "summary.json").read_text())
    stereo = summary["recordings"][0]
    assert stereo["purposes"] == ["quality"]
    assert stereo["retention_until"].startswith("2026-05-31")  # 90 days after the call, not 730


def test_a_failure_while_writing_leaves_no_bundle_and_no_log(db, home, recording, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(requests, "_write_own_channel", boom)
    with pytest.raises(OSError):
        requests.access_bundle(db, home, identifier=CALLER, role="caller", to=tmp_path / "out", actor="o")
    assert list((tmp_path / "out").iterdir()) == []
    assert not auditlog.entries(db, kind="request.access")[0]


def test_cli_access(recording, tmp_path, cli_run):
    cli_run("request", "open", "access", "--caller", CALLER)
    res, out = cli_run("request", "access", "--caller", CALLER, "--to", tmp_path / "b")
    assert res.exit_code == 0 and out["closed_request"] and out["recordings"] == 1
    res, _ = cli_run("request", "access", "--caller", CALLER, "--to", tmp_path / "b", "--request", "1")
    assert res.exit_code == 1 and "never overwrites" in res.stderr
    res, _ = cli_run("request", "access", "--caller", "06-00000001", "--to", tmp_path / "b")
    assert res.exit_code == 1 and "no data is stored" in res.stderr


def test_a_second_open_request_of_the_same_kind_is_refused_naming_the_first(db, home):
    first = requests.open_request(db, home, kind="erasure", identifier="06-12345678", role="caller", actor="c")
    # the same person, spelt as a copy from an e-mail would be
    with pytest.raises(BadInput, match=f"request {first['id']}"):
        requests.open_request(db, home, kind="erasure", identifier="\u202a+31 6 1234-5678\u202c", role="caller",
                              actor="c")
    assert db["requests"].count == 1
    other = requests.open_request(db, home, kind="access", identifier="06-12345678", role="caller", actor="c")
    assert other["id"] != first["id"]  # another kind is another request
    requests.close(db, first["id"], outcome="answered", actor="c")
    again = requests.open_request(db, home, kind="erasure", identifier="06-12345678", role="caller", actor="c")
    assert again["id"] not in (first["id"], other["id"])  # once answered, a new one may come
