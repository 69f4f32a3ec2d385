"""The voice reach of the keep rule, chosen on the training dramas (issue 21).

    python benchmarks/review_keep_rule.py --run ren_shi_jian=P1.jsonl=M1.npz zhen_huan_zhuan=P2.jsonl=M2.npz

For each drama (its first predictions P and the model M that made them: leave one drama out,
a model trained on the other training drama) and each of `--suggest` 100 and 200, lowest
confidence 100 and random 100 corrections by the simulated reviewer of bench_review.py, one
re-run with every move to a corrected character left as it is (`voice_reach=None`). Then,
for each threshold THR: the moves of a line nobody looked at from an unnamed answer (Other,
a new character) to a corrected character whose voice is below THR alike to every line the
corrections gave that character (`review.seeding.keep_unrelated`) are undone, and the table
shows the lines that gains (fixed less broken) per run and per drama. The shipped rule
(VOICE_REACH) is the threshold with the highest total whose sum is not negative on either
drama. Eight re-runs: about 12 min on 2 idle cores.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from bench_review import picks_for, simulate

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RUNS = (("suggest", 100), ("lowest", 100), ("random", 100), ("suggest", 200))
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5)


def moves(drama, pred, model, strategy: str, size: int) -> list[tuple[float, int]]:
    """(voice reach, lines gained by undoing) for each move the rule may undo."""
    from dramasr.review.carry import unit_voices
    from dramasr.review.corrections import CorrectionSet
    from dramasr.review.seeding import attribute_with_corrections, closest_voice, lines_given
    from dramasr.score import line_correct, scored_mask

    named, truth = drama.named_characters(), drama.lines.speaker
    picks = picks_for(strategy, drama, pred, size)
    corrections = CorrectionSet.from_log(simulate(drama, pred, picks))
    result = attribute_with_corrections(drama, corrections, seeds="1pct", model=model, previous=pred,
                                        voice_reach=None)
    base = line_correct(truth, pred.speaker, named)
    after = line_correct(truth, result.labels, named)
    rest = scored_mask(truth)
    rest[[line for line, _g, _n in picks]] = False
    given, voices = lines_given(corrections, named), unit_voices(drama)
    group_lines = set(corrections.group_lines())
    out = []
    for r in result.records:
        i, was = r.line, pred.speaker[r.line] or ""
        if (rest[i] and r.speaker != was and r.speaker in given and i not in group_lines
                and "carried" not in (r.evidence or {}) and was not in named):
            out.append((closest_voice(voices, i, given[r.speaker]), int(base[i]) - int(after[i])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", nargs="+", required=True, metavar="DRAMA=PRED=MODEL")
    args = parser.parse_args()

    from dramasr.data import load_drama
    from dramasr.data.predictions import load_any_predictions
    from dramasr.reason.model import AttributionModel

    table: dict[tuple[str, str], np.ndarray] = {}
    for spec in args.run:
        name, pred_path, model_path = spec.split("=")
        drama = load_drama(SHARED / "dramasr" / name)
        pred = load_any_predictions(Path(pred_path), drama)
        model = AttributionModel.load(Path(model_path))
        for strategy, size in RUNS:
            rows = np.asarray(moves(drama, pred, model, strategy, size), float).reshape(-1, 2)
            table[(name, f"{strategy} {size}")] = rows
            print(f"{name} {strategy} {size}: {len(rows)} moves from an unnamed answer to a corrected character, "
                  f"{int(-rows[:, 1].sum()):+d} lines net as they are", flush=True)
    runs = list(table)
    print("\n| THR | " + " | ".join(f"{d} {r}" for d, r in runs) + " | " + " | ".join(sorted({d for d, _ in runs}))
          + " | total |")
    print("|---:|" + "---:|" * (len(runs) + len({d for d, _ in runs}) + 1))
    for thr in THRESHOLDS:
        gains = {key: int(rows[rows[:, 0] < thr, 1].sum()) for key, rows in table.items()}
        per_drama: dict[str, int] = defaultdict(int)
        for (name, _run), gain in gains.items():
            per_drama[name] += gain
        print(f"| {thr:g} | " + " | ".join(f"{gains[k]:+d}" for k in runs) + " | "
              + " | ".join(f"{per_drama[d]:+d}" for d in sorted(per_drama)) + f" | {sum(gains.values()):+d} |")


if __name__ == "__main__":
    main()
