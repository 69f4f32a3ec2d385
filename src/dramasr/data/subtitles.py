"""Subtitle files with speaker names: SRT (`NAME: text`), ASS (the event's Name field), WebVTT (`<v NAME>`).

SRT and ASS go through pysubs2. WebVTT is read and written here: pysubs2 drops `<v NAME>` voice
tags on import, and the names are the point. ASS stores centiseconds, so times come back
rounded to the nearest 10 ms; SRT and WebVTT keep milliseconds. An SRT line without a speaker
whose text would read as `NAME: text` is written `: text`, so it comes back without one.
Text in {braces} is ASS override markup to pysubs2 and does not survive SRT or ASS.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysubs2

from dramasr.data.fileio import read_bytes, write_bytes_atomic
from dramasr.data.model import (
    ABSENT,
    DELETED_MARK,
    NEW_CHARACTER_PREFIX,
    OTHER,
    SPEAKER_SEPARATOR,
    Drama,
    Episode,
    FaceTracks,
    Lines,
)
from dramasr.errors import DramaError

FORMATS = {".srt": "srt", ".ass": "ass", ".ssa": "ass", ".vtt": "vtt"}
# `NAME: text` in SRT; a longer "name" is taken for part of the text
SRT_SPEAKER = re.compile(r"^([^\n:：]{1,40}?)\s*[:：]\s?(.*)$", re.DOTALL)
VTT_TIME = re.compile(r"^(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
VTT_VOICE = re.compile(r"<v(?:\.[^\s>]*)?(?:\s+([^>]*))?>")
VTT_TAG = re.compile(r"</?[^>]*>")


@dataclass(frozen=True)
class SubtitleLine:
    """One subtitle cue: times in milliseconds, plain text, and the speaker when the file names one."""

    start_ms: int
    end_ms: int
    text: str
    speaker: str | None = None


def subtitle_format(path: str | Path, fmt: str | None = None) -> str:
    """'srt', 'ass' or 'vtt', from `fmt` or else the file's suffix."""
    if fmt is not None:
        key = fmt.lower().lstrip(".")
        if key in FORMATS.values():
            return key
        raise DramaError(f"unknown subtitle format {fmt!r}", file=path, hint="use srt, ass or vtt")
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DramaError(
            f"unknown subtitle extension {suffix or '(none)'!r}", file=path,
            hint="name the file .srt, .ass or .vtt, or pass the format",
        )
    return FORMATS[suffix]


# ----------------------------------------------------------------------------- export


def is_chinese(drama: Drama) -> bool:
    """True when most of the drama's subtitle characters are CJK (labels are then written in Chinese)."""
    sample = "".join(drama.lines.text[:2000])
    cjk = sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff")
    letters = sum(1 for ch in sample if ch.isalpha())
    return letters > 0 and cjk >= letters / 2


def default_unknown_label(drama: Drama) -> str:
    return "未知{n}" if is_chinese(drama) else "Unknown {n}"


def publish_names(names: Sequence[str | None], *, unknown_label: str = "Unknown {n}",
                  other_label: str = "") -> list[str]:
    """Speaker names fit to publish: each new-character group (`新角色-118`) becomes a stable
    readable label numbered by first appearance (`unknown_label` with {n}), Other (其他, 未知)
    becomes `other_label` ("" writes the line without a name), other names stay; each part of
    an "A/B" name is mapped the same way."""
    if "{n}" not in unknown_label:
        raise DramaError(f"the unknown-character label {unknown_label!r} has no {{n}}", field="--unknown-label",
                         hint="e.g. 'Unknown {n}' or '未知{n}'")
    numbers: dict[str, int] = {}

    def one(name: str) -> str:
        if name.startswith(NEW_CHARACTER_PREFIX):
            number = numbers.setdefault(name, len(numbers) + 1)
            return unknown_label.replace("{n}", str(number))
        if name in (OTHER, "未知"):
            return other_label
        return name

    out = []
    for name in names:
        if not name:
            out.append("")
        elif SPEAKER_SEPARATOR in name:
            parts = [one(part) for part in name.split(SPEAKER_SEPARATOR) if part]
            out.append(SPEAKER_SEPARATOR.join(p for p in parts if p))
        else:
            out.append(one(name))
    return out



