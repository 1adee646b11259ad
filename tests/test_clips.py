"""Clips: range validation, tags, full-text search, re-cut and delete."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipkit import library
from clipkit.errors import BadInput, NotFound


@pytest.mark.parametrize(
    "start, end, message",
    [
        (-1, 5, "--start -1 is outside the call: allowed 0 ≤ start < 20.000 s"),
        (20, 21, "--start 20 is outside the call"),
        (5, 4, "--end 4 must be after --start 5"),
        (5, 5, "--end 5 must be after --start 5"),
        (5, 20.5, "--end 20.5 is past the end of the call (duration 20.000 s)"),
        (5, 5.5, "at least 1 s"),
        (float("nan"), 5, "finite"),
    ],
)
def test_bad_ranges_name_the_value_and_the_allowed_range(db, home, recording, start, end, message):
    with pytest.raises(BadInput) as e:
        library.create_clip(db, home, recording["id"], start_s=start, end_s=end, title="t")
    assert message in str(e.value)
    assert db["clips"].count == 0


def test_maximum_length(db, home, recording):
    home.config["max_clip_s"] = 5.0
    with pytest.raises(BadInput, match="at most 5 s"):
        library.create_clip(db, home, recording["id"], start_s=0, end_s=6, title="t")


def test_whole_call_and_sub_second_bounds(db, home, recording):
    cid = library.create_clip(db, home, recording["id"], start_s=0, end_s=20.0, title="all")
    assert library.get_clip(db, cid)["end_s"] == 20.0
    cid = library.create_clip(db, home, recording["id"], start_s=1.234, end_s=2.5, title="short")
    clip = library.get_clip(db, cid)
    assert (clip["start_s"], clip["end_s"]) == (1.234, 2.5)


@pytest.mark.parametrize("title", ["", "   ", None])
def test_empty_title(db, home, recording, title):
    with pytest.raises(BadInput, match="--title must not be empty"):
        library.create_clip(db, home, recording["id"], start_s=0, end_s=2, title=title)


def test_unknown_recording(db, home):
    with pytest.raises(NotFound, match="no recording with id 99"):
        library.create_clip(db, home, 99, start_s=0, end_s=2, title="t")


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("Abusive", "abusive"),
        ("  De-Escalation ", "de-escalation"),
        ("hard   to\tunderstand", "hard to understand"),
        ("ＦＵＬＬＷＩＤＴＨ", "fullwidth"),
        ("Straße", "strasse"),
    ],
)
def test_tag_normalisation(raw, normalised):
    assert library.normalise_tag(raw) == normalised


@pytest.mark.parametrize("raw", ["", "   ", "x" * 51])
def test_bad_tags(raw):
    with pytest.raises(BadInput, match="1–50 characters"):
        library.normalise_tag(raw)


@given(st.text(max_size=60))
def test_normalised_tags_are_stable(raw):
    try:
        tag = library.normalise_tag(raw)
    except BadInput:
        return
    assert library.normalise_tag(tag) == tag and 1 <= len(tag) <= 50


def test_tag_filter_matches_after_normalising(db, home, recording):
    a = library.create_clip(db, home, recording["id"], start_s=0, end_s=2, title="a", tags=["Abusive", "billing"])
    library.create_clip(db, home, recording["id"], start_s=2, end_s=4, title="b", tags=["billing"])
    rows, total = library.list_clips(db, tag="  ABUSIVE ")
    assert total == 1 and [r["id"] for r in rows] == [a]
    assert library.list_clips(db, tag="billing")[1] == 2


@pytest.mark.parametrize(
    "query, expected_titles",
    [
        ("angr", ["Angry caller shouts"]),
        ("ANGRY", ["Angry caller shouts"]),
        ("cal", ["Angry caller shouts", "Calm elderly lady"]),
        ("elder lady", ["Calm elderly lady"]),
        ("roam", ["Billing question"]),  # from the note
        ("escal", ["Billing question"]),  # from a tag
        ('"angry" OR *', []),  # FTS5 syntax is searched as words, never interpreted
        ("NEAR(", []),
        ("-", []),
    ],
)
def test_word_prefix_search(db, home, recording, query, expected_titles):
    for title, note, tags in [
        ("Angry caller shouts", "", ["abusive"]),
        ("Calm elderly lady", "", ["elderly"]),
        ("Billing question", "roaming charges", ["de-escalation"]),
    ]:
        library.create_clip(db, home, recording["id"], start_s=0, end_s=2, title=title, note=note, tags=tags)
    rows, total = library.list_clips(db, search=query)
    assert sorted(r["title"] for r in rows) == sorted(expected_titles)
    assert total == len(expected_titles)


def test_pagination_and_total(db, home, recording):
    ids = [library.create_clip(db, home, recording["id"], start_s=0, end_s=2, title=f"c{i}") for i in range(7)]
    page1, total = library.list_clips(db, limit=3)
    page3, _ = library.list_clips(db, limit=3, offset=6)
    assert total == 7 and [r["id"] for r in page1] == ids[::-1][:3] and [r["id"] for r in page3] == [ids[0]]
    with pytest.raises(BadInput):
        library.list_clips(db, limit=-1)


def test_recut_bumps_revision_and_resets_status(db, home, clip):
    db.execute("UPDATE clips SET status = 'approved' WHERE id = ?", [clip["id"]])
    after = library.recut_clip(db, home, clip["id"], start_s=3, end_s=9)
    assert (after["start_s"], after["end_s"], after["revision"], after["status"]) == (3, 9, 2, "draft")
    with pytest.raises(BadInput, match="past the end"):
        library.recut_clip(db, home, clip["id"], start_s=3, end_s=99)


def test_edit_and_search_follow_new_tags(db, home, clip):
    library.update_clip(db, clip["id"], tags=["Elderly"], title="New title")
    assert library.list_clips(db, search="elderly")[1] == 1
    assert library.list_clips(db, tag="abusive")[1] == 0
    assert library.get_clip(db, clip["id"])["title"] == "New title"


def test_delete_removes_clip_tags_and_search_rows(db, home, clip):
    library.delete_clip(db, home, clip["id"])
    with pytest.raises(NotFound):
        library.get_clip(db, clip["id"])
    assert db["clip_tags"].count == 0
    assert library.list_clips(db, search="angry")[1] == 0


def test_every_change_is_in_the_log(db, home, clip):
    from clipkit import auditlog

    library.recut_clip(db, home, clip["id"], start_s=1, end_s=5, actor="m")
    library.delete_clip(db, home, clip["id"], actor="m")
    kinds = [e["kind"] for e in auditlog.entries(db)[0]]
    assert kinds == ["recording.import", "clip.create", "clip.recut", "clip.delete"]
    assert auditlog.verify(db)["ok"]


def test_a_tag_with_a_space_stays_one_tag_in_every_listing(db, home, recording, cli_run):
    cid = library.create_clip(db, home, recording["id"], start_s=1, end_s=3, title="t",
                              tags=["late payment", "billing"], author="m")
    rows, _ = library.list_clips(db)
    assert next(r for r in rows if r["id"] == cid)["tags"] == ["billing", "late payment"]
    r, out = cli_run("list")
    assert next(c for c in out["clips"] if c["id"] == cid)["tags"] == ["billing", "late payment"]
    assert library.list_clips(db, tag="late payment")[1] == 1
