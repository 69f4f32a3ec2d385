"""The cost-aware reasoning loop: cheap tools for every line, the rest only where the cheap
decision is close, then refinement passes that re-read the context with updated labels.

Tool calls are counted per line: a line decided by the cheap stage consulted the cheap
stage's tools; a close line consulted every tool of the full stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from dramasr.data.model import NARRATION_MARK, NEW_CHARACTER_PREFIX, OTHER, SPEAKER_SEPARATOR
from dramasr.progress import Progress
from dramasr.reason.features import PairRows, candidate_pairs, feature_matrix, with_propagation_columns
from dramasr.reason.groups import FEATURES as GROUP_FEATURES
from dramasr.reason.groups import group_decisions, group_rows
from dramasr.reason.model import AttributionModel, Stage, normalise, select, top_two
from dramasr.runtime import return_freed_memory
from dramasr.tools import Context

BLOCK_LINES = 4096  # lines whose feature matrix is built at once (about 70 MB of columns on the released dramas)


@dataclass
class Decisions:
    """Per attributed line (non-seed lines, ascending): the outcome of the last pass."""

    lines: np.ndarray  # int64 [L]
    rows: PairRows
    score: np.ndarray  # float [P], normalised over each line's candidates
    best_row: np.ndarray  # int64 [L]
    confidence: np.ndarray  # float [L]
    runner_up_score: np.ndarray  # float [L]
    full_stage: np.ndarray  # bool [L]: the close-margin tools were consulted
    tool_calls: np.ndarray  # int32 [L]
    labels: list[str]  # final speaker name per line of the drama
    passes: int
    group_size: np.ndarray | None = None  # int32 [L]: size of the new-character group that decided the line, 0: none
    group_probability: np.ndarray | None = None  # float [L]: the group stage's probability of its speaker


def stage_scores(ctx: Context, rows: PairRows, stage: Stage, block_lines: int = BLOCK_LINES) -> np.ndarray:
    """A stage's scores of `rows`, normalised per line. The feature matrix is built and scored
    a block of lines at a time: every column is computed row by row or line by line and the
    trees score each row alone, so the scores are those of one matrix, without its memory."""
    with_propagation_columns(ctx, rows)
    if "audio_sim" in stage.tools:
        # the voice model and the voice entries every block reads, computed before the blocks:
        # no block's columns are held while the model fits (its peak of memory), and the
        # entries' values do not depend on the block size
        _ = ctx.labels.voice_model
        ctx.labels.audio.settle(rows.line, rows.cls)
    raw = np.zeros(len(rows))
    for lo in range(0, len(rows.lines), block_lines):
        part = rows.of_lines(lo, min(lo + block_lines, len(rows.lines)))
        X, names = feature_matrix(ctx, part, stage.tools)
        a = int(rows.starts[lo])
        raw[a:a + len(part)] = stage.trees.predict_proba(X[:, select(names, stage.feature_names)])
    return normalise(raw, rows.starts)


def subset_rows(rows: PairRows, keep_line: np.ndarray) -> tuple[PairRows, np.ndarray]:
    """Rows of the lines where keep_line is True, and their positions in `rows`."""
    counts = np.diff(rows.starts)
    keep_row = np.repeat(keep_line, counts)
    kept_counts = counts[keep_line]
    starts = np.zeros(len(kept_counts) + 1, np.int64)
    np.cumsum(kept_counts, out=starts[1:])
    position = np.flatnonzero(keep_row)
    return rows.at(position, starts, rows.lines[keep_line]), position


def speaker_names(ctx: Context, lines: np.ndarray, classes: np.ndarray, rows: PairRows | None = None,
                  score: np.ndarray | None = None) -> list[str]:
    """Class -> output name. OTHER keeps propagation's non-named label (a new character);
    on a subtitle holding several speakers' words (see `speech_parts`) it names them as the
    release does, "A/B", from the line's best-scored named candidates when `rows` and
    `score` are given."""
    parts = ctx.tables.speech_parts
    out = []
    for k, (i, c) in enumerate(zip(lines.tolist(), classes.tolist(), strict=True)):
        if c != ctx.other:
            out.append(ctx.classes[c])
            continue
        if rows is not None and score is not None and parts[i] >= 2:
            shared = _shared_speakers(ctx, rows, score, k, int(parts[i]))
            if shared:
                out.append(shared)
                continue
        current = ctx.state.label[i]
        discovered = current not in ctx.class_of and NARRATION_MARK not in current
        keep = current.startswith(NEW_CHARACTER_PREFIX) or discovered
        out.append(current if keep else OTHER)
    return out


def _shared_speakers(ctx: Context, rows: PairRows, score: np.ndarray, k: int, n: int) -> str:
    """ "A/B": the n best-scored named candidates of the k-th line ("" when fewer than two)."""
    lo, hi = int(rows.starts[k]), int(rows.starts[k + 1])
    order = lo + np.argsort(-score[lo:hi], kind="stable")
    named = [ctx.classes[int(rows.cls[r])] for r in order if int(rows.cls[r]) != ctx.other][:n]
    return SPEAKER_SEPARATOR.join(named) if len(named) >= 2 else ""


def policy_scores(rows: PairRows, cheap: Stage, full: Stage, threshold: float,
                  scorer: Callable[[Stage, PairRows, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Scores normalised per line: the cheap stage's, the full stage's on lines whose cheap
    margin is below the threshold; and that close-line mask. scorer(stage, sub_rows,
    positions of sub_rows in rows) gives a stage's normalised scores of some lines."""
    score = scorer(cheap, rows, np.arange(len(rows)))
    _, best, second = top_two(score, rows.starts)
    close = (best - second) < threshold
    if close.any():
        sub, position = subset_rows(rows, close)
        score[position] = scorer(full, sub, position)
    return score, close


