"""May this coaching review be shared, or played to this person? A pure function, like :mod:`clipkit.policy`.

:func:`decide` maps the facts about one review and one viewer to a
:class:`~clipkit.policy.Decision`-like verdict with *every* reason that
applies; :mod:`clipkit.coaching` gathers the facts, logs the decision, and
only then refuses. No database, file or clock here.

Reviews serve the **quality** purpose (a supervisor going through an agent's
calls with them), not training: a caller who objected to training may still
be heard in a review, unless they objected to quality use too.

Rules (stable codes):

``objection``       the caller objected to use of their voice for quality purposes
``erased``          the call's audio was erased or purged (the review stays, unplayable)
``retention``       the call is past its keep-until date
``agent_disabled``  the agent's account is disabled (a review is for a working agent)
``not_shared``      an agent asks for a review not shared with them yet (drafts are the reviewer's)
``not_theirs``      an agent asks for another agent's review
``not_allowed``     the viewer's role has no part in reviews (trainers, compliance for audio)
``empty``           sharing a review with neither a comment nor a score: there is nothing to go through

Sharing an unscored review *with* comments is allowed: a supervisor may
want to talk the call through before filling the scorecard; the scorecard
can be filled later and the agent sees it when it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

ACTIONS = ("share", "play")
STATUSES = ("draft", "shared", "acknowledged", "closed")

MESSAGES = {
    # who asks first, then the people in the call, then the audio
    "not_allowed": "a {role} has no part in coaching reviews",
    "not_theirs": "the review is about another agent's call",
    "not_shared": "the review has not been shared with the agent yet",
    "objection": "the caller objected to use of their voice for quality reviews",
    "erased": "the call's audio was erased or purged",
    "retention": "the call is past its keep-until date ({until})",
    "agent_disabled": "the agent's account is disabled",
    "empty": "the review has no comment and no score yet: there is nothing to go through",
}
CODES = tuple(MESSAGES)


@dataclass(frozen=True)
class ReviewFacts:
    """What :func:`decide` looks at for one review and one viewer.

    Parameters
    ----------
    status : str
        ``draft``, ``shared``, ``acknowledged`` or ``closed``.
    caller_objects_quality : bool
        The caller has an active objection to ``quality`` use.
    audio_gone : bool
        The recording was erased or purged.
    retention_until : str or None
        The recording's keep-until time (ISO 8601).
    agent_disabled : bool
        The agent's account is disabled (False when the agent has none).
    has_content : bool
        The review has at least one comment or one score.
    viewer_role : str
        ``manager``, ``agent``, ``trainer`` or ``compliance``.
    viewer_is_agent_of_review : bool
        The viewer is the agent the review is about.
    """

    status: str
    caller_objects_quality: bool = False
    audio_gone: bool = False
    retention_until: str | None = None
    agent_disabled: bool = False
    has_content: bool = True
    viewer_role: str = "manager"
    viewer_is_agent_of_review: bool = False

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")


@dataclass(frozen=True)
class Verdict:
    action: str
    reasons: tuple[tuple[str, str], ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return [c for c, _ in self.reasons]

    def as_dicts(self) -> list[dict]:
        return [{"code": c, "message": m} for c, m in self.reasons]


def _parse(ts: str) -> datetime:
    t = datetime.fromisoformat(ts.strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def decide(facts: ReviewFacts, *, action: str, now: str) -> Verdict:
    """Whether ``facts.viewer_role`` may ``share`` or ``play`` the review now; every reason that stands in the way.

    ``share`` is a manager's action; ``play`` is asked by a manager (any
    review) or an agent (their own, once shared).
    """
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {ACTIONS}")
    found: dict[str, str] = {}
    role = facts.viewer_role
    if action == "share" and role != "manager":
        found["not_allowed"] = MESSAGES["not_allowed"].format(role=role)
    if action == "play" and role not in ("manager", "agent"):
        found["not_allowed"] = MESSAGES["not_allowed"].format(role=role)
    if role == "agent":
        if not facts.viewer_is_agent_of_review:
            found["not_theirs"] = MESSAGES["not_theirs"]
        elif facts.status == "draft":
            found["not_shared"] = MESSAGES["not_shared"]
    if facts.caller_objects_quality:
        found["objection"] = MESSAGES["objection"]
    if facts.audio_gone:
        found["erased"] = MESSAGES["erased"]
    if facts.retention_until and _parse(facts.retention_until) <= _parse(now):
        found["retention"] = MESSAGES["retention"].format(until=facts.retention_until[:10])
    if facts.agent_disabled:
        found["agent_disabled"] = MESSAGES["agent_disabled"]
    if action == "share" and not facts.has_content:
        found["empty"] = MESSAGES["empty"]
    return Verdict(action=action, reasons=tuple((c, found[c]) for c in CODES if c in found))
