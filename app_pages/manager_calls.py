"""Manager: browse calls, see the waveform, choose a range, listen, cut a clip, note an objection."""

import datetime as dt

import pandas as pd
import streamlit as st

from app_pages import _ui, _waveform
from clipkit import access
from clipkit.audio import ChannelMap
from clipkit.consent import PURPOSES
from clipkit.errors import ClipkitError

user, home, db = _ui.context()
st.title("Calls & cutting")

PER_PAGE = 25

# ---------------------------------------------------------------- the ranked list of calls
MOMENT_NAMES = {"overtalk": "overtalk", "long_silence": "long silence", "raised_voice": "raised voice",
                "late_escalation": "late escalation"}
MOMENT_COLORS = {"overtalk": "#e37400", "long_silence": "#5f6368", "raised_voice": "#d93025",
                 "late_escalation": "#9334e6"}
SORTS = {"difficulty": "Hardest first", "recorded": "Newest first", "id": "Last imported first"}

with _ui.fatal():
    agent_rows = access.agents(db, user)
    f1, f2, f3, f4, f5, f6 = st.columns([2, 2, 2, 2, 2, 1])
    sort = f1.selectbox("Sort", list(SORTS), format_func=SORTS.get, key="calls_sort")
    agent_pick = f2.selectbox("Agent", [None] + [a["ref"] for a in agent_rows], key="calls_agent",
                              format_func=lambda r: "(any)" if r is None else next(
                                  f"{a['label']} ({a['calls']} calls)" for a in agent_rows if a["ref"] == r))
    dates = f3.date_input("Recorded between", value=(), key="calls_dates")
    min_diff = f4.slider("Difficulty at least", 0, 100, 0, key="calls_min_difficulty")
    moment_pick = f5.selectbox("With a moment", [None] + list(MOMENT_NAMES), key="calls_moment",
                               format_func=lambda k: "(any)" if k is None else MOMENT_NAMES[k])
    no_clips = f6.checkbox("No clips yet", key="calls_no_clips")
    since = until = None
    if isinstance(dates, (tuple, list)) and len(dates) == 2:
        since = dates[0].isoformat()
        until = (dates[1] + dt.timedelta(days=1)).isoformat()
    filters = dict(sort=sort, agent_ref=agent_pick, min_difficulty=min_diff or None, moment=moment_pick,
                   no_clips=no_clips, since=since, until=until)
    total = access.ranked_calls(db, home, user, limit=0, **filters)[1]
    if total == 0:
        st.info("No calls match." if access.list_recordings(db, user, limit=0)[1] else
                "No calls yet. Import some on the *Import calls* page.")
        st.stop()
    offset = _ui.paginate(total, per_page=PER_PAGE, key="calls_page")
    recs, _ = access.ranked_calls(db, home, user, limit=PER_PAGE, offset=offset, **filters)
    by_id = {r["id"]: r for r in recs}

table = pd.DataFrame([{
    "call": r["id"],
    "difficulty": r["difficulty"],
    "why": "; ".join(r["reasons"][:2]) if r["reasons"] else ("not analysed yet" if r["difficulty"] is None else ""),
    "recorded": r["recorded_at"][:16].replace("T", " "),
    "agent": r["agent_label"],
    "length": _ui.fmt_s(r["duration_s"])[:-3],
    "clips": r["clip_count"],
} for r in recs])
picked = st.dataframe(
    table, hide_index=True, key="calls_table", on_select="rerun", selection_mode="single-row",
    column_config={"difficulty": st.column_config.ProgressColumn("difficulty", min_value=0, max_value=100,
                                                                 format="%.0f")},
)
st.caption(f"{total} call{'s' if total != 1 else ''} · showing {offset + 1}–{offset + len(recs)} · "
           "select a row to open the call")
rows_picked = (getattr(picked, "selection", None) or {}).get("rows", []) if picked is not None else []
if rows_picked:
    st.session_state["calls_recording"] = recs[rows_picked[0]]["id"]
asked = st.session_state.pop("calls_open", None)  # "Open call #N" from another page (e.g. after an import)
if asked is not None and asked not in by_id:
    with _ui.errors():
        by_id = {asked: {"difficulty": None, **access.get_recording(db, user, asked)}, **by_id}
