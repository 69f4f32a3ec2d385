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
    upsample: int = 1  # dlib HOG upsampling: 1 finds faces down to ~40 px (wide shots), 0 is ~2x faster
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


def extract_episode(job: EpisodeJob) -> dict[str, Any]:
    """Decode, embed voices, find and name faces, score lips: the episode's result as a dict."""
    from dramasr.extract import faces as face_lib
    from dramasr.extract.media import iter_frames, probe, read_audio
    from dramasr.extract.voice import line_embeddings, speech_mask

    timings: dict[str, float] = {}
    started = time.perf_counter()
    info = probe(job.video)
    check_cues(job, info.duration_s)
    wav = read_audio(job.video)
    timings["audio_decode_s"] = time.perf_counter() - started

    t0 = time.perf_counter()
    mask = speech_mask(wav)
    spans = [(c.start_ms / 1000, c.end_ms / 1000) for c in job.cues]
    embedding, speech_s = line_embeddings(wav, spans, mask)
    timings["voice_s"] = time.perf_counter() - t0
    del wav

    t0 = time.perf_counter()
    cfg = job.config
    times = sample_times(job.cues, 1.0 / cfg.sample_fps, cfg.margin_s, info.duration_s)
    tracker = face_lib.Tracker(max_gap_s=1.5 / cfg.sample_fps)
    scale = min(1.0, cfg.max_width / max(1, info.width))
    for index, frame in iter_frames(job.video, times, cfg.max_width):
        tracker.add(index, float(times[index]), frame, scale, cfg.upsample)
    timings["faces_s"] = time.perf_counter() - t0
    tracks = tracker.tracks
    face_lib.name_tracks(tracks, list(job.cast_names), job.gallery, job.gallery_owner, cfg.face_match_distance)
    lips = lip_scores(tracks, job.cues, cfg)
    timings["total_s"] = time.perf_counter() - started

    fps = info.fps
    return {
        "episode": job.number, "video": str(job.video), "subtitles": str(job.subtitles),
        "fps": fps, "duration_s": info.duration_s, "width": info.width, "height": info.height,
        "sampled_frames": len(times),
        "lines": [asdict(c) | {"speech_s": round(float(s), 3)} for c, s in zip(job.cues, speech_s, strict=True)],
        "embedding": embedding.tolist(),
        "tracks": [{
            "name": tr.name, "score": tr.score,
            "distance": None if np.isnan(tr.distance) else round(tr.distance, 4),
            "frames": [[int(round(d.time_s * fps)), *d.box] for d in tr.detections],
            "times_ms": [int(round(d.time_s * 1000)) for d in tr.detections],
            "mouth_opening": [round(d.mouth_opening, 4) for d in tr.detections],
        } for tr in tracks],
        "lip": lips,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def job_for(number: int, video: str | Path, subtitles: str | Path, cues, cast, config: ExtractConfig) -> EpisodeJob:
    return EpisodeJob(number, str(video), str(subtitles), tuple(cues), tuple(cast.names), cast.gallery,
                      cast.gallery_owner, config)
