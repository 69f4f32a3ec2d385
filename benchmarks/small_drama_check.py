"""A second check on the training drama alone: the regime of a small drama with few seeds.

    python benchmarks/small_drama_check.py [--drama ../shared/dramasr/ren_shi_jian] [--split 12]
        [--last] [--line-runs 12]

Episodes 1..split of the training drama (with --last, its last `split` episodes) become a
drama of their own and the model is trained on the other episodes exactly as `dramasr
train` trains it, then attributes the small drama. Both parts are seeded as the protocol
seeds a drama (`train.run_seeds`: the protocol seeds that fall in the part, plus a clump
for each named character who speaks in it without one). Prints propagation's and our
strict accuracy on it. No test drama is read.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
from _measure import run_widths

from dramasr.attribute import attribute, propagate_labels
from dramasr.data import load_drama
from dramasr.data.model import Drama
from dramasr.score import line_correct, scored_mask
from dramasr.train import DEFAULT_SETTINGS, run_seeds, train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", default=str(ROOT.parent / "shared/dramasr/ren_shi_jian"))
    parser.add_argument("--split", type=int, default=12, help="the small drama is episodes 1..split")
    parser.add_argument("--last", action="store_true", help="the small drama is the last `split` episodes instead")
    parser.add_argument("--augment", default="", help="also train on propagation from these seed sets, e.g. gt-1shot")
    parser.add_argument("--line-runs", default=None,
                        help="runs of episodes whose propagation also gives line-stage training rows, e.g. 12 "
                             "(default: train.py's; 0 for none)")
    args = parser.parse_args()
    src = Path(args.drama)
    full = load_drama(src)
    seeds = orjson.loads((src / "init_seeds_1pct.json").read_bytes())["character_list"]
    numbers = [ep.number for ep in full.episodes]
    first, last = (numbers[-args.split], numbers[-1]) if args.last else (numbers[0], numbers[args.split - 1])
    small = full.episode_range(first, last)
    rest = full.episode_range(numbers[0], first - 1) if args.last else full.episode_range(last + 1, numbers[-1])
    small_seeds = part_seeds(full, small, seeds)
    rest_seeds = part_seeds(full, rest, seeds)
    t = time.time()
    states = [propagate_labels(rest, rest_seeds)]
    states += [propagate_labels(rest, key) for key in args.augment.split(",") if key]
    widths = run_widths(args.line_runs, DEFAULT_SETTINGS.line_run_episodes)
    model = train([rest] * len(states), states, replace(DEFAULT_SETTINGS, line_run_episodes=widths))
    print(f"trained on episodes {rest.episodes[0].number}-{rest.episodes[-1].number} in {time.time() - t:.0f} s")
    result = attribute(small, seeds=small_seeds, model=model)
    truth = small.lines.speaker
    named = small.named_characters()
    mask = scored_mask(truth)
    short = small.lines.duration < 2.0
    for name, labels in (("propagation", result.propagation_labels), ("ours", result.labels)):
        ok = line_correct(truth, labels, named)
        print(f"{name:<12} all {100 * ok[mask].mean():.2f}  <2s {100 * ok[mask & short].mean():.2f}  "
              f">=2s {100 * ok[mask & ~short].mean():.2f}")
    print(f"small drama: episodes {first}-{last}, {len(truth)} lines, "
          f"{sum(len(v) for v in small_seeds.values())} seeds")


def part_seeds(full: Drama, part: Drama, seeds: list[dict]) -> dict[str, list[int]]:
    """`run_seeds` of a run of the drama's episodes: the protocol seeds inside it (as lines of
    the run), plus a clump for each named character who speaks in it without one."""
    first = part.episodes[0].number
    lo = next(ep.line_start for ep in full.episodes if ep.number == first)
    inside = {c["name"]: [i - lo for i in c["utterance_list"] if lo <= i < lo + len(part.lines)] for c in seeds}
    return run_seeds(part, inside, draw=first)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
