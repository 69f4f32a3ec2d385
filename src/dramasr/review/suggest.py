"""Which lines a person should check first: those whose correction is expected to fix the
most lines, not merely the least confident ones.

A line's chance of being wrong is 1 - its confidence. What a correction carries further:
- a new-character group (every line propagation gave to one unknown voice, "新角色-82"),
  or a group the group stage gave to a character as a whole: naming it settles every line
  of the group, so the expected gain is the sum of its lines' chances of being wrong;
- any other line: it becomes a seed, and lines of the same episode that sound like it and
  carry the same label tend to follow it; each counts by how alike the voices are
  (`voice_weight`) times its own chance of being wrong.
Units are chosen greedily: after each choice, the lines it covers count less (by the same
voice weight), so the list does not spend ten looks on one voice.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER, Drama
from dramasr.data.predictions import Predictions
from dramasr.reason.model import AttributionModel
from dramasr.review.corrections import CorrectionSet

# Voice weight ramp: on the training drama (ren_shi_jian, 4 episodes) pairs of lines in one
# episode with cosine above 0.5 are the same speaker 81-95 % of the time, above 0.6 97-100 %;
# below 0.4 the cosine says little. Chosen there, not on the test dramas.
VOICE_LOW, VOICE_HIGH = 0.4, 0.6
MIN_WRONG = 0.02  # lines surer than this are not worth counting as followers
# How often a new-character group that attribution leaves unnamed is in truth mostly one
# named character's, pooled over both training dramas: 6 of 190 groups on ren_shi_jian, 50 of
# 106 on zhen_huan_zhuan, 56 of 296 (0.19) together (`python benchmarks/review_group_model.py
# --lodo ...`). The share differs so much between dramas that no reading of the group stage
# carries from one to the other: fitted on one training drama and scored on the other, a
# logistic model of the group's voice cosine to the nearest named voice ranks the groups worse
# than chance both ways (AUC 0.30 and 0.19), so does the stage's probability (0.29, 0.13) and
# both together (0.28, 0.12). Every group therefore counts at the pooled share; the stage's
# view of a group (`group_guesses`) only goes into the reason shown for it.
GROUP_PRIOR = 0.19
UNKNOWN_CONFIDENCE = 0.5  # a line without a confidence


@dataclass(frozen=True)
class Suggestion:
    """One place to look: a line (or a group, shown through one representative line)."""

    line: int
    episode: int
    speaker: str
    confidence: float | None
    expected_fixes: float  # expected lines fixed by correcting it, itself included
    kind: str  # "line" or "group"
    group: str | None  # the group's label ("新角色-82", or the character a group was given to)
    group_lines: tuple[int, ...]
    followers: int  # lines that follow it (group members or same-voice neighbours)
    reason: str

    def to_dict(self) -> dict:
        return {"line": self.line, "episode": self.episode, "speaker": self.speaker,
                "confidence": self.confidence, "expected_fixes": round(self.expected_fixes, 3), "kind": self.kind,
                "group": self.group, "group_lines": list(self.group_lines), "followers": self.followers,
                "reason": self.reason}


def voice_weight(cosine: np.ndarray) -> np.ndarray:
    return np.clip((cosine - VOICE_LOW) / (VOICE_HIGH - VOICE_LOW), 0.0, 1.0)


def _unit_rows(embedding: np.ndarray) -> np.ndarray:
    emb = np.asarray(embedding, np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-8)


def prediction_groups(pred: Predictions) -> dict[str, list[int]]:
    """Groups a single correction can name: lines sharing a new-character label, and the lines
    the group stage gave to a character together (same speaker, group size and probability)."""
    groups: dict[str, list[int]] = {}
    for i, (speaker, evidence) in enumerate(zip(pred.speaker, pred.evidence, strict=True)):
        if speaker is None:
            continue
        if speaker.startswith(NEW_CHARACTER_PREFIX):
            groups.setdefault(speaker, []).append(i)
        elif evidence and isinstance(evidence.get("group_stage"), dict):
            g = evidence["group_stage"]
            key = f"{speaker} (group of {g.get('group_lines')}, p={g.get('probability')})"
            groups.setdefault(key, []).append(i)
    return groups


@dataclass(frozen=True)
class GroupGuess:
    """The group stage's view of a new-character group it left alone."""

    speaker: str  # its best named candidate
    probability: float  # the group stage's probability that the group is that character's
    best_voice: float = float("nan")  # cosine of the group's voice to the nearest named character's
    named: float | None = None  # a chance of its own that the group is mostly a named character's (none shipped)


