"""Compliance: the requests register with due dates; access bundles and erasure, each with a confirmation step."""

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access
from clipkit.requests import KINDS, ROLES

user, home, db = _ui.context()
st.title("Requests & erasure")

# ---------------------------------------------------------------- register
with _ui.fatal():
    rows = access.list_requests(db, user)
open_rows = [r for r in rows if r["status"] != "closed"]
overdue = [r for r in open_rows if r["status"] == "overdue"]
c1, c2, c3 = st.columns(3)
c1.metric("Open", len(open_rows))
c2.metric("Due within 7 days", sum(r["status"] == "due-soon" for r in open_rows))
c3.metric("Overdue", len(overdue))
if overdue:
    st.error("Overdue: " + ", ".join(f"request {r['id']} ({r['kind']}, due {r['due']})" for r in overdue))

show_closed = st.checkbox("Show closed requests", key="req_show_closed")
shown = rows if show_closed else open_rows
if shown:
    table = pd.DataFrame([
        {"id": r["id"], "kind": r["kind"], "person": r.get("label") or "(erased)", "received": r["received"][:10],
         "due": r["due"], "status": r["status"], "extended": "yes" if r["extended"] else "",
         "outcome": r.get("outcome") or ""}
        for r in shown
    ])
    colors = {"overdue": "color: #d93025; font-weight: 600", "due-soon": "color: #e37400"}
    st.dataframe(table.style.apply(lambda row: [colors.get(row["status"], "")] * len(row), axis=1),
                 hide_index=True, key="req_table")
else:
    st.caption("No open requests.")

with st.expander("Register a new request"):
    with st.form("req_new"):
        c1, c2, c3 = st.columns(3)
        kind = c1.selectbox("Kind", list(KINDS), key="req_kind")
        role = c2.selectbox("The person is the", list(ROLES), key="req_role")
        received = c3.date_input("Received", key="req_received")
        identifier = st.text_input("Phone, customer or employee number", key="req_identifier")
        c1, c2 = st.columns(2)
        channel = c1.text_input("Received by (email, letter…)", key="req_channel")
        note = c2.text_input("Note", key="req_note")
        if st.form_submit_button("Register", key="req_submit", type="primary"):
            with _ui.errors():
                r = access.open_request(db, home, user, kind=kind, identifier=identifier, role=role,
                                        received=received.isoformat() if received else None, channel=channel,
                                        note=note)
                st.session_state["req_message"] = f"Registered request {r['id']} ({r['kind']}), due {r['due']}."
                st.rerun()
msg = st.session_state.pop("req_message", None)
if msg:
    st.success(msg)

if open_rows:
    with st.expander("Extend or close a request"):
        rid = st.selectbox("Request", [r["id"] for r in open_rows], key="req_pick",
                           format_func=lambda i: next(f"{r['id']} · {r['kind']} · due {r['due']}" for r in open_rows
                                                      if r["id"] == i))
        text = st.text_input("Reason (extend) or outcome (close)", key="req_text")
        c1, c2 = st.columns(2)
        if c1.button("Extend by two months", key="req_extend"):
            with _ui.errors():
                r = access.extend_request(db, user, rid, reason=text)
                st.session_state["req_message"] = f"Request {rid} now due {r['due']}."
                st.rerun()
        if c2.button("Close", key="req_close"):
            with _ui.errors():
                access.close_request(db, user, rid, outcome=text)
                st.session_state["req_message"] = f"Request {rid} closed."
                st.rerun()

# ---------------------------------------------------------------- access bundle
st.divider()
st.subheader("Access bundle (Art. 15)")
st.caption("Everything stored about one person: their own voice per call, clips, consent history and exports, "
           "with a summary in Dutch and English.")
c1, c2, c3 = st.columns([3, 1, 1])
ab_identifier = c1.text_input("Phone, customer or employee number", key="ab_identifier")
ab_role = c2.selectbox("The person is the", list(ROLES), key="ab_role")
access_open = [r["id"] for r in open_rows if r["kind"] == "access"]
ab_request = c3.selectbox("Answers request", [None] + access_open, key="ab_request",
                          format_func=lambda i: "oldest open (if any)" if i is None else f"request {i}")
