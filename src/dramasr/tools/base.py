"""What every evidence tool shares: the label state it reads, the per-drama context, and
the Tool / Evidence records.

A tool answers two ways from one computation: `features(ctx, pair_line, pair_class)`
gives numeric columns for many (line, candidate) pairs at once (the trained model's
input), and `call(ctx, line)` gives one line's Evidence with a short readable text (the
LLM agent's input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice, zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dramasr.data.model import DELETED_MARK, NARRATION_MARK, NEW_CHARACTER_PREFIX, OTHER, Drama
from dramasr.errors import DramaError
from dramasr.tools.tables import DramaTables, LabelTables

VOICELESS_NEIGHBOURS = 2  # voiced lines on each side whose speakers a line without a voice is offered

if TYPE_CHECKING:
    from concurrent.futures import Future

    from dramasr.tools.audio_sim import CohortStats

OTHER_CLASS = OTHER  # the one candidate that stands for "not a named character"


@dataclass(eq=False)
class LabelState:
    """The current attribution of every line, independent of where it came from.

    `label[i]` is the current speaker name of line i (OTHER or a new-character name when
    not a cast member); `candidates[i]` / `scores[i]` are the ranked alternatives that
    propagation proposed; `is_seed[i]` marks lines whose label is given and never changes.
    """

    label: list[str]
    candidates: list[list[str]]
    scores: list[list[float]]
    is_seed: np.ndarray  # bool [N]

    def __len__(self) -> int:
        return len(self.label)

    def with_labels(self, label: Sequence[str]) -> LabelState:
        """Same candidates and seeds, new current labels (seeds keep theirs)."""
        merged = [old if seed else new for old, new, seed in zip(self.label, label, self.is_seed, strict=True)]
        return LabelState(merged, self.candidates, self.scores, self.is_seed)


def label_state_from_release(labels: dict[str, Any], n_lines: int, *, file: str | Path | None = None) -> LabelState:
    """Build a LabelState from a parsed release-format label file (prop_labels_*.json).

    Negative codes (no character chosen) become OTHER.
    """
    from dramasr.propagate import release_labels_from_doc

    propagation = release_labels_from_doc(labels, file)
    if len(propagation) != n_lines:
        raise DramaError(
            f"label file has {len(propagation)} lines, the drama {n_lines}", file=file,
            hint="the label file must come from the same drama folder",
        )
    return label_state_from_propagation(propagation)


def label_state_from_propagation(propagation: Any) -> LabelState:
    """Build a LabelState from a `dramasr.propagate.Propagation` (duck-typed, so the tools
    do not import propagation): its labels, CSR candidate lists and seed mask."""
    names = list(propagation.characters)
    offsets = np.asarray(propagation.cand_offsets).tolist()
    codes = np.asarray(propagation.cand_code).tolist()
    values = np.asarray(propagation.cand_score, np.float64).tolist()
    candidates = [[names[c] for c in codes[lo:hi]] for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]
    scores = [values[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]
    label = [name or OTHER for name in propagation.labels]
    return LabelState(label, candidates, scores, np.asarray(propagation.is_seed, bool).copy())


def named_classes(drama: Drama, state: LabelState | None = None) -> list[str]:
    """The characters a prediction may name, knowable without the truth: cast names seen in
    face tracks, the seed characters (a drama without faces still has them), plus narration
    labels among the candidates. Sorted for stable ids."""
    cast = set(drama.cast)
    names = {n for n in set(drama.faces.name) if n in cast}
    if state is not None:
        names.update(label for label, seed in zip(state.label, state.is_seed.tolist(), strict=True) if seed)
        for row in state.candidates:
            names.update(n for n in row if NARRATION_MARK in n)
        names.update(n for n in state.label if NARRATION_MARK in n)
    return sorted(n for n in names if DELETED_MARK not in n and not n.startswith(NEW_CHARACTER_PREFIX) and n != OTHER)


@dataclass(eq=False)
class Context:
    """A drama, its current labels and the tables the tools share.

    Classes are the named characters plus OTHER (last); every non-named label maps to it.
    `tables` (label-free: faces, mentions, cohort, ...) is shared by every relabelled context
    of the drama, so refinement passes do not redo them; `labels` (voice model, voice tables,
    clusters) belongs to this label state alone.
    """

    drama: Drama
    state: LabelState
    classes: list[str]
    class_of: dict[str, int]
    tables: DramaTables
    labels: LabelTables

    @classmethod
    def build(cls, drama: Drama, state: LabelState, classes: list[str] | None = None,
              cohort: Future[CohortStats] | None = None) -> Context:
        """cohort: the drama's cohort statistics being built aside (`DramaTables.cohort`)."""
        if len(state) != len(drama.lines):
            raise DramaError(f"label state has {len(state)} lines, the drama {len(drama.lines)}", file=drama.source)
        classes = list(classes if classes is not None else named_classes(drama, state)) + [OTHER_CLASS]
        class_of = {name: k for k, name in enumerate(classes)}
        tables = DramaTables(drama, state, classes, class_of, cohort)
        return cls(drama, state, classes, class_of, tables, LabelTables(tables, state, tables.classes_of(state.label)))

    @property
    def other(self) -> int:
        return len(self.classes) - 1

    @property
    def label_class(self) -> np.ndarray:
        """int32 [N], class id of each line's current label."""
        return self.labels.label_class

    def classes_of(self, names: Sequence[str]) -> np.ndarray:
        return self.tables.classes_of(names)

    def relabel(self, label: Sequence[str], *, replace: bool = False) -> Context:
        """A context with updated current labels, sharing the label-free tables. `replace`:
        this context will not be read again, so the new label state may build its voice
        tables in this one's arrays instead of copies (see `LabelTables.release`)."""
        state = self.state.with_labels(label)
        labels = LabelTables(self.tables, state, self.classes_of(state.label))
        if replace:
            self.labels.release()
        return Context(self.drama, state, self.classes, self.class_of, self.tables, labels)

    def candidate_classes(self, line: int, top_k: int) -> list[int]:
        """Class ids a line may be attributed to: propagation's named candidates, then OTHER.
        Propagation gives a line without a voice none: `voiceless_classes` stands in."""
        if not self.drama.lines.has_voice[line]:
            return self.voiceless_classes(line, top_k)
        seen: list[int] = []
        for name in self.state.candidates[line][:top_k]:
            k = self.class_of.get(name)
            if k is not None and k != self.other and k not in seen:
                seen.append(k)
        seen.append(self.other)
        return seen

    def voiceless_classes(self, line: int, top_k: int) -> list[int]:
        """Candidates of a line without a voice: the named characters whose faces are
        recognised inside it (most detections first), then the current speakers of the
        nearest voiced lines of its episode (VOICELESS_NEIGHBOURS on each side, nearest
        first); at most top_k, then OTHER."""
        seen: list[int] = []
        hits = self.tables.faces.hits_of(np.array([line]))[0]
        for c in np.argsort(-hits, kind="stable").tolist():
            if hits[c] <= 0:
                break
            if c != self.other:
                seen.append(c)
        voiced = self.drama.lines.has_voice
        lo, hi = self.tables.episode_bounds
        # the nearest voiced lines only: a scan stops there, not at the episode's end
        before = list(islice((j for j in range(line - 1, int(lo[line]) - 1, -1) if voiced[j]), VOICELESS_NEIGHBOURS))
        after = list(islice((j for j in range(line + 1, int(hi[line])) if voiced[j]), VOICELESS_NEIGHBOURS))
        for j in (j for pair in zip_longest(before, after) for j in pair if j is not None):
            c = int(self.label_class[j])
            if c != self.other and c not in seen:
                seen.append(c)
        return [*seen[:top_k], self.other]


