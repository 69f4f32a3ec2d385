"""Faces with dlib and the face_recognition models (files shipped in `face_recognition_models`):
HOG detection, 68 landmarks, 128-d embeddings; detections linked into tracks across sampled
frames (box overlap, broken at shot cuts); the mouth opening of every detection for lip evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

# inner-lip landmark pairs (top, bottom) of dlib's 68-point model: 61-67, 62-66, 63-65
_LIP_TOP = (61, 62, 63)
_LIP_BOTTOM = (67, 66, 65)
_EYE_LEFT, _EYE_RIGHT = 36, 45  # outer eye corners: the face's scale


@lru_cache(maxsize=1)
def _models():
    import dlib
    import face_recognition_models as frm

    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


@dataclass
class Detection:
    """One face in one sampled frame."""

    sample: int  # index of the sampled frame
    time_s: float
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in source-video pixels
    mouth_opening: float  # inner-lip gap / eye-corner distance
    patch: np.ndarray  # 12x12 grey thumbnail of the upper face (eyes, nose), to notice a different face
    descriptor: np.ndarray | None = None  # 128-d, computed on some detections of a track


@dataclass
class FaceTrack:
    """Detections of one face across consecutive sampled frames of one shot."""

    detections: list[Detection] = field(default_factory=list)
    name: str = ""
    score: float = 0.0
    distance: float = float("nan")

    def descriptor(self) -> np.ndarray | None:
        found = [d.descriptor for d in self.detections if d.descriptor is not None]
        return np.mean(found, axis=0) if found else None


def detect_faces(image: np.ndarray, upsample: int = 0) -> list[tuple[tuple[int, int, int, int], object]]:
    """(box, dlib landmarks) of every face in an RGB image, largest first."""
    detector, predictor, _ = _models()
    found = []
    for rect in detector(image, upsample):
        box = (max(0, rect.left()), max(0, rect.top()), min(image.shape[1], rect.right()),
               min(image.shape[0], rect.bottom()))
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            continue
        found.append((box, predictor(image, rect)))
    found.sort(key=lambda item: -(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]))
    return found


def landmarks_array(shape) -> np.ndarray:
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32)


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap relative to the face's scale (about 0 closed, 0.1-0.3 open)."""
    gap = np.linalg.norm(points[list(_LIP_TOP)] - points[list(_LIP_BOTTOM)], axis=1).mean()
    scale = float(np.linalg.norm(points[_EYE_LEFT] - points[_EYE_RIGHT]))
    return float(gap / scale) if scale > 0 else 0.0


def face_descriptor(image: np.ndarray, shape) -> np.ndarray:
    _, _, encoder = _models()
    return np.asarray(encoder.compute_face_descriptor(image, shape), np.float32)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def thumbnail(image: np.ndarray, width: int = 32, height: int = 18) -> np.ndarray:
    """A small grey thumbnail; consecutive samples differing a lot mark a shot cut."""
    h, w = image.shape[:2]
    ys = (np.arange(height) * h // height)
    xs = (np.arange(width) * w // width)
    return image[ys][:, xs].mean(axis=2).astype(np.float32)


def face_patch(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The upper two thirds of the face box (the mouth moves; the rest of a face does not)."""
    x1, y1, x2, y2 = box
    crop = image[y1:y1 + max(2, (y2 - y1) * 2 // 3), x1:x2]
    patch = thumbnail(crop, 12, 12)
    return (patch - patch.mean()) / (patch.std() + 1e-3)


class Tracker:
    """Links detections of consecutive samples into tracks (greedy on box overlap).

    A track ends when a sample passes without it, when the time gap is larger than
    `max_gap_s`, or at a shot cut (thumbnails differ by more than `cut_threshold` grey levels).
    Each track's first detection, and one every `embed_every` samples, gets a 128-d descriptor.
    """

    def __init__(self, *, min_iou: float = 0.3, max_gap_s: float = 0.6, cut_threshold: float = 30.0,
                 max_patch_change: float = 0.5, same_face_distance: float = 0.5, embed_every: int = 12) -> None:
        self.min_iou, self.max_gap_s, self.cut_threshold = min_iou, max_gap_s, cut_threshold
        self.embed_every = embed_every
        self.max_patch_change, self.same_face_distance = max_patch_change, same_face_distance
        self.tracks: list[FaceTrack] = []
        self._open: list[int] = []
        self._last_time = -1e9
        self._last_thumb: np.ndarray | None = None

    def add(self, sample: int, time_s: float, image: np.ndarray, scale: float, upsample: int = 0) -> None:
        thumb = thumbnail(image)
        cut = (self._last_thumb is None or time_s - self._last_time > self.max_gap_s
               or float(np.abs(thumb - self._last_thumb).mean()) > self.cut_threshold)
        self._last_thumb, self._last_time = thumb, time_s
        if cut:
            self._open = []
        faces = detect_faces(image, upsample)
        still_open: list[int] = []
        taken: set[int] = set()
        for box_small, shape in faces:
            box = tuple(int(round(v / scale)) for v in box_small)
            patch = face_patch(image, box_small)
            det = Detection(sample, time_s, box, mouth_opening(landmarks_array(shape)), patch)
            best, best_iou = -1, self.min_iou
            for t in self._open:
                last = self.tracks[t].detections[-1]
                overlap = iou(last.box, box)
                if t in taken or overlap < best_iou:
                    continue
                if float(np.abs(last.patch - patch).mean()) > self.max_patch_change:
                    # the face looks different: a turned head, or another face in the same place
                    # (a cut the frame thumbnail missed); the 128-d descriptors decide
                    if det.descriptor is None:
                        det.descriptor = face_descriptor(image, shape)
                    previous = next(d.descriptor for d in reversed(self.tracks[t].detections)
                                    if d.descriptor is not None)
                    if float(np.linalg.norm(previous - det.descriptor)) > self.same_face_distance:
                        continue
                best, best_iou = t, overlap
            if best < 0:
                self.tracks.append(FaceTrack())
                best = len(self.tracks) - 1
            track = self.tracks[best]
            if det.descriptor is None and len(track.detections) % self.embed_every == 0:
                det.descriptor = face_descriptor(image, shape)
            track.detections.append(det)
            taken.add(best)
            still_open.append(best)
        self._open = still_open


def name_tracks(tracks: list[FaceTrack], names: list[str], gallery: np.ndarray, owner: np.ndarray,
                max_distance: float) -> None:
    """Name each track by its nearest cast photo; beyond `max_distance` it stays unnamed.

    score = 1 - distance / (2 * max_distance): 0.5 at the match limit, so every named track
    passes propagation's face-score cut (0.45), and near 1 for a close match.
    """
    for track in tracks:
        desc = track.descriptor()
        if desc is None or len(gallery) == 0:
            continue
        dist = np.linalg.norm(gallery - desc[None, :], axis=1)
        per_member = np.full(len(names), np.inf)
        np.minimum.at(per_member, owner, dist)
        best = int(np.argmin(per_member))
        track.distance = float(per_member[best])
        if track.distance <= max_distance:
            track.name = names[best]
            track.score = round(max(0.0, 1.0 - track.distance / (2 * max_distance)), 4)
