"""The main job: seeds -> label propagation -> reasoning over the tools' evidence -> one
prediction per line (speaker, confidence, runner-up, and the evidence that decided it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.model import Drama
from dramasr.data.predictions import PredictionRecord, rank_with_speaker
from dramasr.progress import Progress
from dramasr.reason.features import PairRows, feature_table
from dramasr.reason.model import AttributionModel, load_default_model
from dramasr.reason.policy import BLOCK_LINES, Decisions, run_policy
from dramasr.runtime import return_freed_memory
from dramasr.tools import Context, LabelState, label_state_from_propagation
from dramasr.tools.audio_sim import build_cohort_stats
from dramasr.tools.tables import unit_rows

log = logging.getLogger(__name__)

# evidence columns written per line for the chosen speaker and the runner-up
_EVIDENCE = {
    "lp_score": "propagation_score", "audio_top": "voice_top5", "audio_local_top": "voice_episode_top3",
    "audio_model_logp": "voice_model_logp", "cluster_voice": "voice_cluster_similarity",
    "cluster_face_share": "voice_cluster_face_share",
    "face_hits": "face_detections", "face_score": "face_score", "ctx_prev": "spoke_previous_line",
    "ctx_next": "spoke_next_line", "name_in_line": "named_in_line", "name_in_prev": "named_in_previous_line",
}


@dataclass
class Attribution:
    """Predictions of one drama plus what it cost."""

    records: list[PredictionRecord]
    labels: list[str]
    propagation_labels: list[str]
    tool_calls: np.ndarray  # int32 [N] (0 for seeds)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def calls_per_line(self) -> float:
        attributed = self.tool_calls > 0
        return float(self.tool_calls[attributed].mean()) if attributed.any() else 0.0


def propagate_labels(drama: Drama, seeds: Mapping[str, Sequence[int]] | str | Path = "1pct",
                     hook: Progress | None = None) -> LabelState:
    """Our label propagation from the seeds, as the LabelState the tools read (also what training sees)."""
    from dramasr.propagate import propagate_drama

    return label_state_from_propagation(propagate_drama(drama, seeds, progress=hook))


def attribute(drama: Drama, *, seeds: Mapping[str, Sequence[int]] | str | Path = "1pct",
              labels: LabelState | None = None, model: AttributionModel | None = None,
              passes: int | None = None, hook: Progress | None = None) -> Attribution:
    """Attribute every line of a drama.

    seeds: a key of the drama's init_seeds_<key>.json (default "1pct"), a path, or
    {name: [line, ...]}; ignored when `labels` (a finished propagation) is given.
    model: the attribution model (default: the one shipped in the package).
    hook(step, done, total): progress (`dramasr.progress`).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as aside:
        # the cohort statistics need no labels: built beside propagation, whose rounds leave
        # part of the cores idle (zhen_huan_zhuan: ~2 s sooner; the same values)
        cohort = aside.submit(build_cohort_stats, unit_rows(drama.lines.embedding))
        if labels is None:
            labels = propagate_labels(drama, seeds, hook=hook)
            return_freed_memory()  # propagation's similarity blocks
        timings["propagation_s"] = time.perf_counter() - t0
        model = model or load_default_model()
        t1 = time.perf_counter()
        # no name holds the first context: its label-dependent tables (a first pass's, [lines x
        # characters] each) are freed as soon as run_policy moves on to the next labels
        final_ctx, decisions = run_policy(Context.build(drama, labels, cohort=cohort), model, passes=passes,
                                          hook=hook)
    timings["reasoning_s"] = time.perf_counter() - t1
    records = _records(final_ctx, labels, decisions)
    tool_calls = np.zeros(len(drama.lines), np.int32)
    tool_calls[decisions.lines] = decisions.tool_calls
    timings["total_s"] = time.perf_counter() - t0
    return Attribution(records, decisions.labels, list(labels.label), tool_calls, timings)


