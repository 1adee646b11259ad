"""Log entries as sentences people read: "Export refused: clip 4 — a party heard objected. By demo-manager."

Pure functions over an entry as :func:`clipkit.auditlog.entries` returns it
(``seq``, ``at``, ``kind``, ``actor``, ``data``, ``decision``); no database.
Party references are opaque; the caller passes ``label`` to show them as the
register does ("phone ••78"), and otherwise they are shown as "a party".

Every kind clipkit writes has its own sentence; an unknown kind (a newer
version's log read by an older one) still gets one, built from its name and
its plain fields, so nothing in the log is ever hidden from the reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# short forms of the export policy's reason codes (clipkit.policy.MESSAGES has the full sentences)
REASON_WORDS = {
    "objection": "a party heard objected",
    "no_consent": "consent is missing or withdrawn",
    "not_anonymized": "no up-to-date anonymized version",
    "weak_anonymization": "weakly anonymized",
    "not_approved": "not approved",
    "withdrawn": "the clip was withdrawn",
    "retention_expired": "the call is past its retention date",
    "erased": "a party or the call was erased",
    "legal_hold": "on legal hold",
}

Label = Callable[[str], str]


def _words(code) -> str:
    return REASON_WORDS.get(str(code), str(code).replace("_", " "))


def _ids(values: Iterable, prefix: str = "") -> str:
    values = list(values or [])
    if len(values) > 8:
        return ", ".join(f"{prefix}{v}" for v in values[:8]) + f" and {len(values) - 8} more"
    return ", ".join(f"{prefix}{v}" for v in values)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _export_attempt(d: dict, label: Label) -> str:
    decisions = d.get("decisions") or []
    allowed = [x["clip"] for x in decisions if x.get("decision") == "allowed"]
    refused = [x for x in decisions if x.get("decision") != "allowed"]
    parts = []
    if refused:
        why = "; ".join(f"clip {x['clip']} — {', '.join(_words(r) for r in x.get('reasons') or [])}"
                        for x in refused[:5])
        parts.append(f"refused {why}" + (f" and {len(refused) - 5} more" if len(refused) > 5 else ""))
    if allowed:
        parts.append(f"allowed {_plural(len(allowed), 'clip')} ({_ids(allowed)})")
    head = {"allowed": "Export allowed", "refused": "Export refused", "partial": "Export partly refused"}.get(
        d.get("decision"), "Export attempt")
    extra = " (all or nothing)" if d.get("all_or_nothing") and refused else ""
    return f"{head}{extra}: " + "; ".join(parts) if parts else head


def _consent(kind: str, d: dict, label: Label) -> str:
    event = kind.split(".", 1)[1].replace("_", " ")
    return f"{event[:1].upper() + event[1:]} for {d.get('purpose', 'a purpose')} use by {label(d.get('party'))}"


SENTENCES: dict[str, Callable[[dict, Label], str]] = {
    "recording.import": lambda d, L: (
        f"Imported call{'s' if len(d.get('recordings') or []) != 1 else ''} {_ids(d.get('recordings'), '#')}"
        f" (caller {L(d.get('caller'))}, agent {L(d.get('agent'))})"
        + (" — overriding an earlier erasure, with a lawful reason" if d.get("override") else "")),
    "clip.create": lambda d, L: f"Cut clip {d.get('clip')} from call #{d.get('recording')}",
    "clip.recut": lambda d, L: f"Re-cut clip {d.get('clip')} to {d.get('start_s')}–{d.get('end_s')} s",
    "clip.edit": lambda d, L: f"Edited clip {d.get('clip')} ({', '.join(d.get('fields') or [])})",
    "clip.delete": lambda d, L: f"Deleted clip {d.get('clip')}",
    "clip.redactions": lambda d, L: f"Set {_plural(int(d.get('spans') or 0), 'redaction')} on clip {d.get('clip')}",
    "settings.caller_voice": lambda d, L: f"Caller voices changed from {d.get('from')} to {d.get('to')}",
    "clip.render": lambda d, L: f"Anonymized clip {d.get('clip')} ({d.get('method_version') or d.get('method')})",
    "clip.approve": lambda d, L: (f"Approval of clip {d.get('clip')} refused: "
                                  + ", ".join(_words(r) for r in d.get("reasons") or [])
                                  if d.get("decision") == "refused" else f"Approved clip {d.get('clip')}"),
    "clip.withdraw": lambda d, L: (
        f"Withdrew clip{'s' if len(d.get('clips') or []) != 1 else ''} {_ids(d.get('clips'))}"
        + (f" ({_words(d['reason'])})" if d.get("reason") else "")
        + (f"; {_plural(len(d['exports']), 'earlier export')} to recall" if d.get("exports") else "")),
    "export.attempt": _export_attempt,
    "export.complete": lambda d, L: f"Export {d.get('export_id')} written ({_plural(len(d.get('files') or []), 'file')})",
    "export.failed": lambda d, L: f"Export {d.get('export_id')} failed ({d.get('error')})",
    "export.recall_done": lambda d, L: f"Recall of export {d.get('export_id')} done: the recipient confirmed deletion",
    "play": lambda d, L: (f"Play of clip {d.get('clip')} refused: " + ", ".join(_words(r) for r in d.get("reasons") or [])
                          if d.get("decision") == "refused" else f"Played anonymized clip {d.get('clip')}"),
    "play.raw": lambda d, L: (f"Listened to raw audio of call #{d.get('recording')}, "
                              f"{d.get('start_s')}–{d.get('end_s')} s, with a stated reason"),
    "party.merge": lambda d, L: f"Joined two parties into {L(d.get('kept') or d.get('party'))}",
    "party.label": lambda d, L: f"Named agent {L(d.get('party'))}",
    "consent.rebuild": lambda d, L: "Recomputed the consent register",
    "request.open": lambda d, L: (f"Registered {d.get('kind')} request {d.get('request')} of {L(d.get('party'))}, "
                                  f"due {d.get('due')}"),
    "request.extend": lambda d, L: (f"Refused to extend request {d.get('request')}" if d.get("decision") == "refused"
                                    else f"Extended request {d.get('request')} to {d.get('due')}"),
    "request.close": lambda d, L: f"Closed {d.get('kind') or ''} request {d.get('request')}".replace("  ", " "),
    "request.access": lambda d, L: (f"Wrote an access bundle for {L(d.get('party'))}: "
                                    f"{_plural(int(d.get('recordings') or 0), 'call')}, "
                                    f"{_plural(int(d.get('clips') or 0), 'clip')}"),
    "erasure": lambda d, L: (
        (f"Erasure partly refused (legal hold on call {_ids(d.get('held'), '#')}): " if d.get("held") else "Erased: ")
        + f"{_plural(int(d.get('recordings') or 0), 'call')}, {_plural(int(d.get('clips') or 0), 'clip')}, "
        + f"{_plural(int(d.get('renderings') or 0), 'rendering')}"
        + (f"; {_plural(int(d['exports_to_recall']), 'export')} to recall" if d.get("exports_to_recall") else "")),
    "erasure.recordings": lambda d, L: f"Deleted call{'s' if len(d.get('recordings') or []) != 1 else ''} "
                                       f"{_ids(d.get('recordings'), '#')} for an erasure",
    "retention.purge": lambda d, L: (f"Purged {_plural(len(d.get('recordings') or []), 'call')} past retention"
                                     + (f" ({_ids(d.get('recordings'), '#')})" if d.get("recordings") else "")),
    "retention.reviews": lambda d, L: f"Deleted {_plural(len(d.get('reviews') or []), 'coaching review')} past retention",
    "hold.set": lambda d, L: f"Put call #{d.get('recording')} on legal hold",
    "hold.release": lambda d, L: f"Released the legal hold on call #{d.get('recording')}",
    "review.create": lambda d, L: f"Created coaching review {d.get('review')} of call #{d.get('recording')}",
    "review.sample": lambda d, L: "Drew coaching reviews for a month",
    "review.comment": lambda d, L: f"Commented on coaching review {d.get('review')}",
    "review.score": lambda d, L: f"Scored coaching review {d.get('review')}",
    "review.share": lambda d, L: (f"Sharing coaching review {d.get('review')} refused: "
                                  + ", ".join(_words(r) for r in d.get("reasons") or [])
                                  if d.get("decision") == "refused" else f"Shared coaching review {d.get('review')}"),
    "review.play": lambda d, L: (f"Play of coaching review {d.get('review')} refused"
                                 if d.get("decision") == "refused" else f"Played coaching review {d.get('review')}"),
    "review.ack": lambda d, L: f"Agent acknowledged coaching review {d.get('review')}",
    "review.close": lambda d, L: f"Closed coaching review {d.get('review')}",
    "user.add": lambda d, L: f"Added account {d.get('name')} ({d.get('role')}"
                             + (", administrator)" if d.get("admin") else ")"),
    "user.passwd": lambda d, L: (f"Wrong current password when {d.get('name')} tried to change it"
                                 if d.get("outcome") == "wrong_password" else f"New password for {d.get('name')}"),
    "user.disable": lambda d, L: f"Disabled account {d.get('name')}",
    "user.enable": lambda d, L: f"Enabled account {d.get('name')}",
    "user.unlock": lambda d, L: f"Unlocked account {d.get('name')}",
    "user.admin": lambda d, L: (f"Made {d.get('name')} an account administrator" if d.get("admin")
                                else f"{d.get('name')} is no longer an account administrator"),
    "user.login": lambda d, L: {"ok": "Logged in", "locked": "Login refused: locked out after failed logins"}.get(
        d.get("outcome"), "Login failed" if d.get("outcome") else "Logged in"),
    "user.logout": lambda d, L: "Logged out",
}


def _fallback(kind: str, d: dict) -> str:
    plain = [f"{k.replace('_', ' ')} {v}" for k, v in d.items()
             if isinstance(v, (str, int, float, bool)) and k != "decision"]
    return kind.replace(".", ": ").replace("_", " ").capitalize() + (f" ({', '.join(plain[:6])})" if plain else "")


def sentence(entry: dict, *, label: Label | None = None) -> str:
    """One entry as a sentence, with who did it: ``"Approved clip 3. By manager."``.

    Parameters
    ----------
    entry : dict
        A log entry with ``kind``, ``actor`` and ``data`` (a dict).
    label : callable, optional
        Party ref → how the register shows that party; default "a party".
    """
    label = label or (lambda ref: "a party" if ref else "nobody")
    kind, data = str(entry.get("kind", "")), entry.get("data") or {}
    if not isinstance(data, dict):
        data = {}
    try:
        if kind.startswith("consent.") and kind != "consent.rebuild":
            text = _consent(kind, data, label)
        elif kind in SENTENCES:
            text = SENTENCES[kind](data, label)
        else:
            text = _fallback(kind, data)
    except (KeyError, TypeError, ValueError, AttributeError):  # an entry of an unexpected shape is still shown
        text = _fallback(kind, data)
    return f"{text}. By {entry.get('actor') or 'unknown'}."


def party_refs(entry: dict) -> list[str]:
    """The party refs an entry names (for looking up their labels in one query)."""
    data = entry.get("data") or {}
    if not isinstance(data, dict):
        return []
    refs = [data.get(k) for k in ("party", "caller", "agent", "kept")]
    return [r for r in refs if isinstance(r, str) and r]


def with_sentences(rows: list[dict], labels: dict[str, str]) -> list[dict]:
    """The rows, each with ``what``: its sentence, parties shown by ``labels`` (ref → label)."""
    def label(ref):
        return labels.get(ref, "an erased party") if ref else "nobody"

    for r in rows:
        r["what"] = sentence(r, label=label)
    return rows


def refs_in(rows: Iterable[dict]) -> list[str]:
    """Every party ref the rows name, once."""
    return list(dict.fromkeys(ref for r in rows for ref in party_refs(r)))
