"""Lines and faces on the release's single time axis, and which of them lie within a window of a line.

Face gating asks "is a face (or labelled line) of this character within +-20 s of line i";
these functions answer it for all lines at once with sorted sweeps.
"""

from __future__ import annotations

import numpy as np

from dramasr.errors import DramaError

# The release places episodes end to end on one time axis, each padded by 10 s before its
# first and after its last line, so that the +-20 s gating window just reaches across.
EPISODE_PADDING_MS = 10_000


def absolute_times(episode: np.ndarray, start_ms: np.ndarray, end_ms: np.ndarray,
                   face_episode: np.ndarray, face_start_ms: np.ndarray, face_end_ms: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lines and faces on one time axis (ms), episodes end to end as the release lays them out.

    Returns line start, line end, face start, face end and a mask of faces that could be placed
    (faces of episodes without lines cannot).
    """
    n = len(episode)
    if n and np.any(np.diff(episode) < 0):
        raise DramaError("lines must be ordered by episode", field="episode")
    offset = {}
    total = 0
    bounds = np.flatnonzero(np.diff(episode)) + 1 if n else np.zeros(0, np.int64)
    starts = np.concatenate([[0], bounds]).astype(np.int64) if n else np.zeros(0, np.int64)
    stops = np.concatenate([bounds, [n]]).astype(np.int64) if n else np.zeros(0, np.int64)
    line_shift = np.zeros(n, np.int64)
    for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
        ep_start = int(start_ms[lo]) - EPISODE_PADDING_MS
        ep_end = int(end_ms[hi - 1]) + EPISODE_PADDING_MS
        offset[int(episode[lo])] = total - ep_start
        line_shift[lo:hi] = total - ep_start
        total += ep_end - ep_start
    face_shift = np.array([offset.get(int(e), 0) for e in face_episode.tolist()], np.int64)
    face_ok = np.array([int(e) in offset for e in face_episode.tolist()], bool)
    return (start_ms + line_shift, end_ms + line_shift, face_start_ms + face_shift,
            face_end_ms + face_shift, face_ok)


def windows(line_start: np.ndarray, line_end: np.ndarray, item_start: np.ndarray, item_end: np.ndarray,
            radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Index range [lo, hi) of time-ordered items within +-radius of each line.

    Same semantics as a two-pointer sweep over the lines in order (what the release does):
    an item enters once its start is <= line end + radius and leaves once its end is
    < line start - radius, pointers never moving back.
    """
    if len(item_start) == 0:
        zero = np.zeros(len(line_start), np.int64)
        return zero, zero
    upper = np.maximum.accumulate(line_end + radius)
    lower = np.maximum.accumulate(line_start - radius)
    hi = np.searchsorted(np.maximum.accumulate(item_start), upper, side="right")
    lo = np.searchsorted(np.maximum.accumulate(item_end), lower, side="left")
    return lo.astype(np.int64), hi.astype(np.int64)


def count_in_windows(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    csum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return csum[hi] - csum[lo]
