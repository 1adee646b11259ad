"""Shared helpers for the app's pages: the run's context, errors, caches, badges, paging.

The router (``streamlit_app.py``) opens one database connection per script
run and puts it, the home and the logged-in user in :data:`RUN` (a
thread-local: each session's run has its own thread, so no connection is
shared between sessions). Pages read them with :func:`context`.

Everything a page does goes through :mod:`clipkit.access`, which checks the
user's role; the pages only decide what to show.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from clipkit import audio
from clipkit.errors import ClipkitError, PolicyRefusal

RUN = threading.local()


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    url_path: str


# which pages each role sees, in navigation order (the first is the default)
PAGES: dict[str, list[PageSpec]] = {
    "manager": [
        PageSpec("app_pages/manager_calls.py", "Calls & cutting", ":material/graphic_eq:", "calls"),
        PageSpec("app_pages/manager_clips.py", "Clips", ":material/content_cut:", "clips"),
        PageSpec("app_pages/manager_coaching.py", "Coaching", ":material/record_voice_over:", "coaching"),
        PageSpec("app_pages/manager_import.py", "Import calls", ":material/upload_file:", "import"),
    ],
    "agent": [
        PageSpec("app_pages/agent_reviews.py", "My reviews", ":material/forum:", "my-reviews"),
    ],
    "trainer": [
        PageSpec("app_pages/trainer_library.py", "Training library", ":material/school:", "library"),
    ],
    "compliance": [
        PageSpec("app_pages/compliance_dashboard.py", "Dashboard", ":material/monitoring:", "dashboard"),
        PageSpec("app_pages/compliance_parties.py", "Parties & consent", ":material/person_search:", "parties"),
        PageSpec("app_pages/compliance_requests.py", "Requests & erasure", ":material/assignment:", "requests"),
        PageSpec("app_pages/compliance_log.py", "Log, exports & recalls", ":material/receipt_long:", "log"),
        PageSpec("app_pages/compliance_retention.py", "Retention & holds", ":material/lock_clock:", "retention"),
    ],
}
# for managers with the account-administrator right, and for everyone (their own password)
ACCOUNTS_PAGE = PageSpec("app_pages/accounts.py", "Accounts", ":material/manage_accounts:", "accounts")
MY_ACCOUNT_PAGE = PageSpec("app_pages/my_account.py", "My account", ":material/account_circle:", "my-account")


def pages_for(db, user) -> list[PageSpec]:
    """The pages of the user's navigation, in order (the first is the default)."""
    from clipkit import access

    return [*PAGES[user.role], *([ACCOUNTS_PAGE] if access.is_account_admin(db, user) else []), MY_ACCOUNT_PAGE]


LOGIN_PAGE = PageSpec("app_pages/login.py", "Log in", ":material/login:", "login")

STATUS_COLORS = {"draft": "gray", "anonymized": "blue", "approved": "green", "withdrawn": "red"}
STATUS_STYLES = {
    "draft": "background-color: #f1f3f4; color: #3c4043",
    "anonymized": "background-color: #e8f0fe; color: #1967d2",
    "approved": "background-color: #e6f4ea; color: #137333",
    "withdrawn": "background-color: #fce8e6; color: #c5221f",
}


def login_form() -> None:
    """The login form; on success the user is put in the session and the app reruns."""
    from clipkit import users

    st.title("clipkit")
    st.caption("Anonymized training clips from recorded support calls.")
    message = st.session_state.pop("login_message", None)
    if message:
        st.warning(message)
    with st.form("login_form", clear_on_submit=False):
        name = st.text_input("User name", key="login_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", key="login_submit", type="primary")
    if submitted:
        from clipkit.home import session_idle_s

        try:
            user = users.authenticate(RUN.db, name, password, source=client_address(),
                                      idle_s=session_idle_s(RUN.home))
        except ClipkitError as e:
            st.error(str(e))
        else:
            from app_pages import _session

            st.session_state.clear()  # nothing of the login (the password) stays in the session
            st.session_state["user"] = user
            _session.after_login(user)  # the cookie that keeps this login over a reload
            st.rerun()


def client_address() -> str:
    """The browser's address as the server sees it (login throttling counts per account and address)."""
    try:
        ip = st.context.ip_address
    except Exception:  # bare runs have no client
        ip = None
    # None on localhost; AppTest's stand-in runtime hands back a mock: neither is an address
    return ip if isinstance(ip, str) and ip else "unknown"


def context():
    """``(user, home, db)`` of this run; stops the page if nobody is logged in."""
    user = getattr(RUN, "user", None)
    if user is None:
        st.warning("Please log in.")
        st.stop()
    return user, RUN.home, RUN.db


# The library's messages name command-line options (the CLI is its first user); on a page
# they name the field or the choice the page offers instead.
_OPTION_WORDS = {
    "--allow-weak": "the weak-method override",
    "--allow-erased-party": "the erased-party override",
    "--channels": "the channel map",
    "--recorded-at": "recorded at",
    "--at": "the time",
    "--to": "the destination folder",
    "--head": "the log head",
    "--redact": "the redaction",
    "--effective": "the effective time",
    "--evidence": "the evidence",
}
_OPTION_RE = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def app_words(text) -> str:
    """A library message in the page's language: no command-line options in it.

    ``"--caller must not be empty"`` becomes ``"Caller must not be empty"``,
    ``"pass --allow-weak"`` names the page's weak-method override.
    """
    text = str(text)
    out = _OPTION_RE.sub(lambda m: _OPTION_WORDS.get(m.group(0), m.group(1).replace("-", " ")), text)
    return out[:1].upper() + out[1:] if out[:1].islower() and text.startswith("--") else out


