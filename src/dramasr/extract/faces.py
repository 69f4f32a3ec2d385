"""Faces with dlib and the face_recognition models (files shipped in `face_recognition_models`):
HOG detection, 68 landmarks, 128-d embeddings; detections linked into tracks across sampled
frames (box overlap, broken at shot cuts); the mouth opening of every detection for lip evidence.

Cost on a CPU (640x360 frame, one core): HOG detection 17 ms (70 ms with upsampling), landmarks
under 1 ms, the 128-d descriptor 75 ms. So the detector scans the whole frame only at shot cuts
and once every `detect_every` samples; in between, each open track looks for its face in a
window around its last box (~5 ms); and a track gets a descriptor only once or twice (its largest
face in each of its first `max_descriptors` stretches of `embed_every` samples), computed when
the track ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

# inner-lip landmark pairs (top, bottom) of dlib's 68-point model: 61-67, 62-66, 63-65
_LIP_TOP = (61, 62, 63)
_LIP_BOTTOM = (67, 66, 65)
_EYE_LEFT, _EYE_RIGHT = 36, 45  # outer eye corners: the face's scale
_STILL = slice(27, 48)  # nose and eyes: their centre moves with the face, not with the mouth


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
    patch: np.ndarray  # 12x12 grey thumbnail of the eyes and nose, to notice a different face


@dataclass
class FaceTrack:
    """Detections of one face across consecutive sampled frames of one shot."""

    detections: list[Detection] = field(default_factory=list)
    name: str = ""
    score: float = 0.0
    distance: float = float("nan")
    descriptors: dict[int, np.ndarray] = field(default_factory=dict)  # stretch -> 128-d descriptor
    chips: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)  # stretch -> (face area, aligned chip)

    def descriptor(self) -> np.ndarray | None:
        found = [self.descriptors[k] for k in sorted(self.descriptors)]
        return np.mean(found, axis=0) if found else None


Rect = tuple[int, int, int, int]  # left, top, right, bottom of a dlib rectangle in the (scaled) frame


def _detect(image: np.ndarray, upsample: int) -> list[tuple[tuple[int, int, int, int], object, Rect]]:
    """(box clipped to the image, dlib landmarks, detector rectangle) of every face, largest first."""
    detector, predictor, _ = _models()
    image = np.ascontiguousarray(image)  # dlib misreads strided views
    found = []
    for rect in detector(image, upsample):
        box = (max(0, rect.left()), max(0, rect.top()), min(image.shape[1], rect.right()),
               min(image.shape[0], rect.bottom()))
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            continue
        found.append((box, predictor(image, rect), (rect.left(), rect.top(), rect.right(), rect.bottom())))
    found.sort(key=lambda item: -(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]))
    return found


def detect_faces(image: np.ndarray, upsample: int = 0) -> list[tuple[tuple[int, int, int, int], object]]:
    """(box, dlib landmarks) of every face in an RGB image, largest first."""
    return [(box, shape) for box, shape, _ in _detect(image, upsample)]


def landmarks_array(shape) -> np.ndarray:
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32)


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap relative to the face's scale (about 0 closed, 0.1-0.3 open)."""
    gap = np.linalg.norm(points[list(_LIP_TOP)] - points[list(_LIP_BOTTOM)], axis=1).mean()
    scale = float(np.linalg.norm(points[_EYE_LEFT] - points[_EYE_RIGHT]))
    return float(gap / scale) if scale > 0 else 0.0


CHIP_SIZE, CHIP_PADDING = 150, 0.25  # what dlib's face_recognition_model_v1 aligns a face to


def face_chip(image: np.ndarray, shape) -> np.ndarray:
    """The aligned 150x150 face the descriptor model reads (0.3 ms; the descriptor itself ~75 ms)."""
    import dlib

    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(image), shape, CHIP_SIZE, CHIP_PADDING))


def chip_descriptor(chip: np.ndarray) -> np.ndarray:
    """The 128-d descriptor of an aligned chip: equal to `face_descriptor` of the face it came from."""
    _, _, encoder = _models()
    return np.asarray(encoder.compute_face_descriptor(np.ascontiguousarray(chip)), np.float32)


