"""Where a re-run's changes come from (issue 21): N corrections by the simulated reviewer of
bench_review.py, one re-run with them (as the review page's), and every line nobody looked at
whose correctness changed, sorted by what moved it. (The voice reach of the keep rule, which
undoes some moves to a corrected character, is chosen by benchmarks/review_keep_rule.py.)

    python benchmarks/review_churn.py --drama ren_shi_jian --pred P.jsonl --model M.npz --strategy suggest --size 100

Use predictions and a model that did not see the drama (leave one drama out: a model trained
on the other training drama) when the drama is a training drama. For reading and choosing on
the training dramas; a test drama only for reading.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from bench_review import picks_for, simulate

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", required=True)
    parser.add_argument("--pred", type=Path, required=True, help="the first predictions (dramasr attribute)")
    parser.add_argument("--model", type=Path, help="model for the re-run (default: the shipped one)")
    parser.add_argument("--strategy", default="suggest", choices=["suggest", "lowest", "random"])
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()

    from dramasr.data import load_drama
    from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER
    from dramasr.data.predictions import load_any_predictions
    from dramasr.reason.model import AttributionModel
    from dramasr.review.corrections import CorrectionSet
    from dramasr.review.seeding import attribute_with_corrections
    from dramasr.score import line_correct, scored_mask

    drama = load_drama(SHARED / "dramasr" / args.drama)
    pred = load_any_predictions(args.pred, drama)
    model = AttributionModel.load(args.model) if args.model else None
    named, truth = drama.named_characters(), drama.lines.speaker
    scored = scored_mask(truth)
    base = line_correct(truth, pred.speaker, named)
    picks = picks_for(args.strategy, drama, pred, args.size)
    corrections = CorrectionSet.from_log(simulate(drama, pred, picks))
    result = attribute_with_corrections(drama, corrections, seeds="1pct", model=model, previous=pred)
    after = line_correct(truth, result.labels, named)
    rest = scored.copy()
    rest[[line for line, _g, _n in picks]] = False
    print(f"{args.drama} {args.strategy} {args.size}: gain {100 * (after[scored].mean() - base[scored].mean()):+.3f} "
          f"points; lines nobody looked at: fixed {int((after & ~base & rest).sum())}, "
          f"broken {int((~after & base & rest).sum())}")

    corrected = {c.speaker for c in corrections.lines.values()} | {c.speaker for c in corrections.groups.values()}
    group_lines = set(corrections.group_lines())
    kinds: Counter = Counter()
    for r in result.records:
        i = r.line
        if not rest[i] or after[i] == base[i]:
            continue
        was, now = pred.speaker[i] or "", r.speaker
        if i in group_lines:
            how = "line of a corrected group"
        elif "carried" in (r.evidence or {}):
            how = "carried"
        elif now.startswith(NEW_CHARACTER_PREFIX):
            how = "to a new character"
        elif now == OTHER:
            how = "to Other"
        elif now in corrected:
            how = "to a corrected character"
        else:
            how = "to another named character"
        source = "new character" if was.startswith(NEW_CHARACTER_PREFIX) else "Other" if was == OTHER else "named"
        kinds[(how, f"from {source}", "fixed" if after[i] else "broken")] += 1
    for (how, source, outcome), count in kinds.most_common():
        print(f"  {how:28s} {source:19s} {outcome:6s} {count}")


if __name__ == "__main__":
    main()
