"""One episode, start to finish: its subtitle lines, one voice embedding per line, face tracks
named by the cast gallery, and a lip (speaking) score per face track and line.

The result is a plain JSON-able dict (`EpisodeJob` in, dict out), so an engine can run it in
another process or on another machine and the driver writes it atomically.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.errors import DramaError


@dataclass(frozen=True)
class ExtractConfig:
    """Settings of the media front-end (the defaults are what the benchmarks ran)."""

    sample_fps: float = 4.0  # frames looked at per second of dialogue: faces and mouth movement
    margin_s: float = 0.25  # frames also sampled this long before and after each line
    max_width: int = 640  # frames are scaled down to this width for detection
    upsample: int = 1  # dlib HOG upsampling at shot cuts: 1 finds faces down to ~40 px (wide shots), 0 is 4x faster
    detect_interval_s: float = 1.0  # between cuts the whole frame is scanned this often (tracks follow faces between)
    rescan_upsample: int = 0  # HOG upsampling of those scans between cuts
    part_s: float = 60.0  # episodes are cut into parts of about this much video (at gaps between lines)
    face_match_distance: float = 0.6  # dlib's models: same person below 0.6 (their documented cut)
    lip_min_frames: int = 3  # fewer detections of a track inside a line give no lip score
    lip_reference: float = 0.03  # mouth-opening spread that scores 0.5
    subtitle_tolerance_s: float = 1.0  # a line may end this far past the video's end


@dataclass(frozen=True)
class SubtitleCue:
    start_ms: int
    end_ms: int
    text: str
    speaker: str


@dataclass(frozen=True)
class EpisodeJob:
    """Everything one episode's extraction needs, picklable for a process pool or Ray."""

    number: int
    video: str
    subtitles: str
    cues: tuple[SubtitleCue, ...]
    cast_names: tuple[str, ...]
    gallery: np.ndarray  # float32 [photos, 128]
    gallery_owner: np.ndarray  # int [photos] index into cast_names
    config: ExtractConfig


def sample_times(cues: tuple[SubtitleCue, ...], step_s: float, margin_s: float, duration_s: float) -> np.ndarray:
    """Times on a fixed grid (multiples of step_s) inside any line's span plus margins."""
    ticks: set[int] = set()
    for cue in cues:
        lo = max(0.0, cue.start_ms / 1000 - margin_s)
        hi = min(duration_s, cue.end_ms / 1000 + margin_s)
        ticks.update(range(int(np.ceil(lo / step_s)), int(np.floor(hi / step_s)) + 1))
    return np.array(sorted(ticks), np.float64) * step_s


def check_cues(job: EpisodeJob, duration_s: float) -> None:
    limit = duration_s + job.config.subtitle_tolerance_s
    for k, cue in enumerate(job.cues):
        if cue.end_ms / 1000 > limit:
            raise DramaError(
                f"subtitle line ends at {cue.end_ms / 1000:.2f} s, after the video's end ({duration_s:.2f} s)",
                file=job.subtitles, episode=job.number, line=k, field="end_time",
                hint=f"pair each subtitle file with its own video (video: {job.video})",
            )


def lip_scores(tracks, cues: tuple[SubtitleCue, ...], config: ExtractConfig) -> list[dict[str, Any]]:
    """Speaking score of every (line, track) with enough detections inside the line.

    activity = the spread (standard deviation) of the mouth opening over the track's frames in
    the line: a speaker's mouth opens and closes, a listener's stays put. score = activity /
    (activity + lip_reference), in [0, 1).
    """
    rows = []
    for t, track in enumerate(tracks):
        times = np.array([d.time_s for d in track.detections])
        opening = np.array([d.mouth_opening for d in track.detections])
        for k, cue in enumerate(cues):
            inside = (times >= cue.start_ms / 1000) & (times <= cue.end_ms / 1000)
            n = int(inside.sum())
            if n < config.lip_min_frames:
                continue
            activity = float(opening[inside].std())
            rows.append({"line": k, "track": t, "frames": n, "activity": round(activity, 5),
                         "score": round(activity / (activity + config.lip_reference), 4)})
    return rows


