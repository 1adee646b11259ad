#!/usr/bin/env python3
"""Make the offline speaker set for the privacy benchmark (bench/privacy.py).

Several distinct synthetic speakers, each saying the same list of short support-call
sentences, passed through a telephone channel (8 kHz, ~200-3400 Hz band limit, G.711 mu-law
round trip). Output: ``bench/.cache/voices/<speaker>/<nn>.wav`` + ``manifest.json``
(gitignored; re-made when the speaker/sentence spec changes).

Engines (Debian packages: ``apt-get install -y flite festival festvox-kdlpc16k
festvox-italp16k festvox-itapc16k espeak-ng``):

* flite   -- awb, rms, slt, kal16: diphone/cluster voices built from recordings of real
             speakers; the most distinct set.
* festival -- ked (festvox-kdlpc16k, US English); lp / pc (festvox-italp16k /
             festvox-itapc16k, Italian female / male, speak the Italian sentences).
* espeak-ng -- formant variants; close to each other and to nothing real, so they are the
             weakest "speakers" in the set.

Speakers whose engine is missing are skipped with a warning. Needs numpy, scipy,
soundfile, soxr (the bench venv has them).

    python bench/make_voices.py [--out DIR] [--force] [--list]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, sosfilt

SR = 8000
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / ".cache" / "voices"

SENTENCES_EN = [
    "Thank you for calling, how can I help you today?",
    "I would like to check the status of my recent order.",
    "The package was supposed to arrive last week but it never came.",
    "Could you please confirm your full name and your date of birth?",
    "I have been charged twice for the same monthly subscription.",
    "Let me transfer you to the billing department right away.",
    "My internet connection keeps dropping every evening after dinner.",
    "Is there anything else I can help you with before we finish?",
]
SENTENCES_IT = [
    "Grazie per aver chiamato, come posso aiutarla oggi?",
    "Vorrei sapere lo stato del mio ultimo ordine.",
    "Il pacco doveva arrivare la settimana scorsa ma non è mai arrivato.",
    "Può confermare il suo nome completo e la sua data di nascita?",
    "Mi avete addebitato due volte lo stesso abbonamento mensile.",
    "La trasferisco subito all'ufficio amministrativo.",
    "La mia connessione internet si interrompe ogni sera dopo cena.",
    "C'è qualcos'altro che posso fare per lei prima di chiudere?",
]

# name -> (engine, engine voice, language, extra args, note)
SPEAKERS: dict[str, dict] = {
    "flite-awb": dict(engine="flite", voice="awb", lang="en", note="Scottish-English male, real-speaker voice"),
    "flite-rms": dict(engine="flite", voice="rms", lang="en", note="US male, real-speaker voice"),
    "flite-slt": dict(engine="flite", voice="slt", lang="en", note="US female, real-speaker voice"),
    "flite-kal16": dict(engine="flite", voice="kal16", lang="en", note="US male, diphone voice"),
    "festival-ked": dict(engine="festival", voice="ked_diphone", lang="en", note="US male, diphone voice"),
    "festival-lp": dict(engine="festival", voice="lp_diphone", lang="it", note="Italian female, diphone voice"),
    "festival-pc": dict(engine="festival", voice="pc_diphone", lang="it", note="Italian male, diphone voice"),
    "espeak-us-f2": dict(engine="espeak", voice="en-us+f2", lang="en", args=["-s", "155", "-p", "60"],
                         note="espeak-ng formant variant (female)"),
    "espeak-gb-m3": dict(engine="espeak", voice="en-gb+m3", lang="en", args=["-s", "165", "-p", "35"],
                         note="espeak-ng formant variant (male)"),
    "espeak-us-belinda": dict(engine="espeak", voice="en-us+belinda", lang="en", args=["-s", "145", "-p", "50"],
                              note="espeak-ng formant variant (female)"),
}


def sentences_for(lang: str) -> list[str]:
    return SENTENCES_IT if lang == "it" else SENTENCES_EN


def spec_hash() -> str:
    blob = json.dumps([SPEAKERS, SENTENCES_EN, SENTENCES_IT, SR, "tel-v2"], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def engine_available(engine: str, voice: str) -> bool:
    if engine == "flite":
        if not shutil.which("flite"):
            return False
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        return voice in out.split()
    if engine == "festival":
        if not shutil.which("text2wave"):
            return False
        name = voice.replace("_diphone", "")
        return any(Path("/usr/share/festival/voices").glob(f"*/{name}_diphone"))
    if engine == "espeak":
        return shutil.which("espeak-ng") is not None
    return False


def synth(spk: dict, text: str, wav_path: str) -> None:
    eng, voice = spk["engine"], spk["voice"]
    if eng == "flite":
        cmd = ["flite", "-voice", voice, "-t", text, "-o", wav_path]
        subprocess.run(cmd, check=True, capture_output=True)
    elif eng == "festival":
        # festival's Italian lexicon wants Latin-1 bytes, not UTF-8
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", wav_path],
                       input=text.encode("latin-1"), check=True, capture_output=True)
    elif eng == "espeak":
        cmd = ["espeak-ng", "-v", voice, *spk.get("args", []), "-w", wav_path, text]
        subprocess.run(cmd, check=True, capture_output=True)
    else:  # pragma: no cover
        raise ValueError(eng)


# Handset-like band limit: a gentle 2nd-order high-pass at 200 Hz (G.712's 300 Hz edge is a loss mask,
# not a brick wall; a steep 300 Hz cut also leaves pYIN unable to track ~100 Hz male voices) and a
# 6th-order low-pass at 3400 Hz, both causal like a real channel.
_HP = butter(2, 200, btype="highpass", fs=SR, output="sos")
_LP = butter(6, 3400, btype="lowpass", fs=SR, output="sos")


def telephone(y: np.ndarray, sr: int) -> np.ndarray:
    """Resample to 8 kHz, band-limit (~200-3400 Hz), trim silence, level, mu-law round trip."""
    if y.ndim > 1:
        y = y.mean(axis=1)
    y = soxr.resample(y.astype(np.float64), sr, SR, quality="HQ")
    y = sosfilt(_LP, sosfilt(_HP, y))
    # trim leading/trailing near-silence (keep 100 ms margins)
    env = np.abs(y)
    thr = 0.02 * env.max()
    idx = np.flatnonzero(env > thr)
    if idx.size:
        a, b = max(0, idx[0] - 800), min(len(y), idx[-1] + 800)
        y = y[a:b]
    y = y / (np.sqrt(np.mean(y**2)) + 1e-9) * 10 ** (-20 / 20)  # -20 dBFS RMS
    y = np.clip(y, -1, 1)
    mu = 255.0  # G.711 mu-law, 8-bit
    q = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127) / 127
    y = np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu
    return y.astype(np.float32)


def make(out: Path, force: bool = False, verbose: bool = True) -> dict:
    man_path = out / "manifest.json"
    h = spec_hash()
    if not force and man_path.exists():
        man = json.loads(man_path.read_text())
        if man.get("spec") == h and all((out / u["file"]).exists() for u in man["utterances"]):
            return man
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    utts, speakers, skipped = [], {}, []
    with tempfile.TemporaryDirectory() as td:
        for name, spk in SPEAKERS.items():
            if not engine_available(spk["engine"], spk["voice"]):
                skipped.append(name)
                print(f"[make_voices] skip {name}: {spk['engine']} voice {spk['voice']} not installed",
                      file=sys.stderr)
                continue
            (out / name).mkdir()
            speakers[name] = {k: v for k, v in spk.items() if k != "args"}
            for i, text in enumerate(sentences_for(spk["lang"])):
                raw = os.path.join(td, "raw.wav")
                synth(spk, text, raw)
                y, sr = sf.read(raw, dtype="float64")
                y = telephone(y, sr)
                rel = f"{name}/{i:02d}.wav"
                sf.write(out / rel, y, SR, subtype="PCM_16")
                utts.append(dict(speaker=name, index=i, lang=spk["lang"], text=text, file=rel,
                                 seconds=round(len(y) / SR, 2)))
            if verbose:
                print(f"[make_voices] {name}: {len(sentences_for(spk['lang']))} utterances", file=sys.stderr)
    man = dict(spec=h, sr=SR, speakers=speakers, skipped=skipped, utterances=utts)
    man_path.write_text(json.dumps(man, indent=1, ensure_ascii=False))
    return man


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="re-make even if the cache matches")
    ap.add_argument("--list", action="store_true", help="list speakers and whether their engine is installed")
    a = ap.parse_args(argv)
    if a.list:
        for name, spk in SPEAKERS.items():
            ok = engine_available(spk["engine"], spk["voice"])
            print(f"{name:20s} {'ok' if ok else 'MISSING':8s} {spk['note']}")
        return 0
    man = make(a.out, force=a.force)
    n = len(man["utterances"])
    secs = sum(u["seconds"] for u in man["utterances"])
    print(f"{len(man['speakers'])} speakers, {n} utterances, {secs:.0f} s of 8 kHz audio in {a.out}")
    return 0 if len(man["speakers"]) >= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
