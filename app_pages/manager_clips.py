"""Manager: the clip list with filters and status badges; redact, anonymize, compare A/B, approve."""

import pandas as pd
import streamlit as st

from app_pages import _abplayer, _ui, _waveform
from clipkit import access, measured
from clipkit.library import CLIP_STATUSES

user, home, db = _ui.context()
st.title("Clips")
PER_PAGE = 20

# ---------------------------------------------------------------- filters and list
with _ui.fatal():
    tags = access.all_tags(db, user)
    f1, f2, f3, f4, f5, f6 = st.columns([3, 2, 2, 1, 1, 1])
    search = f1.text_input("Search title, note, tags", key="clips_search")
    tag = f2.selectbox("Tag", ["(any)"] + tags, key="clips_tag")
    status = f3.selectbox("Status", ["(any)"] + list(CLIP_STATUSES), key="clips_status")
    dmin = f4.number_input("Min s", min_value=0.0, value=None, step=1.0, key="clips_min")
    dmax = f5.number_input("Max s", min_value=0.0, value=None, step=1.0, key="clips_max")
    call = f6.number_input("Call #", min_value=1, value=None, step=1, key="clips_call")
    filters = dict(search=search or None, tag=None if tag == "(any)" else tag,
                   status=None if status == "(any)" else status, min_duration_s=dmin, max_duration_s=dmax,
                   recording_id=int(call) if call else None)
    total = access.list_clips(db, user, limit=0, **filters)[1]
    offset = _ui.paginate(total, per_page=PER_PAGE, key="clips_page")
    rows, total = access.list_clips(db, user, limit=PER_PAGE, offset=offset, **filters)

st.caption(f"{total} clip{'s' if total != 1 else ''}" + (f" · showing {offset + 1}–{offset + len(rows)}" if rows else ""))
if rows:
    st.dataframe(
        _ui.status_table(pd.DataFrame([{
            "id": r["id"], "status": r["status"], "title": r["title"],
            "tags": ", ".join(r["tags"]), "call": r["recording_id"], "start s": r["start_s"], "end s": r["end_s"],
            "length s": r["duration_s"], "by": r["author"],
        } for r in rows])),
        hide_index=True, key="clips_table",
        column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("start s", "end s", "length s")},
    )

# ---------------------------------------------------------------- bulk anonymize
page_ids = [r["id"] for r in rows]
if page_ids:
    with st.expander("Anonymize several clips"):
        chosen = st.multiselect("Clips", page_ids, key="bulk_ids",
                                format_func=lambda i: next(f"#{r['id']} {r['title']}" for r in rows if r["id"] == i))
        bulk_method = st.selectbox("Method", ["strong", "pitch"], key="bulk_method")
        if st.button("Anonymize selected", key="bulk_go", disabled=not chosen, icon=":material/auto_fix_high:",
                     help="Runs on the server: you may close the page; the progress is here when you come back"):
            with _ui.errors():
                access.start_render_job(db, home, user, chosen, method=bulk_method)
                st.session_state["bulk_started"] = True


@st.fragment(run_every=2.0)
def _jobs_panel() -> None:
    """The user's anonymize jobs, redrawn every 2 s while one runs."""
    with _ui.errors(), _ui.own_connection(home) as fdb:
        mine = access.my_jobs(fdb, user, kind="render")
        if not mine:
            return
        st.markdown("**Anonymize jobs**")
        for j in mine:
            n, done = j["total"], j["done"]
            label = {"queued": "waiting", "running": "running", "done": "done", "failed": "failed",
                     "interrupted": "interrupted (the server stopped): start it again, finished clips are kept"}
            text = f"Job {j['id']} · {n} clip(s) · {j['params'].get('method')} · {label[j['state']]}"
            if j["state"] == "done" and j["results"] is not None:
                made = sum(not r["skipped"] for r in j["results"])
                text += f": {made} anonymized, {len(j['results']) - made} already current"
            elif j["state"] == "failed":
                text += f": {_ui.plain(_ui.app_words(j['error'] or ''))}"
            st.progress(min(1.0, done / n) if n else 1.0, text=text)


_jobs_panel()

# ---------------------------------------------------------------- one clip
st.divider()
selected = st.session_state.get("clips_selected")
choices = list(page_ids)
if selected is not None and selected not in choices:
    choices.insert(0, selected)
