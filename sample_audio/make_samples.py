#!/usr/bin/env python3
"""Generate the synthetic demo support calls in sample_audio/.

Everything here is synthetic: the voices are offline text-to-speech
(flite and espeak-ng from Debian), the names, phone numbers, customer
numbers, card numbers and IBANs are fictional or well-known test values.

Not run by the build: the FLAC files and calls.json are committed.
Regenerate with (needs the apt packages espeak-ng and flite):

    .venv/bin/python sample_audio/make_samples.py

Output is deterministic for the same TTS versions (noise is seeded).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfiltfilt

OUT_DIR = Path(__file__).resolve().parent
SR = 8000  # telephone rate
NOISE_DBFS = -80.0  # rms of the line noise on every channel (low: keeps the FLACs small)
LEAD_IN_S = 0.8  # silence after "pick up" before the first word
TAIL_S = 0.8
ECHO_DB = -28.0  # each voice leaks into the other channel this far down (real lines: 20-35 dB)
ECHO_DELAY_S = 0.04


# ---------------------------------------------------------------- voices

@dataclass(frozen=True)
class Voice:
    engine: str  # "flite" | "espeak"
    name: str  # flite voice name or espeak-ng voice (+variant)
    speed: int | None = None  # espeak words per minute
    pitch: int | None = None  # espeak pitch 0..99
    stretch: float | None = None  # flite duration_stretch (>1 = slower)
    f0: float | None = None  # flite int_f0_target_mean (Hz)
    level_db: float = -20.0  # target active-speech rms, dBFS

    def but(self, **kw) -> "Voice":
        d = dict(self.__dict__)
        d.update(kw)
        return Voice(**d)


# Agents (E-0007 appears in two English calls, E-0012 in two Dutch calls).
AGENT_SARAH = Voice("flite", "slt", stretch=1.0)  # E-0007, English
AGENT_MARK = Voice("espeak", "nl+m3", speed=160, pitch=45)  # E-0012, Dutch
AGENT_SANNE = Voice("espeak", "nl+f2", speed=150, pitch=60)  # E-0015, Dutch
AGENT_RAVI = Voice("flite", "kal16", stretch=1.05)  # E-0021, English

# Callers: one voice each.
CALLER_ANGRY = Voice("flite", "rms", stretch=0.95, level_db=-27.0)
CALLER_CARD = Voice("flite", "awb", stretch=1.0)
CALLER_FAST = Voice("espeak", "en+m3", speed=235, pitch=18, level_db=-29.0)
CALLER_NL_INTERNET = Voice("espeak", "nl+f3", speed=165, pitch=55)
CALLER_NL_ELDERLY = Voice("espeak", "nl+grandpa", speed=115, pitch=30, level_db=-23.0)
CALLER_NL_BILLING = Voice("espeak", "nl+f4", speed=170, pitch=65, level_db=-22.0)


def synth(voice: Voice, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    """Run the TTS engine; return mono float audio and its sample rate."""
    txt = tmp / "in.txt"
    wav = tmp / "out.wav"
    txt.write_text(text + "\n", encoding="utf-8")
    if voice.engine == "flite":
        cmd = ["flite", "-voice", voice.name]
        if voice.stretch is not None:
            cmd += ["--setf", f"duration_stretch={voice.stretch}"]
        if voice.f0 is not None:
            cmd += ["--setf", f"int_f0_target_mean={voice.f0}"]
        cmd += ["-f", str(txt), "-o", str(wav)]
    elif voice.engine == "espeak":
        cmd = ["espeak-ng", "-v", voice.name]
        if voice.speed is not None:
            cmd += ["-s", str(voice.speed)]
        if voice.pitch is not None:
            cmd += ["-p", str(voice.pitch)]
        cmd += ["-f", str(txt), "-w", str(wav)]
    else:
        raise ValueError(voice.engine)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    audio, sr = sf.read(wav, dtype="float64", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return audio, sr


_BAND = butter(4, [300.0, 3400.0], btype="bandpass", fs=SR, output="sos")


def to_phone(audio: np.ndarray, sr: int, level_db: float) -> np.ndarray:
    """Resample to 8 kHz, band-limit 300-3400 Hz, trim silence, set level."""
    g = math.gcd(SR, sr)
    x = resample_poly(audio, SR // g, sr // g)
    x = sosfiltfilt(_BAND, x)
    # trim leading/trailing silence (10 ms frames, -40 dB below the peak frame)
    frame = SR // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    active = np.nonzero(rms > rms.max() * 10 ** (-40 / 20))[0]
    a = max(0, (active[0] - 2) * frame)
    b = min(len(x), (active[-1] + 3) * frame)
    x = x[a:b]
    # level: rms over the louder frames (active speech)
    fr = rms[active[0] : active[-1] + 1]
    loud = fr[fr > fr.max() * 10 ** (-30 / 20)]
    act_rms = float(np.sqrt(np.mean(loud**2)))
    x = x * (10 ** (level_db / 20) / act_rms)
    peak = np.abs(x).max()
    if peak > 0.89:
        x *= 0.89 / peak
    # short fades so the cuts do not click
    f = min(40, len(x) // 4)
    ramp = np.linspace(0.0, 1.0, f)
    x[:f] *= ramp
    x[-f:] *= ramp[::-1]
    return x


def mulaw_roundtrip(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """8-bit G.711-style mu-law encode + decode (telephone quantisation)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round(y * 127.0) / 127.0
    return np.sign(q) * ((1.0 + mu) ** np.abs(q) - 1.0) / mu


