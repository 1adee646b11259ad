"""What has been measured about the running anonymizer, as the product states it.

``clipkit/anonymize/measured.json`` ships with the package and is written by
the privacy benchmark (``bench/record_measured.py``): one entry per
anonymizer *source hash* (sha256 over ``clipkit/anonymize/*.py``, the
algorithm ``bench/privacy.py`` uses), with each method's version and the
figures measured on that exact source. :func:`claim` looks up the running
source's hash; when there is no entry, or the entry measured another version
of the method, the claim says **not measured for this version** and carries no
number — a stale figure is never shown.

This module is outside ``clipkit/anonymize/`` on purpose: editing it does
not change the anonymizer's hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent / "anonymize"
MEASURED_FILE = PACKAGE / "measured.json"
NOT_MEASURED = "not measured for this version"
PSEUDONYMISED = ("Anonymized clips therefore remain pseudonymised personal data, not anonymous data: exports stay "
                 "under the GDPR and objections apply.")


def source_files(package: Path = PACKAGE) -> list[Path]:
    """The anonymizer's source files, in the order they are hashed."""
    return sorted(package.rglob("*.py"))


def source_hash(package: Path = PACKAGE) -> str:
    """The first 12 hex digits of the sha256 over the anonymizer's sources (paths and bytes)."""
    h = hashlib.sha256()
    root = package.parent.parent  # the folder holding clipkit/
    for f in source_files(package):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data.get("entries", {}) if isinstance(data, dict) else {}


def entries(path: Path | None = None) -> dict:
    """Every recorded entry, by source hash ({} when the file is missing or unreadable)."""
    path = MEASURED_FILE if path is None else path
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _load(path, mtime)


def _pct(x) -> str:
    return f"{100 * float(x):.0f} %"


def claim(method: str, version: str | None, *, path: Path | None = None, running: str | None = None) -> dict:
    """What may be said about audio rendered with ``method`` at ``version`` by this installation.

    Returns
    -------
    dict
        ``{"method", "version", "source_sha256", "measured": bool, "figures": dict | None,
        "statement": str, "summary": str}``. ``figures`` holds the attackers' equal error
        rates (0–1; 0.5 = chance), ρF0 and WER as recorded, or None. ``statement``
        gives every figure; ``summary`` says what they mean in two sentences.
    """
    running = running or source_hash()
    entry = entries(path).get(running) or {}
    m = (entry.get("methods") or {}).get(method) or {}
    out = {"method": method, "version": version, "source_sha256": running, "measured": False, "figures": None,
           "statement": f"{version or method}: {NOT_MEASURED}",
           "summary": f"The anonymizer this installation runs ({version or method}) has not been measured, so no "
                      "figure is stated for it. " + PSEUDONYMISED.replace(" therefore", "")}
    if not m or m.get("version") != version:
        return out
    figures = {k: m[k] for k in ("eer", "rho_f0", "wer", "trained_eer", "trained_attacker", "eer_over_key_sets",
                                 "trained_eer_ci95", "trained_linkability", "trained_tpr_at_1pct_fpr",
                                 "trained_people", "trained_real", "linking_eer", "quality") if k in m}
    figures.update({k: entry[k] for k in ("measured_at", "voices", "attacker") if k in entry})
    eer = m.get("eer") or {}
    parts = []
    if "trained_eer" in m:
        few = "" if m.get("trained_people") else "here on only a few voices; "
        text = (f"an attacker who has clipkit and trains on its output ({few}a larger training set does "
                f"better) tells speakers apart at {_pct(m['trained_eer'])} equal error rate")
        if "trained_linkability" in m:
            text += f" (linkability {m['trained_linkability']:.2f} on a scale of 0 to 1)"
        real = m.get("trained_real") or {}
        if real.get("eer") is not None and real.get("people"):
            text += f", and at {_pct(real['eer'])} on recordings of {real['people']} real people"
        parts.append(text)
    links = m.get("linking_eer") or {}
    if links.get("per-caller") is not None and links.get("per-clip") is not None:
        same = ("almost without error" if links["per-caller"] < 0.01 else "at")
        parts.append(f"two clips of one caller from one installation are linked {same} "
                     f"({_pct(links['per-caller'])} equal error rate) when a caller keeps one voice, and at "
                     f"{_pct(links['per-clip'])} with a voice per clip")
    if eer:
        worst = min(eer, key=lambda k: eer[k])
        parts.append(f"untrained comparisons: {_pct(min(eer.values()))} to {_pct(max(eer.values()))} equal error "
                     f"rate (worst: {worst}; 50 % is chance)")
    sets = m.get("eer_over_key_sets") or {}
    if sets.get("mean") and sets.get("worst"):
        parts.append(f"over {sets.get('sets')} installations' keys the worst attacker averages "
                     f"{_pct(min(sets['mean'].values()))} and reaches {_pct(min(sets['worst'].values()))} on the "
                     "unluckiest")
    if "trained_eer" not in m:
        parts.append("not yet measured against an attacker trained on clipkit's output, who does markedly better")
    out.update(measured=True, figures=figures,
               statement=f"{version}, measured on {entry.get('voices', 'the bench voices')}: " + "; ".join(parts),
               summary=_summary(m))
    return out


def _summary(m: dict) -> str:
    """Two sentences: how well the strongest measured attacker recognises a voice, and what that means."""
    if "trained_eer" in m:
        real = m.get("trained_real") or {}
        also = (f" ({_pct(real['eer'])} on recordings of real people)"
                if real.get("eer") is not None and real.get("people") else "")
        first = (f"An attacker who has clipkit and trains on its output still tells speakers apart at "
                 f"{_pct(m['trained_eer'])} equal error rate{also}, where 50 % would be pure chance: a voice is "
                 "much harder to recognise, not impossible.")
    elif m.get("eer"):
        eer = m["eer"]
        first = (f"Untrained comparisons tell speakers apart at {_pct(min(eer.values()))} equal error rate at best "
                 "(50 % would be pure chance); an attacker trained on clipkit's output, not measured yet, does "
                 "markedly better.")
    else:
        first = "No attacker's figure was recorded for it."
    return f"{first} {PSEUDONYMISED}"
