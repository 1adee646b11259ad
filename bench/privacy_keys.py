#!/usr/bin/env python3
"""Key-averaged privacy estimate for tuning the strong method's keyed ranges.

bench/privacy.py scores one draw of installation keys; with ten voices its
figures move by several EER points from one key set to the next (compare
``--seed``). This script spends the same time on many keys instead of many
attackers: every voice is anonymized under N keys, and for each ordered key
pair (trial key, reference key) the lazy-informed EER is computed; "multi4"
is the multi-key attacker (best of four other keys), per trial key. ρF0 is
averaged over the first four utterances of every voice under four keys.

Run (re-executes itself in bench/.venv-privacy, made by ``privacy.py --setup``):

    python3 bench/privacy_keys.py [--keys 8] [--utterances 6] [--no-rho]

Prints one line: single-key / multi4 / ignorant EER as mean (min over trial
keys) and ρF0. Needs ~25 s (+~40 s for ρF0) on 2 cores.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import privacy  # noqa: E402

if __name__ == "__main__":
    privacy.reexec_in_bench_venv(__file__)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=8, help="installation keys (>= 5)")
    ap.add_argument("--utterances", type=int, default=6, help="utterances per voice")
    ap.add_argument("--no-rho", action="store_true", help="skip the pitch-correlation part")
    ap.add_argument("--voices", type=Path, default=privacy.CACHE / "voices")
    ap.add_argument("--offsets", action="store_true",
                    help="cut every utterance at its own offset in a call (0-600 s), as real clips are, "
                         "instead of all at t=0 (the drifts then take a different phase per clip)")
    ap.add_argument("--one-voice-per-key", action="store_true",
                    help="diagnostic: every speaker gets the same voice under a key, so what is left "
                         "is the speaker information the chain does not normalise away")
    ap.add_argument("--same-transform", action="store_true",
                    help="diagnostic: one key and one voice for every speaker (implies --one-voice-per-key); "
                         "the single-key EER is then how separable speakers stay after the same transform")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a keyed range in clipkit.anonymize._voice for a tuning run, "
                         "e.g. --set BAND_DRIFT_DB=8 or --set 'CONTRAST=(0.3,1.2)'")
    a = ap.parse_args(argv)
    a.one_voice_per_key = a.one_voice_per_key or a.same_transform
    if a.keys < 5:
        ap.error("--keys must be at least 5 (the multi-key attacker uses four other keys)")

    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import soundfile as sf
    import torch
    from resemblyzer import VoiceEncoder

    import clipkit.anonymize as anon
    from clipkit.anonymize import _voice

    for item in a.set:
        name, _, value = item.partition("=")
        if not hasattr(_voice, name):
            ap.error(f"--set: clipkit.anonymize._voice has no {name!r}")
        setattr(_voice, name, ast.literal_eval(value))

    torch.set_num_threads(1)
    privacy._W.update(enc=VoiceEncoder("cpu", verbose=False), np=np)
    man = json.loads((a.voices / "manifest.json").read_text())
    speakers = sorted(man["speakers"])
    by: dict = {}
    for u in man["utterances"]:
        by.setdefault(u["speaker"], []).append(u)
    U = a.utterances
    audio = {(s, i): sf.read(a.voices / by[s][i]["file"], dtype="float32")[0] for s in speakers for i in range(U)}
    # --same-transform: one key and one voice for everyone, i.e. how well the
    # attacker tells speakers apart when all went through the same transform
    keys = [hashlib.sha256(f"clipkit-privacy-keys/{0 if a.same_transform else j}".encode()).digest()
            for j in range(a.keys)]
    t0 = time.time()

    def offset_s(key: bytes, s: str, i: int) -> float:
        if not a.offsets:
            return 0.0
        h = hashlib.sha256(key + f"/offset/{s}/{i}".encode()).digest()
        return 600.0 * int.from_bytes(h[:4], "big") / 2**32

    def render(key: bytes, s: str, i: int):
        vid = "everyone" if a.one_voice_per_key else privacy.pseudonym(key, s)
        v = anon.derive_voice(key, voice_id=vid, role="caller")
        return anon.anonymize(audio[(s, i)].copy(), sr=privacy.SR, voice=v, method="strong",
                              t0_s=offset_s(key, s, i))

    E = np.stack([[[privacy._embed(render(k, s, i)) for i in range(U)] for s in speakers] for k in keys])
    E0 = np.stack([[privacy._embed(audio[(s, i)]) for i in range(U)] for s in speakers])

    def eer_of(trial, refs):
        return privacy.eer(*privacy.split_scores(privacy.cos_scores(trial, privacy.enrol(refs))))

    K = len(keys)
    single = [eer_of(E[j], E[c]) for j in range(K) for c in range(K) if c != j]
    multi = []
    for j in range(K):
        others = [c for c in range(K) if c != j][:4]
        sc = np.max([privacy.cos_scores(E[j], privacy.enrol(E[c])) for c in others], axis=0)
        multi.append(privacy.eer(*privacy.split_scores(sc)))
    ignorant = [eer_of(E[j], E0) for j in range(K)]

    rho = ""
    if not a.no_rho:
        rs = []
        for k in keys[:4]:
            for s in speakers:
                for i in range(min(U, 4)):
                    r, _ = privacy.rho_f0(privacy._f0(audio[(s, i)]), privacy._f0(render(k, s, i)))
                    if r is not None:
                        rs.append(r)
        rho = f", rhoF0 {np.mean(rs):.3f} (n={len(rs)})"

    def fmt(x):
        return f"{100 * np.mean(x):.1f} (min {100 * np.min(x):.1f})"

    print(f"{len(speakers)} voices x {U} utterances, {K} keys: single-key {fmt(single)}, "
          f"multi4 {fmt(multi)}, ignorant {fmt(ignorant)}{rho}  [{time.time() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
