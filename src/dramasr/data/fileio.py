"""File primitives every reader and writer of a drama uses, and the loader's record of repairs.

JSON read with BOM and UTF-8 checks, atomic writes (temp file, then rename), the check that
an output path can be written before any work starts, release timestamps, and `Mends`,
which collects what a reader mended (or refuses it under --strict). Each problem is a
DramaError naming the file and what to do.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dramasr.data.model import MEND_KINDS, Mend
from dramasr.errors import DramaError

try:  # orjson parses the face files ~3x faster; the stdlib is the fallback
    import orjson

    def _loads(raw: bytes) -> Any:
        return orjson.loads(raw)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    import json

    def _loads(raw: bytes) -> Any:
        return json.loads(raw.decode("utf-8"))

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")


_UMASK = os.umask(0)
os.umask(_UMASK)

# Minutes and seconds may read 60-99: the release's own reader takes the fields as numbers,
# so "00:25:60.000" is 00:26:00.000; such a time is mended (rolled over) and reported.
_TIME = re.compile(r"^(\d+):(\d\d):(\d\d)(?:[.,](\d{1,3}))?$")
EPISODE_FILE = re.compile(r"^(\d+)\.(json|npy)$")


class Mends:
    """Collects the loader's repairs, one Mend per (kind, file); `strict` refuses instead."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._found: dict[tuple[str, str], Mend] = {}
        self.line: int | None = None  # global index of the subtitle line being read, if any
        self.by_line: dict[int, list[str]] = {}  # global line index -> kinds mended in it

    def add(self, kind: str, file: Path | str, episode: int | None, example: str, count: int = 1,
            lines: Iterable[int] = ()) -> None:
        if self.strict:
            raise DramaError(
                f"{MEND_KINDS[kind]} ({example})", file=file, episode=episode,
                hint="fix the file, or run without --strict to have it mended and reported",
            )
        for line in (self.line,) if self.line is not None else lines:
            self.by_line.setdefault(int(line), []).append(kind)
        key = (kind, str(file))
        old = self._found.get(key)
        self._found[key] = Mend(kind, str(file), episode, count, example) if old is None else \
            Mend(kind, old.file, old.episode, old.count + count, old.example)

    def found(self) -> list[Mend]:
        return list(self._found.values())


def parse_time(value: Any, *, file: Path, episode: int, line: int, field: str, mends: Mends | None = None,
               item: str = "line") -> int:
    """'HH:MM:SS.mmm' -> milliseconds (minutes/seconds of 60 or more roll over, as a mend)."""
    if type(value) is str and len(value) == 12 and value[2] == ":" and value[5] == ":" and value[8] in ".,":
        # the released files' form, read without the pattern (half a million stamps a drama)
        hours, minutes, seconds, millis = value[:2], value[3:5], value[6:8], value[9:]
        if (hours.isdecimal() and minutes.isdecimal() and seconds.isdecimal() and millis.isdecimal()
                and minutes < "60" and seconds < "60"):
            return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise DramaError(
            f"bad timestamp {value!r}", file=file, episode=episode, line=line, field=field,
            hint="expected HH:MM:SS.mmm, e.g. 00:01:28.200",
        )
    hours, minutes, seconds, frac = match.groups()
    millis = int((frac or "0").ljust(3, "0"))
    total = ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + millis
    if int(minutes) >= 60 or int(seconds) >= 60:
        if mends is None:
            raise DramaError(f"bad timestamp {value!r}", file=file, episode=episode, line=line, field=field,
                             hint="minutes and seconds run 00..59")
        mends.add("time_rollover", file, episode, f"{item} {line}, field '{field}': {value!r} -> {format_time(total)}")
    return total


def format_time(ms: int) -> str:
    ms = int(ms)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a file that cannot be read is a DramaError naming it and why."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DramaError(f"cannot read: {exc.strerror}", file=path) from exc


def read_json(path: Path, mends: Mends | None = None) -> Any:
    raw = read_bytes(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        if mends is not None:
            mends.add("bom", path, None, "at the start of the file")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DramaError(
            f"not UTF-8 text (byte {exc.start})", file=path, hint="re-save the file as UTF-8"
        ) from exc
    try:
        return _loads(raw)
    except ValueError as exc:
        raise DramaError(f"not valid JSON: {exc}", file=path) from exc


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path, option: str, *, folder: bool) -> None:
    """Refuse, before any work is done, an output path that cannot be written: a file where a
    folder is wanted (or the other way round), or a place this process may not write to
    (tried for real with a temporary file, so read-only mounts are caught too)."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise DramaError("exists and is not a folder", file=path, field=option, hint="give a folder path")
    if not folder and path.is_dir():
        raise DramaError("is a folder", file=path, field=option, hint="give a file name inside it")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DramaError(f"{existing} is a file, so nothing can be written below it", file=path, field=option,
                         hint="choose another output path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".dramasr-probe-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DramaError(f"cannot write into {existing} ({exc.strerror})", file=path, field=option,
                         hint="choose a folder you can write to") from None
    if not folder and path.exists() and not os.access(path, os.W_OK):
        raise DramaError("the file exists and is read-only", file=path, field=option,
                         hint="choose another name or make it writable")


def write_json(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, _dumps(obj))
