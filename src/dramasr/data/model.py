"""The in-memory drama: subtitle lines, face tracks and voice embeddings as numpy columns.

One object per drama, not one per line: a 60K-line drama is a handful of arrays plus two
lists of strings, so loading and slicing stay fast and small.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

DELETED_MARK = "!删除!"
NARRATION_MARK = "旁白"
OTHER = "其他"
NEW_CHARACTER_PREFIX = "新角色-"

# Optional per-line boolean stored as int8: -1 = field absent in the source file.
ABSENT = -1
# The release writes the words of two or more speakers that share one subtitle with this
# mark between them ("走吧 哥/没事"), and their truth as "A/B".
SPEAKER_SEPARATOR = "/"


def speech_parts(text: str) -> int:
    """How many speakers' words a subtitle line holds (1 unless it is split by "/")."""
    if SPEAKER_SEPARATOR not in text:
        return 1
    return max(1, sum(1 for part in text.split(SPEAKER_SEPARATOR) if part.strip()))


class _TimeSpans:
    """Seconds views of the integer millisecond columns `start_ms` / `end_ms`."""

    start_ms: np.ndarray
    end_ms: np.ndarray

    @property
    def start(self) -> np.ndarray:
        """Start time in seconds within the episode (float64)."""
        return self.start_ms / 1000.0

    @property
    def end(self) -> np.ndarray:
        return self.end_ms / 1000.0

    @property
    def duration(self) -> np.ndarray:
        """Duration in seconds."""
        return (self.end_ms - self.start_ms) / 1000.0


@dataclass(eq=False)
class Lines(_TimeSpans):
    """All subtitle lines of a drama in global order (episodes ascending, then line order).

    The global index of a line is its row here; it is the index the release's seed and
    label files (`utterance_list`) use.
    """

    episode: np.ndarray  # int32, episode number (1 for 0001.json)
    start_ms: np.ndarray  # int64, milliseconds from the start of the episode
    end_ms: np.ndarray  # int64
    start_frame: np.ndarray  # int64
    end_frame: np.ndarray  # int64
    text: list[str]
    speaker: list[str]  # ground truth as written in the release ("" when unknown)
    embedding: np.ndarray  # float32 [N, D], one voice embedding per line
    overlap: np.ndarray  # int8: 1/0, or ABSENT when the source line had no such field
    auxiliary_text: list[str | None]  # None when the source line had no such field
    # False where the line has no usable voice embedding (NaN, infinite or all-zero in the
    # source, or no embedding file): its embedding row is zeros and voice tools give it none
    has_voice: np.ndarray | None = None  # bool [N]; None on construction = every line has one

    def __post_init__(self) -> None:
        if self.has_voice is None:
            self.has_voice = np.ones(len(self.text), bool)

    def __len__(self) -> int:
        return len(self.text)

    @property
    def labelled(self) -> np.ndarray:
        """True for lines whose truth is given (a drama without truth has none)."""
        return np.fromiter((bool(s) for s in self.speaker), bool, len(self.speaker))

    @property
    def deleted(self) -> np.ndarray:
        """True for lines the release marks as deleted (excluded from scoring)."""
        return np.fromiter((DELETED_MARK in s for s in self.speaker), bool, len(self.speaker))


@dataclass(eq=False)
class FaceTracks(_TimeSpans):
    """Face tracks of all episodes; per-frame boxes are stored compactly (CSR layout)."""

    episode: np.ndarray  # int32
    object_idx: np.ndarray  # int32, index of the track inside its episode file
    start_ms: np.ndarray  # int64
    end_ms: np.ndarray  # int64
    start_frame: np.ndarray  # int64
    end_frame: np.ndarray  # int64
    name: list[str]  # recognised name of the first identity ("" when the track has none)
    score: np.ndarray  # float64, recognition score of that identity (0 when none)
    active_frames: np.ndarray  # int32, the 'active_frames' field as written
    frame_offsets: np.ndarray  # int64 [M+1]: boxes of track i are rows offsets[i]:offsets[i+1]
    frame: np.ndarray  # int32 [K], frame number of each box
    box: np.ndarray  # int32 [K, 4], x1 y1 x2 y2
    extra_ids: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # identities beyond the first, and non-empty 'source' fields, kept verbatim (rare)
    id_count: np.ndarray | None = None  # int32, 'ids' as written (None = 1 per named track)

    def __len__(self) -> int:
        return len(self.name)

    @classmethod
    def empty(cls) -> FaceTracks:
        i32, i64 = np.zeros(0, np.int32), np.zeros(0, np.int64)
        return cls(
            episode=i32, object_idx=i32, start_ms=i64, end_ms=i64, start_frame=i64,
            end_frame=i64, name=[], score=np.zeros(0, np.float64), active_frames=i32,
            frame_offsets=np.zeros(1, np.int64), frame=i32, box=np.zeros((0, 4), np.int32),
        )


@dataclass(eq=False)
class Episode:
    """Where an episode's lines and faces sit in the global columns, and its file stem."""

    number: int  # 1 for 0001.json
    stem: str  # "0001"
    line_start: int
    line_stop: int
    face_start: int
    face_stop: int
    episode_idx: int  # the 'episode_idx' value written inside the files
    line_keys: tuple[str, ...] = ()  # field order of the subtitle objects, for faithful writing


@dataclass(frozen=True)
class Mend:
    """One kind of repair the loader made in one file: what, where, how often, and an example.

    A mend is made only where the input has one obvious reading (a 60 in the seconds field
    is the next minute); it is reported, never silent."""

    kind: str  # one of MEND_KINDS
    file: str
    episode: int | None
    count: int
    example: str  # the first occurrence, e.g. "line 12, field 'start_time': '00:25:60.000' -> 00:26:00.000"

    @property
    def meaning(self) -> str:
        return MEND_KINDS.get(self.kind, self.kind)

    def __str__(self) -> str:
        where = self.file + (f" (episode {self.episode})" if self.episode is not None else "")
        return f"{where}: {self.count} x {self.meaning}; first: {self.example}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "episode": self.episode, "count": self.count,
                "meaning": self.meaning, "example": self.example}


