"""Cross-validation of the attribution model on the training drama, by episode blocks.

    python benchmarks/cv_attribute.py [--drama ../shared/dramasr/ren_shi_jian] [--folds 4]
        [--augment gt-1shot,gt-2shot] [--line-runs 12] [--quick] [--ablation]

Prints accuracy (non-seed, non-deleted lines, strict rule) of propagation, the cheap
stage, the full stage, the policy at several margin thresholds, refinement passes, the
group stage and the final pass after it (--quick: the full stage's first pass only;
--ablation: also the full stage without each tool in turn).
Only the training drama is read: this is where the model's choices are made.
--augment adds training rows from propagation runs with other seed sets (drawn from the
drama's truth), of the training folds' episodes only; evaluation is always on the
protocol seeds' propagation.
--line-runs adds training rows from propagation over runs of that many episodes taken as
dramas of their own (as `dramasr train` does with LINE_RUN_EPISODES); a fold uses only
the runs that do not overlap it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _measure import run_widths

from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.reason.features import feature_table
from dramasr.reason.groups import group_decisions, group_rows
from dramasr.reason.model import normalise, top_two
from dramasr.reason.policy import scored_labels
from dramasr.tools import label_state_from_release
from dramasr.train import (
    DEFAULT_SETTINGS,
    _columns,
    context_rows,
    episode_folds,
    fit_trees,
    group_stage,
    group_training_rows,
    outside_episodes,
    refinement_rows,
    small_drama_contexts,
    training_rows,
)

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = DEFAULT_SETTINGS  # what `dramasr train` uses
CHEAP_TOOLS, FULL_TOOLS = SETTINGS.cheap_tools, SETTINGS.full_tools
HGB_PARAMS, MARGIN_THRESHOLD = SETTINGS.tree_params, SETTINGS.margin_threshold
GROUP_THRESHOLD = SETTINGS.group_threshold
LINE_RUN_EPISODES = SETTINGS.line_run_episodes
AUGMENT_SEEDS: tuple[str, ...] = ()  # seed sets (init_seeds_<key>) whose propagation adds training rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drama", default=str(ROOT.parent / "shared/dramasr/ren_shi_jian"))
    parser.add_argument("--labels", default=None, help="release label file (default: run our propagation)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--ablation", action="store_true", help="also drop each tool in turn")
    parser.add_argument("--augment", default=None, help="extra seed sets for training rows (default: train.py's)")
    parser.add_argument("--quick", action="store_true", help="full stage, 1 pass only")
    parser.add_argument("--line-runs", default=None,
                        help="runs of episodes whose propagation also gives training rows, e.g. 12 "
                             "(default: train.py's; 0 for none)")
    args = parser.parse_args()

    t0 = time.time()
    drama = load_drama(args.drama)
    if args.labels:
        import orjson

        state = label_state_from_release(orjson.loads(Path(args.labels).read_bytes()), len(drama.lines))
    else:
        state = propagate_labels(drama)
    data = training_rows(drama, state)
    print(f"features: {len(data.y)} pairs x {data.X.shape[1]} columns in {time.time() - t0:.0f} s")
    augment_keys = AUGMENT_SEEDS if args.augment is None else tuple(k for k in args.augment.split(",") if k)
    extra = []
    for key in augment_keys:
        t = time.time()
        part = training_rows(drama, propagate_labels(drama, key))
        assert part.feature_names == data.feature_names
        extra.append(part)
        print(f"augment {key}: {len(part.y)} pairs in {time.time() - t:.0f} s")
    # runs of episodes as small dramas: (first, last episode, first-pass rows, refinement rows)
    widths = run_widths(args.line_runs, LINE_RUN_EPISODES)
    runs = []
    if widths:
        t = time.time()
        for small in small_drama_contexts(data.ctx, widths):
            part = context_rows(small)
            refined = refinement_rows(part, SETTINGS)
            numbers = [ep.number for ep in small.drama.episodes]
            runs.append((numbers[0], numbers[-1], part, refined if refined is not None else part))
        pairs = sum(len(run[2].y) for run in runs)
        print(f"line runs {widths}: {len(runs)} runs, {pairs} pairs in {time.time() - t:.0f} s")
    rows = data.rows
    line_ok = np.ones(len(rows.lines), bool)
    short = drama.lines.duration[rows.lines] < 2.0
    truth_class = data.ctx.classes_of(drama.lines.speaker)
    lp_hit = data.ctx.label_class[rows.lines] == truth_class[rows.lines]

    def report(name: str, hit: np.ndarray) -> None:
        print(f"{name:<34} all {100 * hit[line_ok].mean():6.2f}  <2s {100 * hit[short].mean():6.2f}  "
              f">=2s {100 * hit[~short].mean():6.2f}")

    report("propagation", lp_hit)
    folds = episode_folds(data.row_episode, args.folds)
    line_episode = drama.lines.episode[rows.lines]

    def oof(X: np.ndarray, tools: tuple[str, ...], models: list | None = None,
            refined: bool = False) -> tuple[np.ndarray, list]:
        cols = _columns(data.owner, tools)
        score = np.zeros(len(X))
        fitted = []
        for k, fold in enumerate(folds):
            test = np.isin(data.row_episode, fold)
            if models:
                trees = models[k]
            else:
                keep = [~np.isin(part.row_episode, fold) for part in extra]
                pairs = list(zip(extra, keep, strict=True))
                pairs += [(run[3] if refined else run[2], np.ones(len(run[2].y), bool))
                          for run in runs if run[1] < fold[0] or run[0] > fold[-1]]
                X_train = np.concatenate([X[~test][:, cols]] + [p.X[m][:, cols] for p, m in pairs])
                y_train = np.concatenate([data.y[~test]] + [p.y[m] for p, m in pairs])
                trees = fit_trees(X_train, y_train, HGB_PARAMS)
            fitted.append(trees)
            score[test] = trees.predict_proba(X[test][:, cols])
        return normalise(score, rows.starts), fitted

    def ablation() -> None:
        for tool in FULL_TOOLS:
            kept = tuple(t for t in FULL_TOOLS if t != tool)
            s, _ = oof(data.X, kept)
            b, _, _ = top_two(s, rows.starts)
            report(f"full stage without {tool}", data.y[b])

    t = time.time()
    full_score, full_models = oof(data.X, FULL_TOOLS)
    print(f"fits: {time.time() - t:.0f} s")
    full_best, _, _ = top_two(full_score, rows.starts)
    report("full stage, 1 pass", data.y[full_best])
    if args.quick:
        if args.ablation:
            ablation()
        return
    cheap_score, cheap_models = oof(data.X, CHEAP_TOOLS)
    cheap_best, c1, c2 = top_two(cheap_score, rows.starts)
    report("cheap stage, 1 pass", data.y[cheap_best])
    margin = c1 - c2
    for threshold in (0.2, 0.4, 0.5, 0.6, 0.8, 0.9):
        close = margin < threshold
        hit = np.where(close, data.y[full_best], data.y[cheap_best])
        calls = np.where(close, len(FULL_TOOLS) - 1, len(CHEAP_TOOLS)).mean()  # no captions to read
        report(f"policy t={threshold} ({calls:.2f} calls/line)", hit)

    ctx = data.ctx
    score = np.where(np.repeat(margin < MARGIN_THRESHOLD, np.diff(rows.starts)), full_score, cheap_score)
    # passes 2 and 3, scored by refinement stages fitted per fold on the other folds' rows
    # with context from the out-of-fold first-pass labels (as `dramasr train` fits them), or
    # ("same models") by the first-pass stages re-reading the context
    for refit in (False, True):
        pass_ctx, pass_score = ctx, score
        stages = None if refit else (cheap_models, full_models)
        suffix = "" if refit else ", same models"
        for p in (2, 3):
            pass_ctx = pass_ctx.relabel(scored_labels(pass_ctx, rows, pass_score))  # deleted lines keep theirs
            X, names, _ = feature_table(pass_ctx, rows, FULL_TOOLS)
            assert names == data.feature_names
            if stages is None:
                cheap_score, refine_cheap = oof(X, CHEAP_TOOLS, refined=True)
                full_score, refine_full = oof(X, FULL_TOOLS, refined=True)
                stages = (refine_cheap, refine_full)
            else:
                cheap_score, _ = oof(X, CHEAP_TOOLS, stages[0])
                full_score, _ = oof(X, FULL_TOOLS, stages[1])
            cb, c1, c2 = top_two(cheap_score, rows.starts)
            fb, _, _ = top_two(full_score, rows.starts)
            close = (c1 - c2) < MARGIN_THRESHOLD
            report(f"policy t={MARGIN_THRESHOLD}, pass {p}{suffix}", np.where(close, data.y[fb], data.y[cb]))
            report(f"full stage, pass {p}{suffix}", data.y[fb])
            pass_score = np.where(np.repeat(close, np.diff(rows.starts)), full_score, cheap_score)
        if refit:
            final_labels = scored_labels(pass_ctx, rows, pass_score)
    group_labels, grouped = group_stage_cv(ctx, final_labels, folds, report, truth_class, rows.lines)
    # the final pass: the last pass's stages re-read the lines the group stage left alone
    # (the shipped threshold's decisions) in the context of its decisions
    X, _, _ = feature_table(ctx.relabel(group_labels), rows, FULL_TOOLS)
    cheap_score, _ = oof(X, CHEAP_TOOLS, stages[0])
    full_score, _ = oof(X, FULL_TOOLS, stages[1])
    cb, c1, c2 = top_two(cheap_score, rows.starts)
    fb, _, _ = top_two(full_score, rows.starts)
    again = np.where((c1 - c2) < MARGIN_THRESHOLD, data.y[fb], data.y[cb])
    before = ctx.classes_of(group_labels)[rows.lines] == truth_class[rows.lines]
    report(f"+ final pass (group threshold {GROUP_THRESHOLD})", np.where(grouped[rows.lines], before, again))
    for k, fold in enumerate(folds):
        sel = np.isin(line_episode, fold)
        print(f"fold {k} episodes {fold[0]}-{fold[-1]}: propagation {100 * lp_hit[sel].mean():.2f}  "
              f"full pass 1 {100 * data.y[full_best][sel].mean():.2f}")

    if args.ablation:
        ablation()


def group_stage_cv(ctx, final_labels: list[str], folds: list[np.ndarray], report, truth_class: np.ndarray,
                   lines: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The group stage after pass 3, per fold fitted on groups that do not depend on the
    fold's episodes (propagation over the whole drama: groups whose main episode is
    outside the fold; over runs of episodes: runs that do not overlap it), at several
    thresholds. Returns the labels at the shipped threshold and which lines it decided."""
    t = time.time()
    X, y, span = group_training_rows([ctx])
    final = ctx.relabel(final_labels)
    rows = group_rows(final)
    probability = np.zeros(len(rows))
    for fold in folds:
        keep = outside_episodes(span, fold[0], fold[-1])
        stage = group_stage(X[keep], y[keep])
        here = np.isin(rows.episode[rows.group], fold)
        probability[here] = stage.trees.predict_proba(rows.X[here])
    print(f"group stage: {len(y)} training rows ({int(y.sum())} true) in {time.time() - t:.0f} s")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
        labels = list(final_labels)
        for g, (c, _) in group_decisions(rows, probability, threshold).items():
            for i in np.flatnonzero(rows.cluster == g).tolist():
                labels[i] = ctx.classes[c]
        hit = ctx.classes_of(labels)[lines] == truth_class[lines]
        report(f"+ group stage, threshold {threshold}", hit)
        if threshold == GROUP_THRESHOLD:
            shipped = labels, np.array([a != b for a, b in zip(labels, final_labels, strict=True)])
    return shipped

if __name__ == "__main__":
    main()
