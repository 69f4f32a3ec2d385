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
from dramasr.tools.tables import DramaTables

WINDOW_S = 5.0


@dataclass(frozen=True, eq=False)
class FaceTables:
    """Dense [N, C] tables of named faces around each line, and [N] totals."""

    hits: np.ndarray  # detections of the class inside the line
    best: np.ndarray  # best recognition score among them
    near: np.ndarray  # seconds to the class's nearest detection (WINDOW_S at most)
    total: np.ndarray  # [N] detections inside the line, all classes
    on_screen: np.ndarray  # [N] named classes seen inside the line


def build_face_tables(tables: DramaTables) -> FaceTables:
    """The face tables of a drama; they do not depend on labels (`DramaTables.faces`)."""
    drama, n, n_classes = tables.drama, len(tables.drama.lines), len(tables.classes)
    hits = np.zeros((n, n_classes), np.float32)
    best = np.zeros((n, n_classes), np.float32)
    near = np.full((n, n_classes), WINDOW_S, np.float32)
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
            cls = face_class[pair_track]
            np.minimum.at(near, (pair_line, cls), gap.astype(np.float32))
            inside = gap == 0
            np.add.at(hits, (pair_line[inside], cls[inside]), 1.0)
            np.maximum.at(best, (pair_line[inside], cls[inside]), faces.score[pair_track[inside]].astype(np.float32))
    on_screen = (hits[:, :-1] > 0).sum(1).astype(np.float32)  # named faces only
    return FaceTables(hits, best, near, hits.sum(1), on_screen)


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
        hits = t.hits[pair_line, pair_class]
        total = t.total[pair_line]
        return {
            "face_hits": hits,
            "face_share": np.where(total > 0, hits / np.maximum(total, 1), -1.0),
            "face_score": t.best[pair_line, pair_class],
            "face_near_s": t.near[pair_line, pair_class],
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
