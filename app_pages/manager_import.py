"""Manager: upload call recordings and import them with their parties, channel map and legal basis."""

import re
import shutil

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access, store
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

if submitted:
    if not files:
        st.error("Choose at least one audio file to import.")
    else:
        cmap = None if channels == "auto" else (custom.strip() if channels == "custom" else channels)
        # a locked scratch folder: another process's clean-up leaves it alone while this run lives
        scratch = store.Scratch(home, "upload")
        upload_dir = scratch.path
        try:
            paths = []
            for i, f in enumerate(files):
                safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f.name)[-120:] or "upload"
                dest = upload_dir / f"{i:03d}-{safe}"
                with open(dest, "wb") as out:
                    shutil.copyfileobj(f, out, 1 << 20)
                paths.append(dest)
            with _ui.errors(), st.spinner(f"Checking and importing {len(paths)} file(s)…"):
                results = access.import_calls(db, home, user, paths, caller=caller, agent=agent, channels=cmap,
                                              recorded_at=recorded_at.strip() or None, basis=basis,
                                              notice=notice.strip() or None,
                                              erased_party_reason=erased_reason.strip() or None)
                names = {str(p): f.name for p, f in zip(paths, files)}
                table = []
                for r in results:
                    name = names.get(r.path, r.path)
                    if r.error:
                        table.append({"file": name,
                                      "result": "error: " + _ui.app_words(r.error.replace(str(r.path), name))})
                    else:
                        state = "already imported as" if r.duplicate else "imported as"
                        table.append({"file": name, "result": f"{state} call #{r.id} ({r.duration_s:.1f} s, "
                                                              f"{r.channels} ch)"})
                ok = sum(1 for r in results if not r.error)
                (st.success if ok == len(results) else st.warning)(f"{ok} of {len(results)} file(s) imported.")
                st.dataframe(pd.DataFrame(table), hide_index=True, key="import_results")
        finally:
            scratch.close()
