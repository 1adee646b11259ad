"""The export policy: may this clip leave the building?

A pure function, :func:`decide`, from the facts about one clip to a
:class:`Decision`. It reads no database, file or clock: :mod:`clipkit.export`
gathers the facts (:func:`clipkit.clipfacts.clip_facts`) and passes ``now``. That
keeps every rule testable as a table, and lets the decision written to the log
be recomputed later from the facts it names.

Every rule is checked independently and *all* that apply are reported, so a
manager sees at once everything that stands between a clip and an export.

Rules (codes are stable; messages are plain language for staff):

``objection``
    A party heard in the clip has an active objection to ``training``.
``no_consent``
    The recording's legal basis is ``consent`` and a party heard has not
    given consent to ``training``, or has withdrawn it.
``not_anonymized``
    The clip has no current anonymized rendering (never rendered, or the
    rendering is stale after a re-cut or redaction change).
``weak_anonymization``
    The current rendering was made with a weak method (plain ``pitch``),
    unless the export explicitly allows weak anonymization; the decision then
    records ``weak_allowed``.
``not_approved``
    The clip is a draft or anonymized but not approved by a manager.
``withdrawn``
    The clip was withdrawn (recalled); it needs a new approval.
``retention_expired``
    The recording is past its retention date. A legal hold keeps a recording
    for the dispute, not for training, so it does not lift this rule; a hold
    alone is never a reason to refuse.
``erased``
    The recording (or a party heard in it) was erased, or that party's
    erasure is under way (e.g. waiting for a legal hold to end).

Both parties of a call count as heard in every clip of it: renderings contain
both channels, and on a stereo line each voice leaks into the other channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

# Bump when a rule changes; every logged decision carries it, so an auditor
# can tell which rules a past decision was made under.
POLICY_VERSION = "1"

PURPOSE = "training"

# Methods known to anonymize well enough on their own. Anything else
# (``pitch``, or a method this version does not know) counts as weak: a new
# method must be added here deliberately, not slip through.
STRONG_METHODS = frozenset({"strong"})

CLIP_STATUSES = ("draft", "anonymized", "approved", "withdrawn")
CONSENT_STATES = ("none", "given", "withdrawn")
OBJECTION_STATES = ("none", "active", "withdrawn")

MESSAGES = {
    "objection": "the {who} objected to use of their voice for training",
    "no_consent": "the recording relies on consent, and the {who} {has} not given (or {has} withdrawn) consent for training",
    "not_anonymized": "the clip has no up-to-date anonymized version (render it again after every re-cut or redaction change)",
    "weak_anonymization": "the clip was anonymized with the weak '{method}' method, which can largely be undone; render it again with the strong method",
    "not_approved": "the clip has not been approved by a manager",
    "withdrawn": "the clip was withdrawn and must be approved again before it can be exported",
    "retention_expired": "the recording is past its retention date ({until})",
    "erased": "the recording or a party in it was erased, or their erasure is under way",
}

# Order reasons are reported in: people first, then the clip, then the recording.
CODES = tuple(MESSAGES)


@dataclass(frozen=True)
class PartyStatus:
    """One party heard in a clip and their current status for ``training``.

    ``ref`` is the opaque party reference; ``role`` is ``caller`` or ``agent``.
    """

    ref: str
    role: str
    consent: str = "none"
    objection: str = "none"

    def __post_init__(self):
        if self.consent not in CONSENT_STATES:
            raise ValueError(f"consent {self.consent!r} is not one of {CONSENT_STATES}")
        if self.objection not in OBJECTION_STATES:
            raise ValueError(f"objection {self.objection!r} is not one of {OBJECTION_STATES}")


@dataclass(frozen=True)
class ClipFacts:
    """Everything :func:`decide` looks at for one clip.

    Parameters
    ----------
    clip_id : int
    status : str
        The clip's status: ``draft``, ``anonymized``, ``approved`` or ``withdrawn``.
    basis : str
        The recording's legal basis (``contract``, ``legitimate_interest``, ``consent``).
    parties : tuple of PartyStatus
        Every party heard in the clip (both parties of the call).
    rendering_method : str or None
        Method of the *current* rendering; None when there is none or it is stale.
    retention_until : str or None
        ISO 8601 keep-until time of the recording.
    on_hold : bool
        The recording is under legal hold (informational; see module docs).
    erased : bool
        The recording or one of its parties was erased.
    """

    clip_id: int
    status: str
    basis: str
    parties: tuple[PartyStatus, ...] = ()
    rendering_method: str | None = None
    retention_until: str | None = None
    on_hold: bool = False
    erased: bool = False

    def __post_init__(self):
        if self.status not in CLIP_STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {CLIP_STATUSES}")


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Decision:
    """The verdict for one clip: allowed, or refused with every reason that applies."""

    clip_id: int
    reasons: tuple[Reason, ...] = ()
    weak_allowed: bool = False
    policy_version: str = POLICY_VERSION

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def as_dict(self) -> dict:
        out = {
            "clip_id": self.clip_id,
            "decision": "allowed" if self.allowed else "refused",
            "reasons": [r.as_dict() for r in self.reasons],
            "policy_version": self.policy_version,
        }
        if self.weak_allowed:
            out["weak_allowed"] = True
        return out


def _parse(ts: str) -> datetime:
    t = datetime.fromisoformat(ts.strip().replace("Z", "+00:00"))
    # stored times are UTC; a naive one is taken as UTC too
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _who(parties: list[PartyStatus]) -> str:
    # caller first, as people say it: "the caller and the agent"
    roles = sorted({p.role for p in parties}, key=lambda r: (r != "caller", r))
    return " and the ".join(roles) if roles else "party"


def _has(parties: list[PartyStatus]) -> str:
    return "have" if len({p.role for p in parties}) > 1 else "has"


def decide(facts: ClipFacts, *, now: str, allow_weak: bool = False) -> Decision:
    """Decide whether one clip may be exported for training.

    Parameters
    ----------
    facts : ClipFacts
        What is known about the clip (gather with :func:`clipkit.clipfacts.clip_facts`).
    now : str
        ISO 8601 time of the decision (for retention).
    allow_weak : bool
        Accept a rendering made with a weak method; the decision then says so.

    Returns
    -------
    Decision
        ``allowed`` when no rule applies, otherwise every reason that does,
        in :data:`CODES` order.
    """
    at = _parse(now)
    found: dict[str, str] = {}

    objecting = [p for p in facts.parties if p.objection == "active"]
    if objecting:
        found["objection"] = MESSAGES["objection"].format(who=_who(objecting))
    if facts.basis == "consent":
        missing = [p for p in facts.parties if p.consent != "given"]
        if missing:
            found["no_consent"] = MESSAGES["no_consent"].format(who=_who(missing), has=_has(missing))

    weak_allowed = False
    method = facts.rendering_method
    if method is None:
        found["not_anonymized"] = MESSAGES["not_anonymized"]
    elif method not in STRONG_METHODS:
        if allow_weak:
            weak_allowed = True
        else:
            found["weak_anonymization"] = MESSAGES["weak_anonymization"].format(method=method)

    if facts.status == "withdrawn":
        found["withdrawn"] = MESSAGES["withdrawn"]
    elif facts.status != "approved":
        found["not_approved"] = MESSAGES["not_approved"]

    if facts.retention_until and _parse(facts.retention_until) <= at:
        found["retention_expired"] = MESSAGES["retention_expired"].format(until=facts.retention_until[:10])
    if facts.erased:
        found["erased"] = MESSAGES["erased"]

    reasons = tuple(Reason(code, found[code]) for code in CODES if code in found)
    return Decision(clip_id=facts.clip_id, reasons=reasons, weak_allowed=weak_allowed and not reasons)


def approval_blockers(facts: ClipFacts, *, now: str) -> list[Reason]:
    """Reasons a *withdrawn* clip may not be approved again.

    A clip is recalled when someone objects or withdraws consent; lifting the
    objection does not re-publish it. A manager may approve it again only when
    no person heard still objects (or, on a consent basis, lacks consent) and
    the recording is neither erased nor past retention. Anonymization and
    approval state are not checked here: approval is what is being asked.
    """
    decision = decide(facts, now=now, allow_weak=True)
    keep = {"objection", "no_consent", "retention_expired", "erased"}
    return [r for r in decision.reasons if r.code in keep]
