"""The export policy as tables: every rule allowed and refused, and a property over all combinations."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipkit import policy
from clipkit.policy import ClipFacts, PartyStatus, decide

NOW = "2026-06-01T12:00:00+00:00"
FUTURE = "2027-01-01T00:00:00+00:00"
PAST = "2026-05-31T00:00:00+00:00"


def party(role="caller", *, consent="none", objection="none", ref=None) -> PartyStatus:
    return PartyStatus(ref=ref or f"ref-{role}", role=role, consent=consent, objection=objection)


def facts(**changes) -> ClipFacts:
    """A clip every rule allows; each test changes one thing."""
    base = dict(clip_id=7, status="approved", basis="legitimate_interest",
                parties=(party("caller"), party("agent")), rendering_method="strong",
                retention_until=FUTURE, on_hold=False, erased=False)
    base.update(changes)
    return ClipFacts(**base)


def codes(f: ClipFacts, **kw) -> list[str]:
    return decide(f, now=NOW, **kw).codes


def test_the_baseline_clip_is_allowed():
    d = decide(facts(), now=NOW)
    assert d.allowed and d.reasons == () and not d.weak_allowed
    assert d.as_dict() == {"clip_id": 7, "decision": "allowed", "reasons": [], "policy_version": policy.POLICY_VERSION}


@pytest.mark.parametrize(
    "caller, agent, expected",
    [
        (party("caller"), party("agent"), []),
        (party("caller", objection="withdrawn"), party("agent"), []),  # lifted objection no longer counts
        (party("caller", objection="active"), party("agent"), ["objection"]),
        # the agent is heard too (other channel leaks, renderings carry both)
        (party("caller"), party("agent", objection="active"), ["objection"]),
        (party("caller", objection="active"), party("agent", objection="active"), ["objection"]),
        # consent is irrelevant to an objection
        (party("caller", consent="given", objection="active"), party("agent"), ["objection"]),
    ],
)
def test_objection_rule(caller, agent, expected):
    assert codes(facts(parties=(caller, agent))) == expected


def test_objection_message_names_the_role_not_the_ref():
    (reason,) = decide(facts(parties=(party("caller"), party("agent", objection="active", ref="secret-ref"))),
                       now=NOW).reasons
    assert "agent" in reason.message and "secret-ref" not in reason.message and "caller" not in reason.message


@pytest.mark.parametrize(
    "caller, agent, message",
    [
        ("none", "given", "the recording relies on consent, and the caller has not given (or has withdrawn) consent for training"),
        ("given", "withdrawn", "the recording relies on consent, and the agent has not given (or has withdrawn) consent for training"),
        ("none", "none", "the recording relies on consent, and the caller and the agent have not given (or have withdrawn) "
                         "consent for training"),
    ],
)
def test_no_consent_message_is_plain_english(caller, agent, message):
    # regression: two parties read "the agent and caller has not given"
    (reason,) = decide(facts(basis="consent", parties=(party("agent", consent=agent), party("caller", consent=caller))),
                       now=NOW).reasons
    assert reason.message == message


def test_objection_message_names_both_roles_caller_first():
    (reason,) = decide(facts(parties=(party("agent", objection="active"), party("caller", objection="active"))),
                       now=NOW).reasons
    assert reason.message == "the caller and the agent objected to use of their voice for training"


@pytest.mark.parametrize(
    "basis, caller_consent, agent_consent, expected",
    [
        ("consent", "given", "given", []),
        ("consent", "none", "given", ["no_consent"]),
        ("consent", "withdrawn", "given", ["no_consent"]),
        ("consent", "given", "none", ["no_consent"]),
        ("consent", "given", "withdrawn", ["no_consent"]),
        ("consent", "none", "none", ["no_consent"]),
        # other bases do not need consent at all
        ("legitimate_interest", "none", "none", []),
        ("legitimate_interest", "withdrawn", "withdrawn", []),
        ("contract", "withdrawn", "none", []),
    ],
)
def test_no_consent_rule(basis, caller_consent, agent_consent, expected):
    f = facts(basis=basis, parties=(party("caller", consent=caller_consent), party("agent", consent=agent_consent)))
    assert codes(f) == expected


@pytest.mark.parametrize(
    "method, allow_weak, expected, weak_allowed",
    [
        ("strong", False, [], False),
        ("strong", True, [], False),
        (None, False, ["not_anonymized"], False),
        (None, True, ["not_anonymized"], False),  # --allow-weak never stands in for no rendering
        ("pitch", False, ["weak_anonymization"], False),
        ("pitch", True, [], True),
        ("future-method", False, ["weak_anonymization"], False),  # unknown methods are weak until listed
    ],
)
def test_anonymization_rules(method, allow_weak, expected, weak_allowed):
    d = decide(facts(rendering_method=method), now=NOW, allow_weak=allow_weak)
    assert d.codes == expected
    assert d.weak_allowed is weak_allowed
    assert d.as_dict().get("weak_allowed", False) is weak_allowed


@pytest.mark.parametrize(
    "status, expected",
    [("approved", []), ("draft", ["not_approved"]), ("anonymized", ["not_approved"]), ("withdrawn", ["withdrawn"])],
)
def test_approval_rules(status, expected):
    assert codes(facts(status=status)) == expected


@pytest.mark.parametrize(
    "retention_until, on_hold, erased, expected",
    [
        (FUTURE, False, False, []),
        (FUTURE, True, False, []),  # a hold alone never refuses
        (PAST, False, False, ["retention_expired"]),
        (PAST, True, False, ["retention_expired"]),  # a hold keeps it for the dispute, not for training
        (NOW, False, False, ["retention_expired"]),  # the keep-until moment itself is past
        # offsets compare as times, not text: 13:30+02:00 is 11:30Z, before NOW (12:00Z)
        ("2026-06-01T13:30:00+02:00", False, False, ["retention_expired"]),
        ("2026-06-01T12:30:00+01:00", False, False, ["retention_expired"]),
        ("2026-06-01T13:30:00+01:00", False, False, []),  # 12:30Z
        (FUTURE, False, True, ["erased"]),
        (PAST, False, True, ["retention_expired", "erased"]),
        (None, False, False, []),
    ],
)
def test_retention_rules(retention_until, on_hold, erased, expected):
    assert codes(facts(retention_until=retention_until, on_hold=on_hold, erased=erased)) == expected


def test_all_reasons_are_reported_in_a_stable_order():
    f = facts(status="draft", basis="consent", rendering_method=None, retention_until=PAST, erased=True,
              parties=(party("caller", objection="active"), party("agent")))
    d = decide(f, now=NOW)
    assert d.codes == ["objection", "no_consent", "not_anonymized", "not_approved", "retention_expired", "erased"]
    assert all(r.message and r.message[0].islower() for r in d.reasons)
    assert d.as_dict()["decision"] == "refused"


@pytest.mark.parametrize("make", [lambda: facts(status="published"), lambda: party(consent="maybe"),
                                  lambda: party(objection="yes")])
def test_facts_reject_unknown_states(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "change, blockers",
    [
        (dict(), []),
        (dict(status="withdrawn", rendering_method=None), []),  # rendering/approval is what approve is for
        (dict(status="withdrawn", parties=(party("caller", objection="active"), party("agent"))), ["objection"]),
        (dict(status="withdrawn", parties=(party("caller", objection="withdrawn"), party("agent"))), []),
        (dict(basis="consent"), ["no_consent"]),
        (dict(retention_until=PAST, erased=True), ["retention_expired", "erased"]),
    ],
)
def test_approval_blockers(change, blockers):
    assert [r.code for r in policy.approval_blockers(facts(**change), now=NOW)] == blockers


# ---------------------------------------------------------------- property


def violated(f: ClipFacts, allow_weak: bool) -> set[str]:
    """Each rule restated independently of the implementation."""
    out = set()
    if any(p.objection == "active" for p in f.parties):
        out.add("objection")
    if f.basis == "consent" and any(p.consent != "given" for p in f.parties):
        out.add("no_consent")
    if f.rendering_method is None:
        out.add("not_anonymized")
    if f.rendering_method == "pitch" and not allow_weak:
        out.add("weak_anonymization")
    if f.status in ("draft", "anonymized"):
        out.add("not_approved")
    if f.status == "withdrawn":
        out.add("withdrawn")
    if f.retention_until == PAST:
        out.add("retention_expired")
    if f.erased:
        out.add("erased")
    return out


parties_st = st.tuples(
    st.builds(PartyStatus, ref=st.just("c"), role=st.just("caller"),
              consent=st.sampled_from(policy.CONSENT_STATES), objection=st.sampled_from(policy.OBJECTION_STATES)),
    st.builds(PartyStatus, ref=st.just("a"), role=st.just("agent"),
              consent=st.sampled_from(policy.CONSENT_STATES), objection=st.sampled_from(policy.OBJECTION_STATES)),
)
facts_st = st.builds(
    ClipFacts, clip_id=st.integers(1, 10_000), status=st.sampled_from(policy.CLIP_STATUSES),
    basis=st.sampled_from(["contract", "legitimate_interest", "consent"]), parties=parties_st,
    rendering_method=st.sampled_from([None, "strong", "pitch"]), retention_until=st.sampled_from([PAST, FUTURE]),
    on_hold=st.booleans(), erased=st.booleans(),
)


@given(f=facts_st, allow_weak=st.booleans())
def test_refusal_reasons_are_exactly_the_violated_rules(f, allow_weak):
    d = decide(f, now=NOW, allow_weak=allow_weak)
    assert set(d.codes) == violated(f, allow_weak)
    assert len(d.codes) == len(set(d.codes))
    assert d.allowed == (not violated(f, allow_weak))
    assert d.weak_allowed == (d.allowed and f.rendering_method == "pitch")
    assert d.codes == [c for c in policy.CODES if c in d.codes]


@given(f=facts_st)
def test_allow_weak_only_ever_removes_the_weak_reason(f):
    strict, lenient = decide(f, now=NOW), decide(f, now=NOW, allow_weak=True)
    assert set(strict.codes) - set(lenient.codes) <= {"weak_anonymization"}
    assert set(lenient.codes) <= set(strict.codes)


@given(f=facts_st)
def test_decision_is_deterministic_and_ignores_on_hold(f):
    assert decide(f, now=NOW) == decide(f, now=NOW)
    assert decide(f, now=NOW).codes == decide(dataclasses.replace(f, on_hold=not f.on_hold), now=NOW).codes


def test_policy_module_is_pure():
    """Imports nothing that touches disk, database or clock."""
    tree = ast.parse(Path(policy.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert imported <= {"__future__", "dataclasses", "datetime"}, imported
    assert "now(" not in Path(policy.__file__).read_text()
