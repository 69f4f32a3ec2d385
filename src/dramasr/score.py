"""The DramaSR correctness rule and the metrics built on it.

Pure functions over arrays (truth names, predicted names, durations, episodes, the named
set); they return frozen dataclasses and never print or read files.

The strict rule is the release's (`DramaData.is_prediction_correct` without candidates):
a line whose truth is a named character is correct only with exactly that name; a line
whose truth is not named (extras, 其他, 新角色-N, ...) is correct with any prediction that
is not a named character; lines whose truth contains `!删除!` are not scored. A line
without a prediction (None) is always wrong.

The lenient rule also accepts a non-named prediction ("Other") for a named truth that is
not among the line's candidates: nothing could have picked the right name there. (The
release's own candidate-aware check differs: it accepts only the literal 其他 there, and
requires the exact name for an unnamed truth that is among the candidates.)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dramasr.data.model import DELETED_MARK
from dramasr.errors import DramaError

Rule = Literal["strict", "lenient"]
RULES: tuple[str, ...] = ("strict", "lenient")

# Shown in confusions for lines that have no prediction at all.
NO_PREDICTION = "(no prediction)"


@dataclass(frozen=True)
class DurationBucket:
    """A half-open duration interval [low_ms, high_ms) of a subtitle line."""

    label: str
    low_ms: int
    high_ms: float  # math.inf for the open-ended bucket

    def contains(self, duration_ms: np.ndarray) -> np.ndarray:
        return (duration_ms >= self.low_ms) & (duration_ms < self.high_ms)


# Durations are end - start of the HH:MM:SS.mmm strings, in whole milliseconds, and the
# intervals are half-open: a 1.000 s line is in "1-2s", a 0.999 s line in "<1s". This
# reproduces every per-bucket figure of shared/reference/lp_reference.json exactly; the
# closed-on-the-right convention (<=1 s) does not.
DURATION_BUCKETS: tuple[DurationBucket, ...] = (
    DurationBucket("<1s", 0, 1000),
    DurationBucket("1-2s", 1000, 2000),
    DurationBucket("2-3s", 2000, 3000),
    DurationBucket(">=3s", 3000, math.inf),
)
DURATION_SPLIT: tuple[DurationBucket, ...] = (
    DurationBucket("<2s", 0, 2000),
    DurationBucket(">=2s", 2000, math.inf),
)
ALL_DURATION_BUCKETS: tuple[DurationBucket, ...] = DURATION_BUCKETS + DURATION_SPLIT


@dataclass(frozen=True)
class Tally:
    """Correct lines out of scored lines."""

    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        """Fraction correct in [0, 1]; NaN when nothing was scored."""
        return self.correct / self.total if self.total else math.nan

    @property
    def percent(self) -> float:
        return 100.0 * self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {"correct": self.correct, "total": self.total, "accuracy": _finite(self.percent)}


@dataclass(frozen=True)
class CharacterScore:
    """Accuracy on the lines a character truly speaks, and the character's F1 when named."""

    name: str
    named: bool
    tally: Tally
    predicted: int  # scored lines predicted as this name
    precision: float  # exact-name precision (NaN when never predicted)
    recall: float  # exact-name recall
    f1: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "named": self.named, **self.tally.to_dict(), "predicted": self.predicted,
            "precision": _finite(self.precision), "recall": _finite(self.recall), "f1": _finite(self.f1),
        }


@dataclass(frozen=True)
class Confusion:
    """How often a wrong prediction named `predicted` for a line spoken by `truth`."""

    truth: str
    predicted: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"truth": self.truth, "predicted": self.predicted, "count": self.count}


