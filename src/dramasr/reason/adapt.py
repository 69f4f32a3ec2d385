"""The drama stage: trees fitted on the drama's own sure lines, then read on its unsure ones.

The line stages learn from the training dramas how evidence maps to speakers, but every
drama sets its own scales: how alike its characters sound, how often the speaker's face is
on screen, how many extras speak. After the last pass, the lines the model is sure of
(confidence at least `DramaStage.confidence`, the group stage's lines left out) are taken as
labelled examples of this drama alone: each of their candidate rows is a positive when it
is the line's answer. Small boosted trees fitted on those rows (the full stage's columns,
less `is_current`, which would only echo the answer back) score the unsure lines, and an
unsure line's score becomes `(1 - weight) * line stages + weight * drama trees`. Sure lines
keep their scores and speakers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dramasr.reason.features import PairRows, feature_matrix
from dramasr.reason.model import DramaStage, Stage, normalise, top_two
from dramasr.tools import Context

ECHOES = ("is_current",)  # columns left out: they read the answer the trees are fitted to


@dataclass
class Blend:
    """The drama stage's outcome over the lines of `rows`."""

    score: np.ndarray  # float [P]: blended where `unsure`, the line stages' elsewhere
    unsure: np.ndarray  # bool [L]: lines whose score was blended
    examples: int  # sure lines the drama trees were fitted on


def drama_blend(ctx: Context, rows: PairRows, score: np.ndarray, confidence: np.ndarray, exclude: np.ndarray,
                full: Stage, settings: DramaStage) -> Blend | None:
    """Blend the drama trees into the scores of the unsure lines of `rows` (None: the drama
    has too few sure lines or no unsure ones). `exclude` [L]: lines neither example nor blended."""
    from dramasr.reason.policy import subset_rows  # the policy imports this module
    from dramasr.train import fit_trees

    sure = (confidence >= settings.confidence) & ~exclude
    unsure = (confidence < settings.confidence) & ~exclude
    if sure.sum() < settings.min_lines or not unsure.any():
        return None
    examples = np.flatnonzero(sure)
    if len(examples) > settings.max_lines:
        examples = np.sort(np.random.default_rng(0).choice(examples, settings.max_lines, replace=False))
    taken = np.zeros(len(sure), bool)
    taken[examples] = True
    fit_rows, fit_at = subset_rows(rows, taken)
    X, names = feature_matrix(ctx, fit_rows, full.tools)
    keep = [k for k, name in enumerate(names) if name not in ECHOES]
    best_row, _, _ = top_two(score, rows.starts)
    answer = np.repeat(rows.cls[best_row][taken], np.diff(fit_rows.starts))
    trees = fit_trees(X[:, keep], fit_rows.cls == answer, settings.tree_params)
    del X
    read_rows, read_at = subset_rows(rows, unsure)
    X, _ = feature_matrix(ctx, read_rows, full.tools)
    drama_score = normalise(trees.predict_proba(X[:, keep]), read_rows.starts)
    out = score.copy()
    out[read_at] = (1.0 - settings.weight) * score[read_at] + settings.weight * drama_score
    return Blend(out, unsure, len(examples))


__all__ = ["ECHOES", "Blend", "DramaStage", "drama_blend"]
