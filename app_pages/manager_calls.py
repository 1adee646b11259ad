"""Manager: browse calls, see the waveform, choose a range, listen, cut a clip, note an objection."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access
from clipkit.audio import ChannelMap
from clipkit.consent import PURPOSES

user, home, db = _ui.context()
st.title("Calls & cutting")

PER_PAGE = 25

# ---------------------------------------------------------------- pick a call
with _ui.fatal():
    total = access.list_recordings(db, user, limit=0)[1]
    if total == 0:
        st.info("No calls yet. Import some on the *Import calls* page.")
        st.stop()
    offset = _ui.paginate(total, per_page=PER_PAGE, key="calls_page")
    recs, _ = access.list_recordings(db, user, limit=PER_PAGE, offset=offset)

    def _label(r: dict) -> str:
        return (f"#{r['id']} · {r['recorded_at'][:16].replace('T', ' ')} · {_ui.fmt_s(r['duration_s'])} · "
                f"caller {r['caller_label']} · agent {r['agent_label']} · {r['clip_count']} clips")

    by_id = {r["id"]: r for r in recs}
    wanted = st.session_state.get("calls_recording")
    if wanted not in by_id:
        st.session_state.pop("calls_recording", None)
    rid = st.selectbox("Call", list(by_id), format_func=lambda i: _label(by_id[i]), key="calls_recording")
    rec = by_id[rid]
    duration = float(rec["duration_s"])
    cmap = ChannelMap.from_text(rec["channel_map"])

    st.caption(
        f"Length {_ui.fmt_s(duration)} · "
        + ("mixed (both voices on every channel)" if cmap.mixed
           else f"{rec['channels']} channels: caller on {cmap.caller}, agent on {cmap.agent}")
        + f" · legal basis: {rec['basis'].replace('_', ' ')} · keep until {rec['retention_until'][:10]}"
        + (f" · notice: {_ui.plain(rec['notice'])}" if rec.get("notice") else "")
    )
    if rec.get("hold_reason"):
        st.warning(f"Legal hold: {_ui.plain(rec['hold_reason'])}")

    # ------------------------------------------------------------ range state (slider <-> numbers)
    k_range, k_start, k_end = f"cut_range_{rid}", f"cut_start_{rid}", f"cut_end_{rid}"
    if k_start not in st.session_state:
        st.session_state[k_start] = 0.0
        st.session_state[k_end] = round(min(duration, 10.0), 2)
        st.session_state[k_range] = (0.0, round(min(duration, 10.0), 2))

    def _from_slider():
        a, b = st.session_state[k_range]
        st.session_state[k_start], st.session_state[k_end] = float(a), float(b)

    def _from_numbers():
        a = min(max(float(st.session_state[k_start]), 0.0), duration)
        b = min(max(float(st.session_state[k_end]), 0.0), duration)
        st.session_state[k_range] = (min(a, b), max(a, b))

    start_s, end_s = float(st.session_state[k_start]), float(st.session_state[k_end])

    # ------------------------------------------------------------ waveform
    peaks, spp = access.waveform(db, home, user, rid, points=1500, loader=_ui.cached_envelope)
    t = np.arange(peaks.shape[1]) * spp
    if cmap.mixed:
        m = peaks.max(axis=0)
        wave = pd.DataFrame({"t": t, "top": m, "bottom": -m, "channel": "mixed"})
    else:
        wave = pd.concat([
            pd.DataFrame({"t": t, "top": peaks[cmap.caller], "bottom": 0.0, "channel": "caller"}),
            pd.DataFrame({"t": t, "top": 0.0, "bottom": -peaks[cmap.agent], "channel": "agent"}),
        ])
    area = alt.Chart(wave).mark_area(opacity=0.8, interpolate="step").encode(
        x=alt.X("t:Q", title="seconds", scale=alt.Scale(domain=[0, duration], nice=False)),
        y=alt.Y("top:Q", title="caller ↑ · agent ↓" if not cmap.mixed else "level", scale=alt.Scale(domain=[-1, 1])),
        y2="bottom:Q",
        color=alt.Color("channel:N", legend=alt.Legend(orient="right", title=None)),
    )
    sel = alt.Chart(pd.DataFrame({"a": [min(start_s, end_s)], "b": [max(start_s, end_s)]})).mark_rect(
        opacity=0.18, color="orange").encode(x="a:Q", x2="b:Q")
    st.altair_chart(alt.layer(sel, area).properties(height=200), height=220, key=f"wave_{rid}")

    # ------------------------------------------------------------ range inputs
    st.slider("Range (seconds)", min_value=0.0, max_value=duration, step=0.01, key=k_range,
              on_change=_from_slider, format="%.2f")
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.number_input("Start (s)", min_value=0.0, max_value=duration, step=0.01, format="%.2f", key=k_start,
                    on_change=_from_numbers)
    c2.number_input("End (s)", min_value=0.0, max_value=duration, step=0.01, format="%.2f", key=k_end,
                    on_change=_from_numbers)
    start_s, end_s = float(st.session_state[k_start]), float(st.session_state[k_end])
    c3.metric("Selected", f"{max(0.0, end_s - start_s):.2f} s")

    reason = st.text_input("Why are you listening? (logged with every play of raw audio)",
                           value="Choosing a training clip", key="listen_reason")
    b1, b2 = st.columns(2)
    if b1.button("Preview range", key="preview_range", icon=":material/play_arrow:"):
        with _ui.errors(), st.spinner("Decoding…"):
            st.session_state["preview_audio"] = (rid, start_s, end_s, access.raw_audio(
                db, home, user, rid, start_s=start_s, end_s=end_s, reason=reason, loader=_ui.cached_segment))
    whole_ok = duration <= access.MAX_RAW_PLAY_S
    if b2.button("Play whole call", key="play_call", icon=":material/headphones:", disabled=not whole_ok,
                 help=None if whole_ok else "Long call: preview a range instead"):
        with _ui.errors(), st.spinner("Decoding…"):
            st.session_state["preview_audio"] = (rid, 0.0, duration, access.raw_audio(
                db, home, user, rid, start_s=0.0, end_s=duration, reason=reason, loader=_ui.cached_segment))
    preview = st.session_state.get("preview_audio")
    if preview and preview[0] == rid:
        st.caption(f"Raw audio {preview[1]:.2f}–{preview[2]:.2f} s (sliced on the server)")
        st.audio(preview[3], format="audio/wav")

# ---------------------------------------------------------------- cut a clip
st.subheader("Cut a clip")
with st.form("cut_form", clear_on_submit=False):
    title = st.text_input("Title", key="cut_title")
    tags = st.text_input("Tags (comma-separated)", key="cut_tags", placeholder="abusive, billing")
    note = st.text_area("Note", key="cut_note", height=80)
    cut = st.form_submit_button("Cut clip", key="cut_submit", type="primary", icon=":material/content_cut:")
if cut:
    with _ui.errors():
        clip_id = access.create_clip(db, home, user, rid, start_s=start_s, end_s=end_s, title=title,
                                     tags=_ui.parse_tags(tags), note=note)
        st.session_state["clips_selected"] = clip_id
        st.session_state.pop("clips_pick", None)  # the Clips page opens the new clip
        st.success(f"Created clip {clip_id} ({start_s:.2f}–{end_s:.2f} s). Redact, anonymize and approve it on the "
                   "Clips page.")
        st.page_link("app_pages/manager_clips.py", label=f"Open clip {clip_id}", icon=":material/arrow_forward:")

# ---------------------------------------------------------------- objection heard in the call
with st.expander("Record an objection heard in this call"):
    c1, c2, c3 = st.columns(3)
    party = c1.selectbox("Who objected", ["caller", "agent"], key="obj_party")
    purpose = c2.selectbox("To which use", list(PURPOSES), key="obj_purpose")
    at_s = c3.number_input("At (seconds into the call)", min_value=0.0, max_value=duration, step=0.01,
                           format="%.2f", key=f"obj_at_{rid}", value=min(start_s, duration))
    obj_note = st.text_input("Note", key="obj_note", placeholder="What was said")
    if st.button("Record objection", key="obj_submit", icon=":material/front_hand:"):
        with _ui.errors():
            out = access.record_in_call_objection(db, user, rid, party=party, at_s=at_s, purpose=purpose,
                                                  note=obj_note or None, home=home)
            recalled = (out.get("recall") or {}) if isinstance(out, dict) else {}
            msg = f"Objection of the {party} to {purpose} use recorded at {at_s:.2f} s."
            n = recalled.get("clips") if isinstance(recalled, dict) else None
            if n:
                msg += f" Clips withdrawn: {len(n) if isinstance(n, list) else n}."
            st.success(msg)

# ---------------------------------------------------------------- clips of this call
with _ui.errors():
    clips, n = access.list_clips(db, user, recording_id=rid, limit=200)
    if n:
        st.subheader(f"Clips of this call ({n})")
        if n > len(clips):
            st.caption(f"The newest {len(clips)} are shown; the Clips page lists them all (filter by call #{rid}).")
        st.dataframe(
            _ui.status_table(pd.DataFrame([{"id": c["id"], "status": c["status"], "start": c["start_s"],
                                            "end": c["end_s"], "title": c["title"], "tags": ", ".join(c["tags"])}
                                           for c in clips])),
            hide_index=True, key="calls_clips_table",
            column_config={"start": st.column_config.NumberColumn(format="%.2f s"),
                           "end": st.column_config.NumberColumn(format="%.2f s")},
        )
