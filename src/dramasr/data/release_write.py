"""Writing a drama in the DramaSR release layout (`save_drama`), file by file, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.fileio import EPISODE_FILE, format_time, write_bytes_atomic, write_json
from dramasr.data.model import ABSENT, Drama, Episode


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
            if path.suffix == suffix and EPISODE_FILE.match(path.name) and path.stem not in stems:
                path.unlink()