@dataclass
class Evidence:
    """What one tool found about one line: values per candidate plus a short text."""

    tool: str
    line: int
    values: dict[str, dict[str, float]]  # candidate name -> feature name -> value
    text: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "line": self.line, "values": self.values, "text": self.text, **self.extra}


class Tool:
    """One evidence source. Subclasses set name/description/cost and implement `features`
    (vectorised over pairs) and `describe` (readable text for one line)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    cost: ClassVar[float] = 1.0  # relative cost; the policy calls cheap tools first
    depends_on_labels: ClassVar[bool] = True  # recompute on refinement passes
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "line": {"type": "integer", "minimum": 0, "description": "global index of the subtitle line"},
            "candidates": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True,
                           "description": "character names to score (default: the line's candidates plus Other)"},
        },
        "required": ["line"],
        "additionalProperties": False,
    }

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        return "; ".join(
            f"{name}: " + ", ".join(f"{k}={v:.2f}" for k, v in vals.items()) for name, vals in values.items()
        )

    def call(self, ctx: Context, line: int, candidates: Sequence[str] | None = None) -> Evidence:
        """Evidence for one line and its candidates (propagation's, plus OTHER, by default)."""
        if not 0 <= line < len(ctx.drama.lines):
            raise DramaError(f"no line {line} (the drama has {len(ctx.drama.lines)})", field="line")
        if candidates is None:
            cls_ids = ctx.candidate_classes(line, top_k=8)
        else:
            cls_ids = [ctx.class_of.get(n, ctx.other) for n in candidates]
        pair_line = np.full(len(cls_ids), line, np.int64)
        pair_class = np.asarray(cls_ids, np.int32)
        columns = self.features(ctx, pair_line, pair_class)
        values = {
            ctx.classes[k]: {name: float(col[j]) for name, col in columns.items()} for j, k in enumerate(cls_ids)
        }
        return Evidence(self.name, line, values, self.describe(ctx, line, values))

    def spec(self) -> dict[str, Any]:
        """The tool as an LLM sees it (OpenAI-style function spec)."""
        from dramasr.tools.calling import OUTPUT_SCHEMA

        return {"name": self.name, "description": self.description, "parameters": self.input_schema,
                "output": OUTPUT_SCHEMA}
