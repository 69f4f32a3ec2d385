"""Corrections as input to attribution: extra seeds, fixed answers, groups that follow.

- A line corrected to a character becomes one of its seeds: propagation spreads its voice,
  the reasoner's voice model and dialogue context read it, and its answer never changes.
- A line corrected to Other (or to "A/B", two speakers' words) is held fixed as well; the
  reasoner reads it as not a named character.
- A group correction ("新角色-82 is 胡湘江") seeds propagation with the group's lines too,
  so the character's voice of that day spreads; the reasoner then decides each line again
  with that character as a candidate, and every line of the group is the character's unless
  the reasoner names another named character for it (one the person did not just reject).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.attribute import Attribution, attribute
from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER, Drama
from dramasr.data.predictions import PredictionRecord, Predictions
from dramasr.progress import Progress
from dramasr.reason.model import AttributionModel
from dramasr.review.corrections import Correction, CorrectionSet, is_multi_speaker
from dramasr.tools import LabelState, label_state_from_propagation

VOICE_REACH = 0.4  # chosen on the training dramas (BENCHMARKS.md, issue 21: benchmarks/review_keep_rule.py)


def seedable(name: str) -> bool:
    """A name propagation can take as a seed character (a named one, not Other or "A/B")."""
    return name != OTHER and not name.startswith(NEW_CHARACTER_PREFIX) and not is_multi_speaker(name)


def corrected_seeds(base: Mapping[str, Sequence[int]], corrections: CorrectionSet) -> dict[str, list[int]]:
    """The seeds with the corrections merged in: a corrected line leaves whatever seed list
    held it and joins its speaker's (a cast member without seeds gets a list of its own);
    the lines of a corrected group join its speaker's unless they are seeds already."""
    fixed = set(corrections.lines)
    seeds = {name: [i for i in lines if i not in fixed] for name, lines in base.items()}
    seeded = {i for lines in seeds.values() for i in lines}
    for line, c in sorted(corrections.lines.items()):
        if c.speaker is not None and seedable(c.speaker):
            seeds.setdefault(c.speaker, []).append(line)
    for line, c in sorted(corrections.group_lines().items()):
        if c.speaker is not None and seedable(c.speaker) and line not in seeded:
            seeds.setdefault(c.speaker, []).append(line)
    return {name: sorted(set(lines)) for name, lines in seeds.items()}


def corrected_label_state(state: LabelState, corrections: CorrectionSet) -> LabelState:
    """Propagation's labels (run on `corrected_seeds`) made ready for the reasoner: lines
    corrected to Other / "A/B" held fixed as Other; the lines of each group in `corrections`
    (pass only those that are not the drama's own seeds) free again, their speaker listed
    as a candidate."""
    label = list(state.label)
    candidates = [list(c) for c in state.candidates]
    scores = [list(s) for s in state.scores]
    is_seed = state.is_seed.copy()
    for line, c in corrections.lines.items():
        if c.speaker is not None and not seedable(c.speaker):
            label[line], is_seed[line] = OTHER, True
    for line, c in corrections.group_lines().items():
        if c.speaker is None:
            continue
        if not seedable(c.speaker):
            label[line] = OTHER
        elif c.speaker not in candidates[line]:
            candidates[line].insert(0, c.speaker)
            scores[line].insert(0, scores[line][0] if scores[line] else 0.5)
        is_seed[line] = False  # a seed for propagation only: the reasoner decides it again
    return LabelState(label, candidates, scores, is_seed)