@contextmanager
def own_connection(home):
    """A database connection for a fragment's own reruns (``st.fragment(run_every=...)``).

    A fragment rerun runs only the fragment, not the router: the connection of
    the page run it belongs to is closed by then. This opens one for the
    rerun and closes it after.
    """
    from clipkit import db as dbmod

    conn = dbmod.connect(home)
    try:
        yield conn
    finally:
        conn.close()


def show_error(e: ClipkitError) -> None:
    """A clipkit error as a plain message in the page's words; a policy refusal with each of its reasons."""
    reasons = getattr(e, "reasons", None) or []
    # messages quote values people typed: shown as text, never as Markdown
    if isinstance(e, PolicyRefusal) and reasons:
        lines = []
        for r in reasons:
            if isinstance(r, dict):
                text = r.get("message") or str(r)
                clip = r.get("clip_id")
                lines.append(f"- {'clip ' + str(clip) + ': ' if clip is not None else ''}{plain(app_words(text))}")
            else:
                lines.append(f"- {plain(app_words(getattr(r, 'message', r)))}")
        st.error(plain(app_words(e)) + "\n\n" + "\n".join(dict.fromkeys(lines)))
    else:
        st.error(plain(app_words(e)))


@contextmanager
def errors():
    """Show a :class:`ClipkitError` raised inside as ``st.error(str(e))``, never a traceback."""
    try:
        yield
    except ClipkitError as e:
        show_error(e)


@contextmanager
def fatal():
    """Like :func:`errors`, then stop the page: what follows depends on what failed."""
    try:
        yield
    except ClipkitError as e:
        show_error(e)
        st.stop()


def input_and_button(label: str, *, key: str, button: str, button_key: str, widths: list[int],
                     icon: str | None = None) -> tuple[str, bool]:
    """A text input with a primary button beside it; returns ``(text, clicked)``."""
    left, right = st.columns(widths)
    text = left.text_input(label, key=key)
    with right:
        st.write("")  # a blank line lines the button up with the input box, not with its label
        clicked = st.button(button, key=button_key, type="primary", icon=icon)
    return text, clicked


# what makes Markdown (and Streamlit's :directives:, $maths$) active: links, images, code, emphasis, HTML
_MD_SPECIAL = {ord(c): "\\" + c for c in "\\`*_{}[]<>#!|:~$^"}


def plain(text) -> str:
    """User text made inert for ``st.markdown``: no links, images, emphasis, icons, colours or maths.

    Titles, notes and tags are typed by people; rendered as Markdown, an image
    in a title would load from an outside host on a trainer's screen and a
    backtick would break out of a tag. Every character that can start active
    Markdown is backslash-escaped (CommonMark allows that for any ASCII
    punctuation) and line breaks become spaces, so no block syntax can start.
    """
    return " ".join(str(text if text is not None else "").split()).translate(_MD_SPECIAL)


def deletion_preview(calls: list[dict], plan: dict, *, key: str) -> None:
    """What a purge or erasure would delete, listed: the calls, the files in the data home, copies outside it."""
    import pandas as pd

    copies = plan.get("copies") or {}
    outside = [{"file": c["path"], "what": f"export {c['export_id']}, clip {c['clip_id']}"}
               for c in copies.get("exports", [])]
    outside += [{"file": b["path"], "what": f"access bundle {b['id']}"} for b in copies.get("bundles", [])]
    files = [{"file": p, "what": "in the data home"} for p in plan.get("file_paths", [])] + outside
    with st.expander(f"Which calls ({len(calls)}) and files ({len(files)})", expanded=len(calls) <= 10):
        if calls:
            st.dataframe(pd.DataFrame(calls), hide_index=True, key=f"{key}_calls")
        if files:
            st.dataframe(pd.DataFrame(files), hide_index=True, key=f"{key}_files")
        if not calls and not files:
            st.caption("Nothing.")


def badge(status: str) -> None:
    st.badge(status, color=STATUS_COLORS.get(status, "gray"))


def status_table(df):
    """A clips table with its ``status`` column coloured like the badges."""
    return df.style.map(lambda v: STATUS_STYLES.get(v, ""), subset=["status"])


def paginate(total: int, *, per_page: int, key: str) -> int:
    """Show a pager when needed; returns the offset of the current page."""
    pages = max(1, -(-total // per_page))
    if pages <= 1:
        return 0
    page = st.pagination(pages, key=key, max_visible_pages=7)
    return (min(page, pages) - 1) * per_page


def parse_tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def fmt_s(seconds: float) -> str:
    m, s = divmod(float(seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:05.2f}" if h else f"{m}:{s:05.2f}"


# ---------------------------------------------------------------- caches (keyed by the file's sha256)
# The access functions check the role and write the log *before* calling
# these, on every play; the caches only save decoding work.


@st.cache_data(max_entries=32, ttl="1h", show_spinner=False)
def cached_segment(path: str, sha256: str, start_s: float, end_s: float) -> bytes:
    return audio.segment_wav(path, start_s=start_s, end_s=end_s)


@st.cache_data(max_entries=64, ttl="1h", show_spinner=False)
def cached_file(path: str, sha256: str) -> bytes:
    return audio.read_verified(path, sha256)


@st.cache_data(max_entries=64, ttl="1h", show_spinner=False)
def cached_envelope(path: str, sha256: str, points: int):
    return audio.envelope(path, points=points)


def forget_cached_audio() -> None:
    """Drop every decoded copy held in memory: after an erasure or purge none may outlive the files."""
    for cache in (cached_segment, cached_file, cached_envelope):
        cache.clear()
