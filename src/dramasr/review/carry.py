"""A correction carried by voice: "line i is A, not B" says something about the voice of line i.

Lines of the same episode that the predictions the person corrected gave to B, whose voice is
very close to line i's and closer to it than to B's own confident lines there, are most likely
the same voice as line i, so A's too (or, when the person said Other, an extra's as well). A
re-run with the correction as a seed reaches some of them through propagation and the
reasoner; this rule reaches the rest directly, after the re-run.

Which lines move (`carry_moves`), for each line correction whose answer differs from what the
person saw (`was`), names a character or Other (not "A/B": a line of two voices is neither's
voice), and whose `was` is not a new-character group (a person who corrects one line of such
a group and does not name the group says the group is not one voice):
- the line was not a seed, corrected, or in a corrected group, and is in the same episode;
- the person saw it labelled `was` too (in `previous`, the predictions corrected);
- the cosine of its voice to the corrected line's is at least CARRY_COSINE (OTHER_COSINE when
  the answer is Other: an extra's voice is further from the named one it was taken for), and
  at least CARRY_MARGIN above (at most -CARRY_MARGIN below) its mean cosine to the closest REFERENCE_K of the lines the
  predictions gave to `was` in that episode with confidence REFERENCE_CONFIDENCE or more
  (lines the person confirmed as `was` count among them);
- a line several corrections reach follows the one whose voice is closest.

The thresholds were chosen on the training dramas (ren_shi_jian, zhen_huan_zhuan) with
`benchmarks/review_carry.py`, never on the test dramas (BENCHMARKS.md, issue 21).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dramasr.data.model import NEW_CHARACTER_PREFIX, Drama
from dramasr.data.predictions import PredictionRecord
from dramasr.review.corrections import CorrectionSet, is_multi_speaker

CARRY_COSINE = 0.6  # a line corrected to a named character
OTHER_COSINE = 0.55  # a line corrected to Other (an extra)
CARRY_MARGIN: float | None = 0.0
REFERENCE_K = 3
REFERENCE_CONFIDENCE = 0.9


@dataclass(frozen=True)
class CarryRule:
    """The rule's thresholds (the shipped ones by default)."""

    cosine: float = CARRY_COSINE
    other_cosine: float = OTHER_COSINE
    margin: float | None = CARRY_MARGIN
    reference_k: int = REFERENCE_K
    reference_confidence: float = REFERENCE_CONFIDENCE


@dataclass(frozen=True)
class Move:
    line: int
    speaker: str
    source: int  # the corrected line it follows
    cosine: float  # to the corrected line's voice
    reference: float  # to the previous speaker's confident lines (-1 when there are none)


def unit_voices(drama: Drama) -> np.ndarray:
    emb = np.asarray(drama.lines.embedding, np.float32)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-8)
    if drama.lines.has_voice is not None:
        unit[~drama.lines.has_voice] = 0.0
    return unit


def carry_moves(drama: Drama, labels: Sequence[str | None], confidence: np.ndarray, settled: np.ndarray,
                corrections: CorrectionSet, rule: CarryRule | None = None, unit: np.ndarray | None = None
                ) -> list[Move]:
    """The lines the corrections carry to, by voice (see the module's docstring). `labels` and
    `confidence`: the predictions the person corrected; `settled`: lines no rule may move."""
    rule = rule or CarryRule()
    unit = unit_voices(drama) if unit is None else unit
    episode = drama.lines.episode
    label_arr = np.asarray([s if s is not None else "" for s in labels], dtype=object)
    conf = np.where(np.isnan(confidence), 0.0, confidence)
    named = drama.named_characters()
    confirmed = {line for line, c in corrections.lines.items() if c.speaker is not None and c.speaker == c.was}
    best: dict[int, Move] = {}
    for line, c in sorted(corrections.lines.items()):
        if (c.speaker is None or c.was is None or c.speaker == c.was or line >= len(label_arr)
                or is_multi_speaker(c.speaker) or c.was.startswith(NEW_CHARACTER_PREFIX)):
            continue
        start, stop = _episode_span(episode, line)
        idx = np.arange(start, stop)
        same = idx[(label_arr[idx] == c.was) & ~settled[idx] & (idx != line)]
        if not len(same) or not np.any(unit[line]):
            continue
        cos = unit[same] @ unit[line]
        keep = cos >= (rule.cosine if c.speaker in named else rule.other_cosine)
        if not keep.any():
            continue
        same, cos = same[keep], cos[keep]
        if rule.margin is None:
            for j, cj in zip(same.tolist(), cos.tolist(), strict=True):
                if j not in best or cj > best[j].cosine:
                    best[j] = Move(j, str(c.speaker), int(line), float(cj), float("nan"))
            continue
        ref_mask = (label_arr[idx] == c.was) & (conf[idx] >= rule.reference_confidence)
        ref_mask |= np.isin(idx, list(confirmed)) & (label_arr[idx] == c.was)
        ref = idx[ref_mask & (idx != line)]
        ref = ref[~np.isin(ref, same)]
        if len(ref):
            sims = unit[same] @ unit[ref].T
            k = min(rule.reference_k, len(ref))
            reference = np.sort(sims, axis=1)[:, -k:].mean(1)
        else:
            reference = np.full(len(same), -1.0)
        for j, cj, rj in zip(same.tolist(), cos.tolist(), reference.tolist(), strict=True):
            if cj < rj + rule.margin:
                continue
            if j not in best or cj > best[j].cosine:
                best[j] = Move(j, str(c.speaker), int(line), float(cj), float(rj))
    return [best[j] for j in sorted(best)]


def _episode_span(episode: np.ndarray, line: int) -> tuple[int, int]:
    ep = episode[line]
    start = int(np.searchsorted(episode, ep, side="left"))
    stop = int(np.searchsorted(episode, ep, side="right"))
    return start, stop


def carry_records(records: Sequence[PredictionRecord], moves: Sequence[Move]) -> list[PredictionRecord]:
    """Records with each move applied; the evidence says which correction the line followed."""
    out = list(records)
    by_line = {r.line: k for k, r in enumerate(out)}
    for m in moves:
        k = by_line[m.line]
        old = out[k]
        evidence: dict[str, Any] = dict(old.evidence or {})
        evidence["carried"] = {"from_line": m.source, "voice_cosine": round(m.cosine, 3),
                               "to_was_speaker": round(m.reference, 3) if np.isfinite(m.reference) else None,
                               "rerun_speaker": old.speaker}
        rest = tuple((n, s) for n, s in (old.candidates or ()) if n != m.speaker)
        out[k] = PredictionRecord(m.line, old.episode, m.speaker, None, old.speaker,
                                  ((m.speaker, float("nan")), *rest)[:3], evidence)
    return out


def settled_lines(n: int, evidence: Sequence[Mapping[str, Any] | None], corrections: CorrectionSet) -> np.ndarray:
    """Lines no carry may move: seeds, corrected lines, lines of corrected groups."""
    settled = np.zeros(n, bool)
    for i, ev in enumerate(evidence):
        if ev and (ev.get("seed") or ev.get("correction")):
            settled[i] = True
    settled[[i for i in corrections.lines if i < n]] = True
    settled[[i for i in corrections.group_lines() if i < n]] = True
    return settled


__all__ = ["CARRY_COSINE", "CARRY_MARGIN", "CarryRule", "Move", "carry_moves", "carry_records", "settled_lines",
           "unit_voices"]
