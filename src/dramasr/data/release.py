"""Reading the DramaSR release layout (one folder per drama) into a `Drama`.

    subtitle_data/NNNN.json   face_data/NNNN.json + face_info.json   sv_embedding/NNNN.npy
    relation.json   caption.json   init_seeds_*.json   prop_labels_*.json

Every problem is reported as a DramaError naming the file, episode, line and field; what
has one obvious reading is mended and reported instead. Writing is `release_write`, the
file primitives (JSON, atomic writes, timestamps, the mend collector) are `fileio`; the
names callers use are re-exported here.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.fileio import EPISODE_FILE, Mends, parse_time, read_json
from dramasr.data.fileio import check_writable as check_writable  # re-exported: callers import it from here
from dramasr.data.fileio import format_time as format_time
from dramasr.data.fileio import write_bytes_atomic as write_bytes_atomic
from dramasr.data.fileio import write_json as write_json
from dramasr.data.model import ABSENT, Drama, Episode, FaceTracks, Lines
from dramasr.data.release_write import save_drama as save_drama
from dramasr.errors import DramaError
from dramasr.runtime import cores, return_freed_memory

log = logging.getLogger(__name__)
LINE_FIELDS = ("start_time", "end_time", "text")


def _episode_files(folder: Path, suffix: str) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != suffix or path.name.startswith("."):
            continue
        match = EPISODE_FILE.match(path.name)
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


def _objects(doc: Any, path: Path, episode: int, mends: Mends) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise DramaError("expected a JSON object", file=path, episode=episode)
    object_list = doc.get("object_list")
    if not isinstance(object_list, dict):
        raise DramaError(
            "missing 'object_list'", file=path, episode=episode, field="object_list",
            hint="an episode file is {\"objects\": N, \"object_list\": {\"0\": {...}, ...}}",
        )
    try:
        keys = sorted(object_list, key=int)
    except ValueError:
        bad = next(k for k in object_list if not k.strip().lstrip("-").isdigit())
        raise DramaError(f"'object_list' key {bad!r} is not a number", file=path, episode=episode,
                         field="object_list", hint="keys are the line numbers 0, 1, 2, ...") from None
    if keys != [str(i) for i in range(len(keys))]:
        mends.add("object_keys", path, episode, f"keys {keys[:3]}...{keys[-1:]} of {len(keys)}")
    objects = []
    for key in keys:
        item = object_list[key]
        if not isinstance(item, dict):
            raise DramaError("expected a JSON object", file=path, episode=episode, line=int(key), field="object_list")
        objects.append(item)
    declared = doc.get("objects")
    if declared is not None and declared != len(objects):
        mends.add("objects_count", path, episode, f"'objects' says {declared!r}, 'object_list' holds {len(objects)}")
    return objects


def _frame(obj: dict[str, Any], name: str, mends: Mends, path: Path, episode: int, line: int) -> int:
    value = obj.get(name, -1)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) > 2**53:
        mends.add("frame_field", path, episode, f"line {line}, field '{name}': {value!r}")
        return -1
    return int(value)


def _line_text(obj: dict[str, Any], mends: Mends, path: Path, episode: int, line: int) -> str:
    text = obj["text"]
    if isinstance(text, str):
        return text
    if isinstance(text, dict | list):
        raise DramaError("must be a string", file=path, episode=episode, line=line, field="text")
    mends.add("text_type", path, episode, f"line {line}: {text!r}")
    return "" if text is None else str(text)


def _line_truth(obj: dict[str, Any], mends: Mends, path: Path, episode: int, line: int) -> str:
    """The line's ground truth, "" when the drama does not give one (truth is optional)."""
    truth = obj.get("character")
    if truth is None or isinstance(truth, str):
        return truth or ""
    mends.add("character_type", path, episode, f"line {line}: {truth!r}")
    return ""


