"""The login survives a reload, a bookmark and a second tab: an HttpOnly session cookie.

A Streamlit script cannot set an HTTP header: it talks to the browser over a
websocket. So the login works in two steps, both on this server:

1. The login form checks the password and starts a server-side session
   (:func:`clipkit.users.authenticate`; only a hash of its token is stored).
   It hands the token to :data:`HANDOFFS` under a one-time code that lives
   for :data:`HANDOFF_S` seconds in this process's memory, never on disk.
2. A small component in the page posts that code (not the token) to
   ``/_clipkit/session``, a route of ``app_server.py`` in the same process,
   which trades it for the token and sets it as a cookie: ``HttpOnly`` (no
   script reads it), ``SameSite=Strict`` (no other site sends it),
   ``Secure`` behind HTTPS, ``Path=/``, expiring with the longest session.

A new page load reads the cookie from the websocket handshake
(``st.context.cookies``) and resumes the session if it is still live
(:func:`clipkit.users.resume_session`: idle time, the 12-hour limit, logout,
password change and a disabled account all end it on the server). The token
is random (256 bits) and checked against its stored hash, so it needs no
signature and can be revoked. It never appears in a URL, and another browser
has no cookie. Logging out revokes the session and clears the cookie.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time

COOKIE = "clipkit_session"
ROUTE = "/_clipkit/session"
HANDOFF_S = 60.0
MAX_BODY = 1024


class Handoffs:
    """One-time codes for tokens, in memory: :meth:`issue` in the script, :meth:`redeem` in the route."""

    def __init__(self, *, ttl_s: float = HANDOFF_S) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[str, float]] = {}
        self.ttl_s = ttl_s

    @staticmethod
    def _key(code: str) -> str:
        return hashlib.sha256(code.encode()).hexdigest()

    def issue(self, token: str, *, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes = {k: v for k, v in self._codes.items() if v[1] > now}
            self._codes[self._key(code)] = (token, now + self.ttl_s)
        return code

    def redeem(self, code: object, *, now: float | None = None) -> str | None:
        """The token for ``code``, once; None for an unknown, used or expired code."""
        if not isinstance(code, str) or not 8 <= len(code) <= 100:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._codes.pop(self._key(code), None)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]


HANDOFFS = Handoffs()


def cookie_header(token: str | None, *, secure: bool, max_age_s: int) -> str:
    """The ``Set-Cookie`` value that sets ``token`` (or, for None, clears the cookie)."""
    attrs = ["Path=/", "HttpOnly", "SameSite=Strict"] + (["Secure"] if secure else [])
    if token is None:
        return "; ".join([f"{COOKIE}=", "Max-Age=0", *attrs])
    return "; ".join([f"{COOKIE}={token}", f"Max-Age={int(max_age_s)}", *attrs])


def reply(body: bytes, *, origin: str | None, host: str | None, secure: bool,
          handoffs: Handoffs = HANDOFFS) -> tuple[int, str | None, str]:
    """What the route answers to a posted ``body``: ``(status, Set-Cookie or None, message)``.

    ``{"action": "set", "code": C}`` sets the cookie to the token behind the one-time code ``C``;
    ``{"action": "clear"}`` clears it. A request from another origin is refused (403).
    """
    from clipkit.users import MAX_SESSION_S

    if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
        return 403, None, "another site may not set this app's session"
    if len(body) > MAX_BODY:
        return 413, None, "request too large"
    try:
        msg = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return 400, None, "not JSON"
    if not isinstance(msg, dict):
        return 400, None, "not a JSON object"
    if msg.get("action") == "clear":
        return 200, cookie_header(None, secure=secure, max_age_s=0), "cleared"
    if msg.get("action") == "set":
        token = handoffs.redeem(msg.get("code"))
        if token is None:
            return 400, None, "unknown or expired code"
        return 200, cookie_header(token, secure=secure, max_age_s=MAX_SESSION_S), "set"
    return 400, None, "unknown action"


JS = """
export default function (component) {
  const { data, setTriggerValue } = component;
  if (!data || !data.action) return;
  const mark = data.action + ":" + (data.nonce || "");
  if (window.__clipkitCookie === mark) return;  // once per request, however often the page redraws
  window.__clipkitCookie = mark;
  fetch(data.url, {
    method: "POST", credentials: "same-origin", cache: "no-store",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ action: data.action, code: data.code || null }),
  }).then((r) => setTriggerValue("done", { nonce: data.nonce, ok: r.ok }))
    .catch(() => setTriggerValue("done", { nonce: data.nonce, ok: false }));
}
"""

_component = None


def _mount(data: dict) -> object:
    global _component
    import streamlit as st

    if _component is None:
        _component = st.components.v2.component("clipkit_session_cookie", js=JS)
    return _component(data=data, key="session_cookie", on_done_change=lambda: None)


def after_login(user) -> None:
    """Queue the cookie for ``user``'s new session (call with the session state fresh)."""
    import streamlit as st

    st.session_state["cookie_checked"] = True
    st.session_state["cookie_request"] = {"action": "set", "code": HANDOFFS.issue(user.session),
                                          "nonce": secrets.token_hex(8)}


def after_logout() -> None:
    """Queue clearing the cookie (the session itself is already revoked on the server)."""
    import streamlit as st

    st.session_state["cookie_checked"] = True
    st.session_state["cookie_request"] = {"action": "clear", "nonce": secrets.token_hex(8)}


def keep() -> None:
    """Send a queued cookie request from the page; forget it once the browser has answered."""
    import streamlit as st

    req = st.session_state.get("cookie_request")
    if not req:
        return
    result = _mount({**req, "url": ROUTE})
    done = getattr(result, "done", None)
    if isinstance(done, dict) and done.get("nonce") == req["nonce"]:
        st.session_state.pop("cookie_request", None)


def from_cookie(db):
    """The user of this browser's session cookie, on the first run of a page load; else None.

    An ended session leaves a message for the login page and clears the cookie.
    """
    import streamlit as st

    from clipkit import users
    from clipkit.errors import Forbidden

    if st.session_state.get("cookie_checked"):
        return None
    st.session_state["cookie_checked"] = True
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser behind this run (AppTest, bare mode)
        token = None
    if not isinstance(token, str) or not token:
        return None
    try:
        return users.resume_session(db, token)
    except Forbidden as e:
        st.session_state["login_message"] = str(e)
        after_logout()
        return None
