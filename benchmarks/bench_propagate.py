"""Label propagation: parity with the release and scale (wall time, peak memory).

    python benchmarks/bench_propagate.py                      # every drama in ../shared/dramasr + 60K synthetic
    python benchmarks/bench_propagate.py --drama kuang_biao   # one drama
    python benchmarks/bench_propagate.py --synthetic 60000 --no-shared

Each case runs in a child process under /usr/bin/time -v, so the peak RSS is that of the
whole process (loading included); propagation wall time excludes data loading, like the
reference figures in shared/reference/lp_reference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dramasr.score import ALL_DURATION_BUCKETS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BUCKETS = tuple(b.label for b in ALL_DURATION_BUCKETS)


def accuracy_report(drama, pred: list[str]) -> dict[str, float]:
    """Strict accuracy overall and by duration bucket, with dramasr.score."""
    from dramasr.score import score_lines

    lines = drama.lines
    score = score_lines(lines.speaker, pred, lines.duration, lines.episode, drama.named_characters())
    out = {"all": round(score.overall.percent, 2), "n": score.overall.total}
    out.update({b: round(score.by_duration[b].percent, 2) for b in BUCKETS})
    return out


def reference_labels_path(name: str) -> Path | None:
    for p in (SHARED / "reference" / "lp_labels" / f"{name}.json",
              SHARED / "dramasr" / name / "prop_labels_1pct_apw.json"):
        if p.is_file():
            return p
    return None


def run_drama(name: str) -> dict:
    from dramasr.data import load_drama
    from dramasr.propagate import propagate_drama, read_release_labels

    drama = load_drama(SHARED / "dramasr" / name)
    t0 = time.perf_counter()
    prop = propagate_drama(drama, "1pct")
    wall = time.perf_counter() - t0
    truth = drama.lines.speaker
    ours = prop.labels
    res = {"case": name, "lines": len(truth), "propagation_wall_s": round(wall, 2),
           "ours": accuracy_report(drama, ours)}
    ref_path = reference_labels_path(name)
    if ref_path is not None:
        ref = read_release_labels(ref_path)
        theirs = ref.labels
        res["reference_from_labels"] = accuracy_report(drama, theirs)
        res["same_speaker_pct"] = round(100 * np.mean([a == b for a, b in zip(ours, theirs, strict=True)]), 3)
        same_list = same_top = 0
        max_diff = 0.0
        for i in range(len(ours)):
            a, b = prop.candidates(i), ref.candidates(i)
            same_list += [n for n, _ in a] == [n for n, _ in b]
            same_top += (a[:1] and b[:1] and a[0][0] == b[0][0]) or (not a and not b)
            if [n for n, _ in a] == [n for n, _ in b] and a:
                max_diff = max(max_diff, max(abs(x[1] - y[1]) for x, y in zip(a, b, strict=True)))
        res["same_candidate_list_pct"] = round(100 * same_list / len(ours), 3)
        res["same_top_candidate_pct"] = round(100 * same_top / len(ours), 3)
        res["max_candidate_score_diff"] = float(f"{max_diff:.2g}")
    return res


def run_synthetic(n_lines: int) -> dict:
    """A synthetic drama from dramasr.synth (1000 lines per episode), propagated from its own seeds."""
    from dramasr.propagate import propagate_drama
    from dramasr.synth import synth_drama

    drama = synth_drama(seed=0, episodes=max(1, n_lines // 1000), lines_per_episode=min(n_lines, 1000))
    t0 = time.perf_counter()
    prop = propagate_drama(drama, "1pct")
    wall = time.perf_counter() - t0
    return {"case": f"synthetic_{n_lines}", "lines": len(drama.lines), "propagation_wall_s": round(wall, 2),
            "ours": accuracy_report(drama, prop.labels)}


def child(case: str) -> None:
    res = run_synthetic(int(case.split("_")[1])) if case.startswith("synthetic_") else run_drama(case)
    print("RESULT " + json.dumps(res, ensure_ascii=False), flush=True)


def measure(case: str) -> dict:
    cmd = [sys.executable, __file__, "--child", case]
    timer = Path("/usr/bin/time")
    if timer.exists():
        cmd = [str(timer), "-v", *cmd]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        raise SystemExit(f"{case} failed:\n{out[-3000:]}")
    res = json.loads(m.group(1))
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", out)
    if rss:
        res["peak_rss_mb"] = round(int(rss.group(1)) / 1024)
    if wall:
        parts = [float(x) for x in wall.group(1).split(":")]
        res["process_wall_s"] = round(sum(p * 60 ** i for i, p in enumerate(reversed(parts))), 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drama", action="append", help="drama folder name under shared/dramasr (repeatable)")
    ap.add_argument("--synthetic", type=int, action="append", help="synthetic drama with this many lines")
    ap.add_argument("--no-shared", action="store_true", help="skip the shared dramas")
    ap.add_argument("--json", type=Path, help="also write all results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    cases = []
    if not args.no_shared:
        if args.drama:
            cases += args.drama
        elif (SHARED / "dramasr").is_dir():
            cases += sorted(p.name for p in (SHARED / "dramasr").iterdir() if (p / "init_seeds_1pct.json").is_file())
    cases += [f"synthetic_{n}" for n in (args.synthetic or ([] if args.drama else [60000]))]
    ref_path = SHARED / "reference" / "lp_reference.json"
    reference = json.loads(ref_path.read_text()) if ref_path.is_file() else {}
    results = []
    hdr = (f"{'case':24} {'lines':>6} {'acc':>6} {'ref':>6} {'same%':>7} {'cand%':>7} {'wall_s':>7} "
           f"{'ref_s':>6} {'speedup':>7} {'rss_mb':>7} {'ref_mb':>7}")
    print(hdr)
    for case in cases:
        res = measure(case)
        ref = reference.get(case, {})
        res["reference"] = {k: ref[k] for k in ref if k != "note"}
        results.append(res)
        ref_s = ref.get("propagation_wall_s")
        speed = f"{ref_s / res['propagation_wall_s']:.1f}x" if ref_s else "-"
        print(f"{case:24} {res['lines']:>6} {res['ours']['all']:>6} {ref.get('all', '-'):>6} "
              f"{res.get('same_speaker_pct', '-'):>7} {res.get('same_candidate_list_pct', '-'):>7} "
              f"{res['propagation_wall_s']:>7} {ref_s or '-':>6} {speed:>7} {res.get('peak_rss_mb', '-'):>7} "
              f"{ref.get('peak_rss_mb', '-'):>7}", flush=True)
    print("\naccuracy by line duration (ours / reference):")
    for res in results:
        if "n" not in res["ours"]:
            continue
        ref = res["reference"]
        cells = "  ".join(f"{b} {res['ours'][b]:.2f}/{ref.get(b, float('nan')):.2f}" for b in BUCKETS)
        print(f"  {res['case']:24} {cells}")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
