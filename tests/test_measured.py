"""What the product says about the anonymizer: measured figures for the running source, never a stale number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clipkit import measured
from clipkit.anonymize import METHODS


def _file(tmp_path, entries: dict):
    path = tmp_path / "measured.json"
    path.write_text(json.dumps({"format": 1, "entries": entries}))
    return path


ENTRY = {"measured_at": "2026-12-02", "voices": "ten TTS voices", "methods": {
    "strong": {"version": METHODS["strong"], "eer": {"ignorant": 0.42, "shift-back": 0.338}, "rho_f0": 0.8}}}


def test_the_running_source_with_an_entry_is_stated_with_its_figures(tmp_path):
    path = _file(tmp_path, {measured.source_hash(): ENTRY})
    c = measured.claim("strong", METHODS["strong"], path=path)
    assert c["measured"] and c["figures"]["eer"]["shift-back"] == 0.338
    assert "34 % to 42 %" in c["statement"] and "not yet measured against an attacker trained on clipkit" in c["statement"]


def test_a_trained_attacker_and_linking_are_stated_in_plain_words(tmp_path):
    strong = dict(ENTRY["methods"]["strong"], trained_eer=0.201, trained_people=16, trained_linkability=0.52,
                  linking_eer={"per-caller": 0.0, "per-clip": 0.174})
    path = _file(tmp_path, {measured.source_hash(): dict(ENTRY, methods={"strong": strong})})
    c = measured.claim("strong", METHODS["strong"], path=path)
    assert "trains on its output (a larger training set does better) tells" in c["statement"]
    assert "at 20 % equal error rate (linkability 0.52 on a scale of 0 to 1)" in c["statement"]
    assert ("linked almost without error (0 % equal error rate) when a caller keeps one voice, and at 17 % with a "
            "voice per clip") in c["statement"]
    assert "not yet measured against" not in c["statement"]
    assert c["figures"]["linking_eer"]["per-clip"] == 0.174


@pytest.mark.parametrize("real, said", [
    ({"people": 8, "eer": 0.214}, "linkability 0.52 on a scale of 0 to 1), and at 21 % on recordings of 8 real people;"),
    ({"people": 0, "eer": 0.214}, "linkability 0.52 on a scale of 0 to 1);"),  # no people: no figure
    ({"people": 8}, "linkability 0.52 on a scale of 0 to 1);"),                # no figure: nothing said
])
def test_the_trained_attacker_on_real_people_is_stated_only_with_its_figure(tmp_path, real, said):
    strong = dict(ENTRY["methods"]["strong"], trained_eer=0.201, trained_people=16, trained_linkability=0.52,
                  trained_real=real)
    path = _file(tmp_path, {measured.source_hash(): dict(ENTRY, methods={"strong": strong})})
    c = measured.claim("strong", METHODS["strong"], path=path)
    assert said in c["statement"]
    assert c["figures"]["trained_real"] == real


@pytest.mark.parametrize("figures, summary", [
    ({"trained_eer": 0.185, "trained_real": {"people": 8, "eer": 0.214}},
     "trains on its output still tells speakers apart at 18 % equal error rate (21 % on recordings of real people), "
     "where 50 % would be pure chance"),
    ({"trained_eer": 0.185}, "still tells speakers apart at 18 % equal error rate, where 50 %"),
    ({}, "Untrained comparisons tell speakers apart at 34 % equal error rate at best"),
])
def test_the_summary_is_two_sentences_about_the_strongest_measured_attacker(tmp_path, figures, summary):
    strong = dict(ENTRY["methods"]["strong"], **figures)
    path = _file(tmp_path, {measured.source_hash(): dict(ENTRY, methods={"strong": strong})})
    s = measured.claim("strong", METHODS["strong"], path=path)["summary"]
    assert summary in s and s.endswith(measured.PSEUDONYMISED)
    assert s.count(". ") == 1  # two sentences


def test_an_unmeasured_summary_names_no_figure_and_still_says_pseudonymised(tmp_path):
    s = measured.claim("strong", METHODS["strong"], path=_file(tmp_path, {}))["summary"]
    assert "has not been measured" in s and "pseudonymised personal data" in s and "%" not in s


@pytest.mark.parametrize("entries, version", [
    ({}, METHODS["strong"]),                                   # nothing recorded
    ({"0123456789ab": ENTRY}, METHODS["strong"]),              # recorded for another source
    ("running", "strong-v1"),                                  # this source, but the clip was rendered by an old version
])
def test_anything_else_is_not_measured_and_carries_no_number(tmp_path, entries, version):
    path = _file(tmp_path, {measured.source_hash(): ENTRY} if entries == "running" else entries)
    c = measured.claim("strong", version, path=path)
    assert not c["measured"] and c["figures"] is None
    assert c["statement"].endswith("not measured for this version") and "%" not in c["statement"]


def test_a_broken_file_is_not_a_crash_and_claims_nothing(tmp_path):
    path = tmp_path / "measured.json"
    path.write_text("{not json")
    assert not measured.claim("strong", METHODS["strong"], path=path)["measured"]


def test_editing_the_anonymizer_changes_the_hash(tmp_path):
    pkg = tmp_path / "clipkit" / "anonymize"
    shutil.copytree(measured.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    assert measured.source_hash(pkg) == measured.source_hash()
    (pkg / "_voice.py").write_text((pkg / "_voice.py").read_text() + "\n# a tweak\n")
    assert measured.source_hash(pkg) != measured.source_hash()


def test_the_shipped_file_is_valid_and_every_entry_names_its_versions():
    data = json.loads(measured.MEASURED_FILE.read_text())
    assert data["format"] == 1
    for digest, entry in data["entries"].items():
        assert len(digest) == 12 and entry["methods"]
        for method, m in entry["methods"].items():
            assert m["version"].startswith(method + "-") and all(0 <= v <= 1 for v in m["eer"].values())


def test_the_shipped_figures_are_for_the_running_anonymizer():
    # fails when clipkit/anonymize/ changes without a new privacy bench run (bench/privacy.py records it):
    # the product would otherwise say "not measured for this version" everywhere
    entry = measured.entries().get(measured.source_hash())
    assert entry, (f"clipkit/anonymize/measured.json has no entry for the running anonymizer "
                   f"{measured.source_hash()}; run the privacy bench (make bench-privacy)")
    assert {m: e["version"] for m, e in entry["methods"].items()} == dict(METHODS)
    c = measured.claim("strong", METHODS["strong"])
    assert c["measured"] and "%" in c["statement"]


def test_the_bench_keys_a_per_clip_voice_as_the_product_does():
    # bench/privacy_trained.py measures linking under a voice per clip with its own copy of the id
    # (its venv has no sqlite-utils); a drift would measure a mode the product does not run
    import importlib.util
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("privacy_trained", bench / "privacy_trained.py")
        pt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pt)
    finally:
        sys.path.remove(str(bench))
    from clipkit import pseudovoices

    assert pt.clip_voice_id("a1b2", 7) == pseudovoices.voice_id("a1b2", mode="per-clip", unit="clip:7")
