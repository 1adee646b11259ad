"""Compliance: look a party up by identifier; status per purpose, history; record consent events."""

import pandas as pd
import streamlit as st

from app_pages import _ui
from clipkit import access
from clipkit.consent import CHANNELS, EVENTS, PURPOSES
from clipkit.errors import ClipkitError, NotFound

user, home, db = _ui.context()


def _reach_warning(out: dict) -> str:
    text = ("This identifier matches nobody heard in any call, so no clip was withdrawn. Check the number: "
            "the event will apply to calls imported later under the same identifier.")
    matches = out.get("possible_matches") or []
    if matches:
        text += " The same number written another way belongs to " + ", ".join(
            f"party {_ui.plain(m['label'])} ({m['recordings']} call(s), reference {m['ref']})" for m in matches
        ) + ". If it is the same person, join the two under *Join two parties* below."
    return text


st.title("Parties & consent")
st.caption("The identifier is canonicalised and turned into a keyed pseudonym on the fly; it is never stored "
           "or logged.")

identifier, look = _ui.input_and_button("Phone, customer or employee number", key="party_identifier",
                                        button="Look up", button_key="party_lookup", widths=[4, 1],
                                        icon=":material/search:")
if look:
    st.session_state["party_lookup_for"] = identifier

# looked up again on every run (the identifier is only in this session's widget state)
info, missing = None, None
if identifier and st.session_state.get("party_lookup_for") == identifier:
    try:
        info = access.find_party(db, home, user, identifier)
    except NotFound as e:
        missing = str(e)
        st.warning(missing)
    except ClipkitError as e:
        _ui.show_error(e)

if info:
    p = info["party"]
    st.subheader(f"Party {_ui.plain(p['label'])}")
    st.caption(f"reference {p['ref']} · known since {p['created_at'][:10]} · {len(info['recordings'])} call(s)")
    if not info["recordings"]:
        st.warning("Nobody with this identifier is heard in any call in the library: an objection recorded "
                   "here withdraws no clip today. Check the number; it applies to calls imported later.",
                   icon=":material/warning:")
    if info["status"]:
        st.markdown("**Status per purpose**")
        st.dataframe(pd.DataFrame([
            {"purpose": purpose, "consent": s["consent"], "since": (s.get("consent_at") or "")[:16],
             "objection": s["objection"], "objection since": (s.get("objection_at") or "")[:16],
             "pending change": (s.get("pending_at") or "")[:16]}
            for purpose, s in info["status"].items()
        ]), hide_index=True, key="party_status")
    if info["history"]:
        st.markdown("**History**")
        st.dataframe(pd.DataFrame([
            {"#": h["seq"], "purpose": h["purpose"], "event": h["event"].replace("_", " "),
             "effective": h["effective_at"][:16], "recorded": h["recorded_at"][:16], "channel": h["channel"] or "",
             "by": h["recorded_by"], "note": h["note"] or "",
             "evidence": (f"call #{h['evidence']['recording_id']} at {h['evidence']['seconds']:.2f} s"
                          if h.get("evidence") else "")}
            for h in info["history"]
        ]), hide_index=True, key="party_history")
    else:
        st.caption("No consent or objection events recorded.")
    if info["recordings"]:
        with st.expander("Calls"):
            st.dataframe(pd.DataFrame(info["recordings"]), hide_index=True, key="party_calls")

# ---------------------------------------------------------------- record an event
if info or missing:
    st.subheader("Record consent, withdrawal or objection")
    if not info:
        st.caption("This identifier is not known yet; recording an event creates the party.")
    with st.form("consent_form"):
        c1, c2, c3 = st.columns(3)
        purpose = c1.selectbox("Purpose", list(PURPOSES), key="consent_purpose")
        # no default: recording "consent given" by an unchanged form would be the worst silent mistake
        event = c2.selectbox("Event", list(EVENTS), format_func=lambda e: e.replace("_", " "), index=None,
                             placeholder="Choose what the person said", key="consent_event")
        channel = c3.selectbox("Received by", list(CHANNELS), format_func=lambda c: c.replace("_", " "),
                               key="consent_channel")
        c1, c2, c3 = st.columns(3)
        effective = c1.text_input("Takes effect (ISO 8601, blank = now)", key="consent_effective")
        ev_rec = c2.number_input("Evidence: call #", min_value=0, value=None, step=1, key="consent_ev_rec")
        ev_s = c3.number_input("Evidence: at second", min_value=0.0, value=None, step=0.01, format="%.2f",
                               key="consent_ev_s")
        note = st.text_area("Note", key="consent_note", height=70)
        go = st.form_submit_button("Record", key="consent_submit", type="primary")
    if go and event is None:
        st.error("Choose the event: consent given or withdrawn, objection made or withdrawn.")
    elif go:
        evidence = {"recording_id": int(ev_rec), "seconds": float(ev_s or 0.0)} if ev_rec else None
        with _ui.errors():
            out = access.record_consent(db, home, user, party_ref=info["party"]["ref"] if info else None,
                                        identifier=None if info else identifier, purpose=purpose, event=event,
                                        channel=channel, note=note, evidence=evidence, effective=effective)
            recall = out.get("recall") or {}
            msg = f"Recorded: {event.replace('_', ' ')} for {purpose}."
            if recall.get("clips"):
                msg += f" Withdrawn clips: {', '.join(map(str, recall['clips']))}."
            if recall.get("exports"):
                msg += f" Earlier exports to recall: {', '.join(recall['exports'])}."
            st.session_state["consent_message"] = msg
            st.session_state["consent_warning"] = _reach_warning(out) if out.get("new_party") else None
            st.rerun()
msg = st.session_state.pop("consent_message", None)
if msg:
    st.success(msg)
warn = st.session_state.pop("consent_warning", None)
if warn:
    st.warning(warn, icon=":material/warning:")

# ---------------------------------------------------------------- merge
if info:
    with st.expander("Join two parties", icon=":material/merge:"):
        st.caption("When two parties are one person (for example a number written in another country's "
                   "format, or parties created before identifiers were cleaned), join the other one into this "
                   "party: its calls, consent history and requests move here, and an objection in either "
                   "history applies to every call at once.")
        other = st.text_input("The other party's reference", key="merge_other",
                              placeholder="24 hex characters, as shown under the party's name")
        why = st.text_input("Why they are one person (kept as a note)", key="merge_reason")
        sure = st.checkbox("I checked that both are the same person", key="merge_confirm")
        if st.button("Join into this party", key="merge_go", disabled=not (sure and other.strip() and why.strip()),
                     icon=":material/merge:"):
            with _ui.errors():
                out = access.merge_parties(db, home, user, keep_ref=info["party"]["ref"], merge_ref=other,
                                           reason=why)
                msg = (f"Joined party {out['merged']} into this party: {len(out['recordings'])} call(s), "
                       f"{out['events']} consent event(s), {out['requests']} request(s) moved.")
                if (out.get("recall") or {}).get("clips"):
                    msg += f" Withdrawn clips: {', '.join(map(str, out['recall']['clips']))}."
                st.session_state["consent_message"] = msg
                st.rerun()
