"""How far corrections carry by voice (`dramasr.review.carry`), without re-running attribution:
the quick loop the carry rule's thresholds and `--suggest`'s ranking were chosen with, on the
TRAINING dramas only (ren_shi_jian, zhen_huan_zhuan).

    python benchmarks/review_carry.py --drama zhen_huan_zhuan --pred /tmp/review21/zhen_huan_zhuan.jsonl
    python benchmarks/review_carry.py --drama ren_shi_jian --pred P --sizes 100 --grid

The simulated reviewer of bench_review.py answers N places chosen by `--suggest` (or
--strategy lowest / random); the corrections are applied to the first predictions as they
stand (a corrected line takes its answer, a group named whole follows), then the carry rule
moves the lines it reaches. Printed: the gain in points without and with the carry, and the
lines the carry fixed and broke. A re-run of attribution (bench_review.py) adds what
propagation and the reasoner make of the corrections; this loop measures the carry alone, in
seconds, so that a grid of thresholds costs no attribution.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from _measure import cached_predictions
from bench_review import PRIOR, picks_for, simulate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="zhen_huan_zhuan")
    parser.add_argument("--pred", type=Path, help="reuse (or write) the drama's first predictions here")
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--strategy", default="suggest", choices=["suggest", "lowest", "random"])
    parser.add_argument("--guesses", action="store_true", help="suggest with the group stage's view of the "
                        "groups (group_guesses: propagation again and the voice model; slow on large dramas)")
    parser.add_argument("--group-prior", type=float, nargs="+", default=[None], help="suggest's GROUP_PRIOR values "
                        "to try (default: the shipped one)")
    parser.add_argument("--grid", action="store_true", help="try a grid of carry thresholds")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from dramasr.data import load_drama
    from dramasr.review.carry import CarryRule, carry_moves, carry_records, settled_lines, unit_voices
    from dramasr.review.corrections import CorrectionSet
    from dramasr.review.seeding import apply_corrections
    from dramasr.review.suggest import group_guesses
    from dramasr.score import line_correct, scored_mask

    drama = load_drama(SHARED / "dramasr" / args.drama)
    named = drama.named_characters()
    truth = drama.lines.speaker
    scored = scored_mask(truth)
    pred = cached_predictions(drama, args.pred)
    base = line_correct(truth, pred.speaker, named)
    guesses = group_guesses(drama, pred) if args.guesses else None
    unit = unit_voices(drama)
    rules = [CarryRule()]
    if args.grid:
        rules = [CarryRule(cos, other, margin) for cos, other, margin in
                  itertools.product([0.6, 0.65, 0.7, 0.75, 2.0], [0.55, 0.6, 0.65, 0.7, 2.0], [None, -0.1, 0.0])]
    rows = []
    for prior, n in itertools.product(args.group_prior, args.sizes):
        t = time.perf_counter()
        PRIOR.clear()
        if prior is not None:
            PRIOR["group_prior"] = prior
        picks = picks_for(args.strategy, drama, pred, n, guesses=guesses)
        corrections = CorrectionSet.from_log(simulate(drama, pred, picks))
        records = apply_corrections(list(pred.records()), corrections, named)
        plain = line_correct(truth, [r.speaker for r in records], named)
        looked = np.zeros(len(truth), bool)
        looked[[line for line, _l, _g in picks]] = True
        settled = settled_lines(len(truth), pred.evidence, corrections)
        for rule in rules:
            moves = carry_moves(drama, pred.speaker, pred.confidence, settled, corrections, rule, unit)
            after = line_correct(truth, [r.speaker for r in carry_records(records, moves)], named)
            moved = np.zeros(len(truth), bool)
            moved[[m.line for m in moves]] = True
            row = {"corrections": n, "strategy": args.strategy, "group_prior": prior,
                   "cosine": rule.cosine, "other_cosine": rule.other_cosine,
                   "margin": rule.margin,
                   "gain_plain": round(100 * float(plain[scored].mean() - base[scored].mean()), 3),
                   "gain_carry": round(100 * float(after[scored].mean() - base[scored].mean()), 3),
                   "moved": int(moved.sum()), "carry_fixed": int((after & ~plain & scored).sum()),
                   "carry_broke": int((~after & plain & scored).sum()),
                   "seconds": round(time.perf_counter() - t, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"drama": args.drama, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