def group_guesses(drama: Drama, pred: Predictions, *, seeds: Mapping[str, Sequence[int]] | str | Path = "1pct",
                  corrections: CorrectionSet | None = None, model: AttributionModel | None = None
                  ) -> dict[str, GroupGuess]:
    """For each new-character group of the predictions, the group stage's best named candidate
    and its probability (below the stage's threshold, or the stage would have named it).
    Reruns propagation (the group stage reads its candidate lists) from the seeds and the
    corrections the predictions were made with, then scores the groups in the context of
    the predicted labels."""
    from dramasr.propagate import propagate_drama, resolve_seeds
    from dramasr.reason.groups import FEATURES, group_rows
    from dramasr.reason.model import load_default_model, select
    from dramasr.review.seeding import corrected_seeds
    from dramasr.tools import Context, label_state_from_propagation

    model = model or load_default_model()
    if model.groups is None:
        return {}
    merged = corrected_seeds(resolve_seeds(drama, seeds), corrections or CorrectionSet())
    state = label_state_from_propagation(propagate_drama(drama, merged))
    labels = [s if s is not None else old for s, old in zip(pred.speaker, state.label, strict=True)]
    ctx = Context.build(drama, state).relabel(labels)
    rows = group_rows(ctx)
    if not len(rows):
        return {}
    probability = model.groups.trees.predict_proba(rows.X[:, select(list(FEATURES), model.groups.feature_names)])
    cluster, _ = ctx.labels.new_character_clusters
    name_of = {int(cluster[i]): ctx.state.label[i] for i in np.flatnonzero(cluster >= 0).tolist()}
    best_voice = rows.X[:, FEATURES.index("group_best_voice")]
    out: dict[str, GroupGuess] = {}
    for k in np.argsort(-probability, kind="stable").tolist():
        name = name_of[int(rows.group[k])]
        if name not in out:
            p, voice = float(probability[k]), float(best_voice[k])
            out[name] = GroupGuess(ctx.classes[int(rows.cls[k])], p, voice)
    return out


def suggest(drama: Drama, pred: Predictions, n: int, corrections: CorrectionSet | None = None,
            guesses: Mapping[str, GroupGuess] | None = None, group_prior: float = GROUP_PRIOR) -> list[Suggestion]:
    """The n lines (or groups) whose correction is expected to fix the most lines, best first."""
    corrections = corrections or CorrectionSet()
    n_lines = len(drama.lines)
    confidence = np.where(np.isnan(pred.confidence), UNKNOWN_CONFIDENCE, pred.confidence)
    wrong = np.clip(1.0 - confidence, 0.0, 1.0)
    settled = np.zeros(n_lines, bool)
    for i, evidence in enumerate(pred.evidence):
        if evidence and (evidence.get("seed") or evidence.get("correction")):
            settled[i] = True
    settled[list(corrections.lines)] = True
    settled[list(corrections.group_lines())] = True
    settled |= np.fromiter((s is None for s in pred.speaker), bool, n_lines)
    wrong[settled] = 0.0
    unit = _unit_rows(drama.lines.embedding)
    speakers = [s or "" for s in pred.speaker]

    groups = {name: np.asarray([i for i in lines if not settled[i]], np.int64)
              for name, lines in prediction_groups(pred).items()}
    groups = {name: lines for name, lines in groups.items() if len(lines)}
    for name, lines in groups.items():
        if name.startswith(NEW_CHARACTER_PREFIX):  # its lines are as likely wrong as it is likely a named one's
            guess = (guesses or {}).get(name)
            named = guess.named if guess is not None and guess.named is not None else group_prior
            wrong[lines] = np.maximum(wrong[lines], named)
    in_group = np.zeros(n_lines, bool)
    for lines in groups.values():
        in_group[lines] = True

    # neighbours of each candidate line: same episode, same label, alike voice
    neighbours: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for ep in drama.episodes:
        idx = np.arange(ep.line_start, ep.line_stop)
        open_lines = idx[(wrong[idx] >= MIN_WRONG) & ~in_group[idx]]
        targets = idx[wrong[idx] >= MIN_WRONG]
        if len(open_lines) == 0 or len(targets) == 0:
            continue
        weight = voice_weight(unit[open_lines] @ unit[targets].T)
        same = np.asarray([speakers[i] for i in open_lines])[:, None] == np.asarray(
            [speakers[j] for j in targets])[None, :]
        weight *= same
        weight[open_lines[:, None] == targets[None, :]] = 0.0
        for row, i in enumerate(open_lines.tolist()):
            keep = np.flatnonzero(weight[row] > 0)
            neighbours[i] = (targets[keep], weight[row, keep])

    residual = wrong.copy()

    def line_value(i: int) -> float:
        js, ws = neighbours.get(i, (np.zeros(0, np.int64), np.zeros(0)))
        return float(residual[i] * (1.0 + (float(ws @ residual[js]) if len(js) else 0.0)))

    heap: list[tuple[float, int, str]] = []  # (-value, tiebreak line, group name or "")
    for name, lines in groups.items():
        heap.append((-float(residual[lines].sum()), int(lines[0]), name))
    for i in neighbours:
        heap.append((-line_value(i), i, ""))
    heapq.heapify(heap)
    out: list[Suggestion] = []
    while heap and len(out) < n:
        neg, i, name = heapq.heappop(heap)
        value = float(residual[groups[name]].sum()) if name else line_value(i)
        if value <= 1e-9:
            continue
        if heap and value < -heap[0][0] - 1e-12:  # stale: its followers were covered since
            heapq.heappush(heap, (-value, i, name))
            continue
        if name:
            lines = groups[name]
            rep = _medoid(unit, lines)
            out.append(_group_suggestion(drama, pred, rep, name, lines, value, (guesses or {}).get(name)))
            residual[lines] = 0.0
        else:
            js, ws = neighbours.get(i, (np.zeros(0, np.int64), np.zeros(0)))
            out.append(_line_suggestion(drama, pred, i, value, js, ws, residual))
            residual[i] = 0.0
            residual[js] *= 1.0 - ws
    return out