def _records(ctx: Context, labels: LabelState, decisions: Decisions) -> list[PredictionRecord]:
    drama = ctx.drama
    episode = drama.lines.episode.tolist()
    rows, score = decisions.rows, decisions.score
    n_lines = len(rows.lines)
    counts = np.diff(rows.starts)
    # runner-up row per line: best row among the others
    masked = score.copy()
    masked[decisions.best_row] = -1.0
    order = np.lexsort((-masked, np.repeat(np.arange(n_lines), counts)))
    second_row = np.where(counts > 1, order[rows.starts[:-1]], decisions.best_row)
    evidence = _evidence_values(ctx, rows, decisions.best_row, second_row)
    # nothing reads the voice and face tables again: the records are built without them
    ctx.labels.release()
    ctx.tables.release()
    return_freed_memory()
    out: list[PredictionRecord | None] = [None] * len(drama.lines)
    for i in np.flatnonzero(labels.is_seed).tolist():
        out[i] = PredictionRecord(i, episode[i], labels.label[i], 1.0, None, ((labels.label[i], 1.0),), {"seed": True})
    final = decisions.labels
    parts = ctx.tables.speech_parts
    second_cls = rows.cls[second_row]
    group_size = decisions.group_size if decisions.group_size is not None else np.zeros(n_lines, np.int32)
    has_voice = drama.lines.has_voice
    # each evidence column as rounded Python floats, once (not a numpy scalar per line and column)
    shown = [(v, [round(x, 3) for x in evidence[c][0].tolist()], [round(x, 3) for x in evidence[c][1].tolist()])
             for c, v in _EVIDENCE.items() if c in evidence]
    for k, i in enumerate(rows.lines.tolist()):
        lo, hi = rows.starts[k], rows.starts[k + 1]
        ranked = sorted(range(lo, hi), key=lambda j: -score[j])
        confidence = float(decisions.confidence[k])
        if group_size[k]:  # the group stage gave the line's whole new-character group to one character
            confidence = float(decisions.group_probability[k])  # type: ignore[index]
        cands, runner = rank_with_speaker(
            final[i], [(ctx.classes[rows.cls[j]], round(float(score[j]), 4)) for j in ranked],
            round(confidence, 4), keep=3)
        ev: dict[str, Any] = {
            "stage": "full" if decisions.full_stage[k] else "cheap",
            "tool_calls": int(decisions.tool_calls[k]),
            "propagation": labels.label[i],
            "speaker": {v: first[k] for v, first, _ in shown},
        }
        if parts[i] > 1:
            ev["speakers_in_subtitle"] = int(parts[i])  # words of several speakers: named "A/B"
        if not has_voice[i]:
            ev["voice"] = "none: the line's voice embedding is unusable or missing (see the load report)"
        if i in drama.mended_lines:
            ev["mended"] = drama.mended_lines[i]  # what the loader repaired in this line (MEND_KINDS)
        if runner is not None and runner == ctx.classes[second_cls[k]]:
            ev["runner_up"] = {v: second[k] for v, _, second in shown}
        if group_size[k]:
            ev["group_stage"] = {"group_lines": int(group_size[k]), "probability": round(confidence, 4),
                                 "line_stage_speaker": ctx.classes[rows.cls[decisions.best_row[k]]]}
        out[i] = PredictionRecord(i, episode[i], final[i], round(confidence, 4), runner, cands, ev)
    return [r for r in out if r is not None]


def _evidence_values(ctx: Context, rows: PairRows, best_row: np.ndarray,
                     second_row: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Feature values of the chosen and runner-up candidates of every line."""
    n = len(rows.lines)
    picked = np.concatenate([best_row, second_row])
    line = rows.line[picked]
    order = np.argsort(line, kind="stable")
    sub = PairRows(line[order], rows.cls[picked][order], np.arange(0, 2 * n + 1, 2), rows.lines)
    tools = ["audio_sim", "dialogue_context", "voice_cluster", "faces_on_screen", "name_mentions"]
    wanted: dict[str, list[np.ndarray]] = {}
    for lo in range(0, n, BLOCK_LINES):  # a block of lines at a time: all columns of all rows are ~200 MB
        X, names, _ = feature_table(ctx, sub.of_lines(lo, min(n, lo + BLOCK_LINES)), tools)
        for c, name in enumerate(names):
            if name in _EVIDENCE:
                wanted.setdefault(name, []).append(X[:, c])
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    values = {}
    for name, parts in wanted.items():
        col = np.concatenate(parts)[back]
        values[name] = (col[:n], col[n:])
    return values


def attribute_drama(drama: Drama, seeds: Mapping[str, Sequence[int]] | str | Path = "1pct", *,
                    model_path: str | Path | None = None, passes: int | None = None,
                    hook: Progress | None = None) -> list[PredictionRecord]:
    """`dramasr attribute`: the prediction records of every line."""
    model = AttributionModel.load(model_path) if model_path is not None else None
    return attribute(drama, seeds=seeds, model=model, passes=passes, hook=hook).records
