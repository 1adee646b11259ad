"""Every role: change your own password (your other sessions end; this one goes on)."""

import streamlit as st

from app_pages import _session, _ui
from clipkit import access
from clipkit.home import session_idle_s
from clipkit.users import MIN_PASSWORD_LEN

user, home, db = _ui.context()
st.title("My account")
st.caption(f"Logged in as **{_ui.plain(user.name)}** ({user.role}).")

done = st.session_state.pop("my_password_changed", None)
if done:
    st.success("Password changed. You stay logged in here; every other session of yours has ended.")

st.subheader("Change password")
with st.form("my_password_form", clear_on_submit=True):
    old = st.text_input("Current password", type="password", key="my_password_old", autocomplete="current-password")
    new = st.text_input(f"New password (at least {MIN_PASSWORD_LEN} characters)", type="password",
                        key="my_password_new", autocomplete="new-password")
    repeat = st.text_input("New password again", type="password", key="my_password_repeat",
                           autocomplete="new-password")
    submitted = st.form_submit_button("Change password", key="my_password_submit", type="primary")
if submitted:
    with _ui.errors():
        fresh = access.change_my_password(db, user, old=old, new=new, repeat=repeat, source=_ui.client_address(),
                                          idle_s=session_idle_s(home))
        st.session_state["user"] = fresh
        _session.after_login(fresh)  # the cookie follows the new session; the old one is revoked
        st.session_state["my_password_changed"] = True
        st.rerun()