def _read_embeddings(path: Path, number: int, n_lines: int) -> np.ndarray:
    try:
        emb = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DramaError(f"cannot read embeddings: {exc}", file=path, episode=number,
                         hint="sv_embedding/NNNN.npy must be a numpy array file, one row per line") from exc
    if n_lines == 0 and emb.size == 0:
        return np.zeros((0, emb.shape[-1] if emb.ndim == 2 else 0), np.float32)
    if emb.ndim != 2 or emb.shape[0] != n_lines:
        rows = emb.shape[0] if emb.ndim else 0
        raise DramaError(
            f"embedding shape {emb.shape}: {rows} rows for {n_lines} subtitle lines", file=path, episode=number,
            hint="sv_embedding/NNNN.npy must hold one row per line of subtitle_data/NNNN.json",
        )
    if not np.issubdtype(emb.dtype, np.number) or np.issubdtype(emb.dtype, np.complexfloating):
        raise DramaError(f"embeddings must be real numbers, not {emb.dtype}", file=path, episode=number)
    return np.asarray(emb, dtype=np.float32)


def _voiceless_rows(emb: np.ndarray) -> np.ndarray:
    """Rows with no usable voice: any NaN or infinite value, or all zeros."""
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(emb).all(1)
        bad |= ~(emb != 0).any(1)
    return bad


def load_drama(path: str | Path, *, strict: bool = False) -> Drama:
    """Read a drama folder in the DramaSR layout, validating as it goes.

    What has one obvious reading is mended and reported in `Drama.mends` (a 60 in a
    seconds field rolls over, a NaN embedding row means no voice evidence, ...); with
    `strict` such input is refused instead. Anything else raises a one-line DramaError.
    Ground truth ('character') is optional.
    """
    drama = _read_drama(Path(path), strict)
    _compact(drama)
    return drama


