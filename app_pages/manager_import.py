"""Manager: upload call recordings and import them with their parties, channel map and legal basis."""

import re
import shutil

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access, batch, store
from clipkit.home import LEGAL_BASES

user, home, db = _ui.context()
st.title("Import calls")
st.caption("WAV, FLAC, OGG or MP3 · 8–48 kHz · mono or stereo. Identifiers are turned into keyed pseudonyms; "
           "the raw numbers are never stored.")

CHANNEL_CHOICES = {
    "auto": "Automatic (mono = mixed, stereo = caller left, agent right)",
    "caller,agent": "Stereo: caller left, agent right",
    "agent,caller": "Stereo: agent left, caller right",
    "mixed": "Mixed: both voices on every channel",
    "custom": "Other: caller=N,agent=M",
}

with st.form("import_form", clear_on_submit=False):
    files = st.file_uploader("Call recordings", type=["wav", "flac", "ogg", "mp3"], accept_multiple_files=True,
                             key="import_files")
    c1, c2 = st.columns(2)
    caller = c1.text_input("Caller identifier (phone or customer number)", key="import_caller")
    agent = c2.text_input("Agent identifier (employee id)", key="import_agent")
    c1, c2 = st.columns(2)
    channels = c1.selectbox("Channel map", list(CHANNEL_CHOICES), format_func=CHANNEL_CHOICES.get,
                            key="import_channels")
    custom = c2.text_input("Custom channel map", placeholder="caller=0,agent=2", key="import_channels_custom")
    c1, c2 = st.columns(2)
    default_basis = home.config.get("default_basis", LEGAL_BASES[0])
    basis = c1.selectbox("Legal basis", list(LEGAL_BASES), index=list(LEGAL_BASES).index(default_basis),
                         format_func=lambda b: b.replace("_", " "), key="import_basis")
    recorded_at = c2.text_input("Recorded at (ISO 8601, blank = now)", placeholder="2026-05-01T14:30:00+02:00",
                                key="import_recorded_at")
    notice = st.text_input("Notice the caller heard", value="Calls are recorded for quality and training purposes.",
                           key="import_notice")
    with st.expander("The caller or agent was erased earlier at their request"):
        erased_reason = st.text_input(
            "Lawful reason to import their calls again", key="import_erased_reason",
            help="Only with a lawful reason (e.g. a court order). It is kept with the log entry of this import.")
    submitted = st.form_submit_button("Import", key="import_submit", type="primary", icon=":material/upload:")

FORM_KEYS = ("import_files", "import_caller", "import_agent", "import_channels_custom", "import_recorded_at",
             "import_erased_reason")


