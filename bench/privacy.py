#!/usr/bin/env python3
"""Privacy benchmark for clipkit's voice anonymization: can a speaker-verification attacker
still link an anonymized voice to the original speaker?

Setup (once; its OWN venv, never the app's .venv; torch is installed FIRST from the CPU
wheel on disk so pip never pulls a multi-GB CUDA build):

    python3 bench/privacy.py --setup
    # which does, roughly:
    #   apt-get install -y flite festival espeak-ng festvox-...   (make_voices.APT_PACKAGES)
    #   python3 -m venv bench/.venv-privacy
    #   bench/.venv-privacy/bin/pip install /opt/wheels/torch-2.13.0+cpu-*.whl   (torch==2.13.0, CPU)
    #   bench/.venv-privacy/bin/pip install -r bench/requirements-privacy.txt
    #   bench/.venv-privacy/bin/python bench/make_voices.py      (voices -> bench/.cache/voices/)

Run (any python3: the script re-executes itself in bench/.venv-privacy):

    python3 bench/privacy.py            # full run, ~7-8 min on 2 cores -> bench/results/privacy.{md,json}
    python3 bench/privacy.py --quick    # ~4 min smoke run -> bench/results/privacy-quick.{md,json}

What it measures (see bench/README-privacy.md):
  attacker = resemblyzer d-vector (GE2E) speaker verification, audio upsampled 8 -> 16 kHz.
  Each speaker gets a party pseudonym; anonymization uses
  derive_voice(secret_A, voice_id=pseudonym, role="caller"). Five attackers per method:
   (a) ignorant      enrol on original voice, trial = anonymized
   (b) lazy-informed enrol on the same method under a different installation key (secret_B)
   (c) shift-back    trial pitch-shifted by every integer -8..+8 st and by the shift that aligns its
                     median F0 with the claimed speaker's original median F0; best score vs original
   (d) multi-key     enrol under four other installation keys; best score
   (e) sweep         enrol on original pitch-shifted -8..+8 st; best score
  EER with a two-level (speakers, then trials) bootstrap 95 % interval; rhoF0 = Pearson correlation
  of pYIN F0 (original vs anonymized, frames voiced in both, per utterance, averaged); WER from
  pocketsphinx (English real-speaker voices only; coarse).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Single-threaded BLAS/torch: resemblyzer is erratic with multithreaded BLAS on 2 cores. We
# parallelise with processes instead. Must be set before numpy/torch are imported.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv-privacy"
VENV_PY = VENV / "bin" / "python"
CACHE = HERE / ".cache"
os.environ.setdefault("NUMBA_CACHE_DIR", str(CACHE / "numba"))


def _in_bench_venv() -> bool:
    import importlib.util

    return importlib.util.find_spec("resemblyzer") is not None and importlib.util.find_spec("pocketsphinx") is not None


def reexec_in_bench_venv(script: str) -> None:
    """For the bench scripts built on this one: run ``script`` again inside bench/.venv-privacy if not there yet."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[name] = "1"
    if _in_bench_venv():
        return
    if not VENV_PY.exists():
        sys.exit("bench/.venv-privacy is missing: run `python3 bench/privacy.py --setup` first")
    os.execv(str(VENV_PY), [str(VENV_PY), script, *sys.argv[1:]])


if __name__ == "__main__" and "--setup" not in sys.argv and not _in_bench_venv():
    if VENV_PY.exists():
        os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
    sys.exit(f"bench venv {VENV} missing: run `python3 {__file__} --setup` first")

import argparse  # noqa: E402
import ast  # noqa: E402
import datetime as _dt  # noqa: E402
import glob  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402

SR = 8000
SR_SV = 16000  # resemblyzer and pocketsphinx want 16 kHz
SHIFTS = list(range(-8, 9))
TORCH_VERSION = "2.13.0"
ATTACKS = [
    ("a", "ignorant"),
    ("b", "lazy-informed"),
    ("c", "shift-back"),
    ("d", "multi-key"),
    ("e", "sweep"),
]
DEFAULT_METHODS = ["none", "fixed+4", "pitch", "strong"]
DEFAULT_SEED = "clipkit-privacy-bench-v1"
TARGET_EER = 0.35
TARGET_RHO = 0.7


# ----------------------------------------------------------------------------- setup