# ---------------------------------------------------------------- scripts

@dataclass
class Seg:
    text: str
    redact: str | None = None  # e.g. "card number" -> redactions entry
    objection: bool = False  # caller objects to training use here
    voice: Voice | None = None  # override the speaker's voice for this segment


@dataclass
class Turn:
    speaker: str  # "caller" | "agent"
    segs: list[Seg]
    pause_before: float | None = None  # seconds; default: random 0.35-0.9; negative: cuts in (overtalk)


def T(speaker: str, *parts, pause: float | None = None, voice: Voice | None = None) -> Turn:
    segs = []
    for p in parts:
        s = Seg(p) if isinstance(p, str) else p
        if voice is not None and s.voice is None:
            s.voice = voice
        segs.append(s)
    return Turn(speaker, segs, pause)


@dataclass
class Call:
    file: str
    seed: int
    caller: str
    agent: str
    channels: str  # "caller,agent" | "mixed"
    recorded_at: str
    basis: str
    language: str
    summary: str
    caller_voice: Voice
    agent_voice: Voice
    turns: list[Turn]
    # (first_turn, last_turn, title, tags, note) using 0-based turn indices
    clips: list[tuple[int, int, str, list[str], str]] = field(default_factory=list)


# shouting: faster, higher and 13 dB louder than the same caller calm (level and pitch rise together)
ANGRY = CALLER_ANGRY.but(stretch=0.85, f0=150.0, level_db=-14.0)

