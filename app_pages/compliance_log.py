"""Compliance: the tamper-evident log (exports, refusals, plays…), chain verification, CSV; recalls."""

import datetime as dt

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access
from clipkit.auditlog import canonical

user, home, db = _ui.context()
st.title("Log, exports & recalls")
PER_PAGE = 50

KINDS = {
    "(all)": None, "export attempts": "export.attempt", "exports (all steps)": "export", "plays (anonymized)": "play",
    "plays of raw audio": "play.raw", "clips": "clip", "consent": "consent", "requests": "request",
    "erasure": "erasure", "holds": "hold", "retention": "retention", "imports": "recording", "logins": "user",
}

# ---------------------------------------------------------------- verify
head_text, verify = _ui.input_and_button("Recorded head to check against (optional, SEQ:HASH)", key="log_head",
                                         button="Verify chain", button_key="log_verify", widths=[3, 1],
                                         icon=":material/verified_user:")
if verify:
    with _ui.errors(), st.spinner("Recomputing every hash…"):
        st.session_state["log_verify_result"] = access.verify_log(db, user, head_text=head_text)
res = st.session_state.get("log_verify_result")
if res:
    if res["ok"]:
        st.success(f"Intact: all {res['entries']} entries chain correctly. Current head: `{res['head']}`")
    else:
        st.error(f"Broken at entry {res['first_bad_seq']}: {res['reason']}")

# ---------------------------------------------------------------- filters, table, CSV
f1, f2, f3, f4 = st.columns([2, 2, 2, 1])
kind_label = f1.selectbox("Kind", list(KINDS), key="log_kind")
actor = f2.text_input("Actor", key="log_actor")
since = f3.date_input("Since", value=None, key="log_since")
refused = f4.checkbox("Refusals only", key="log_refused")
filters = dict(kind=KINDS[kind_label], actor=actor.strip() or None, refused=refused,
               since=dt.datetime.combine(since, dt.time(), tzinfo=dt.timezone.utc).isoformat() if since else None)

with _ui.fatal():
    total = access.log_entries(db, user, limit=0, **filters)[1]
    offset = _ui.paginate(total, per_page=PER_PAGE, key="log_page")
    rows, total = access.log_entries(db, user, limit=PER_PAGE, offset=offset, newest_first=True, **filters)

st.caption(f"{total} entries, newest first")
if rows:
    st.dataframe(pd.DataFrame([
        {"#": r["seq"], "at": r["at"][:19].replace("T", " "), "what": r["what"],
         "decision": r.get("decision") or ""}
        for r in rows
    ]), hide_index=True, key="log_table", column_config={"what": st.column_config.TextColumn(width="large")})
    by_seq = {r["seq"]: r for r in rows}
    seq = st.selectbox("Entry detail", list(by_seq), key="log_detail",
                       format_func=lambda i: f"#{i} · {by_seq[i]['what'][:90]}")
    r = by_seq[seq]
    with st.container(border=True, key="log_detail_box"):
        st.markdown(f"**#{r['seq']}** · {r['at'][:19].replace('T', ' ')} UTC · by {_ui.plain(r['actor'])}")
        st.markdown(_ui.plain(r["what"]))
        fields = {k: v for k, v in r["data"].items() if not isinstance(v, (dict, list))}
        if fields:
            st.dataframe(pd.DataFrame([{"field": k, "value": str(v)} for k, v in fields.items()]),
                         hide_index=True, key="log_detail_fields")
        for what, text in (r.get("notes") or {}).items():
            st.caption(f"{what.replace('_', ' ').capitalize()}: {_ui.plain(text)}")
        with st.expander("Raw entry (JSON, as hashed)"):
            st.code(canonical(r["data"]), language="json", wrap_lines=True)
            st.caption(f"kind {r['kind']} · hash {r['hash']}")

if st.button("Prepare CSV of these entries (newest first, as in the table)", key="log_csv_prepare",
             icon=":material/table:"):
    with _ui.errors():
        st.session_state["log_csv"] = access.log_csv(db, user, **filters)
if st.session_state.get("log_csv"):
    st.download_button("Download CSV", st.session_state["log_csv"], file_name="clipkit-log.csv", mime="text/csv",
                       key="log_csv_download", icon=":material/download:")

# ---------------------------------------------------------------- recalls
st.divider()
st.subheader("Recalls")
with _ui.errors():
    recalled = access.recalls(db, user)
    if recalled:
        st.warning(f"{len(recalled)} earlier export(s) contain clips withdrawn since; ask the recipients to "
                   "delete these files.")
        st.dataframe(pd.DataFrame([
            {"export": e["export_id"], "exported": e["at"][:16], "by": e["actor"], "recipient": e["recipient"] or "",
             "clip": f["clip_id"], "file": f["file"], "withdrawn": (f.get("withdrawn_at") or "")[:16],
             "why": f.get("reason_text") or ""}
            for e in recalled for f in e["files"]
        ]), hide_index=True, key="recalls_table")
        with st.container(border=True, key="recall_done_box"):
            st.markdown("**The recipient confirmed they deleted the files**")
            c1, c2, c3 = st.columns([2, 3, 1])
            by_id = {e["export_id"]: e for e in recalled}
            done_id = c1.selectbox("Export", list(by_id), key="recall_done_pick",
                                   format_func=lambda i: f"{i} · {by_id[i]['recipient'] or 'no recipient'}")
            done_note = c2.text_input("How they confirmed (optional)", key="recall_done_note",
                                      placeholder="e-mail of 3 May from the training team")
            with c3:
                st.write("")
                if st.button("Mark done", key="recall_done_go", icon=":material/task_alt:"):
                    with _ui.errors():
                        out = access.mark_recall_done(db, user, done_id, note=done_note or None)
                        st.session_state["recall_done_msg"] = (f"Recall of {out['export_id']} marked done "
                                                               f"({out['files']} file(s)).")
                        st.rerun()
    else:
        st.caption("No open recall: no exported clip has been withdrawn since, or every recipient confirmed.")
done_msg = st.session_state.pop("recall_done_msg", None)
if done_msg:
    st.success(done_msg)
with st.expander("Withdraw clips by hand"):
    ids_text = st.text_input("Clip ids (comma-separated)", key="withdraw_ids")
    why = st.text_input("Reason", key="withdraw_reason")
    if st.button("Withdraw", key="withdraw_go"):
        with _ui.errors():
            try:
                ids = [int(x) for x in ids_text.replace(" ", "").split(",") if x]
            except ValueError:
                ids = None
            if not ids:
                st.error("Give one or more clip ids, e.g. 12, 14")
            else:
                changed = access.withdraw_clips(db, user, ids, reason=why, home=home)
                st.success(f"Withdrawn: {', '.join(map(str, changed)) or 'none (already withdrawn)'}")
