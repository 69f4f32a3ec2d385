"""How far a correction could carry by voice at all, on a TRAINING drama: each wrong line
corrected alone, the lines of its episode with its label and a voice at least 0.7 alike to
it (0.6 when the truth is an extra) moved to its answer, without the carry's reference check.

    python benchmarks/review_carry_reach.py --drama zhen_huan_zhuan --pred /tmp/review21/zhen_huan_zhuan.jsonl

Printed: the lines fixed less lines broken by the best 100 corrections chosen with the truth
(an oracle; each line's 0.6-neighbourhood covered once), and by 100 chosen greedily without it:
by the line's doubt (1 - confidence) times the size of its neighbourhood, and by the mean doubt
of the neighbourhood times its size. A ceiling for what `--suggest` plus the carry can reach.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _measure import cached_predictions
from bench_review import answer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NAMED_COS, OTHER_COS, REACH = 0.7, 0.6, 0.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    parser.add_argument("--pred", type=Path, help="reuse (or write) the drama's first predictions here")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()

    from dramasr.data import load_drama
    from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER
    from dramasr.review.carry import unit_voices
    from dramasr.score import line_correct, scored_mask

    drama = load_drama(SHARED / "dramasr" / args.drama)
    pred = cached_predictions(drama, args.pred)
    named = drama.named_characters()
    truth = drama.lines.speaker
    scored = scored_mask(truth)
    ok = line_correct(truth, pred.speaker, named)
    unit = unit_voices(drama)
    said = np.asarray([answer(t, named) or "" for t in truth], dtype=object)
    seed = np.asarray([bool((e or {}).get("seed")) for e in pred.evidence])
    label = np.asarray([s or "" for s in pred.speaker], dtype=object)
    conf = np.nan_to_num(pred.confidence, nan=0.5)
    episode = drama.lines.episode
    gain = np.zeros(len(label))
    size = np.zeros(len(label))
    mean_doubt = np.zeros(len(label))
    reach: dict[int, np.ndarray] = {}
    for ep in np.unique(episode):
        idx = np.flatnonzero(episode == ep)
        for i in idx:
            if seed[i] or not scored[i] or label[i].startswith(NEW_CHARACTER_PREFIX):
                continue
            js = idx[(label[idx] == label[i]) & ~seed[idx] & (idx != i)]
            cos = unit[js] @ unit[i]
            reach[i] = js[cos >= REACH]
            size[i] = len(reach[i])
            mean_doubt[i] = float(np.mean(1 - conf[np.r_[i, reach[i]]]))
            if ok[i] or not said[i]:
                continue
            a = said[i]
            moved = js[cos >= (NAMED_COS if a in named else OTHER_COS)]
            right_after = (said[moved] == a) if a in named else (said[moved] == OTHER)
            gain[i] = 1 + int((right_after & ~ok[moved]).sum()) - int((ok[moved] & ~right_after).sum())

    def greedy(score: np.ndarray) -> float:
        covered = np.zeros(len(label), bool)
        total, picked = 0.0, 0
        for i in np.argsort(-score, kind="stable").tolist():
            if i not in reach or covered[i]:
                continue
            total += gain[i]
            picked += 1
            covered[i] = True
            covered[reach[i]] = True
            if picked == args.n:
                break
        return total

    out = {"drama": args.drama, "n": args.n, "oracle": greedy(np.where(gain > 0, gain, -1.0)),
           "doubt_x_size": greedy((1 - conf) * (1 + size)), "mean_doubt_x_size": greedy(mean_doubt * (1 + size)),
           "scored": int(scored.sum())}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