CALLS: list[Call] = [
    Call(
        file="call01_en_billing_abusive.flac",
        seed=101,
        caller="+44 7700 900123",
        agent="E-0007",
        channels="caller,agent",
        recorded_at="2026-03-17T14:22:05+00:00",
        basis="legitimate_interest",
        language="en",
        summary="Roaming charge dispute; caller becomes abusive, agent de-escalates and refunds in full.",
        caller_voice=CALLER_ANGRY,
        agent_voice=AGENT_SARAH,
        turns=[
            T("agent", "Good afternoon, Example Telecom, you're speaking with Sarah. How can I help you today?"),
            T("caller", "Hi. I've just opened my bill, and you've charged me forty pounds for roaming.",
              "I haven't been abroad in over a year."),
            T("agent", "I'm sorry to hear that. Let me pull up your account.",
              "Can you confirm the phone number you're calling about?"),
            T("caller", "It's the one I'm calling from."),
            T("agent", "Thank you. I can see roaming charges from the twelfth of March.",
              "It looks like your phone connected to a foreign network near the coast.", pause=2.6),
            T("caller", "That's not my problem. Just take it off."),
            T("agent", "I understand. I can refund half of it today, as a goodwill gesture."),
            T("caller", "Half? Are you kidding me? You people are absolute thieves.",
              "This is a useless, pathetic company.", voice=ANGRY, pause=-2.6),
            T("agent", "I can hear that you're frustrated, and I do want to sort this out.",
              "But please don't speak to me like that."),
            T("caller", "I'll speak to you however I like. You're an idiot, and I'm done with you.", voice=ANGRY,
              pause=-2.2),
            T("agent", "I'm going to refund the full forty pounds, and add a note to your account.",
              "Is there anything else I can help with?", pause=1.4),
            T("caller", "No. Just fix it."),
        ],
        clips=[
            (1, 5, "Roaming charge complaint", ["billing"],
             "Customer disputes a roaming charge; agent explains the cause."),
            (7, 9, "Customer turns abusive", ["abusive", "billing"],
             "Insults directed at the agent; useful for abuse-handling training."),
            (8, 10, "Setting a boundary and resolving", ["de-escalation", "abusive"],
             "Agent sets a boundary calmly and resolves with a full refund."),
        ],
    ),
    Call(
        file="call02_nl_internet_objection.flac",
        seed=202,
        caller="06-12345678",
        agent="E-0012",
        channels="caller,agent",
        recorded_at="2026-02-03T09:41:30+01:00",
        basis="legitimate_interest",
        language="nl",
        summary="Internet valt 's avonds uit; beller maakt bezwaar tegen gebruik voor training; nieuw modem wordt opgestuurd.",
        caller_voice=CALLER_NL_INTERNET,
        agent_voice=AGENT_MARK,
        turns=[
            T("agent", "Goedemorgen, klantenservice van Voorbeeld Telecom, u spreekt met Mark. Waarmee kan ik u helpen?"),
            T("caller", "Goedemorgen. Mijn internet valt steeds uit, vooral 's avonds."),
            T("agent", "Vervelend om te horen. Mag ik uw postcode en huisnummer?"),
            T("caller", Seg("Twaalf vierendertig A B, nummer vijf.", redact="address")),
            T("agent", "Dank u. Ik zie inderdaad storingen in uw wijk.",
              "Ik ga even een meting doen op uw modem."),
            T("caller", "O ja, en nog iets. Ik hoorde dat gesprekken worden opgenomen.",
              Seg("Ik wil niet dat dit gesprek voor training wordt gebruikt.", objection=True), pause=2.8),
            T("agent", "Dat is uw goed recht. Ik noteer het, en dit gesprek wordt niet voor training gebruikt."),
            T("caller", "Fijn, dank u."),
            T("agent", "De meting laat zien dat uw modem verouderd is.",
              "Ik stuur u kosteloos een nieuw modem op.", pause=1.5),
            T("caller", "Top. Wanneer komt die?"),
            T("agent", "Binnen twee werkdagen. Kan ik u verder nog ergens mee helpen?"),
            T("caller", "Nee, dat was het. Dag!"),
        ],
        clips=[
            (1, 4, "Storing melden", ["technical"],
             "Good troubleshooting opening - but the caller objects to training use later in the call, "
             "so this clip must be excluded."),
        ],
    ),
    Call(
        file="call03_en_card_payment.flac",
        seed=303,
        caller="C-10042",
        agent="E-0007",
        channels="caller,agent",
        recorded_at="2026-03-18T10:05:12+00:00",
        basis="contract",
        language="en",
        summary="Caller pays an overdue bill by card over the phone; name and (test) card details must be redacted.",
        caller_voice=CALLER_CARD,
        agent_voice=AGENT_SARAH,
        turns=[
            T("agent", "Example Telecom, Sarah speaking. How can I help?"),
            T("caller", "Hello. I'd like to pay my overdue bill by card, please."),
            T("agent", "Of course. Can I take the name on the card?"),
            T("caller", "Yes, it's", Seg("Peter Fairweather.", redact="name")),
            T("agent", "Thank you. And the long card number, please."),
            T("caller", "Sure. It's",
              Seg("four one one one, one one one one, one one one one, one one one one.", redact="card number")),
            T("agent", "And the expiry date, and the three digit security code?"),
            T("caller", "Expiry is", Seg("twelve, twenty eight.", redact="card expiry"),
              "And the code is", Seg("one two three.", redact="card security code")),
            T("agent", "Thank you. That's a payment of fifty six pounds twenty. Shall I go ahead?"),
            T("caller", "Yes please."),
            T("agent", "That's gone through. Your reference is P for papa, seven seven two.",
              "Is there anything else?", pause=2.5),
            T("caller", "No, that's all. Thanks."),
            T("agent", "Thanks for calling. Goodbye."),
        ],
        clips=[
            (2, 9, "Taking a card payment", ["billing", "payment"],
             "Contains the customer's name and card details; play only with the redactions applied."),
        ],
    ),
    Call(
        file="call04_nl_elderly_tv.flac",
        seed=404,
        caller="06-12345612",
        agent="E-0015",
        channels="caller,agent",
        recorded_at="2026-01-22T15:10:48+01:00",
        basis="consent",
        language="nl",
        summary="Verwarde oudere klant; tv-kastje werkt niet; medewerker helpt geduldig met herstarten. Toestemming gevraagd en gegeven.",
        caller_voice=CALLER_NL_ELDERLY,
        agent_voice=AGENT_SANNE,
        turns=[
            T("agent", "Goedemiddag, klantenservice Voorbeeld Telecom, met Sanne.",
              "Voordat we beginnen: mag ik dit gesprek opnemen om onze medewerkers te trainen?"),
            T("caller", "Eh... ja, dat is goed hoor.", pause=1.2),
            T("agent", "Dank u wel. Waarmee kan ik u helpen?"),
            T("caller", "Ja, kijk, mijn kleinzoon heeft zo'n nieuw telefoontje voor me gekocht.",
              "En nu doet de televisie het niet meer."),
            T("agent", "Dat gaan we samen bekijken. Ziet u een kastje onder de televisie, met lampjes?"),
            T("caller", "Een kastje? Wacht even, ik moet mijn bril pakken."),
            T("caller", "Ja, er is een kastje. Er brandt een rood lampje.", pause=9.0),  # looking for the glasses
            T("agent", "Prima. Wilt u de stekker van dat kastje eruit halen,",
              "tien tellen wachten, en hem er weer in doen?"),
            T("caller", "De stekker eruit... en dan weer erin. Zo?"),
            T("agent", "Heel goed. Ziet u nu een groen lampje?", pause=7.5),  # the box restarts
            T("caller", "Ja! Hij is groen. Ik zie het nieuws weer."),
            T("agent", "Fijn, dan is het opgelost. Heeft u verder nog vragen?"),
            T("caller", "Nee hoor. Dank u wel, meisje, u bent een schat."),
        ],
        clips=[
            (3, 10, "Geduldig helpen van een oudere klant", ["elderly", "technical"],
             "Agent guides a confused elderly customer step by step through restarting the TV box."),
        ],
    ),
    Call(
        file="call05_en_fast_sim.flac",
        seed=505,
        caller="+44 7700 900456",
        agent="E-0021",
        channels="caller,agent",
        recorded_at="2026-04-09T17:48:20+01:00",
        basis="consent",
        language="en",
        summary="Fast, quiet, low-voiced caller with no mobile signal; agent asks them to slow down and sends a new SIM.",
        caller_voice=CALLER_FAST,
        agent_voice=AGENT_RAVI,
        turns=[
            T("agent", "Thank you for calling Example Telecom, this is Ravi.",
              "With your permission, this call will be recorded for training. Is that okay?"),
            T("caller", "Yeah yeah that's fine look my phone's been dead since Tuesday, no signal, nothing,"
                        " and I've got work calls coming in all day."),
            T("agent", "Sorry, I didn't quite catch that. Could you speak a little slower, please?"),
            T("caller", "No signal. Since Tuesday. The phone says emergency calls only.",
              voice=CALLER_FAST.but(speed=190, level_db=-26.0)),
            T("agent", "Thank you. Emergency calls only usually means the SIM card isn't being recognised.",
              "Have you tried restarting the phone?"),
            T("caller", "Yeah done that twice, took the sim out, blew on it, put it back in, same thing, nothing."),
            T("agent", "Okay. I'll send a replacement SIM card to your address today.",
              "It should arrive tomorrow morning.", pause=1.6),
            T("caller", "Tomorrow, right, cheers mate."),
        ],
        clips=[
            (1, 3, "Caller hard to understand", ["hard-to-understand"],
             "Fast, quiet, low-pitched speech; agent politely asks the caller to slow down."),
            (4, 6, "SIM not recognised", ["technical"],
             "Standard diagnosis and replacement SIM."),
        ],
    ),
    Call(
        file="call06_nl_mono_incasso.flac",
        seed=606,
        caller="06-12345690",
        agent="E-0012",
        channels="mixed",
        recorded_at="2026-02-11T11:30:00+01:00",
        basis="contract",
        language="nl",
        summary="Mono-opname: klant wijzigt IBAN voor incasso en klaagt over dubbele afschrijving; medewerker biedt excuses en terugbetaling.",
        caller_voice=CALLER_NL_BILLING,
        agent_voice=AGENT_MARK,
        turns=[
            T("agent", "Goedemiddag, Voorbeeld Telecom, u spreekt met Mark."),
            T("caller", "Hallo, met", Seg("Fatima Jansen.", redact="name"),
              "Ik wil mijn rekeningnummer wijzigen voor de automatische incasso."),
            T("agent", "Dat kan. Wat is het nieuwe rekeningnummer?"),
            T("caller", "Het is",
              Seg("N L een en negentig, A B N A, nul vier een zeven, een zes vier drie, nul nul.", redact="IBAN")),
            T("agent", "Dank u, ik heb het genoteerd. De wijziging gaat in vanaf de volgende factuur.", pause=1.8),
            T("caller", "En vorige maand is er twee keer afgeschreven. Dat is toch belachelijk!",
              voice=CALLER_NL_BILLING.but(speed=185, pitch=75, level_db=-19.0)),
            T("agent", "Dat klopt, daar is bij ons iets fout gegaan. Mijn excuses.",
              "Het dubbele bedrag wordt binnen vijf werkdagen teruggestort."),
            T("caller", "Oké. Nou, dat is dan netjes opgelost."),
            T("agent", "Kan ik u verder nog ergens mee helpen?"),
            T("caller", "Nee, dank u. Fijne dag."),
        ],
        clips=[
            (5, 7, "Dubbele afschrijving rechtzetten", ["billing", "de-escalation"],
             "Agent acknowledges the error, apologises and offers a refund; mono recording."),
        ],
    ),
]


