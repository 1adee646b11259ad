"""The log as sentences: every kind clipkit writes has one, and no entry of any shape breaks the screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipkit import logtext

ROOT = Path(__file__).resolve().parent.parent


def _kinds_written() -> set[str]:
    found = set()
    for path in (ROOT / "clipkit").glob("*.py"):
        text = path.read_text()
        found |= set(re.findall(r'kind="([a-z_]+\.[a-z_.]+|[a-z_]+)"(?=[,)\s]| if)', text))
        found |= set(re.findall(r'kind="[a-z._]+" if [^\n]* else "([a-z]+\.[a-z_]+)"', text))
    return {k for k in found if "." in k or k in ("erasure", "play")}


def test_every_kind_clipkit_writes_has_its_own_sentence():
    kinds = _kinds_written()
    assert {"export.attempt", "play.raw", "user.login", "erasure", "hold.release", "user.enable"} <= kinds
    # the notes' own kinds (kind= on notes.add) are not log kinds
    missing = {k for k in kinds if k not in logtext.SENTENCES and not k.startswith("consent.")}
    missing -= {"import.override", "export.recipient", "clip.withdraw_note"}
    assert not missing, missing


@pytest.mark.parametrize("entry, expected", [
    ({"kind": "export.attempt", "actor": "demo-manager", "data": {
        "decision": "refused", "decisions": [{"clip": 4, "decision": "refused", "reasons": ["objection", "withdrawn"]}]}},
     "Export refused: refused clip 4 — a party heard objected, the clip was withdrawn. By demo-manager."),
    ({"kind": "consent.objection_made", "actor": "c", "data": {"party": "abc", "purpose": "training"}},
     "Objection made for training use by phone ••78. By c."),
    ({"kind": "clip.approve", "actor": "m", "data": {"clip": 3, "decision": "refused", "reasons": ["four_eyes"]}},
     "Approval of clip 3 refused: four eyes. By m."),
    ({"kind": "play.raw", "actor": "m", "data": {"recording": 2, "start_s": 1.5, "end_s": 9.0, "reason_note": 4}},
     "Listened to raw audio of call #2, 1.5–9.0 s, with a stated reason. By m."),
    ({"kind": "some.future_kind", "actor": "x", "data": {"clip": 9, "nested": {"a": 1}}},
     "Some: future kind (clip 9). By x."),
])
def test_sentences_read_as_people_say_them(entry, expected):
    assert logtext.sentence(entry, label=lambda ref: "phone ••78") == expected


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)


@given(kind=st.sampled_from(sorted(logtext.SENTENCES) + ["consent.objection_made", "x"]),
       data=st.dictionaries(st.sampled_from(["clip", "clips", "decision", "decisions", "reasons", "party", "recording",
                                             "recordings", "held", "name", "review", "export_id", "files", "spans"]),
                            json_values, max_size=6),
       actor=st.text())
def test_no_entry_shape_breaks_the_sentence(kind, data, actor):
    text = logtext.sentence({"kind": kind, "actor": actor, "data": data})
    assert isinstance(text, str) and text.endswith(".")
