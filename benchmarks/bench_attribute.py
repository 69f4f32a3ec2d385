"""Whole-drama attribution: strict accuracy of label propagation vs ours, wall time, peak RSS.

    python benchmarks/bench_attribute.py                        # every test drama in ../shared/dramasr
    python benchmarks/bench_attribute.py --drama kuang_biao     # one drama
    python benchmarks/bench_attribute.py --json out.json --predictions out/

Each drama runs in a child process (seeds init_seeds_1pct.json, our propagation, then the
shipped model), so the peak RSS is that of the whole job, loading included. Training
dramas (ren_shi_jian, zhen_huan_zhuan) are skipped unless named.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TRAINING = {"ren_shi_jian", "zhen_huan_zhuan"}
PAPER = {"<2s": 92.3, ">=2s": 96.1}


def accuracy(correct: np.ndarray, mask: np.ndarray) -> float:
    return round(100.0 * float(correct[mask].mean()), 3) if mask.any() else float("nan")


def child(name: str, predictions: str | None) -> dict:
    from dramasr.attribute import attribute
    from dramasr.data import load_drama
    from dramasr.score import line_correct, scored_mask
    from dramasr.train import CHEAP_TOOLS

    t0 = time.perf_counter()
    drama = load_drama(SHARED / "dramasr" / name)
    load_s = time.perf_counter() - t0
    result = attribute(drama, seeds="1pct")
    wall = time.perf_counter() - t0
    truth = drama.lines.speaker
    named = drama.named_characters()
    scored = scored_mask(truth)
    short = drama.lines.duration < 2.0
    out = {"drama": name, "lines": len(truth), "scored": int(scored.sum())}
    for key, labels in (("propagation", result.propagation_labels), ("ours", result.labels)):
        correct = line_correct(truth, labels, named)
        out[key] = {"all": accuracy(correct, scored), "<2s": accuracy(correct, scored & short),
                    ">=2s": accuracy(correct, scored & ~short)}
    out["tool_calls_per_line"] = round(result.calls_per_line, 2)
    calls = result.tool_calls
    out["full_stage_share"] = round(float((calls > len(CHEAP_TOOLS)).sum() / max((calls > 0).sum(), 1)), 3)
    out["timings_s"] = {"load": round(load_s, 1), **{k: round(v, 1) for k, v in result.timings.items()},
                        "wall_including_load": round(wall, 1)}
    if predictions:
        from dramasr.data.predictions import write_predictions

        write_predictions(Path(predictions) / f"{name}.jsonl", result.records)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", action="append", help="drama folder name under ../shared/dramasr (repeatable)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--predictions", help="write <drama>.jsonl predictions into this folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.predictions)))
        return
    names = args.drama or sorted(p.name for p in (SHARED / "dramasr").iterdir()
                                 if p.is_dir() and p.name not in TRAINING)
    results = []
    for name in names:
        cmd = [sys.executable, __file__, "--child", name]
        if args.predictions:
            cmd += ["--predictions", args.predictions]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    header = f"{'drama':<24}{'LP all':>8}{'ours':>8}{'LP <2s':>8}{'ours':>8}{'LP >=2s':>9}{'ours':>8}" \
             f"{'calls':>7}{'wall s':>8}{'RSS MB':>8}"
    print(header)
    for r in results:
        lp, us = r["propagation"], r["ours"]
        print(f"{r['drama']:<24}{lp['all']:>8.2f}{us['all']:>8.2f}{lp['<2s']:>8.2f}{us['<2s']:>8.2f}"
              f"{lp['>=2s']:>9.2f}{us['>=2s']:>8.2f}{r['tool_calls_per_line']:>7.2f}"
              f"{r['timings_s']['wall_including_load']:>8.1f}{r['peak_rss_mb']:>8d}")
    if results:
        mean = {k: {b: round(float(np.mean([r[k][b] for r in results])), 3) for b in ("all", "<2s", ">=2s")}
                for k in ("propagation", "ours")}
        print(f"{'mean':<24}{mean['propagation']['all']:>8.2f}{mean['ours']['all']:>8.2f}"
              f"{mean['propagation']['<2s']:>8.2f}{mean['ours']['<2s']:>8.2f}"
              f"{mean['propagation']['>=2s']:>9.2f}{mean['ours']['>=2s']:>8.2f}")
        gain = {b: mean["ours"][b] - mean["propagation"][b] for b in ("all", "<2s", ">=2s")}
        print(f"gain over propagation (mean): all {gain['all']:+.3f}  <2s {gain['<2s']:+.3f}  "
              f">=2s {gain['>=2s']:+.3f}")
        print(f"gap to the paper (92.3 <2s / 96.1 >=2s): {mean['ours']['<2s'] - PAPER['<2s']:+.2f} / "
              f"{mean['ours']['>=2s'] - PAPER['>=2s']:+.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps({"dramas": results, "mean": mean}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
