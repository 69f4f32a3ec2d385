"""Pair rows for the attribution model: one row per (line, candidate), candidates being
propagation's named candidates plus OTHER, with columns from the propagation scores and
from the evidence tools, and each key column also relative to the best candidate of its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dramasr.data.model import NARRATION_MARK, NEW_CHARACTER_PREFIX
from dramasr.tools import TOOLS, Context
from dramasr.tools.tables import CANDIDATES_READ, find_sorted
from dramasr.tools.topk import versus_rival
from dramasr.tools.voice_cluster import EXTRA_CANDIDATES, cluster_candidates

TOP_K = CANDIDATES_READ  # propagation candidates kept per line
NO_RANK = 20.0
# columns also given as (value - best value among the line's candidates)
RELATIVE = ("lp_score", "audio_top", "audio_max", "audio_local_top", "audio_seed_max", "audio_centroid",
            "face_hits", "face_score", "audio_scene_top", "audio_scene_max")
# columns also given as (value - best value among the line's OTHER candidates): the margin
# over the strongest rival, positive only for the line's leader
VERSUS_RIVAL = ("audio_top", "audio_local_top", "audio_scene_top", "audio_scene_max", "audio_centroid",
                "audio_max", "audio_seed_max", "audio_top_vs_typical", "lp_score", "face_hits", "face_score",
                "face_share", "ctx_scene", "ctx_nearby", "ctx_voice_nearby", "audio_model_logp")
# the same for columns where lower is better (the margin is the rival's value minus this one's)
VERSUS_RIVAL_LOWER = ("face_near_s",)


@dataclass
class PairRows:
    """Pair rows of some lines: rows of one line are contiguous, lines in ascending order."""

    line: np.ndarray  # int64 [P]
    cls: np.ndarray  # int32 [P]
    starts: np.ndarray  # int64 [L+1], rows of the k-th line are starts[k]:starts[k+1]
    lines: np.ndarray  # int64 [L]
    # propagation's columns of these rows, built on first use: candidates do not change when
    # labels do, so every pass over the same rows reads them again
    propagation: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.line)

    def of_lines(self, lo: int, hi: int) -> PairRows:
        """The rows of the lo-th to (hi-1)-th of these lines, with their propagation columns."""
        a, b = int(self.starts[lo]), int(self.starts[hi])
        return self.at(slice(a, b), self.starts[lo:hi + 1] - a, self.lines[lo:hi])

    def at(self, position: np.ndarray | slice, starts: np.ndarray, lines: np.ndarray) -> PairRows:
        """The rows at `position` (whole lines, in order), grouped by `starts`, with their
        propagation columns (each row's own, so a subset reads them as the whole did)."""
        part = PairRows(self.line[position], self.cls[position], starts, lines)
        if self.propagation is not None:
            part.propagation = {name: column[position] for name, column in self.propagation.items()}
        return part


def candidate_pairs(ctx: Context, lines: np.ndarray, top_k: int = TOP_K,
                    cluster_extra: int = EXTRA_CANDIDATES) -> PairRows:
    """Propagation's top_k named candidates of each line, the named characters its voice
    cluster sounds most like (see `voice_cluster`), then OTHER (for a line without a voice,
    `Context.voiceless_classes`)."""
    pair_line: list[int] = []
    pair_class: list[int] = []
    starts = [0]
    for i in lines.tolist():
        ids = ctx.candidate_classes(i, top_k)
        extra = [c for c in cluster_candidates(ctx, i, cluster_extra) if c not in ids]
        ids = ids[:-1] + extra + ids[-1:]
        pair_line.extend([i] * len(ids))
        pair_class.extend(ids)
        starts.append(len(pair_line))
    return PairRows(np.asarray(pair_line, np.int64), np.asarray(pair_class, np.int32),
                    np.asarray(starts, np.int64), np.asarray(lines, np.int64))


def _propagation_columns(ctx: Context, rows: PairRows) -> dict[str, np.ndarray]:
    """Score/rank of each candidate in propagation's list; OTHER takes its best non-named entry."""
    n = len(rows)
    score = np.zeros(n, np.float32)
    rank = np.full(n, NO_RANK, np.float32)
    n_cands = np.zeros(n, np.float32)
    new_char = np.zeros(n, np.float32)
    other = ctx.other
    for k, i in enumerate(rows.lines.tolist()):
        names, scores = ctx.state.candidates[i], ctx.state.scores[i]
        by_class: dict[int, tuple[float, int]] = {}
        for r, (name, s) in enumerate(zip(names[:TOP_K], scores[:TOP_K], strict=False)):
            c = ctx.class_of.get(name, other)
            if c not in by_class:
                by_class[c] = (s, r)
        is_new = float(any(nm.startswith(NEW_CHARACTER_PREFIX) for nm in names[:1]))
        for j in range(rows.starts[k], rows.starts[k + 1]):
            s, r = by_class.get(int(rows.cls[j]), (0.0, NO_RANK))
            score[j], rank[j] = s, r
            n_cands[j] = len(names)
            new_char[j] = is_new
    return {"lp_score": score, "lp_rank": rank, "lp_n_candidates": n_cands, "lp_top_is_new": new_char}


def _neighbour_scores(ctx: Context, rows: PairRows) -> dict[str, np.ndarray]:
    """Propagation's score of the candidate on the previous and next line (0 if not listed)."""
    keys, values = ctx.tables.propagation_scores
    n_classes = len(ctx.classes)
    lo, hi = ctx.tables.episode_bounds
    out = {}
    for name, step in (("lp_score_prev", -1), ("lp_score_next", 1)):
        other = rows.line + step
        inside = (other >= lo[rows.line]) & (other < hi[rows.line])
        query = other * n_classes + rows.cls
        pos, found = find_sorted(keys, query)
        found &= inside
        out[name] = np.where(found, values[pos] if len(keys) else 0.0, 0.0).astype(np.float32)
    return out


def with_propagation_columns(ctx: Context, rows: PairRows) -> PairRows:
    """`rows` with its propagation columns built (they are kept on the rows: every pass reads them)."""
    if rows.propagation is None:
        rows.propagation = _propagation_columns(ctx, rows) | _neighbour_scores(ctx, rows)
    return rows


def base_columns(ctx: Context, rows: PairRows) -> dict[str, np.ndarray]:
    columns = dict(with_propagation_columns(ctx, rows).propagation or {})
    lines = ctx.drama.lines
    duration = lines.duration.astype(np.float32)
    narration = [k for k, name in enumerate(ctx.classes) if NARRATION_MARK in name]
    columns.update({
        "is_other": (rows.cls == ctx.other).astype(np.float32),
        "is_current": (ctx.label_class[rows.line] == rows.cls).astype(np.float32),
        "duration_s": duration[rows.line],
        "text_len": ctx.tables.text_length[rows.line],
        # several speakers in one subtitle: no single named character is its speaker
        "speech_parts": ctx.tables.speech_parts[rows.line],
        # the narrator is offered on every line (no face gates it): a candidate of its own kind
        "is_narration": np.isin(rows.cls, narration).astype(np.float32),
    })
    return columns


def _relative(values: np.ndarray, rows: PairRows) -> np.ndarray:
    best = np.maximum.reduceat(values, rows.starts[:-1]) if len(values) else values
    return values - np.repeat(best, np.diff(rows.starts))


def feature_table(ctx: Context, rows: PairRows, tools: Sequence[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """[P, F] float32 matrix of the base columns plus the given tools' columns, the column
    names, and the tool each column comes from ("base" for propagation and line columns)."""
    columns = base_columns(ctx, rows)
    owner = dict.fromkeys(columns, "base")
    for name in tools:
        produced = TOOLS[name].features(ctx, rows.line, rows.cls)
        columns.update(produced)
        owner.update(dict.fromkeys(produced, name))
    for name in RELATIVE:
        if name in columns:
            columns[name + "_vs_best"] = _relative(columns[name].astype(np.float32), rows)
            owner[name + "_vs_best"] = owner[name]
    for name in VERSUS_RIVAL + VERSUS_RIVAL_LOWER:
        if name in columns:
            sign = -1.0 if name in VERSUS_RIVAL_LOWER else 1.0
            columns[name + "_vs_rival"] = versus_rival(sign * columns[name].astype(np.float32), rows.starts)
            owner[name + "_vs_rival"] = owner[name]
    names = list(columns)
    return np.column_stack([columns[n].astype(np.float32) for n in names]), names, [owner[n] for n in names]


def feature_matrix(ctx: Context, rows: PairRows, tools: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    X, names, _ = feature_table(ctx, rows, tools)
    return X, names
