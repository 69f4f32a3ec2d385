"""faces_on_screen: which named faces are seen during a line or close to it.

Per (line, candidate): how many of the candidate's face detections fall inside the line,
their share of all named detections there, the best recognition score, the distance in
seconds to the candidate's nearest detection (within a window), and how many different
named faces are on screen. A face on screen is not proof of speech (reaction shots), so
these are features for the model, not rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dramasr.tools.base import Context, Tool
from dramasr.tools.tables import DramaTables, find_sorted

WINDOW_S = 5.0


@dataclass(frozen=True, eq=False)
class FaceTables:
    """Named faces around each line, per (line, class) pair that has any (most pairs have
    none: a dense [N, C] table of each was 65 MB on zhen_huan_zhuan), and [N] totals."""

    n_classes: int
    key: np.ndarray  # int64 [K] sorted: line * n_classes + class of each pair with a face within WINDOW_S
    pair_hits: np.ndarray  # float32 [K] detections of the class inside the line
    pair_best: np.ndarray  # best recognition score among them (0 when none)
    pair_near: np.ndarray  # seconds to the class's nearest detection (WINDOW_S at most)
    total: np.ndarray  # [N] detections inside the line, all classes
    on_screen: np.ndarray  # [N] named classes seen inside the line

    def at(self, pair_line: np.ndarray, pair_class: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """hits, best score and nearest distance of each (line, class) pair."""
        want = np.asarray(pair_line, np.int64) * self.n_classes + pair_class
        hits, best = np.zeros(len(want), np.float32), np.zeros(len(want), np.float32)
        near = np.full(len(want), WINDOW_S, np.float32)
        where, found = find_sorted(self.key, want)
        at = where[found]
        hits[found], best[found], near[found] = self.pair_hits[at], self.pair_best[at], self.pair_near[at]
        return hits, best, near

    def hits_of(self, lines: np.ndarray) -> np.ndarray:
        """[len(lines), C] detections of each class inside each of these lines."""
        grid_line = np.repeat(np.asarray(lines, np.int64), self.n_classes)
        grid_class = np.tile(np.arange(self.n_classes), len(lines))
        return self.at(grid_line, grid_class)[0].reshape(len(lines), self.n_classes)


def build_face_tables(tables: DramaTables) -> FaceTables:
    """The face tables of a drama; they do not depend on labels (`DramaTables.faces`)."""
    drama, n, n_classes = tables.drama, len(tables.drama.lines), len(tables.classes)
    keys, gaps, inside_score, inside = [], [], [], []
    faces = drama.faces
    if len(faces):
        face_class = tables.classes_of(faces.name)
        # a face the recogniser could not name (an id like 0012_pro0_id3) counts for OTHER:
        # an unknown face on screen hints at an extra speaking
        face_known = np.fromiter((bool(n) for n in faces.name), bool, len(faces))
        # track spans: detections are often single frames, but spans are honoured
        t_start, t_end = faces.start, faces.end
        line_start, line_end = drama.lines.start, drama.lines.end
        for ep in drama.episodes:
            tracks = np.arange(ep.face_start, ep.face_stop)
            tracks = tracks[face_known[tracks]]
            lo, hi = ep.line_start, ep.line_stop
            if not len(tracks) or hi <= lo:
                continue
            starts = line_start[lo:hi]
            order = np.argsort(starts, kind="stable")
            sorted_starts = starts[order]
            longest = float((line_end[lo:hi] - starts).max())
            first = np.searchsorted(sorted_starts, t_start[tracks] - WINDOW_S - longest, "left")
            last = np.searchsorted(sorted_starts, t_end[tracks] + WINDOW_S, "right")
            width = last - first
            pair_track = np.repeat(tracks, width)
            offsets = np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width)
            pair_line = lo + order[np.repeat(first, width) + offsets]
            ls, le = line_start[pair_line], line_end[pair_line]
            ts, te = t_start[pair_track], t_end[pair_track]
            gap = np.maximum(0.0, np.maximum(ts - le, ls - te))
            keep = gap <= WINDOW_S
            pair_line, pair_track, gap = pair_line[keep], pair_track[keep], gap[keep]
            keys.append(pair_line.astype(np.int64) * n_classes + face_class[pair_track])
            gaps.append(gap.astype(np.float32))
            inside.append(gap == 0)
            inside_score.append(faces.score[pair_track].astype(np.float32))
    if keys:
        key, gap, hit, score = (np.concatenate(x) for x in (keys, gaps, inside, inside_score))
        order = np.argsort(key, kind="stable")
        key, gap, hit, score = key[order], gap[order], hit[order], score[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        key = key[first]
        pair_near = np.minimum(np.minimum.reduceat(gap, first), np.float32(WINDOW_S))
        pair_hits = np.add.reduceat(hit.astype(np.float32), first)
        pair_best = np.maximum(np.maximum.reduceat(np.where(hit, score, np.float32(0)), first), np.float32(0))
    else:
        key = np.zeros(0, np.int64)
        pair_near = pair_hits = pair_best = np.zeros(0, np.float32)
    line = key // n_classes
    total = np.bincount(line, weights=pair_hits, minlength=n).astype(np.float32)
    named_seen = (pair_hits > 0) & (key % n_classes < n_classes - 1)  # named faces only
    on_screen = np.bincount(line[named_seen], minlength=n).astype(np.float32)
    return FaceTables(n_classes, key, pair_hits, pair_best, pair_near, total, on_screen)


class FacesOnScreen(Tool):
    name = "faces_on_screen"
    description = (
        "Faces recognised while the line is spoken or within 5 s of it: per candidate the number of "
        "detections inside the line, their share of all detections, the best recognition score and the time "
        "distance to the nearest detection (unrecognised faces count for Other); plus how many named faces "
        "are on screen."
    )
    cost = 2.0
    depends_on_labels = False

    def features(self, ctx: Context, pair_line: np.ndarray, pair_class: np.ndarray) -> dict[str, np.ndarray]:
        t = ctx.tables.faces
        hits, best, near = t.at(pair_line, pair_class)
        total = t.total[pair_line]
        return {
            "face_hits": hits,
            "face_share": np.where(total > 0, hits / np.maximum(total, 1), -1.0),
            "face_score": best,
            "face_near_s": near,
            "faces_on_screen": t.on_screen[pair_line],
        }

    def describe(self, ctx: Context, line: int, values: dict[str, dict[str, float]]) -> str:
        n = int(next(iter(values.values()))["faces_on_screen"]) if values else 0
        seen = [f"{k} (score {v['face_score']:.2f}, {int(v['face_hits'])} detections)"
                for k, v in values.items() if v["face_hits"] > 0]
        near = [f"{k} ({v['face_near_s']:.1f} s away)" for k, v in values.items()
                if v["face_hits"] == 0 and v["face_near_s"] < WINDOW_S]
        text = f"{n} named face(s) on screen"
        if seen:
            text += "; candidates seen: " + ", ".join(seen)
        if near:
            text += "; seen nearby: " + ", ".join(near)
        return text.replace(f"{ctx.classes[-1]} (score", "an unrecognised face (score")