def face_descriptor(image: np.ndarray, shape) -> np.ndarray:
    _, _, encoder = _models()
    return np.asarray(encoder.compute_face_descriptor(np.ascontiguousarray(image), shape), np.float32)


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


def face_patch(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The eyes and nose (placed and sized by their landmarks, so neither the mouth nor the
    detector's box size moves it) as a normalised 12x12 grey thumbnail."""
    cx, cy = points[_STILL].mean(axis=0)
    half = max(4.0, float(np.linalg.norm(points[_EYE_LEFT] - points[_EYE_RIGHT])))
    h, w = image.shape[:2]
    x1, x2 = int(max(0, cx - half)), int(min(w, cx + half))
    y1, y2 = int(max(0, cy - half)), int(min(h, cy + 0.8 * half))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return np.zeros((12, 12), np.float32)
    patch = thumbnail(image[y1:y2, x1:x2], 12, 12)
    return (patch - patch.mean()) / (patch.std() + 1e-3)


class Tracker:
    """Links faces of consecutive samples into tracks.

    At a shot cut (thumbnails differ by more than `cut_threshold` grey levels, or a time gap
    longer than `max_join_s`), after a time gap longer than `max_gap_s`, and every `detect_every`
    samples, the HOG detector scans the whole frame and its faces join the open tracks greedily
    by box overlap; a track that is not found at a scan ends. On the other samples each open
    track looks for its face with the detector in a window around its last rectangle only.
    Whenever a face looks different (eyes and nose) from the track's last one (a turned head,
    or another face in the same place after a cut the thumbnails missed), the 128-d
    descriptors decide whether it is the same face; if not, it starts a new track.
    Call `finish()` after the last sample: it computes the descriptors still pending.
    """

    def __init__(self, *, min_iou: float = 0.3, max_gap_s: float = 0.6, max_join_s: float = 2.0,
                 cut_threshold: float = 30.0, max_patch_change: float = 0.5, same_face_distance: float = 0.5,
                 embed_every: int = 16, detect_every: int = 4, max_descriptors: int = 2,
                 rescan_upsample: int | None = None, retries: int = 2) -> None:
        self.min_iou, self.max_gap_s, self.cut_threshold = min_iou, max_gap_s, cut_threshold
        self.max_join_s = max(max_join_s, max_gap_s)
        self.embed_every, self.detect_every, self.max_descriptors = embed_every, max(1, detect_every), max_descriptors
        self.rescan_upsample = rescan_upsample
        self.max_patch_change, self.same_face_distance = max_patch_change, same_face_distance
        self.tracks: list[FaceTrack] = []
        self._open: list[int] = []
        self._rects: dict[int, Rect] = {}  # open track -> its last rectangle
        self._last_time = -1e9
        self._last_thumb: np.ndarray | None = None
        self._since_scan = 0
        self.retries, self._retries = retries, 0
        self.scans = self.cuts = self.descriptors_computed = 0

    # descriptors -------------------------------------------------------------------------------
    def _offer_chip(self, track: FaceTrack, det: Detection, image: np.ndarray, shape) -> None:
        stretch = len(track.detections) // self.embed_every
        if stretch >= self.max_descriptors or stretch in track.descriptors:
            return
        area = (det.box[2] - det.box[0]) * (det.box[3] - det.box[1])
        if stretch not in track.chips or area > track.chips[stretch][0]:
            track.chips[stretch] = (area, face_chip(image, shape))

    def _compute(self, chip: np.ndarray) -> np.ndarray:
        self.descriptors_computed += 1
        return chip_descriptor(chip)

    def _reference(self, track: FaceTrack) -> np.ndarray:
        """The track's latest descriptor (computed now from its pending chip if it has none)."""
        if not track.descriptors:
            stretch = min(track.chips)
            track.descriptors[stretch] = self._compute(track.chips.pop(stretch)[1])
        return track.descriptors[max(track.descriptors)]

    def _close(self, t: int) -> None:
        track = self.tracks[t]
        for stretch in sorted(track.chips):
            if stretch not in track.descriptors:
                track.descriptors[stretch] = self._compute(track.chips[stretch][1])
        track.chips.clear()
        self._rects.pop(t, None)

    def _same_face(self, t: int, patch: np.ndarray, image: np.ndarray, shape,
                   own: list[np.ndarray | None]) -> bool:
        """Cheap check first (upper-face patch), the descriptors when the patch changed."""
        last = self.tracks[t].detections[-1]
        if float(np.abs(last.patch - patch).mean()) <= self.max_patch_change:
            return True
        if own[0] is None:
            own[0] = self._compute(face_chip(image, shape))
        return float(np.linalg.norm(self._reference(self.tracks[t]) - own[0])) <= self.same_face_distance

    def _append(self, t: int, det: Detection, image: np.ndarray, shape, rect: Rect, own: np.ndarray | None) -> None:
        track = self.tracks[t]
        stretch = len(track.detections) // self.embed_every
        if own is not None and stretch < self.max_descriptors and stretch not in track.descriptors:
            track.descriptors[stretch] = own
            track.chips.pop(stretch, None)
        else:
            self._offer_chip(track, det, image, shape)
        track.detections.append(det)
        self._rects[t] = rect

    # samples -----------------------------------------------------------------------------------
    def add(self, sample: int, time_s: float, image: np.ndarray, scale: float, upsample: int = 0) -> None:
        image = np.ascontiguousarray(image)  # dlib misreads strided views
        thumb = thumbnail(image)
        gap = time_s - self._last_time
        cut = (self._last_thumb is None or gap > self.max_join_s
               or float(np.abs(thumb - self._last_thumb).mean()) > self.cut_threshold)
        self._last_thumb, self._last_time = thumb, time_s
        if cut:
            self.cuts += 1
            for t in self._open:
                self._close(t)
            self._open = []
        # the costly upsampled scan (small faces) at cuts and whenever no face is being followed
        rescan = upsample if self.rescan_upsample is None else self.rescan_upsample
        if cut or gap > self.max_gap_s or self._since_scan + 1 >= self.detect_every \
                or (not self._open and self._retries > 0):
            # after a cut or a lost face that left nothing on screen, the next samples are scanned
            # too: a face often becomes detectable a frame or two after a transition
            self._retries = self.retries if cut else self._retries - 1
            self._since_scan = 0
            self.scans += 1
            self._scan(sample, time_s, image, scale, upsample if cut or not self._open else rescan)
            return
        self._since_scan += 1
        followed, lost = self._follow(sample, time_s, image, scale)
        self._open = followed + lost
        if lost:  # a face was lost: look for it (and others) in the whole frame
            self._retries = self.retries
            self.scans += 1
            self._scan(sample, time_s, image, scale, rescan if followed else upsample, followed=followed)

    def _measure(self, sample: int, time_s: float, image: np.ndarray, scale: float, rect: Rect,
                 shape=None) -> tuple[Detection, object]:
        """The detection of a face in `rect` (frame pixels of the scaled frame): box, landmarks, mouth."""
        import dlib

        if shape is None:
            _, predictor, _ = _models()
            shape = predictor(image, dlib.rectangle(*rect))
        height, width = image.shape[:2]
        box_small = (max(0, rect[0]), max(0, rect[1]), min(width, rect[2]), min(height, rect[3]))
        box = tuple(int(round(v / scale)) for v in box_small)
        points = landmarks_array(shape)
        return Detection(sample, time_s, box, mouth_opening(points), face_patch(image, points)), shape

    def _find(self, t: int, image: np.ndarray) -> Rect | None:
        """Track t's face, looked for by the detector in a window around its last rectangle
        (~5 ms against 17-70 ms for the whole frame); None when it is not there."""
        detector, _, _ = _models()
        height, width = image.shape[:2]
        left, top, right, bottom = self._rects[t]
        size = max(right - left, bottom - top)
        small = size < 90  # faces under ~80 px need the upsampled pyramid (as at cuts) and more room
        margin = (size if small else size // 2) + 8
        x0, y0 = max(0, left - margin), max(0, top - margin)
        x1, y1 = min(width, right + margin), min(height, bottom + margin)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        # (a large face's window scaled down to ~100 px would cost less, but its box, and so the
        # landmarks and lip scores, moved: 1 line of 200 of the synthetic episode lost with lip)
        best, best_iou = None, self.min_iou
        for r in detector(np.ascontiguousarray(image[y0:y1, x0:x1]), 1 if small else 0):
            rect = (r.left() + x0, r.top() + y0, r.right() + x0, r.bottom() + y0)
            overlap = iou((left, top, right, bottom), rect)
            if overlap >= best_iou and min(rect[2], width) - max(rect[0], 0) >= 8 \
                    and min(rect[3], height) - max(rect[1], 0) >= 8:
                best, best_iou = rect, overlap
        return best

    def _new_track(self, det: Detection, image: np.ndarray, shape, rect: Rect, own: np.ndarray | None) -> int:
        self.tracks.append(FaceTrack())
        self._append(len(self.tracks) - 1, det, image, shape, rect, own)
        return len(self.tracks) - 1

    def _scan(self, sample: int, time_s: float, image: np.ndarray, scale: float, upsample: int,
              followed: list[int] | None = None) -> None:
        """The detector on the whole frame; its faces join the open tracks by box overlap. An open
        track it missed (a small face in a scan without upsampling) is looked for in its window.
        `followed`: tracks already found in this frame by `_follow` (their faces are skipped)."""
        done = list(followed or [])
        done_boxes = [self.tracks[t].detections[-1].box for t in done]
        candidates = [t for t in self._open if t not in done]
        still_open: list[int] = []
        taken: set[int] = set()
        boxes: list[tuple[int, int, int, int]] = []
        for _box_small, shape, rect in _detect(image, upsample):
            det, _ = self._measure(sample, time_s, image, scale, rect, shape)
            if any(iou(det.box, b) >= self.min_iou for b in done_boxes):
                continue
            boxes.append(det.box)
            own: list[np.ndarray | None] = [None]
            best, best_iou = -1, self.min_iou
            for t in candidates:
                overlap = iou(self.tracks[t].detections[-1].box, det.box)
                if t in taken or overlap < best_iou:
                    continue
                if not self._same_face(t, det.patch, image, shape, own):
                    continue
                best, best_iou = t, overlap
            if best < 0:
                best = self._new_track(det, image, shape, rect, own[0])
            else:
                self._append(best, det, image, shape, rect, own[0])
            taken.add(best)
            still_open.append(best)
        for t in candidates:
            if t in taken:
                continue
            rect = None if followed is not None else self._find(t, image)
            if rect is not None:
                det, shape = self._measure(sample, time_s, image, scale, rect)
                own = [None]
                if all(iou(det.box, b) < self.min_iou for b in boxes) and self._same_face(t, det.patch, image,
                                                                                          shape, own):
                    self._append(t, det, image, shape, rect, own[0])
                    still_open.append(t)
                    continue
            self._close(t)
        self._open = done + still_open

    def _follow(self, sample: int, time_s: float, image: np.ndarray, scale: float) -> tuple[list[int], list[int]]:
        """Each open track's face in its window: (tracks found in this frame, tracks whose face
        was not there). A face there that looks like another one (a cut the thumbnails missed,
        or another person in the same place) ends its track and starts a new one when the
        descriptors say so."""
        still_open: list[int] = []
        lost: list[int] = []
        for t in self._open:
            rect = self._find(t, image)
            if rect is None:
                lost.append(t)
                continue
            det, shape = self._measure(sample, time_s, image, scale, rect)
            own: list[np.ndarray | None] = [None]
            if self._same_face(t, det.patch, image, shape, own):
                self._append(t, det, image, shape, rect, own[0])
                still_open.append(t)
            else:
                self._close(t)
                still_open.append(self._new_track(det, image, shape, rect, own[0]))
        return still_open, lost

    def finish(self) -> list[FaceTrack]:
        """End every open track (computing its pending descriptors); returns all tracks."""
        for t in self._open:
            self._close(t)
        self._open = []
        return self.tracks


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