def _sh(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def _find_cpu_torch_wheel() -> str | None:
    dirs = ["/opt/wheels"]
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "find-links" in line:
                dirs += line.split("=", 1)[1].strip().strip("'\"").split()
    except Exception:
        pass
    dirs += os.environ.get("PIP_FIND_LINKS", "").split()
    for d in dirs:
        d = d.removeprefix("file://")
        hits = sorted(glob.glob(os.path.join(d, f"torch-{TORCH_VERSION}+cpu-*.whl")))
        if hits:
            return hits[-1]
    return None


def apt_packages() -> list[str]:
    """``make_voices.APT_PACKAGES``, read without importing make_voices.

    Setup runs under the system Python, before the bench venv exists, and make_voices needs that
    venv's numpy and soundfile; a fresh machine has neither.
    """
    tree = ast.parse((HERE / "make_voices.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "APT_PACKAGES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("bench/make_voices.py defines no APT_PACKAGES list")


def setup(allow_torch_download: bool = False) -> int:
    """Install the voices (apt), the bench venv (torch first, CPU wheel), the voices cache, numba cache."""
    missing = [p for p in apt_packages()
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            _sh(["apt-get", "update", "-qq"], env=env)
            _sh(["apt-get", "install", "-y", "-qq", *missing], env=env)
        else:
            print(f"WARNING: missing Debian packages {missing}; install them (as root): "
                  f"apt-get install -y {' '.join(missing)}", file=sys.stderr)
    if not VENV_PY.exists():
        _sh([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(VENV_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    have_torch = subprocess.run([str(VENV_PY), "-c", f"import torch,sys; sys.exit(torch.__version__.split('+')[0] != '{TORCH_VERSION}')"],
                                capture_output=True).returncode == 0
    if not have_torch:
        whl = _find_cpu_torch_wheel()
        if whl:
            _sh([*pip, whl])
        elif allow_torch_download:
            _sh([*pip, f"torch=={TORCH_VERSION}"])
        else:
            print(f"ERROR: no local CPU wheel torch-{TORCH_VERSION}+cpu-*.whl found (looked in /opt/wheels and pip's "
                  "find-links). Refusing to let pip fetch torch from PyPI (a multi-GB CUDA build on Linux). "
                  "Re-run with --allow-torch-download to accept that.", file=sys.stderr)
            return 2
    _sh([*pip, "-r", str(HERE / "requirements-privacy.txt")])
    _sh([str(VENV_PY), str(HERE / "make_voices.py")])
    # warm numba's on-disk cache (librosa pitch_shift / pyin JIT ~15 s cold)
    _sh([str(VENV_PY), "-W", "ignore", "-c",
         "import numpy as np, librosa; y=np.random.randn(8000).astype('float32')*0.1;"
         "librosa.effects.pitch_shift(y, sr=8000, n_steps=2, n_fft=512);"
         "librosa.pyin(y, fmin=50, fmax=600, sr=8000, frame_length=1024, hop_length=160, resolution=0.2)"],
        env=dict(os.environ, NUMBA_CACHE_DIR=str(CACHE / "numba")))
    print("bench privacy setup OK")
    return 0


# ----------------------------------------------------------------------------- anonymizer


def pseudonym(secret: bytes, canonical: str) -> str:
    """Same construction as clipkit.parties.pseudonym (kept local: parties needs sqlite-utils)."""
    return hmac.new(secret, b"party:" + canonical.encode(), hashlib.sha256).hexdigest()


class _StandIn:
    """Used only while clipkit/anonymize.py does not exist: keyed plain pitch shift, 3..6 st up or down.

    Both "pitch" and "strong" map to it, and every report says STAND-IN.
    """

    METHODS = ("pitch", "strong")
    source = "STAND-IN (bench/privacy.py keyed librosa pitch_shift; NOT clipkit)"

    @staticmethod
    def derive_voice(secret: bytes, *, voice_id: str, role: str) -> dict:
        h = hmac.new(secret, f"voice:{role}:{voice_id}".encode(), hashlib.sha256).digest()
        mag = 3.0 + 3.0 * h[0] / 255.0
        return {"semitones": mag if h[1] & 1 else -mag}

    @staticmethod
    def anonymize(y, *, sr: int = SR, voice: dict, method: str = "strong"):
        import librosa
        import numpy as np

        return librosa.effects.pitch_shift(np.asarray(y, dtype=np.float32), sr=sr, n_steps=voice["semitones"],
                                           n_fft=512).astype(np.float32)


def anonymizer_files() -> list[Path]:
    """The real anonymizer's source files (module or package), [] while it does not exist yet."""
    mod, pkg = REPO / "clipkit" / "anonymize.py", REPO / "clipkit" / "anonymize"
    if mod.exists():
        return [mod]
    if (pkg / "__init__.py").exists():
        return sorted(pkg.rglob("*.py"))
    return []


def load_anonymizer(force_stand_in: bool = False):
    """Return an object with derive_voice, anonymize, METHODS, source."""
    files = anonymizer_files()
    if force_stand_in or not files:
        return _StandIn()
    import importlib
    import types

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        mod = importlib.import_module("clipkit.anonymize")
    except ImportError:
        # clipkit/__init__ may import app deps the bench venv lacks: load the subpackage without it
        for k in [k for k in sys.modules if k == "clipkit" or k.startswith("clipkit.")]:
            del sys.modules[k]
        pkg = types.ModuleType("clipkit")
        pkg.__path__ = [str(REPO / "clipkit")]
        sys.modules["clipkit"] = pkg
        mod = importlib.import_module("clipkit.anonymize")
    where = "clipkit/anonymize.py" if files[0].name == "anonymize.py" else "clipkit/anonymize/"
    mod.source = f"{where} (sha256 {_current_source()})"
    if not hasattr(mod, "METHODS"):
        mod.METHODS = ("pitch", "strong")
    return mod


# ----------------------------------------------------------------------------- worker side

_W: dict = {}


def _winit(utts: list[dict], voices_dir: str, secrets: dict, stand_in: bool) -> None:
    warnings.filterwarnings("ignore")
    import numpy as np
    import soundfile as sf
    import torch

    torch.set_num_threads(1)
    from resemblyzer import VoiceEncoder

    _W["enc"] = VoiceEncoder("cpu", verbose=False)
    _W["audio"] = [sf.read(os.path.join(voices_dir, u["file"]), dtype="float32")[0] for u in utts]
    _W["utts"] = utts
    _W["secrets"] = secrets
    _W["anon"] = load_anonymizer(stand_in)
    _W["src"] = "stand-in"
    if not stand_in:
        # import the package's lazily-imported submodules now, so the code used is the code hashed
        import importlib

        before = _current_source()
        for f in anonymizer_files():
            if f.parent.name == "anonymize" and f.stem not in ("__init__", "__main__"):
                try:
                    importlib.import_module(f"clipkit.anonymize.{f.stem}")
                except Exception:
                    pass
        after = _current_source()
        _W["src"] = after if after == before else f"{before}->{after}(changed while loading)"
    _W["cache"] = {}
    _W["contract"] = []
    _W["np"] = np


def _pitch_shift(y, st: float):
    import librosa

    if st == 0:
        return y
    return librosa.effects.pitch_shift(y, sr=SR, n_steps=float(st), n_fft=512).astype("float32")


def _anon(method: str, key: str, u: int):
    np = _W["np"]
    ck = (method, key, u)
    if ck in _W["cache"]:
        return _W["cache"][ck]
    y = _W["audio"][u]
    if method == "none":
        out = y
    elif method == "fixed+4":
        out = _pitch_shift(y, 4)
    else:
        secret = _W["secrets"][key]
        an = _W["anon"]
        voice = an.derive_voice(secret, voice_id=pseudonym(secret, _W["utts"][u]["speaker"]), role="caller")
        out = an.anonymize(y.copy(), sr=SR, voice=voice, method=method)
        out = np.asarray(out)
        problems = []
        if out.dtype != np.float32:
            problems.append(f"dtype {out.dtype}")
        if out.shape != y.shape:
            problems.append(f"shape {out.shape} != {y.shape}")
        if not np.all(np.isfinite(out)):
            problems.append("non-finite samples")
        if problems:
            _W["contract"].append(f"{method}: " + ", ".join(problems))
        out = np.nan_to_num(out.astype(np.float32).reshape(-1))
        if len(out) < len(y):
            out = np.pad(out, (0, len(y) - len(out)))
        out = out[: len(y)]
    if len(_W["cache"]) > 4000:
        _W["cache"].clear()
    _W["cache"][ck] = out
    return out


def _render(spec: tuple, u: int):
    kind = spec[0]
    if kind == "orig":
        return _W["audio"][u]
    if kind == "shift":
        return _pitch_shift(_W["audio"][u], spec[1])
    if kind == "anon":
        return _anon(spec[1], spec[2], u)
    if kind == "anon_shift":
        return _pitch_shift(_anon(spec[1], spec[2], u), spec[3])
    raise ValueError(spec)


def _to16k(y):
    import soxr

    return soxr.resample(y.astype("float32"), SR, SR_SV, quality="HQ")


def _embed(y):
    from resemblyzer import preprocess_wav

    np = _W["np"]
    w = preprocess_wav(_to16k(y), source_sr=SR_SV)
    if len(w) < SR_SV // 2:  # VAD trimmed almost everything: embed the raw upsampled clip
        w = _to16k(y)
    e = _W["enc"].embed_utterance(w)
    return (e / (np.linalg.norm(e) + 1e-9)).astype(np.float32)


def _f0(y):
    import librosa

    # 128 ms frames and a looser voicing prior (beta 2,10) than librosa's default (2,18): with the default,
    # pYIN marks most frames of the low, band-limited diphone voices (kal16, pc) unvoiced.
    f, v, _ = librosa.pyin(y, fmin=50, fmax=600, sr=SR, frame_length=1024, hop_length=160, resolution=0.2,
                           beta_parameters=(2, 10))
    f = f.astype("float32")
    f[~v] = float("nan")
    return f


def _asr(y) -> str:
    from pocketsphinx import Decoder

    np = _W["np"]
    x = _to16k(y)
    x = (np.clip(x / (np.abs(x).max() + 1e-9) * 0.7, -1, 1) * 32767).astype(np.int16)
    d = Decoder(samprate=SR_SV, loglevel="FATAL")  # fresh decoder per utterance: no carried-over state
    d.start_utt()
    d.process_raw(x.tobytes(), full_utt=True)
    d.end_utt()
    h = d.hyp()
    return h.hypstr if h is not None else ""


def _work(kind: str, specs: list, pairs: list[tuple[int, int]]):
    """kind: emb | f0 | asr. pairs: (utterance, spec index). Returns list of results + contract notes."""
    fn = {"emb": _embed, "f0": _f0, "asr": _asr}[kind]
    t = time.process_time()
    out = [fn(_render(specs[si], u)) for u, si in pairs]
    notes, _W["contract"] = _W["contract"], []
    if not isinstance(_W["anon"], _StandIn):
        notes.append(f"source:{_W['src']}")
    return out, notes, time.process_time() - t


def _current_source() -> str:
    h = hashlib.sha256()
    for f in anonymizer_files():
        h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


# ----------------------------------------------------------------------------- scoring


def eer(gen, imp) -> float:
    import numpy as np

    gen, imp = np.asarray(gen, float), np.asarray(imp, float)
    s = np.concatenate([gen, imp])
    lab = np.concatenate([np.ones(len(gen)), np.zeros(len(imp))])
    o = np.argsort(-s, kind="mergesort")
    s, lab = s[o], lab[o]
    # accept the top k (k = 0..N); take only cut points between distinct scores
    tp = np.concatenate([[0], np.cumsum(lab)])
    fp = np.concatenate([[0], np.cumsum(1 - lab)])
    keep = np.concatenate([[True], s[1:] != s[:-1], [True]])
    far = fp[keep] / len(imp)
    frr = 1 - tp[keep] / len(gen)
    d = far - frr  # non-decreasing
    k = int(np.searchsorted(d, 0.0))
    if k == 0:
        return float(frr[0])
    if k >= len(d):
        return float(far[-1])
    w = -d[k - 1] / (d[k] - d[k - 1])
    return float((far[k - 1] + w * (far[k] - far[k - 1]) + frr[k - 1] + w * (frr[k] - frr[k - 1])) / 2)


def split_scores(sc):
    """sc: (S, U, S) trial speaker x trial utterance x claimed speaker -> genuine, impostor arrays."""
    import numpy as np

    S = sc.shape[0]
    gm = np.eye(S, dtype=bool)[:, None, :].repeat(sc.shape[1], axis=1)
    return sc[gm], sc[~gm]


def bootstrap_eer(sc, n: int, seed: int):
    """Two-level bootstrap: resample speakers (as trial speakers and claimants), then each speaker's trials."""
    import numpy as np

    rng = np.random.default_rng(seed)
    S, U, _ = sc.shape
    vals = []
    for _ in range(n):
        spk = rng.integers(S, size=S)
        utt = rng.integers(U, size=(S, U))
        sub = sc[spk[:, None], utt][:, :, spk]  # (S, U, S)
        same = spk[:, None] == spk[None, :]
        if same.all():
            continue
        gm = same[:, None, :].repeat(U, axis=1)
        vals.append(eer(sub[gm], sub[~gm]))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def enrol(E):
    """E: (S, U, D) unit embeddings -> (S, U, D): speaker s's enrolment excluding sentence i (leave-one-out)."""
    import numpy as np

    tot = E.sum(axis=1, keepdims=True)
    en = tot - E
    return en / (np.linalg.norm(en, axis=-1, keepdims=True) + 1e-9)


def cos_scores(T, EN):
    """T: (S, U, D) trials; EN: (S, U, D) enrolments (excl. sentence i) -> (S_trial, U, S_claim)."""
    import numpy as np

    return np.einsum("tid,sid->tis", T, EN)


def rho_f0(f_o, f_a, min_frames: int = 10):
    """Pearson r of two F0 contours (Hz, NaN = unvoiced) on frames voiced in both.

    Returns (r on log-F0 with tracker octave errors removed, r on raw Hz); None where < min_frames.
    An octave error = a frame more than 9 semitones from its own contour's median; such frames are
    dropped (in either contour) before the headline r, since one pYIN octave jump dominates Pearson.
    """
    import numpy as np

    n = min(len(f_o), len(f_a))
    f_o, f_a = f_o[:n], f_a[:n]
    ok = np.isfinite(f_o) & np.isfinite(f_a)
    if ok.sum() < min_frames:
        return None, None

    def r(x, y):
        return float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else None

    raw = r(f_o[ok], f_a[ok])
    so = 12 * np.log2(f_o[ok] / np.median(f_o[ok]))
    sa = 12 * np.log2(f_a[ok] / np.median(f_a[ok]))
    keep = (np.abs(so) <= 9) & (np.abs(sa) <= 9)
    if keep.sum() < min_frames:
        return None, raw
    return r(so[keep], sa[keep]), raw


def words(t: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", t.lower().replace("-", " ")).split()


def edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# ----------------------------------------------------------------------------- main run


def run(a) -> int:
    warnings.filterwarnings("ignore")
    import concurrent.futures as cf
    import multiprocessing as mp

    import numpy as np

    sys.path.insert(0, str(HERE))
    import make_voices

    t0 = time.time()
    man = make_voices.make(a.voices)
    anon = load_anonymizer(a.stand_in)
    stand_in = isinstance(anon, _StandIn)
    methods_avail = list(getattr(anon, "METHODS", ("pitch", "strong")))
    methods = [m for m in a.methods if m in ("none", "fixed+4") or m in methods_avail]
    skipped_methods = [m for m in a.methods if m not in methods]

    n_utt = a.utterances or (6 if a.quick else 8)
    shifts = SHIFTS[::2] if a.quick else SHIFTS
    n_boot = a.bootstrap or (300 if a.quick else 1000)
    # the ten voices this bench has always scored (continuity); the trained attacker uses all
    speakers = [s for s, v in man["speakers"].items() if v.get("core", True)]
    if a.speakers:
        speakers = [s for s in speakers if s in a.speakers]
    by_spk = {s: sorted([u for u in man["utterances"] if u["speaker"] == s], key=lambda u: u["index"])[:n_utt]
              for s in speakers}
    U = min(len(v) for v in by_spk.values())
    utts = [u for s in speakers for u in by_spk[s][:U]]
    S = len(speakers)
    uid = {(u["speaker"], u["index"]): k for k, u in enumerate(utts)}
    grid = np.array([[uid[(s, i)] for i in range(U)] for s in speakers])  # (S, U) -> utterance id
    wer_spk = [s for s in speakers if man["speakers"][s]["lang"] == "en" and man["speakers"][s]["engine"] != "espeak"]
    if a.quick:
        wer_spk = wer_spk[:3]
    n_wer = a.wer_utterances or (2 if a.quick else 4)
    wer_utts = [uid[(s, i)] for s in wer_spk for i in range(min(U, n_wer))]
    if a.no_wer:
        wer_utts = []

    base = a.seed.encode()
    secrets = {k: hashlib.sha256(base + b"/install/" + k.encode()).digest() for k in ("A", "B", "C1", "C2", "C3", "C4")}
    multi_keys = ["C1", "C2", "C3", "C4"]
    anon_methods = [m for m in methods if m != "none"]

    print(f"[privacy] anonymizer: {anon.source}", file=sys.stderr)
    print(f"[privacy] {S} speakers x {U} utterances; methods {methods}; shifts {shifts[0]}..{shifts[-1]} "
          f"step {shifts[1] - shifts[0]}; bootstrap {n_boot}; jobs {a.jobs}", file=sys.stderr)

    # ---- job specs
    specs: list[tuple] = [("orig",)]
    sid = {("orig",): 0}

    def spec(t: tuple) -> int:
        if t not in sid:
            sid[t] = len(specs)
            specs.append(t)
        return sid[t]

    for st in shifts:
        spec(("shift", st) if st else ("orig",))
    for m in anon_methods:
        for k in ["A", "B", *multi_keys]:
            spec(("anon", m, k))
        for st in shifts:
            spec(("anon_shift", m, "A", st) if st else ("anon", m, "A"))

    ctx = mp.get_context("spawn")
    ex = cf.ProcessPoolExecutor(max_workers=a.jobs, mp_context=ctx, initializer=_winit,
                                initargs=(utts, str(a.voices), secrets, a.stand_in))
    futs: dict = {}
    contract: set[str] = set()

    def submit(kind: str, spec_ids: list[int], uids: list[int], tag):
        pairs = [(u, si) for si in spec_ids for u in uids]
        chunk = max(1, min(len(pairs), 24 if kind == "emb" else 8))
        for i in range(0, len(pairs), chunk):
            f = ex.submit(_work, kind, specs, pairs[i:i + chunk])
            futs[f] = (kind, tag, pairs[i:i + chunk])

    all_u = list(range(len(utts)))
    # F0 first (phase 2 depends on it), then ASR (long jobs), then embeddings
    submit("f0", [0] + [sid[("anon", m, "A")] for m in anon_methods], all_u, "f0")
    if wer_utts:
        submit("asr", [0] + [sid[("anon", m, "A")] for m in anon_methods], wer_utts, "asr")
    submit("emb", list(range(len(specs))), all_u, "emb")

    results: dict = {"emb": {}, "f0": {}, "asr": {}}
    try:
        _collect(futs, results, specs, contract, t0, lambda: _submit_f0_aligned(
            results, specs, spec, grid, anon_methods, submit, speakers, U))
    finally:  # also on Ctrl-C / SIGTERM: do not leave workers behind
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()


    # ---- scores
    def E(t: tuple):
        return np.stack([[results["emb"][(grid[s, i], t)] for i in range(U)] for s in range(S)])

    E0 = E(("orig",))
    EN0 = enrol(E0)
    sweep_en = [enrol(E(("shift", st) if st else ("orig",))) for st in shifts]
    cells: dict = {}

    def cell(m, att, sc, extra=None):
        g, i = split_scores(sc)
        lo, hi = bootstrap_eer(sc, n_boot, seed=zlib.crc32(f"{m}/{att}".encode()))
        cells[(m, att)] = dict(eer=eer(g, i), ci95=[lo, hi], n_genuine=int(g.size), n_impostor=int(i.size),
                               mean_genuine=float(g.mean()), mean_impostor=float(i.mean()), **(extra or {}))

    cell("none", "a", cos_scores(E0, EN0))
    best_shift_hist = {}
    for m in anon_methods:
        TA = E(("anon", m, "A"))
        cell(m, "a", cos_scores(TA, EN0))
        cell(m, "b", cos_scores(TA, enrol(E(("anon", m, "B")))))
        # (c) shift-back: integer shifts of the trial + F0-aligned shift per claimant
        stack = np.stack([cos_scores(E(("anon_shift", m, "A", st) if st else ("anon", m, "A")), EN0) for st in shifts])
        f0al = np.empty((S, U, S), np.float32)
        for t in range(S):
            for i in range(U):
                for s in range(S):
                    st = _F0_SHIFT[(m, t, i, s)]
                    e = results["emb"][(grid[t, i], ("anon_shift", m, "A", st) if st else ("anon", m, "A"))]
                    f0al[t, i, s] = float(e @ EN0[s, i])
        allc = np.concatenate([stack, f0al[None]], axis=0)
        sc_c = allc.max(axis=0)
        arg = allc.argmax(axis=0)
        labels = [f"{st:+d}" for st in shifts] + ["F0-align"]
        gen_arg = [labels[arg[t, i, t]] for t in range(S) for i in range(U)]
        best_shift_hist[m] = {k: gen_arg.count(k) for k in labels if gen_arg.count(k)}
        cell(m, "c", sc_c, {"genuine_best_variant": best_shift_hist[m]})
        # (d) multi-key
        per_key = [cos_scores(TA, enrol(E(("anon", m, k)))) for k in multi_keys]
        cell(m, "d", np.max(per_key, axis=0),
             {"single_key_eer": {k: eer(*split_scores(sk)) for k, sk in zip(multi_keys, per_key)}})
        # (e) sweep
        cell(m, "e", np.max([cos_scores(TA, en) for en in sweep_en], axis=0))

    # ---- rhoF0
    rho: dict = {"none": 1.0}
    rho_detail: dict = {}
    spread = []  # the originals' intonation range: F0 s.d. in semitones per utterance
    for u in all_u:
        f = results["f0"][(u, ("orig",))]
        f = f[np.isfinite(f)]
        if len(f) >= 10:
            st = 12 * np.log2(f / np.median(f))
            spread.append(float(np.std(st[np.abs(st) <= 9])))
    for m in anon_methods:
        rs, rs_raw = [], []
        for u in all_u:
            r_clean, r_raw = rho_f0(results["f0"][(u, ("orig",))], results["f0"][(u, ("anon", m, "A"))])
            if r_clean is not None:
                rs.append(r_clean)
            if r_raw is not None:
                rs_raw.append(r_raw)
        rho[m] = float(np.mean(rs)) if rs else float("nan")
        rho_detail[m] = dict(mean=rho[m], median=float(np.median(rs)) if rs else None, n_utterances=len(rs),
                             min=float(np.min(rs)) if rs else None,
                             raw_hz_pearson_mean=float(np.mean(rs_raw)) if rs_raw else None)
        med_o = np.nanmedian(np.concatenate([results["f0"][(u, ("orig",))] for u in all_u]))
        med_a = np.nanmedian(np.concatenate([results["f0"][(u, ("anon", m, "A"))] for u in all_u]))
        rho_detail[m]["median_f0_hz_orig_vs_anon"] = [float(med_o), float(med_a)]

    # ---- WER
    wer: dict = {}
    hyps: dict = {}
    if wer_utts:
        for m in ["none", *anon_methods]:
            t = ("orig",) if m == "none" else ("anon", m, "A")
            err = n = 0
            for u in wer_utts:
                ref, hyp = words(utts[u]["text"]), words(results["asr"][(u, t)])
                err += edit_distance(ref, hyp)
                n += len(ref)
                hyps.setdefault(m, []).append(dict(file=utts[u]["file"], ref=utts[u]["text"], hyp=results["asr"][(u, t)]))
            wer[m] = err / n

    elapsed = time.time() - t0
    seen = sorted(x[7:] for x in contract if x.startswith("source:"))
    source = anon.source
    if len(seen) == 1 and not stand_in:  # the code the workers actually ran
        source = re.sub(r"sha256 [^)]*", f"sha256 {seen[0]}", source)
    report = dict(
        generated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        quick=bool(a.quick), anonymizer=source, stand_in=stand_in, methods=methods,
        methods_missing_in_anonymizer=skipped_methods,
        speakers={s: man["speakers"][s] for s in speakers}, utterances_per_speaker=U, shifts=shifts,
        multi_keys=len(multi_keys), bootstrap=n_boot, seed=a.seed, runtime_s=round(elapsed, 1),
        anonymizer_sources_seen=seen,
        jobs=a.jobs, worker_cpu_s={k: round(v, 1) for k, v in CPU_S.items()}, platform=platform.platform(), contract_violations=sorted(x for x in contract if not x.startswith("source:")),
        eer={m: {ATT: cells[(m, k)] for k, ATT in ATTACKS if (m, k) in cells} for m in methods},
        rho_f0=rho_detail, orig_f0_spread_semitones_median=float(np.median(spread)) if spread else None, wer=wer, wer_speakers=wer_spk, wer_utterances=len(wer_utts), asr_hypotheses=hyps,
        targets=dict(eer_min=TARGET_EER, rho_f0_min=TARGET_RHO),
    )
    md = render_md(report, rho)
    print(md)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "privacy-quick" if a.quick else "privacy"
    if a.stand_in or stand_in:
        stem += "-standin"
    if a.speakers or a.utterances or a.bootstrap or a.no_wer or a.wer_utterances or a.seed != DEFAULT_SEED \
            or a.methods != DEFAULT_METHODS:
        stem += "-custom"  # never overwrite the committed full-run results with a partial run
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    print(f"[privacy] wrote {out / stem}.md/.json in {elapsed:.0f} s", file=sys.stderr)
    if stem == "privacy" and out.resolve() == (HERE / "results").resolve():
        # the product states these figures for this exact anonymizer source (clipkit/anonymize/measured.json)
        try:
            import record_measured

            print(f"[privacy] recorded anonymizer {record_measured.record(out / 'privacy.json')} in "
                  "clipkit/anonymize/measured.json", file=sys.stderr)
        except (SystemExit, Exception) as e:  # noqa: BLE001 - the results above are kept either way
            print(f"[privacy] measured.json not updated: {e}", file=sys.stderr)
    return 0


_F0_SHIFT: dict = {}
CPU_S: dict = {}  # worker CPU seconds per job kind


def _collect(futs: dict, results: dict, specs: list, contract: set, t0: float, phase2) -> None:
    """Wait for all jobs; once the F0 jobs are in, submit the F0-aligned shift-back jobs (phase 2)."""
    import concurrent.futures as cf

    pending = set(futs)
    phase2_done = False
    done_n = 0
    last = time.time()
    while pending:
        done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        for f in done:
            kind, tag, pairs = futs[f]
            out, notes, cpu = f.result()
            contract.update(notes)
            CPU_S[kind] = CPU_S.get(kind, 0.0) + cpu
            for (u, si), r in zip(pairs, out):
                results[kind][(u, specs[si])] = r
            done_n += 1
        if time.time() - last > 30:
            last = time.time()
            print(f"[privacy] {done_n}/{len(futs)} jobs, {time.time() - t0:.0f} s", file=sys.stderr)
        if not phase2_done and all(futs[f][0] != "f0" for f in pending):
            phase2_done = True
            pending |= set(phase2()(futs))


def _submit_f0_aligned(results, specs, spec, grid, anon_methods, submit, speakers, U):
    """Attack (c), second half: per (trial, claimed speaker), undo the shift that aligns the trial's median F0
    with the claimed speaker's original median F0 (over the claimant's other sentences)."""
    import numpy as np

    S = len(speakers)
    f0o = [[results["f0"][(grid[s, i], ("orig",))] for i in range(U)] for s in range(S)]
    ref_med = np.full((S, U), np.nan)
    for s in range(S):
        for i in range(U):
            v = np.concatenate([f0o[s][j] for j in range(U) if j != i])
            ref_med[s, i] = np.nanmedian(v) if np.isfinite(v).any() else np.nan
    todo: dict[int, set] = {}
    for m in anon_methods:
        for t in range(S):
            for i in range(U):
                fa = results["f0"][(grid[t, i], ("anon", m, "A"))]
                med = np.nanmedian(fa) if np.isfinite(fa).any() else np.nan
                for s in range(S):
                    st = 12 * np.log2(ref_med[s, i] / med) if np.isfinite(med) and np.isfinite(ref_med[s, i]) else 0.0
                    # 0.5 st grid: the attacker's error is <= 0.25 st, and pairs share embeddings
                    st = float(np.clip(np.round(st * 2) / 2, -12, 12))
                    st = int(st) if st == int(st) else st
                    st = 0 if st == 0 else st
                    _F0_SHIFT[(m, t, i, s)] = st
                    t_spec = ("anon_shift", m, "A", st) if st else ("anon", m, "A")
                    if (grid[t, i], t_spec) not in results["emb"]:
                        todo.setdefault(spec(t_spec), set()).add(int(grid[t, i]))

    def go(futs):
        before = set(futs)
        for si, us in todo.items():
            submit("emb", [si], sorted(us), "f0align")
        return set(futs) - before

    return go


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def render_md(r: dict, rho: dict) -> str:
    L = []
    title = "Privacy benchmark" + (" (QUICK run)" if r["quick"] else "")
    L.append(f"# {title}\n")
    if r["stand_in"]:
        L.append("> **STAND-IN anonymizer** — clipkit/anonymize.py was not used; these numbers do NOT describe clipkit.\n")
    L.append(f"Anonymizer: `{r['anonymizer']}` · {len(r['speakers'])} speakers × {r['utterances_per_speaker']} "
             f"utterances (8 kHz telephone channel) · attacker: resemblyzer d-vectors at 16 kHz · "
             f"EER % with bootstrap 95 % CI ({r['bootstrap']} resamples of speakers, then trials) · "
             f"{r['runtime_s']:.0f} s on {r['jobs']} processes · {r['generated']}\n")
    L.append("| method | (a) ignorant | (b) lazy-informed | (c) shift-back | (d) multi-key | (e) sweep | min EER | ρF0 | WER |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for m in r["methods"]:
        row = [m if m != "none" else "none (no anonymization)"]
        vals = []
        for _k, att in ATTACKS:
            c = r["eer"][m].get(att)
            if c is None:
                row.append("—")
            else:
                vals.append(c["eer"])
                row.append(f"{_pct(c['eer'])} [{_pct(c['ci95'][0])}–{_pct(c['ci95'][1])}]")
        row.append(_pct(min(vals)) if m != "none" else "—")
        row.append(f"{rho.get(m, float('nan')):.2f}")
        row.append(_pct(r["wer"][m]) if m in r["wer"] else "—")
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append(f"Targets for `strong`: EER ≥ {100 * r['targets']['eer_min']:.0f} % under all five attackers, "
             f"ρF0 ≥ {r['targets']['rho_f0_min']}.")
    if "strong" in r["eer"]:
        e = r["eer"]["strong"]
        worst_att = min(e, key=lambda k: e[k]["eer"])
        worst = e[worst_att]
        met_e = worst["eer"] >= r["targets"]["eer_min"]
        met_r = rho["strong"] >= r["targets"]["rho_f0_min"]
        L.append(f"**strong on this key set: worst attacker = {worst_att}, EER {_pct(worst['eer'])} % "
                 f"(CI {_pct(worst['ci95'][0])}–{_pct(worst['ci95'][1])}) → EER target "
                 f"{'MET' if met_e else 'NOT MET'}; ρF0 {rho['strong']:.2f} → ρF0 target {'MET' if met_r else 'NOT MET'}.**"
                 + ("" if not met_e or worst["ci95"][0] >= r["targets"]["eer_min"] else
                    " (point estimate meets it; the CI's lower end does not.)"))
        L.append("One run is one draw of installation keys, and EERs move by 5-15 points between draws; "
                 "the method's figure is the mean over key sets from `bench/privacy_keysets.py` "
                 "(`privacy-keysets.md`).")
    if r["methods_missing_in_anonymizer"]:
        L.append(f"\nNot benchmarked (not in the anonymizer's METHODS): {', '.join(r['methods_missing_in_anonymizer'])}.")
    if len(r.get("anonymizer_sources_seen", [])) > 1:
        L.append(f"\n**WARNING: clipkit/anonymize changed during the run** (sources seen: "
                 f"{', '.join(r['anonymizer_sources_seen'])}); re-run for consistent numbers.")
    if r["contract_violations"]:
        L.append("\nAPI contract problems seen (output was coerced): " + "; ".join(r["contract_violations"]))
    L.append("\nNotes:")
    L.append("- EER 50 % = attacker at chance; the `none` row is the sanity check (the attacker works on these voices). "
             "(c)/(d)/(e) take the best of many variants for genuine *and* impostor trials alike.")
    sb = {m: v["shift-back"].get("genuine_best_variant") for m, v in r["eer"].items() if "shift-back" in v}
    if sb:
        L.append("- (c) best-scoring variant on genuine trials: " +
                 "; ".join(f"{m}: " + ", ".join(f"{k}×{n}" for k, n in sorted(h.items(), key=lambda kv: -kv[1])[:4])
                           for m, h in sb.items()))
    L.append("- ρF0: Pearson r of pYIN log-F0 (original vs anonymized, frames voiced in both, tracker octave errors "
             "dropped), mean over utterances; the raw-Hz variant is in the JSON. These synthetic voices have flat "
             f"intonation (median per-utterance F0 s.d. {r.get('orig_f0_spread_semitones_median') or float('nan'):.1f} "
             "semitones; real speech is livelier), so any pitch drift weighs heavily in ρF0.")
    if r["wer"]:
        L.append(f"- WER: pocketsphinx 5 (default US-English model), {r['wer_utterances']} utterances of "
                 f"{', '.join(r['wer_speakers'])}. pocketsphinx is old and speaker-sensitive: WER is a coarse "
                 "intelligibility signal (compare with the `none` row), not a quality score.")
    L.append(f"- Speakers are synthetic (flite / festival / espeak-ng), not real callers; with "
             f"{len(r['speakers'])} speakers the CIs are wide. Keys: installation secrets derived from seed "
             f"'{r['seed']}'; {r['multi_keys']} extra keys for (d).")
    return "\n".join(L) + "\n"


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _sigterm)
    ap = argparse.ArgumentParser(description="clipkit privacy benchmark (speaker-verification attackers)")
    ap.add_argument("--setup", action="store_true", help="create bench/.venv-privacy, install packages and voices")
    ap.add_argument("--allow-torch-download", action="store_true",
                    help="with --setup: let pip fetch torch from PyPI when no local CPU wheel exists")
    ap.add_argument("--quick", action="store_true", help="6 utterances/speaker, even shifts only, 300 bootstraps")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    ap.add_argument("--speakers", nargs="+", help="subset of speaker names (see make_voices.py --list)")
    ap.add_argument("--utterances", type=int, help="utterances per speaker (default 8, quick 6)")
    ap.add_argument("--bootstrap", type=int, help="bootstrap iterations (default 1000, quick 300)")
    ap.add_argument("--no-wer", action="store_true", help="skip pocketsphinx")
    ap.add_argument("--wer-utterances", type=int,
                    help="utterances per English real-speaker voice for WER (default 4, quick 2)")
    ap.add_argument("--stand-in", action="store_true", help="use the built-in keyed pitch-shift stand-in")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", default=DEFAULT_SEED, help="derives the installation secrets")
    ap.add_argument("--voices", type=Path, default=CACHE / "voices")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    if a.setup:
        return setup(a.allow_torch_download)
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
