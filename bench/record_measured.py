"""Record the privacy bench's figures for the running anonymizer in clipkit/anonymize/measured.json.

The product states these figures (export manifests, the clip page, the
compliance dashboard) only for the exact anonymizer source they were measured
on: the entry is keyed by the source hash ``bench/privacy.py`` reports, and a
results file from another source is refused. Runs after a full
``bench/privacy.py`` run (which calls it), or by hand:

    .venv/bin/python bench/record_measured.py [bench/results/privacy.json]
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from clipkit import measured  # noqa: E402

VOICES = "ten synthetic and diphone TTS voices (flite, festival, espeak-ng), telephone band"
ATTACKER = ("resemblyzer d-vectors compared by cosine similarity (ignorant, lazy-informed, shift-back, multi-key, "
            "sweep); no attacker trained on clipkit's output")
TRAINED_ATTACKER = ("resemblyzer d-vectors compared by cosine (five attackers, bench/privacy.py) and a semi-informed "
                    "attacker trained on clipkit's output, on d-vectors and MFCC statistics (bench/privacy_trained.py)")


def _hash_of(report: dict) -> str | None:
    seen = report.get("anonymizer_sources_seen") or []
    if len(seen) == 1:
        return seen[0]
    m = re.search(r"sha256 ([0-9a-f]{12})", str(report.get("source") or report.get("anonymizer") or ""))
    return m.group(1) if m else None


def entry_from(report: dict, keysets: dict | None, versions: dict) -> dict:
    """One measured.json entry from a full privacy.json report (and the key-set report of the same source)."""
    methods = {}
    for method, version in versions.items():
        eer = (report.get("eer") or {}).get(method)
        if not eer:
            continue
        m = {"version": version, "eer": {k: round(v["eer"], 4) for k, v in eer.items()},
             "eer_ci95": {k: [round(x, 4) for x in v["ci95"]] for k, v in eer.items() if "ci95" in v}}
        rho = (report.get("rho_f0") or {}).get(method)
        if rho:
            m["rho_f0"] = round(rho["mean"], 3)
        wer = (report.get("wer") or {}).get(method)
        if wer is not None:
            m["wer"] = round(wer, 3)
        if method == "strong" and keysets:
            m["eer_over_key_sets"] = {
                "sets": len(keysets.get("rows") or []),
                "mean": {k: round(v["mean"], 4) for k, v in (keysets.get("per_attacker") or {}).items() if "mean" in v},
                "worst": {k: round(v["min"], 4) for k, v in (keysets.get("per_attacker") or {}).items()
                          if "min" in v},
            }
        methods[method] = m
    return {"measured_at": report.get("generated"), "voices": VOICES, "attacker": ATTACKER,
            "speakers": len(report.get("speakers") or {}), "methods": methods}


def record(results: Path, *, target: Path = measured.MEASURED_FILE) -> str:
    report = json.loads(results.read_text())
    if report.get("quick") or report.get("stand_in"):
        raise SystemExit(f"{results} is a quick or stand-in run; only a full run is recorded")
    running = measured.source_hash()
    if _hash_of(report) != running:
        raise SystemExit(f"{results} was measured on anonymizer {_hash_of(report)}, not the running {running}; "
                         "run bench/privacy.py again")
    trained_path = results.with_name("privacy-trained.json")
    trained = json.loads(trained_path.read_text()) if trained_path.exists() else None
    if trained and _hash_of(trained) != running:
        trained = None
    keysets_path = results.with_name("privacy-keysets.json")
    keysets = json.loads(keysets_path.read_text()) if keysets_path.exists() else None
    if keysets and _hash_of(keysets) != running:
        keysets = None  # another source: its figures say nothing about this one
    from clipkit.anonymize import METHODS

    data = json.loads(target.read_text()) if target.exists() else {"format": 1, "entries": {}}
    entry = entry_from(report, keysets, dict(METHODS))
    if trained and trained.get("method_version") == METHODS["strong"] and "strong" in entry["methods"]:
        # the semi-informed attacker of bench/privacy_trained.py: its worst back-end is the figure
        entry["attacker"] = TRAINED_ATTACKER
        m = entry["methods"]["strong"]
        w = trained["worst"]
        m["trained_eer"] = round(w["eer"], 4)
        m["trained_attacker"] = (
            f"back-ends on resemblyzer d-vectors and on MFCC statistics, trained on {trained['train_speakers_per_fold']} "
            f"people's voices anonymized by clipkit under {trained['train_keys']} keys; worst: {w['backend']}")
        if "eer_ci95" in w:  # the bench's format since strong-v7
            m["trained_eer_ci95"] = [round(x, 4) for x in w["eer_ci95"]]
            m["trained_linkability"] = round(w["linkability"], 3)
            m["trained_tpr_at_1pct_fpr"] = round(w["tpr_at_1pct_fpr"], 3)
            m["trained_people"] = trained["speakers"]
            entry["voices"] = (f"TTS voices built from real speakers (flite, festival; espeak-ng among the ten) through a "
                               f"telephone band: ten for the untrained comparisons, {trained['speakers']} people's for "
                               "the trained attacker")
            links = trained.get("within_installation") or {}
            m["linking_eer"] = {mode: round(links[k], 4) for mode, k in (
                ("per-caller", "one installation, one voice per caller"),
                ("per-clip", "one installation, one voice per clip")) if k in links}
            q = trained.get("quality") or {}
            if q:
                m["quality"] = {"rho_f0_pyin": round(q["rho_f0"]["mean"], 3),
                                "level_within_2db": round(q["level_change_db"]["within_2db"], 3),
                                "level_change_db_range": [round(q["level_change_db"]["min"], 2),
                                                          round(q["level_change_db"]["max"], 2)],
                                "peak_max": round(q["peak_max"], 4)}
            real = trained.get("real")
            if real:  # the same back-ends on recordings of real people (codec2-examples)
                rw, rq = real["worst"], real["quality"]
                m["trained_real"] = {"people": real["people"], "eer": round(rw["eer"], 4),
                                     "eer_ci95": [round(x, 4) for x in rw["eer_ci95"]],
                                     "linkability": round(rw["linkability"], 3),
                                     "original_eer": round(real["original_voices"]["eer"], 4),
                                     "rho_f0_pyin": round(rq["rho_f0"]["mean"], 3),
                                     "level_within_2db": round(rq["level_change_db"]["within_2db"], 3)}
    data.setdefault("entries", {})[running] = entry
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".measured-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, target)
    return running


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "privacy.json"
    print(f"recorded the figures of anonymizer {record(path)} in {measured.MEASURED_FILE}")
