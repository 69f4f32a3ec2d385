"""Reading and writing the DramaSR release layout (one folder per drama).

    subtitle_data/NNNN.json   face_data/NNNN.json + face_info.json   sv_embedding/NNNN.npy
    relation.json   caption.json   init_seeds_*.json   prop_labels_*.json

Every problem is reported as a DramaError naming the file, episode, line and field.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.model import ABSENT, Drama, Episode, FaceTracks, Lines
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


log = logging.getLogger(__name__)
_UMASK = os.umask(0)
os.umask(_UMASK)

_TIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)(?:[.,](\d{1,3}))?$")
_EPISODE_FILE = re.compile(r"^(\d+)\.(json|npy)$")
LINE_FIELDS = ("start_time", "end_time", "text", "character")


def parse_time(value: Any, *, file: Path, episode: int, line: int, field: str) -> int:
    """'HH:MM:SS.mmm' -> milliseconds."""
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise DramaError(
            f"bad timestamp {value!r}", file=file, episode=episode, line=line, field=field,
            hint="expected HH:MM:SS.mmm, e.g. 00:01:28.200",
        )
    hours, minutes, seconds, frac = match.groups()
    millis = int((frac or "0").ljust(3, "0"))
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + millis


def format_time(ms: int) -> str:
    ms = int(ms)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DramaError(f"cannot read: {exc.strerror}", file=path) from exc
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


def write_json(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, _dumps(obj))


def _episode_files(folder: Path, suffix: str) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != suffix or path.name.startswith("."):
            continue
        match = _EPISODE_FILE.match(path.name)
        if match is None:
            if path.name == "face_info.json":
                continue
            raise DramaError(
                "unknown episode numbering", file=path,
                hint="episode files must be named by their number, e.g. 0001.json",
            )
        number = int(match.group(1))
        if number in found:
            raise DramaError(f"episode {number} appears twice", file=path)
        found[number] = path
    return found


def _objects(doc: Any, path: Path, episode: int) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise DramaError("expected a JSON object", file=path, episode=episode)
    object_list = doc.get("object_list")
    if not isinstance(object_list, dict):
        raise DramaError(
            "missing 'object_list'", file=path, episode=episode, field="object_list",
        )
    objects = []
    for i in range(len(object_list)):
        item = object_list.get(str(i))
        if not isinstance(item, dict):
            raise DramaError(
                f"'object_list' keys must run 0..{len(object_list) - 1}; key {i} is missing",
                file=path, episode=episode, line=i, field="object_list",
            )
        objects.append(item)
    declared = doc.get("objects")
    if declared is not None and declared != len(objects):
        raise DramaError(
            f"'objects' says {declared} but 'object_list' holds {len(objects)}",
            file=path, episode=episode, field="objects",
        )
    return objects


def load_drama(path: str | Path) -> Drama:
    """Read a drama folder in the DramaSR layout, validating as it goes."""
    root = Path(path)
    if not root.is_dir():
        raise DramaError("not a folder", file=root, hint="pass a drama folder in the DramaSR layout")
    subtitle_dir = root / "subtitle_data"
    if not subtitle_dir.is_dir():
        raise DramaError(
            "no subtitle_data/ folder", file=root,
            hint="a drama folder holds subtitle_data/, sv_embedding/ and usually face_data/",
        )
    subtitle_files = _episode_files(subtitle_dir, ".json")
    if not subtitle_files:
        raise DramaError("empty drama: subtitle_data/ holds no episode files", file=subtitle_dir)
    embedding_dir = root / "sv_embedding"
    embedding_files = _episode_files(embedding_dir, ".npy") if embedding_dir.is_dir() else {}
    face_dir = root / "face_data"
    face_files = _episode_files(face_dir, ".json") if face_dir.is_dir() else {}
    missing: list[str] = []
    for number in embedding_files:
        if number not in subtitle_files:
            raise DramaError(
                f"embedding file for episode {number} has no subtitle file",
                file=embedding_files[number], hint="episode numbering of sv_embedding/ and subtitle_data/ must match",
            )
    for number in face_files:
        if number not in subtitle_files:
            raise DramaError(
                f"face file for episode {number} has no subtitle file",
                file=face_files[number], hint="episode numbering of face_data/ and subtitle_data/ must match",
            )

    episodes: list[Episode] = []
    columns: dict[str, list[Any]] = {k: [] for k in (
        "episode", "start", "end", "sframe", "eframe", "text", "speaker", "overlap", "aux")}
    embeddings: list[np.ndarray] = []
    faces = _FaceColumns()
    dim: int | None = None
    for number, sub_path in sorted(subtitle_files.items()):
        doc = read_json(sub_path)
        objects = _objects(doc, sub_path, number)
        line_start = len(columns["text"])
        keys: tuple[str, ...] = tuple(objects[0]) if objects else ()
        for i, obj in enumerate(objects):
            for name in LINE_FIELDS:
                if name not in obj:
                    raise DramaError(
                        "missing field", file=sub_path, episode=number, line=i, field=name,
                    )
            start = parse_time(obj["start_time"], file=sub_path, episode=number, line=i, field="start_time")
            end = parse_time(obj["end_time"], file=sub_path, episode=number, line=i, field="end_time")
            if end < start:
                raise DramaError(
                    f"ends before it starts ({obj['end_time']} < {obj['start_time']})",
                    file=sub_path, episode=number, line=i, field="end_time",
                )
            if not isinstance(obj["text"], str) or not isinstance(obj["character"], str):
                field_name = "text" if not isinstance(obj["text"], str) else "character"
                raise DramaError("must be a string", file=sub_path, episode=number, line=i, field=field_name)
            columns["episode"].append(number)
            columns["start"].append(start)
            columns["end"].append(end)
            columns["sframe"].append(int(obj.get("start_frame", -1)))
            columns["eframe"].append(int(obj.get("end_frame", -1)))
            columns["text"].append(obj["text"])
            columns["speaker"].append(obj["character"])
            overlap = obj.get("overlap")
            columns["overlap"].append(ABSENT if overlap is None else int(bool(overlap)))
            columns["aux"].append(obj.get("auxiliary_text"))
        n_lines = len(objects)

        emb_path = embedding_files.get(number)
        if emb_path is None:
            raise DramaError(
                "no voice embedding file for this episode", file=embedding_dir / f"{sub_path.stem}.npy",
                episode=number, hint="sv_embedding/NNNN.npy must hold one row per subtitle line",
            )
        try:
            emb = np.load(emb_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DramaError(f"cannot read embeddings: {exc}", file=emb_path, episode=number) from exc
        if emb.ndim != 2 or emb.shape[0] != n_lines:
            raise DramaError(
                f"embedding rows != lines: {emb.shape[0] if emb.ndim else 0} rows for {n_lines} subtitle lines",
                file=emb_path, episode=number,
                hint="sv_embedding/NNNN.npy must hold one row per line of subtitle_data/NNNN.json",
            )
        if dim is None:
            dim = emb.shape[1]
        elif emb.shape[1] != dim:
            raise DramaError(f"embedding width {emb.shape[1]} differs from {dim}", file=emb_path, episode=number)
        embeddings.append(np.asarray(emb, dtype=np.float32))

        face_start = len(faces.name)
        face_path = face_files.get(number)
        if face_path is not None:
            faces.read(face_path, number)
        episodes.append(Episode(
            number=number, stem=sub_path.stem, line_start=line_start, line_stop=line_start + n_lines,
            face_start=face_start, face_stop=len(faces.name),
            episode_idx=int(doc.get("episode_idx", number - 1)), line_keys=keys,
        ))

    if not columns["text"]:
        raise DramaError("empty drama: no subtitle lines in any episode", file=subtitle_dir)
    if not face_files:
        missing.append("face_data/")

    lines = Lines(
        episode=np.asarray(columns["episode"], np.int32),
        start_ms=np.asarray(columns["start"], np.int64),
        end_ms=np.asarray(columns["end"], np.int64),
        start_frame=np.asarray(columns["sframe"], np.int64),
        end_frame=np.asarray(columns["eframe"], np.int64),
        text=columns["text"], speaker=columns["speaker"],
        embedding=np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float32),
        overlap=np.asarray(columns["overlap"], np.int8),
        auxiliary_text=columns["aux"],
    )
    face_info_path = face_dir / "face_info.json"
    face_info: dict[str, Any] = {}
    if face_info_path.is_file():
        face_info = read_json(face_info_path)
        if not isinstance(face_info, dict):
            raise DramaError("expected a JSON object", file=face_info_path)
    else:
        missing.append("face_data/face_info.json")
    relation = None
    if (root / "relation.json").is_file():
        relation = read_json(root / "relation.json")
        _check_relation(relation, root / "relation.json")
    else:
        missing.append("relation.json")
    captions = read_json(root / "caption.json") if (root / "caption.json").is_file() else None
    if captions is None:
        missing.append("caption.json")
    seed_files = {p.stem.removeprefix("init_seeds_"): read_json(p) for p in sorted(root.glob("init_seeds_*.json"))}
    if not seed_files:
        missing.append("init_seeds_*.json")
    label_files = {p.stem.removeprefix("prop_labels_"): p for p in sorted(root.glob("prop_labels_*.json"))}
    if missing:
        log.info("%s: optional input absent: %s", root.name, ", ".join(missing))
    drama = Drama(
        name=root.name, episodes=episodes, lines=lines, faces=faces.build(), face_info=face_info,
        relation=relation, captions=captions, seed_files=seed_files, label_files=label_files,
        source=str(root), missing=missing,
    )
    return drama


def _check_relation(relation: Any, path: Path) -> None:
    if not isinstance(relation, dict):
        raise DramaError("expected a JSON object", file=path)
    for i, item in enumerate(relation.get("relationship_list") or []):
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)):
            raise DramaError(
                f"entry {i} must be [name, name, relation]", file=path, field="relationship_list",
            )


class _FaceColumns:
    """Accumulates face tracks episode by episode, then freezes them into FaceTracks."""

    def __init__(self) -> None:
        self.episode: list[int] = []
        self.object_idx: list[int] = []
        self.start: list[int] = []
        self.end: list[int] = []
        self.sframe: list[int] = []
        self.eframe: list[int] = []
        self.name: list[str] = []
        self.score: list[float] = []
        self.active: list[int] = []
        self.counts: list[int] = []
        self.frames: list[int] = []
        self.boxes: list[list[int]] = []
        self.ids: list[int] = []
        self.extra: dict[int, list[dict[str, Any]]] = {}

    def read(self, path: Path, number: int) -> None:
        for i, obj in enumerate(_objects(read_json(path), path, number)):
            try:
                self._add(obj, number, path, i)
            except DramaError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                field = exc.args[0] if isinstance(exc, KeyError) else None
                raise DramaError(
                    f"malformed face track ({type(exc).__name__}: {exc})",
                    file=path, episode=number, line=i, field=field,
                    hint="a face track needs start_time, end_time, geometry.active_frame_list and id_list",
                ) from exc

    def _add(self, obj: dict[str, Any], number: int, path: Path, index: int) -> None:
        row = len(self.name)
        self.episode.append(number)
        self.object_idx.append(int(obj.get("object_idx", row)))
        self.start.append(parse_time(obj["start_time"], file=path, episode=number, line=index, field="start_time"))
        self.end.append(parse_time(obj["end_time"], file=path, episode=number, line=index, field="end_time"))
        self.sframe.append(int(obj.get("start_frame", -1)))
        self.eframe.append(int(obj.get("end_frame", -1)))
        geometry = obj.get("geometry") or {}
        frame_list = geometry.get("active_frame_list") or {}
        self.active.append(int(geometry.get("active_frames", len(frame_list))))
        for k in range(len(frame_list)):
            entry = frame_list[str(k)]
            box = entry["box"]
            self.frames.append(int(entry["frame"]))
            self.boxes.append([int(box["0"]), int(box["1"]), int(box["2"]), int(box["3"])])
        self.counts.append(len(frame_list))
        id_list = obj.get("id_list") or {}
        self.ids.append(int(obj.get("ids", len(id_list))))
        identities = [id_list[str(k)] for k in range(len(id_list))]
        if identities:
            self.name.append(str(identities[0]["name"]))
            self.score.append(float(identities[0]["score"]))
        else:
            self.name.append("")
            self.score.append(0.0)
        if len(identities) > 1 or any(ident.get("source") for ident in identities):
            self.extra[row] = identities

    def build(self) -> FaceTracks:
        if not self.name:
            return FaceTracks.empty()
        offsets = np.zeros(len(self.counts) + 1, np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        return FaceTracks(
            episode=np.asarray(self.episode, np.int32),
            object_idx=np.asarray(self.object_idx, np.int32),
            start_ms=np.asarray(self.start, np.int64), end_ms=np.asarray(self.end, np.int64),
            start_frame=np.asarray(self.sframe, np.int64), end_frame=np.asarray(self.eframe, np.int64),
            name=self.name, score=np.asarray(self.score, np.float64),
            active_frames=np.asarray(self.active, np.int32), frame_offsets=offsets,
            frame=np.asarray(self.frames, np.int32),
            box=np.asarray(self.boxes, np.int32).reshape(-1, 4),
            extra_ids=self.extra, id_count=np.asarray(self.ids, np.int32),
        )


# ----------------------------------------------------------------------------- writing


def _line_objects(drama: Drama, ep: Episode) -> Iterator[dict[str, Any]]:
    lines = drama.lines
    keys = ep.line_keys or ("episode_idx", "object_idx", "start_time", "end_time", "start_frame",
                            "end_frame", "geometry", "text", "overlap", "auxiliary_text", "character")
    for k, row in enumerate(range(ep.line_start, ep.line_stop)):
        values = {
            "episode_idx": ep.episode_idx, "object_idx": k,
            "start_time": format_time(lines.start_ms[row]), "end_time": format_time(lines.end_ms[row]),
            "start_frame": int(lines.start_frame[row]), "end_frame": int(lines.end_frame[row]),
            "geometry": {}, "text": lines.text[row], "character": lines.speaker[row],
        }
        if lines.overlap[row] != ABSENT:
            values["overlap"] = bool(lines.overlap[row])
        if lines.auxiliary_text[row] is not None:
            values["auxiliary_text"] = lines.auxiliary_text[row]
        yield {key: values[key] for key in keys if key in values} | {
            key: v for key, v in values.items() if key not in keys
        }


def _face_objects(drama: Drama, ep: Episode) -> Iterator[dict[str, Any]]:
    faces = drama.faces
    for row in range(ep.face_start, ep.face_stop):
        lo, hi = faces.frame_offsets[row], faces.frame_offsets[row + 1]
        frame_list = {
            str(k): {"frame": int(faces.frame[j]), "box": {str(c): int(v) for c, v in enumerate(faces.box[j])}}
            for k, j in enumerate(range(lo, hi))
        }
        if row in faces.extra_ids:
            identities = faces.extra_ids[row]
        elif faces.name[row] or faces.score[row]:
            identities = [{"name": faces.name[row], "score": float(faces.score[row]), "source": {}}]
        else:
            identities = []
        id_count = int(faces.id_count[row]) if faces.id_count is not None else len(identities)
        yield {
            "episode_idx": ep.episode_idx, "object_idx": int(faces.object_idx[row]),
            "start_time": format_time(faces.start_ms[row]), "end_time": format_time(faces.end_ms[row]),
            "start_frame": int(faces.start_frame[row]), "end_frame": int(faces.end_frame[row]),
            "geometry": {"active_frames": int(faces.active_frames[row]), "active_frame_list": frame_list},
            "ids": id_count, "id_list": {str(k): ident for k, ident in enumerate(identities)},
        }


def save_drama(drama: Drama, path: str | Path) -> Path:
    """Write a drama in the release layout; files are replaced atomically one by one."""
    root = Path(path)
    for ep in drama.episodes:
        objects = list(_line_objects(drama, ep))
        write_json(root / "subtitle_data" / f"{ep.stem}.json", {
            "episode_idx": ep.episode_idx, "objects": len(objects),
            "object_list": {str(k): obj for k, obj in enumerate(objects)},
        })
        faces = list(_face_objects(drama, ep))
        if drama.face_info or len(drama.faces):
            write_json(root / "face_data" / f"{ep.stem}.json", {
                "episode_idx": ep.episode_idx, "objects": len(faces),
                "object_list": {str(k): obj for k, obj in enumerate(faces)},
            })
        target = root / "sv_embedding" / f"{ep.stem}.npy"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.tmp.npy")
        np.save(tmp, drama.lines.embedding[ep.line_start:ep.line_stop])
        os.replace(tmp, target)
    if drama.face_info:
        write_json(root / "face_data" / "face_info.json", drama.face_info)
    if drama.relation is not None:
        write_json(root / "relation.json", drama.relation)
    if drama.captions is not None:
        write_json(root / "caption.json", drama.captions)
    for key, seeds in drama.seed_files.items():
        write_json(root / f"init_seeds_{key}.json", seeds)
    _remove_stale_episodes(root, {ep.stem for ep in drama.episodes})
    for key, label_path in drama.label_files.items():
        if Path(label_path).resolve() != (root / f"prop_labels_{key}.json").resolve():
            write_bytes_atomic(root / f"prop_labels_{key}.json", Path(label_path).read_bytes())
    return root


def _remove_stale_episodes(root: Path, stems: set[str]) -> None:
    """Drop episode files of an earlier, longer drama written to the same folder.

    Left in place they would be read back as episodes of this drama.
    """
    for sub, suffix in (("subtitle_data", ".json"), ("face_data", ".json"), ("sv_embedding", ".npy")):
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.suffix == suffix and _EPISODE_FILE.match(path.name) and path.stem not in stems:
                path.unlink()
