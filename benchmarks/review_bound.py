"""How many lines N looks at a drama could fix at most, for a review whose one look fixes one
kind of error where it sits (issue 21).

    python benchmarks/review_bound.py --run DRAMA=PRED [DRAMA=PRED ...] [--looks 25 50 100 200]

DRAMA is a folder name under ../shared/dramasr, PRED its `dramasr attribute` output. Every
wrong line (strict rule, `score.line_correct`) falls in one bucket: its episode, its
truth (a named character, or "not named" for an extra) and the answer it was given; a line
answered with a new-character label is bucketed by the label alone, over the whole season,
since naming that group fixes its lines in every episode. Printed per drama: the scored and
wrong lines, the lines 2 points are, and the sum of the N largest buckets. That sum is what
N looks would fix if each look fixed every line of a bucket of the reviewer's choosing and
broke none: more than any correction carries here (a correction reaches the lines its voice,
its group or its scene ties to it, and moves some right lines too). It reads the truth of
every line: a ceiling for the issue's aim, not a method.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import orjson

from dramasr.data import load_drama
from dramasr.data.model import NEW_CHARACTER_PREFIX
from dramasr.score import line_correct, scored_mask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"


def buckets(name: str, pred: Path) -> tuple[int, Counter]:
    """Scored lines, and the wrong lines of each (episode, truth, answer) bucket."""
    drama = load_drama(SHARED / name)
    named = drama.named_characters()
    said_of = {r["line"]: r["speaker"] for r in map(orjson.loads, pred.read_bytes().splitlines())}
    truth = list(drama.lines.speaker)
    said = [said_of.get(i) for i in range(len(truth))]
    scored = scored_mask(truth)
    wrong = Counter()
    for i in np.flatnonzero(scored & ~line_correct(truth, said, named)).tolist():
        got = said[i] or "(none)"
        episode = None if got.startswith(NEW_CHARACTER_PREFIX) else int(drama.lines.episode[i])
        wrong[(episode, truth[i] if truth[i] in named else "not named", got)] += 1
    return int(scored.sum()), wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", required=True, metavar="DRAMA=PRED")
    parser.add_argument("--looks", nargs="+", type=int, default=[25, 50, 100, 200])
    args = parser.parse_args()
    print("| drama | scored | wrong | 2 points | buckets | " + " | ".join(f"best {n}" for n in args.looks)
          + " |\n|---|---:|---:|---:|---:|" + "---:|" * len(args.looks))
    for run in args.run:
        name, _, pred = run.partition("=")
        scored, wrong = buckets(name, Path(pred))
        sizes = [n for _, n in wrong.most_common()]
        cells = [f"{sum(sizes[:n]):,} ({100 * sum(sizes[:n]) / scored:.2f})" for n in args.looks]
        print(f"| {name} | {scored:,} | {sum(sizes):,} | {round(0.02 * scored):,} | {len(sizes):,} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