def attribute_with_corrections(drama: Drama, corrections: CorrectionSet, *,
                               seeds: Mapping[str, Sequence[int]] | str | Path = "1pct",
                               model: AttributionModel | None = None, passes: int | None = None,
                               hook: Progress | None = None, previous: Predictions | None = None,
                               voice_reach: float | None = VOICE_REACH) -> Attribution:
    """`attribute` with a person's corrections as extra seeds and fixed answers. With the
    predictions the person corrected (`previous`), a line moves to a named character only
    when a correction names that character (`keep_unrelated`), and each correction carries
    to the lines of its episode whose voice is very close to the corrected line's and that
    had the same wrong label (`review.carry`). `voice_reach`: see `keep_unrelated` (None:
    every move to a corrected character stays)."""
    from dramasr.propagate import propagate_drama, resolve_seeds

    t0 = time.perf_counter()
    base = resolve_seeds(drama, seeds)
    own_seeds = {int(i) for lines in base.values() for i in lines}
    merged = corrected_seeds(base, corrections)
    state = label_state_from_propagation(propagate_drama(drama, merged, progress=hook))
    group_lines = {i for i in corrections.group_lines() if i not in own_seeds}  # the drama's seeds stay seeds
    state = corrected_label_state(state, _only(corrections, group_lines))
    propagation_s = time.perf_counter() - t0
    result = attribute(drama, labels=state, model=model, passes=passes, hook=hook)
    records = apply_corrections(result.records, corrections, drama.named_characters(), group_lines)
    if previous is not None:
        from dramasr.review.carry import unit_voices

        voices = unit_voices(drama) if voice_reach is not None else None
        records = keep_unrelated(records, previous, corrections, drama.named_characters(), voices=voices,
                                 reach=voice_reach)
        records = carry_corrections(drama, records, previous, corrections)
    timings = dict(result.timings)
    timings["propagation_s"] = propagation_s
    timings["total_s"] = time.perf_counter() - t0
    return replace(result, records=records, labels=[r.speaker for r in records], timings=timings)


def keep_unrelated(records: Sequence[PredictionRecord], previous: Predictions, corrections: CorrectionSet,
                   named: Any, *, voices: np.ndarray | None = None, reach: float | None = None
                   ) -> list[PredictionRecord]:
    """Records where a line that the re-run moved to a named character no correction names
    keeps its previous prediction. A correction is evidence about its own character; the
    rest of what a re-run changes is churn (propagation and the reasoner run again on a
    slightly different graph), and on a training drama such moves broke three lines for each
    they fixed (zhen_huan_zhuan, 100 corrections chosen by --suggest: 205 lines that moved to
    an uncorrected character were right before and wrong after, 68 the other way; see
    BENCHMARKS.md). Moves to Other or to a new-character group stay, and so do moves to a
    corrected character, except one from an unnamed answer (Other, a new character) whose
    voice is below `reach` alike to every line the corrections gave that character: such a
    line is most often an extra's that the new seeds pulled in (`voices`: unit voice
    embeddings, zero for a line without voice; `reach` None leaves such moves alone;
    `attribute_with_corrections` passes VOICE_REACH). A kept line
    whose previous answer was a new-character label the re-run uses for other lines gets an
    unused label (one per previous group), so that it never joins another group by its
    number."""
    if reach is not None and voices is None:
        raise ValueError("keep_unrelated: a voice reach needs the voices")
    out = list(records)
    settled = set(corrections.lines) | set(corrections.group_lines())
    given = lines_given(corrections, named)
    used = {r.speaker for r in out if r.speaker.startswith(NEW_CHARACTER_PREFIX)}
    numbers = [int(s[len(NEW_CHARACTER_PREFIX):]) for s in used if s[len(NEW_CHARACTER_PREFIX):].isdigit()]
    next_id = 1 + max(numbers, default=0)
    fresh: dict[str, str] = {}
    for k, r in enumerate(out):
        was = previous.speaker[r.line] if r.line < len(previous.speaker) else None
        if was is None or r.line in settled or r.speaker == was or r.speaker not in named:
            continue
        why = "no correction names it"
        if r.speaker in given:
            if reach is None or was in named or closest_voice(voices, r.line, given[r.speaker]) >= reach:
                continue
            why = f"its voice is below {reach:g} alike to every line the corrections gave it"
        speaker = was
        if was.startswith(NEW_CHARACTER_PREFIX) and was in used:
            if was not in fresh:
                fresh[was] = f"{NEW_CHARACTER_PREFIX}{next_id}"
                next_id += 1
            speaker = fresh[was]
        confidence = float(previous.confidence[r.line])
        evidence = dict(previous.evidence[r.line] or {})
        evidence["kept"] = {"rerun_speaker": r.speaker, "why": why}
        out[k] = PredictionRecord(r.line, r.episode, speaker, None if np.isnan(confidence) else confidence,
                                  previous.runner_up[r.line], previous.candidates[r.line], evidence)
    return out


def lines_given(corrections: CorrectionSet, named: Any) -> dict[str, list[int]]:
    """Every line the corrections gave each named character: corrected or accepted lines, and
    the lines of the groups named after it."""
    given: dict[str, list[int]] = {}
    for line, c in corrections.lines.items():
        if c.speaker in named:
            given.setdefault(str(c.speaker), []).append(line)
    for c in corrections.groups.values():
        if c.speaker in named:
            given.setdefault(str(c.speaker), []).extend(c.lines)
    return given