def _read_drama(path: Path, strict: bool) -> Drama:
    """`load_drama` without `_compact`."""
    root = Path(path)
    if not root.is_dir():
        raise DramaError("not a folder", file=root, hint="pass a drama folder in the DramaSR layout")
    subtitle_dir = root / "subtitle_data"
    if not subtitle_dir.is_dir():
        raise DramaError(
            "no subtitle_data/ folder", file=root,
            hint="a drama folder holds subtitle_data/, sv_embedding/ and usually face_data/",
        )
    mends = Mends(strict)
    subtitle_files = _episode_files(subtitle_dir, ".json")
    if not subtitle_files:
        raise DramaError("empty drama: subtitle_data/ holds no episode files", file=subtitle_dir)
    embedding_dir = root / "sv_embedding"
    embedding_files = _episode_files(embedding_dir, ".npy") if embedding_dir.is_dir() else {}
    if not embedding_files:
        raise DramaError("no voice embeddings: sv_embedding/ is missing or empty", file=embedding_dir,
                         hint="sv_embedding/NNNN.npy holds one voice embedding per subtitle line")
    face_dir = root / "face_data"
    face_files = _episode_files(face_dir, ".json") if face_dir.is_dir() else {}
    missing: list[str] = []
    for kind, files in (("embedding", embedding_files), ("face", face_files)):
        for number, file in files.items():
            if number not in subtitle_files:
                raise DramaError(
                    f"{kind} file for episode {number} has no subtitle file", file=file,
                    hint=f"episode numbering of {file.parent.name}/ and subtitle_data/ must match",
                )

    episodes: list[Episode] = []
    columns: dict[str, list[Any]] = {k: [] for k in (
        "episode", "start", "end", "sframe", "eframe", "text", "speaker", "overlap", "aux")}
    names: dict[str, str] = {}  # each speaker name once (see _FaceColumns.distinct)
    embeddings: list[np.ndarray | None] = []
    dim: int | None = None
    # face files are read ahead in worker processes while the subtitles are read here
    with _FaceReader(face_files, mends) as faces:
        for number, sub_path in sorted(subtitle_files.items()):
            doc = read_json(sub_path, mends)
            objects = _objects(doc, sub_path, number, mends)
            line_start = len(columns["text"])
            keys: tuple[str, ...] = tuple(objects[0]) if objects else ()
            for i, obj in enumerate(objects):
                mends.line = line_start + i
                for name in LINE_FIELDS:
                    if name not in obj:
                        raise DramaError(
                            "missing field", file=sub_path, episode=number, line=i, field=name,
                        )
                start = parse_time(obj["start_time"], file=sub_path, episode=number, line=i, field="start_time",
                                   mends=mends)
                end = parse_time(obj["end_time"], file=sub_path, episode=number, line=i, field="end_time", mends=mends)
                if end < start:
                    mends.add("time_reversed", sub_path, number, f"line {i}: {obj['start_time']} -> {obj['end_time']}")
                    start, end = end, start
                columns["episode"].append(number)
                columns["start"].append(start)
                columns["end"].append(end)
                columns["sframe"].append(_frame(obj, "start_frame", mends, sub_path, number, i))
                columns["eframe"].append(_frame(obj, "end_frame", mends, sub_path, number, i))
                columns["text"].append(_line_text(obj, mends, sub_path, number, i))
                speaker = _line_truth(obj, mends, sub_path, number, i)
                columns["speaker"].append(names.setdefault(speaker, speaker))  # one object per name
                overlap = obj.get("overlap")
                columns["overlap"].append(ABSENT if overlap is None else int(bool(overlap)))
                aux = obj.get("auxiliary_text")
                columns["aux"].append(aux if aux is None or isinstance(aux, str) else str(aux))
            mends.line = None
            n_lines = len(objects)

            emb_path = embedding_files.get(number)
            if emb_path is None:
                if n_lines:
                    mends.add("no_voice_file", embedding_dir / f"{sub_path.stem}.npy", number, f"{n_lines} lines",
                              lines=range(line_start, line_start + n_lines))
                embeddings.append(None)
            else:
                emb = _read_embeddings(emb_path, number, n_lines)
                if n_lines:
                    if dim is None:
                        dim = emb.shape[1]
                    elif emb.shape[1] != dim:
                        raise DramaError(f"embedding width {emb.shape[1]} differs from {dim} of earlier episodes",
                                         file=emb_path, episode=number,
                                         hint="every episode's embeddings must come from the same voice model")
                embeddings.append(emb)

            face_start = faces.count
            face_path = face_files.get(number)
            if face_path is not None:
                faces.read(face_path, number)
            elif face_files and n_lines:
                mends.add("no_face_file", face_dir / f"{sub_path.stem}.json", number, f"{n_lines} lines")
            episode_idx = doc.get("episode_idx", number - 1)
            episodes.append(Episode(
                number=number, stem=sub_path.stem, line_start=line_start, line_stop=line_start + n_lines,
                face_start=face_start, face_stop=faces.count,
                episode_idx=episode_idx if isinstance(episode_idx, int) else number - 1, line_keys=keys,
            ))

    if not columns["text"]:
        raise DramaError("empty drama: no subtitle lines in any episode", file=subtitle_dir)
    if dim is None:
        raise DramaError("no voice embeddings for any line", file=embedding_dir,
                         hint="sv_embedding/NNNN.npy holds one voice embedding per subtitle line")
    if not face_files:
        missing.append("face_data/")

    embedding = np.concatenate([np.zeros((ep.line_stop - ep.line_start, dim), np.float32) if e is None
                                else e.reshape(-1, dim) for e, ep in zip(embeddings, episodes, strict=True)])
    has_voice = np.ones(len(embedding), bool)
    for e, ep in zip(embeddings, episodes, strict=True):
        if e is None:
            has_voice[ep.line_start:ep.line_stop] = False
            continue
        bad = np.flatnonzero(_voiceless_rows(e))
        if len(bad):
            mends.add("no_voice", embedding_files[ep.number], ep.number, f"row {int(bad[0])}", count=len(bad),
                      lines=(ep.line_start + bad).tolist())
            has_voice[ep.line_start + bad] = False
    embedding[~has_voice] = 0.0  # similar to nothing; the voice tools also skip these lines

    lines = Lines(
        episode=np.asarray(columns["episode"], np.int32),
        start_ms=np.asarray(columns["start"], np.int64),
        end_ms=np.asarray(columns["end"], np.int64),
        start_frame=np.asarray(columns["sframe"], np.int64),
        end_frame=np.asarray(columns["eframe"], np.int64),
        text=columns["text"], speaker=columns["speaker"],
        embedding=embedding,
        overlap=np.asarray(columns["overlap"], np.int8),
        auxiliary_text=columns["aux"],
        has_voice=has_voice,
    )
    face_info_path = face_dir / "face_info.json"
    face_info: dict[str, Any] = {}
    if face_info_path.is_file():
        face_info = read_json(face_info_path, mends)
        if not isinstance(face_info, dict):
            raise DramaError("expected a JSON object", file=face_info_path)
    else:
        missing.append("face_data/face_info.json")
    relation = None
    if (root / "relation.json").is_file():
        relation = read_json(root / "relation.json", mends)
        _check_relation(relation, root / "relation.json", mends)
    else:
        missing.append("relation.json")
    captions = read_json(root / "caption.json", mends) if (root / "caption.json").is_file() else None
    if captions is None:
        missing.append("caption.json")
    seed_files = {p.stem.removeprefix("init_seeds_"): read_json(p, mends)
                  for p in sorted(root.glob("init_seeds_*.json"))}
    if not seed_files:
        missing.append("init_seeds_*.json")
    label_files = {p.stem.removeprefix("prop_labels_"): p for p in sorted(root.glob("prop_labels_*.json"))}
    if missing:
        log.info("%s: optional input absent: %s", root.name, ", ".join(missing))
    drama = Drama(
        name=root.name, episodes=episodes, lines=lines, faces=faces.build(), face_info=face_info,
        relation=relation, captions=captions, seed_files=seed_files, label_files=label_files,
        source=str(root), missing=missing, mends=mends.found(), mended_lines=mends.by_line,
    )
    return drama


