"""clipkit's app: a login gate and a router. All work happens in ``app_pages/``.

The data home comes from ``$CLIPKIT_HOME`` (default ``clipkit-data``). Each
script run opens its own database connection, checks that the logged-in
account is still active (a new page load resumes it from the session cookie,
see ``app_pages/_session.py``), and shows only the pages of that account's
role. Serve it with ``streamlit run app_server.py``, which adds the route that
sets the cookie.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app_pages import _session, _ui  # noqa: E402
from clipkit import db as dbmod  # noqa: E402
from clipkit import store, users  # noqa: E402
from clipkit.errors import ClipkitError, Forbidden  # noqa: E402
from clipkit.home import HOME_ENV, open_home  # noqa: E402

# an emoji favicon is drawn in the browser; a :material: one is fetched from an outside font host
st.set_page_config(page_title="clipkit", page_icon="🎧", layout="wide")

try:
    home = open_home(None)
except ClipkitError as e:
    st.error(str(e))
    st.info(f"Set {HOME_ENV} to your data home, or build the demo with `make run`.")
    st.stop()

try:
    db = dbmod.connect(home)
    store.reconcile(db, home)  # what a crashed import or render left behind
except ClipkitError as e:
    st.error(str(e))
    st.stop()
try:
    user = st.session_state.get("user")
    if user is None:  # a reload, a bookmark or a second tab: the session cookie, if it is still live
        user = _session.from_cookie(db)
        if user is not None:
            st.session_state["user"] = user
    else:
        try:
            user = users.active_user(db, user)
        except Forbidden as e:
            st.session_state.clear()
            st.session_state["login_message"] = str(e)
            _session.after_logout()
            user = None
    _ui.RUN.home, _ui.RUN.db, _ui.RUN.user = home, db, user

    if user is None:
        spec = _ui.LOGIN_PAGE
        # every page's address shows the login form, so a bookmark leads to its page after login
        every = [*(s for specs in _ui.PAGES.values() for s in specs), _ui.ACCOUNTS_PAGE, _ui.MY_ACCOUNT_PAGE]
        hidden = [st.Page(_ui.login_form, title=spec.title, url_path=s.url_path, visibility="hidden")
                  for s in {s.url_path: s for s in every}.values()]
        page = st.navigation([st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path,
                                      default=True), *hidden], position="hidden")
    else:
        with st.sidebar:
            st.markdown(f"**{user.name}** · {user.role}")
            if st.button("Log out", key="logout", icon=":material/logout:"):
                try:
                    users.logout(db, user)
                except ClipkitError:
                    pass  # the session ends whether or not the log could be written
                st.session_state.clear()
                _session.after_logout()
                st.rerun()
        specs = _ui.pages_for(db, user)
        page = st.navigation(
            {f"{user.role.capitalize()} workspace": [
                st.Page(s.path, title=s.title, icon=s.icon, url_path=s.url_path, default=(i == 0))
                for i, s in enumerate(specs)
            ]}
        )
    _session.keep()  # a cookie to set or clear after a login or logout
    page.run()
finally:
    _ui.RUN.db = _ui.RUN.user = _ui.RUN.home = None
    db.close()
