"""Corrections carried through the season: accuracy after N corrections by a simulated
reviewer who answers with the truth, lines chosen by `dramasr review --suggest` against
random lines and the least confident lines.

    python benchmarks/bench_review.py                                   # chen_mo_de_zhen_xiang, N = 25 50 100 200
    python benchmarks/bench_review.py --drama kuang_biao --sizes 100 --strategies suggest lowest
    python benchmarks/bench_review.py --json out.json
    python benchmarks/bench_review.py --strategies none suggest-rounds --sizes 0 25 50 100 200

Strategies: suggest (N picks at once from the first predictions), suggest-rounds (25 picks,
re-run, 25 more from the new predictions, as a person using the re-run button works),
lowest (least confident lines), random, none (N ignored: the control, a re-run with no
corrections and without the keep rule below, which must reproduce the first predictions:
gain 0).

Each re-run gets the predictions the reviewer looked at (`previous`), as the review page's
re-run does: a line then moves to a named character only when a correction names that
character (`review.seeding.keep_unrelated`); --no-keep measures without.

The drama is attributed once (seeds init_seeds_1pct.json, the shipped model); each
(strategy, N) then picks N places to look from those predictions, the reviewer answers each
with the truth (a cast name, 其他 for a line whose truth is not a named character, A/B for
two named speakers; a group suggestion is answered for its representative line, and for
the whole group when more than half of the group's lines have that answer, as a person
listening to a few of its lines would), and attribution runs again with
those corrections. A look at a deleted line yields no correction but counts. Accuracy is
the release's strict rule over every scored line, looked-at lines included; "beyond" counts
lines fixed (less lines broken) among the lines nobody looked at.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _measure import cached_predictions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PRIOR: dict = {}  # --group-prior: suggest's GROUP_PRIOR overridden


def answer(truth: str, named: frozenset[str]) -> str | None:
    from dramasr.data.model import DELETED_MARK, OTHER, SPEAKER_SEPARATOR

    if DELETED_MARK in truth:
        return None
    if SPEAKER_SEPARATOR in truth:
        parts = truth.split(SPEAKER_SEPARATOR)
        return truth if all(p in named for p in parts) else OTHER
    return truth if truth in named else OTHER


def simulate(drama, pred, picks: list[tuple[int, tuple[int, ...], str | None]]) -> list:
    """Corrections a truthful reviewer makes at each pick (line, group lines, group label)."""
    from dramasr.review.corrections import Correction

    named = drama.named_characters()
    log = []
    for line, group_lines, group in picks:
        said = answer(drama.lines.speaker[line], named)
        if said is None:
            continue
        was = pred.speaker[line]
        if group_lines and _speaks_most(drama, named, group_lines, said):
            log.append(Correction(said, group=group, lines=group_lines, was=was, who="simulated"))
        log.append(Correction(said, line=line, was=was, who="simulated"))
    return log


def _speaks_most(drama, named: frozenset[str], lines: tuple[int, ...], said: str) -> bool:
    """A truthful reviewer names a whole group only when it is mostly that one speaker's
    (listening to a few of its lines, which the review page lists together)."""
    answers = [answer(drama.lines.speaker[i], named) for i in lines]
    answers = [a for a in answers if a is not None]
    return 2 * sum(a == said for a in answers) > len(answers)


def picks_for(strategy: str, drama, pred, n: int, seed: int = 0, guesses=None):
    from dramasr.review.suggest import lowest_confidence, suggest

    if strategy == "suggest":
        return [(s.line, s.group_lines, s.group) for s in suggest(drama, pred, n, guesses=guesses, **PRIOR)]
    if strategy == "lowest":
        return [(i, (), None) for i in lowest_confidence(pred, n)]
    if strategy == "none":  # the control: a re-run without corrections reproduces the predictions
        return []
    if strategy == "random":
        rng = np.random.default_rng(seed)
        free = [i for i in range(len(drama.lines)) if not (pred.evidence[i] or {}).get("seed")]
        return [(int(i), (), None) for i in rng.choice(free, size=n, replace=False)]
    raise SystemExit(f"unknown strategy {strategy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="chen_mo_de_zhen_xiang")
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--strategies", nargs="+", default=["suggest", "random", "lowest"])
    parser.add_argument("--round", type=int, default=25, help="looks per round of suggest-rounds")
    parser.add_argument("--group-prior", type=float, help="override suggest's GROUP_PRIOR (default: the shipped one)")
    parser.add_argument("--pred", type=Path, help="reuse these initial predictions instead of attributing "
                        "(they must come from the same code, or the gains include its drift)")
    parser.add_argument("--no-keep", action="store_true", help="re-run without `previous` (lines may move to "
                        "characters no correction names; the review page passes its predictions)")
    parser.add_argument("--guesses", action="store_true", help="give suggest the group stage's view of the groups, "
                        "as `dramasr review --suggest` does (it only words the reasons; slow on large dramas)")
    parser.add_argument("--model", type=Path, help="the model of the re-runs (default: the shipped one); give "
                        "--pred made by the same model (leaving one drama out: a model trained on the other)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.group_prior is not None:
        PRIOR["group_prior"] = args.group_prior

    from dramasr.data import load_drama
    from dramasr.data.predictions import Predictions
    from dramasr.reason.model import AttributionModel
    from dramasr.review.corrections import CorrectionSet
    from dramasr.review.seeding import attribute_with_corrections
    from dramasr.score import line_correct, scored_mask

    model = AttributionModel.load(args.model) if args.model else None
    drama = load_drama(SHARED / "dramasr" / args.drama)
    named = drama.named_characters()
    truth = drama.lines.speaker
    scored = scored_mask(truth)
    t0 = time.perf_counter()
    pred = cached_predictions(drama, args.pred)
    base_s = time.perf_counter() - t0
    base = line_correct(truth, pred.speaker, named)
    acc0 = 100 * base[scored].mean()
    print(f"{args.drama}: {len(truth)} lines, baseline {acc0:.2f} % ({base_s:.0f} s)", flush=True)
    from dramasr.review.suggest import group_guesses

    # the group stage's view of the groups only words the reasons; the ranking does not read it
    t = time.perf_counter()
    guesses = group_guesses(drama, pred) if args.guesses and "suggest" in args.strategies else {}
    suggest_s = time.perf_counter() - t
    rows = []

    def measure(strategy: str, n: int, picks, corrections, result, run_s: float) -> None:
        after = line_correct(truth, result.labels, named)
        looked = np.zeros(len(truth), bool)
        for line, _lines, _group in picks:
            looked[line] = True
        rest = scored & ~looked
        row = {"strategy": strategy, "corrections": n, "accuracy": round(100 * after[scored].mean(), 3),
               "gain": round(100 * (after[scored].mean() - base[scored].mean()), 3),
               "looked_wrong": int((~base & scored & looked).sum()),
               "beyond_fixed": int((after & ~base & rest).sum()),
               "beyond_broken": int((~after & base & rest).sum()),
               "group_corrections": len(corrections.groups), "rerun_s": round(run_s, 1)}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)

    for strategy in args.strategies:
        if strategy == "suggest-rounds":  # as on the review page: 25 looks, re-run, 25 more on the new predictions
            from dramasr.review.suggest import suggest

            current, picks, log = pred, [], []
            corrections = CorrectionSet()
            for n in sorted(args.sizes):
                while len(picks) < n:
                    step = suggest(drama, current, min(args.round, n - len(picks)), corrections, **PRIOR)
                    step_picks = [(s.line, s.group_lines, s.group) for s in step]
                    picks += step_picks
                    log += simulate(drama, current, step_picks)  # `was`: what the reviewer saw then
                    corrections = CorrectionSet.from_log(log)
                    t = time.perf_counter()
                    result = attribute_with_corrections(drama, corrections, seeds="1pct", model=model,
                                                        previous=None if args.no_keep else current)
                    run_s = time.perf_counter() - t
                    current = Predictions.from_records(result.records, drama)
                measure(strategy, n, picks, corrections, result, run_s)
            continue
        for n in ([0] if strategy == "none" else args.sizes):
            picks = picks_for(strategy, drama, pred, n, guesses=guesses)
            corrections = CorrectionSet.from_log(simulate(drama, pred, picks))
            t = time.perf_counter()
            # the control runs without `previous`: it must reproduce the predictions on its own
            result = attribute_with_corrections(drama, corrections, seeds="1pct", model=model,
                                                previous=None if args.no_keep or strategy == "none" else pred)
            run_s = time.perf_counter() - t
            measure(strategy, n, picks, corrections, result, run_s)
    out = {"drama": args.drama, "keep_unrelated": not args.no_keep, "lines": len(truth), "scored": int(scored.sum()),
           "baseline": round(acc0, 3),
           "baseline_s": round(base_s, 1), "suggest_guesses_s": round(suggest_s, 1), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
