"""The drama stage (issue 22) left one training drama out: accuracy without and with it.

    dramasr train --drama zhen_huan_zhuan -o m_zhen.npz
    python benchmarks/drama_stage_check.py --drama ren_shi_jian --model m_zhen.npz [--width 12]
        [--confidence 0.9] [--weight 0.2 0.3]

Runs the policy once on the drama (or, with --width W, on each run of W of its episodes
taken as a small drama and seeded as training seeds one, `train.run_seeds`), then the drama
stage at each setting over the same decisions, and prints all / < 2 s / >= 2 s (strict rule,
pooled over the runs). The model's own drama-stage settings are ignored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.reason.model import AttributionModel, DramaStage
from dramasr.reason.policy import drama_stage, run_policy
from dramasr.score import DURATION_SPLIT, score_lines
from dramasr.tools import Context
from dramasr.train import DEFAULT_SETTINGS, _run_context, episode_blocks

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--width", type=int, default=0, help="episodes per run (0: the whole drama)")
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.9])
    parser.add_argument("--weight", type=float, nargs="+", default=[0.3])
    args = parser.parse_args()
    drama = load_drama(SHARED / args.drama)
    model = AttributionModel.load(args.model)
    whole = Context.build(drama, propagate_labels(drama))
    blocks = episode_blocks(drama, [args.width]) if args.width else [(0, 0)]
    tally: dict[str, np.ndarray] = {}
    for first, last in blocks:
        ctx = _run_context(whole, first, last, DEFAULT_SETTINGS) if args.width else whole
        if ctx is None:
            continue
        small = ctx.drama
        ctx, decisions = run_policy(ctx, model.__class__(**{**model.__dict__, "drama_stage": None}))
        outcomes = {"without": decisions.labels}
        for confidence in args.confidence:
            for weight in args.weight:
                setting = DramaStage(confidence=confidence, weight=weight)
                staged = model.__class__(**{**model.__dict__, "drama_stage": setting})
                outcomes[f"confidence {confidence}, weight {weight}"] = drama_stage(ctx, staged, decisions).labels
        for key, labels in outcomes.items():
            score = score_lines(small.lines.speaker, labels, small.lines.duration, small.lines.episode,
                                small.named_characters())
            parts = [score.overall] + [score.by_duration[b.label] for b in DURATION_SPLIT]
            tally.setdefault(key, np.zeros(6, np.int64))
            tally[key] += [x for t in parts for x in (t.correct, t.total)]
    for key, counts in tally.items():
        cells = " / ".join(f"{100 * counts[k] / counts[k + 1]:.2f}" for k in (0, 2, 4))
        print(f"{args.drama} width {args.width or 'whole'}, {key}: {cells}")


if __name__ == "__main__":
    main()