@dataclass(frozen=True)
class Score:
    """Everything the benchmark reports for one set of predictions on one drama."""

    rule: str
    overall: Tally
    by_episode: dict[int, Tally]
    by_duration: dict[str, Tally]  # keys: labels of ALL_DURATION_BUCKETS, in that order
    by_character: dict[str, CharacterScore]  # truth names, most lines first
    macro_f1: float  # over named characters present in truth or prediction (sklearn's convention)
    confusions: list[Confusion]  # most frequent first
    lines: int  # all lines, scored or not
    skipped: int  # deleted lines, not scored
    missing: int  # scored lines that had no prediction (counted wrong)
    open_set: Tally  # the scored lines whose truth is not named

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "overall": self.overall.to_dict(),
            "lines": self.lines, "scored": self.overall.total, "skipped": self.skipped, "missing": self.missing,
            "open_set": self.open_set.to_dict(),
            "macro_f1": _finite(self.macro_f1),
            "by_duration": {label: tally.to_dict() for label, tally in self.by_duration.items()},
            "by_episode": {str(ep): tally.to_dict() for ep, tally in self.by_episode.items()},
            "by_character": [c.to_dict() for c in self.by_character.values()],
            "confusions": [c.to_dict() for c in self.confusions],
        }


def _finite(value: float) -> float | None:
    """JSON has no NaN: undefined figures are written as null."""
    return None if value is None or math.isnan(value) else float(value)


def scored_mask(truth: Sequence[str]) -> np.ndarray:
    """True for lines that are scored: truth given ("" is an unlabelled line) and not marked deleted."""
    return np.fromiter((bool(t) and DELETED_MARK not in t for t in truth), bool, len(truth))


def duration_ms(durations: Sequence[float] | np.ndarray) -> np.ndarray:
    """Line durations in seconds -> whole milliseconds (the precision of the release's times)."""
    return np.rint(np.asarray(durations, dtype=np.float64) * 1000.0).astype(np.int64)


def line_correct(
    truth: Sequence[str],
    prediction: Sequence[str | None],
    named: Iterable[str],
    *,
    candidates: Sequence[Sequence[str] | None] | None = None,
    rule: Rule = "strict",
) -> np.ndarray:
    """Per line: is the prediction correct under the rule? (Deleted lines are not special here.)

    `candidates[i]` lists the names a method considered for line i; only the lenient rule
    reads it, and a line whose candidates are None is judged strictly.
    """
    if rule not in RULES:
        raise DramaError(f"unknown scoring rule {rule!r}", field="rule", hint="use 'strict' or 'lenient'")
    if len(prediction) != len(truth):
        raise ValueError(f"{len(truth)} truth names but {len(prediction)} predictions")
    if rule == "lenient":
        if candidates is None:
            raise DramaError(
                "the lenient rule needs each line's candidate list", field="rule",
                hint="use predictions that carry candidates, or the strict rule",
            )
        if len(candidates) != len(truth):
            raise ValueError(f"{len(truth)} truth names but {len(candidates)} candidate lists")
    named_set = frozenset(named)
    correct = np.zeros(len(truth), dtype=bool)
    for i, (true_name, predicted) in enumerate(zip(truth, prediction, strict=True)):
        if predicted is None:
            continue
        if true_name in named_set:
            ok = predicted == true_name
            if not ok and rule == "lenient" and predicted not in named_set:
                line_candidates = candidates[i]  # type: ignore[index]
                ok = line_candidates is not None and true_name not in line_candidates
            correct[i] = ok
        else:
            correct[i] = predicted not in named_set
    return correct