if asked in by_id:
    st.session_state["calls_recording"] = asked
wanted = st.session_state.get("calls_recording")
if wanted not in by_id:
    st.session_state["calls_recording"] = recs[0]["id"]

with _ui.fatal():
    rid = st.selectbox("Open call", list(by_id), key="calls_recording",
                       format_func=lambda i: f"#{i} · {by_id[i]['recorded_at'][:16].replace('T', ' ')} · "
                                             f"difficulty {'–' if by_id[i].get('difficulty') is None else round(by_id[i]['difficulty'])}")
    rec = by_id[rid]
    duration = float(rec["duration_s"])
    cmap = ChannelMap.from_text(rec["channel_map"])
    found = access.call_moments(db, user, rid)

    st.caption(
        f"Length {_ui.fmt_s(duration)} · "
        + ("mixed (both voices on every channel)" if cmap.mixed
           else f"{rec['channels']} channels: caller on {cmap.caller}, agent on {cmap.agent}")
        + f" · caller {_ui.plain(rec['caller_label'])} · agent {_ui.plain(rec['agent_label'])}"
        + f" · legal basis: {rec['basis'].replace('_', ' ')} · keep until {rec['retention_until'][:10]}"
        + (f" · notice: {_ui.plain(rec['notice'])}" if rec.get("notice") else "")
    )
    if rec.get("hold_reason"):
        st.warning(f"Legal hold: {_ui.plain(rec['hold_reason'])}")
    moments = (found or {}).get("moments", [])
    if found is None:
        st.caption("This call has not been analysed yet.")
    elif found["reasons"]:
        st.markdown(f"**Difficulty {found['difficulty']:.0f}** — " + "; ".join(_ui.plain(x) for x in found["reasons"]))
    else:
        st.markdown(f"**Difficulty {found['difficulty']:.0f}** — nothing stands out in this call.")

    # ------------------------------------------------------------ range state (slider <-> numbers)
    k_range, k_start, k_end = f"cut_range_{rid}", f"cut_start_{rid}", f"cut_end_{rid}"
    if k_start not in st.session_state:
        st.session_state[k_start] = 0.0
        st.session_state[k_end] = round(min(duration, 10.0), 2)
        st.session_state[k_range] = (0.0, round(min(duration, 10.0), 2))

    # callbacks can run after a page switch has dropped the widgets' values: then do nothing
    def _from_slider():
        if k_range in st.session_state:
            a, b = st.session_state[k_range]
            st.session_state[k_start], st.session_state[k_end] = float(a), float(b)

    def _from_numbers():
        if k_start not in st.session_state or k_end not in st.session_state:
            return
        a = min(max(float(st.session_state[k_start]), 0.0), duration)
        b = min(max(float(st.session_state[k_end]), 0.0), duration)
        st.session_state[k_range] = (min(a, b), max(a, b))

    asked = st.session_state.pop("calls_cut_request", None)
    if asked and asked[0] == rid:
        # "Cut around this moment": the range is set here, before its widgets are drawn
        m = asked[1]
        try:
            a_, b_ = access.cut_range(db, user, rid, start_s=m["start_s"], end_s=m["end_s"])
        except ClipkitError as e:
            st.session_state["calls_cut_error"] = str(e)
        else:
            st.session_state[k_start], st.session_state[k_end] = a_, b_
            st.session_state[k_range] = (a_, b_)
            st.session_state["cut_title"] = f"{MOMENT_NAMES[m['kind']].capitalize()} at {_ui.fmt_s(m['start_s'])}"
            st.session_state["calls_cut_from"] = m["kind"]

    start_s, end_s = float(st.session_state[k_start]), float(st.session_state[k_end])

    # ------------------------------------------------------------ waveform
    peaks, spp = access.waveform(db, home, user, rid, points=4000, loader=_ui.cached_envelope)
    top, bottom = _waveform.envelope(peaks, caller=cmap.caller, agent=cmap.agent, mixed=cmap.mixed)
    call_clips = []
    with _ui.errors():
        call_clips = access.list_clips(db, user, recording_id=rid, limit=200)[0]
    # clips and their redactions (stored in clip time) drawn in call time
    drawn_clips = [_waveform.clip_box(c["id"], start_s=c["start_s"], end_s=c["end_s"], redactions=c["redactions"])
                   for c in call_clips]
    preview = st.session_state.get("preview_audio")
    wave = _waveform.waveform(
        key=f"wave_{rid}", top=top, bottom=bottom, step_s=spp, duration_s=duration, start_s=start_s, end_s=end_s,
        mixed=cmap.mixed, clips=drawn_clips,
        bands=[{"a": m["start_s"], "b": m["end_s"], "party": m["party"], "color": MOMENT_COLORS[m["kind"]]}
               for m in moments],
        audio_offset_s=preview[1] if preview and preview[0] == rid else None)
    picked_range = _waveform.accepted_range(getattr(wave, "range", None), duration_s=duration,
                                            last_seq=st.session_state.get(f"wave_seq_{rid}"))
    if picked_range:  # a range dragged (or set with [ and ]) on the waveform
        a_, b_, st.session_state[f"wave_seq_{rid}"] = picked_range
        st.session_state[k_start], st.session_state[k_end], st.session_state[k_range] = a_, b_, (a_, b_)
        st.rerun()
    st.caption(("Blue above the line: caller; orange below: agent. " if not cmap.mixed else "")
               + "Drag on the waveform to select a range, click to seek the player below, [ and ] set start and "
               "end at the cursor. Coloured bands: " + ", ".join(MOMENT_NAMES[k] for k in MOMENT_COLORS)
               + "; dashed boxes: clips of this call; grey: their redactions.")

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

    if moments:
        def _cut_around(m: dict) -> None:
            # a callback runs before the next run, without its database: it only asks; the run answers
            st.session_state["calls_cut_request"] = (rid, m)

        with st.expander(f"Moments in this call ({len(moments)})", expanded=True):
            for i, m in enumerate(moments):
                c1, c2 = st.columns([5, 1])
                who = {"caller": "caller", "agent": "agent"}.get(m["party"], "both")
                c1.markdown(f"**{_ui.fmt_s(m['start_s'])}–{_ui.fmt_s(m['end_s'])}** · {MOMENT_NAMES[m['kind']]}"
                            f" · {who}" + (" · hold music" if m.get("music") else ""))
                c2.button("Cut around this moment", key=f"moment_cut_{rid}_{i}", icon=":material/content_cut:",
                          on_click=_cut_around, args=(m,))
        err = st.session_state.pop("calls_cut_error", None)
        if err:
            st.error(_ui.plain(err))
        if st.session_state.pop("calls_cut_from", None):
            st.info("The range now spans the moment with a few seconds around it, from pause to pause. "
                    "Listen to it first, then cut the clip below.")

    reason = st.text_input("Why are you listening? (logged with every play of raw audio)",
                           value="Choosing a training clip", key="listen_reason")
    b1, b2 = st.columns(2)
    if b1.button("Preview range", key="preview_range", icon=":material/play_arrow:"):
        with _ui.errors(), st.spinner("Decoding…"):
            st.session_state["preview_audio"] = (rid, start_s, end_s, access.raw_audio(
                db, home, user, rid, start_s=start_s, end_s=end_s, reason=reason, loader=_ui.cached_segment))
            st.rerun()  # the waveform, drawn above, follows this player
    whole_ok = duration <= access.MAX_RAW_PLAY_S
    if b2.button("Play whole call", key="play_call", icon=":material/headphones:", disabled=not whole_ok,
                 help=None if whole_ok else "Long call: preview a range instead"):
        with _ui.errors(), st.spinner("Decoding…"):
            st.session_state["preview_audio"] = (rid, 0.0, duration, access.raw_audio(
                db, home, user, rid, start_s=0.0, end_s=duration, reason=reason, loader=_ui.cached_segment))
            st.rerun()
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
    # the time follows the start of the selected range until someone types one
    if st.session_state.get(f"obj_from_{rid}") != start_s:
        st.session_state[f"obj_from_{rid}"] = start_s
        st.session_state[f"obj_at_{rid}"] = min(start_s, duration)
    at_s = c3.number_input("At (seconds into the call)", min_value=0.0, max_value=duration, step=0.01,
                           format="%.2f", key=f"obj_at_{rid}")
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