if not choices:
    st.info("No clips match. Cut one on the *Calls & cutting* page.")
    st.stop()
if st.session_state.get("clips_pick") not in choices:
    st.session_state["clips_pick"] = selected if selected in choices else choices[0]


def _remember():
    # the callback can run after a page switch has already dropped the widget's value
    picked = st.session_state.get("clips_pick")
    if picked is not None:
        st.session_state["clips_selected"] = picked


titles = {r["id"]: r["title"] for r in rows}
cid = st.selectbox("Open clip", choices, key="clips_pick", on_change=_remember,
                   format_func=lambda i: f"#{i} · {titles[i]}" if i in titles else f"#{i}")

with _ui.fatal():
    clip = access.get_clip(db, user, cid)
    current = access.current_rendering(db, user, cid)

length = round(clip["end_s"] - clip["start_s"], 3)
h1, h2 = st.columns([5, 1])
h1.subheader(f"#{clip['id']} · {_ui.plain(clip['title'])}")
with h2:
    _ui.badge(clip["status"])
st.caption(
    f"call #{clip['recording_id']} · {clip['start_s']:.2f}–{clip['end_s']:.2f} s ({length:.2f} s) · "
    f"revision {clip['revision']} · by {clip['author']}"
    + (f" · approved by {clip['approved_by']}" if clip.get("approved_by") else "")
)
if clip["tags"]:
    st.markdown("Tags: " + " · ".join(_ui.plain(t) for t in clip["tags"]))
if clip["note"]:
    st.markdown(_ui.plain(clip["note"]))

# ---------------------------------------------------------------- redactions
st.markdown("#### Silence or beep")
c0 = float(clip["start_s"])
spans = [tuple(s) for s in clip["redactions"]]  # stored in clip time; shown and entered in call time
if spans:
    st.dataframe(pd.DataFrame([(round(c0 + a, 2), round(c0 + b, 2), m) for a, b, m in spans],
                              columns=["from s (call time)", "to s", "mode"]), hide_index=True, key=f"spans_{cid}")
else:
    st.caption("No spans: the whole clip is rendered as spoken.")
k_from, k_to = f"span_from_{cid}", f"span_to_{cid}"
if k_from not in st.session_state:
    st.session_state[k_from], st.session_state[k_to] = round(c0, 2), round(c0 + min(length, 1.0), 2)
rec = None
with _ui.errors():
    rec = access.get_recording(db, user, clip["recording_id"])
if rec is not None:
    from clipkit.audio import ChannelMap

    wmap = ChannelMap.from_text(rec["channel_map"])
    with _ui.errors():
        peaks, spp = access.waveform(db, home, user, rec["id"], points=4000, loader=_ui.cached_envelope)
        top, bottom = _waveform.envelope(peaks, caller=wmap.caller, agent=wmap.agent, mixed=wmap.mixed)
        heard = st.session_state.get("span_preview")
        pad = min(2.0, length / 4)
        wave = _waveform.waveform(
            key=f"spanwave_{cid}", top=top, bottom=bottom, step_s=spp, duration_s=float(rec["duration_s"]),
            start_s=float(st.session_state[k_from]), end_s=float(st.session_state[k_to]), mixed=wmap.mixed,
            clips=[_waveform.clip_box(cid, start_s=c0, end_s=c0 + length, redactions=spans)],
            view=(max(0.0, c0 - pad), min(float(rec["duration_s"]), c0 + length + pad)),
            audio_offset_s=c0 if heard and heard[0] == cid else None)
        got = _waveform.accepted_range(getattr(wave, "range", None), duration_s=float(rec["duration_s"]),
                                       last_seq=st.session_state.get(f"spanwave_seq_{cid}"))
        if got:
            a_, b_, st.session_state[f"spanwave_seq_{cid}"] = got
            # a span lies inside the clip: what was dragged outside it is cut off
            st.session_state[k_from] = round(min(max(a_, c0), c0 + length), 2)
            st.session_state[k_to] = round(min(max(b_, c0), c0 + length), 2)
            st.rerun()
    st.caption("Drag across the words to cover (call time, inside the dashed clip box), or type the times.")
r1, r2, r3, r4 = st.columns([1, 1, 1, 1])
s_from = r1.number_input("From (s in call)", min_value=c0, max_value=c0 + length, step=0.01, format="%.2f",
                         key=k_from)
