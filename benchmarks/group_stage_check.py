"""The group stage on the training drama, held out block by block, with and without faces.

    python benchmarks/group_stage_check.py [--drama ../shared/dramasr/ren_shi_jian]

Builds the group stage's training groups as `dramasr train` does (propagation over the
whole training drama and over runs of 12 and 6 of its episodes taken as small dramas) and
decides each held-out part's groups with trees fitted on the groups that do not depend on
it: the whole drama's groups in 4 blocks of episodes, and each run's groups in turn. It
prints the lines the decisions win (the group's lines of the character it is given) and
lose (its extras' lines, right while the group stayed a new character), for the shipped
stage (each training group also seen with its face evidence withheld) and for trees fitted
on the groups as they are; with the faces as recorded, with every face withheld, and with
the speaker's own face withheld (an off-screen speaker, the camera on someone else).
No test drama is read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import orjson

from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.reason.groups import (
    FEATURES,
    NO_FACE_RANK,
    GroupRows,
    group_decisions,
    group_rows,
    group_targets,
    without_faces,
)
from dramasr.tools import Context
from dramasr.train import (
    DEFAULT_SETTINGS,
    episode_folds,
    group_row_spans,
    group_stage,
    outside_episodes,
    small_drama_contexts,
)

ROOT = Path(__file__).resolve().parents[1]
GROUP_THRESHOLD = DEFAULT_SETTINGS.group_threshold
FACE, RANK, BEST = (FEATURES.index(n) for n in ("group_face_share", "group_face_rank", "group_best_face_share"))


def part_rows(ctx: Context, whole: bool) -> dict[str, np.ndarray]:
    """Group rows of one propagation run, with the lines each decision would win and lose
    and the episodes each row depends on."""
    rows = group_rows(ctx)
    truth = ctx.drama.lines.speaker
    named = ctx.drama.named_characters()
    member = np.flatnonzero((rows.cluster >= 0) & ~ctx.drama.lines.deleted)
    n_groups = len(rows.episode)
    hits = np.zeros((n_groups, len(ctx.classes)), np.int64)
    np.add.at(hits, (rows.cluster[member], ctx.classes_of(truth)[member]), 1)
    extras = np.bincount(rows.cluster[member], weights=[truth[i] not in named for i in member], minlength=n_groups)
    extras = extras.astype(np.int64)
    return {"X": rows.X, "y": group_targets(ctx, rows, truth), "group": rows.group, "cls": rows.cls,
            "win": hits[rows.group, rows.cls], "lose": extras[rows.group], "episode": rows.episode[rows.group],
            "span": group_row_spans(ctx, rows, whole)}


def speaker_off_screen(X: np.ndarray, y: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The rows as they would read had the true speaker's face never been seen."""
    out = X.copy()
    out[y, FACE], out[y, RANK] = 0.0, NO_FACE_RANK
    best = np.zeros(int(group.max()) + 1 if len(group) else 0, np.float32)
    np.maximum.at(best, group, out[:, FACE])
    out[:, BEST] = best[group]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", default=str(ROOT.parent / "shared/dramasr/ren_shi_jian"))
    args = parser.parse_args()
    src = Path(args.drama)
    t = time.time()
    drama = load_drama(src)
    seeds = orjson.loads((src / "init_seeds_1pct.json").read_bytes())["character_list"]
    ctx = Context.build(drama, propagate_labels(drama, {c["name"]: c["utterance_list"] for c in seeds
                                                        if c["utterance_list"]}))
    parts = [("whole", ctx, part_rows(ctx, whole=True))]
    parts += [("run", small, part_rows(small, whole=False))
              for small in small_drama_contexts(ctx, DEFAULT_SETTINGS.group_block_episodes)]
    print(f"training groups built in {time.time() - t:.0f} s")
    span = np.concatenate([p["span"] for _, _, p in parts])
    X, y = np.concatenate([p["X"] for _, _, p in parts]), np.concatenate([p["y"] for _, _, p in parts])
    owner = np.concatenate([np.full(len(p["y"]), k) for k, (_, _, p) in enumerate(parts)])

    held_out = [("whole", 0, fold[0], fold[-1]) for fold in episode_folds(drama.lines.episode, 4)]
    held_out += [("runs", k, *span[owner == k][0]) for k in range(1, len(parts)) if (owner == k).any()]
    fitters = {"shipped (faces withheld too)": lambda Xt, yt: group_stage(Xt, yt).trees,
               "groups as they are": lambda Xt, yt: group_stage(Xt, yt, withhold_faces=False).trees}
    conditions = {"faces as recorded": lambda p: p["X"], "every face withheld": lambda p: without_faces(p["X"]),
                  "speaker off screen": lambda p: speaker_off_screen(p["X"], p["y"], p["group"])}
    totals: dict[tuple[str, str, str], np.ndarray] = {}
    for regime, k, first, last in held_out:
        p = parts[k][2]
        here = (p["episode"] >= first) & (p["episode"] <= last) if regime == "whole" else np.ones(len(p["y"]), bool)
        keep = outside_episodes(span, first, last)
        sub = {key: value[here] for key, value in p.items()}
        for fitter, fit in fitters.items():
            trees = fit(X[keep], y[keep])
            for condition, view in conditions.items():
                rows = GroupRows(sub["group"], sub["cls"], sub["X"], np.zeros(0, np.int64), np.zeros(0, np.int64))
                chosen = group_decisions(rows, trees.predict_proba(view(sub)), GROUP_THRESHOLD)
                picked = [int(np.flatnonzero((sub["group"] == g) & (sub["cls"] == c))[0])
                          for g, (c, _) in chosen.items()]
                won, lost = sub["win"][picked].sum(), sub["lose"][picked].sum()
                key = (regime, fitter, condition)
                totals[key] = totals.get(key, np.zeros(3, np.int64)) + [won, lost, len(picked)]
    print(f"{'held out':<8} {'group stage':<30} {'condition':<22} {'won':>6} {'lost':>6} {'net':>6} {'groups':>6}")
    for (regime, fitter, condition), (won, lost, n) in totals.items():
        print(f"{regime:<8} {fitter:<30} {condition:<22} {won:>6} {lost:>6} {won - lost:>6} {n:>6}")
    run_lines = sum(len(small.drama.lines) for kind, small, _ in parts if kind == "run")
    print(f"lines: whole drama {len(drama.lines)}, runs {run_lines} (each episode in two runs); "
          f"threshold {GROUP_THRESHOLD}; {time.time() - t:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