def _compact(drama: Drama) -> None:
    """Give back the memory the parsing left: the parsed files are freed by now (some by the
    cycle collector only), but each line text, made while parsing, sits among their freed
    objects and keeps the heap around it from going back to the system. Made again, the texts
    sit together: zhen_huan_zhuan loads in ~200 MB instead of ~290."""
    gc.collect()
    drama.lines.text[:] = [text.encode().decode() for text in drama.lines.text]
    return_freed_memory()


def _check_relation(relation: Any, path: Path, mends: Mends) -> None:
    """A relation entry is [name, name, relation]; a malformed one is left out and reported
    (relations are evidence for some lines, not the input being labelled)."""
    if not isinstance(relation, dict):
        raise DramaError("expected a JSON object", file=path, hint="relation.json holds character_list and "
                         "relationship_list; remove the file to run without relations")
    entries = relation.get("relationship_list") or []
    if not isinstance(entries, list):
        raise DramaError("must be a list of [name, name, relation]", file=path, field="relationship_list")
    kept = []
    for i, item in enumerate(entries):
        if isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item):
            kept.append(item)
        else:
            mends.add("relation_dropped", path, None, f"entry {i}: {item!r} (an entry is [name, name, relation])")
    if len(kept) < len(entries):
        relation["relationship_list"] = kept


class _FaceReader:
    """The drama's face tracks, file by file in episode order (`read`), then as one FaceTracks
    (`build`).

    On a machine with several cores the face files (most of a drama's loading time) are
    read ahead in worker processes while the main process reads the subtitles. A worker
    gives back only a file that needed no mend: any other file (a malformed track, a bad
    time, a refused file) is read again here, in its turn, so the mends are reported and
    the errors raised exactly as a reading in order would."""

    AHEAD_FROM = 8  # fewer face files than this are read here: the workers would cost more

    def __init__(self, face_files: dict[int, Path], mends: Mends) -> None:
        self.mends = mends
        self.parts: list[FaceTracks] = []
        self.count = 0  # tracks read so far
        self.distinct: dict[str, str] = {}  # one string object per name, across files
        self.pool: ProcessPoolExecutor | None = None
        self.ahead: dict[int, Future[FaceTracks | None]] = {}
        if len(face_files) >= self.AHEAD_FROM and cores() > 1 and _may_fork():
            # forked, not spawned: a spawned worker imports the caller's script again, which
            # a script without a __main__ guard does not survive; the workers only parse files
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12 on forking
                self.pool = ProcessPoolExecutor(cores(), mp_context=multiprocessing.get_context("fork"))
                self.ahead = {number: self.pool.submit(_read_clean_faces, path, number)
                              for number, path in sorted(face_files.items())}

    def __enter__(self) -> _FaceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def read(self, path: Path, number: int) -> None:
        ahead = self.ahead.pop(number, None)
        try:
            part = ahead.result() if ahead is not None else None
        except Exception:  # noqa: BLE001 - a worker lost (killed, out of memory): read it here
            part = None
        if part is None:
            columns = _FaceColumns(self.mends)
            columns.read(path, number)
            part = columns.build()
        part.name[:] = [self.distinct.setdefault(name, name) for name in part.name]
        self.parts.append(part)
        self.count += len(part)

    def build(self) -> FaceTracks:
        parts = [part for part in self.parts if len(part)]
        if not parts:
            return FaceTracks.empty()
        offsets = [np.zeros(1, np.int64)]
        extra: dict[int, list[dict[str, Any]]] = {}
        rows = boxes = 0
        for part in parts:
            offsets.append(part.frame_offsets[1:] + boxes)
            extra.update({rows + row: ids for row, ids in part.extra_ids.items()})
            rows += len(part)
            boxes += int(part.frame_offsets[-1])

        def joined(column: str) -> np.ndarray:
            return np.concatenate([getattr(part, column) for part in parts])

        return FaceTracks(
            episode=joined("episode"), object_idx=joined("object_idx"), start_ms=joined("start_ms"),
            end_ms=joined("end_ms"), start_frame=joined("start_frame"), end_frame=joined("end_frame"),
            name=[name for part in parts for name in part.name], score=joined("score"),
            active_frames=joined("active_frames"), frame_offsets=np.concatenate(offsets),
            frame=joined("frame"), box=joined("box"), extra_ids=extra, id_count=joined("id_count"),
        )