def export_subtitles(
    drama: Drama,
    episode_number: int,
    path: str | Path,
    speakers: Sequence[str] | None = None,
    fmt: str | None = None,
    keep_deleted: bool = False,
) -> Path:
    """Write one episode's lines as a subtitle file with speaker names; the write is atomic.

    `speakers` (e.g. predictions) defaults to the drama's ground truth; it holds one name per
    line of the episode or one per line of the whole drama. An empty name writes no speaker.
    Lines the truth marks deleted (`!删除!`, on-screen text) are left out unless `keep_deleted`.
    """
    target = Path(path)
    kind = subtitle_format(target, fmt)
    episode = _episode(drama, episode_number, target)
    rows = range(episode.line_start, episode.line_stop)
    if speakers is None:
        names = [drama.lines.speaker[i] for i in rows]
    elif len(speakers) == len(rows):
        names = list(speakers)
    elif len(speakers) == len(drama.lines):
        names = [speakers[i] for i in rows]
    else:
        raise DramaError(
            f"{len(speakers)} speakers for an episode of {len(rows)} lines (drama: {len(drama.lines)})",
            file=target, episode=episode_number, field="speakers",
            hint="give one speaker per line of the episode or of the whole drama",
        )
    cues = [
        SubtitleLine(int(drama.lines.start_ms[i]), int(drama.lines.end_ms[i]), drama.lines.text[i], name or None)
        for i, name in zip(rows, names, strict=True)
        if keep_deleted or DELETED_MARK not in drama.lines.speaker[i]
    ]
    write_bytes_atomic(target, render_subtitles(cues, kind).encode("utf-8"))
    return target


def render_subtitles(cues: Sequence[SubtitleLine], fmt: str) -> str:
    """The text of a subtitle file ('srt', 'ass' or 'vtt') holding these cues."""
    if fmt == "vtt":
        return _render_vtt(cues)
    subs = pysubs2.SSAFile()
    for cue in cues:
        text = cue.text.replace("\n", r"\N")
        if fmt == "srt":
            if cue.speaker:
                text = f"{cue.speaker}: {text}"
            elif SRT_SPEAKER.match(text) or text.startswith((":", "：")):
                text = f": {text}"
            event = pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text=text)
        else:
            event = pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text=text, name=cue.speaker or "")
        subs.append(event)
    return subs.to_string(fmt)