def _medoid(unit: np.ndarray, lines: np.ndarray) -> int:
    """The line whose voice is closest to the group's mean voice: the one to listen to."""
    mean = unit[lines].sum(0)
    return int(lines[int(np.argmax(unit[lines] @ mean))])


def _conf_text(pred: Predictions, i: int) -> str:
    c = pred.confidence[i]
    return "no confidence" if np.isnan(c) else f"confidence {c:.2f}"


def _group_suggestion(drama: Drama, pred: Predictions, rep: int, name: str, lines: np.ndarray, value: float,
                      guess: GroupGuess | None) -> Suggestion:
    speaker = pred.speaker[rep] or ""
    known = pred.confidence[lines][~np.isnan(pred.confidence[lines])]
    mean_conf = f"mean confidence {known.mean():.2f}" if len(known) else "confidence unknown"
    if speaker.startswith(NEW_CHARACTER_PREFIX):
        what = f"new-character group {speaker}: {len(lines)} lines of one unknown voice ({mean_conf}; "
        if guess is not None and guess.named is not None:
            what += (f"a {guess.named:.0%} chance it is a named character's: its voice is {guess.best_voice:.2f} "
                     f"alike to the nearest named voice, and the group stage's best guess is {guess.speaker}, "
                     f"p={guess.probability:.2f}")
        elif guess is not None:
            what += (f"about {GROUP_PRIOR:.0%} of such groups are a named character's; the group stage's best "
                     f"guess is {guess.speaker}, p={guess.probability:.2f}")
        else:
            what += f"about {GROUP_PRIOR:.0%} of such groups are a named character's"
            runner = _group_runner_up(pred, lines)
            what += f"; its lines' best named candidate is {runner}" if runner else ""
        what += ")"
    else:
        what = f"{len(lines)} lines the group stage gave to {speaker} together ({mean_conf})"
    reason = (f"{what}; naming the group settles every line: about {value:.1f} expected fixes. "
              f"Listen to line {rep}, the closest to the group's voice.")
    return Suggestion(rep, int(drama.lines.episode[rep]), speaker, _confidence(pred, rep), value, "group", name,
                      tuple(int(i) for i in lines), len(lines) - 1, reason)


def _group_runner_up(pred: Predictions, lines: Sequence[int]) -> str | None:
    votes: dict[str, float] = {}
    for i in lines:
        for cand, score in pred.candidates[i] or ():
            if cand != pred.speaker[i] and not cand.startswith(NEW_CHARACTER_PREFIX) and cand != OTHER:
                votes[cand] = votes.get(cand, 0.0) + float(score or 0.0)
    return max(votes, key=votes.__getitem__) if votes else None


def _line_suggestion(drama: Drama, pred: Predictions, i: int, value: float, js: np.ndarray, ws: np.ndarray,
                     residual: np.ndarray) -> Suggestion:
    speaker = pred.speaker[i] or ""
    followers = int((ws * (residual[js] > 0) >= 0.5).sum())
    runner = pred.runner_up[i]
    text = f"{_conf_text(pred, i)}{f', runner-up {runner}' if runner else ''}"
    if followers:
        text += (f"; {followers} more uncertain line{'s' if followers > 1 else ''} in episode "
                 f"{int(drama.lines.episode[i])} sound{'s' if followers == 1 else ''} like it and "
                 f"{'are' if followers > 1 else 'is'} also labelled {speaker}: a correction would carry to them")
    else:
        text += "; few lines follow it"
    text += f" (about {value:.2f} expected fixes)"
    return Suggestion(i, int(drama.lines.episode[i]), speaker, _confidence(pred, i), value, "line", None, (),
                      followers, text)


def _confidence(pred: Predictions, i: int) -> float | None:
    c = float(pred.confidence[i])
    return None if np.isnan(c) else round(c, 4)


def lowest_confidence(pred: Predictions, n: int, corrections: CorrectionSet | None = None) -> list[int]:
    """The baseline: the n least confident lines that are not seeds or corrected already."""
    corrections = corrections or CorrectionSet()
    confidence = np.where(np.isnan(pred.confidence), UNKNOWN_CONFIDENCE, pred.confidence)
    skip = set(corrections.lines) | set(corrections.group_lines())
    order = np.argsort(confidence, kind="stable")
    out = []
    for i in order.tolist():
        ev = pred.evidence[i]
        if i in skip or pred.speaker[i] is None or (ev and (ev.get("seed") or ev.get("correction"))):
            continue
        out.append(i)
        if len(out) == n:
            break
    return out


__all__ = ["Suggestion", "lowest_confidence", "prediction_groups", "suggest", "voice_weight"]
