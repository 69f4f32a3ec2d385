"""The corrections file: what a person said about lines and new-character groups.

JSONL, one correction per line, appended as it is made (a person can read and edit it):

    {"line": 812, "speaker": "江阳", "was": "严良", "who": "ana", "when": "2026-11-30T12:01:02Z"}
    {"group": "新角色-82", "lines": [4051, 4052, 4060], "speaker": "胡湘江", "was": "新角色-82", ...}
    {"line": 812, "speaker": null, "who": "ana", "when": "..."}      (withdraws line 812's correction)

`line` is the global line index (as in predictions), `speaker` a cast name, a narration
label, "其他" for an extra, or "A/B" for a subtitle holding two speakers' words. A group
correction names every line that carried the group's label in the predictions the person
was looking at (the label itself is only a name: a re-run numbers new characters afresh).
`was` (the predicted speaker at the time), `who` and `when` are for the record. A later
correction of the same line, or of the same group, replaces the earlier one.

Appends are one `write` of one line under an exclusive lock, flushed to disk before they
return; rewrites go to a temp file renamed over the old one under the same lock. So two
browser tabs (or two servers) correcting at once lose nothing, and a crash leaves either
the old file or the new one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from dramasr.data.model import DELETED_MARK, NEW_CHARACTER_PREFIX, OTHER, SPEAKER_SEPARATOR, Drama
from dramasr.data.release import write_bytes_atomic
from dramasr.errors import DramaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Correction:
    """One thing a person said: line `line` (or every line of group `group`) is `speaker`'s.

    `speaker` None withdraws an earlier correction of the same line or group."""

    speaker: str | None
    line: int | None = None
    group: str | None = None
    lines: tuple[int, ...] = ()  # a group's lines
    was: str | None = None  # what the predictions said when the person corrected it
    who: str = ""
    when: str = ""

    @property
    def key(self) -> tuple[str, int | str]:
        """Which earlier correction this one replaces."""
        return ("line", int(self.line)) if self.line is not None else ("group", str(self.group))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.line is not None:
            out["line"] = int(self.line)
        else:
            out["group"] = self.group
            out["lines"] = [int(i) for i in self.lines]
        out["speaker"] = self.speaker
        if self.was is not None:
            out["was"] = self.was
        out["who"] = self.who
        out["when"] = self.when
        return out

    @classmethod
    def from_dict(cls, obj: Any, *, file: str | Path | None = None, number: int | None = None) -> Correction:
        """Parse one JSON object (number: its 1-based line in the file, for messages)."""
        where = f"correction {number}" if number is not None else "correction"

        def fail(message: str, field_name: str, hint: str | None = None) -> DramaError:
            return DramaError(f"{where}: {message}", file=file, field=field_name, hint=hint)

        if not isinstance(obj, Mapping):
            raise fail("not a JSON object", "line", hint='write {"line": N, "speaker": "NAME"}')
        speaker = obj.get("speaker")
        if speaker is not None and (not isinstance(speaker, str) or not speaker.strip()):
            raise fail(f"speaker must be a name or null, got {speaker!r}", "speaker")
        who, when, was = obj.get("who", ""), obj.get("when", ""), obj.get("was")
        if not isinstance(who, str) or not isinstance(when, str) or (was is not None and not isinstance(was, str)):
            raise fail("who, when and was must be text", "who")
        line, group = obj.get("line"), obj.get("group")
        if (line is None) == (group is None):
            raise fail("give either a line or a group", "line",
                       hint='{"line": N, "speaker": ...} or {"group": "新角色-3", "lines": [...], "speaker": ...}')
        if line is not None:
            if isinstance(line, bool) or not isinstance(line, int) or line < 0:
                raise fail(f"line must be a global line index (an integer >= 0), got {line!r}", "line")
            return cls(speaker.strip() if speaker else None, line=line, was=was, who=who, when=when)
        lines = obj.get("lines")
        if not isinstance(group, str) or not group:
            raise fail(f"group must be a label such as '{NEW_CHARACTER_PREFIX}3', got {group!r}", "group")
        if (not isinstance(lines, list) or not lines
                or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in lines)):
            raise fail("a group correction lists the group's global line indices", "lines")
        return cls(speaker.strip() if speaker else None, group=group, lines=tuple(sorted(set(lines))), was=was,
                   who=who, when=when)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class CorrectionSet:
    """The corrections in effect: the latest per line and per group, withdrawals applied."""

    lines: dict[int, Correction] = field(default_factory=dict)
    groups: dict[str, Correction] = field(default_factory=dict)

    @classmethod
    def from_log(cls, corrections: Iterable[Correction]) -> CorrectionSet:
        latest: dict[tuple[str, int | str], Correction] = {}
        for c in corrections:
            latest.pop(c.key, None)  # re-insert: order of the last say
            latest[c.key] = c
        out = cls()
        for (kind, key), c in latest.items():
            if c.speaker is None:
                continue
            if kind == "line":
                out.lines[int(key)] = c
            else:
                out.groups[str(key)] = c
        return out

    def __len__(self) -> int:
        return len(self.lines) + len(self.groups)

    def group_lines(self) -> dict[int, Correction]:
        """Lines that follow a group correction (a line's own correction wins; a later group wins)."""
        out: dict[int, Correction] = {}
        for c in self.groups.values():
            for i in c.lines:
                if i not in self.lines:
                    out[i] = c
        return out

    def speaker_of(self, line: int) -> str | None:
        if line in self.lines:
            return self.lines[line].speaker
        return None


def is_multi_speaker(name: str) -> bool:
    return SPEAKER_SEPARATOR in name


def allowed_speakers(drama: Drama) -> set[str]:
    """Names a correction may give: the cast, the drama's named characters (narration labels
    included), its seed characters, and Other."""
    names = set(drama.cast) | set(drama.named_characters())
    for doc in drama.seed_files.values():
        for c in doc.get("character_list", []) if isinstance(doc, Mapping) else []:
            if isinstance(c, Mapping) and isinstance(c.get("name"), str):
                names.add(c["name"])
    names = {n for n in names if n and DELETED_MARK not in n and not n.startswith(NEW_CHARACTER_PREFIX)}
    names.add(OTHER)
    return names


def validate(correction: Correction, drama: Drama, allowed: set[str] | None = None, *,
             file: str | Path | None = None, number: int | None = None) -> Correction:
    """Check a correction against the drama: lines in range, the speaker in the cast."""
    allowed = allowed_speakers(drama) if allowed is None else allowed
    n = len(drama.lines)
    where = f"correction {number}: " if number is not None else ""
    for i in (correction.lines if correction.line is None else (correction.line,)):
        if not 0 <= i < n:
            raise DramaError(f"{where}no line {i}: {drama.name} has lines 0..{n - 1}", file=file, line=i,
                             field="line", hint="corrections must come from this drama's predictions")
    speaker = correction.speaker
    if speaker is None:
        return correction
    parts = speaker.split(SPEAKER_SEPARATOR) if is_multi_speaker(speaker) else [speaker]
    for part in parts:
        if part not in allowed or (len(parts) > 1 and part == OTHER):
            # a file is named only when reading one: on an append the name, not the file, is wrong
            raise DramaError(
                f"{where}{part!r} is not in the cast of {drama.name}", file=file if number is not None else None,
                line=correction.line, field="speaker",
                hint=f"use a cast name (face_data/face_info.json), a narration label, {OTHER} for an extra "
                     "or A/B for two speakers' words")
    return correction


class CorrectionsFile:
    """A corrections JSONL file, safe for several writers (tabs, servers) at once."""

    def __init__(self, path: str | Path, drama: Drama | None = None) -> None:
        self.path = Path(path)
        self.drama = drama
        self._allowed = allowed_speakers(drama) if drama is not None else None
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read(self) -> list[Correction]:
        """Every correction in file order (validated against the drama when one was given)."""
        if not self.path.exists():
            return []
        with self._locked(exclusive=False):
            raw = self.path.read_bytes()
        return list(self._parse(raw))

    def _parse(self, raw: bytes) -> Iterator[Correction]:
        rows = raw.split(b"\n")
        for number, row in enumerate(rows, start=1):
            if not row.strip():
                continue
            try:
                obj = orjson.loads(row)
            except orjson.JSONDecodeError as exc:
                if number == len(rows):  # no newline after it: a write cut short by a crash
                    log.warning("%s: ignoring an unfinished last line", self.path)
                    continue
                raise DramaError(f"correction {number}: not valid JSON ({exc})", file=self.path,
                                 hint="fix or delete that line of the corrections file") from exc
            correction = Correction.from_dict(obj, file=self.path, number=number)
            if self.drama is not None:
                validate(correction, self.drama, self._allowed, file=self.path, number=number)
            yield correction

    def current(self) -> CorrectionSet:
        return CorrectionSet.from_log(self.read())

    def append(self, correction: Correction) -> Correction:
        """Validate, stamp (`when`) and append one correction; it is on disk when this returns."""
        if self.drama is not None:
            validate(correction, self.drama, self._allowed, file=self.path)
        if not correction.when:
            correction = replace(correction, when=now_utc())
        data = orjson.dumps(correction.to_dict()) + b"\n"
        with self._locked(exclusive=True):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                if os.fstat(fd).st_size and self._last_byte() != b"\n":
                    self._drop_unfinished_line(fd)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        return correction

    def _drop_unfinished_line(self, fd: int) -> None:
        """A write cut short by a crash left a line without its newline: drop that fragment."""
        raw = self.path.read_bytes()
        keep = raw.rfind(b"\n") + 1
        log.warning("%s: dropping an unfinished last line (%d bytes)", self.path, len(raw) - keep)
        os.ftruncate(fd, keep)

    def _last_byte(self) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1)

    def rewrite(self, corrections: Iterable[Correction]) -> None:
        """Replace the whole file atomically (e.g. to compact it to the corrections in effect)."""
        items = list(corrections)
        if self.drama is not None:
            for c in items:
                validate(c, self.drama, self._allowed, file=self.path)
        data = b"".join(orjson.dumps(c.to_dict()) + b"\n" for c in items)
        with self._locked(exclusive=True):
            write_bytes_atomic(self.path, data)

    def compact(self) -> CorrectionSet:
        """Rewrite the file as the corrections in effect (withdrawn and replaced ones dropped)."""
        current = self.current()
        self.rewrite([*current.groups.values(), *current.lines.values()])
        return current


def read_corrections(path: str | Path, drama: Drama) -> CorrectionSet:
    """The corrections in effect in a file (validated against the drama); a missing file is an error."""
    if not Path(path).is_file():
        raise DramaError("no such corrections file", file=path, field="--corrections",
                         hint="save corrections from `dramasr review`, or write JSONL lines "
                              '{"line": N, "speaker": "NAME"}')
    return CorrectionsFile(path, drama).current()


__all__ = ["Correction", "CorrectionSet", "CorrectionsFile", "allowed_speakers", "is_multi_speaker", "now_utc",
           "read_corrections", "validate"]