def _render_vtt(cues: Sequence[SubtitleLine]) -> str:
    blocks = ["WEBVTT"]
    for cue in cues:
        text = html.escape(cue.text, quote=False)
        if cue.speaker:
            text = f"<v {html.escape(cue.speaker, quote=False)}>{text}"
        blocks.append(f"{_vtt_time(cue.start_ms)} --> {_vtt_time(cue.end_ms)}\n{text}")
    return "\n\n".join(blocks) + "\n"


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(int(ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _episode(drama: Drama, number: int, target: Path) -> Episode:
    for episode in drama.episodes:
        if episode.number == number:
            return episode
    known = ", ".join(str(e.number) for e in drama.episodes[:10])
    raise DramaError(f"drama {drama.name!r} has no episode {number}", file=target, episode=number,
                     hint=f"episodes are numbered {known}{', ...' if len(drama.episodes) > 10 else ''}")


# ----------------------------------------------------------------------------- import


def import_subtitles(path: str | Path, fmt: str | None = None) -> list[SubtitleLine]:
    """Read a subtitle file back into cues, with the speaker names it holds (None where none)."""
    source = Path(path)
    kind = subtitle_format(source, fmt)
    raw = read_bytes(source)
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DramaError(f"not UTF-8 text (byte {exc.start})", file=source,
                         hint="re-save the subtitle file as UTF-8") from exc
    if not content.strip():
        raise DramaError("empty subtitle file", file=source)
    cues = _parse_vtt(content, source) if kind == "vtt" else _parse_pysubs2(content, kind, source)
    if not cues:
        raise DramaError(f"no subtitle cues found in this {kind.upper()} file", file=source)
    return cues


def _parse_pysubs2(content: str, kind: str, source: Path) -> list[SubtitleLine]:
    try:
        # keep "a < b > c" as text; SRT's own <i>/<b>/<font> markup is still dropped
        options = {"keep_unknown_html_tags": True} if kind == "srt" else {}
        subs = pysubs2.SSAFile.from_string(content, format_=kind, **options)
    except Exception as exc:  # pysubs2 raises a variety of types on malformed input
        raise DramaError(f"not a valid {kind.upper()} file: {exc}", file=source) from exc
    cues = []
    for event in subs:
        if event.is_comment:
            continue
        text = event.plaintext
        speaker: str | None = event.name or None
        if kind == "srt":
            match = SRT_SPEAKER.match(text)
            if text.startswith(": "):
                text = text[2:]
            elif match:
                speaker, text = match.group(1).strip(), match.group(2)
        cues.append(SubtitleLine(int(event.start), int(event.end), text, speaker))
    return cues


def _parse_vtt(content: str, source: Path) -> list[SubtitleLine]:
    blocks = re.split(r"\n[ \t]*\n", content.replace("\r\n", "\n").replace("\r", "\n").strip())
    if not blocks[0].startswith("WEBVTT"):
        raise DramaError("not a WebVTT file: the first line must be WEBVTT", file=source)
    cues = []
    for block in blocks[1:]:
        rows = block.split("\n")
        if rows[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        if "-->" not in rows[0]:
            rows = rows[1:]  # a cue identifier
        if not rows or "-->" not in rows[0]:
            continue
        left, right = rows[0].split("-->", 1)
        start = _parse_vtt_time(left.strip(), source, rows[0])
        end = _parse_vtt_time(right.strip().split()[0] if right.strip() else "", source, rows[0])
        raw = "\n".join(rows[1:])
        voice = VTT_VOICE.search(raw)
        speaker = html.unescape(voice.group(1).strip()) if voice and voice.group(1) else None
        text = html.unescape(VTT_TAG.sub("", raw))
        cues.append(SubtitleLine(start, end, text, speaker or None))
    return cues


def _parse_vtt_time(value: str, source: Path, row: str) -> int:
    match = VTT_TIME.match(value)
    if match is None:
        raise DramaError(f"bad WebVTT timing line {row!r}", file=source,
                         hint="expected HH:MM:SS.mmm --> HH:MM:SS.mmm")
    hours, minutes, seconds, millis = match.groups()
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


# ----------------------------------------------------------------------------- to a drama


def lines_from_subtitles(
    cues: Sequence[SubtitleLine],
    episode_number: int = 1,
    *,
    embedding: np.ndarray | None = None,
    dim: int = 192,
    fps: float = 25.0,
    name: str = "imported",
) -> Drama:
    """A one-episode Drama from imported cues: speakers become the truth ("" where unnamed).

    Without `embedding` (one row per cue) the voice embeddings are zeros, and the drama's
    `missing` list says so ("sv_embedding/ (zeros)"): voice-based methods cannot use them.
    """
    n = len(cues)
    if n == 0:
        raise DramaError("no subtitle lines to build an episode from", episode=episode_number)
    missing = ["face_data/", "face_data/face_info.json", "relation.json", "caption.json", "init_seeds_*.json"]
    if embedding is None:
        embedding = np.zeros((n, dim), np.float32)
        missing.insert(0, "sv_embedding/ (zeros)")
    elif embedding.ndim != 2 or embedding.shape[0] != n:
        raise DramaError(f"embedding has shape {embedding.shape}; need one row per line ({n})",
                         episode=episode_number, field="embedding")
    start = np.array([c.start_ms for c in cues], np.int64)
    end = np.array([c.end_ms for c in cues], np.int64)
    lines = Lines(
        episode=np.full(n, episode_number, np.int32), start_ms=start, end_ms=end,
        start_frame=np.round(start * fps / 1000).astype(np.int64),
        end_frame=np.round(end * fps / 1000).astype(np.int64),
        text=[c.text for c in cues], speaker=[c.speaker or "" for c in cues],
        embedding=np.asarray(embedding, np.float32), overlap=np.full(n, ABSENT, np.int8),
        auxiliary_text=[None] * n,
    )
    episode = Episode(number=episode_number, stem=f"{episode_number:04d}", line_start=0, line_stop=n,
                      face_start=0, face_stop=0, episode_idx=episode_number - 1)
    return Drama(name=name, episodes=[episode], lines=lines, faces=FaceTracks.empty(), face_info={},
                 missing=missing)
