"""Manager: this month's one-on-one reviews per agent; open one, comment at a moment, score, share."""

import datetime as dt

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access

user, home, db = _ui.context()
st.title("Coaching")
st.caption("Each month a few calls of every agent, gone through together. Reviews are for quality: a caller who "
           "objected to quality use is never in one, and the agent hears the caller anonymized.")

# ---------------------------------------------------------------- the month's sample
c1, c2, c3 = st.columns([2, 1, 1])
today = dt.date.today()
months = [f"{(today.replace(day=1) - dt.timedelta(days=31 * i)):%Y-%m}" for i in range(12)]
month = c1.selectbox("Month", months, key="coach_month")
per_agent = int(c2.number_input("Reviews per agent", min_value=1, max_value=20, value=3, key="coach_per_agent"))
difficult = c3.slider("From the hardest calls", 0.0, 1.0, 0.5, 0.1, key="coach_difficult",
                      help="The share of new reviews drawn from the agent's most difficult calls; the rest at random.")
with _ui.fatal():
    overview = access.coaching_overview(db, home, user, month=month, per_agent=per_agent)
if overview:
    st.dataframe(pd.DataFrame([{"agent": o["agent"], "calls": o["calls"], "target": o["target"],
                                "reviews": o["reviews"], "draft": o["draft"], "shared": o["shared"],
                                "acknowledged": o["acknowledged"], "missing": o["missing"]} for o in overview]),
                 hide_index=True, key="coach_overview")
    if st.button("Draw this month's reviews", key="coach_sample", icon=":material/casino:",
                 disabled=not any(o["missing"] for o in overview)):
        with _ui.errors():
            out = access.sample_reviews(db, home, user, month=month, per_agent=per_agent, difficult_share=difficult)
            short = [a for a in out["per_agent"].values() if a["short"]]
            msg = f"Drew {len(out['created'])} review(s)."
            if short:
                msg += " Not enough eligible calls for " + ", ".join(_ui.plain(a["name"]) for a in short) + "."
            st.session_state["coach_message"] = msg
            st.rerun()
else:
    st.info("No calls in this month.")
msg = st.session_state.pop("coach_message", None)
if msg:
    st.success(msg)

# ---------------------------------------------------------------- one review
with _ui.fatal():
    reviews = access.list_reviews(db, user, month=month)
if not reviews:
    st.stop()
st.divider()
by_id = {r["id"]: r for r in reviews}
if st.session_state.get("coach_review") not in by_id:
    st.session_state["coach_review"] = reviews[0]["id"]
rid = st.selectbox("Open review", list(by_id), key="coach_review",
                   format_func=lambda i: f"#{i} · {by_id[i]['agent_name']} · call {by_id[i]['recording_id']} · "
                                         f"{by_id[i]['status']} · {by_id[i]['why']}")
with _ui.fatal():
    review = access.get_review(db, user, rid)
    card = access.scorecard(db, home, user)
st.subheader(f"Review {rid} · {_ui.plain(review['agent_name'])}")
st.caption(f"Call {review['recording_id']} · {_ui.fmt_s(review['start_s'])}–{_ui.fmt_s(review['end_s'])} · "
           f"{review['status']} · chosen {'from the hardest calls' if review['why'] == 'difficult' else review['why']}"
           + (" · one mixed channel: both voices anonymized" if review["channels"] == "mixed" else ""))
if review["audio_gone"]:
    st.warning("The call's audio is gone (erased or purged): the review can no longer be played.")
else:
    # comment markers on the call's waveform
    with _ui.errors():
        peaks, spp = access.waveform(db, home, user, review["recording_id"], points=1200, loader=_ui.cached_envelope)
        t = np.arange(peaks.shape[1]) * spp
        wave = pd.DataFrame({"t": t, "level": peaks.max(axis=0)})
        wave = wave[(wave.t >= review["start_s"]) & (wave.t <= review["end_s"])]
        chart = alt.Chart(wave).mark_area(opacity=0.6, interpolate="step").encode(
            x=alt.X("t:Q", title="seconds in the call", scale=alt.Scale(nice=False)), y=alt.Y("level:Q", title=None))
        if review["comments"]:
            marks = pd.DataFrame([{"t": c["at_s"], "comment": c["text"][:60]} for c in review["comments"]])
            chart = chart + alt.Chart(marks).mark_rule(color="#d93025", strokeWidth=2).encode(x="t:Q", tooltip=["comment"])
        st.altair_chart(chart.properties(height=140), key=f"coach_wave_{rid}")
    start_at = st.session_state.pop(f"coach_at_{rid}", None)
    if st.button("Listen (as the agent will hear it)", key="coach_play", icon=":material/play_arrow:") or start_at:
        with _ui.errors():
            data = access.review_audio(db, home, user, rid)
            st.audio(data, format="audio/wav", start_time=int(max(0.0, (start_at or review["start_s"])
                                                                  - review["start_s"])),
                     autoplay=start_at is not None)

st.markdown("#### Comments")
for i, c in enumerate(review["comments"]):
    c1, c2 = st.columns([1, 6])
    if c1.button(_ui.fmt_s(c["at_s"]), key=f"coach_jump_{i}", help="Play from here"):
        st.session_state[f"coach_at_{rid}"] = c["at_s"]
        st.rerun()
    c2.markdown(f"{_ui.plain(c['text'])}  \n*{_ui.plain(c['author'])}*")
if review["status"] != "closed":
    with st.form(f"coach_comment_form_{rid}", clear_on_submit=True):
        a1, a2 = st.columns([1, 4])
        at = a1.number_input("At (s in the call)", min_value=float(review["start_s"]), max_value=float(review["end_s"]),
                             value=float(review["start_s"]), step=0.5, key=f"coach_at_input_{rid}")
        text = a2.text_input("Comment", key=f"coach_comment_{rid}")
        if st.form_submit_button("Add comment", key=f"coach_comment_go_{rid}"):
            with _ui.errors():
                access.comment_review(db, user, rid, at_s=at, text=text)
                st.rerun()

st.markdown("#### Scorecard")
lo, hi = card["scale"]
if review["status"] != "closed":
    with st.form(f"coach_score_form_{rid}"):
        cols = st.columns(len(card["criteria"]))
        values = {}
        for col, crit in zip(cols, card["criteria"]):
            values[crit] = col.select_slider(crit, options=list(range(lo, hi + 1)),
                                             value=review["scores"].get(crit, (lo + hi) // 2),
                                             key=f"coach_score_{rid}_{crit}")
        overall = st.text_area("Overall note", value=review.get("overall_note") or "", key=f"coach_overall_{rid}",
                               height=70)
        if st.form_submit_button("Save scores", key=f"coach_score_go_{rid}"):
            with _ui.errors():
                access.score_review(db, home, user, rid, values, overall_note=overall or None)
                st.rerun()
elif review["scores"]:
    st.write(review["scores"])

if review["reply"]:
    st.markdown(f"**The agent replied:** {_ui.plain(review['reply'])}")
b1, b2 = st.columns(2)
if review["status"] == "draft":
    if b1.button("Share with the agent", key="coach_share", type="primary", icon=":material/send:"):
        with _ui.errors(), st.spinner("Preparing the audio the agent will hear…"):
            access.share_review(db, home, user, rid)
            st.session_state["coach_message"] = f"Review {rid} shared with {review['agent_name']}."
            st.rerun()
if review["status"] != "closed" and b2.button("Close review", key="coach_close"):
    with _ui.errors():
        access.close_review(db, user, rid)
        st.rerun()
