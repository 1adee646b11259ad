#!/usr/bin/env python3
"""Make the offline speaker set for the privacy benchmark (bench/privacy.py).

Several distinct synthetic speakers, each saying the same list of short support-call
sentences, passed through a telephone channel (8 kHz, ~200-3400 Hz band limit, G.711 mu-law
round trip). Output: ``bench/.cache/voices/<speaker>/<nn>.wav`` + ``manifest.json``
(gitignored; re-made when the speaker/sentence spec changes).

Engines (Debian packages: ``APT_PACKAGES`` below; ``privacy.py --setup`` installs them):

* flite   -- awb, rms, slt, kal16: diphone/cluster voices built from recordings of real
             speakers; the most distinct set.
* festival -- ked (festvox-kdlpc16k, US English); lp / pc (festvox-italp16k /
             festvox-itapc16k, Italian female / male, speak the Italian sentences); and
             the festvox voices of eleven more people (kal, slt, four Czech, two Finnish,
             Russian, Catalan, Hindi), each speaking the sentences in its own language.
             kal and slt are also flite voices: ``person`` names the real speaker, so
             one person is never scored as two.
* espeak-ng -- formant variants; close to each other and to nothing real, so they are the
             weakest "speakers" in the set.

Real people (``make_real``, ``REAL``): recordings of human speech from Debian's codec2-examples,
cut into utterances and passed through the same channel, to ``bench/.cache/voices-real/``.

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
SENTENCES_CS = [
    "Děkujeme, že jste zavolali, jak vám mohu dnes pomoci?",
    "Chtěl bych zjistit stav své poslední objednávky.",
    "Balík měl přijít minulý týden, ale nikdy nedorazil.",
    "Můžete mi prosím potvrdit své celé jméno a datum narození?",
    "Za stejné měsíční předplatné mi bylo účtováno dvakrát.",
    "Hned vás přepojím na oddělení fakturace.",
    "Moje internetové připojení každý večer po večeři vypadává.",
    "Mohu vám ještě s něčím pomoci, než skončíme?",
]
SENTENCES_FI = [
    "Kiitos soitostanne, miten voin auttaa teitä tänään?",
    "Haluaisin tarkistaa viimeisimmän tilaukseni tilan.",
    "Paketin piti tulla viime viikolla, mutta se ei koskaan saapunut.",
    "Voisitteko vahvistaa koko nimenne ja syntymäaikanne?",
    "Minua on veloitettu kahdesti samasta kuukausitilauksesta.",
    "Yhdistän teidät heti laskutusosastolle.",
    "Internetyhteyteni katkeaa joka ilta päivällisen jälkeen.",
    "Voinko auttaa vielä jossakin ennen kuin lopetamme?",
]
SENTENCES_CA = [
    "Gràcies per trucar, com el puc ajudar avui?",
    "Voldria saber l'estat de la meva última comanda.",
    "El paquet havia d'arribar la setmana passada però no ha arribat mai.",
    "Em pot confirmar el seu nom complet i la seva data de naixement?",
    "M'han cobrat dues vegades la mateixa subscripció mensual.",
    "Ara mateix el passo amb el departament de facturació.",
    "La meva connexió a internet es talla cada vespre després de sopar.",
    "El puc ajudar en alguna cosa més abans d'acabar?",
]
SENTENCES_RU = [
    "Спасибо за звонок, чем я могу вам помочь сегодня?",
    "Я хотел бы узнать статус моего последнего заказа.",
    "Посылка должна была прийти на прошлой неделе, но так и не пришла.",
    "Подтвердите, пожалуйста, ваше полное имя и дату рождения.",
    "С меня дважды списали плату за одну и ту же месячную подписку.",
    "Сейчас я переведу вас в отдел расчётов.",
    "Мой интернет пропадает каждый вечер после ужина.",
    "Могу ли я ещё чем-нибудь помочь, прежде чем мы закончим?",
]
SENTENCES_HI = [
    "कॉल करने के लिए धन्यवाद, मैं आज आपकी कैसे मदद कर सकता हूँ?",
    "मैं अपने पिछले ऑर्डर की स्थिति जानना चाहता हूँ।",
    "पैकेट पिछले हफ्ते आना था लेकिन वह कभी नहीं आया।",
    "क्या आप अपना पूरा नाम और जन्म तिथि बता सकते हैं?",
    "मुझसे एक ही मासिक सदस्यता के लिए दो बार पैसे लिए गए।",
    "मैं आपको अभी बिलिंग विभाग से जोड़ता हूँ।",
    "मेरा इंटरनेट कनेक्शन हर शाम खाने के बाद कट जाता है।",
    "क्या खत्म करने से पहले मैं आपकी और कोई मदद कर सकता हूँ?",
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

def _festvox(voice: str, lang: str, person: str, note: str) -> dict:
    """A festival voice beyond the core ten."""
    return dict(engine="festival", voice=voice, lang=lang, person=person, core=False, note=note)


# name -> engine, engine voice, language, the real person the voice was built from ("person": two
# voices of one person must never count as two speakers), extra args, note. "core": the ten voices
# bench/privacy.py has always scored (kept for continuity); bench/privacy_trained.py takes one voice
# per real person from all of them.
SPEAKERS: dict[str, dict] = {
    "flite-awb": dict(engine="flite", voice="awb", lang="en", person="awb", core=True,
                      note="Scottish-English male, real-speaker voice"),
    "flite-rms": dict(engine="flite", voice="rms", lang="en", person="rms", core=True, note="US male, real-speaker voice"),
    "flite-slt": dict(engine="flite", voice="slt", lang="en", person="slt", core=True,
                      note="US female, real-speaker voice"),
    "flite-kal16": dict(engine="flite", voice="kal16", lang="en", person="kal", core=True, note="US male, diphone voice"),
    "festival-ked": dict(engine="festival", voice="ked_diphone", lang="en", person="ked", core=True,
                         note="US male, diphone voice"),
    "festival-lp": dict(engine="festival", voice="lp_diphone", lang="it", person="lp", core=True,
                        note="Italian female, diphone voice"),
    "festival-pc": dict(engine="festival", voice="pc_diphone", lang="it", person="pc", core=True,
                        note="Italian male, diphone voice"),
    "espeak-us-f2": dict(engine="espeak", voice="en-us+f2", lang="en", args=["-s", "155", "-p", "60"], person=None,
                         core=True, note="espeak-ng formant variant (female)"),
    "espeak-gb-m3": dict(engine="espeak", voice="en-gb+m3", lang="en", args=["-s", "165", "-p", "35"], person=None,
                         core=True, note="espeak-ng formant variant (male)"),
    "espeak-us-belinda": dict(engine="espeak", voice="en-us+belinda", lang="en", args=["-s", "145", "-p", "50"],
                              person=None, core=True, note="espeak-ng formant variant (female)"),
    # festvox voices built from recordings of further real people (Debian packages named in the note)
    "festival-kal": _festvox("kal_diphone", "en", "kal",
                             "US male, diphone (festvox-kallpc16k); the same person as flite-kal16"),
    "festival-slt-hts": _festvox("cmu_us_slt_arctic_hts", "en", "slt",
                                 "US female, HTS (festvox-us-slt-hts); the same person as flite-slt"),
    "festival-dita": _festvox("czech_dita", "cs", "dita", "Czech female (festvox-czech-dita)"),
    "festival-krb": _festvox("czech_krb", "cs", "krb", "Czech female (festvox-czech-krb)"),
    "festival-machac": _festvox("czech_machac", "cs", "machac", "Czech male (festvox-czech-machac)"),
    "festival-ph": _festvox("czech_ph", "cs", "ph", "Czech male (festvox-czech-ph)"),
    "festival-lj": _festvox("suo_fi_lj_diphone", "fi", "lj", "Finnish male (festvox-suopuhe-lj)"),
    "festival-mv": _festvox("hy_fi_mv_diphone", "fi", "mv", "Finnish male (festvox-suopuhe-mv)"),
    "festival-nsh": _festvox("msu_ru_nsh_clunits", "ru", "nsh", "Russian male, unit selection (festvox-ru)"),
    "festival-ona": _festvox("upc_ca_ona_hts", "ca", "ona", "Catalan female, HTS (festvox-ca-ona-hts)"),
    "festival-nsk": _festvox("hindi_NSK_diphone", "hi", "nsk",
                             "Hindi male (festvox-hi-nsk; -mr-nsk and -te-nsk are the same person)"),
}
# what each language's festival front end reads (its lexicons predate UTF-8 for some)
FESTIVAL_ENCODING = {"en": "latin-1", "it": "latin-1", "fi": "latin-1", "cs": "iso-8859-2", "ca": "utf-8",
                     "ru": "utf-8", "hi": "utf-8"}
APT_PACKAGES = ["flite", "festival", "espeak-ng", "festvox-kdlpc16k", "festvox-italp16k", "festvox-itapc16k",
                "festvox-kallpc16k", "festvox-us-slt-hts", "festvox-czech-dita", "festvox-czech-krb",
                "festvox-czech-machac", "festvox-czech-ph", "festvox-suopuhe-lj", "festvox-suopuhe-mv", "festvox-ru",
                "festvox-ca-ona-hts", "festvox-hi-nsk", "codec2-examples"]

# Real people: recordings of human speech that Debian ships as codec2's test material (package
# codec2-examples, LGPL-2.1, David Rowe; 8 kHz 16-bit mono, under CODEC2_DIR). TTS voices share a
# prosody model per language; these do not, so privacy_trained.py tests its attacker on them too and
# measures rho F0 on them. person -> note, the (file, start s, end s) pieces of that person's speech,
# and whether there is enough of it (>= 4 s) for two utterances to verify against each other. hts.raw
# holds four 6 s sentences of two people (hts1 and hts2 are its first two); big_dog is probably the
# hts male (cosine 0.79), so it is only measured for quality. Left out: ve9qrp_10s (a piece of ve9qrp),
# f2400/m2400 (codec output), david4 and vk2tpm_004 (pYIN finds no voice), modem and sine files.
CODEC2_DIR = Path("/usr/share/codec2")
REAL_SEGMENT_S = 4.0  # longest utterance cut from one person's speech
REAL: dict[str, dict] = {
    "hts-m": dict(note="US male (codec2 hts1, hts3)", pieces=[("raw/hts.raw", 0, 6), ("raw/hts.raw", 12, 18)],
                  verify=True),
    "hts-f": dict(note="US female (codec2 hts2, hts4)", pieces=[("raw/hts.raw", 6, 12), ("raw/hts.raw", 18, 24)],
                  verify=True),
    "ve9qrp": dict(note="male radio amateur, over the air (codec2 ve9qrp)", pieces=[("raw/ve9qrp.raw", 10, 30)],
                   verify=True),
    "vk5qi": dict(note="Australian male (codec2 vk5qi)", pieces=[("raw/vk5qi.raw", 0, None)], verify=True),
    "cq_ref": dict(note="male calling CQ (codec2 cq_ref)", pieces=[("raw/cq_ref.raw", 0, None)], verify=True),
    "g3plx": dict(note="British male (codec2 g3plx)", pieces=[("raw/g3plx.raw", 0, None)], verify=True),
    "kristoff": dict(note="male, low voice (codec2 kristoff)", pieces=[("raw/kristoff.raw", 0, None)], verify=True),
    "mmt1": dict(note="male (codec2 mmt1)", pieces=[("raw/mmt1.raw", 0, None)], verify=True),
    "forig": dict(note="female (codec2 forig)", pieces=[("raw/forig.raw", 0, None)], verify=False),
    "morig": dict(note="male (codec2 morig)", pieces=[("raw/morig.raw", 0, None)], verify=False),
    "cross": dict(note="male (codec2 cross)", pieces=[("raw/cross.raw", 0, None)], verify=False),
    "big_dog": dict(note="male, probably hts-m (codec2 big_dog)", pieces=[("raw/big_dog.raw", 0, None)],
                    verify=False),
}
DEFAULT_REAL_OUT = HERE / ".cache" / "voices-real"


def sentences_for(lang: str) -> list[str]:
    return {"it": SENTENCES_IT, "cs": SENTENCES_CS, "fi": SENTENCES_FI, "ca": SENTENCES_CA, "ru": SENTENCES_RU,
            "hi": SENTENCES_HI}.get(lang, SENTENCES_EN)


def spec_hash() -> str:
    blob = json.dumps([SPEAKERS, SENTENCES_EN, SENTENCES_IT, SENTENCES_CS, SENTENCES_FI, SENTENCES_CA, SENTENCES_RU,
                       SENTENCES_HI, FESTIVAL_ENCODING, SR, "tel-v2"], sort_keys=True, ensure_ascii=False)
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
        return any(Path("/usr/share/festival/voices").glob(f"*/{voice}"))
    if engine == "espeak":
        return shutil.which("espeak-ng") is not None
    return False


def synth(spk: dict, text: str, wav_path: str) -> None:
    eng, voice = spk["engine"], spk["voice"]
    if eng == "flite":
        cmd = ["flite", "-voice", voice, "-t", text, "-o", wav_path]
        subprocess.run(cmd, check=True, capture_output=True)
    elif eng == "festival":
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", wav_path],
                       input=text.encode(FESTIVAL_ENCODING[spk["lang"]]), check=True, capture_output=True)
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


def _cached(out: Path, spec: str, *, force: bool) -> dict | None:
    """The manifest of a complete set made from ``spec`` in ``out``; else None, with ``out`` emptied for a new one."""
    man_path = out / "manifest.json"
    if not force and man_path.exists():
        man = json.loads(man_path.read_text())
        if man.get("spec") == spec and all((out / u["file"]).exists() for u in man["utterances"]):
            return man
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return None


def _read_raw(path: Path, start_s: float, end_s: float | None) -> np.ndarray:
    """A piece of a codec2 test file: 16-bit little-endian mono at 8 kHz (.raw), or a wav."""
    if path.suffix == ".raw":
        y = np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0
    else:
        y, sr = sf.read(path, dtype="float64")
        if sr != SR:
            raise ValueError(f"{path}: {sr} Hz, expected {SR}")
    return y[int(start_s * SR): None if end_s is None else int(end_s * SR)]


def _split_quiet(y: np.ndarray, parts: int) -> list[np.ndarray]:
    """Cut ``y`` into ``parts`` pieces at the quietest 20 ms near each equal split (within +-15 %)."""
    n, w = len(y), SR // 50
    e = np.convolve(y ** 2, np.ones(w), "same")
    cuts = [0]
    for k in range(1, parts):
        c, r = k * n // parts, int(0.15 * n / parts)
        cuts.append(c - r + int(np.argmin(e[c - r:c + r])))
    return [y[a:b] for a, b in zip(cuts, cuts[1:] + [n])]


def make_real(out: Path = DEFAULT_REAL_OUT, *, source: Path = CODEC2_DIR, force: bool = False,
              verbose: bool = True) -> dict | None:
    """Real people's utterances (REAL) through the same telephone channel; None if codec2-examples is missing.

    A person marked ``verify`` gets two utterances (their speech cut in two at a pause, each at most
    REAL_SEGMENT_S long); the others one. Output ``out/<person>/<nn>.wav`` + ``manifest.json``.
    """
    if not all((source / f).exists() for r in REAL.values() for f, _a, _b in r["pieces"]):
        if verbose:
            print(f"[make_voices] no real voices: codec2-examples is not installed ({source})", file=sys.stderr)
        return None
    h = hashlib.sha256(json.dumps([REAL, REAL_SEGMENT_S, SR, "tel-v2"], sort_keys=True).encode()).hexdigest()[:16]
    man = _cached(out, h, force=force)
    if man is not None:
        return man
    utts = []
    for person, r in REAL.items():
        pieces = [_read_raw(source / f, a, b) for f, a, b in r["pieces"]]
        y = np.concatenate(pieces)
        segs = _split_quiet(y, 2) if r["verify"] else [y]
        (out / person).mkdir()
        for i, seg in enumerate(segs):
            seg = telephone(seg[: int(REAL_SEGMENT_S * SR)] if r["verify"] else seg, SR)
            rel = f"{person}/{i:02d}.wav"
            sf.write(out / rel, seg, SR, subtype="PCM_16")
            utts.append(dict(speaker=person, index=i, file=rel, seconds=round(len(seg) / SR, 2)))
    man = dict(spec=h, sr=SR, source="codec2-examples (Debian), LGPL-2.1, David Rowe",
               speakers={p: dict(note=r["note"], verify=r["verify"]) for p, r in REAL.items()}, utterances=utts)
    (out / "manifest.json").write_text(json.dumps(man, indent=1))
    if verbose:
        print(f"[make_voices] real voices: {len(REAL)} people, {len(utts)} utterances in {out}", file=sys.stderr)
    return man


def make(out: Path, force: bool = False, verbose: bool = True) -> dict:
    h = spec_hash()
    man = _cached(out, h, force=force)
    if man is not None:
        return man
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
    (out / "manifest.json").write_text(json.dumps(man, indent=1, ensure_ascii=False))
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
    make_real(a.out.parent / DEFAULT_REAL_OUT.name, force=a.force)
    n = len(man["utterances"])
    secs = sum(u["seconds"] for u in man["utterances"])
    print(f"{len(man['speakers'])} speakers, {n} utterances, {secs:.0f} s of 8 kHz audio in {a.out}")
    return 0 if len(man["speakers"]) >= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
