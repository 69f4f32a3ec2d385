"""dialogue_context: the neighbouring lines' current labels and the turn-taking pattern.

Per (line, candidate): does the candidate speak the previous/next line (and the ones
before/after those: A-B-A-B alternation), how many of the +-N lines are the candidate's,
the silences before and after the line (long silences are scene breaks), all within the
episode.
"""

from __future__ import annotations

import numpy as np

from dramasr.data.model import Drama
from dramasr.tools.base import Context, Tool

WINDOW_LINES = 5
SCENE_LINES = 20  # a wider window: who is in the scene at all
MAX_GAP_S = 30.0


def neighbour_class(ctx: Context, pair_line: np.ndarray, step: int) -> np.ndarray:
    """Class of the line `step` away within the episode, -1 outside it."""
    lo, hi = ctx.tables.episode_bounds
    other = pair_line + step
    inside = (other >= lo[pair_line]) & (other < hi[pair_line])
    return np.where(inside, ctx.label_class[np.clip(other, 0, len(ctx.label_class) - 1)], -1)


def build_gaps(drama: Drama, bounds: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Silence before and after each line in seconds (MAX_GAP_S at episode edges)."""
    lines = drama.lines
    lo, hi = bounds
    idx = np.arange(len(lines))
    before = np.full(len(lines), MAX_GAP_S)
    after = np.full(len(lines), MAX_GAP_S)
    has_prev = idx > lo
    before[has_prev] = lines.start[idx[has_prev]] - lines.end[idx[has_prev] - 1]
    has_next = idx + 1 < hi
    after[has_next] = lines.start[idx[has_next] + 1] - lines.end[idx[has_next]]
    return np.clip(before, -5, MAX_GAP_S), np.clip(after, -5, MAX_GAP_S)


class DialogueContext(Tool):
    name = "dialogue_context"
    description = (
        f"The +-{WINDOW_LINES} neighbouring lines with their current speakers: whether each candidate "
        "speaks the previous/next line or the ones two away (A-B-A-B alternation), how many nearby lines "
        "are the candidate's, and the silence before/after the line (a long silence is a scene break)."
    )
    cost = 0.5

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        before, after = ctx.tables.gaps
        neighbour_similarity = ctx.tables.neighbour_similarity
        prev1 = neighbour_class(ctx, pair_line, -1)
        next1 = neighbour_class(ctx, pair_line, 1)
        prev2 = neighbour_class(ctx, pair_line, -2)
        next2 = neighbour_class(ctx, pair_line, 2)
        nearby = np.zeros(len(pair_line), np.float32)
        voice_nearby = np.full(len(pair_line), -1.0, np.float32)  # best voice match among the candidate's nearby lines
        for step in [s for k in range(1, WINDOW_LINES + 1) for s in (-k, k)]:
            same = neighbour_class(ctx, pair_line, step) == pair_class
            nearby += same
            voice_nearby = np.where(same, np.maximum(voice_nearby, neighbour_similarity(step)[pair_line]),
                                    voice_nearby)
        scene = nearby.copy()
        for step in [s for k in range(WINDOW_LINES + 1, SCENE_LINES + 1) for s in (-k, k)]:
            scene += neighbour_class(ctx, pair_line, step) == pair_class
        asks = ctx.tables.asks
        lo, _ = ctx.tables.episode_bounds
        prev_asks = np.where(pair_line > lo[pair_line], asks[np.maximum(pair_line - 1, 0)], False)
        return {
            "ctx_scene": scene,
            "prev_asks": prev_asks.astype(np.float32),
            "ctx_prev": (prev1 == pair_class).astype(np.float32),
            "ctx_next": (next1 == pair_class).astype(np.float32),
            "ctx_prev2": (prev2 == pair_class).astype(np.float32),
            "ctx_next2": (next2 == pair_class).astype(np.float32),
            "ctx_prev_is_next": ((prev1 == next1) & (prev1 >= 0)).astype(np.float32),
            "ctx_nearby": nearby,
            "ctx_voice_nearby": voice_nearby,
            "voice_prev": neighbour_similarity(-1)[pair_line],
            "voice_next": neighbour_similarity(1)[pair_line],
            "gap_before_s": before[pair_line].astype(np.float32),
            "gap_after_s": after[pair_line].astype(np.float32),
        }

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        lo, hi = ctx.tables.episode_bounds
        lines = ctx.drama.lines
        rows = []
        for j in range(max(lo[line], line - 3), min(hi[line], line + 4)):
            mark = ">>" if j == line else "  "
            rows.append(f"{mark}[{j}] {ctx.state.label[j]}: {lines.text[j]}")
        v = next(iter(values.values()))
        rows.append(f"silence before {v['gap_before_s']:.1f} s, after {v['gap_after_s']:.1f} s")
        return "\n".join(rows)