@dataclass(frozen=True)
class PartJob:
    """A unit of one episode's work. Part 0 is the voices of all its lines (the audio track is
    decoded once); parts 1.. are the faces of a stretch: its lines `lines[0]..lines[1]-1` and
    the frames sampled in [start_s, end_s). Stretches end in gaps between lines, so each line
    belongs to one; the plan depends only on the subtitles and settings, never on the engine
    or the number of workers, so every engine writes the same bytes."""

    job: EpisodeJob
    index: int
    count: int
    lines: tuple[int, int]
    start_s: float
    end_s: float

    @property
    def voices(self) -> bool:
        return self.index == 0


def plan_parts(job: EpisodeJob, duration_s: float) -> list[PartJob]:
    """Cut the episode into parts of at least `config.part_s` seconds at gaps between lines
    (a gap: every line before it has ended and none after it has started)."""
    cues = job.cues
    part_s = job.config.part_s
    bounds: list[tuple[int, float]] = []  # (first line of the next part, cut time)
    if part_s > 0 and len(cues) > 1:
        ends = np.maximum.accumulate([c.end_ms for c in cues])
        starts = np.minimum.accumulate([c.start_ms for c in reversed(cues)])[::-1]
        last_end = float(ends[-1]) / 1000
        part_start = 0.0
        for k in range(1, len(cues)):
            if ends[k - 1] > starts[k]:
                continue
            cut = (float(ends[k - 1]) + float(starts[k])) / 2000
            if cut - part_start >= part_s and last_end - cut >= part_s / 2:
                bounds.append((k, cut))
                part_start = cut
    end_s = max(duration_s, cues[-1].end_ms / 1000 if cues else 0.0) + 1.0
    edges = [(0, 0.0), *bounds, (len(cues), end_s)]
    count = len(edges)  # the voice part and one face part per stretch
    return [PartJob(job, 0, count, (0, len(cues)), 0.0, end_s)] + [
        PartJob(job, i + 1, count, (edges[i][0], edges[i + 1][0]), edges[i][1], edges[i + 1][1])
        for i in range(len(edges) - 1)]


def extract_part(part: PartJob) -> dict[str, Any]:
    """Part 0: one voice embedding per line. Other parts: faces, tracks and lip scores of a stretch."""
    from threadpoolctl import threadpool_limits

    # one BLAS thread: parts run side by side, one process per core, and numpy's small products
    # (the mel filter bank) ran 13x slower with OpenBLAS threads fighting over busy cores
    with threadpool_limits(limits=1):
        return _extract_part(part)


