"""Compliance: retention overview (keep-until dates), legal holds, purge with a confirmation step."""

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access

user, home, db = _ui.context()
st.title("Retention & legal holds")
PER_PAGE = 50
days = home.config.get("retention_days", {})
st.caption("Kept for: " + ", ".join(f"{p} {d} days" for p, d in days.items()) + " after the call.")

FILTERS = {"all": None, "past retention": "expired", "on legal hold": "held"}
which = st.segmented_control("Show", list(FILTERS), default="all", key="ret_filter") or "all"
with _ui.fatal():
    first = access.retention_overview(db, user, only=FILTERS[which], limit=0)
    offset = _ui.paginate(first["total"], per_page=PER_PAGE, key="ret_page")
    ov = access.retention_overview(db, user, only=FILTERS[which], limit=PER_PAGE, offset=offset)

c1, c2, c3, c4 = st.columns(4)
c1.metric("Calls", ov["recordings"])
c2.metric("Past retention", ov["expired"])
c3.metric("On legal hold", ov["held"])
c4.metric("Will be purged", ov["purgeable"])
if ov["rows"]:
    table = pd.DataFrame([
        {"call": r["id"], "recorded": r["recorded_at"][:10], "keep until": r["retention_until"][:10],
         "clips": r["clips"], "hold": r["hold_reason"] or "", "past retention": "yes" if r["expired"] else ""}
        for r in ov["rows"]
    ])
    st.dataframe(table.style.apply(
        lambda row: ["color: #d93025" if row["past retention"] and not row["hold"] else ""] * len(row), axis=1),
        hide_index=True, key="ret_table")
else:
    st.caption("Nothing to show.")

st.subheader("Legal hold")
c1, c2 = st.columns([1, 3])
rec_id = c1.number_input("Call #", min_value=1, step=1, value=None, key="hold_rec")
reason = c2.text_input("Reason (stored on the call, not in the log)", key="hold_reason")
b1, b2 = st.columns(2)
if b1.button("Put on hold", key="hold_set", icon=":material/lock:", disabled=rec_id is None):
    with _ui.errors():
        access.set_hold(db, user, int(rec_id), reason=reason)
        st.session_state["ret_message"] = f"Call #{int(rec_id)} is on legal hold."
        st.rerun()
if b2.button("Release hold", key="hold_release", icon=":material/lock_open:", disabled=rec_id is None):
    with _ui.errors():
        out = access.release_hold(db, user, int(rec_id), reason=reason)
        waiting = out.get("erasure_requests_waiting") or []
        st.session_state["ret_message"] = f"Hold on call #{int(rec_id)} released." + (
            f" Erasure request(s) {', '.join(map(str, waiting))} can now be finished." if waiting else "")
        st.rerun()
msg = st.session_state.pop("ret_message", None)
if msg:
    st.success(msg)

st.subheader("Purge")
if st.button("Preview purge", key="purge_preview", icon=":material/preview:"):
    with _ui.errors():
        st.session_state["purge_plan"] = access.purge(db, home, user, dry_run=True)
plan = st.session_state.get("purge_plan")
if plan:
    st.warning(f"Would delete {len(plan['deleted'])} call(s) past retention, with {plan['clips']} clip(s) and "
               f"{plan['renderings']} rendering(s); {len(plan['kept_on_hold'])} kept on legal hold.")
    _ui.deletion_preview([
        {"call": f"#{d['id']}", "recorded": (d["recorded_at"] or "")[:16].replace("T", " "),
         "keep until": (d["retention_until"] or "")[:10]} for d in plan["deleted"]], plan, key="purge_preview")
    sure = st.checkbox("Delete them permanently", key="purge_confirm")
    if st.button("Purge now", key="purge_go", disabled=not sure, type="primary", icon=":material/delete_sweep:"):
        with _ui.errors(), st.spinner("Purging…"):
            out = access.purge(db, home, user)
            _ui.forget_cached_audio()
            st.session_state.pop("purge_plan", None)
            st.session_state["ret_message"] = f"Purged {len(out['deleted'])} call(s) and {out['clips']} clip(s)."
            st.rerun()
