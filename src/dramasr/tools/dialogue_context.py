"""dialogue_context: the neighbouring lines' current labels and the turn-taking pattern.

Per (line, candidate): does the candidate speak the previous/next line (and the ones
before/after those: A-B-A-B alternation), how many of the +-N lines are the candidate's,
the silences before and after the line (long silences are scene breaks), all within the
episode.
"""

from __future__ import annotations

import numpy as np

from dramasr.tools.base import Context, Tool, episode_bounds

WINDOW_LINES = 5
SCENE_LINES = 20  # a wider window: who is in the scene at all
MAX_GAP_S = 30.0


def _bounds(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    if "episode_bounds" not in ctx.cache:
        ctx.cache["episode_bounds"] = episode_bounds(ctx.drama)
    return ctx.cache["episode_bounds"]


def neighbour_class(ctx: Context, pair_line: np.ndarray, step: int) -> np.ndarray:
    """Class of the line `step` away within the episode, -1 outside it."""
    lo, hi = _bounds(ctx)
    other = pair_line + step
    inside = (other >= lo[pair_line]) & (other < hi[pair_line])
    return np.where(inside, ctx.label_class[np.clip(other, 0, len(ctx.label_class) - 1)], -1)


def gaps(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Silence before and after each line in seconds (MAX_GAP_S at episode edges)."""
    if "gaps" not in ctx.cache:
        lines = ctx.drama.lines
        lo, hi = _bounds(ctx)
        idx = np.arange(len(lines))
        before = np.full(len(lines), MAX_GAP_S)
        after = np.full(len(lines), MAX_GAP_S)
        has_prev = idx > lo
        before[has_prev] = lines.start[idx[has_prev]] - lines.end[idx[has_prev] - 1]
        has_next = idx + 1 < hi
        after[has_next] = lines.start[idx[has_next] + 1] - lines.end[idx[has_next]]
        ctx.cache["gaps"] = (np.clip(before, -5, MAX_GAP_S), np.clip(after, -5, MAX_GAP_S))
    return ctx.cache["gaps"]


def _asks(ctx: Context) -> np.ndarray:
    """Lines that end in a question: the answer usually comes from someone else."""
    if "asks" not in ctx.cache:
        text = ctx.drama.lines.text
        ctx.cache["asks"] = np.fromiter((t.rstrip().endswith(("?", "？", "吗", "呢")) for t in text), bool, len(text))
    return ctx.cache["asks"]


def neighbour_similarity(ctx: Context, step: int) -> np.ndarray:
    """Voice similarity of each line to the line `step` away (0 outside the episode)."""
    key = f"neighbour_sim_{step}"
    if key not in ctx.cache:
        from dramasr.tools.audio_sim import unit_embeddings

        unit = unit_embeddings(ctx)
        lo, hi = _bounds(ctx)
        idx = np.arange(len(unit))
        other = idx + step
        inside = (other >= lo) & (other < hi)
        sims = np.zeros(len(unit), np.float32)
        sims[inside] = np.einsum("ij,ij->i", unit[idx[inside]], unit[other[inside]])
        ctx.cache[key] = sims
    return ctx.cache[key]


class DialogueContext(Tool):
    name = "dialogue_context"
    description = (
        f"The +-{WINDOW_LINES} neighbouring lines with their current speakers: whether each candidate "
        "speaks the previous/next line or the ones two away (A-B-A-B alternation), how many nearby lines "
        "are the candidate's, and the silence before/after the line (a long silence is a scene break)."
    )
    cost = 0.5

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        before, after = gaps(ctx)
        prev1 = neighbour_class(ctx, pair_line, -1)
        next1 = neighbour_class(ctx, pair_line, 1)
        prev2 = neighbour_class(ctx, pair_line, -2)
        next2 = neighbour_class(ctx, pair_line, 2)
        nearby = np.zeros(len(pair_line), np.float32)
        voice_nearby = np.full(len(pair_line), -1.0, np.float32)  # best voice match among the candidate's nearby lines
        for step in [s for k in range(1, WINDOW_LINES + 1) for s in (-k, k)]:
            same = neighbour_class(ctx, pair_line, step) == pair_class
            nearby += same
            voice_nearby = np.where(same, np.maximum(voice_nearby, neighbour_similarity(ctx, step)[pair_line]),
                                    voice_nearby)
        scene = nearby.copy()
        for step in [s for k in range(WINDOW_LINES + 1, SCENE_LINES + 1) for s in (-k, k)]:
            scene += neighbour_class(ctx, pair_line, step) == pair_class
        asks = _asks(ctx)
        lo, _ = _bounds(ctx)
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
            "voice_prev": neighbour_similarity(ctx, -1)[pair_line],
            "voice_next": neighbour_similarity(ctx, 1)[pair_line],
            "gap_before_s": before[pair_line].astype(np.float32),
            "gap_after_s": after[pair_line].astype(np.float32),
        }

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        lo, hi = _bounds(ctx)
        lines = ctx.drama.lines
        rows = []
        for j in range(max(lo[line], line - 3), min(hi[line], line + 4)):
            mark = ">>" if j == line else "  "
            rows.append(f"{mark}[{j}] {ctx.state.label[j]}: {lines.text[j]}")
        v = next(iter(values.values()))
        rows.append(f"silence before {v['gap_before_s']:.1f} s, after {v['gap_after_s']:.1f} s")
        return "\n".join(rows)