def closest_voice(voices: np.ndarray, line: int, sources: Sequence[int]) -> float:
    """The highest cosine of the line's voice to any of `sources` (0 without voice)."""
    return float((voices[np.asarray(sources, int)] @ voices[line]).max()) if len(sources) else 0.0


def carry_corrections(drama: Drama, records: Sequence[PredictionRecord], previous: Predictions,
                      corrections: CorrectionSet) -> list[PredictionRecord]:
    """Records with the voice carry of `review.carry` applied (reckoned on `previous`, the
    predictions the person corrected); a line the re-run already gave that answer keeps its record."""
    from dramasr.review.carry import carry_moves, carry_records, settled_lines

    settled = settled_lines(len(previous.speaker), previous.evidence, corrections)
    moves = carry_moves(drama, previous.speaker, previous.confidence, settled, corrections)
    by_line = {r.line: r for r in records}
    return carry_records(records, [m for m in moves if by_line[m.line].speaker != m.speaker])


def _only(corrections: CorrectionSet, group_lines: set[int]) -> CorrectionSet:
    """The corrections with each group limited to its lines that are not the drama's own seeds."""
    groups = {name: replace(c, lines=tuple(i for i in c.lines if i in group_lines))
              for name, c in corrections.groups.items()}
    return CorrectionSet(dict(corrections.lines), groups)


def apply_corrections(records: Sequence[PredictionRecord], corrections: CorrectionSet, named: Any,
                      group_lines: set[int] | None = None) -> list[PredictionRecord]:
    """Prediction records with every corrected line's answer set and the group rule applied."""
    out = list(records)
    by_line = {r.line: k for k, r in enumerate(out)}
    for line, c in corrections.lines.items():
        k = by_line[line]
        old = out[k]
        out[k] = PredictionRecord(line, old.episode, str(c.speaker), 1.0, None, ((str(c.speaker), 1.0),),
                                  {"seed": True, "correction": _said(c)})
    followers = corrections.group_lines()
    for line, c in followers.items():
        if group_lines is not None and line not in group_lines:
            continue
        k = by_line[line]
        old = out[k]
        speaker = str(c.speaker)
        evidence = dict(old.evidence or {})
        note = {"group": c.group, "speaker": speaker, "line_stage_speaker": old.speaker, **_said(c)}
        overruled = old.speaker != speaker and old.speaker in named and old.speaker != c.was
        if overruled:
            note["followed"] = False  # the reasoner names another named character: its evidence wins
            evidence["group_correction"] = note
            out[k] = replace(old, evidence=evidence)
            continue
        note["followed"] = True
        evidence["group_correction"] = note
        own = dict(old.candidates or ()).get(speaker)
        rest = tuple((n, s) for n, s in (old.candidates or ()) if n != speaker)
        runner = rest[0][0] if rest else None
        # no line-level probability: the name is a person's word for the group (the reasoner's
        # score of it, kept among the candidates, only said the line was no named character's)
        out[k] = PredictionRecord(line, old.episode, speaker, None, runner,
                                  ((speaker, own if own is not None else float("nan")), *rest)[:3], evidence)
    return out


def _said(c: Correction) -> dict[str, Any]:
    out: dict[str, Any] = {"who": c.who, "when": c.when}
    if c.was is not None:
        out["was"] = c.was
    return out


def attribute_corrected_drama(drama: Drama, corrections: str | Path, seeds: Mapping[str, Sequence[int]] | str | Path
                              = "1pct", *, model_path: str | Path | None = None,
                              hook: Progress | None = None) -> list[PredictionRecord]:
    """`dramasr attribute --corrections FILE`: like `attribute_drama`, with the file's corrections."""
    from dramasr.review.corrections import read_corrections

    current = read_corrections(corrections, drama)
    model = AttributionModel.load(model_path) if model_path is not None else None
    return attribute_with_corrections(drama, current, seeds=seeds, model=model, hook=hook).records


__all__ = ["apply_corrections", "attribute_corrected_drama", "attribute_with_corrections", "carry_corrections",
           "corrected_label_state", "closest_voice", "corrected_seeds", "keep_unrelated", "lines_given", "seedable"]
