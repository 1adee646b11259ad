"""Bulk jobs: progress and results in a row, the work on its own thread, interruption noticed."""

from __future__ import annotations

import time

import pytest

from conftest import wait_for_job

from clipkit import db as dbmod
from clipkit import jobs
from clipkit.errors import BadInput, NotFound


def test_a_job_reports_progress_and_results_from_its_own_thread(db, home):
    seen = []

    def work(jdb, progress):
        for i in range(3):
            progress(i + 1, 3)
            seen.append(jdb is not db)  # the worker has its own connection
        return [{"item": i} for i in range(3)]

    jid = jobs.submit(db, kind="render", actor="manager", params={"clips": [1, 2, 3]}, total=3)
    assert jobs.get(db, jid)["state"] == "queued"
    jobs.start(lambda: dbmod.connect(home), jid, work)
    row = wait_for_job(db, jid)
    assert row["state"] == "done" and row["done"] == 3 and row["results"] == [{"item": 0}, {"item": 1}, {"item": 2}]
    assert all(seen) and row["params"] == {"clips": [1, 2, 3]}
    assert [r["id"] for r in jobs.recent(db, actor="manager")] == [jid] and jobs.recent(db, actor="trainer") == []


@pytest.mark.parametrize("error, shown", [(BadInput("clip 9 is gone"), "clip 9 is gone"),
                                          (RuntimeError("boom"), "unexpected error (RuntimeError)")])
def test_a_failing_job_says_why(db, home, error, shown):
    def work(jdb, progress):
        raise error

    jid = jobs.submit(db, kind="render", actor="m", params={}, total=1)
    jobs.start(lambda: dbmod.connect(home), jid, work)
    row = wait_for_job(db, jid)
    assert row["state"] == "failed" and row["error"] == shown


def test_a_job_whose_process_died_is_marked_interrupted(db, home):
    jid = jobs.submit(db, kind="render", actor="m", params={"clips": [1]}, total=1)
    db.execute("UPDATE jobs SET state = 'running', heartbeat = ? WHERE id = ?", [time.time() - 3600, jid])
    db.conn.commit()
    assert jobs.get(db, jid)["state"] == "interrupted"
    with pytest.raises(NotFound):
        jobs.get(db, 999)


def test_watching_job_progress_does_not_keep_an_idle_session_alive(db, home, monkeypatch):
    from conftest import add_accounts

    from clipkit import access, users
    from clipkit.errors import Forbidden

    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    add_accounts(db, home, "correct horse battery")
    m = users.start_session(db, "manager", idle_s=60, now=time.time() - 50)
    for _ in range(3):
        access.my_jobs(db, m)  # a progress panel asking every few seconds
    with pytest.raises(Forbidden, match="without activity"):
        users.active_user(db, m, now=time.time() + 15)  # 65 s after the last real activity


@pytest.mark.parametrize("ids, method, error, match", [
    ([12345], "strong", NotFound, "12345"), ([], "strong", BadInput, "at least one clip"),
    ([1], "loud", BadInput, "'loud'")])
def test_a_bad_bulk_request_queues_nothing(db, home, recording, clip, monkeypatch, ids, method, error, match):
    from conftest import add_accounts

    from clipkit import access, users

    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    add_accounts(db, home, "correct horse battery")
    m = users.start_session(db, "manager")
    with pytest.raises(error, match=match):
        access.start_render_job(db, home, m, [clip["id"] if i == 1 else i for i in ids], method=method)
    assert db["jobs"].count == 0
