"""Trainer: the library of approved, anonymized clips; play, select, export a training package."""

import streamlit as st

from app_pages import _ui
from clipkit import access

user, home, db = _ui.context()
st.title("Training library")
st.caption("Approved clips with anonymized voices. Every play is logged.")
PER_PAGE = 10

with _ui.fatal():
    tags = access.library_tags(db, user)
f1, f2, f3, f4 = st.columns([3, 2, 1, 1])
search = f1.text_input("Search title, note, tags", key="lib_search")
tag = f2.selectbox("Tag", ["(any)"] + tags, key="lib_tag")
dmin = f3.number_input("Min s", min_value=0.0, value=None, step=1.0, key="lib_min")
dmax = f4.number_input("Max s", min_value=0.0, value=None, step=1.0, key="lib_max")
filters = dict(search=search or None, tag=None if tag == "(any)" else tag, min_duration_s=dmin, max_duration_s=dmax)

with _ui.fatal():
    total = access.trainer_library(db, user, limit=0, **filters)[1]
    offset = _ui.paginate(total, per_page=PER_PAGE, key="lib_page")
    rows, total = access.trainer_library(db, user, limit=PER_PAGE, offset=offset, **filters)

two_channels = st.toggle("Two channels (caller in one ear, agent in the other)", key="lib_two_channels",
                         help="Off: both voices in both ears, as a listener in a training room expects")
selection: list = st.session_state.setdefault("lib_selection", [])
st.caption(f"{total} clip{'s' if total != 1 else ''}" + (f" · showing {offset + 1}–{offset + len(rows)}" if rows else ""))
if not rows:
    st.info("No approved clips match.")


def _toggle(clip_id: int):
    if st.session_state.get(f"lib_sel_{clip_id}"):
        if clip_id not in selection:
            selection.append(clip_id)
    elif clip_id in selection:
        selection.remove(clip_id)


playing = st.session_state.get("lib_playing")
just_played = None
for r in rows:
    with st.container(border=True, key=f"lib_clip_{r['id']}"):
        c1, c2, c3 = st.columns([6, 1, 1])
        # titles, tags and notes are typed by people: shown as text, never as Markdown
        c1.markdown(f"**{_ui.plain(r['title'])}**  \n" + (" · ".join(_ui.plain(t) for t in r["tags"]) + " · "
                                                           if r["tags"] else "")
                    + f"{r['duration_s']:.1f} s · clip #{r['id']}")
        if r["note"]:
            c1.caption(_ui.plain(r["note"]))
        if c2.button("Play", key=f"lib_play_{r['id']}", icon=":material/play_arrow:"):
            with _ui.errors():
                data = access.anonymized_audio(db, home, user, r["id"], reader=_ui.cached_file,
                                               mix="channels" if two_channels else "centre")
                st.session_state["lib_playing"] = playing = (r["id"], data)
                just_played = r["id"]
        st.session_state[f"lib_sel_{r['id']}"] = r["id"] in selection
        c3.checkbox("Select", key=f"lib_sel_{r['id']}", on_change=_toggle, args=(r["id"],))
        if playing and playing[0] == r["id"]:
            # autoplay only right after "Play", not on every rerun (ticking a box must not restart it)
            st.audio(playing[1], format="audio/wav", autoplay=just_played == r["id"])

# ---------------------------------------------------------------- playlists
with st.expander("Playlists for a session"):
    with _ui.errors():
        lists = access.my_playlists(db, user)
        c1, c2 = st.columns([3, 1])
        pl_name = c1.text_input("Save the selection as", key="pl_name", placeholder="Monday: de-escalation")
        with c2:
            st.write("")
            if st.button("Save playlist", key="pl_save", disabled=not selection, icon=":material/playlist_add:"):
                saved = access.save_playlist(db, user, name=pl_name, clip_ids=list(selection))
                st.session_state["pl_message"] = f"Saved {saved['name']!r} with {len(saved['clip_ids'])} clip(s)."
                st.rerun()
        if lists:
            by_id = {p["id"]: p for p in lists}
            c1, c2, c3 = st.columns([3, 1, 1])
            pick = c1.selectbox("Playlist", list(by_id), key="pl_pick",
                                format_func=lambda i: f"{by_id[i]['name']} ({len(by_id[i]['clip_ids'])} clips)")
            with c2:
                st.write("")
                if st.button("Select its clips", key="pl_load", icon=":material/playlist_play:"):
                    rows_in = access.library_rows_by_id(db, user, by_id[pick]["clip_ids"])
                    selection[:] = [r["id"] for r in rows_in]
                    gone = len(by_id[pick]["clip_ids"]) - len(rows_in)
                    st.session_state["pl_message"] = (f"Selected {len(rows_in)} clip(s) of {by_id[pick]['name']!r}"
                                                      + (f"; {gone} are no longer in the library." if gone else "."))
                    st.rerun()
            with c3:
                st.write("")
                if st.button("Delete", key="pl_delete", icon=":material/delete:"):
                    access.delete_playlist(db, user, pick)
                    st.rerun()
    msg = st.session_state.pop("pl_message", None)
    if msg:
        st.success(_ui.plain(msg))

# ---------------------------------------------------------------- export
st.divider()
st.subheader("Export a training package")
st.caption(f"Selected: {', '.join(f'#{i}' for i in selection) if selection else 'none'} "
           "(select clips above; the selection is kept across pages)")
c1, c2 = st.columns([3, 1])
recipient = c1.text_input("Recipient", value="Training team", key="exp_recipient")
all_or_nothing = c2.checkbox("All or nothing", key="exp_all_or_nothing",
                             help="Export nothing if any selected clip is refused")
b1, b2 = st.columns([1, 4])
if b1.button("Export", key="exp_go", type="primary", disabled=not selection, icon=":material/package_2:"):
    st.session_state.pop("exp_result", None)
    st.session_state.pop("exp_zip", None)
    with _ui.errors(), st.spinner("Checking the policy and copying files…"):
        result = access.export_package(db, home, user, list(selection), recipient=recipient,
                                       all_or_nothing=all_or_nothing)
        st.session_state["exp_result"] = result
        st.session_state["exp_zip"] = (access.package_zip(db, home, user, result["export_id"])
                                       if result.get("path") else None)
if b2.button("Clear selection", key="exp_clear", disabled=not selection):
    selection.clear()
    st.rerun()

result = st.session_state.get("exp_result")
if result:
    n_ok = len(result.get("exported", []))
    if result.get("refused"):
        lines = "\n".join(f"- clip {r['clip_id']}: {_ui.plain(_ui.app_words(r['message']))}"
                          for r in result.get("reasons", []))
        st.warning(f"Exported {n_ok} clip(s); {len(result['refused'])} refused by the privacy policy:\n\n{lines}")
    else:
        st.success(f"Exported {n_ok} clip(s) as {result['export_id']}.")
    if st.session_state.get("exp_zip"):
        st.download_button("Download package (.zip)", st.session_state["exp_zip"], file_name=f"{result['export_id']}.zip",
                           mime="application/zip", key="exp_download", icon=":material/download:")
