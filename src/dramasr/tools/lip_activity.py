"""lip_activity: is the face on screen speaking? Read from `lip_data/NNNN.json`, which
`dramasr extract` writes beside the face tracks (a speaking score per face track and line, from
the spread of the mouth opening over the track's frames inside the line).

The released data has single-frame faces, so the trained reasoner has no feature for this; its
features are fixed. The evidence therefore enters after the reasoner, as a product of experts on
each line's candidate probabilities: a candidate whose face is on screen during the line has its
probability multiplied by exp(weight * (score - 0.5)), so a moving mouth raises it and a still
one (a listener in a reaction shot) lowers it; candidates not seen in the line are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dramasr.data.predictions import PredictionRecord
from dramasr.data.release import read_json

NAME = "lip_activity"
DESCRIPTION = ("Speaking score (0-1) of each named face on screen during the line, from its mouth movement: "
               "high = that face's lips move while the line is said, low = it is a listener.")
INPUT_SCHEMA = {"type": "object", "properties": {"line": {"type": "integer"}}, "required": ["line"]}
LIP_WEIGHT = 4.0  # a clearly moving mouth (0.75) against a still one (0.1): e^2.6, about 13x in odds
NEUTRAL = 0.5


@dataclass(frozen=True)
class LipEvidence:
    """Per line of the drama: {character: best speaking score of their tracks in the line}."""

    scores: list[dict[str, float]]

    def call(self, line: int) -> dict[str, Any]:
        """The tool's answer for one line: structured values and a short text."""
        values = self.scores[line] if 0 <= line < len(self.scores) else {}
        if not values:
            text = "No named face is seen long enough during this line to read its lips."
        else:
            text = "; ".join(f"{name}: lips {'moving' if s >= NEUTRAL else 'still'} ({s:.2f})"
                             for name, s in sorted(values.items(), key=lambda kv: -kv[1]))
        return {"tool": NAME, "line": line, "values": dict(values), "text": text}


def load_lip_evidence(drama: Any) -> LipEvidence | None:
    """The drama's lip data (None when it has none: data that did not come from `dramasr extract`)."""
    folder = Path(drama.source) / "lip_data" if getattr(drama, "source", None) else None
    if folder is None or not folder.is_dir():
        return None
    scores: list[dict[str, float]] = [{} for _ in range(len(drama.lines))]
    for episode in drama.episodes:
        path = folder / f"{episode.stem}.json"
        if not path.is_file():
            continue
        for row in read_json(path).get("scores", []):
            name, line = row.get("name") or "", int(row["line"])
            if not name or not 0 <= line < episode.line_stop - episode.line_start:
                continue
            target = scores[episode.line_start + line]
            target[name] = max(target.get(name, 0.0), float(row["score"]))
    return LipEvidence(scores)


def _decided(record: PredictionRecord) -> list[tuple[str, float]] | None:
    """The line's candidate probabilities as the record decided them.

    A later stage (the group stage) may have chosen a speaker other than the line stage's top
    candidate, with its own confidence: that speaker then holds the confidence and the other
    candidates share the rest in their line-stage proportions. None when the speaker is not
    one candidate (an "A/B" line): such a record is kept as it is.
    """
    cands = [(name, float(p)) for name, p in record.candidates or []]
    names = [name for name, _ in cands]
    if record.speaker not in names:
        return None
    top = max(cands, key=lambda item: item[1])[0]
    if top == record.speaker or record.confidence is None:
        return cands
    confidence = float(record.confidence)
    rest = sum(p for name, p in cands if name != record.speaker) or 1.0
    return [(name, confidence if name == record.speaker else p / rest * (1.0 - confidence)) for name, p in cands]


def apply_lip_evidence(records: Sequence[PredictionRecord], evidence: LipEvidence,
                       weight: float = LIP_WEIGHT) -> list[PredictionRecord]:
    """Re-weigh each line's candidates by the lip scores; seeds and lines without lip data are kept."""
    out = []
    for record in records:
        seen = evidence.scores[record.line] if record.line < len(evidence.scores) else {}
        if not seen or not record.candidates or (record.evidence or {}).get("seed"):
            out.append(record)
            continue
        cands = _decided(record)
        if cands is None:
            out.append(record)
            continue
        scaled = [(name, p * math.exp(weight * (seen[name] - NEUTRAL)) if name in seen else p) for name, p in cands]
        total = sum(p for _, p in scaled) or 1.0
        ranked = sorted(((name, p / total) for name, p in scaled), key=lambda item: -item[1])
        speaker, confidence = ranked[0]
        evidence_out = dict(record.evidence or {})
        evidence_out[NAME] = {name: round(s, 4) for name, s in seen.items()}
        if speaker != record.speaker:
            evidence_out["before_lip"] = record.speaker
        out.append(replace(record, speaker=speaker, confidence=round(confidence, 4),
                           runner_up=ranked[1][0] if len(ranked) > 1 else None,
                           candidates=[[name, round(p, 4)] for name, p in ranked], evidence=evidence_out))
    return out
