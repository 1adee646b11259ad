"""Playlists: a trainer's selection for a session, owned by them, never a way around the library's checks."""

from __future__ import annotations

import pytest

from conftest import add_accounts
from clipkit import access, consent, library, playlists, rendering, users
from clipkit.errors import BadInput, Forbidden, NotFound


@pytest.fixture
def lib(db, home, recording, clip, fake_render, monkeypatch):
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    add_accounts(db, home, "correct horse battery")
    users.add_user(db, "trainer2", role="trainer", password="correct horse battery")
    ids = []
    for a in (10.0, 14.0):
        cid = library.create_clip(db, home, recording["id"], start_s=a, end_s=a + 3, title=f"c{a}", author="m")
        fake_render(db, home, cid)
        rendering.approve(db, home, cid, actor="manager")
        ids.append(cid)
    return {"ids": ids, "draft": clip["id"], "t": users.start_session(db, "trainer"),
            "t2": users.start_session(db, "trainer2"), "c": users.start_session(db, "compliance")}


def test_save_load_and_delete_keep_order_and_owner(db, home, lib):
    t, (a, b) = lib["t"], lib["ids"]
    saved = access.save_playlist(db, t, name="  Monday   session ", clip_ids=[b, a, b])
    assert saved["name"] == "Monday session" and saved["clip_ids"] == [b, a]
    again = access.save_playlist(db, t, name="Monday session", clip_ids=[a])  # same name: replaced
    assert again["id"] == saved["id"] and again["clip_ids"] == [a]
    assert access.my_playlists(db, lib["t2"]) == []  # another trainer sees none of it
    with pytest.raises(NotFound):
        access.delete_playlist(db, lib["t2"], saved["id"])
    access.delete_playlist(db, t, saved["id"])
    assert access.my_playlists(db, t) == []


@pytest.mark.parametrize("name, ids, error", [("", None, BadInput), ("x" * 81, None, BadInput), ("ok", [], BadInput)])
def test_bad_playlists_are_refused(db, lib, name, ids, error):
    with pytest.raises(error, match="name|at least one clip"):
        access.save_playlist(db, lib["t"], name=name, clip_ids=lib["ids"] if ids is None else ids)
    assert db["playlists"].count == 0 and db["playlist_items"].count == 0  # nothing half-saved


def test_a_playlist_cannot_carry_a_clip_outside_the_library(db, home, lib):
    with pytest.raises(NotFound, match="not in the training library"):
        access.save_playlist(db, lib["t"], name="sneaky", clip_ids=[lib["ids"][0], lib["draft"]])
    assert db["playlists"].count == 0
    with pytest.raises(Forbidden):
        access.save_playlist(db, lib["c"], name="x", clip_ids=lib["ids"])  # compliance has no library


def test_withdrawn_or_deleted_clips_drop_out(db, home, lib, recording):
    t, (a, b) = lib["t"], lib["ids"]
    saved = access.save_playlist(db, t, name="s", clip_ids=[a, b])
    consent.record(db, party_ref=recording["caller_ref"], purpose="training", event="objection_made", actor="c",
                   home=home)
    assert access.library_rows_by_id(db, t, saved["clip_ids"]) == []  # withdrawn: not playable, not selectable
    library.delete_clip(db, home, a, actor="m")
    assert playlists.get(db, saved["id"], owner="trainer")["clip_ids"] == [b]  # a deleted clip leaves it