MEND_KINDS = {
    "time_rollover": "timestamp field of 60 or more rolled over into the next minute/hour (as the release reads it)",
    "time_reversed": "end time before start time: the two were swapped",
    "no_voice": "voice embedding NaN, infinite or all zero: the line has no voice evidence",
    "no_voice_file": "no embedding file: the episode's lines have no voice evidence",
    "no_face_file": "no face file while other episodes have one: the episode has no face evidence",
    "face_track_dropped": "malformed face track left out",
    "bom": "UTF-8 byte-order mark ignored",
    "objects_count": "'objects' disagrees with 'object_list': the list was read as it is",
    "object_keys": "'object_list' keys are not 0..n-1: lines read in numeric key order",
    "text_type": "'text' not a string: read as its string form (null as empty)",
    "frame_field": "start_frame/end_frame not an integer: read as unknown (-1)",
    "character_type": "'character' not a string: the line is read as unlabelled",
    "relation_dropped": "malformed relation entry left out",
}


@dataclass(eq=False)
class Drama:
    """One drama: lines, faces, embeddings, cast and optional relations, captions, seeds."""

    name: str
    episodes: list[Episode]
    lines: Lines
    faces: FaceTracks
    face_info: dict[str, Any]
    relation: dict[str, Any] | None = None
    captions: Any = None
    seed_files: dict[str, dict[str, Any]] = field(default_factory=dict)  # "1pct" -> raw JSON
    label_files: dict[str, Any] = field(default_factory=dict)  # "1pct_apw" -> path of prop_labels
    source: str | None = None  # folder it was read from
    missing: list[str] = field(default_factory=list)  # optional inputs the source did not have
    mends: list[Mend] = field(default_factory=list)  # repairs the loader made, one per kind and file
    mended_lines: dict[int, list[str]] = field(default_factory=dict)  # line index -> mend kinds in that line

    @property
    def has_truth(self) -> bool:
        """True when at least one line carries a ground-truth speaker."""
        return any(self.lines.speaker)

    @property
    def cast(self) -> list[str]:
        """Cast (role) names from face_info.json, in file order."""
        variants = self.face_info.get("role_name_variants") or self.face_info.get("role_name")
        if variants:
            return list(variants)
        if self.relation and self.relation.get("character_list"):
            return list(self.relation["character_list"])
        for seeds in self.seed_files.values():
            return [c["name"] for c in seeds.get("character_list", []) if c.get("is_known", True)]
        return []

    def named_characters(self) -> frozenset[str]:
        """The release's "named" set: cast names seen in face tracks, plus narration labels.

        Narration labels are any truth names containing 旁白.
        """
        cast = set(self.cast)
        # Without face tracks the rule has nothing to filter on: every cast name counts.
        seen = {n for n in set(self.faces.name) if n in cast} if len(self.faces) else cast
        narration = {s for s in set(self.lines.speaker) if NARRATION_MARK in s and DELETED_MARK not in s}
        return frozenset(seen | narration)

    def episode_range(self, first: int, last: int) -> Drama:
        """The drama made of its episodes numbered first..last (a contiguous run of lines
        and face tracks), as if released on their own: line indices start at 0 again."""
        chosen = [ep for ep in self.episodes if first <= ep.number <= last]
        if not chosen:
            raise IndexError(f"no episode numbered {first}..{last}")
        lo, hi = chosen[0].line_start, chosen[-1].line_stop
        f_lo, f_hi = chosen[0].face_start, chosen[-1].face_stop
        lines = Lines(**{f.name: getattr(self.lines, f.name)[lo:hi] for f in fields(Lines)})
        faces = self.faces
        b_lo, b_hi = int(faces.frame_offsets[f_lo]), int(faces.frame_offsets[f_hi])
        sliced = {f.name: getattr(faces, f.name)[f_lo:f_hi] for f in fields(FaceTracks)
                  if f.name not in ("frame_offsets", "frame", "box", "extra_ids", "id_count")}
        faces = FaceTracks(
            **sliced, frame_offsets=faces.frame_offsets[f_lo:f_hi + 1] - b_lo, frame=faces.frame[b_lo:b_hi],
            box=faces.box[b_lo:b_hi], extra_ids={k - f_lo: v for k, v in faces.extra_ids.items() if f_lo <= k < f_hi},
            id_count=None if faces.id_count is None else faces.id_count[f_lo:f_hi],
        )
        episodes = [replace(ep, line_start=ep.line_start - lo, line_stop=ep.line_stop - lo,
                            face_start=ep.face_start - f_lo, face_stop=ep.face_stop - f_lo) for ep in chosen]
        return Drama(f"{self.name}[{first}-{last}]", episodes, lines, faces, self.face_info, self.relation,
                     self.captions, source=self.source, missing=list(self.missing),
                     mends=list(self.mends),
                     mended_lines={i - lo: kinds for i, kinds in self.mended_lines.items() if lo <= i < hi})

    def episode_of_line(self, line: int) -> Episode:
        for ep in self.episodes:
            if ep.line_start <= line < ep.line_stop:
                return ep
        raise IndexError(line)

    @property
    def hours(self) -> float:
        total = 0.0
        for ep in self.episodes:
            if ep.line_stop > ep.line_start:
                total += self.lines.end_ms[ep.line_start:ep.line_stop].max() / 3.6e6
        return total
