"""The session cookie: a one-time handoff in memory, the route's answers, and resuming a session from a token.

The browser half (login survives a reload, another browser is not logged in,
logout clears the cookie) is in test_e2e_browser.py.
"""

from __future__ import annotations

import json
import time

import pytest

from app_pages import _session
from clipkit import users
from clipkit.errors import Forbidden

PASSWORD = "correct horse battery"


@pytest.fixture
def bob(db, monkeypatch):
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    users.add_user(db, "bob", role="manager", password=PASSWORD)
    return users.authenticate(db, "bob", PASSWORD)


def body(**kw) -> bytes:
    return json.dumps(kw).encode()


# ---------------------------------------------------------------- the handoff


def test_a_code_gives_its_token_once_and_never_after_it_expires():
    h = _session.Handoffs(ttl_s=60)
    code = h.issue("token-1", now=100.0)
    assert "token-1" not in code
    assert h.redeem(code, now=101.0) == "token-1"
    assert h.redeem(code, now=102.0) is None  # once
    late = h.issue("token-2", now=100.0)
    assert h.redeem(late, now=160.5) is None  # expired
    for bad in (None, 5, "", "x" * 500, ["a"], "guessed-code"):
        assert h.redeem(bad) is None


# ---------------------------------------------------------------- what the route answers


def test_set_puts_the_token_in_an_httponly_strict_cookie_and_clear_removes_it():
    h = _session.Handoffs()
    code = h.issue("tok")
    status, cookie, _ = _session.reply(body(action="set", code=code), origin=None, host="127.0.0.1:8501",
                                       secure=False, handoffs=h)
    assert status == 200
    parts = cookie.split("; ")
    assert parts[0] == f"{_session.COOKIE}=tok" and {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(parts)
    assert f"Max-Age={users.MAX_SESSION_S}" in parts and "Secure" not in parts
    status, cookie, _ = _session.reply(body(action="set", code=code), origin=None, host=None, secure=False,
                                       handoffs=h)
    assert status == 400 and cookie is None  # the code was used
    status, cookie, _ = _session.reply(body(action="clear"), origin="https://clips.example", host="clips.example",
                                       secure=True, handoffs=h)
    assert status == 200 and cookie.startswith(f"{_session.COOKIE}=;") and "Max-Age=0" in cookie and "Secure" in cookie


@pytest.mark.parametrize("raw, origin, host, status", [
    (b'{"action": "clear"}', "http://evil.example", "127.0.0.1:8501", 403),  # another site
    (b'{"action": "set", "code": "abcdefgh123"}', None, None, 400),        # a guessed code
    (b"not json", None, None, 400),
    (b'["set"]', None, None, 400),
    (b'{"action": "drop tables"}', None, None, 400),
    (b"\xff\xfe", None, None, 400),
    (b'{"action": "clear", "pad": "' + b"x" * 2000 + b'"}', None, None, 413),
])
def test_the_route_refuses_what_it_should(raw, origin, host, status):
    got, cookie, _ = _session.reply(raw, origin=origin, host=host, secure=False, handoffs=_session.Handoffs())
    assert got == status and cookie is None


# ---------------------------------------------------------------- resuming from the cookie's token


def test_a_token_resumes_its_live_session_only(db, bob):
    assert users.resume_session(db, bob.session) == bob
    for bad in (None, "", "guessed", "x" * 1000, 42):
        with pytest.raises(Forbidden):
            users.resume_session(db, bad)


@pytest.mark.parametrize("end", ["logout", "password", "disable", "idle", "too_old"])
def test_a_token_no_longer_resumes_once_the_session_ended(db, bob, end):
    now = None
    if end == "logout":
        users.logout(db, bob)
    elif end == "password":
        users.set_password(db, "bob", "a new long password")
    elif end == "disable":
        users.disable_user(db, "bob")
    elif end == "idle":
        now = time.time() + users.DEFAULT_IDLE_S + 5
    elif end == "too_old":
        now = time.time() + users.MAX_SESSION_S + 5
    with pytest.raises(Forbidden, match="log in again"):
        users.resume_session(db, bob.session, now=now)


def test_a_new_login_is_a_new_token(db, bob):
    again = users.authenticate(db, "bob", PASSWORD)
    assert again.session != bob.session and users.resume_session(db, again.session) == again