def _may_fork() -> bool:
    """Reading ahead forks this process: only from the main thread of a process with no other
    Python threads (a fork copies one thread, and a lock another thread holds stays held in
    the child), and only where fork exists."""
    return ("fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
            and threading.current_thread() is threading.main_thread())


def _read_clean_faces(path: Path, number: int) -> FaceTracks | None:
    """One face file's tracks, read in a worker process; None when the file needs a mend or
    is refused (the main process then reads it itself, in order)."""
    try:
        columns = _FaceColumns(Mends(strict=True))
        columns.read(path, number)
        return columns.build()
    except Exception:  # noqa: BLE001 - whatever it is, the reading in order meets it again
        return None


class _FaceColumns:
    """Accumulates the face tracks of a face file, then freezes them into FaceTracks.

    A malformed track is left out and reported (face tracks are evidence, not the input
    being labelled): the rest of the episode's faces still count."""

    def __init__(self, mends: Mends) -> None:
        self.mends = mends
        self.episode: list[int] = []
        self.object_idx: list[int] = []
        self.start: list[int] = []
        self.end: list[int] = []
        self.sframe: list[int] = []
        self.eframe: list[int] = []
        self.name: list[str] = []
        # one string object per distinct name: 211K tracks of zhen_huan_zhuan carry 350 names
        self.distinct: dict[str, str] = {}
        self.score: list[float] = []
        self.active: list[int] = []
        self.counts: list[int] = []
        self.frames: list[int] = []
        self.boxes: list[list[int]] = []
        self.ids: list[int] = []
        self.extra: dict[int, list[dict[str, Any]]] = {}

    def read(self, path: Path, number: int) -> None:
        for i, obj in enumerate(_objects(read_json(path, self.mends), path, number, self.mends)):
            mark = self._mark()
            try:
                self._add(obj, number, path, i)
            except (DramaError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                self._undo(mark)
                if isinstance(exc, DramaError):
                    problem = exc.reason
                else:
                    problem = f"{type(exc).__name__}: {exc}"
                self.mends.add("face_track_dropped", path, number, f"track {i}: {problem}")

    def _mark(self) -> tuple[int, int]:
        return len(self.name), len(self.frames)

    def _undo(self, mark: tuple[int, int]) -> None:
        """Drop whatever a failed _add appended (it may have stopped part-way)."""
        rows, boxes = mark
        for column in (self.episode, self.object_idx, self.start, self.end, self.sframe, self.eframe,
                       self.name, self.score, self.active, self.counts, self.ids):
            del column[rows:]
        del self.frames[boxes:]
        del self.boxes[boxes:]
        self.extra.pop(rows, None)

    def _add(self, obj: dict[str, Any], number: int, path: Path, index: int) -> None:
        row = len(self.name)
        self.episode.append(number)
        self.object_idx.append(int(obj.get("object_idx", row)))
        start = parse_time(obj["start_time"], file=path, episode=number, line=index, field="start_time",
                           mends=self.mends, item="track")
        end = parse_time(obj["end_time"], file=path, episode=number, line=index, field="end_time", mends=self.mends,
                         item="track")
        if end < start:
            self.mends.add("time_reversed", path, number, f"track {index}: {obj['start_time']} -> {obj['end_time']}")
            start, end = end, start
        self.start.append(start)
        self.end.append(end)
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
            name = str(identities[0]["name"])
            self.name.append(self.distinct.setdefault(name, name))
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