def _extract_part(part: PartJob) -> dict[str, Any]:
    from dramasr.extract.media import probe

    job = part.job
    started = time.perf_counter()
    info = probe(job.video)
    check_cues(job, info.duration_s)
    result = {"episode": job.number, "part": part.index, "video": str(job.video), "subtitles": str(job.subtitles),
              "fps": info.fps, "duration_s": info.duration_s, "width": info.width, "height": info.height}
    result |= _voices(job) if part.voices else _faces(part, info)
    result["timings"] = {k: round(v, 3) for k, v in result["timings"].items()}
    result["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    return result


def _voices(job: EpisodeJob) -> dict[str, Any]:
    from dramasr.extract.media import read_audio
    from dramasr.extract.voice import line_embeddings, speech_mask

    t0 = time.perf_counter()
    wav = read_audio(job.video)
    timings = {"audio_decode_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    spans = [(c.start_ms / 1000, c.end_ms / 1000) for c in job.cues]
    embedding, speech_s = line_embeddings(wav, spans, speech_mask(wav))
    timings["voice_s"] = time.perf_counter() - t0
    return {"lines": [asdict(c) | {"speech_s": round(float(s), 3)} for c, s in zip(job.cues, speech_s, strict=True)],
            "embedding": embedding.tolist(), "timings": timings}


def _faces(part: PartJob, info) -> dict[str, Any]:
    from dramasr.extract import faces as face_lib
    from dramasr.extract.media import iter_frames

    job, cfg = part.job, part.job.config
    cues = job.cues[part.lines[0]:part.lines[1]]
    t0 = time.perf_counter()
    every = sample_times(job.cues, 1.0 / cfg.sample_fps, cfg.margin_s, info.duration_s)
    times = every[(every >= part.start_s) & (every < part.end_s)]
    tracker = face_lib.Tracker(max_gap_s=1.5 / cfg.sample_fps, rescan_upsample=cfg.rescan_upsample,
                               detect_every=max(1, int(round(cfg.detect_interval_s * cfg.sample_fps))))
    scale = min(1.0, cfg.max_width / max(1, info.width))
    for index, frame in iter_frames(job.video, times, cfg.max_width):
        tracker.add(index, float(times[index]), frame, scale, cfg.upsample)
    tracks = tracker.finish()
    timings = {"faces_s": time.perf_counter() - t0}
    face_lib.name_tracks(tracks, list(job.cast_names), job.gallery, job.gallery_owner, cfg.face_match_distance)
    lips = lip_scores(tracks, cues, cfg)
    for row in lips:
        row["line"] += part.lines[0]
    fps = info.fps
    return {
        "sampled_frames": len(times),
        "tracks": [{
            "name": tr.name, "score": tr.score,
            "distance": None if np.isnan(tr.distance) else round(tr.distance, 4),
            "frames": [[int(round(d.time_s * fps)), *d.box] for d in tr.detections],
            "times_ms": [int(round(d.time_s * 1000)) for d in tr.detections],
            "mouth_opening": [round(d.mouth_opening, 4) for d in tr.detections],
        } for tr in tracks],
        "lip": lips,
        "work": {"full_scans": tracker.scans, "cuts": tracker.cuts, "descriptors": tracker.descriptors_computed},
        "timings": timings,
    }


def merge_parts(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One episode's result from its parts' results (in part order)."""
    results = sorted(results, key=lambda r: r["part"])
    first = results[0]
    merged = {k: first[k] for k in ("episode", "video", "subtitles", "fps", "duration_s", "width", "height")}
    voices, faces = results[0], results[1:]
    merged["parts"] = len(results)
    merged["sampled_frames"] = sum(r["sampled_frames"] for r in faces)
    merged["lines"], merged["embedding"] = voices["lines"], voices["embedding"]
    merged["tracks"], merged["lip"] = [], []
    for r in faces:
        offset = len(merged["tracks"])
        merged["tracks"].extend(r["tracks"])
        merged["lip"].extend({**row, "track": row["track"] + offset} for row in r["lip"])
    merged["work"] = {k: sum(r["work"][k] for r in faces) for k in faces[0]["work"]} if faces else {}
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r["timings"].items():
            timings[k] = round(timings.get(k, 0.0) + v, 3)
    merged["timings"] = timings  # summed over parts: CPU-bound seconds of work, not the episode's wall time
    return merged


def extract_episode(job: EpisodeJob) -> dict[str, Any]:
    """Decode, embed voices, find and name faces, score lips: the episode's result as a dict
    (its parts one after another in this process; the engines run parts side by side)."""
    from dramasr.extract.media import probe

    return merge_parts([extract_part(part) for part in plan_parts(job, probe(job.video).duration_s)])


def job_for(number: int, video: str | Path, subtitles: str | Path, cues, cast, config: ExtractConfig) -> EpisodeJob:
    return EpisodeJob(number, str(video), str(subtitles), tuple(cues), tuple(cast.names), cast.gallery,
                      cast.gallery_owner, config)