s_to = r2.number_input("To (s in call)", min_value=c0, max_value=c0 + length, step=0.01, format="%.2f", key=k_to)
s_mode = r3.selectbox("Mode", ["beep", "silence"], key=f"span_mode_{cid}")
with r4:
    add = st.button("Add span", key="span_add", icon=":material/add:")
    clear = st.button("Remove all spans", key="span_clear", disabled=not spans)
p1, p2 = st.columns([3, 1])
preview_reason = p1.text_input("Why are you listening? (logged)", value="Checking redactions before rendering",
                               key="span_preview_reason")
with p2:
    st.write("")
    if st.button("Preview redactions", key="span_preview_go", icon=":material/hearing:",
                 help="The raw clip with the saved spans and the one selected beeped or silenced"):
        with _ui.errors(), st.spinner("Preparing…"):
            pending = [(c0 + a, c0 + b, m) for a, b, m in spans] + [(s_from, s_to, s_mode)]
            st.session_state["span_preview"] = (cid, access.redaction_preview(
                db, home, user, cid, pending, reason=preview_reason, loader=_ui.cached_segment))
            st.rerun()
heard = st.session_state.get("span_preview")
if heard and heard[0] == cid:
    st.audio(heard[1], format="audio/wav")
if add:
    with _ui.errors():
        access.set_redactions(db, home, user, cid, spans + [(round(s_from - c0, 3), round(s_to - c0, 3), s_mode)])
        st.session_state.pop("span_preview", None)
        st.rerun()
if clear:
    with _ui.errors():
        access.set_redactions(db, home, user, cid, [])
        st.session_state.pop("span_preview", None)
        st.rerun()

# ---------------------------------------------------------------- anonymize, compare, approve
st.markdown("#### Anonymize")
a1, a2, a3 = st.columns([2, 1, 2])
method = a1.selectbox("Method", ["strong", "pitch"], key="anon_method",
                      help="strong: keyed pitch + timbre chain. pitch: plain pitch shift (weak; export refuses it).")
force = a2.checkbox("Render again", key="anon_force")
drop_ok = True
if force and clip["status"] == "approved":
    # a new rendering is a new version: it must be checked and approved again
    drop_ok = st.checkbox("Render again and withdraw the approval (trainers lose the clip until it is approved "
                          "again)", key="anon_force_confirm")
with a3:
    go = st.button("Anonymize", key="anon_go", type="primary", icon=":material/auto_fix_high:", disabled=not drop_ok)
if go:
    bar = st.progress(0.0, text="Anonymizing…")
    with _ui.errors(), st.spinner("Rendering the anonymized voice…"):
        access.render_clips(db, home, user, [cid], method=method, force=force,
                            progress=lambda d, n: bar.progress(d / n if n else 1.0, text=f"Anonymizing… {d}/{n}"))
        st.session_state.pop("ab_audio", None)
        st.rerun()
if current is None:
    st.caption("No up-to-date anonymized version yet.")