def _save_uploads(uploads, scratch) -> dict:
    """The uploaded files on disk in the scratch folder: ``{uploaded name: path}``."""
    saved = {}
    for i, f in enumerate(uploads):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f.name)[-120:] or "upload"
        dest = scratch.path / f"{i:03d}-{safe}"
        with open(dest, "wb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
        saved[f.name] = dest
    return saved


def _row(name: str, r, error: str | None = None) -> dict:
    if error or r is None or r.error:
        text, path = error or r.error, str(getattr(r, "path", "") or "")
        # the scratch copy's path means nothing to the user: name the file they uploaded
        return {"file": name, "result": "error: " + _ui.app_words(text.replace(path, name) if path else text),
                "call": None}
    return {"file": name, "result": _imported(r.id, r.duplicate, r.duration_s, r.channels), "call": r.id}


def _imported(call: int, duplicate: bool, duration_s: float | None, channels: int | None) -> str:
    return (f"{'already imported as' if duplicate else 'imported as'} call #{call}"
            + (f" ({duration_s:.1f} s, {channels} ch)" if duration_s is not None else ""))


if submitted:
    if not files:
        st.error("Choose at least one audio file to import.")
    else:
        cmap = None if channels == "auto" else (custom.strip() if channels == "custom" else channels)
        # a locked scratch folder: another process's clean-up leaves it alone while this run lives
        scratch = store.Scratch(home, "upload")
        try:
            saved = _save_uploads(files, scratch)
            with _ui.errors(), st.spinner(f"Checking and importing {len(saved)} file(s)…"):
                results = access.import_calls(db, home, user, list(saved.values()), caller=caller, agent=agent,
                                              channels=cmap, recorded_at=recorded_at.strip() or None, basis=basis,
                                              notice=notice.strip() or None,
                                              erased_party_reason=erased_reason.strip() or None)
                names = {str(p): n for n, p in saved.items()}
                st.session_state["import_done"] = [_row(names.get(r.path, r.path), r) for r in results]
                if all(not r.error for r in results):
                    for k in FORM_KEYS:  # a clean form for the next batch
                        st.session_state.pop(k, None)
                st.rerun()
        finally:
            scratch.close()

# ---------------------------------------------------------------- many calls with a metadata CSV
st.divider()
st.subheader("Many calls with a metadata CSV")
st.caption("How call recorders export: a CSV with one row per file and the columns file, caller, agent, and "
           "optionally recorded_at, channels (caller,agent · agent,caller · mixed · caller=N,agent=M), basis "
           "(contract · legitimate_interest · consent) and notice. Upload the CSV and the audio files it names.")
with st.form("batch_form", clear_on_submit=True):
    sheet = st.file_uploader("Metadata CSV", type=["csv", "txt"], key="batch_csv")
    audio_files = st.file_uploader("The audio files it names", type=["wav", "flac", "ogg", "mp3"],
                                   accept_multiple_files=True, key="batch_files")
    go = st.form_submit_button("Import all", key="batch_submit", type="primary", icon=":material/playlist_add:")
if go:
    if sheet is None or not audio_files:
        st.error("Choose the metadata CSV and the audio files it names.")
    else:
        raw = sheet.getvalue()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        with _ui.errors():
            rows = batch.parse_manifest(text)
            # the job owns the uploads' scratch folder and removes it when the import is done
            scratch = store.Scratch(home, "upload")
            try:
                saved = _save_uploads(audio_files, scratch)
            except BaseException:
                scratch.close()
                raise
            access.start_import_job(db, home, user, rows, files=saved, scratch=scratch)
            st.session_state.pop("import_done", None)


@st.fragment(run_every=2.0)
def _import_jobs() -> None:
    """Batch imports running on the server (the page may be closed meanwhile), redrawn every 2 s."""
    with _ui.errors(), _ui.own_connection(home) as fdb:
        mine = access.my_jobs(fdb, user, kind="import", limit=3)
        for j in mine:
            n, done = j["total"], j["done"]
            state = {"queued": "waiting", "running": "importing", "done": "done", "failed": "failed",
                     "interrupted": "interrupted (the server stopped): import the CSV again; "
                                    "calls already imported are recognised"}[j["state"]]
            st.progress(min(1.0, done / n) if n else 1.0, text=f"Batch import {j['id']} · {done}/{n} row(s) · {state}")
            if j["state"] == "failed":
                st.error(_ui.plain(_ui.app_words(j["error"] or "")))
            if j["state"] == "done" and j["results"] is not None and st.button(
                    "Show results", key=f"import_job_show_{j['id']}"):
                st.session_state["import_done"] = [
                    {"line": r["line"], "file": r["file"],
                     "result": ("error: " + _ui.app_words(r["error"])) if r["error"] else
                     _imported(r["call"], r["duplicate"], r["duration_s"], r.get("channels")),
                     "call": r["call"]} for r in j["results"]]
                st.rerun(scope="app")


_import_jobs()

# ---------------------------------------------------------------- the last import's results
done = st.session_state.get("import_done")
if done:
    st.divider()
    ok = sum(1 for d in done if d["call"] is not None)
    (st.success if ok == len(done) else st.warning)(f"{ok} of {len(done)} file(s) imported.")
    st.dataframe(pd.DataFrame([{k: v for k, v in d.items() if k != "call"} for d in done]), hide_index=True,
                 key="import_results")
    new = [d["call"] for d in done if d["call"] is not None]
    cols = st.columns(min(len(new), 6) or 1)
    for i, call_id in enumerate(new[:12]):
        if cols[i % len(cols)].button(f"Open call #{call_id}", key=f"import_open_{call_id}",
                                      icon=":material/arrow_forward:"):
            st.session_state["calls_open"] = call_id
            st.switch_page("app_pages/manager_calls.py")
    if st.button("Clear these results", key="import_clear"):
        st.session_state.pop("import_done", None)
        st.rerun()
