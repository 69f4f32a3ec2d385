"""Decoding video files with PyAV: the stream facts, the audio track as 16 kHz mono, and the
frames nearest a list of sample times (decoded in one sequential pass).

Every problem a user can cause (unreadable file, no audio track) is a DramaError naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dramasr.errors import DramaError

SAMPLE_RATE = 16_000  # what resemblyzer and webrtcvad read
SEEK_AFTER_S = 2.0  # frames wanted only after this time: seek instead of decoding from the start


@dataclass(frozen=True)
class VideoInfo:
    """What one video file holds."""

    path: str
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool


def _open(path: str | Path):
    import av

    source = Path(path)
    if not source.is_file():
        raise DramaError("video file not found", file=source)
    try:
        return av.open(str(source))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DramaError(f"unreadable video: {exc}", file=source,
                         hint="pass a video file ffmpeg can decode (e.g. mp4, mkv)") from exc


def probe(path: str | Path) -> VideoInfo:
    """Duration, frame rate, frame size and whether there is an audio track."""
    with _open(path) as container:
        if not container.streams.video:
            raise DramaError("no video stream", file=path, hint="pass a video file, not an audio or subtitle file")
        video = container.streams.video[0]
        fps = float(video.average_rate or video.guessed_rate or 25.0)
        if container.duration is not None:
            duration = container.duration / 1_000_000
        elif video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        else:
            duration = 0.0
        return VideoInfo(str(path), float(duration), fps, int(video.codec_context.width),
                         int(video.codec_context.height), bool(container.streams.audio))


def read_audio(path: str | Path) -> np.ndarray:
    """The first audio track as float32 mono at 16 kHz."""
    import av

    with _open(path) as container:
        if not container.streams.audio:
            raise DramaError("no audio track", file=path,
                             hint="voices need the episode's sound: pass the video file with its audio")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise DramaError(f"audio track cannot be decoded: {exc}", file=path) from exc
    if not chunks:
        raise DramaError("the audio track is empty", file=path)
    return np.concatenate(chunks).astype(np.float32)


def iter_frames(path: str | Path, times_s: Sequence[float], max_width: int = 640) -> Iterator[tuple[int, np.ndarray]]:
    """(index into times_s, RGB frame uint8 [H, W, 3] scaled down to at most `max_width`) for the
    frame nearest each sample time, in time order: one sequential decode, frames never all in memory.
    """
    import av

    wanted = np.asarray(times_s, np.float64)
    order = np.argsort(wanted, kind="stable")
    if len(wanted) == 0:
        return
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, max_width / max(1, width))
        size = (int(round(width * scale / 2)) * 2, int(round(height * scale / 2)) * 2)
        first = float(wanted[order[0]])
        if first > SEEK_AFTER_S and stream.time_base is not None:
            # a part of an episode: start at the keyframe before it (the same frames come out
            # as from a decode from the start, since decoding restarts cleanly at a keyframe)
            container.seek(int((first - SEEK_AFTER_S / 2) / stream.time_base), stream=stream, backward=True)
        k = 0
        previous: tuple[float, av.VideoFrame] | None = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                # a wanted time is served by whichever of the frames around it is nearer
                while k < len(order) and wanted[order[k]] <= t:
                    target = wanted[order[k]]
                    best = frame if previous is None or (t - target) <= (target - previous[0]) else previous[1]
                    yield int(order[k]), best.to_ndarray(format="rgb24", width=size[0], height=size[1])
                    k += 1
                if k >= len(order):
                    break
                previous = (t, frame)
            while k < len(order) and previous is not None:  # times past the last frame
                yield int(order[k]), previous[1].to_ndarray(format="rgb24", width=size[0], height=size[1])
                k += 1
        except av.error.FFmpegError as exc:
            raise DramaError(f"video stream cannot be decoded: {exc}", file=path) from exc
