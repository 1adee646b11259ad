"""Account administrators (managers with the right): add accounts, reset passwords, disable, unlock."""

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access
from clipkit.users import ROLES

user, home, db = _ui.context()
st.title("Accounts")
st.caption("Passwords are generated and shown once: hand them over in person or by phone, never by e-mail. "
           "A reset or a disable ends the account's sessions at once.")

shown = st.session_state.pop("acct_password", None)
if shown:
    who, password, what = shown
    st.success(f"{what} Password for **{_ui.plain(who)}**, shown once:")
    st.code(password, language=None)

with _ui.fatal():
    accounts = access.list_accounts(db, user)


def _status(a: dict) -> str:
    if a["disabled"]:
        return "disabled"
    return f"{a['failed_logins']} failed login(s)" if a["failed_logins"] else "active"


st.dataframe(pd.DataFrame([{
    "name": a["name"], "role": a["role"], "status": _status(a), "administrator": a["admin"],
    "agent": a["agent"] or "", "created": a["created_at"][:16].replace("T", " "),
    "password changed": a["password_changed_at"][:16].replace("T", " "),
} for a in accounts]), hide_index=True, key="acct_table")

# ---------------------------------------------------------------- one account
st.subheader("Change an account")
names = [a["name"] for a in accounts if a["name"] != user.name]
if not names:
    st.info("There are no other accounts yet.")
else:
    by_name = {a["name"]: a for a in accounts}
    name = st.selectbox("Account", names, key="acct_pick",
                        format_func=lambda n: f"{n} · {by_name[n]['role']} · {_status(by_name[n])}")
    a = by_name[name]
    c1, c2, c3, c4 = st.columns(4)
    if c1.button("Reset password", key="acct_reset", icon=":material/key:"):
        with _ui.errors():
            st.session_state["acct_password"] = (name, access.reset_password(db, user, name),
                                                 "New password set; the account's sessions have ended.")
            st.rerun()
    if a["disabled"]:
        if c2.button("Enable", key="acct_enable", icon=":material/person_check:"):
            with _ui.errors():
                access.set_account_disabled(db, user, name, False)
                st.rerun()
    elif c2.button("Disable", key="acct_disable", icon=":material/person_off:"):
        with _ui.errors():
            access.set_account_disabled(db, user, name, True)
            st.rerun()
    if c3.button("Unlock", key="acct_unlock", icon=":material/lock_open:", disabled=not a["failed_logins"],
                 help="Clears the failed logins that lock the account out"):
        with _ui.errors():
            out = access.unlock_account(db, user, name)
            st.toast(f"{name}: {out['failures_cleared']} failed login(s) cleared")
            st.rerun()
    if a["role"] == "manager":
        label = "Remove administrator" if a["admin"] else "Make administrator"
        if c4.button(label, key="acct_admin", icon=":material/admin_panel_settings:"):
            with _ui.errors():
                access.set_account_admin(db, user, name, not a["admin"])
                st.rerun()

# ---------------------------------------------------------------- add
st.subheader("Add an account")
with st.form("acct_add_form", clear_on_submit=True):
    c1, c2 = st.columns(2)
    new_name = c1.text_input("User name", key="acct_add_name", help="Lower-case letters, digits, . _ @ -")
    role = c2.selectbox("Role", list(ROLES), key="acct_add_role")
    c1, c2 = st.columns(2)
    agent_id = c1.text_input("Agent identifier (employee id; agents only)", key="acct_add_agent")
    admin = c2.checkbox("Account administrator (managers only)", key="acct_add_admin")
    add = st.form_submit_button("Add account", key="acct_add_submit", type="primary", icon=":material/person_add:")
if add:
    with _ui.errors():
        made = access.add_account(db, home, user, new_name, role=role, agent_identifier=agent_id.strip() or None,
                                  admin=admin)
        st.session_state["acct_password"] = (made["name"], made["password"], "Account added.")
        st.rerun()
