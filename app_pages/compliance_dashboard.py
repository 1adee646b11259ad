"""Compliance: a small dashboard — clips by status, exports and refusals per week, requests due."""

import altair as alt
import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access, measured
from clipkit.anonymize import METHODS

user, home, db = _ui.context()
st.title("Compliance dashboard")

with _ui.fatal():
    d = access.dashboard(db, user)

req = d["requests"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Clips approved for training", d["clips_by_status"].get("approved", 0))
c2.metric("Clips withdrawn", d["clips_by_status"].get("withdrawn", 0))
c3.metric("Open requests", req.get("open", 0) + req.get("due-soon", 0) + req.get("overdue", 0))
c4.metric("Overdue requests", req.get("overdue", 0))
if req.get("overdue"):
    st.error(f"{req['overdue']} request(s) are past their due date. See *Requests & erasure*.")

claim = measured.claim("strong", METHODS["strong"])
with st.container(border=True, key="dash_privacy"):
    st.markdown("**How anonymous is an anonymized clip?**")
    st.markdown(_ui.plain(claim["summary"]))
    if claim["measured"]:
        with st.expander("Every measured figure", key="dash_privacy_figures"):
            st.markdown(_ui.plain(claim["statement"][:1].upper() + claim["statement"][1:]) + ".")
    else:
        st.caption("Ask whoever maintains this installation to run the privacy benchmark.")
    voices = access.caller_voice(db, user)
    choices = {"per-caller": "One voice per caller: trainers can follow a caller across clips",
               "per-clip": "A new voice for the caller in every clip: clips cannot be linked by voice"}
    wanted = st.radio("Caller voices", list(choices), format_func=choices.get, key="dash_caller_voice",
                      index=list(choices).index(voices["caller_voice"]))
    if wanted != voices["caller_voice"]:
        cost = st.empty()  # above the button; left empty once the switch is made
        if st.button("Switch caller voices", key="dash_caller_voice_apply", type="primary"):
            with _ui.fatal():
                changed = access.set_caller_voice(db, user, wanted)
                voices = access.caller_voice(db, user)
            st.success(f"Caller voices switched. {changed['stale_renderings']} clip(s) must be anonymized and "
                       "approved again.")
        else:
            cost.warning(f"Switching sends {voices['switch_stales']} anonymized clip(s) back: trainers cannot play "
                         "them and they cannot be exported until they are anonymized and approved again.")
    st.markdown(f"**As set now:** {voices['meaning']}")

left, right = st.columns(2)
with left:
    st.subheader("Clips by status")
    by_status = pd.DataFrame({"status": list(d["clips_by_status"]), "clips": list(d["clips_by_status"].values())})
    st.altair_chart(
        alt.Chart(by_status).mark_bar().encode(
            x=alt.X("status:N", sort=list(d["clips_by_status"]), title=None),
            y=alt.Y("clips:Q", title="clips"),
            color=alt.Color("status:N", legend=None, scale=alt.Scale(
                domain=list(_ui.STATUS_COLORS), range=["#9aa0a6", "#4c8bf5", "#34a853", "#ea4335"])),
        ).properties(height=240),
        key="dash_status",
    )
with right:
    st.subheader("Exports and refusals per week")
    if d["weekly"]:
        weekly = pd.DataFrame(d["weekly"]).set_index("week")[["exports", "refusals"]]
        st.bar_chart(weekly, stack=False, height=240, color=["#34a853", "#ea4335"])
    else:
        st.caption("No export attempts in the last 12 weeks.")

left, right = st.columns(2)
with left:
    st.subheader("Open requests by due date")
    if d["requests_open"]:
        due = pd.DataFrame(d["requests_open"])
        st.altair_chart(
            alt.Chart(due).mark_bar().encode(
                x=alt.X("due:O", title="due"), y=alt.Y("count():Q", title="requests", axis=alt.Axis(tickMinStep=1, format="d")),
                color=alt.Color("status:N", scale=alt.Scale(domain=["open", "due-soon", "overdue"],
                                                            range=["#4c8bf5", "#e37400", "#d93025"]),
                                legend=alt.Legend(orient="bottom", title=None)),
                tooltip=["due:O", "status:N", "count():Q"],
            ).properties(height=220),
            key="dash_requests_due")
    else:
        st.caption("No open requests.")
with right:
    st.subheader("Active objections by purpose")
    ob = pd.DataFrame({"purpose": list(d["objections_by_purpose"]),
                       "parties": list(d["objections_by_purpose"].values())})
    st.altair_chart(
        alt.Chart(ob).mark_bar(color="#ea4335").encode(
            x=alt.X("purpose:N", title=None), y=alt.Y("parties:Q", title="parties objecting", axis=alt.Axis(tickMinStep=1, format="d")),
            tooltip=["purpose", "parties"]).properties(height=220),
        key="dash_objections")

st.subheader("Requests due")
if d["requests_due"]:
    rows = pd.DataFrame([{"id": r["id"], "kind": r["kind"], "person": r.get("label") or "(erased)",
                          "due": r["due"], "status": r["status"]} for r in d["requests_due"]])
    st.dataframe(rows.style.apply(
        lambda row: ["color: #d93025; font-weight: 600" if row["status"] == "overdue" else "" for _ in row], axis=1),
        hide_index=True, key="dash_requests")
else:
    st.caption("No open requests.")

st.subheader("Coaching reviews")
with _ui.errors():
    months = access.review_counts(db, user)
    if months:
        st.caption("How many reviews were shared with agents, played and acknowledged each month, and how many "
                   "plays the policy refused (for example after a caller objected to quality use). Comments stay "
                   "between supervisor and agent and are not shown here.")
        st.dataframe(pd.DataFrame(months).rename(columns={"refused_plays": "refused plays"}), hide_index=True,
                     key="dash_reviews")
    else:
        st.caption("No coaching reviews were shared or played in the last 12 months.")