else:
    figs = current.get("figures") or {}
    voice = "a voice of its own for the caller" if current.get("caller_voice") == "per-clip" else \
        "the caller's usual anonymized voice"
    st.caption(f"Current rendering: {current['method_version']} · {current['created_at'][:19].replace('T', ' ')} "
               f"by {current['created_by']} · {voice}")
    st.caption("Privacy: " + _ui.plain(measured.claim(current["method"], current["method_version"])["statement"])
               + ". Anonymized clips remain pseudonymised personal data.")
    before, after = figs.get("f0_median_before") or [], figs.get("f0_median_after") or []
    if before or after:
        from clipkit.audio import ChannelMap

        names: dict = {}
        with _ui.errors():
            cmap = ChannelMap.from_text(access.get_recording(db, user, clip["recording_id"])["channel_map"])
            names = {} if cmap.mixed else {cmap.caller: "caller", cmap.agent: "agent"}
        cols = st.columns(max(len(before), len(after), 1))
        for i, col in enumerate(cols):
            b = before[i] if i < len(before) else None
            a = after[i] if i < len(after) else None
            col.metric(f"Median pitch, {names.get(i, f'channel {i}')}", f"{a:.0f} Hz" if a else "–",
                       delta=(f"{a - b:+.0f} Hz from {b:.0f}" if a and b else None), delta_color="off")
    extra = {k: v for k, v in figs.items() if k not in ("f0_median_before", "f0_median_after")}
    if extra:
        with st.expander("All figures"):
            st.json(extra)

    reason = st.text_input("Why are you listening to the original? (logged)",
                           value="Checking the anonymized clip against the original", key="ab_reason")
    if st.button("Listen A/B", key="ab_go", icon=":material/compare_arrows:"):
        with _ui.errors(), st.spinner("Loading…"):
            a = access.clip_original_audio(db, home, user, cid, reason=reason, loader=_ui.cached_segment)
            b = access.anonymized_audio(db, home, user, cid, reader=_ui.cached_file)
            st.session_state["ab_audio"] = (cid, clip["revision"], current["sha256"], a, b)
    ab = st.session_state.get("ab_audio")
    if ab and ab[0] == cid and ab[1] == clip["revision"] and ab[2] == current["sha256"]:
        va, vb, diff = _abplayer.matched_volumes(ab[3], ab[4])
        _abplayer.ab_switch(key=f"ab_switch_{cid}", container="ab_players", volumes=(va, vb))
        with st.container(key="ab_players"):
            st.audio(ab[3], format="audio/wav")
            st.audio(ab[4], format="audio/wav")
        st.caption(f"One player: the switch keeps the position. Levels matched: B is {diff:+.1f} dB against A, "
                   "so the louder one is played that much quieter.")

st.markdown("#### Approve")
if clip["status"] == "withdrawn":
    with _ui.errors():
        w = access.clip_withdrawal(db, user, cid)
        if w:
            st.error(f"Withdrawn on {w['at'][:16].replace('T', ' ')} by {_ui.plain(w['actor'])}: "
                     f"{_ui.plain(_ui.app_words(w['reason']))}.")
blocked = []
if clip["status"] == "approved":
    st.success(f"Approved by {clip['approved_by']} on {clip['approved_at'][:10]}; trainers can use it.")
else:
    with _ui.errors():
        blocked = access.approval_reasons(db, home, user, cid)
    if blocked:
        st.caption("Approval is not possible yet:\n" + "\n".join(f"- {_ui.plain(_ui.app_words(r['message']))}"
                                                              for r in blocked))
can = clip["status"] in ("anonymized", "withdrawn", "draft") and not blocked
if st.button("Approve for training", key="approve_go", disabled=not can, icon=":material/verified:"):
    with _ui.errors():
        access.approve(db, home, user, cid)
        st.rerun()

# ---------------------------------------------------------------- edit, re-cut, delete
with st.expander("Edit, re-cut or delete"):
    with st.form(f"edit_form_{cid}"):
        e_title = st.text_input("Title", value=clip["title"], key=f"edit_title_{cid}")
        e_tags = st.text_input("Tags (comma-separated)", value=", ".join(clip["tags"]), key=f"edit_tags_{cid}")
        e_note = st.text_area("Note", value=clip["note"], key=f"edit_note_{cid}", height=80)
        if st.form_submit_button("Save", key=f"edit_save_{cid}"):
            with _ui.errors():
                access.update_clip(db, user, cid, title=e_title, note=e_note, tags=_ui.parse_tags(e_tags))
                st.rerun()
    c1, c2, c3 = st.columns(3)
    n_start = c1.number_input("New start (s in call)", min_value=0.0, value=float(clip["start_s"]), step=0.01,
                              format="%.2f", key=f"recut_start_{cid}")
    n_end = c2.number_input("New end (s in call)", min_value=0.0, value=float(clip["end_s"]), step=0.01,
                            format="%.2f", key=f"recut_end_{cid}")
    with c3:
        if st.button("Re-cut", key="recut_go", help="The anonymized version becomes stale and approval is lost"):
            with _ui.errors():
                access.recut_clip(db, home, user, cid, start_s=n_start, end_s=n_end)
                st.rerun()
    confirm = st.checkbox(f"Yes, delete clip {cid} and its anonymized audio", key=f"delete_confirm_{cid}")
    if st.button("Delete clip", key="delete_go", disabled=not confirm, icon=":material/delete:"):
        with _ui.errors():
            access.delete_clip(db, home, user, cid)
            st.session_state.pop("clips_selected", None)
            st.session_state.pop("clips_pick", None)
            st.rerun()
