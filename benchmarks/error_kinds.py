"""Where the attribution's errors are (issue 22): each wrong line of a drama with truth, by kind.

    python benchmarks/error_kinds.py --drama chen_mo_de_zhen_xiang kuang_biao [--model m.npz]

Attributes the drama as `dramasr attribute` does (seeds init_seeds_1pct.json, the shipped
model unless --model), keeping the reasoner's candidate rows, then sorts every scored line
(strict rule, deleted lines skipped) into one kind:
- right;
- extra named: the truth is not a named character, the answer is one;
- named left unnamed: the truth is named, the answer is not (其他, a new character);
- named for named, truth offered: another named character, with the truth among the
  line's candidates (a ranking error);
- named for named, truth not offered: the truth was never among the candidates (no
  re-ranking can fix it);
and says how many of the named-for-named errors answered the narrator (`旁白`), how many
were the narrator's own lines, and how many of the unnamed answers were not offered the
truth either. Counts are over all scored lines and
split at 2 s, as the accuracy table is.
Only for reading: choices belong on the training dramas.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.data.model import DELETED_MARK, NARRATION_MARK
from dramasr.reason.model import AttributionModel, load_default_model
from dramasr.reason.policy import run_policy
from dramasr.tools import Context

SHARED = Path(__file__).resolve().parents[2] / "shared" / "dramasr"
KINDS = ("right", "extra named", "named left unnamed", "named for named, truth offered",
         "named for named, truth not offered")


def error_kinds(name: str, model: AttributionModel) -> dict[str, Counter]:
    drama = load_drama(SHARED / name)
    labels = propagate_labels(drama)
    ctx, decisions = run_policy(Context.build(drama, labels), model)
    answer = list(labels.label)
    for i in decisions.lines.tolist():
        answer[i] = decisions.labels[i]
    offered: list[set[str]] = [set() for _ in answer]
    for line, cls in zip(decisions.rows.line.tolist(), decisions.rows.cls.tolist(), strict=True):
        offered[line].add(ctx.classes[cls])
    named = drama.named_characters()
    seed = np.asarray(labels.is_seed, bool)
    short = (drama.lines.end_ms - drama.lines.start_ms) < 2000  # as the accuracy table splits
    tally = {split: Counter() for split in ("all", "< 2 s", ">= 2 s")}
    for i, (truth, said) in enumerate(zip(drama.lines.speaker, answer, strict=True)):
        if not truth or DELETED_MARK in truth:
            continue
        if truth not in named:
            kind = "right" if said not in named else "extra named"
            extra = None
        elif said == truth:
            kind, extra = "right", None
        elif said not in named:
            kind = "named left unnamed"
            extra = "unnamed, truth not offered" if truth not in offered[i] and not seed[i] else None
        else:
            kind = "named for named, truth offered" if truth in offered[i] else "named for named, truth not offered"
            extra = ("named for named: answered the narrator" if NARRATION_MARK in said
                     else "named for named: the narrator's line" if NARRATION_MARK in truth else None)
        for split in ("all", "< 2 s" if short[i] else ">= 2 s"):
            tally[split][kind] += 1
            tally[split]["scored"] += 1
            if extra:
                tally[split][extra] += 1
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", nargs="+", default=["chen_mo_de_zhen_xiang", "kuang_biao"])
    parser.add_argument("--model", type=Path, help="a model file (default: the shipped one)")
    args = parser.parse_args()
    model = AttributionModel.load(args.model) if args.model else load_default_model()
    rows = ["named for named: answered the narrator", "named for named: the narrator's line",
            "unnamed, truth not offered"]
    print("| drama | lines | " + " | ".join(KINDS[1:]) + " | of which: " + ", ".join(rows) + " |")
    print("|---|---|" + "---|" * (len(KINDS) - 1) + "---|")
    for name in args.drama:
        tally = error_kinds(name, model)
        for split, count in tally.items():
            scored = count["scored"]
            cells = [f"{count[k]:,} ({100 * count[k] / max(scored, 1):.2f})" for k in KINDS[1:]]
            print(f"| {name} {split} | {scored:,} (right {100 * count['right'] / max(scored, 1):.2f} %) | "
                  + " | ".join(cells) + " | " + ", ".join(f"{count[r]:,}" for r in rows) + " |")


if __name__ == "__main__":
    main()
