#!/usr/bin/env python3
"""A semi-informed attacker: it has clipkit, anonymizes its own training voices under many keys, and learns from that.

The VoicePrivacy Challenge ranks anonymizers against this attacker, because
one that only compares embeddings overestimates privacy. Here the attacker:

* holds out the test speakers: the voices are split into folds, each voice is
  tested once and never trained on in its fold;
* anonymizes the training speakers' utterances through clipkit's own
  renderer under ``--train-keys`` installation keys of its own (never the
  victim's), and fits back-ends on those resemblyzer embeddings to tell the
  *original* speakers apart:
  - **WCCN** (within-class covariance normalisation): whitening by the spread
    of one speaker across keys and utterances, so what varies with the key
    counts for little and what survives it for much;
  - **LDA** on top of WCCN (at most speakers-1 dimensions);
* scores victims whose enrolment and trials were anonymized by *another*
  installation under two different keys (or enrolment = the original voice),
  cosine after the back-end and length normalisation.

It reports EER per back-end and trial condition, and the worst (lowest) as
the attacker's figure. Results: ``bench/results/privacy-trained.{md,json}``;
``bench/record_measured.py`` adds the worst figure to measured.json when the
anonymizer source is the same.

Run (re-executes itself in bench/.venv-privacy, made by ``privacy.py --setup``):

    python3 bench/privacy_trained.py [--train-keys 8] [--utterances 8] [--folds 2]

Limits, stated in the report: ten synthetic voices, so each fold trains on
five speakers; a real attacker trains on thousands. Read the figure as what a
weak trained attacker already achieves, not as a bound.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import privacy  # noqa: E402

if __name__ == "__main__":
    privacy.reexec_in_bench_venv(__file__)


def wccn(X, y, reg: float = 1e-3):
    """(mean, W): whitening by the mean within-speaker covariance of rows ``X`` labelled ``y``."""
    import numpy as np

    mu = X.mean(axis=0)
    Sw = np.zeros((X.shape[1], X.shape[1]))
    for s in np.unique(y):
        Z = X[y == s] - X[y == s].mean(axis=0)
        Sw += Z.T @ Z / max(1, len(Z))
    Sw /= len(np.unique(y))
    vals, vecs = np.linalg.eigh(Sw + reg * np.trace(Sw) / len(Sw) * np.eye(len(Sw)))
    return mu, vecs @ np.diag(vals ** -0.5) @ vecs.T


def lda(X, y):
    """Projection onto the (classes-1) most discriminant directions of already whitened rows."""
    import numpy as np
    from scipy.linalg import eigh

    classes = np.unique(y)
    mu = X.mean(axis=0)
    Sb = sum(np.outer(X[y == c].mean(0) - mu, X[y == c].mean(0) - mu) for c in classes) / len(classes)
    Sw = sum(np.cov((X[y == c] - X[y == c].mean(0)).T, bias=True) for c in classes) / len(classes)
    vals, vecs = eigh(Sb, Sw + 1e-3 * np.eye(len(Sw)))
    return vecs[:, np.argsort(vals)[::-1][: len(classes) - 1]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-keys", type=int, default=8, help="the attacker's own installation keys (>= 2)")
    ap.add_argument("--utterances", type=int, default=8, help="utterances per voice")
    ap.add_argument("--folds", type=int, default=2, help="speaker folds (each voice tested once)")
    ap.add_argument("--voices", type=Path, default=privacy.CACHE / "voices")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import soundfile as sf
    import torch
    from resemblyzer import VoiceEncoder

    import clipkit.anonymize as anon
    from clipkit import measured

    torch.set_num_threads(1)
    privacy._W.update(enc=VoiceEncoder("cpu", verbose=False), np=np)
    man = json.loads((a.voices / "manifest.json").read_text())
    speakers = sorted(man["speakers"])
    by: dict = {}
    for u in man["utterances"]:
        by.setdefault(u["speaker"], []).append(u)
    U = min(a.utterances, min(len(v) for v in by.values()))
    audio = {(s, i): sf.read(a.voices / by[s][i]["file"], dtype="float32")[0] for s in speakers for i in range(U)}
    # the attacker's keys and the victim installation's two keys never overlap
    attacker_keys = [hashlib.sha256(f"clipkit-privacy-trained/attacker/{j}".encode()).digest()
                     for j in range(a.train_keys)]
    victim_keys = [hashlib.sha256(f"clipkit-privacy-trained/victim/{j}".encode()).digest() for j in range(2)]
    t0 = time.time()

    def emb(key: bytes | None, s: str, i: int):
        if key is None:
            return privacy._embed(audio[(s, i)])
        v = anon.derive_voice(key, voice_id=privacy.pseudonym(key, s), role="caller")
        return privacy._embed(anon.anonymize(audio[(s, i)].copy(), sr=privacy.SR, voice=v, method="strong"))

    A = {k: np.stack([[emb(key, s, i) for i in range(U)] for s in speakers]) for k, key in enumerate(attacker_keys)}
    V = [np.stack([[emb(key, s, i) for i in range(U)] for s in speakers]) for key in victim_keys]
    O = np.stack([[emb(None, s, i) for i in range(U)] for s in speakers])
    print(f"[trained] embeddings of {len(speakers)} voices x {U} utterances under {len(A) + 2} keys "
          f"in {time.time() - t0:.0f} s", file=sys.stderr)

    def backend_eer(transform, test: list[int], enrol_set, trial_set) -> float:
        en = transform(enrol_set[test].reshape(-1, enrol_set.shape[-1])).reshape(len(test), U, -1)
        tr = transform(trial_set[test].reshape(-1, trial_set.shape[-1])).reshape(len(test), U, -1)
        return privacy.eer(*privacy.split_scores(privacy.cos_scores(tr, privacy.enrol(en))))

    def unit(Z):
        return Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-9)

    folds = [list(range(f, len(speakers), a.folds)) for f in range(a.folds)]
    rows = {}
    for f, test in enumerate(folds):
        train = [i for i in range(len(speakers)) if i not in test]
        X = np.concatenate([A[k][train].reshape(-1, A[k].shape[-1]) for k in A])
        y = np.concatenate([np.repeat(train, U) for _ in A])
        mu, W = wccn(X, y)
        P = lda(unit((X - mu) @ W), y)
        backends = {
            "cosine (untrained)": lambda Z: Z,
            "WCCN": lambda Z, mu=mu, W=W: unit((Z - mu) @ W),
            "WCCN+LDA": lambda Z, mu=mu, W=W, P=P: unit(unit((Z - mu) @ W) @ P),
        }
        for name, tf in backends.items():
            for cond, (en, tr) in {"enrol and trial under two other keys": (V[0], V[1]),
                                   "enrol = original voice": (O, V[1])}.items():
                rows.setdefault((name, cond), []).append(backend_eer(tf, test, en, tr))
    table = {f"{name} | {cond}": float(np.mean(v)) for (name, cond), v in rows.items()}
    trained = {k: v for k, v in table.items() if not k.startswith("cosine")}
    worst_key = min(trained, key=trained.get)
    report = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": f"clipkit/anonymize/ (sha256 {measured.source_hash()})",
        "method_version": anon.METHODS["strong"], "speakers": len(speakers), "utterances": U,
        "train_keys": a.train_keys, "folds": a.folds, "train_speakers_per_fold": len(speakers) - len(folds[0]),
        "eer": table, "worst": {"backend": worst_key, "eer": trained[worst_key]},
        "runtime_s": round(time.time() - t0, 1),
    }
    lines = [
        "# Semi-informed (trained) attacker",
        "",
        f"Anonymizer: `{report['source']}` ({report['method_version']}) · {len(speakers)} voices × {U} utterances · "
        f"{a.folds} speaker folds (each trains on {report['train_speakers_per_fold']} voices) · "
        f"{a.train_keys} attacker keys · {report['generated']} · {report['runtime_s']} s",
        "",
        "| back-end | trial condition | EER % |",
        "|---|---|---|",
        *[f"| {k.split(' | ')[0]} | {k.split(' | ')[1]} | {100 * v:.1f} |" for k, v in table.items()],
        "",
        f"**Worst trained back-end: {worst_key.replace(' | ', ', ')}, EER {100 * trained[worst_key]:.1f} %.** "
        "Target: ≥ 35 %.",
        "",
        "Limits: ten synthetic voices, so each fold's attacker learns from five speakers only; an attacker with a "
        "large training set does better. Not yet here: more (real) voices, linkability, TPR at 1 % FPR, a "
        "classifier on frame-level features.",
    ]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "privacy-trained.json").write_text(json.dumps(report, indent=1))
    (a.out / "privacy-trained.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
