"""The release's label files (prop_labels_*.json, init_seeds_*.json): their codes and their one parser.

Propagation results, predictions and seeds are all read from this format through
`parse_character_list` / `parse_release_labels`, so a file is accepted or refused the same way
wherever it is read, with the error naming the field and the label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.model import OTHER
from dramasr.data.release import read_json
from dramasr.errors import DramaError

# Special codes of a line's label (the release's label_structure.LabelSet.SpecialCode).
CODE_UNLABELLED = -1  # no label (yet)
CODE_DISABLED = -2  # excluded from labelling
CODE_OTHER = -3  # an extra: 其他
CODE_UNKNOWN = -4  # a speaker nobody can name: 未知
UNKNOWN = "未知"
SPECIAL_NAMES = {CODE_OTHER: OTHER, CODE_UNKNOWN: UNKNOWN}
NO_LABEL_CODES = (CODE_UNLABELLED, CODE_DISABLED)

Candidates = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ReleaseCharacter:
    """One entry of a label file's character_list."""

    name: str
    code: int
    is_known: bool = True
    is_global: bool = False
    utterance_list: tuple[int, ...] = ()


@dataclass(eq=False)
class ReleaseLabels:
    """A parsed label file: the character table and, per line, its code, seed flag and candidates."""

    characters: list[ReleaseCharacter]  # in code order
    names: dict[int, str]  # code -> name: character_list, character_dict and the special codes
    code: np.ndarray  # int32 [N]
    is_seed: np.ndarray  # bool [N]
    candidates: list[Candidates | None]  # per line, ranked (name, score) as written; None: no rel_info

    def __len__(self) -> int:
        return len(self.code)


def is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _document(doc: Any, path: str | Path | None) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise DramaError("expected a JSON object", file=path,
                         hint="a release label file holds character_list, character_dict and utterance_label")
    return doc


def parse_character_list(doc: Any, path: str | Path | None = None, *,
                         require_utterances: bool = False) -> list[ReleaseCharacter]:
    """The character_list of a label or seed file, sorted by code (file order among equal codes)."""
    entries = _document(doc, path).get("character_list")
    if not isinstance(entries, list):
        raise DramaError("missing or not a list", file=path, field="character_list",
                         hint="a release seed or label file lists its characters in character_list")
    out = []
    for k, entry in enumerate(entries):
        where = f"character_list[{k}]"
        if not (isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and is_int(entry.get("code"))):
            raise DramaError("needs a 'name' and an integer 'code'", file=path, field=where)
        lines = entry.get("utterance_list")
        if lines is None and require_utterances:
            raise DramaError("needs an 'utterance_list' (the character's seed lines)", file=path, field=where)
        lines = [] if lines is None else lines
        if not isinstance(lines, list) or not all(is_int(i) for i in lines):
            raise DramaError("'utterance_list' must be a list of line indices", file=path, field=where)
        out.append(ReleaseCharacter(name=entry["name"], code=int(entry["code"]),
                                    is_known=bool(entry.get("is_known", True)),
                                    is_global=bool(entry.get("is_global", False)),
                                    utterance_list=tuple(int(i) for i in lines)))
    return sorted(out, key=lambda c: c.code)


def _code_names(doc: Mapping[str, Any], characters: list[ReleaseCharacter], path: str | Path | None
                ) -> dict[int, str]:
    names: dict[int, str] = dict(SPECIAL_NAMES)
    for character in characters:
        names[character.code] = character.name
    character_dict = doc.get("character_dict") or {}
    if not isinstance(character_dict, Mapping):
        raise DramaError("must be an object {name: code}", file=path, field="character_dict")
    for name, code in character_dict.items():
        if not is_int(code):
            raise DramaError(f"code of {name!r} must be an integer", file=path, field="character_dict")
        if int(code) in names and names[int(code)] != name:
            raise DramaError(
                f"code {code} is {name!r} here but {names[int(code)]!r} in character_list",
                file=path, field="character_dict",
            )
        names[int(code)] = name
    return names


