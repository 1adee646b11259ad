#!/usr/bin/env python3
"""All five attackers of bench/privacy.py over several installation-key sets.

One run of ``privacy.py`` draws one set of installation keys (A for the trial,
B for the lazy-informed reference, C1-C4 for the multi-key attacker); with ten
voices its figures move by 5-15 EER points from one key set to the next. The
EER target is a property of the method, so this script runs ``privacy.py
--methods strong --no-wer`` once per key set (``--seed``) and reports, per
attacker, the mean over key sets, the worst key set and how many key sets
reach the target.

    python3 bench/privacy.py --setup          # once
    python3 bench/privacy_keysets.py [--sets 8]   # ~75 s per key set on 2 cores

Runs are cached in ``bench/.cache/keysets/<seed>/`` and reused while the
anonymizer's source hash is unchanged. Writes
``bench/results/privacy-keysets.{md,json}``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import privacy  # noqa: E402  (stdlib-only at import time outside the bench venv)

OUT = HERE / "results"
RUNS = privacy.CACHE / "keysets"


def seeds(n: int) -> list[str]:
    """The standard key set first, then ``n - 1`` others."""
    return [privacy.DEFAULT_SEED] + [f"clipkit-privacy-keyset-{i}" for i in range(1, n)]


def run_one(seed: str, source: str) -> dict:
    """The report of ``privacy.py`` for one key set, from the cache when made from the same source."""
    out = RUNS / seed
    cached = out / "privacy-custom.json"
    if cached.exists():
        report = json.loads(cached.read_text())
        if report.get("anonymizer", "").endswith(f"(sha256 {source})"):
            return report
    if not privacy.VENV_PY.exists():
        sys.exit("bench/.venv-privacy is missing: run `python3 bench/privacy.py --setup` first")
    print(f"[keysets] {seed} ...", file=sys.stderr, flush=True)
    subprocess.run([str(privacy.VENV_PY), str(HERE / "privacy.py"), "--methods", "strong", "--no-wer",
                    "--seed", seed, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return json.loads(cached.read_text())


def summarize(reports: list[dict], target: float) -> dict:
    names = [name for _, name in privacy.ATTACKS]
    rows = []
    for r in reports:
        e = {name: r["eer"]["strong"][name]["eer"] for name in names}
        rows.append(dict(seed=r["seed"], eer=e, worst=min(e.values()), rho_f0=r["rho_f0"]["strong"]["mean"]))
    per = {}
    for name in names:
        xs = [row["eer"][name] for row in rows]
        per[name] = dict(mean=sum(xs) / len(xs), min=min(xs), max=max(xs),
                         sets_meeting=sum(x >= target for x in xs))
    worst = [row["worst"] for row in rows]
    rhos = [row["rho_f0"] for row in rows]
    return dict(rows=rows, per_attacker=per, worst_mean=sum(worst) / len(worst),
                sets_meeting_all=sum(w >= target for w in worst),
                rho_f0=dict(mean=sum(rhos) / len(rhos), min=min(rhos)))


def render_md(s: dict, reports: list[dict], target: float) -> str:
    names = [name for _, name in privacy.ATTACKS]
    pct = privacy._pct
    r0 = reports[0]
    L = ["# Privacy benchmark over installation-key sets", "",
         f"Anonymizer: `{r0['anonymizer']}` · method `strong` · {len(r0['speakers'])} speakers × "
         f"{r0['utterances_per_speaker']} utterances · {len(reports)} key sets (one `bench/privacy.py` "
         f"run each, `--seed`) · {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}", "",
         "| key set | " + " | ".join(names) + " | worst | ρF0 |", "|---|" + "---|" * (len(names) + 2)]
    for row in s["rows"]:
        L.append(f"| `{row['seed']}` | " + " | ".join(pct(row["eer"][n]) for n in names)
                 + f" | {pct(row['worst'])} | {row['rho_f0']:.2f} |")
    per = s["per_attacker"]
    L.append("| **mean** | " + " | ".join(f"**{pct(per[n]['mean'])}**" for n in names)
             + f" | {pct(s['worst_mean'])} | {s['rho_f0']['mean']:.2f} |")
    L.append("| worst key set | " + " | ".join(pct(per[n]["min"]) for n in names)
             + f" | {pct(min(r['worst'] for r in s['rows']))} | {s['rho_f0']['min']:.2f} |")
    L.append(f"| key sets ≥ {100 * target:.0f} % | " + " | ".join(f"{per[n]['sets_meeting']}/{len(s['rows'])}"
                                                              for n in names)
             + f" | {s['sets_meeting_all']}/{len(s['rows'])} | |")
    met = all(per[n]["mean"] >= target for n in names)
    L += ["", f"Target: EER ≥ {100 * target:.0f} % under every attacker. Mean over key sets: "
          + ("**met for all five attackers**" if met else "**not met for every attacker**")
          + f"; every attacker at or above it in {s['sets_meeting_all']} of {len(s['rows'])} key sets. "
          f"ρF0 ≥ 0.7: mean {s['rho_f0']['mean']:.2f}, lowest key set {s['rho_f0']['min']:.2f}.", "",
          "EER per cell is the point estimate of that run (its bootstrap CI, ±15-20 points with ten "
          "speakers, is in the cached JSON). The first row is the key set of the committed "
          "`privacy.md`. Attackers as in `bench/README-privacy.md`."]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=8, help="number of key sets (>= 2)")
    a = ap.parse_args(argv)
    if a.sets < 2:
        ap.error("--sets must be at least 2")
    source = privacy._current_source()
    reports = [run_one(seed, source) for seed in seeds(a.sets)]
    stale = [r["seed"] for r in reports if r.get("anonymizer_sources_seen") and len(r["anonymizer_sources_seen"]) > 1]
    if stale:
        sys.exit(f"the anonymizer changed during the runs for {stale}: delete bench/.cache/keysets and rerun")
    s = summarize(reports, privacy.TARGET_EER)
    md = render_md(s, reports, privacy.TARGET_EER)
    print(md)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "privacy-keysets.md").write_text(md)
    (OUT / "privacy-keysets.json").write_text(json.dumps(dict(source=reports[0]["anonymizer"], **s), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
