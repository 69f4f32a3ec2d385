"""Predictions files: the toolkit's JSONL format, and a release prop_labels_*.json read as predictions
(the label format itself is parsed in `dramasr.data.release_labels`).

The JSONL format holds one object per subtitle line, readable by a person:

    {"line": 4051, "episode": 5, "speaker": "江阳", "confidence": 0.82, "runner_up": "严良",
     "candidates": [["江阳", 0.82], ["严良", 0.61]], "evidence": {"face": "江阳"}}

`line` is the global line index (episodes ascending, then line order: the index of the
release's seed and label files), `episode` the episode number of that line (1 for
0001.json, a check against off-by-one files), `speaker` the predicted name ("其他" for an
extra). `confidence` (a number or null), `runner_up` (a name or null), `candidates`
(ranked [name, score] pairs) and `evidence` (any object) are optional; unknown fields are
ignored. Every line of the drama gets exactly one object, in any order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from dramasr.data.model import OTHER, Drama
from dramasr.data.release import write_bytes_atomic
from dramasr.data.release_labels import (
    CODE_DISABLED,
    CODE_OTHER,
    CODE_UNKNOWN,
    CODE_UNLABELLED,
    NO_LABEL_CODES,
    UNKNOWN,
    Candidates,
    read_release_label_file,
)
from dramasr.data.release_labels import is_int as _is_int
from dramasr.data.release_labels import is_number as _is_number
from dramasr.errors import DramaError

# The release's label codes, under the names this module has always exported.
CODE_UNLABELED = CODE_UNLABELLED
CODE_OTHERS = CODE_OTHER


@dataclass(frozen=True)
class PredictionRecord:
    """The prediction for one subtitle line, as written in one JSONL line."""

    line: int
    episode: int
    speaker: str
    confidence: float | None = None
    runner_up: str | None = None
    candidates: Candidates | None = None
    evidence: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        confidence = None if self.confidence is None or math.isnan(self.confidence) else float(self.confidence)
        out: dict[str, Any] = {
            "line": int(self.line), "episode": int(self.episode), "speaker": self.speaker,
            "confidence": confidence, "runner_up": self.runner_up,
        }
        if self.candidates is not None:
            out["candidates"] = [[name, _json_score(score)] for name, score in self.candidates]
        if self.evidence is not None:
            out["evidence"] = dict(self.evidence)
        return out


def rank_with_speaker(speaker: str, ranked: Sequence[tuple[str, float]], speaker_score: float,
                      keep: int | None = None) -> tuple[Candidates, str | None]:
    """Candidates with the chosen speaker first (scored `speaker_score` when the ranking did not
    hold it, e.g. a group decision or an "A/B" line), then the rest in their order; and the
    runner-up, the best candidate that is not the speaker. One record then never contradicts
    itself: `speaker == candidates[0]` and `runner_up != speaker`."""
    rest = [(name, score) for name, score in ranked if name != speaker]
    own = next((score for name, score in ranked if name == speaker), speaker_score)
    out = ((speaker, own), *rest)
    return (out if keep is None else out[:keep]), runner_up_of(speaker, rest)


def runner_up_of(speaker: str | None, ranked: Sequence[tuple[str, float]]) -> str | None:
    """The best-ranked candidate that is not the speaker (None when there is none)."""
    return next((name for name, _ in ranked if name != speaker), None)


def _json_score(score: float) -> float | None:
    return None if math.isnan(score) else float(score)


@dataclass(eq=False)
class Predictions:
    """Predictions for every line of one drama, indexed by global line index."""

    episode: np.ndarray  # int32, episode number of each line (copied from the drama)
    speaker: list[str | None]  # None = no prediction (scored as wrong)
    confidence: np.ndarray  # float64, NaN where unknown
    runner_up: list[str | None]
    candidates: list[Candidates | None]
    evidence: list[Mapping[str, Any] | None]
    source: str | None = None  # file it was read from
    format: str = "records"  # "jsonl", "prop_labels" or "records" (built in memory)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.speaker)

    @property
    def missing(self) -> np.ndarray:
        """Global indices of lines without a prediction."""
        return np.flatnonzero(np.fromiter((s is None for s in self.speaker), bool, len(self.speaker)))

    @property
    def has_candidates(self) -> bool:
        return any(c is not None for c in self.candidates)

    def candidate_names(self) -> list[list[str] | None]:
        """Per line, the candidate names in rank order (None where the line has none)."""
        return [None if c is None else [name for name, _ in c] for c in self.candidates]

    def records(self) -> Iterator[PredictionRecord]:
        """The lines that have a prediction, in line order."""
        for i, speaker in enumerate(self.speaker):
            if speaker is None:
                continue
            confidence = float(self.confidence[i])
            yield PredictionRecord(
                line=i, episode=int(self.episode[i]), speaker=speaker,
                confidence=None if math.isnan(confidence) else confidence,
                runner_up=self.runner_up[i], candidates=self.candidates[i], evidence=self.evidence[i],
            )

    @classmethod
    def empty(cls, drama: Drama) -> Predictions:
        n = len(drama.lines)
        return cls(
            episode=np.asarray(drama.lines.episode, np.int32).copy(), speaker=[None] * n,
            confidence=np.full(n, np.nan), runner_up=[None] * n, candidates=[None] * n, evidence=[None] * n,
        )

    @classmethod
    def from_records(
        cls, records: Iterable[PredictionRecord | Mapping[str, Any]], drama: Drama, *, allow_missing: bool = False,
    ) -> Predictions:
        """Validate in-memory records against the drama (same checks as reading a file)."""
        def numbered() -> Iterator[tuple[int, PredictionRecord]]:
            for k, record in enumerate(records):
                if isinstance(record, PredictionRecord):
                    yield k, record
                else:
                    yield k, _parse_record(record, None, k)
        return _assemble(numbered(), drama, None, allow_missing=allow_missing, fmt="records", where="record")

    @classmethod
    def from_arrays(
        cls,
        drama: Drama,
        speaker: Sequence[str | None],
        confidence: Sequence[float] | np.ndarray | None = None,
        *,
        runner_up: Sequence[str | None] | None = None,
        candidates: Sequence[Candidates | None] | None = None,
    ) -> Predictions:
        """Predictions from per-line columns (one entry per line of the drama)."""
        n = len(drama.lines)
        columns = {"speaker": speaker, "confidence": confidence, "runner_up": runner_up, "candidates": candidates}
        for name, column in columns.items():
            if column is not None and len(column) != n:
                raise ValueError(f"{name}: {len(column)} entries for {n} lines")
        return cls(
            episode=np.asarray(drama.lines.episode, np.int32).copy(), speaker=list(speaker),
            confidence=np.full(n, np.nan) if confidence is None else np.asarray(confidence, np.float64).copy(),
            runner_up=list(runner_up) if runner_up is not None else [None] * n,
            candidates=list(candidates) if candidates is not None else [None] * n, evidence=[None] * n,
        )


# ----------------------------------------------------------------------------- JSONL


def write_predictions(path: str | Path, records: Iterable[PredictionRecord | Mapping[str, Any]] | Predictions) -> Path:
    """Write predictions as JSONL, atomically (temp file, then rename)."""
    if isinstance(records, Predictions):
        records = records.records()
    chunks: list[bytes] = []
    for record in records:
        obj = record.to_dict() if isinstance(record, PredictionRecord) else dict(record)
        try:
            chunks.append(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY))
        except TypeError as exc:
            raise DramaError(
                f"prediction for line {obj.get('line')} cannot be written as JSON: {exc}", file=path,
            ) from exc
    target = Path(path)
    write_bytes_atomic(target, b"\n".join(chunks) + (b"\n" if chunks else b""))
    return target


def read_predictions(path: str | Path, drama: Drama, *, allow_missing: bool = False) -> Predictions:
    """Read a JSONL predictions file and check it against the drama.

    Every problem (bad JSON, a missing or mistyped field, a line index out of range, an
    episode that does not match the line, a line predicted twice, lines without a
    prediction unless `allow_missing`) raises DramaError naming the file, the JSONL line
    number and the field.
    """
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise DramaError(f"cannot read: {exc.strerror}", file=source) from exc
    return _assemble(_jsonl_records(raw, source), drama, source, allow_missing=allow_missing, fmt="jsonl")


def _jsonl_records(raw: bytes, path: Path) -> Iterator[tuple[int, PredictionRecord]]:
    for number, text in enumerate(raw.split(b"\n"), start=1):
        if not text.strip():
            continue
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DramaError(f"not UTF-8 text (byte {exc.start})", file=path, line=number,
                             hint="re-save the file as UTF-8") from exc
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise DramaError(f"not valid JSON: {exc}", file=path, line=number,
                             hint="each line must be one JSON object") from exc
        yield number, _parse_record(obj, path, number)


def _parse_record(obj: Any, path: Path | None, number: int) -> PredictionRecord:
    def fail(message: str, field_name: str | None = None, hint: str | None = None) -> DramaError:
        return DramaError(message, file=path, line=number, field=field_name, hint=hint)

    if not isinstance(obj, Mapping):
        raise fail("expected a JSON object", hint='e.g. {"line": 0, "episode": 1, "speaker": "其他"}')
    for name in ("line", "episode", "speaker"):
        if name not in obj:
            raise fail("missing field", name)
    for name in ("line", "episode"):
        if not _is_int(obj[name]):
            raise fail(f"must be an integer, got {obj[name]!r}", name)
    if not isinstance(obj["speaker"], str) or not obj["speaker"]:
        raise fail(f"must be a non-empty name, got {obj['speaker']!r}", "speaker",
                   hint=f"write {OTHER!r} for an extra")
    confidence = obj.get("confidence")
    if confidence is not None and not _is_number(confidence):
        raise fail(f"must be a number or null, got {confidence!r}", "confidence")
    runner_up = obj.get("runner_up")
    if runner_up is not None and not isinstance(runner_up, str):
        raise fail(f"must be a name or null, got {runner_up!r}", "runner_up")
    candidates = None
    if obj.get("candidates") is not None:
        candidates = _parse_candidates(obj["candidates"], fail)
    evidence = obj.get("evidence")
    if evidence is not None and not isinstance(evidence, Mapping):
        raise fail("must be a JSON object or null", "evidence")
    return PredictionRecord(
        line=int(obj["line"]), episode=int(obj["episode"]), speaker=obj["speaker"],
        confidence=None if confidence is None else float(confidence), runner_up=runner_up,
        candidates=candidates, evidence=evidence,
    )


def _parse_candidates(value: Any, fail: Any) -> Candidates:
    if not isinstance(value, list):
        raise fail("must be a list of [name, score] pairs", "candidates")
    pairs = []
    for k, item in enumerate(value):
        if not (isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)
                and (item[1] is None or _is_number(item[1]))):
            raise fail(f"entry {k} must be [name, score], got {item!r}", "candidates")
        pairs.append((item[0], math.nan if item[1] is None else float(item[1])))
    return tuple(pairs)


def _assemble(
    numbered: Iterable[tuple[int, PredictionRecord]],
    drama: Drama,
    path: Path | None,
    *,
    allow_missing: bool,
    fmt: str,
    where: str = "JSONL line",
) -> Predictions:
    predictions = Predictions.empty(drama)
    predictions.source = str(path) if path is not None else None
    predictions.format = fmt
    n = len(drama.lines)
    first_seen: dict[int, int] = {}
    for number, record in numbered:
        line = record.line
        if not 0 <= line < n:
            raise DramaError(
                f"subtitle line {line} does not exist: the drama {drama.name!r} has lines 0..{n - 1}",
                file=path, line=number, field="line",
                hint="'line' is the global index over all episodes, counted from 0",
            )
        true_episode = int(drama.lines.episode[line])
        if record.episode != true_episode:
            raise DramaError(
                f"says episode {record.episode} but subtitle line {line} is in episode {true_episode}",
                file=path, line=number, field="episode",
                hint="the predictions may belong to another drama or count lines differently",
            )
        if line in first_seen:
            raise DramaError(
                f"subtitle line {line} is predicted twice (first on {where} {first_seen[line]})",
                file=path, line=number, field="line",
            )
        first_seen[line] = number
        predictions.speaker[line] = record.speaker
        predictions.confidence[line] = math.nan if record.confidence is None else record.confidence
        predictions.runner_up[line] = record.runner_up
        predictions.candidates[line] = record.candidates
        predictions.evidence[line] = record.evidence
    _check_missing(predictions, drama, path, allow_missing, field_name="line")
    return predictions


def _check_missing(
    predictions: Predictions, drama: Drama, path: Path | None, allow_missing: bool, *, field_name: str,
) -> None:
    missing = predictions.missing
    if len(missing) and not allow_missing:
        first = int(missing[0])
        raise DramaError(
            f"no prediction for {len(missing)} of {len(predictions)} subtitle lines "
            f"(first: line {first}, episode {int(drama.lines.episode[first])})",
            file=path, field=field_name,
            hint="predict every line, or allow missing lines (they are scored as wrong)",
        )


# ----------------------------------------------------------------------------- release labels


def read_prop_labels(path: str | Path, drama: Drama, *, allow_missing: bool = False) -> Predictions:
    """Read the release's label file (prop_labels_*.json, also init_seeds_*.json) as predictions.

    The file is parsed by `dramasr.data.release_labels`: codes name characters, CODE_OTHER is
    其他 and CODE_UNKNOWN 未知, the no-label codes mean no prediction. `rel_info` gives the
    ranked candidates with their scores; seed lines (`is_gt`) carry evidence {"seed": true}.
    """
    source = Path(path)
    labels = read_release_label_file(source, n_lines=len(drama.lines), drama_name=drama.name)
    predictions = Predictions.empty(drama)
    predictions.source = str(source)
    predictions.format = "prop_labels"
    for i, (code, seed, candidates) in enumerate(zip(labels.code.tolist(), labels.is_seed.tolist(),
                                                     labels.candidates, strict=True)):
        speaker = None if code in NO_LABEL_CODES else labels.names[code]
        predictions.speaker[i] = speaker
        if candidates is not None:
            predictions.candidates[i] = candidates
            scores = dict(candidates)
            if speaker is not None and speaker in scores:
                predictions.confidence[i] = scores[speaker]
            predictions.runner_up[i] = runner_up_of(speaker, candidates)
        if seed:
            predictions.evidence[i] = {"seed": True}
    _check_missing(predictions, drama, source, allow_missing, field_name="utterance_label")
    return predictions


# ----------------------------------------------------------------------------- either format


def detect_format(path: str | Path) -> str:
    """'jsonl' or 'prop_labels', from the file's name and its first line."""
    source = Path(path)
    if source.suffix == ".jsonl":
        return "jsonl"
    try:
        with source.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise DramaError(f"cannot read: {exc.strerror}", file=source) from exc
    first_line, newline, _ = head.lstrip().partition(b"\n")
    if newline or len(head) < (1 << 16):
        try:
            first = orjson.loads(first_line) if first_line.strip() else None
        except orjson.JSONDecodeError:
            first = None
        if isinstance(first, dict) and "line" in first:
            return "jsonl"
        if isinstance(first, dict) and "utterance_label" in first:
            return "prop_labels"
    # A label file is one (possibly huge, possibly pretty-printed) object that starts with
    # its character table.
    if b'"utterance_label"' in head or b'"character_list"' in head:
        return "prop_labels"
    raise DramaError(
        "unrecognised predictions format", file=source,
        hint='expected JSONL with one {"line", "episode", "speaker"} object per line, or a release '
             "prop_labels_*.json",
    )


def load_any_predictions(path: str | Path, drama: Drama, *, allow_missing: bool = False) -> Predictions:
    """Read predictions in whichever supported format the file is in."""
    if detect_format(path) == "prop_labels":
        return read_prop_labels(path, drama, allow_missing=allow_missing)
    return read_predictions(path, drama, allow_missing=allow_missing)


__all__ = [
    "CODE_DISABLED", "CODE_OTHERS", "CODE_UNKNOWN", "CODE_UNLABELED", "UNKNOWN", "Candidates", "PredictionRecord",
    "Predictions", "detect_format", "load_any_predictions", "rank_with_speaker", "read_predictions",
    "read_prop_labels", "runner_up_of", "write_predictions",
]