def _rel_info_candidates(rel_info: Any, path: str | Path | None, line: int, where: str) -> Candidates | None:
    if not rel_info:  # null, [] or {}: the line has no candidates
        return None
    ranked = rel_info.get("_list") if isinstance(rel_info, Mapping) else None
    scores = rel_info.get("_dict") if isinstance(rel_info, Mapping) else None
    if not isinstance(ranked, list) or not isinstance(scores, Mapping):
        raise DramaError("must be {'_list': [names], '_dict': {name: score}}", file=path, line=line,
                         field=f"{where}.rel_info")
    pairs = []
    for name in ranked:
        score = scores.get(name)
        if not isinstance(name, str) or (score is not None and not is_number(score)):
            raise DramaError(f"bad candidate {name!r}: {score!r}", file=path, line=line, field=f"{where}.rel_info")
        pairs.append((name, math.nan if score is None else float(score)))
    return tuple(pairs)


def parse_release_labels(doc: Any, path: str | Path | None = None, *, n_lines: int | None = None,
                         drama_name: str = "?") -> ReleaseLabels:
    """A parsed prop_labels_*.json (or init_seeds_*.json) document, checked field by field.

    `utterance_label[i].code` names line i's speaker through character_list / character_dict;
    CODE_OTHER and CODE_UNKNOWN are 其他 and 未知, the NO_LABEL_CODES mean no label. `rel_info`
    gives the ranked candidates with their scores (a null score is read as NaN). With `n_lines`,
    a file with another number of labels is refused before its labels are read.
    """
    doc = _document(doc, path)
    labels = doc.get("utterance_label")
    if not isinstance(labels, list):
        raise DramaError("missing or not a list", file=path, field="utterance_label",
                         hint="a release label file holds character_list, character_dict and utterance_label")
    if n_lines is not None and len(labels) != n_lines:
        raise DramaError(
            f"{len(labels)} labels but the drama {drama_name!r} has {n_lines} subtitle lines",
            file=path, field="utterance_label", hint="the label file belongs to another drama",
        )
    characters = parse_character_list(doc, path)
    names = _code_names(doc, characters, path)
    code = np.empty(len(labels), np.int32)
    is_seed = np.zeros(len(labels), bool)
    candidates: list[Candidates | None] = []
    for i, label in enumerate(labels):
        where = f"utterance_label[{i}]"
        if not isinstance(label, Mapping) or not is_int(label.get("code")):
            raise DramaError("needs an integer 'code'", file=path, line=i, field=where)
        value = int(label["code"])
        if value not in names and value not in NO_LABEL_CODES:
            raise DramaError(
                f"code {value} names no character", file=path, line=i, field=f"{where}.code",
                hint=f"codes must appear in character_list, or be {CODE_OTHER} ({OTHER}) / "
                     f"{CODE_UNKNOWN} ({UNKNOWN})",
            )
        code[i] = value
        is_seed[i] = bool(label.get("is_gt", False))
        candidates.append(_rel_info_candidates(label.get("rel_info"), path, i, where))
    return ReleaseLabels(characters=characters, names=names, code=code, is_seed=is_seed, candidates=candidates)


def read_release_label_file(path: str | Path, *, n_lines: int | None = None, drama_name: str = "?"
                            ) -> ReleaseLabels:
    """Read and parse a prop_labels_*.json (or init_seeds_*.json)."""
    return parse_release_labels(read_json(Path(path)), path, n_lines=n_lines, drama_name=drama_name)


__all__ = [
    "CODE_DISABLED", "CODE_OTHER", "CODE_UNKNOWN", "CODE_UNLABELLED", "NO_LABEL_CODES", "SPECIAL_NAMES",
    "UNKNOWN", "Candidates", "ReleaseCharacter", "ReleaseLabels", "parse_character_list",
    "parse_release_labels", "read_release_label_file",
]
