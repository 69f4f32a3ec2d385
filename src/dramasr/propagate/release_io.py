"""A `Propagation` in the release's prop_labels_*.json format (written byte for byte as the release
writes it, read through the one parser in `dramasr.data.release_labels`) and as dramasr predictions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.model import OTHER
from dramasr.data.predictions import rank_with_speaker
from dramasr.data.predictions import write_predictions as write_records
from dramasr.data.release import read_json, write_bytes_atomic
from dramasr.data.release_labels import parse_release_labels
from dramasr.errors import DramaError
from dramasr.propagate.result import (
    CODE_OTHER,
    STAGE_NAMES,
    STAGE_NONE,
    STAGE_OTHER,
    STAGE_PROPAGATED,
    STAGE_SEED,
    Propagation,
)


def release_labels_doc(prop: Propagation) -> dict[str, Any]:
    """The release's prop_labels_*.json document for a propagation result."""
    chars = prop.characters
    character_list = [{
        "name": name, "code": c, "is_known": bool(prop.is_known[c]), "is_global": bool(prop.is_global[c]),
        "utterance_list": [int(i) for i in (prop.utterance_lists[c] if c < len(prop.utterance_lists) else [])],
    } for c, name in enumerate(chars)]
    off = prop.cand_offsets.tolist()
    cc, cs = prop.cand_code.tolist(), prop.cand_score.tolist()
    labels = []
    for i, (code, seed) in enumerate(zip(prop.code.tolist(), prop.is_seed.tolist(), strict=True)):
        names = [chars[c] for c in cc[off[i]:off[i + 1]]]
        labels.append({"code": int(code), "is_gt": bool(seed), "rel_info": {
            "_list": names, "_dict": dict(zip(names, cs[off[i]:off[i + 1]], strict=True))}})
    return {"characters": len(chars), "character_list": character_list,
            "character_dict": {name: c for c, name in enumerate(chars)}, "utterance_label": labels}


def write_release_labels(prop: Propagation, path: str | Path) -> None:
    """Write the release's prop_labels_*.json (same keys, order and JSON spacing)."""
    write_bytes_atomic(Path(path), json.dumps(release_labels_doc(prop), ensure_ascii=False).encode("utf-8"))


def read_release_labels(path: str | Path, episode: np.ndarray | None = None) -> Propagation:
    """Read a release prop_labels_*.json (or init_seeds_*.json) into a `Propagation`."""
    return release_labels_from_doc(read_json(Path(path)), path, episode)


def release_labels_from_doc(doc: Any, path: str | Path | None = None,
                            episode: np.ndarray | None = None) -> Propagation:
    """A parsed release label document as a `Propagation` (candidate scores kept as written).

    The document is checked by the one parser of the format, `parse_release_labels`; a
    `Propagation` further needs character codes 0..C-1 and candidates that are listed characters.
    """
    labels = parse_release_labels(doc, path)
    chars = labels.characters
    names = [c.name for c in chars]
    if [c.code for c in chars] != list(range(len(chars))):
        raise DramaError("character codes must be 0, 1, 2, ... in character_list", file=path,
                         field="character_list")
    code = labels.code
    if np.any(code >= len(names)):
        raise DramaError("label code out of range", file=path, field="utterance_label",
                         hint="a code names a character of character_list (or is a special negative code)")
    code_of = {name: i for i, name in enumerate(names)}
    n = len(code)
    offsets = np.zeros(n + 1, np.int64)
    cand_code: list[int] = []
    cand_score: list[float] = []
    for i, candidates in enumerate(labels.candidates):
        for name, score in candidates or ():
            if name not in code_of:
                raise DramaError(f"candidate {name!r} is not in character_list", file=path, line=i,
                                 field=f"utterance_label[{i}].rel_info")
            cand_code.append(code_of[name])
            cand_score.append(score)
        offsets[i + 1] = len(cand_code)
    is_seed = labels.is_seed
    stage = np.where(is_seed, STAGE_SEED, np.where(code >= 0, STAGE_PROPAGATED,
                                                   np.where(code == CODE_OTHER, STAGE_OTHER, STAGE_NONE)))
    return Propagation(
        characters=names, is_known=np.array([c.is_known for c in chars], bool),
        is_global=np.array([c.is_global for c in chars], bool),
        code=code, is_seed=is_seed, stage=stage.astype(np.int8), threshold=np.full(n, np.nan, np.float32),
        label_score=np.zeros(n, np.float32), cand_offsets=offsets, cand_code=np.array(cand_code, np.int32),
        cand_score=np.array(cand_score, np.float64),
        utterance_lists=[list(c.utterance_list) for c in chars],
        episode=None if episode is None else np.asarray(episode, np.int32),
    )


def to_predictions(prop: Propagation) -> Iterator[dict[str, Any]]:
    """One prediction record per line, in the toolkit's predictions (JSONL) format."""
    conf = prop.confidence()
    off = prop.cand_offsets.tolist()
    cc, cs = prop.cand_code.tolist(), prop.cand_score.tolist()
    chars = prop.characters
    episode = prop.episode.tolist() if prop.episode is not None else [None] * len(prop.code)
    for i, code in enumerate(prop.code.tolist()):
        thr = float(prop.threshold[i])
        evidence: dict[str, Any] = {"stage": STAGE_NAMES[int(prop.stage[i])], "seed": bool(prop.is_seed[i]),
                                    "label_score": float(prop.label_score[i])}
        if not math.isnan(thr):
            evidence["threshold"] = round(thr, 4)
        speaker = OTHER if code < 0 else chars[code]
        ranked = [(chars[c], s) for c, s in zip(cc[off[i]:off[i + 1]], cs[off[i]:off[i + 1]], strict=True)]
        candidates, runner_up = rank_with_speaker(speaker, ranked, float(prop.label_score[i]))
        yield {
            "line": i, "episode": episode[i], "speaker": speaker, "confidence": float(conf[i]),
            "runner_up": runner_up, "candidates": [list(c) for c in candidates], "evidence": evidence,
        }


def write_predictions(prop: Propagation, path: str | Path) -> None:
    """Write `to_predictions` as JSONL (atomically)."""
    write_records(path, to_predictions(prop))