# ---------------------------------------------------------------- assembly

def _r(x: float) -> float:
    return round(float(x), 2)


def build(call: Call, tmp: Path) -> dict:
    rng = np.random.default_rng(call.seed)
    pieces: list[tuple[str, int, np.ndarray]] = []  # (speaker, start sample, audio)
    transcript, redactions = [], []
    objection = None
    turn_spans: list[tuple[float, float]] = []
    t = int(LEAD_IN_S * SR)
    for i, turn in enumerate(call.turns):
        if i > 0:
            gap = turn.pause_before if turn.pause_before is not None else rng.uniform(0.35, 0.9)
            t += int(round(gap * SR))
        base = call.caller_voice if turn.speaker == "caller" else call.agent_voice
        t_start = t
        for j, seg in enumerate(turn.segs):
            if j > 0:
                t += int(round(rng.uniform(0.15, 0.3) * SR))
            v = seg.voice or base
            audio, sr = synth(v, seg.text, tmp)
            x = to_phone(audio, sr, v.level_db)
            pieces.append((turn.speaker, t, x))
            s0, s1 = t / SR, (t + len(x)) / SR
            if seg.redact:
                redactions.append({"start_s": math.floor(s0 * 100) / 100,
                                   "end_s": math.ceil(s1 * 100) / 100, "what": seg.redact})
            if seg.objection:
                objection = {"party": "caller", "at_s": _r(s0), "purpose": "training"}
            t += len(x)
        turn_spans.append((t_start / SR, t / SR))
        transcript.append({"speaker": turn.speaker, "start_s": _r(t_start / SR), "end_s": _r(t / SR),
                           "text": " ".join(s.text for s in turn.segs)})
    n = t + int(TAIL_S * SR)
    duration = n / SR

    stereo = call.channels == "caller,agent"
    nch = 2 if stereo else 1
    out = np.zeros((n, nch))
    delay = int(round(ECHO_DELAY_S * SR))
    for speaker, start, x in pieces:
        ch = (0 if speaker == "caller" else 1) if stereo else 0
        out[start : start + len(x), ch] += x
        if stereo:  # the line's echo: the voice, faint and late, on the other channel
            end = min(n, start + delay + len(x))
            out[start + delay : end, 1 - ch] += 10 ** (ECHO_DB / 20) * x[: end - start - delay]
    # line noise: band-limited white noise + faint low-frequency wander, per channel
    for ch in range(nch):
        noise = sosfiltfilt(_BAND, rng.standard_normal(n))
        noise *= 10 ** (NOISE_DBFS / 20) / np.sqrt(np.mean(noise**2))
        out[:, ch] += noise
        out[:, ch] = mulaw_roundtrip(out[:, ch])
    out = np.clip(out, -1.0, 1.0)

    tmpfile = OUT_DIR / (call.file + ".tmp")
    sf.write(tmpfile, out if stereo else out[:, 0], SR, format="FLAC", subtype="PCM_16",
             compression_level=1.0)
    os.replace(tmpfile, OUT_DIR / call.file)

    clips = []
    for a, b, title, tags, note in call.clips:
        s0 = max(0.0, turn_spans[a][0] - 0.4)
        s1 = min(duration, turn_spans[b][1] + 0.4)
        clips.append({"start_s": _r(s0), "end_s": _r(s1), "title": title, "tags": tags, "note": note})

    print(f"{call.file}: {duration:.2f} s, {nch} ch, {len(transcript)} turns", file=sys.stderr)
    return {
        "file": call.file,
        "caller": call.caller,
        "agent": call.agent,
        "channels": call.channels,
        "recorded_at": call.recorded_at,
        "basis": call.basis,
        "language": call.language,
        "summary": call.summary,
        "transcript": transcript,
        "suggested_clips": clips,
        "redactions": redactions,
        "objection": objection,
    }


def main() -> None:
    for tool in ("flite", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install -y espeak-ng flite")
    manifest = []
    with tempfile.TemporaryDirectory() as d:
        for call in CALLS:
            manifest.append(build(call, Path(d)))
    tmp = OUT_DIR / "calls.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, OUT_DIR / "calls.json")


if __name__ == "__main__":
    main()
