"""`dramasr extract`: video files + subtitle files + cast.yaml -> a drama folder in the DramaSR layout.

    subtitle_data/NNNN.json   face_data/NNNN.json + face_info.json   sv_embedding/NNNN.npy (256-d)
    lip_data/NNNN.json (speaking score per line and face track)   relation.json
    init_seeds_voice.json (lines chosen by the cast's voice samples)   extract.json (what was run)

Per-episode results are kept in `.extract/NNNN.json` (written atomically, keyed by the inputs and
settings), so a re-run skips finished episodes and a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.release import format_time, read_json, write_bytes_atomic, write_json
from dramasr.errors import DramaError
from dramasr.extract.cast import Cast, build_gallery, load_cast, voice_prints
from dramasr.extract.episode import (
    EpisodeJob,
    ExtractConfig,
    PartJob,
    SubtitleCue,
    check_cues,
    job_for,
    merge_parts,
    plan_parts,
)
from dramasr.extract.seeds import face_seeds, voice_seeds
from dramasr.progress import Progress

log = logging.getLogger(__name__)
WORK_DIR = ".extract"
RESULT_VERSION = 2  # 2: episodes run in parts, tracks follow faces between full scans


def read_cues(path: str | Path) -> list[SubtitleCue]:
    from dramasr.data.subtitles import import_subtitles

    cues = import_subtitles(path)
    for k, cue in enumerate(cues):
        if cue.end_ms < cue.start_ms:
            raise DramaError("subtitle line ends before it starts", file=path, line=k, field="end_time")
    return [SubtitleCue(int(c.start_ms), int(c.end_ms), c.text, c.speaker or "") for c in cues]


def _job_key(job: EpisodeJob) -> str:
    video = Path(job.video)
    stat = video.stat()
    digest = hashlib.sha256()
    digest.update(json.dumps([RESULT_VERSION, str(video.resolve()), stat.st_size, int(stat.st_mtime),
                              [asdict(c) for c in job.cues], list(job.cast_names), asdict(job.config)]).encode())
    digest.update(np.ascontiguousarray(job.gallery).tobytes())
    return digest.hexdigest()[:24]


CENTRE_PRIOR_LINES = 50  # the drama's mean voice is trusted as if it had this many lines less


def centre_embeddings(embeddings: Sequence[np.ndarray], prior_lines: int = CENTRE_PRIOR_LINES) -> np.ndarray:
    """The drama's mean voice (over voiced rows), shrunk toward zero by n / (n + prior_lines).

    Subtracting it (and re-normalising) spreads resemblyzer's cosines (different speakers about
    0.5 raw) over the range propagation's thresholds expect. It is the mean over many speakers
    only when there are many lines; a short clip of one speaker would lose its own voice, so
    there the centre shrinks toward no centring at all.
    """
    rows = np.concatenate([e for e in embeddings if len(e)]) if embeddings else np.zeros((0, 1))
    voiced = rows[np.abs(rows).sum(axis=1) > 0] if len(rows) else rows
    if len(voiced) == 0:
        return np.zeros(rows.shape[1] if rows.ndim == 2 else 1, np.float64)
    return voiced.astype(np.float64).mean(axis=0) * (len(voiced) / (len(voiced) + prior_lines))


def apply_centre(emb: np.ndarray, centre: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, np.float64)
    voiced = np.abs(emb).sum(axis=1) > 0
    out = np.zeros_like(emb)
    shifted = emb[voiced] - centre[None, :]
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    out[voiced] = shifted / np.maximum(norms, 1e-9)
    return out.astype(np.float32)


def extract_drama(videos: Sequence[str | Path], subtitles: Sequence[str | Path], cast_path: str | Path,
                  out_dir: str | Path, *, config: ExtractConfig | None = None, engine: str = "local",
                  workers: int | None = None, address: str | None = None, centre: bool = True,
                  progress: Progress | None = None) -> Path:
    """Run the front-end over every episode (episode k = k-th video with k-th subtitle file)."""
    from dramasr.extract.engine import run_jobs
    from dramasr.extract.media import probe

    config = config or ExtractConfig()
    if not videos:
        raise DramaError("no video files given", field="VIDEO")
    if len(videos) != len(subtitles):
        raise DramaError(f"{len(videos)} video files but {len(subtitles)} subtitle files", field="--subs",
                         hint="give one subtitle file per video, in the same order")
    out = Path(out_dir)
    report = progress or (lambda stage, done, total: None)
    report("cast gallery", 0, 1)
    cast = build_gallery(load_cast(cast_path))
    prints = voice_prints(cast)
    report("cast gallery", 1, 1)

    jobs: list[EpisodeJob] = []
    durations: dict[int, float] = {}
    for number, (video, subs) in enumerate(zip(videos, subtitles, strict=True), start=1):
        # every input is checked here, before any episode's work starts
        info = probe(video)
        if not info.has_audio:
            raise DramaError("no audio track", file=video, episode=number,
                             hint="voices need the episode's sound: pass the video file with its audio")
        job = job_for(number, video, subs, read_cues(subs), cast, config)
        check_cues(job, info.duration_s)
        jobs.append(job)
        durations[number] = info.duration_s
    work = out / WORK_DIR
    results: dict[int, dict[str, Any]] = {}
    todo: list[EpisodeJob] = []
    for job in jobs:
        path = work / f"{job.number:04d}.json"
        key = _job_key(job)
        if path.is_file():
            try:
                stored = read_json(path)
            except DramaError:
                stored = None
            if isinstance(stored, dict) and stored.get("key") == key:
                results[job.number] = stored
                continue
        todo.append(job)
    if len(results):
        log.info("%d of %d episodes already extracted; skipped", len(results), len(jobs))
    report("episodes", len(results), len(jobs))

    parts = [part for job in todo for part in plan_parts(job, durations[job.number])]
    finished: dict[int, list[dict[str, Any]]] = {job.number: [] for job in todo}

    def done(part: PartJob, result: dict[str, Any]) -> None:
        job = part.job
        finished[job.number].append(result)
        report(f"episode {job.number} parts", len(finished[job.number]), part.count)
        if len(finished[job.number]) < part.count:
            return
        merged = merge_parts(finished.pop(job.number))
        merged["key"] = _job_key(job)
        write_json(work / f"{job.number:04d}.json", merged)
        results[job.number] = merged
        report("episodes", len(results), len(jobs))

    run_jobs(parts, engine=engine, workers=workers, address=address, on_done=done)
    report("writing drama", 0, 1)
    write_layout(out, [results[j.number] for j in jobs], cast, prints, centre=centre)
    report("writing drama", 1, 1)
    return out


def _face_objects(result: dict[str, Any]) -> list[dict[str, Any]]:
    objects = []
    for k, track in enumerate(result["tracks"]):
        frames, times = track["frames"], track["times_ms"]
        named = bool(track["name"])
        objects.append({
            "episode_idx": result["episode"] - 1, "object_idx": k,
            "start_time": format_time(times[0]), "end_time": format_time(times[-1]),
            "start_frame": frames[0][0], "end_frame": frames[-1][0],
            "geometry": {"active_frames": len(frames), "active_frame_list": {
                str(j): {"frame": f[0], "box": {"0": f[1], "1": f[2], "2": f[3], "3": f[4]}}
                for j, f in enumerate(frames)}},
            "ids": 1 if named else 0,
            "id_list": {"0": {"name": track["name"], "score": track["score"], "source": {}}} if named else {},
        })
    return objects


def write_layout(out: Path, results: list[dict[str, Any]], cast: Cast, prints: dict[str, np.ndarray], *,
                 centre: bool = True) -> None:
    """The release layout from per-episode results (every file written atomically)."""
    raw = [np.asarray(r["embedding"], np.float32).reshape(len(r["lines"]), -1) for r in results]
    mean = centre_embeddings(raw) if centre else np.zeros(raw[0].shape[1] if raw else 256)
    embeddings = [apply_centre(e, mean) for e in raw]
    for result, emb in zip(results, embeddings, strict=True):
        number, fps = result["episode"], result["fps"]
        stem = f"{number:04d}"
        lines = {str(k): {
            "episode_idx": number - 1, "object_idx": k,
            "start_time": format_time(line["start_ms"]), "end_time": format_time(line["end_ms"]),
            "start_frame": int(round(line["start_ms"] * fps / 1000)),
            "end_frame": int(round(line["end_ms"] * fps / 1000)),
            "geometry": {}, "text": line["text"], "character": line["speaker"],
        } for k, line in enumerate(result["lines"])}
        write_json(out / "subtitle_data" / f"{stem}.json",
                   {"episode_idx": number - 1, "objects": len(lines), "object_list": lines})
        faces = _face_objects(result)
        write_json(out / "face_data" / f"{stem}.json",
                   {"episode_idx": number - 1, "objects": len(faces),
                    "object_list": {str(k): f for k, f in enumerate(faces)}})
        _save_npy(out / "sv_embedding" / f"{stem}.npy", emb)
        write_json(out / "lip_data" / f"{stem}.json", {
            "episode_idx": number - 1,
            "voiced": [bool(np.abs(row).sum() > 0) for row in emb],
            "speech_s": [line["speech_s"] for line in result["lines"]],
            "scores": [{"line": row["line"], "face_object": row["track"],
                        "name": result["tracks"][row["track"]]["name"], "frames": row["frames"],
                        "activity": row["activity"], "score": row["score"]}
                       for row in result["lip"]],
        })
    names = cast.names
    write_json(out / "face_data" / "face_info.json", {
        "role_name_variants": {m.name: "&".join((m.name, *m.aliases)) for m in cast.members},
        "actor_name": {m.name: m.name for m in cast.members},
        "role_name": {m.name: m.name for m in cast.members},
    })
    write_json(out / "relation.json", {"character_list": names, "character_name_mapping": {"其他": None},
                                       "relationship_list": []})
    lip_rows: list[list[dict[str, Any]]] = []
    for result in results:
        per_line: list[list[dict[str, Any]]] = [[] for _ in result["lines"]]
        for row in result["lip"]:
            per_line[row["line"]].append({"name": result["tracks"][row["track"]]["name"], "score": row["score"]})
        lip_rows.extend(per_line)
    all_emb = np.concatenate(embeddings)
    faces_path = out / "init_seeds_faces.json"
    seeds_from_faces = face_seeds(lip_rows, np.abs(all_emb).sum(axis=1) > 0, names)
    if seeds_from_faces["character_list"]:
        write_json(faces_path, seeds_from_faces)
    elif faces_path.exists():
        faces_path.unlink()
    seeds_path = out / "init_seeds_voice.json"
    if prints:
        centred = {name: apply_centre(p, mean) for name, p in prints.items()}
        write_json(seeds_path, voice_seeds(all_emb, centred))
    elif seeds_path.exists():
        seeds_path.unlink()
    write_json(out / "extract.json", {
        "format": "dramasr-extract", "version": RESULT_VERSION,
        "episodes": [{"number": r["episode"], "video": r["video"], "subtitles": r["subtitles"], "fps": r["fps"],
                      "duration_s": r["duration_s"], "lines": len(r["lines"]), "face_tracks": len(r["tracks"])}
                     for r in results],
        "cast": names, "voice_samples": {name: len(p) for name, p in prints.items()},
        "voice_model": "resemblyzer", "voice_dim": int(raw[0].shape[1]) if raw else 256,
        "voice_centre": [float(v) for v in mean] if centre else None,
    })


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, np.float32))
    write_bytes_atomic(path, buffer.getvalue())