def _scores_of(ctx: Context, stage: Stage, rows: PairRows, _position: np.ndarray) -> np.ndarray:
    return stage_scores(ctx, rows, stage)


def scored_labels(ctx: Context, rows: PairRows, score: np.ndarray) -> list[str]:
    """The drama's labels with every line of `rows` named after its best-scored candidate
    (other lines, seeds and deleted ones, keep theirs)."""
    best_row, _, _ = top_two(score, rows.starts)
    labels = list(ctx.state.label)
    names = speaker_names(ctx, rows.lines, rows.cls[best_row], rows, score)
    for i, name in zip(rows.lines.tolist(), names, strict=True):
        labels[i] = name
    return labels


def run_policy(ctx: Context, model: AttributionModel, *, passes: int | None = None,
               threshold: float | None = None, hook: Progress | None = None) -> tuple[Context, Decisions]:
    """Attribute every non-seed line; returns the final context and the decisions."""
    passes = model.passes if passes is None else passes
    threshold = model.margin_threshold if threshold is None else threshold
    lines = np.flatnonzero(~ctx.state.is_seed)
    decisions: Decisions | None = None
    rows = candidate_pairs(ctx, lines)  # candidates come from propagation: the same every pass
    steps = max(passes, 1) + (2 if model.groups is not None else 0)  # line passes, groups, final pass
    for p in range(max(passes, 1)):
        if hook:
            hook(f"reasoning pass {p + 1} of {max(passes, 1)}", p, steps)
        decisions = _one_pass(ctx, model, rows, p, threshold)
        if p + 1 < passes:
            ctx = ctx.relabel(decisions.labels, replace=True)
            return_freed_memory()  # the last state's temporaries and tables it did not hand on
    assert decisions is not None
    if model.groups is not None:
        if hook:
            hook("group stage", max(passes, 1), steps)
        ctx = ctx.relabel(decisions.labels, replace=True)
        return_freed_memory()
        decisions = resolve_groups(ctx, model.groups, model.group_threshold, decisions)
        assert decisions.group_size is not None
        if model.final_pass and decisions.group_size.any():
            if hook:
                hook("final pass", max(passes, 1) + 1, steps)
            ctx = ctx.relabel(decisions.labels, replace=True)
            return_freed_memory()
            decisions = _final_pass(ctx, model, rows, max(passes, 1), threshold, decisions)
    if hook:
        hook("reasoning done", steps, steps)
    return ctx, decisions