def score_lines(
    truth: Sequence[str],
    prediction: Sequence[str | None],
    durations: Sequence[float] | np.ndarray,
    episodes: Sequence[int] | np.ndarray,
    named: Iterable[str],
    *,
    candidates: Sequence[Sequence[str] | None] | None = None,
    rule: Rule = "strict",
    top_confusions: int = 20,
) -> Score:
    """Score predictions line by line and break the result down.

    truth: ground-truth speaker per line (deleted lines are skipped); prediction: predicted
    name per line, None for no prediction; durations: seconds; episodes: episode number per
    line; named: the drama's named characters (`Drama.named_characters()`).
    """
    n = len(truth)
    durations_ms = duration_ms(durations)
    episode_arr = np.asarray(episodes)
    if len(durations_ms) != n or len(episode_arr) != n:
        raise ValueError(f"{n} truth names but {len(durations_ms)} durations and {len(episode_arr)} episodes")
    named_set = frozenset(named)
    correct = line_correct(truth, prediction, named_set, candidates=candidates, rule=rule)
    scored = scored_mask(truth)
    has_prediction = np.fromiter((p is not None for p in prediction), bool, n)

    by_episode = {
        int(ep): _tally(correct, scored & (episode_arr == ep)) for ep in np.unique(episode_arr[scored])
    }
    by_duration = {b.label: _tally(correct, scored & b.contains(durations_ms)) for b in ALL_DURATION_BUCKETS}
    truth_named = np.fromiter((t in named_set for t in truth), bool, n)

    by_character, macro_f1 = _character_scores(truth, prediction, correct, scored, named_set)
    confusions = Counter(
        (truth[i], prediction[i] if prediction[i] is not None else NO_PREDICTION)
        for i in np.flatnonzero(scored & ~correct)
    )
    ranked = sorted(confusions.items(), key=lambda item: (-item[1], item[0]))[:max(top_confusions, 0)]
    return Score(
        rule=rule,
        overall=_tally(correct, scored),
        by_episode=by_episode,
        by_duration=by_duration,
        by_character=by_character,
        macro_f1=macro_f1,
        confusions=[Confusion(t, p, c) for (t, p), c in ranked],
        lines=n,
        skipped=int(n - scored.sum()),
        missing=int((scored & ~has_prediction).sum()),
        open_set=_tally(correct, scored & ~truth_named),
    )


def _tally(correct: np.ndarray, mask: np.ndarray) -> Tally:
    return Tally(correct=int((correct & mask).sum()), total=int(mask.sum()))


def _character_scores(
    truth: Sequence[str],
    prediction: Sequence[str | None],
    correct: np.ndarray,
    scored: np.ndarray,
    named: frozenset[str],
) -> tuple[dict[str, CharacterScore], float]:
    """Per-truth-name accuracy, and exact-name precision/recall/F1 for named characters.

    F1 is about naming a character, so it counts exact names only and does not depend on
    the rule; macro-F1 averages it over the named characters that occur as truth or as
    prediction on scored lines.
    """
    lines_of: Counter[str] = Counter()
    correct_of: Counter[str] = Counter()
    predicted_of: Counter[str] = Counter()
    hits_of: Counter[str] = Counter()
    for i in np.flatnonzero(scored):
        true_name, predicted = truth[i], prediction[i]
        lines_of[true_name] += 1
        correct_of[true_name] += bool(correct[i])
        if predicted is not None:
            predicted_of[predicted] += 1
            if predicted == true_name:
                hits_of[true_name] += 1
    by_character: dict[str, CharacterScore] = {}
    for name, total in sorted(lines_of.items(), key=lambda item: (-item[1], item[0])):
        precision, recall, f1 = _prf(hits_of[name], predicted_of[name], total)
        by_character[name] = CharacterScore(
            name=name, named=name in named, tally=Tally(correct_of[name], total), predicted=predicted_of[name],
            precision=precision, recall=recall, f1=f1,
        )
    f1_values = []
    for name in sorted(named):
        if lines_of[name] or predicted_of[name]:
            f1 = _prf(hits_of[name], predicted_of[name], lines_of[name])[2]
            f1_values.append(0.0 if math.isnan(f1) else f1)
    macro_f1 = float(np.mean(f1_values)) if f1_values else math.nan
    return by_character, macro_f1


def _prf(hits: int, predicted: int, actual: int) -> tuple[float, float, float]:
    precision = hits / predicted if predicted else math.nan
    recall = hits / actual if actual else math.nan
    if hits == 0:
        f1 = 0.0 if (predicted or actual) else math.nan
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return precision, recall, f1


__all__ = [
    "ALL_DURATION_BUCKETS", "DURATION_BUCKETS", "DURATION_SPLIT", "NO_PREDICTION", "RULES", "CharacterScore",
    "Confusion", "DurationBucket", "Rule", "Score", "Tally", "duration_ms", "line_correct", "score_lines",
    "scored_mask",
]