ab_other = st.checkbox("Include the other party's voice (only with a documented reason)", key="ab_other")
ab_confirm = st.checkbox("I checked the person's identity and want to write the bundle", key="ab_confirm")
if st.button("Write access bundle", key="ab_go", disabled=not (ab_confirm and ab_identifier), type="primary"):
    with _ui.errors(), st.spinner("Writing the bundle…"):
        out = access.access_bundle(db, home, user, identifier=ab_identifier, role=ab_role, request_id=ab_request,
                                   include_other_party=ab_other)
        st.session_state["ab_result"] = out
        st.session_state["ab_zip"] = access.bundle_zip(db, user, out["bundle_id"])
ab = st.session_state.get("ab_result")
if ab:
    closed = ab.get("request") if ab.get("closed_request") else None
    st.success(f"Bundle written to {ab['path']}" + (f"; request {closed} closed." if closed else "."))
    st.download_button("Download bundle (.zip)", st.session_state["ab_zip"], file_name="access-bundle.zip",
                       mime="application/zip", key="ab_download", icon=":material/download:")

# ---------------------------------------------------------------- erasure
st.divider()
st.subheader("Erasure (Art. 17)")
erasure_open = [r["id"] for r in open_rows if r["kind"] == "erasure"]
c1, c2 = st.columns([3, 2])
er_identifier = c1.text_input("Phone, customer or employee number (or pick a request)", key="er_identifier")
er_request = c2.selectbox("Erasure request", [None] + erasure_open, key="er_request",
                          format_func=lambda i: "oldest open (if any)" if i is None else f"request {i}")
if st.button("Preview what would be erased", key="er_preview", icon=":material/preview:"):
    with _ui.errors():
        st.session_state["er_plan"] = (er_identifier, er_request, access.erase(
            db, home, user, identifier=er_identifier or None, request_id=er_request, dry_run=True))
plan = st.session_state.get("er_plan")
if plan and plan[0] == er_identifier and plan[1] == er_request:
    p = plan[2]
    would = p.get("would_erase", {})
    st.warning(f"Would permanently delete {would.get('recordings', 0)} call(s), {would.get('clips', 0)} clip(s), "
               f"{would.get('renderings', 0)} anonymized rendering(s) and {would.get('files', 0)} file(s), and the "
               "link to the person.")
    _ui.deletion_preview([
        {"call": f"#{r['id']}", "recorded": (r["recorded_at"] or "")[:16].replace("T", " "), "as": r["role"],
         "clips": r["clips"], "kept": "legal hold" if r["held"] else ""} for r in p.get("recordings", [])],
        p, key="er_preview")
    if p.get("refused"):
        st.info("Kept (legal hold): " + "; ".join(f"call #{r['recording']}: {_ui.plain(r['reason'])}" for r in p["refused"]))
    if p.get("exports_to_recall"):
        st.info(f"{len(p['exports_to_recall'])} earlier export(s) held this person's voice; their recipients must "
                "be asked to delete them.")
    sure = st.checkbox("I understand this cannot be undone", key="er_confirm")
    if st.button("Erase now", key="er_go", disabled=not sure, type="primary", icon=":material/delete_forever:"):
        with _ui.errors(), st.spinner("Erasing…"):
            out = access.erase(db, home, user, identifier=er_identifier or None, request_id=er_request)
            _ui.forget_cached_audio()
            st.session_state.pop("er_plan", None)
            e = out["erased"]
            st.session_state["req_message"] = (
                f"Erased {e['recordings']} call(s), {e['clips']} clip(s), {e['renderings']} rendering(s)."
                + (" Some calls were kept on legal hold." if out.get("refused") else "")
                + (" Request closed." if out.get("request_closed") else ""))
            st.rerun()
