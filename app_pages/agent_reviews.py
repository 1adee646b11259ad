"""Agent: the coaching reviews shared with me; listen with the supervisor's comments, reply, acknowledge."""

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access

user, home, db = _ui.context()
st.title("My reviews")
st.caption("Calls your supervisor went through with you. You hear your own voice as you spoke; the caller's "
           "voice is anonymized.")

with _ui.fatal():
    rows = access.list_reviews(db, user)
if not rows:
    st.info("No review has been shared with you yet.")
    st.stop()

STATUS = {"shared": "to go through", "acknowledged": "acknowledged", "closed": "closed"}
st.dataframe(pd.DataFrame([{"review": r["id"], "month": r["month"], "status": STATUS.get(r["status"], r["status"]),
                            "comments": r["comments"], "shared": (r["shared_at"] or "")[:10]} for r in rows]),
             hide_index=True, key="my_reviews_table")
by_id = {r["id"]: r for r in rows}
if st.session_state.get("my_review") not in by_id:
    st.session_state["my_review"] = rows[0]["id"]
rid = st.selectbox("Open review", list(by_id), key="my_review",
                   format_func=lambda i: f"Review {i} · {by_id[i]['month']} · {STATUS.get(by_id[i]['status'])}")

with _ui.fatal():
    review = access.get_review(db, user, rid)
    card = access.scorecard(db, home, user)

st.subheader(f"Review {rid} · {review['month']}")
if review["channels"] == "mixed":
    st.caption("This call was recorded on one channel: both voices are anonymized together.")
if review["audio_gone"]:
    st.warning("The audio of this call is no longer kept (erased or past its retention); the comments and "
               "scores remain.")
else:
    start_at = st.session_state.get(f"my_review_at_{rid}")
    if st.button("Listen", key="my_review_play", icon=":material/play_arrow:") or start_at is not None:
        with _ui.errors():
            data = access.review_audio(db, home, user, rid)
            offset = max(0.0, (start_at or review["start_s"]) - review["start_s"])
            st.audio(data, format="audio/wav", start_time=int(offset), autoplay=start_at is not None)
            st.session_state.pop(f"my_review_at_{rid}", None)

st.markdown("#### Comments")
if not review["comments"]:
    st.caption("No comments.")
for i, c in enumerate(review["comments"]):
    c1, c2 = st.columns([1, 6])
    if c1.button(_ui.fmt_s(c["at_s"]), key=f"my_review_jump_{i}", help="Play from here"):
        st.session_state[f"my_review_at_{rid}"] = c["at_s"]
        st.rerun()
    c2.markdown(f"{_ui.plain(c['text'])}  \n*{_ui.plain(c['author'])}*")

st.markdown("#### Scorecard")
lo, hi = card["scale"]
if review["scores"]:
    st.dataframe(pd.DataFrame([{"criterion": k, "score": v, "of": hi} for k, v in review["scores"].items()]),
                 hide_index=True, key="my_review_scores")
else:
    st.caption("Not scored yet.")
if review.get("overall_note"):
    st.markdown(f"**Overall:** {_ui.plain(review['overall_note'])}")

st.markdown("#### Your reply")
if review["status"] == "shared":
    reply = st.text_area("Anything you want to add (optional)", key="my_review_reply", height=90)
    if st.button("Acknowledge", key="my_review_ack", type="primary", icon=":material/task_alt:"):
        with _ui.errors():
            access.acknowledge_review(db, user, rid, reply=reply or None)
            st.session_state["my_review_done"] = rid
            st.rerun()
else:
    st.markdown(_ui.plain(review["reply"]) if review.get("reply") else "*No reply.*")
    st.caption(f"Acknowledged on {(review['acknowledged_at'] or '')[:10]}." if review["acknowledged_at"] else "")
if st.session_state.pop("my_review_done", None) == rid:
    st.success("Acknowledged. Your supervisor can see your reply.")