def _one_pass(ctx: Context, model: AttributionModel, rows: PairRows, p: int, threshold: float) -> Decisions:
    """The p-th pass (0-based) over `rows`: cheap stage everywhere, full stage where close."""
    cheap, full = model.stages(p)
    cheap_calls = len(cheap.tools)
    full_calls = len(set(cheap.tools) | set(full.tools))
    if ctx.drama.captions is None and "scene_caption" in full.tools:
        full_calls -= 1  # nothing to read: the policy does not call it
    score, close = policy_scores(rows, cheap, full, threshold, partial(_scores_of, ctx))
    best_row, best, second = top_two(score, rows.starts)
    return Decisions(
        lines=rows.lines, rows=rows, score=score, best_row=best_row, confidence=best, runner_up_score=second,
        full_stage=close, tool_calls=np.where(close, full_calls, cheap_calls).astype(np.int32),
        labels=scored_labels(ctx, rows, score), passes=p + 1,
    )


def _final_pass(ctx: Context, model: AttributionModel, rows: PairRows, p: int, threshold: float,
                decisions: Decisions) -> Decisions:
    """One more pass after the group stage; the lines of the groups it decided keep its
    decision and their scores, the other lines take the new pass's."""
    again = _one_pass(ctx, model, rows, p, threshold)
    grouped = decisions.group_size > 0  # type: ignore[operator]
    keep_row = np.repeat(grouped, np.diff(rows.starts))
    labels = list(again.labels)
    for i in rows.lines[grouped].tolist():
        labels[i] = decisions.labels[i]
    return replace(
        again, labels=labels, score=np.where(keep_row, decisions.score, again.score),
        best_row=np.where(grouped, decisions.best_row, again.best_row),
        confidence=np.where(grouped, decisions.confidence, again.confidence),
        runner_up_score=np.where(grouped, decisions.runner_up_score, again.runner_up_score),
        full_stage=np.where(grouped, decisions.full_stage, again.full_stage),
        tool_calls=np.where(grouped, decisions.tool_calls, again.tool_calls),
        group_size=decisions.group_size, group_probability=decisions.group_probability,
    )


def resolve_groups(ctx: Context, stage: Stage, threshold: float, decisions: Decisions) -> Decisions:
    """The group stage (`dramasr.reason.groups`) over the new-character groups of `ctx`'s
    labels (the last pass's): each group whose best candidate passes the threshold is given to it."""
    rows = group_rows(ctx)
    size = np.zeros(len(decisions.lines), np.int32)
    probability = np.zeros(len(decisions.lines))
    if len(rows):
        X = rows.X[:, select(list(GROUP_FEATURES), stage.feature_names)]
        chosen = group_decisions(rows, stage.trees.predict_proba(X), threshold)
        labels = list(decisions.labels)
        position = np.full(len(labels), -1, np.int64)
        position[decisions.lines] = np.arange(len(decisions.lines))
        for g, (c, p) in chosen.items():
            members = np.flatnonzero(rows.cluster == g)
            for i in members.tolist():
                labels[i] = ctx.classes[c]
            k = position[members]
            size[k[k >= 0]], probability[k[k >= 0]] = len(members), p
        decisions = replace(decisions, labels=labels)
    return replace(decisions, group_size=size, group_probability=probability)


__all__ = ["Decisions", "policy_scores", "resolve_groups", "run_policy", "scored_labels", "stage_scores",
           "speaker_names", "subset_rows"]
